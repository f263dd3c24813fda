"""`igneous queue ...` on a real fq:// queue."""

from __future__ import annotations

import functools
import os

from click.testing import CliRunner
from taskqueue import TaskQueue

from igneous.queues import submit_tasks
from igneous_cli import main
from tests.conftest import REPO
from tests.worker_tasks import FailTask, count_tasks


def run(*args, code=0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_status_release_rezero_purge(tmp_path):
    q = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(tmp_path, 5), queue=q)
    tq = TaskQueue(q, progress=False)
    tq.lease(seconds=600)
    out = run("queue", "status", q)
    assert "Inserted: 5" in out and "Enqueued: 5" in out and "Leased: 1" in out and "Dead-lettered: 0" in out
    run("queue", "release", q)
    assert tq.leased == 0
    run("queue", "rezero", q)
    assert tq.inserted == 0
    run("queue", "purge", q)
    assert tq.enqueued == 0


def test_cp_and_mv(tmp_path):
    a, b, c = (f"fq://{tmp_path / n}" for n in "abc")
    submit_tasks(count_tasks(tmp_path, 7), queue=a)
    assert "copied 7" in run("queue", "cp", a, b)
    assert TaskQueue(a, progress=False).enqueued == 7 and TaskQueue(b, progress=False).enqueued == 7
    assert "moved 7" in run("queue", "mv", b, c)
    assert TaskQueue(b, progress=False).enqueued == 0 and TaskQueue(c, progress=False).enqueued == 7


def test_dead_letters_listed_and_requeued(tmp_path, monkeypatch):
    q = f"fq://{tmp_path / 'q'}"
    submit_tasks([functools.partial(FailTask, message="disk full")], queue=q)
    monkeypatch.setenv("PYTHONPATH", REPO)
    monkeypatch.setenv("IGNEOUS_TASK_MODULES", "tests.worker_tasks")
    run("execute", "-x", "--max-attempts", "1", q, code=1)
    out = run("queue", "status", q)
    assert "Dead-lettered: 1" in out and "Enqueued: 0" in out and "Failed attempts: 1" in out
    out = run("queue", "dead", q)
    assert "FailTask" in out and "disk full" in out and "1 dead-lettered" in out
    assert "requeued 1" in run("queue", "dead", q, "--requeue")
    assert TaskQueue(q, progress=False).enqueued == 1
    assert "0 dead-lettered" in run("queue", "dead", q)


def test_wait_returns_once_empty(tmp_path):
    q = f"fq://{tmp_path / 'q'}"
    os.makedirs(tmp_path / "q", exist_ok=True)
    TaskQueue(q, progress=False)
    run("queue", "wait", q, "--rate", "0.1")


def test_release_refused_on_sqs_style_paths_is_one_line(tmp_path):
    out = run("queue", "cp", "sqs://nowhere-queue", f"fq://{tmp_path / 'x'}", code=2)
    assert "fq://" in out
