"""Run a multi-step job one step at a time: each step's tasks must all finish before the next.

In-process, a step is its tasks run here. With a queue, the step's tasks are inserted and
this process drains the queue itself with the worker loop (exit on empty; failing tasks are
retried, then dead-lettered), then counts what did not finish. ``ccl auto`` is the user.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Optional

from igneous.queues.backends import open_backend
from igneous.queues.paths import normalize_queue_path
from igneous.queues.submit import run_in_process, submit_tasks
from igneous.queues.worker import WorkerOptions, execute

__all__ = ["StepIncomplete", "run_step"]

log = logging.getLogger(__name__)


class StepIncomplete(RuntimeError):
    """A step ended with tasks undone; later steps would compute from incomplete inputs."""

    def __init__(self, step: str, unfinished: Optional[int], total: int, cause: str = ""):
        self.step, self.unfinished, self.total = step, unfinished, total
        count = "some" if unfinished is None else str(unfinished)
        message = f"step {step!r} did not complete: {count} of {total} tasks unfinished"
        super().__init__(message + (f" ({cause})" if cause else ""))


def run_step(
    step: str,
    tasks: Iterable,
    queue: Optional[str] = None,
    parallel: int = 1,
    progress: bool = False,
    lease_seconds: int = 600,
    max_attempts: int = 5,
    unfinished: Optional[Callable[[], int]] = None,
) -> int:
    """Run every task of ``step`` to completion (here, or through ``queue`` drained here).

    ``unfinished``, when given, counts the step's tasks whose results are missing (checked
    after the queue is drained, so work lost outside the queue's view is noticed too).

    Returns:
        the number of tasks.

    Raises:
        StepIncomplete: a task failed (in-process), or tasks were dead-lettered, left in the
            queue, or left no result.
    """
    total = len(tasks)
    if queue is None:
        try:
            run_in_process(tasks, parallel=parallel, progress=progress)
        except Exception as err:  # the first failing task stops the step; later steps cannot run
            left = unfinished() if unfinished is not None else None
            first = str(err).splitlines()[0] if str(err) else ""
            raise StepIncomplete(step, left, total, f"{type(err).__name__}: {first}") from err
    else:
        queue = normalize_queue_path(queue)
        submit_tasks(tasks, queue=queue, parallel=parallel, progress=progress)
        backend = open_backend(queue)
        dead_before = _count(backend.counts(), "dead_lettered")
        opts = WorkerOptions(
            queue=queue,
            lease_seconds=lease_seconds,
            exit_on_empty=True,
            quiet=True,
            max_attempts=max_attempts,
            progress=progress,
        )
        code = execute(opts, parallel=parallel)
        counts = backend.counts()
        left = _count(counts, "enqueued") + max(0, _count(counts, "dead_lettered") - dead_before)
        if left:
            raise StepIncomplete(step, left, total, f"see `igneous queue status {queue}` and `igneous queue dead`")
        if int(code) != 0:
            log.warning("step %s: the worker exited with %s but left nothing undone", step, code.name)
    if unfinished is not None:
        missing = unfinished()
        if missing:
            raise StepIncomplete(step, missing, total, "their results are missing")
    return total


def _count(counts: dict, name: str) -> int:
    value = counts.get(name, 0)
    return 0 if value != value else int(value)  # NaN: the backend keeps no such count
