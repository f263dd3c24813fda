"""Fast payloads and fast fq:// insertion produce what task-queue itself would."""

from __future__ import annotations

import functools
import json
import os

import pytest
from taskqueue import TaskQueue
from taskqueue.queueables import totask

from igneous.queues import normalize_queue_path, submit_tasks
from igneous.queues.payloads import payload_of
from igneous.tasks.image.image import DeleteTask, TouchTask


def sample_tasks(n):
    return [
        functools.partial(TouchTask, cloudpath="file:///nowhere", mip=0, shape=[8, 8, 8], offset=[8 * i, 0, 0])
        for i in range(n)
    ]


def test_payload_matches_task_queue():
    task = functools.partial(functools.partial(DeleteTask, "file:///x"), shape=[1, 2, 3], offset=[0, 0, 0], mip=1)
    ours = payload_of(task)
    theirs = totask(task).payload()
    assert ours == [list(theirs.key), list(theirs.args), theirs.kwargs, -1]


def test_payload_refuses_bad_arguments():
    with pytest.raises(TypeError):
        payload_of(functools.partial(TouchTask, cloudpath="x", mip=0, shape=[1, 1, 1], offset=[0, 0, 0], bogus=1))


def test_fast_insert_is_a_normal_file_queue(tmp_path):
    qpath = f"fq://{tmp_path / 'q'}"
    assert submit_tasks(sample_tasks(1203), queue=qpath, progress=False) == 1203
    tq = TaskQueue(qpath, progress=False)
    assert tq.inserted == 1203 and tq.enqueued == 1203
    names = os.listdir(tmp_path / "q" / "queue")
    assert all(n.startswith("0--") and n.endswith(".json") for n in names)
    ident = names[0][3:-5]
    assert (tmp_path / "q" / "movement" / ident).read_text() == names[0] + "\n"
    msg = json.loads((tmp_path / "q" / "queue" / names[0]).read_text())
    assert msg["id"] == ident and msg["payload"][0] == ["igneous.tasks.image.image", "TouchTask"]
    leased = tq.lease(seconds=30)
    assert leased.key == ("igneous.tasks.image.image", "TouchTask")
    tq.delete(leased)
    assert tq.enqueued == 1202


def test_bare_path_is_a_file_queue(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize_queue_path("q") == f"fq://{tmp_path / 'q'}"
    assert normalize_queue_path("sqs://work") == "sqs://work"
