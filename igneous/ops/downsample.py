"""Pyramid kernels: one entry point over tinybrain's pooling functions.

Edge convention: a level's last voxel along an axis whose length is odd summarises
only the voxels that exist (Neuroglancer/CloudVolume size = ceil(n / f)). tinybrain's
accelerated kernels mishandle odd extents (and its min/max pooling rejects them), so
we replicate the edge up to a multiple of ``factor ** num_mips`` before pooling and
crop afterwards. Replicating an edge duplicates every voxel of an edge block the same
number of times, so averages, modes, minima and maxima are those of the real voxels.
"""

from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np
import tinybrain
import tinybrain.downsample

from igneous.errors import InvalidParameterError
from igneous.types import DownsampleMethods

__all__ = ["resolve_method", "check_factor_for_method", "pyramid", "level_shape"]

_INTEGER_ONLY = (DownsampleMethods.MODE_POOLING,)


def resolve_method(method: int | DownsampleMethods, layer_type: str, dtype) -> DownsampleMethods:
    """Turn AUTO into the pooling a layer of this type wants, and check it suits the dtype."""
    try:
        method = DownsampleMethods(int(method))
    except (TypeError, ValueError):
        names = ", ".join(m.name.lower() for m in DownsampleMethods)
        raise InvalidParameterError(f"method must be one of {names}; got {method!r}") from None

    if method == DownsampleMethods.AUTO:
        if layer_type == "image":
            method = DownsampleMethods.AVERAGE_POOLING
        elif layer_type == "segmentation":
            method = DownsampleMethods.MODE_POOLING
        else:
            method = DownsampleMethods.STRIDING

    if method in _INTEGER_ONLY and not np.issubdtype(np.dtype(dtype), np.integer):
        raise InvalidParameterError(
            f"method {method.name.lower()} needs an integer dtype; this layer is {np.dtype(dtype).name}"
            " (use avg, min, max or striding)"
        )
    return method


def check_factor_for_method(method: DownsampleMethods, factor: Sequence[int]) -> None:
    """Refuse a factor the pooling kernel cannot apply (tinybrain's mode pooling needs two axes)."""
    if method == DownsampleMethods.MODE_POOLING and sum(int(f) > 1 for f in factor) < 2:
        raise InvalidParameterError(
            f"mode pooling needs a factor that reduces at least two axes (e.g. 2,2,1); got {tuple(factor)}"
        )


def level_shape(shape: Sequence[int], factor: Sequence[int], level: int) -> tuple:
    """Shape of pyramid level ``level`` (1 = first downsample) of an array of ``shape``."""
    return tuple(-(-int(s) // (int(f) ** level)) for s, f in zip(shape[:3], factor)) + tuple(shape[3:])


def _kernel(method: DownsampleMethods, sparse: bool) -> Callable:
    if method == DownsampleMethods.AVERAGE_POOLING:
        return lambda img, factor, n: tinybrain.downsample_with_averaging(img, factor, num_mips=n, sparse=sparse)
    if method == DownsampleMethods.MODE_POOLING:
        return lambda img, factor, n: tinybrain.downsample_segmentation(img, factor, num_mips=n, sparse=sparse)
    if method == DownsampleMethods.MIN_POOLING:
        return lambda img, factor, n: tinybrain.downsample.downsample_with_min_pooling(img, factor, num_mips=n)
    if method == DownsampleMethods.MAX_POOLING:
        return lambda img, factor, n: tinybrain.downsample_with_max_pooling(img, factor, num_mips=n)
    if method == DownsampleMethods.STRIDING:
        return lambda img, factor, n: tinybrain.downsample_with_striding(img, factor, num_mips=n)
    raise InvalidParameterError(f"method {method!r} must be resolved before pooling (see resolve_method)")


def pyramid(
    image: np.ndarray,
    factor: Sequence[int],
    num_mips: int,
    method: DownsampleMethods,
    sparse: bool = False,
) -> List[np.ndarray]:
    """Downsample ``image`` (x, y, z[, channel]) ``num_mips`` times by ``factor``.

    Args:
        image: 3D or 4D array, x-fastest (Fortran) order preferred.
        factor: per-axis pooling factor, e.g. (2, 2, 1).
        num_mips: number of levels to produce (>= 1).
        method: a resolved ``DownsampleMethods`` (not AUTO).
        sparse: ignore background (0) when averaging or taking the mode.

    Returns:
        ``num_mips`` arrays, level 1 first, each of ``level_shape(image.shape, factor, k)``
        with the input's dtype.
    """
    if num_mips < 1:
        return []
    factor = tuple(int(f) for f in factor)
    if image.ndim == 3:
        image = image[..., np.newaxis]

    multiple = [f**num_mips for f in factor]
    pads = [(0, (-s) % m) for s, m in zip(image.shape[:3], multiple)] + [(0, 0)]
    padded = np.pad(image, pads, mode="edge") if any(p[1] for p in pads) else image
    padded = np.asfortranarray(padded)

    levels = _kernel(method, sparse)(padded, factor, num_mips)
    out = []
    for k, level in enumerate(levels, start=1):
        want = level_shape(image.shape, factor, k)
        out.append(np.asfortranarray(level[: want[0], : want[1], : want[2]]).astype(image.dtype, copy=False))
    return out
