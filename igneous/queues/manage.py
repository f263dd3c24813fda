"""Queue management: status, wait, release, rezero, purge, cp, mv, dead letters (SPEC §1.3)."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional

from taskqueue import TaskQueue
from taskqueue.taskqueue import QueueEmptyError

from igneous.errors import InvalidParameterError
from igneous.queues.backends import open_backend
from igneous.queues.paths import normalize_queue_path

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


def _tq(queue: str) -> TaskQueue:
    return TaskQueue(normalize_queue_path(queue), progress=False)


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
    return _tq(dest).insert(_tq(src).tasks())


def move_tasks(src: str, dest: str, batch: int = 10, lease_seconds: int = 10) -> int:
    """Lease tasks from ``src`` ``batch`` at a time, insert them into ``dest``, delete them from ``src``."""
    source, target = _tq(src), _tq(dest)
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


def requeue_dead(queue: str, region_name: Optional[str] = None) -> int:
    return open_backend(queue, region_name).requeue_dead()
