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
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from taskqueue.file_queue_api import FileQueueAPI, idfn, nowfn, set_timestamp, write_lock_file
from taskqueue.queueables import totask

from igneous.queues.fileq import insert_file_queue
from igneous.queues.paths import check_file_queue, normalize_queue_path

__all__ = ["Lease", "FileBackend", "SqsBackend", "open_backend", "DEAD_LETTER_SUFFIX"]

DEAD_LETTER_SUFFIX = "-dead-letter"

log = logging.getLogger(__name__)


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
    """The task a message names, or ``(None, reason)``: a message this worker cannot run (not a
    task, an unregistered function or class) is dead-lettered on its first lease."""
    from taskqueue.queueablefns import REGISTRY

    try:
        task = totask(message)
    except BaseException as err:  # UnregisteredFunctionError is a BaseException
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        return None, f"{type(err).__name__}: {err}"
    key = getattr(task, "key", None)
    if key is not None and tuple(key) not in REGISTRY:  # FunctionTask looks its function up only when run
        return None, (
            f"UnregisteredFunctionError: {tuple(key)} is not a registered task (a typo, or a module "
            "missing from IGNEOUS_TASK_MODULES)"
        )
    return task, None


class FileBackend:
    """A directory queue (fq://) shared by workers on a POSIX filesystem."""

    def __init__(self, path: str, create: bool = False):
        check_file_queue(path, create=create)
        self.path = path
        self.api = FileQueueAPI(path)
        for sub in ("attempts", "errors", "dead"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)

    # -- leasing -------------------------------------------------------------
    def lease(self, seconds: int, wait_sec: float = 0) -> Optional[Lease]:
        found = self._lease_one(int(seconds))
        if found is None:
            return None
        ident, message, error = found
        with open(os.path.join(self.path, "attempts", ident), "ab") as f:
            f.write(b"1")
            f.flush()
            attempts = f.tell()
        if error is None:
            task, error = _safe_totask(dict(message))
        else:
            task = None
        return Lease(task=task, id=ident, attempts=attempts, message=message, error=error)

    def _lease_one(self, seconds: int) -> Optional[Tuple[str, dict, Optional[str]]]:
        """Lease one available message: like FileQueueAPI.lease, but it stops reading the
        directory at the first few available names instead of sorting through 250 per lease."""
        now = int(time.time())
        candidates = []
        with os.scandir(self.api.queue_path) as entries:
            for entry in entries:
                if int(entry.name.split("--", 1)[0]) <= now:
                    candidates.append(entry.name)
                    if len(candidates) >= 16:
                        break
        random.shuffle(candidates)  # workers that read the same directory spread out
        for name in candidates:
            ident = name.split("--", 1)[1][: -len(".json")] if name.endswith(".json") else name.split("--", 1)[1]
            try:
                leased = self._lease_filename(name, seconds)
            except OSError:
                continue
            if leased is None:
                continue
            try:
                message = json.loads(leased)
            except ValueError as err:  # leased, but not JSON: hand it over to be dead-lettered
                body = leased.decode("utf-8", errors="replace")[:65536]
                return ident, {"body": body, "id": ident}, f"not a JSON task message: {err}"
            if not isinstance(message, dict) or "id" not in message:
                body = message if isinstance(message, (str, list)) else json.dumps(message)
                return ident, {"body": body, "id": ident}, "not a task message (a JSON object with payload and id)"
            return message["id"], message, None
        return None

    def _lease_filename(self, name: str, seconds: int) -> Optional[bytes]:
        """Lease the message file ``name`` (rename it to its lease end, journal the rename)
        and return its bytes; None if another worker got it first. task-queue's version
        retries a message that does not parse by renaming the original name again, which is
        gone, so it reports "taken" and leaves the message leased for ever."""
        new_name = set_timestamp(name, nowfn() + int(seconds))
        new_path = os.path.join(self.api.queue_path, new_name)
        journal = write_lock_file(open(os.path.join(self.api.movement_path, idfn(new_name)), "a"))
        try:
            try:
                os.rename(os.path.join(self.api.queue_path, name), new_path)
            except FileNotFoundError:
                return None
            journal.write(new_name + "\n")
            journal.flush()
        finally:
            journal.close()  # unlocks
        with open(new_path, "rb") as f:
            return f.read()

    def renew(self, lease: Lease, seconds: int) -> None:
        self.api.renew_lease(lease.id, int(seconds))

    def release(self, lease: Lease, delay_seconds: int = 0) -> None:
        self.api.renew_lease(lease.id, max(0, int(delay_seconds)))

    def delete(self, lease: Lease, tally: bool = False) -> None:
        self.api.delete(lease.id)
        if tally:
            self.api.tally()
        self._forget(lease)

    # -- failures ------------------------------------------------------------
    def record_error(self, ident: str, error: str) -> None:
        with open(os.path.join(self.path, "errors", ident), "w") as f:
            f.write(error)
        with open(os.path.join(self.path, "failures"), "ab") as f:  # one byte per failed attempt
            f.write(b"1")

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
        self._forget(lease)

    def dead_letters(self) -> List[dict]:
        out = []
        dead = os.path.join(self.path, "dead")
        for name in sorted(os.listdir(dead)):
            if name.endswith(".json"):
                with open(os.path.join(dead, name)) as f:
                    out.append({"id": name[:-5], **json.load(f)})
        return out

    def requeue_dead(self) -> int:
        """Put every dead-lettered task back with a fresh attempt count. Messages that were
        not tasks at all (kept as ``body``) stay dead: no worker could run them."""
        records = [r for r in self.dead_letters() if isinstance(r.get("task"), dict) and "payload" in r["task"]]
        insert_file_queue(self.path, [r["task"]["payload"] for r in records], threads=1)
        for r in records:
            os.remove(os.path.join(self.path, "dead", f"{r['id']}.json"))
        return len(records)

    def _forget(self, lease: Lease) -> None:
        # an error note can only exist if an earlier attempt failed: skip the syscall otherwise
        for sub in ("attempts", "errors") if lease.attempts > 1 or lease.error else ("attempts",):
            try:
                os.remove(os.path.join(self.path, sub, lease.id))
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
        try:
            failed_attempts = os.path.getsize(os.path.join(self.path, "failures"))
        except FileNotFoundError:
            failed_attempts = 0
        return {
            "inserted": self.api.inserted,
            "enqueued": enqueued,
            "leased": leased,
            "completed": self.api.completed,
            "failing": failed,
            "failed_attempts": failed_attempts,
            "dead_lettered": dead,
        }

    def is_drained(self) -> bool:
        return self.api.is_empty()


