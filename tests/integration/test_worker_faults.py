"""Fault tests on a real fq:// queue with real `igneous execute` processes: nothing lost,
nothing run twice, failures dead-lettered with their errors, honest exit codes."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

from taskqueue import TaskQueue

from igneous.queues import submit_tasks
from igneous.queues.backends import FileBackend
from tests.conftest import REPO
from tests.worker_tasks import FailTask, count_tasks, executions


def worker(qpath, *args, parallel=1):
    env = dict(os.environ, PYTHONPATH=REPO, IGNEOUS_TASK_MODULES="tests.worker_tasks")
    cmd = [sys.executable, "-m", "igneous_cli", "-p", str(parallel), "execute", *args, qpath]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_always_failing_task_is_dead_lettered_and_the_rest_complete(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 20) + [functools.partial(FailTask, message="bad input in block 7")], queue=qpath)
    proc = worker(qpath, "-x", "--lease-sec", "10", "--max-attempts", "3")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # tasks failed
    assert executions(logs) == {f"t{i:05d}": 1 for i in range(20)}
    backend = FileBackend(str(tmp_path / "q"))
    [dead] = backend.dead_letters()
    assert dead["attempts"] == 3 and "bad input in block 7" in dead["error"]
    assert dead["task"]["payload"][0] == ["tests.worker_tasks", "FailTask"]
    assert TaskQueue(qpath, progress=False).is_empty()
    assert err.count("outcome=failed") == 2 and err.count("outcome=dead_lettered") == 1
    # after a fix, the operator puts it back
    assert backend.requeue_dead() == 1 and backend.dead_letters() == []
    assert TaskQueue(qpath, progress=False).enqueued == 1


def test_task_three_times_its_lease_runs_exactly_once(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 1, seconds=6), queue=qpath)
    first = worker(qpath, "-x", "--lease-sec", "2")
    time.sleep(1.5)
    second = worker(qpath, "-x", "--lease-sec", "2")  # would steal the task if the lease lapsed
    for proc in (first, second):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert executions(logs) == {"t00000": 1}


def test_sigterm_during_a_task_finishes_it(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 3, seconds=2), queue=qpath)
    proc = worker(qpath, "--lease-sec", "30")
    _wait_for_lease(tmp_path / "q")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err  # stopped by signal
    done = executions(logs)
    tq = TaskQueue(qpath, progress=False)
    assert len(done) + tq.enqueued == 3 and tq.leased == 0  # finished or released: never lost
    assert len(done) >= 1


def test_sigterm_past_the_grace_period_releases_the_task(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 1, seconds=60), queue=qpath)
    proc = worker(qpath, "--lease-sec", "300", "--grace-sec", "1")
    _wait_for_lease(tmp_path / "q")
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 20  # bounded, not the task's 60 s
    assert proc.returncode == 5, err
    tq = TaskQueue(qpath, progress=False)
    assert tq.enqueued == 1 and tq.leased == 0  # released for another worker right away
    assert executions(logs) == {}


def test_four_workers_two_thousand_tasks_each_once(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 2000), queue=qpath)
    proc = worker(qpath, "-x", "-q", "--lease-sec", "60", parallel=4)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    done = executions(logs)
    assert len(done) == 2000 and set(done.values()) == {1}
    tq = TaskQueue(qpath, progress=False)
    assert tq.is_empty() and tq.completed == 2000 and tq.inserted == 2000


def _wait_for_lease(qdir, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = time.time()
        if any(int(name.split("--")[0]) > now for name in os.listdir(qdir / "queue")):
            time.sleep(0.3)
            return
        time.sleep(0.05)
    raise AssertionError("no task was leased")
