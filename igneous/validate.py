"""The one home of parameter checks shared by planners: whole numbers, vectors, byte budgets.

Every check raises :class:`igneous.errors.InvalidParameterError` naming the parameter and
the accepted range, so a planner can validate everything before it writes anything and the
CLI can show it as one line. Numbers are printed as plain Python values (``64``, never
``np.int64(64)``).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError

__all__ = [
    "is_int",
    "plain",
    "whole",
    "int_vector",
    "triple",
    "count",
    "byte_budget",
    "downsample_factor",
    "label_list",
    "subdirectory",
]


def is_int(value) -> bool:
    """True for integers and integral floats (``3``, ``np.int64(3)``, ``3.0``); never for bools."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def plain(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and tuples, for messages."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray, Vec)):
        return tuple(plain(v) for v in value)
    return value


def whole(value, name: str, minimum: Optional[int] = 0, maximum: Optional[int] = None) -> int:
    """A whole number in ``[minimum, maximum]`` (either bound may be None)."""
    if not is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidParameterError(f"{name} must be {_span(minimum, maximum)}; got {plain(value)!r}")
    return int(value)


def _span(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def int_vector(value, name: str, length: Optional[int] = 3, minimum: Optional[int] = 1) -> Tuple[int, ...]:
    """``value`` as a tuple of ints, each ≥ ``minimum``; ``length`` None accepts any length ≥ 1."""
    try:
        items = list(value)
    except TypeError:
        items = None
    if (
        isinstance(value, (str, bytes))
        or items is None
        or not items
        or (length is not None and len(items) != length)
        or any(not is_int(v) or (minimum is not None and v < minimum) for v in items)
    ):
        wanted = "one or more" if length is None else str(length)
        bound = "" if minimum is None else f" >= {minimum}"
        raise InvalidParameterError(f"{name} must be {wanted} integers{bound}; got {plain(value)!r}")
    return tuple(int(v) for v in items)


def triple(value, name: str, minimum: Optional[int] = 1) -> Vec:
    """Three integers x,y,z as a ``Vec`` (``minimum`` None allows any sign)."""
    return Vec(*int_vector(value, name, 3, minimum))


def count(value, name: str, minimum: int = 1, allow_inf: bool = False):
    """A whole number ≥ ``minimum``, or positive infinity when ``allow_inf``."""
    if allow_inf and isinstance(value, (float, np.floating)) and math.isinf(value) and value > 0:
        return math.inf
    if not is_int(value) or value < minimum:
        upper = ", or inf" if allow_inf else ""
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}{upper}; got {plain(value)!r}")
    return int(value)


def byte_budget(value, name: str = "memory_target", allow_inf: bool = False):
    """A positive number of bytes (``3.5e9`` is fine); infinity only when ``allow_inf``."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = not math.isnan(value) and (allow_inf or not math.isinf(value))
    if not ok or value <= 0:
        kind = "a positive number of bytes" if allow_inf else "a positive, finite number of bytes"
        raise InvalidParameterError(f"{name} must be {kind}; got {plain(value)!r}")
    if isinstance(value, (float, np.floating)) and math.isinf(value):
        return math.inf
    return int(value) if is_int(value) else float(value)


def downsample_factor(value, name: str = "factor") -> Tuple[int, int, int]:
    """Three positive integers, at least one ≥ 2 (a step that shrinks something)."""
    factor = int_vector(value, name, 3, 1)
    if max(factor) < 2:
        raise InvalidParameterError(f"{name} {factor} does not downsample; use e.g. 2,2,1 or 2,2,2")
    return factor


def label_list(ids, name: str) -> Optional[list]:
    """None, or a list of label ids in [0, 2^64)."""
    if ids is None:
        return None
    try:
        values = [int(x) for x in ids]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a list of label ids; got {ids!r}") from None
    if any(not is_int(x) for x in ids) or any(v < 0 or v >= 2**64 for v in values):
        raise InvalidParameterError(f"{name} must hold integers in [0, 2^64); got {plain(list(ids))!r}")
    return values


def subdirectory(name, what: str = "directory", example: str = "mesh_mip_0_err_40") -> str:
    """A relative path that stays inside the layer: no ``..``, no absolute path, no URL."""
    text = str(name).strip().strip("/") if name is not None else ""
    parts = text.split("/")
    if (
        not text
        or "://" in text
        or str(name).startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in text
    ):
        raise InvalidParameterError(
            f"{what} must be a folder name inside the layer (e.g. {example}); got {name!r}"
        )
    return text
