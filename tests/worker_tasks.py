"""Tasks that only tests queue: they record each execution so tests can count them.

Workers load them with IGNEOUS_TASK_MODULES=tests.worker_tasks.
"""

from __future__ import annotations

import os
import time

from taskqueue import queueable


@queueable
def CountTask(log_dir: str, name: str, seconds: float = 0.0):
    """Sleep, then append one line to ``log_dir/name`` (an execution record)."""
    time.sleep(seconds)
    with open(os.path.join(log_dir, name), "a") as f:
        f.write(f"{os.getpid()}\n")


@queueable
def FailTask(message: str = "this task always fails"):
    raise RuntimeError(message)


def count_tasks(log_dir, n, seconds=0.0):
    import functools

    return [functools.partial(CountTask, log_dir=str(log_dir), name=f"t{i:05d}", seconds=seconds) for i in range(n)]


def executions(log_dir) -> dict:
    out = {}
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name)) as f:
            out[name] = len(f.read().splitlines())
    return out
