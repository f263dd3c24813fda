"""Fast insertion into a file queue (``fq://``).

Writes exactly the files task-queue's ``FileQueueAPI`` writes — ``queue/0--{id}.json``
holding ``{"payload", "queueName", "id"}``, ``movement/{id}`` journalling the name, and the
``insertions`` counter — so its workers (ours and everyone's) lease them unchanged. It
differs only in speed: orjson and two writer threads instead of per-task signature
checks and forty threads contending for the GIL (~1k tasks/s → over 5k tasks/s).
"""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from typing import Iterable

import orjson
from taskqueue.file_queue_api import FileQueueAPI
from taskqueue.lib import sip

__all__ = ["insert_file_queue"]

BATCH = 500


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _insert_batch(api: FileQueueAPI, queue_name: str, batch) -> int:
    for payload in batch:
        ident = str(uuid.uuid4())
        filename = f"0--{ident}.json"
        body = orjson.dumps(
            {"payload": payload, "queueName": queue_name, "id": ident}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        _write(os.path.join(api.queue_path, filename), body)
        _write(os.path.join(api.movement_path, ident), (filename + "\n").encode())
    return len(batch)


def insert_file_queue(path: str, payloads: Iterable, threads: int = 2) -> int:
    """Insert payloads into the file queue at directory ``path``; returns how many."""
    api = FileQueueAPI(path)
    total = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        pending = set()
        for batch in sip(payloads, BATCH):
            pending.add(pool.submit(_insert_batch, api, path, batch))
            if len(pending) >= threads * 2:  # bounded: memory stays flat in the number of tasks
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                total += sum(f.result() for f in done)
        total += sum(f.result() for f in concurrent.futures.as_completed(pending))
    if not os.path.exists(api.insertions_path):
        # add_insert_count reads the counter with retries and sleeps ~1 s when it is missing
        _write(api.insertions_path, b"0")
    api.add_insert_count(total)
    return total
