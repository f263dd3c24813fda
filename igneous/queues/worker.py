"""``igneous execute``: lease, run, delete — and never lose or silently drop a task.

* A running task's lease is renewed in the background, so a task that outlives
  ``--lease-sec`` is not handed to a second worker.
* A failing task is logged with its error and released with a back-off; after
  ``--max-attempts`` leases (failures, or workers that died running it) it goes to the
  queue's dead-letter place with its last error, and the worker goes on.
* SIGTERM/SIGINT: the current task finishes (or, after ``--grace-sec``, is released) and
  the worker exits. ``-p N`` supervises N processes and replaces one that dies.
* The exit code says what happened (``ExitCode``).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import List, Optional

from taskqueue.queueablefns import UnregisteredFunctionError

from igneous.errors import InvalidParameterError
from igneous.queues.backends import Lease, open_backend

__all__ = ["ExitCode", "WorkerOptions", "WorkerReport", "LeaseKeeper", "MIN_LEASE_SECONDS", "execute", "work"]

log = logging.getLogger(__name__)


# Leases are renewed every half lease and fq:// stores lease ends in whole seconds: below
# this a running task's lease can lapse between renewals and a second worker runs it too.
MIN_LEASE_SECONDS = 2


class ExitCode(enum.IntEnum):
    OK = 0  # did what was asked: -x and the queue is empty, or -n / --min-sec reached; nothing failed
    DRAINED = 0  # alias of OK
    STOPPED_BY_LIMIT = 0  # alias of OK: `igneous execute -n 100 q && next` must go on
    TASKS_FAILED = 1  # a task was dead-lettered (or failed and is waiting for a retry) on our watch
    CRASHED = 3  # a worker process died (signal, OOM kill, ...)
    STOPPED_BY_SIGNAL = 5  # SIGTERM/SIGINT: the current task was finished or released


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
    max_attempts: int = 5
    grace_seconds: float = 30
    progress: bool = False


@dataclass
class WorkerReport:
    executed: int = 0
    attempted: int = 0  # leases handled: run, failed or dead-lettered
    failed: int = 0
    dead_lettered: int = 0
    stop: str = "drained"

    def exit_code(self) -> ExitCode:
        if self.dead_lettered or (self.failed and self.stop != "drained"):
            return ExitCode.TASKS_FAILED
        return ExitCode.STOPPED_BY_SIGNAL if self.stop == "signal" else ExitCode.OK


class StopNow(BaseException):
    """Raised inside a running task when the grace period after SIGTERM is over."""


class _Signals:
    """First SIGTERM/SIGINT: stop after the current task (at most ``grace`` seconds more);
    a second one, or the end of the grace period, interrupts the task, which is released."""

    def __init__(self, grace: float):
        self.grace = grace
        self.stopping = False
        self.in_task = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    def _handle(self, signum, frame):
        if self.stopping or signum == signal.SIGALRM:
            if self.in_task:
                raise StopNow()
            return
        self.stopping = True
        log.warning("signal %s: finishing the current task (at most %.0f s), then stopping", signum, self.grace)
        if self.in_task and self.grace > 0:
            signal.signal(signal.SIGALRM, self._handle)
            signal.alarm(max(1, int(self.grace)))
        elif self.in_task:
            raise StopNow()


class LeaseKeeper:
    """Renews the lease of the task being run, from one background thread per worker.

    ``with keeper.holding(lease):`` around a task; the thread renews every half lease.
    """

    def __init__(self, backend, seconds: int):
        self.backend, self.seconds = backend, max(1, int(seconds))
        self._lease: Optional[Lease] = None
        self._since = 0.0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def holding(self, lease: Lease):
        with self._cond:
            self._lease, self._since = lease, time.monotonic()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._lease = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._lease is None:
                    self._cond.wait()
                    continue
                due = self._since + self.seconds / 2
                if time.monotonic() < due:
                    self._cond.wait(due - time.monotonic())
                    continue
                lease, self._since = self._lease, time.monotonic()
                try:
                    self.backend.renew(lease, self.seconds)
                except Exception as err:  # the task goes on; at worst its lease lapses
                    log.warning("could not renew the lease of %s: %s", lease.id[:36], err)


def _log_task(lease: Lease, seconds: float, outcome: str, error: str = "", quiet: bool = False) -> None:
    line = f"task={lease.name} id={lease.id[:36]} attempt={lease.attempts} seconds={seconds:.2f} outcome={outcome}"
    if error:
        log.error("%s error=%s", line, error)
    elif not quiet:
        log.info("%s", line)


def _retry_delay(attempts: int, lease_seconds: int) -> int:
    return int(min(lease_seconds, 2 ** min(attempts, 10)))


def _run(
    backend, lease: Lease, opts: WorkerOptions, report: WorkerReport, signals: _Signals, keeper: LeaseKeeper
) -> None:
    t0 = time.monotonic()
    report.attempted += 1
    if lease.attempts > opts.max_attempts:
        error = backend.last_error(lease.id) or (
            f"leased {lease.attempts - 1} times without finishing (its workers died while running it?)"
        )
        backend.dead_letter(lease, error)
        report.dead_lettered += 1
        _log_task(lease, 0, "dead_lettered", error)
        return
    if lease.error is not None:  # not a task this worker can run: no retry would change that
        backend.record_error(lease.id, lease.error)
        backend.dead_letter(lease, lease.error)
        report.failed += 1
        report.dead_lettered += 1
        _log_task(lease, 0, "dead_lettered", lease.error)
        return
    error = None
    try:
        signals.in_task = True
        with keeper.holding(lease):
            lease.task.execute()
    except StopNow:
        backend.release(lease, 0)
        _log_task(lease, time.monotonic() - t0, "released", "stopped by signal before finishing")
        report.stop = "signal"
        return
    except (Exception, UnregisteredFunctionError) as err:  # a task's failure must not stop the worker
        error = f"{type(err).__name__}: {err}"
        log.debug("%s", traceback.format_exc())
    finally:
        signals.in_task = False
        signal.alarm(0)
    seconds = time.monotonic() - t0
    if error is None:
        backend.delete(lease, tally=opts.tally)
        report.executed += 1
        _log_task(lease, seconds, "ok", quiet=opts.quiet)
        return
    report.failed += 1
    backend.record_error(lease.id, error)
    if lease.attempts >= opts.max_attempts:
        backend.dead_letter(lease, error)
        report.dead_lettered += 1
        _log_task(lease, seconds, "dead_lettered", error)
    else:
        backend.release(lease, _retry_delay(lease.attempts, opts.lease_seconds))
        _log_task(lease, seconds, "failed", error)


def _limit_reached(opts: WorkerOptions, report: WorkerReport, started: float) -> bool:
    if opts.num_tasks >= 0 and report.attempted >= opts.num_tasks:
        return True
    if opts.min_sec == 0:  # one lease attempt: the task it found, or none when the queue is empty
        return True
    return opts.min_sec > 0 and time.monotonic() - started >= opts.min_sec


def work(opts: WorkerOptions) -> WorkerReport:
    """One worker loop in this process."""
    import igneous.tasks  # noqa: F401  (register every task name before leasing)

    _import_plugins()
    backend = open_backend(opts.queue, opts.aws_region)
    report = WorkerReport()
    started = time.monotonic()
    empty_polls = 0
    # SQS: long-poll (cheaper, prompt); with -x a short poll so a drained queue is noticed fast
    remote = not opts.queue.startswith("fq://") and "://" in opts.queue
    wait_sec = (2 if opts.exit_on_empty else 10) if remote else 0
    pbar = _progress(opts, backend)
    keeper = LeaseKeeper(backend, opts.lease_seconds)
    with _Signals(opts.grace_seconds) as signals:
        while True:
            if signals.stopping:
                report.stop = "signal"
                break
            lease = backend.lease(opts.lease_seconds, wait_sec=wait_sec)
            if lease is None:
                empty_polls += 1
                if opts.exit_on_empty and backend.is_drained():
                    report.stop = "drained"
                    break
                if _limit_reached(opts, report, started):
                    report.stop = "limit"
                    break
                time.sleep(min(2.0, 0.05 * 2 ** min(empty_polls, 6)) * random.random())
                continue
            empty_polls = 0
            _run(backend, lease, opts, report, signals, keeper)
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(done=report.executed, failed=report.failed, dead=report.dead_lettered)
            if report.stop == "signal":
                break
            if _limit_reached(opts, report, started):
                report.stop = "limit"
                break
    keeper.close()
    if pbar is not None:
        pbar.close()
    return report


def _progress(opts: WorkerOptions, backend):
    """A progress bar (done, failed, rate, ETA) for an interactive terminal."""
    if not opts.progress:
        return None
    from tqdm import tqdm

    try:
        total = int(backend.counts()["enqueued"])
    except Exception:  # counts are a nicety here
        total = None
    return tqdm(desc="Tasks", unit="task", total=total, dynamic_ncols=True)


def _import_plugins() -> None:
    """Modules named in IGNEOUS_TASK_MODULES (comma separated) register extra task types."""
    import importlib

    for name in filter(None, os.environ.get("IGNEOUS_TASK_MODULES", "").split(",")):
        importlib.import_module(name.strip())


def _child(opts: WorkerOptions) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    sys.exit(int(work(opts).exit_code()))


def check_options(opts: WorkerOptions) -> None:
    """Refuse options that would run a task twice or never stop (``InvalidParameterError``)."""
    if int(opts.lease_seconds) < MIN_LEASE_SECONDS:
        raise InvalidParameterError(
            f"--lease-sec must be at least {MIN_LEASE_SECONDS} seconds; got {opts.lease_seconds}"
        )
    if opts.max_attempts < 1:
        raise InvalidParameterError(f"--max-attempts must be at least 1; got {opts.max_attempts}")


def execute(opts: WorkerOptions, parallel: int = 1) -> ExitCode:
    """Run ``parallel`` worker loops (supervised processes when > 1); return the combined exit code.

    The options and the queue are checked here, once, before any worker starts: a mistyped
    queue, missing credentials or an unreachable endpoint raise ``InvalidParameterError``
    (one line) instead of starting workers that fail or hang."""
    check_options(opts)
    open_backend(opts.queue, opts.aws_region)
    if parallel <= 1:
        return work(opts).exit_code()
    return _Supervisor(opts, parallel).run()


class _Supervisor:
    """Keeps ``parallel`` worker processes running; a process that dies is reported and replaced."""

    def __init__(self, opts: WorkerOptions, parallel: int):
        self.opts, self.parallel = opts, parallel
        self.ctx = mp.get_context("spawn")
        self.crashes = 0
        self.max_replacements = max(3, 3 * parallel)
        self.stopping = False

    def _start(self):
        proc = self.ctx.Process(target=_child, args=(self.opts,), daemon=False)
        proc.start()
        return proc

    def _forward(self, signum, frame):
        self.stopping = True
        if signum == signal.SIGINT:
            return  # Ctrl-C reaches the whole process group already; a second signal would abort tasks
        for proc in self.procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> ExitCode:
        self.procs = [self._start() for _ in range(self.parallel)]
        codes: List[int] = []
        old = {s: signal.signal(s, self._forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while self.procs:
                time.sleep(0.2)
                for proc in list(self.procs):
                    if proc.exitcode is None:
                        continue
                    self.procs.remove(proc)
                    code = proc.exitcode
                    if code in (ExitCode.OK, ExitCode.TASKS_FAILED, ExitCode.STOPPED_BY_SIGNAL):
                        codes.append(code)
                        continue
                    self.crashes += 1
                    log.error("worker process %s exited with code %s", proc.pid, code)
                    if not self.stopping and self.crashes <= self.max_replacements:
                        log.warning("replacing worker process %s", proc.pid)
                        self.procs.append(self._start())
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if self.crashes:
            return ExitCode.CRASHED
        for code in (ExitCode.TASKS_FAILED, ExitCode.STOPPED_BY_SIGNAL):
            if code in codes:
                return code
        return ExitCode.OK
