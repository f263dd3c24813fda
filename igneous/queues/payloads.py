"""Tasks → queue payloads, fast.

task-queue converts every ``functools.partial`` by re-checking the function signature
(``inspect.signature(...).bind``), which caps insertion near 7k tasks/s before any I/O.
A plan's tasks share one function and one set of keyword names, so we check each
(function, argument names) combination once and build the same payload directly:
``[[module, name], args, kwargs, -1]`` for queueable functions (SPEC §5.3).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Iterable, Iterator, Tuple

from taskqueue.queueables import totask

__all__ = ["payload_of", "payloads"]

_checked: Dict[Tuple[Callable, int, Tuple[str, ...]], bool] = {}


def _flatten(task: functools.partial):
    args, kwargs, fn = [], {}, task
    while isinstance(fn, functools.partial):
        args = list(fn.args) + args
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    return fn, args, kwargs


def payload_of(task: Any):
    """The payload a queue stores for ``task`` (a partial of a queueable, or a RegisteredTask)."""
    if isinstance(task, functools.partial):
        fn, args, kwargs = _flatten(task)
        key = (fn, len(args), tuple(sorted(kwargs)))
        if key not in _checked:
            inspect.signature(fn).bind(*args, **kwargs)  # TypeError names the bad argument
            _checked[key] = True
        return [[fn.__module__, fn.__name__], args, kwargs, -1]
    payload = totask(task).payload()
    return list(payload) if isinstance(payload, tuple) else payload


def payloads(tasks: Iterable) -> Iterator:
    return (payload_of(t) for t in tasks)
