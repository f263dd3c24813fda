"""Queue wire names.

A queued message names a queueable function by ``(module, function)`` (SPEC §3.7), so
the module path is part of the wire format shared with other Igneous workers. Our code
may live elsewhere; ``queueable(wire_module)`` registers a task under its wire key and
makes the function report that module, so messages we send name the same key and
pickling by reference finds it there (the wire module re-exports it).
"""

from __future__ import annotations

from typing import Callable

from taskqueue import queueable as _tq_queueable

__all__ = ["queueable"]


def queueable(wire_module: str) -> Callable:
    def register(fn: Callable) -> Callable:
        fn.__module__ = wire_module
        return _tq_queueable(fn)

    return register
