"""Queue management: status, wait, release, rezero, purge, cp, mv, dead letters (SPEC §1.3)."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional

from taskqueue import TaskQueue
from taskqueue.taskqueue import QueueEmptyError

from igneous.errors import InvalidParameterError
from igneous.queues.backends import open_backend
from igneous.queues.paths import check_file_queue, normalize_queue_path
from igneous.remote import resolve_sqs

__all__ = [
    "counts",
    "wait_until_empty",
    "release_all",
    "rezero",
    "purge",
    "copy_tasks",
    "move_tasks",
    "dead_letters",
    "requeue_dead",
    "task_name",
]


def counts(queue: str, region_name: Optional[str] = None) -> Dict[str, float]:
    """inserted, enqueued, leased, completed, failing (tasks whose last attempt failed),
    dead_lettered; NaN where the backend keeps no such count (SQS: inserted, completed)."""
    return open_backend(queue, region_name).counts()


def wait_until_empty(
    queue: str, rate: float = 30.0, region_name: Optional[str] = None, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Block until the queue is drained; SQS is drained only when it stays empty on
    consecutive reads (its counts are approximate)."""
    backend = open_backend(queue, region_name)
    while not backend.is_drained():
        sleep(rate)


def _tq(queue: str, create: bool = False, region_name: Optional[str] = None) -> TaskQueue:
    """task-queue's handle on ``queue``, after checking it is there. task-queue creates a file
    queue wherever it is pointed, so a mistyped path would become a new, empty, "healthy"
    queue: only commands that insert tasks may create one (``create=True``)."""
    path = normalize_queue_path(queue)
    if path.startswith("fq://"):
        check_file_queue(path[len("fq://") :], create=create)
    elif path.startswith("sqs://") or "sqs." in path:
        resolve_sqs(path, region_name)  # seconds, one line: no credentials, unreachable, absent
    return TaskQueue(path, progress=False)


def release_all(queue: str) -> None:
    path = normalize_queue_path(queue)
    if not path.startswith("fq://"):
        raise InvalidParameterError("release works on fq:// queues; SQS returns a task when its lease lapses")
    _tq(path).release_all()


def rezero(queue: str) -> None:
    _tq(queue).rezero()


def purge(queue: str) -> None:
    _tq(queue).purge()


def copy_tasks(src: str, dest: str) -> int:
    """Insert every task of ``src`` into ``dest`` (``src`` keeps them)."""
    src = normalize_queue_path(src)
    if not src.startswith("fq://"):
        raise InvalidParameterError("queue cp reads an fq:// source; SQS cannot be listed without leasing (use mv)")
    source = _tq(src)
    return _tq(dest, create=True).insert(source.tasks())


def move_tasks(src: str, dest: str, batch: int = 10, lease_seconds: int = 10) -> int:
    """Lease tasks from ``src`` ``batch`` at a time, insert them into ``dest``, delete them from ``src``."""
    source = _tq(src)
    target = _tq(dest, create=True)
    moved = 0
    while True:
        try:
            tasks = source.lease(seconds=lease_seconds, num_tasks=batch)
        except QueueEmptyError:
            return moved
        tasks = tasks if isinstance(tasks, list) else [tasks]
        target.insert(tasks)
        for task in tasks:
            source.delete(task)
        moved += len(tasks)


def dead_letters(queue: str, region_name: Optional[str] = None) -> list:
    return open_backend(queue, region_name).dead_letters()


def task_name(task) -> str:
    """The task a stored message names (class or function), ``"?"`` for anything else (a
    dead letter can hold a message that was never a task: a string, a foreign body)."""
    payload = task.get("payload", task) if isinstance(task, dict) else task
    if isinstance(payload, list) and payload and isinstance(payload[0], (list, tuple)) and len(payload[0]) == 2:
        return str(payload[0][1])
    if isinstance(payload, dict) and "class" in payload:
        return str(payload["class"])
    return "?"


def requeue_dead(queue: str, region_name: Optional[str] = None) -> int:
    return open_backend(queue, region_name).requeue_dead()
