"""Queue URLs: a bare path is a file queue (``fq://``), as SPEC §1.1 says."""

from __future__ import annotations

import os

__all__ = ["normalize_queue_path"]

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
