"""CCL messages in the wire format of SPEC §3.7/§5.3 run on our worker; a worker killed in the middle
of a step, and the step run again, leave exactly the files of an undisturbed run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from click.testing import CliRunner
from taskqueue import LocalTaskQueue, TaskQueue

import igneous.task_creation as tc
from igneous.queues import submit_tasks
from igneous.tasks.image.ccl import create_relabeling
from igneous_cli import main
from tests.ccl.conftest import assert_same_partition, oracle, run_ccl
from tests.conftest import REPO, igneous_subprocess, make_layer, read_layer, tree
from tests.integration.test_wire_format import put_message

WIRE = "igneous.tasks.image.ccl"


def test_hand_built_messages_execute(layer, tmp_path):
    img = (np.random.default_rng(8).random((16, 12, 8)) < 0.3).astype(np.uint8)
    src = layer(img, chunk_size=(8, 6, 4))
    dest = f"file://{tmp_path / 'dest'}"
    shape = [8, 6, 4]
    offsets = [[x, y, z] for z in (0, 4) for y in (0, 6) for x in (0, 8)]
    common = {"threshold_gte": 1, "threshold_lte": None, "fill_missing": False, "dust_threshold": 0}
    qdir = tmp_path / "queue"

    def drain(subprocess=False):
        if subprocess:  # another process, as workers elsewhere would be
            proc = igneous_subprocess("execute", "-x", "-q", f"fq://{qdir}")
            assert proc.returncode == 0, proc.stderr[-2000:]
        else:  # the same command in this process: the messages still go through the fq:// files
            result = CliRunner().invoke(main, ["execute", "-x", "-q", f"fq://{qdir}"])
            assert result.exit_code == 0, result.output

    tc.create_ccl_face_tasks(src, 0, shape, threshold_gte=1)  # the planner records the run (params.json)
    for offset in offsets:
        put_message(qdir, [[WIRE, "CCLFacesTask"], [], {"cloudpath": src, "mip": 0, "shape": shape, "offset": offset,
                                                       **common}, -1])  # fmt: skip
    drain(subprocess=True)
    for offset in offsets:  # positional arguments, as a message may carry them
        put_message(qdir, [[WIRE, "CCLEquivalancesTask"], [src, 0, shape, offset], common, -1])
    drain()
    create_relabeling(src, 0, shape)
    tc.create_ccl_relabel_tasks(src, dest, 0, shape, threshold_gte=1)  # creates the destination's info
    for offset in offsets:
        put_message(qdir, [[WIRE, "RelabelCCLTask"], [], {"src_path": src, "dest_path": dest, "mip": 0,
                                                         "shape": shape, "offset": offset, **common}, -1])  # fmt: skip
    drain()
    assert_same_partition(read_layer(dest)[..., 0], oracle(img, 6))


def test_our_messages_name_spec_keys_and_carry_connectivity_only_when_not_6(layer, tmp_path):
    src = layer((np.random.default_rng(1).random((16, 16, 8)) < 0.3).astype(np.uint8), chunk_size=(8, 8, 8))
    qdir = tmp_path / "queue"
    submit_tasks(tc.create_ccl_face_tasks(src, 0, (8, 8, 8), threshold_gte=1), queue=f"fq://{qdir}")
    payloads = [json.loads((qdir / "queue" / name).read_text())["payload"] for name in os.listdir(qdir / "queue")]
    assert len(payloads) == 4
    for key, args, kwargs, _ in payloads:
        assert key == [WIRE, "CCLFacesTask"] and args == []
        assert set(kwargs) == {"cloudpath", "mip", "shape", "offset", "threshold_gte", "threshold_lte",
                               "fill_missing", "dust_threshold"}  # fmt: skip
    shutil.rmtree(tmp_path / "src" / "4_4_40" / "ccl")
    tasks = list(tc.create_ccl_face_tasks(src, 0, (8, 8, 8), threshold_gte=1, connectivity=26))
    assert tasks[0].keywords["connectivity"] == 26


def _worker(qpath, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "igneous_cli", "execute", "-q", "--lease-sec", "2", *args, qpath]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run_with_a_kill(tasks, qdir, after: int) -> None:
    """Insert ``tasks``; SIGKILL a worker once ``after`` tasks completed; a second worker finishes."""
    qpath = f"fq://{qdir}"
    submit_tasks(tasks, queue=qpath)
    doomed = _worker(qpath)
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(qdir / "completions") and os.path.getsize(qdir / "completions") >= after:
            break
        time.sleep(0.005)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    left = TaskQueue(qpath, progress=False).enqueued
    assert 0 < left < len(tasks), "the kill must land in the middle of the step"
    time.sleep(2.5)  # the killed worker's lease lapses
    result = CliRunner().invoke(main, ["execute", "-x", "-q", "--lease-sec", "30", qpath])  # here: saves a spawn
    assert result.exit_code == 0, result.output
    assert TaskQueue(qpath, progress=False).is_empty()


def test_a_worker_killed_mid_step_and_a_rerun_give_identical_files(tmp_path):
    img = (np.random.default_rng(6).random((24, 24, 24)) < 0.25).astype(np.uint8)
    shape = (8, 8, 8)  # 27 tasks per step
    calm = make_layer(f"file://{tmp_path / 'calm'}", img, chunk_size=(8, 8, 8))
    run_ccl(calm, f"file://{tmp_path / 'calm_dest'}", shape, threshold_gte=1, connectivity=26)

    src = make_layer(f"file://{tmp_path / 'src'}", img, chunk_size=(8, 8, 8))
    dest = f"file://{tmp_path / 'dest'}"
    kw = dict(threshold_gte=1, connectivity=26)
    _run_with_a_kill(tc.create_ccl_face_tasks(src, 0, shape, **kw), tmp_path / "q1", after=3)
    LocalTaskQueue(parallel=1, progress=False).insert_all(tc.create_ccl_equivalence_tasks(src, 0, shape, **kw))
    create_relabeling(src, 0, shape)
    _run_with_a_kill(tc.create_ccl_relabel_tasks(src, dest, 0, shape, **kw), tmp_path / "q2", after=3)

    def files(name):
        return {k: v for k, v in tree(tmp_path / name).items() if k != "provenance"}

    assert files("src") == files("calm") and any("/ccl/faces/" in k for k in files("src"))
    assert files("dest") == files("calm_dest")
    assert_same_partition(read_layer(dest)[..., 0], oracle(img, 26))
