"""Draco settings for legacy fragments forged with ``encoding='draco'`` (SPEC §3.4 helpers).

Every task of a forge grid quantizes on one global lattice: the bin size is an integer
number of nm fixed by the task shape and resolution, and each task's quantization origin
is its offset rounded down to a multiple of that bin. Seam vertices, computed identically
by the two neighbouring tasks, therefore land on the same lattice point in both fragments.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["draco_encoding_settings", "calculate_draco_quantization_bits_and_range"]


def calculate_draco_quantization_bits_and_range(
    min_quantization_range: float, max_draco_bin_size: float, draco_quantization_bits: Optional[int] = None
) -> tuple[int, float, float]:
    """``(bits, quantization_range, bin_size)``: the fewest bits whose integer bin size is at most
    ``max_draco_bin_size`` while the range still covers ``min_quantization_range`` plus one bin."""
    max_draco_bin_size = max(1.0, float(max_draco_bin_size))
    if draco_quantization_bits is None:
        draco_quantization_bits = int(math.ceil(math.log2(min_quantization_range / max_draco_bin_size + 1)))
    while True:
        num_bins = 2**draco_quantization_bits - 1
        bin_size = float(math.ceil(min_quantization_range / num_bins))
        quantization_range = bin_size * num_bins
        if quantization_range >= min_quantization_range + bin_size:
            return int(draco_quantization_bits), quantization_range, bin_size
        if bin_size + 1 <= max_draco_bin_size:
            bin_size += 1
            return int(draco_quantization_bits), bin_size * num_bins, bin_size
        draco_quantization_bits += 1


def draco_encoding_settings(
    shape: Sequence[int],
    offset: Sequence[int],
    resolution: Sequence[float],
    compression_level: int,
    create_metadata: bool,
    uses_new_draco_bin_size: bool = False,
) -> dict:
    """Keyword arguments for ``DracoPy.encode`` of one forge task's fragments.

    The range covers the task box plus its +1 overlap voxel (``(shape + 1)·res``); the bin is
    at most half (new) or 1/√2 (classic) of the finest voxel side.
    """
    shape = np.asarray(shape, dtype=np.float64)
    resolution = np.asarray(resolution, dtype=np.float64)
    chunk_offset_nm = np.asarray(offset, dtype=np.float64) * resolution
    min_quantization_range = float(np.max((shape + 1) * resolution))
    divisor = 2.0 if uses_new_draco_bin_size else math.sqrt(2)
    max_draco_bin_size = math.floor(float(np.min(resolution)) / divisor)
    bits, quantization_range, bin_size = calculate_draco_quantization_bits_and_range(
        min_quantization_range, max_draco_bin_size
    )
    origin = chunk_offset_nm - np.mod(chunk_offset_nm, bin_size)
    return {
        "quantization_bits": int(bits),
        "compression_level": int(compression_level),
        "quantization_range": float(quantization_range),
        "quantization_origin": [float(v) for v in origin],
        "create_metadata": bool(create_metadata),
    }
