"""Queue URLs: a bare path is a file queue (``fq://``), as SPEC §1.1 says."""

from __future__ import annotations

import os

__all__ = ["normalize_queue_path", "check_insertable", "is_file_queue"]

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
    """True when ``directory`` holds a python-task-queue FileQueue (its ``queue/`` folder)."""
    return os.path.isdir(os.path.join(directory, "queue"))


def check_insertable(queue: str, region_name=None) -> str:
    """The normalized queue, once it is known that tasks can be inserted into it.

    Called before a planner writes anything (two-phase planning): an fq:// path must be a
    queue, an empty or new directory whose parent is writable — never a file, a layer or
    another non-empty directory; an sqs:// queue must answer. Only inserting commands may
    create a queue.
    """
    from igneous.errors import InvalidParameterError

    path = normalize_queue_path(queue)
    if path.startswith("fq://"):
        directory = path[len("fq://") :]
        if os.path.isfile(directory):
            raise InvalidParameterError(f"queue {queue} is a file; give a directory (a new one is created)")
        if os.path.isdir(directory):
            if not is_file_queue(directory) and os.listdir(directory):
                what = "a layer" if os.path.exists(os.path.join(directory, "info")) else "a non-empty directory"
                raise InvalidParameterError(f"queue {queue} is {what}, not a queue; give a new or empty directory")
            if not os.access(directory, os.W_OK | os.X_OK):
                raise InvalidParameterError(f"queue {queue} is not writable")
            return path
        parent = os.path.dirname(directory.rstrip("/")) or "/"
        while not os.path.exists(parent):
            parent = os.path.dirname(parent.rstrip("/")) or "/"
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise InvalidParameterError(f"queue {queue} cannot be created: {parent} is not a writable directory")
        return path
    from igneous.queues.backends import open_backend

    try:
        open_backend(path, region_name)
    except InvalidParameterError:
        raise
    except Exception as err:
        raise InvalidParameterError(f"queue {queue} cannot be reached: {type(err).__name__}: {err}") from None
    return path

