"""``igneous execute``: lease, run, delete — and say honestly how it went.

Unlike the classic poll loop, a failing task does not kill the worker: it is logged with
its error and left leased, so it returns to the queue when the lease expires, and the
worker moves on. The exit code says what happened (see ``ExitCode``).
"""

from __future__ import annotations

import enum
import logging
import multiprocessing as mp
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import List

from taskqueue import TaskQueue
from taskqueue.taskqueue import QueueEmptyError

from igneous.queues.paths import normalize_queue_path

__all__ = ["ExitCode", "WorkerOptions", "execute", "work"]

log = logging.getLogger(__name__)


class ExitCode(enum.IntEnum):
    DRAINED = 0  # stopped because the queue was empty (-x) or a limit was reached
    TASKS_FAILED = 1  # at least one task raised; they return to the queue after their lease
    CRASHED = 3  # a worker process died without reporting (signal, OOM kill, ...)


@dataclass
class WorkerOptions:
    queue: str
    lease_seconds: int = 600
    tally: bool = True
    min_sec: float = -1
    quiet: bool = False
    exit_on_empty: bool = False
    num_tasks: int = -1
    aws_region: str = "us-east-1"


@dataclass
class WorkerReport:
    executed: int = 0
    failed: int = 0
    failures: List[str] = field(default_factory=list)


_STOP = False


def _request_stop(signum, frame):  # pragma: no cover - exercised through subprocess tests
    global _STOP
    if _STOP:
        raise KeyboardInterrupt
    _STOP = True
    log.warning("signal %s: finishing the current task, then stopping (again to abort)", signum)


def _open_queue(opts: WorkerOptions) -> TaskQueue:
    path = normalize_queue_path(opts.queue)
    kwargs = {"region_name": opts.aws_region} if path.startswith("sqs://") else {}
    return TaskQueue(path, progress=False, **kwargs)


def _task_name(task) -> str:
    key = getattr(task, "key", None)
    return key[1] if key else type(task).__name__


def work(opts: WorkerOptions) -> WorkerReport:
    """One worker loop in this process."""
    import igneous.tasks  # noqa: F401  (register every task name before leasing)

    global _STOP
    _STOP = False
    old_int = signal.signal(signal.SIGINT, _request_stop)
    old_term = signal.signal(signal.SIGTERM, _request_stop)
    tq = _open_queue(opts)
    report = WorkerReport()
    started = time.monotonic()
    empty_polls = 0
    try:
        while not _STOP:
            try:
                task = tq.lease(seconds=int(opts.lease_seconds))
            except QueueEmptyError:
                empty_polls += 1
                if opts.exit_on_empty and (report.failed or tq.is_empty()):
                    break
                if _limit_reached(opts, report, started):
                    break
                time.sleep(min(2.0, 0.05 * 2 ** min(empty_polls, 6)) * random.random())
                continue
            empty_polls = 0
            _run_one(tq, task, opts, report)
            if _limit_reached(opts, report, started):
                break
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return report


def _limit_reached(opts: WorkerOptions, report: WorkerReport, started: float) -> bool:
    attempted = report.executed + report.failed
    if opts.num_tasks >= 0 and attempted >= opts.num_tasks:
        return True
    if opts.min_sec == 0 and attempted >= 1:
        return True
    return opts.min_sec > 0 and time.monotonic() - started >= opts.min_sec


class LeaseKeeper:
    """Renews a task's lease in the background while it runs, so a task that outlives
    ``--lease-sec`` is not handed to a second worker."""

    def __init__(self, tq: TaskQueue, task, seconds: int):
        self.tq, self.task, self.seconds = tq, task, max(1, int(seconds))
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease-keeper", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._done.wait(self.seconds / 2):
            try:
                self.tq.renew(self.task, self.seconds)
            except Exception as err:  # the task goes on; at worst its lease lapses as before
                log.warning("could not renew the lease of %s: %s", self.task.id, err)


def _run_one(tq: TaskQueue, task, opts: WorkerOptions, report: WorkerReport) -> None:
    name = _task_name(task)
    t0 = time.monotonic()
    try:
        with LeaseKeeper(tq, task, opts.lease_seconds):
            task.execute()
    except Exception as err:  # a task's failure must not stop the worker
        report.failed += 1
        msg = f"{name} {task.id}: {type(err).__name__}: {err}"
        report.failures.append(msg)
        log.error(
            "task=%s id=%s seconds=%.2f outcome=failed error=%s: %s",
            name,
            task.id,
            time.monotonic() - t0,
            type(err).__name__,
            err,
        )
        return
    tq.delete(task, tally=opts.tally)
    report.executed += 1
    if not opts.quiet:
        log.info("task=%s id=%s seconds=%.2f outcome=ok", name, task.id, time.monotonic() - t0)


def _child(opts: WorkerOptions, results) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    report = work(opts)
    results.put((report.executed, report.failed))


def execute(opts: WorkerOptions, parallel: int = 1) -> ExitCode:
    """Run ``parallel`` worker loops (processes when > 1) and return the combined exit code."""
    if parallel <= 1:
        report = work(opts)
        return ExitCode.TASKS_FAILED if report.failed else ExitCode.DRAINED

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(opts, results), daemon=False) for _ in range(parallel)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    code = ExitCode.DRAINED
    for proc in procs:
        if proc.exitcode != 0:
            log.error("worker process %s exited with code %s", proc.pid, proc.exitcode)
            code = ExitCode.CRASHED
    reported = []
    while not results.empty():
        reported.append(results.get())
    if code == ExitCode.DRAINED and any(failed for _, failed in reported):
        code = ExitCode.TASKS_FAILED
    return code
