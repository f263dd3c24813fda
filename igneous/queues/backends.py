"""Queue backends as the worker sees them: lease, renew, release, delete, dead-letter.

task-queue gives us transport (FileQueue, SQS). The worker needs more: how many times a
task was handed out (so a task that always fails or always kills its worker stops
circulating), and a dead-letter place that keeps the task with its last error until an
operator puts it back. Each backend provides that on its own storage:

* ``fq://DIR``: ``DIR/attempts/{id}`` (one byte per lease), ``DIR/errors/{id}`` (last
  error), ``DIR/dead/{id}.json`` (the message, its error and attempt count).
* ``sqs://NAME``: SQS's own ``ApproximateReceiveCount``; dead letters go to the queue
  ``NAME-dead-letter`` (created when first needed) as ``{"task", "error", "attempts"}``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from taskqueue import TaskQueue
from taskqueue.file_queue_api import FileQueueAPI
from taskqueue.queueables import totask

from igneous.queues.paths import normalize_queue_path

__all__ = ["Lease", "FileBackend", "SqsBackend", "open_backend", "DEAD_LETTER_SUFFIX"]

DEAD_LETTER_SUFFIX = "-dead-letter"


@dataclass
class Lease:
    task: Any  # an executable task (FunctionTask or RegisteredTask)
    id: str  # what the queue needs to renew/delete it
    attempts: int  # how many times it has been leased, this one included
    message: dict  # the stored message, for dead-lettering
    error: Optional[str] = None  # set when the message names no task this worker knows

    @property
    def name(self) -> str:
        key = getattr(self.task, "key", None)
        return key[1] if key else type(self.task).__name__


def _safe_totask(message: dict):
    try:
        return totask(message), None
    except BaseException as err:  # an unknown task name must not kill the worker
        return None, f"{type(err).__name__}: {err}"


class FileBackend:
    """A directory queue (fq://) shared by workers on a POSIX filesystem."""

    def __init__(self, path: str):
        self.path = path
        self.api = FileQueueAPI(path)
        for sub in ("attempts", "errors", "dead"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)

    # -- leasing -------------------------------------------------------------
    def lease(self, seconds: int, wait_sec: float = 0) -> Optional[Lease]:
        found = self.api.lease(int(seconds), 1, wait_sec)
        if not found:
            return None
        message = found[0]
        ident = message["id"]
        with open(os.path.join(self.path, "attempts", ident), "ab") as f:
            f.write(b"1")
            f.flush()
            attempts = f.tell()
        task, error = _safe_totask(dict(message))
        return Lease(task=task, id=ident, attempts=attempts, message=message, error=error)

    def renew(self, lease: Lease, seconds: int) -> None:
        self.api.renew_lease(lease.id, int(seconds))

    def release(self, lease: Lease, delay_seconds: int = 0) -> None:
        self.api.renew_lease(lease.id, max(0, int(delay_seconds)))

    def delete(self, lease: Lease, tally: bool = False) -> None:
        self.api.delete(lease.id)
        if tally:
            self.api.tally()
        self._forget(lease.id)

    # -- failures ------------------------------------------------------------
    def record_error(self, ident: str, error: str) -> None:
        with open(os.path.join(self.path, "errors", ident), "w") as f:
            f.write(error)

    def last_error(self, ident: str) -> Optional[str]:
        try:
            with open(os.path.join(self.path, "errors", ident)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def dead_letter(self, lease: Lease, error: str) -> None:
        record = {"task": lease.message, "error": error, "attempts": lease.attempts, "dead_at": time.time()}
        tmp = os.path.join(self.path, "dead", f".{lease.id}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(self.path, "dead", f"{lease.id}.json"))
        self.api.delete(lease.id)
        self._forget(lease.id)

    def dead_letters(self) -> List[dict]:
        out = []
        dead = os.path.join(self.path, "dead")
        for name in sorted(os.listdir(dead)):
            if name.endswith(".json"):
                with open(os.path.join(dead, name)) as f:
                    out.append({"id": name[:-5], **json.load(f)})
        return out

    def requeue_dead(self) -> int:
        """Put every dead-lettered task back with a fresh attempt count."""
        from igneous.queues.fileq import insert_file_queue

        records = self.dead_letters()
        insert_file_queue(self.path, [r["task"]["payload"] for r in records], threads=1)
        for r in records:
            os.remove(os.path.join(self.path, "dead", f"{r['id']}.json"))
        return len(records)

    def _forget(self, ident: str) -> None:
        for sub in ("attempts", "errors"):
            try:
                os.remove(os.path.join(self.path, sub, ident))
            except FileNotFoundError:
                pass

    # -- counts --------------------------------------------------------------
    def counts(self) -> Dict[str, float]:
        now = int(time.time())
        enqueued = leased = 0
        for entry in os.scandir(self.api.queue_path):
            enqueued += 1
            leased += int(entry.name.split("--")[0]) > now
        failed = sum(1 for _ in os.scandir(os.path.join(self.path, "errors")))
        dead = sum(1 for e in os.scandir(os.path.join(self.path, "dead")) if e.name.endswith(".json"))
        return {
            "inserted": self.api.inserted,
            "enqueued": enqueued,
            "leased": leased,
            "completed": self.api.completed,
            "failing": failed,
            "dead_lettered": dead,
        }

    def is_drained(self) -> bool:
        return self.api.is_empty()


class SqsBackend:
    """An AWS SQS queue (or any endpoint set by the standard AWS environment variables)."""

    def __init__(self, qurl: str, region_name: Optional[str] = None):
        kwargs = {"region_name": region_name} if region_name else {}
        self.tq = TaskQueue(qurl, progress=False, **kwargs)
        self.api = self.tq.api
        self.sqs = self.api.sqs
        self.name = qurl[len("sqs://") :] if qurl.startswith("sqs://") else qurl.rsplit("/", 1)[-1]
        self._dead_url: Optional[str] = None

    def lease(self, seconds: int, wait_sec: float = 0) -> Optional[Lease]:
        resp = self.sqs.receive_message(
            QueueUrl=self.api.qurl,
            MaxNumberOfMessages=1,
            VisibilityTimeout=int(seconds),
            WaitTimeSeconds=int(min(20, max(0, wait_sec))),
            AttributeNames=["ApproximateReceiveCount"],
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            return None
        msg = msgs[0]
        message = json.loads(msg["Body"])
        message["id"] = msg["ReceiptHandle"]
        attempts = int(msg.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        task, error = _safe_totask(dict(message))
        return Lease(task=task, id=msg["ReceiptHandle"], attempts=attempts, message=message, error=error)

    def renew(self, lease: Lease, seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.api.qurl, ReceiptHandle=lease.id, VisibilityTimeout=int(seconds)
        )

    def release(self, lease: Lease, delay_seconds: int = 0) -> None:
        self.renew(lease, max(0, int(delay_seconds)))

    def delete(self, lease: Lease, tally: bool = False) -> None:
        self.sqs.delete_message(QueueUrl=self.api.qurl, ReceiptHandle=lease.id)

    def record_error(self, ident: str, error: str) -> None:
        pass  # SQS keeps no per-message notes; the error travels with the dead letter

    def last_error(self, ident: str) -> Optional[str]:
        return None

    def _dead_queue(self) -> str:
        if self._dead_url is None:
            name = self.name + DEAD_LETTER_SUFFIX
            try:
                self._dead_url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except self.sqs.exceptions.QueueDoesNotExist:
                self._dead_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        return self._dead_url

    def dead_letter(self, lease: Lease, error: str) -> None:
        body = {
            "task": {k: v for k, v in lease.message.items() if k != "id"},
            "error": error,
            "attempts": lease.attempts,
            "dead_at": time.time(),
        }
        self.sqs.send_message(QueueUrl=self._dead_queue(), MessageBody=json.dumps(body))
        self.delete(lease)

    def dead_letters(self) -> List[dict]:
        """Peek at dead letters (they become visible again after 5 seconds)."""
        out, seen = [], set()
        for _ in range(10):
            resp = self.sqs.receive_message(
                QueueUrl=self._dead_queue(), MaxNumberOfMessages=10, VisibilityTimeout=5, WaitTimeSeconds=0
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                if m["MessageId"] not in seen:
                    seen.add(m["MessageId"])
                    out.append({"id": m["MessageId"], **json.loads(m["Body"])})
        return out

    def requeue_dead(self) -> int:
        moved = 0
        while True:
            resp = self.sqs.receive_message(
                QueueUrl=self._dead_queue(), MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                return moved
            for m in msgs:
                record = json.loads(m["Body"])
                self.sqs.send_message(QueueUrl=self.api.qurl, MessageBody=json.dumps(record["task"]))
                self.sqs.delete_message(QueueUrl=self._dead_queue(), ReceiptHandle=m["ReceiptHandle"])
                moved += 1

    def counts(self) -> Dict[str, float]:
        status = self.api.status()
        visible = int(status["ApproximateNumberOfMessages"])
        leased = int(status["ApproximateNumberOfMessagesNotVisible"])
        delayed = int(status["ApproximateNumberOfMessagesDelayed"])
        dead = float("nan")
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self._dead_queue(),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
            dead = sum(int(v) for v in attrs["Attributes"].values())
        except Exception:  # no permission to create the dead-letter queue: say unknown
            pass
        return {
            "inserted": float("nan"),
            "enqueued": visible + leased + delayed,
            "leased": leased,
            "completed": float("nan"),
            "failing": float("nan"),
            "dead_lettered": dead,
        }

    def is_drained(self) -> bool:
        """Drained = no message visible, in flight or delayed on three reads in a row
        (SQS counts are approximate; one zero is not proof, three a second apart are)."""
        for i in range(3):
            if self.api.enqueued != 0:
                return False
            if i < 2:
                time.sleep(1)
        return True


def open_backend(queue: str, region_name: Optional[str] = None):
    path = normalize_queue_path(queue)
    if path.startswith("fq://"):
        return FileBackend(path[len("fq://") :])
    if path.startswith("sqs://") or "sqs." in path:
        return SqsBackend(path, region_name)
    from igneous.errors import InvalidParameterError

    raise InvalidParameterError(f"igneous execute supports fq:// and sqs:// queues; got {queue!r}")
