"""Send tasks to a queue, or run them here and now."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing as mp
import os
from typing import Iterable, Optional

from taskqueue import LocalTaskQueue, TaskQueue
from taskqueue.queueables import totask
from tqdm import tqdm

from igneous.errors import InvalidParameterError
from igneous.queues.fileq import insert_file_queue
from igneous.queues.paths import check_file_queue, normalize_queue_path
from igneous.queues.payloads import payloads
from igneous.remote import resolve_sqs

__all__ = ["submit_tasks", "run_in_process", "execute_payload", "check_queue_for_insertion"]

log = logging.getLogger(__name__)


def _count(tasks) -> Optional[int]:
    try:
        return len(tasks)
    except TypeError:
        return None


def submit_tasks(tasks: Iterable, queue: Optional[str] = None, parallel: int = 1, progress: bool = True) -> int:
    """Insert ``tasks`` into ``queue`` (fq://, sqs://, or a directory); without a queue run them now.

    Returns the number of tasks inserted or executed.
    """
    if queue is None:
        return run_in_process(tasks, parallel=parallel, progress=progress)
    queue = normalize_queue_path(queue)
    check_queue_for_insertion(queue)
    if queue.startswith("fq://"):
        return insert_file_queue(queue[len("fq://") :], payloads(tasks))
    tq = TaskQueue(queue, progress=progress)
    bodies = ({"payload": p} for p in payloads(tasks))
    return tq.insert(bodies, parallel=1, total=_count(tasks))


def check_queue_for_insertion(queue: str, region_name: Optional[str] = None) -> str:
    """The normalized queue, once it is known that tasks can be inserted into it.

    Called while the command line is parsed, before a planner writes anything (two-phase
    planning). Refuses, in one line and within seconds, a path that is a file or a directory
    holding something else (a layer), a new queue whose parent is not writable, and an SQS
    queue that does not exist, is unreachable or has no credentials. Only inserting commands
    may create a (file) queue.
    """
    queue = normalize_queue_path(queue)
    if queue.startswith("fq://"):
        directory = queue[len("fq://") :]
        check_file_queue(directory, create=True)
        probe = directory.rstrip("/") or "/"
        while not os.path.exists(probe):
            probe = os.path.dirname(probe) or "/"
        if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
            raise InvalidParameterError(f"queue {directory} cannot be written: {probe} is not a writable directory")
    elif queue.startswith("sqs://") or "sqs." in queue:
        resolve_sqs(queue, region_name)
    return queue


def execute_payload(payload) -> None:
    """Run one serialized task (module-level so spawned processes can call it)."""
    import igneous.tasks  # noqa: F401  (registers every task name in this process)

    totask(payload).execute()


def run_in_process(tasks: Iterable, parallel: int = 1, progress: bool = True) -> int:
    """Execute tasks here. Each task round-trips through its queue payload first, exactly as
    a queue would carry it, so a task that cannot be queued fails here too.

    ``parallel > 1`` uses spawned processes (no fork: libraries with threads deadlock
    after fork); the first failing task's exception is raised after the others finish.
    """
    total = _count(tasks)
    if parallel <= 1:
        ltq = LocalTaskQueue(parallel=1, progress=progress)
        return ltq.insert_all(tasks)

    ctx = mp.get_context("spawn")
    done = 0
    first_error: Optional[BaseException] = None
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
        with tqdm(total=total, desc="Tasks", disable=not progress) as pbar:
            pending = set()
            for payload in payloads(tasks):
                pending.add(pool.submit(execute_payload, payload))
                if len(pending) >= parallel * 4:
                    finished, pending = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
                    done, first_error = _collect(finished, done, first_error, pbar)
            finished, _ = concurrent.futures.wait(pending)
            done, first_error = _collect(finished, done, first_error, pbar)
    if first_error is not None:
        raise first_error
    return done


def _collect(finished, done, first_error, pbar):
    for fut in finished:
        err = fut.exception()
        if err is not None:
            log.error("task failed: %s", err)
            first_error = first_error or err
        else:
            done += 1
        pbar.update(1)
    return done, first_error
