"""Public types (SPEC §2.5 ``igneous.types``)."""

from __future__ import annotations

from enum import IntEnum
from typing import Sequence, Tuple, Union

__all__ = ["ShapeType", "DownsampleMethods"]

ShapeType = Union[Sequence[int], Tuple[int, int, int]]


class DownsampleMethods(IntEnum):
    """Pooling used to build a pyramid level. Values are part of the queue wire format."""

    AVERAGE_POOLING = 1
    MODE_POOLING = 2
    MIN_POOLING = 3
    MAX_POOLING = 4
    STRIDING = 5
    AUTO = 6
