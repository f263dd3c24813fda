"""The worker never exits 0 when work it was asked to do was silently undone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
from taskqueue import TaskQueue

import igneous.task_creation as tc
from tests.conftest import REPO, igneous_subprocess, read_layer
from tests.integration.test_downsample import random_volume
from tests.oracles import tinybrain_pyramid


def test_killed_worker_process_is_reported_and_its_task_rerun(layer, tmp_path):
    whole = random_volume((256, 256, 32), np.uint8, seed=21)
    path = layer(whole, chunk_size=(16, 16, 8))
    qpath = f"fq://{tmp_path / 'queue'}"
    tasks = tc.create_downsampling_tasks(path, num_mips=1)
    TaskQueue(qpath, progress=False).insert(tasks)
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "igneous_cli", "-p", "2", "execute", "-x", "-q", "--lease-sec", "3", qpath],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    children = []
    while time.time() < deadline and len(children) < 2:  # the worker processes, not the resource tracker
        children = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        time.sleep(0.05)
    assert len(children) == 2
    time.sleep(1.0)  # let both lease and start work
    os.kill(children[0].pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 3, stderr  # crashed: never 0
    assert "exited with code -9" in stderr
    # the survivor re-ran the killed worker's task after its lease expired: the pyramid is whole
    assert TaskQueue(qpath, progress=False).is_empty()
    expected = tinybrain_pyramid(whole, (2, 2, 1), 1, "avg")[0]
    np.testing.assert_array_equal(read_layer(path, mip=1), expected)


def test_parallel_in_process_execution(layer, tmp_path):
    whole = random_volume((128, 128, 16), np.uint16, seed=22)
    path = layer(whole, chunk_size=(16, 16, 8))
    proc = igneous_subprocess("-p", "2", "image", "downsample", path, "--num-mips", "2")
    assert proc.returncode == 0, proc.stderr
    for k, exp in enumerate(tinybrain_pyramid(whole, (2, 2, 1), 2, "avg"), start=1):
        np.testing.assert_array_equal(read_layer(path, mip=k), exp)


def test_fixup_reruns_blocks_around_points(local, layer):
    whole = random_volume((128, 128, 8), np.uint8, seed=23)
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(tc.create_downsampling_tasks, (), path, num_mips=2)
    from cloudvolume import CloudVolume

    vol = CloudVolume(path, mip=1)
    vol[0:32, 0:32, 0:8] = np.zeros((32, 32, 8, 1), dtype=np.uint8)  # damage one mip-1 chunk
    tasks = tc.create_fixup_downsample_tasks(path, points=[(5, 5, 3)], shape=(128, 128, 8))
    assert len(tasks) == 1
    local.run(lambda: tasks, ())
    for k, exp in enumerate(tinybrain_pyramid(whole, (2, 2, 1), 2, "avg"), start=1):
        np.testing.assert_array_equal(read_layer(path, mip=k), exp)


def test_lease_keeper_holds_a_task_beyond_its_lease(tmp_path):
    """While the keeper runs, a second worker cannot lease the task; afterwards it can."""
    from igneous.queues.backends import FileBackend
    from igneous.queues.worker import LeaseKeeper

    backend = FileBackend(str(tmp_path / "q"), create=True)
    TaskQueue(f"fq://{tmp_path / 'q'}", progress=False).insert(
        [
            {
                "payload": [
                    ["igneous.tasks.image.image", "TouchTask"],
                    [],
                    {"cloudpath": "file:///nowhere", "mip": 0, "shape": [1, 1, 1], "offset": [0, 0, 0]},
                    -1,
                ]
            }
        ]
    )
    lease = backend.lease(2)
    keeper = LeaseKeeper(backend, 2)
    with keeper.holding(lease):
        deadline = time.time() + 6
        while time.time() < deadline:
            assert backend.lease(2) is None  # still leased: a second worker gets nothing
            time.sleep(0.5)
    keeper.close()
    time.sleep(2.5)  # once the keeper stops, the lease lapses and the task is available again
    again = backend.lease(2)
    assert again is not None and again.attempts == 2
