"""Queue URLs: a bare path is a file queue (``fq://``), as SPEC §1.1 says."""

from __future__ import annotations

import os

__all__ = ["normalize_queue_path", "check_file_queue", "is_file_queue"]

QUEUE_PROTOCOLS = ("fq://", "sqs://", "pubsub://", "https://", "http://")


def normalize_queue_path(queue: str) -> str:
    """``sqs://x`` and ``fq://x`` pass through; anything else is a local directory → ``fq://<abs>``."""
    queue = str(queue)
    if queue.startswith(QUEUE_PROTOCOLS):
        if queue.startswith("fq://") and not queue.startswith("fq:///"):
            return "fq://" + os.path.abspath(queue[len("fq://") :])
        return queue
    if "://" in queue:
        from igneous.errors import InvalidParameterError

        raise InvalidParameterError(f"queue must be fq://PATH, sqs://NAME or a directory; got {queue!r}")
    return "fq://" + os.path.abspath(os.path.expanduser(queue))


def is_file_queue(directory: str) -> bool:
    """A directory task-queue's FileQueue made (it has a ``queue/`` directory of messages)."""
    return os.path.isdir(os.path.join(directory, "queue"))


def check_file_queue(directory: str, create: bool = False) -> None:
    """Refuse (``InvalidParameterError``, one line) a file-queue location that a command must
    not use. Only commands that insert tasks may create a queue (``create=True``): the others
    need an existing queue, so a mistyped path is an error, not a new empty queue. Nothing may
    turn a file, or a directory that holds something else (a layer), into a queue."""
    from igneous.errors import InvalidParameterError

    if os.path.isfile(directory):
        raise InvalidParameterError(f"queue {directory} is a file, not a queue directory")
    if is_file_queue(directory):
        return
    if not os.path.exists(directory):
        if create:
            return
        raise InvalidParameterError(
            f"no queue at {directory} (only commands that insert tasks create a queue; check the path)"
        )
    if os.listdir(directory) or not create:
        raise InvalidParameterError(f"{directory} is a directory but not a task queue (it has no queue/ directory)")
