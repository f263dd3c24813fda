"""Re-running any skeleton task writes the same bytes; a worker killed in the middle of a merge
(fq:// + `igneous execute`) loses nothing: the rerun gives the output of a clean run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from taskqueue import TaskQueue

import igneous.task_creation as tc
from igneous.queues import submit_tasks
from tests.conftest import REPO, igneous_subprocess, make_layer, tree
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET, run

SHAPE = (40, 40, 32)


@pytest.fixture(scope="module")
def small(skel_crop):
    return np.asfortranarray(skel_crop[:64, :64, :48])


@pytest.fixture
def layer(tmp_path, small):
    return make_layer(
        f"file://{tmp_path / 'seg'}", small, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def skel_tree(path: str) -> dict:
    return tree(path[len("file://") :] + "/skeletons_mip_0")


def test_forge_and_merge_rerun_write_the_same_bytes(layer):
    tasks = list(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, dust_threshold=200))
    run(tasks)
    forged = skel_tree(layer)
    run(tasks)  # the same task objects again, as a retried queue would
    assert skel_tree(layer) == forged
    merge = tc.create_unsharded_skeleton_merge_tasks(layer, magnitude=1, dust_threshold=500, tick_threshold=0)
    run(merge)
    merged = skel_tree(layer)
    assert len(merged) > len(forged)
    run(merge)
    assert skel_tree(layer) == merged


def test_sharded_forge_and_merge_rerun_write_the_same_bytes(layer):
    tasks = list(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, dust_threshold=200, sharded=True))
    run(tasks)
    forged = skel_tree(layer)
    run(tasks)
    assert skel_tree(layer) == forged
    merge = tc.create_sharded_skeleton_merge_tasks(layer, 500, 0, max_labels_per_shard=8)
    run(merge)
    merged = skel_tree(layer)
    run(merge)
    assert skel_tree(layer) == merged


def _worker(qpath: str, *args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "igneous_cli", "execute", *args, qpath]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_worker_killed_mid_merge_then_rerun_gives_the_clean_output(layer, tmp_path):
    run(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, dust_threshold=200, sharded=True))
    clean = f"file://{tmp_path / 'clean'}"
    shutil.copytree(layer[len("file://") :], tmp_path / "clean")
    run(tc.create_sharded_skeleton_merge_tasks(clean, 500, 0, max_labels_per_shard=4))
    expected = skel_tree(clean)

    qdir = tmp_path / "queue"
    qpath = f"fq://{qdir}"
    tasks = tc.create_sharded_skeleton_merge_tasks(layer, 500, 0, max_labels_per_shard=4)
    assert len(tasks) >= 4
    submit_tasks(tasks, queue=qpath)
    proc = _worker(qpath, "--lease-sec", "4")
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once it has finished some shards and holds one
        done = len([n for n in skel_tree(layer) if n.endswith(".shard")])
        leased = any(int(n.split("--")[0]) > time.time() for n in os.listdir(qdir / "queue"))
        if done >= 1 and leased:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert TaskQueue(qpath, progress=False).enqueued > 0, "the worker finished before it could be killed"
    time.sleep(4.5)  # the killed worker's lease expires
    again = igneous_subprocess("execute", "-x", "-q", "--lease-sec", "30", qpath)
    assert again.returncode == 0, again.stderr[-2000:]
    assert TaskQueue(qpath, progress=False).is_empty()
    assert skel_tree(layer) == expected
