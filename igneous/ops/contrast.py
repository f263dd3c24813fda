"""Luminance histograms and the per-slice linear stretch between clip percentiles (pure numpy)."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "LEVELS_DTYPES",
    "histogram_levels",
    "sample_patches",
    "clip_values",
    "stretch_lut",
    "apply_lut",
    "percentile_value",
]

# Histograms have one bin per value: 8- and 16-bit images only.
LEVELS_DTYPES = ("uint8", "uint16")
PATCH = 2048


def histogram_levels(image: np.ndarray, dtype) -> np.ndarray:
    """Counts of every value of ``dtype`` (2^bits bins) in ``image``."""
    bins = 1 << (8 * np.dtype(dtype).itemsize)
    return np.bincount(np.asarray(image).reshape(-1), minlength=bins).astype(np.int64)


def sample_patches(size_xy: Sequence[int], coverage: float, seed: int, patch: int = PATCH) -> List[Tuple[int, int, int, int]]:
    """Patches ``(x0, x1, y0, y1)`` (relative to the slice) that cover about ``coverage`` of it.

    Patches are ``patch``² (the slice itself when smaller), at positions drawn from a
    generator seeded with ``seed`` (the slice's z), so sampling a slice twice gives the
    same histogram.
    """
    sx, sy = (int(v) for v in size_xy)
    px, py = min(patch, sx), min(patch, sy)
    count = max(1, int(math.ceil(coverage * sx * sy / (px * py))))
    rng = np.random.default_rng(int(seed))
    xs = rng.integers(0, sx - px + 1, size=count)
    ys = rng.integers(0, sy - py + 1, size=count)
    return [(int(x), int(x) + px, int(y), int(y) + py) for x, y in zip(xs, ys)]


def percentile_value(levels: np.ndarray, fraction: float) -> int:
    """Smallest value v with (count of values 1..v) > fraction × total (bin 0 ignored)."""
    hist = np.asarray(levels, dtype=np.int64).copy()
    hist[0] = 0
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, fraction * cdf[-1], side="right"))


def clip_values(levels: Sequence[int], clip_fraction: float) -> Optional[Tuple[int, int]]:
    """``(lower, upper)``: the values clipping ``clip_fraction`` of the voxels at each end.

    Bin 0 is ignored (0 is missing data or background in microscopy). ``lower`` is the
    first value with more than ``clip_fraction`` of the voxels at or below it, ``upper``
    the first with at least ``1 - clip_fraction`` at or below it. None when the histogram
    holds nothing but zeros (the slice is left as it is).
    """
    hist = np.asarray(levels, dtype=np.int64).copy()
    hist[0] = 0
    cdf = np.cumsum(hist)
    total = cdf[-1]
    if total == 0:
        return None
    lower = int(np.searchsorted(cdf, clip_fraction * total, side="right"))
    upper = int(np.searchsorted(cdf, (1.0 - clip_fraction) * total, side="left"))
    return lower, max(upper, lower + 1)


def stretch_lut(lower: int, upper: int, dtype, minval=None, maxval=None) -> np.ndarray:
    """Lookup table mapping ``lower`` → ``minval`` and ``upper`` → ``maxval`` linearly, clamped.

    ``minval``/``maxval`` default to the dtype's range. Values are rounded half up.
    """
    dtype = np.dtype(dtype)
    lo = 0.0 if minval is None else float(minval)
    hi = float(np.iinfo(dtype).max) if maxval is None else float(maxval)
    values = np.arange(1 << (8 * dtype.itemsize), dtype=np.float64)
    out = (values - lower) * ((hi - lo) / float(upper - lower)) + lo
    return np.floor(np.clip(out, lo, hi) + 0.5).astype(dtype)


def apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[image]`` (one table lookup per voxel: cheaper than float arithmetic)."""
    return lut[image]