class _SqsQueue:
    """The queue URL and its approximate counts (what task-queue's AWS API gave us)."""

    def __init__(self, sqs, qurl: str):
        self.sqs, self.qurl = sqs, qurl

    def status(self) -> Dict[str, str]:
        return self.sqs.get_queue_attributes(
            QueueUrl=self.qurl,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]

    @property
    def enqueued(self) -> int:
        return sum(int(v) for v in self.status().values())


class SqsBackend:
    """An AWS SQS queue (or any endpoint set by the standard AWS environment variables:
    ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_SQS``, or ``SQS_ENDPOINT_URL``, SPEC §1.1)."""

    def __init__(self, qurl: str, region_name: Optional[str] = None):
        from igneous.remote import resolve_sqs, sqs_client

        # found in seconds or refused in one line (no credentials, unreachable, no such queue)
        self.name, url = resolve_sqs(qurl, region_name)
        self.sqs = sqs_client(region_name)
        self.api = _SqsQueue(self.sqs, url)
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
        attempts = int(msg.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        try:
            message = json.loads(msg["Body"])
            if not isinstance(message, dict):
                raise ValueError("the message body is not a JSON object")
        except ValueError as err:  # a foreign message must not kill the worker: dead-letter it in time
            message = {"body": msg["Body"], "id": msg["ReceiptHandle"]}
            return Lease(task=None, id=msg["ReceiptHandle"], attempts=attempts, message=message, error=f"{err}")
        message["id"] = msg["ReceiptHandle"]
        task, error = _safe_totask(dict(message))
        return Lease(task=task, id=msg["ReceiptHandle"], attempts=attempts, message=message, error=error)

    def renew(self, lease: Lease, seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.api.qurl, ReceiptHandle=lease.id, VisibilityTimeout=int(seconds)
        )

    def release(self, lease: Lease, delay_seconds: int = 0) -> None:
        from botocore.exceptions import ClientError

        try:
            self.renew(lease, max(0, int(delay_seconds)))
        except ClientError as err:  # e.g. the lease already lapsed: SQS hands the task out again anyway
            log.warning("could not release %s: %s", lease.id[:36], err)

    def delete(self, lease: Lease, tally: bool = False) -> None:
        self.sqs.delete_message(QueueUrl=self.api.qurl, ReceiptHandle=lease.id)

    def record_error(self, ident: str, error: str) -> None:
        pass  # SQS keeps no per-message notes; the error travels with the dead letter

    def last_error(self, ident: str) -> Optional[str]:
        return None

    def _dead_queue(self, create: bool = True) -> Optional[str]:
        """The dead-letter queue's URL; None when it does not exist and ``create`` is False."""
        if self._dead_url is None:
            name = self.name + DEAD_LETTER_SUFFIX
            try:
                self._dead_url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except self.sqs.exceptions.QueueDoesNotExist:
                if not create:
                    return None
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

    def dead_letters(self, limit: int = 100) -> List[dict]:
        """Peek at up to ``limit`` dead letters. SQS can only list by receiving, so the peeked
        messages are made visible again before returning (a requeue right after sees them)."""
        url = self._dead_queue(create=False)
        if url is None:
            return []
        out: List[dict] = []
        handles: Dict[str, str] = {}
        try:
            while len(handles) < limit:
                resp = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1
                )
                msgs = [m for m in resp.get("Messages", []) if m["MessageId"] not in handles]
                if not msgs:
                    break
                for m in msgs:
                    handles[m["MessageId"]] = m["ReceiptHandle"]
                    out.append({"id": m["MessageId"], **json.loads(m["Body"])})
        finally:
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles.values())
            ]
            for i in range(0, len(entries), 10):
                self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries[i : i + 10])
        return out

    def requeue_dead(self) -> int:
        """Put every dead-lettered task back in the queue (SQS gives it a fresh receive count)."""
        url = self._dead_queue(create=False)
        if url is None:
            return 0
        moved = 0
        while True:
            # long poll: a short poll samples a few SQS servers and can miss messages that exist
            resp = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=1
            )
            msgs = resp.get("Messages", [])
            if not msgs:
                return moved
            for m in msgs:
                task = json.loads(m["Body"])["task"]
                body = task["body"] if set(task) == {"body"} else json.dumps(task)  # a foreign body goes back as it was
                self.sqs.send_message(QueueUrl=self.api.qurl, MessageBody=body)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                moved += 1

    def counts(self) -> Dict[str, float]:
        status = self.api.status()
        visible = int(status["ApproximateNumberOfMessages"])
        leased = int(status["ApproximateNumberOfMessagesNotVisible"])
        delayed = int(status["ApproximateNumberOfMessagesDelayed"])
        dead: float = float("nan")
        try:
            url = self._dead_queue(create=False)  # a status read creates nothing
            if url is None:
                dead = 0
            else:
                attrs = self.sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )
                dead = sum(int(v) for v in attrs["Attributes"].values())
        except Exception:  # no permission to read the dead-letter queue: say unknown
            pass
        return {
            "inserted": float("nan"),
            "enqueued": visible + leased + delayed,
            "leased": leased,
            "completed": float("nan"),
            "failing": float("nan"),
            "failed_attempts": float("nan"),
            "dead_lettered": dead,
        }

    def is_drained(self) -> bool:
        """Drained = no message visible, in flight or delayed on three reads in a row
        (SQS counts are approximate; one zero is not proof, three in a row are)."""
        for i in range(3):
            if self.api.enqueued != 0:
                return False
            if i < 2:
                time.sleep(0.5)
        return True


def open_backend(queue: str, region_name: Optional[str] = None):
    """The backend of an existing queue (a missing one is refused: only insertion creates queues)."""
    path = normalize_queue_path(queue)
    if path.startswith("fq://"):
        return FileBackend(path[len("fq://") :])
    if path.startswith("sqs://") or "sqs." in path:
        return SqsBackend(path, region_name)
    from igneous.errors import InvalidParameterError

    raise InvalidParameterError(f"igneous execute supports fq:// and sqs:// queues; got {queue!r}")
