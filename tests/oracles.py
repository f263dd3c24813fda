"""Whole-volume references that distributed results are compared with.

These call the field's libraries directly on the whole in-memory array; they never
call igneous code.
"""

from __future__ import annotations

import numpy as np
import tinybrain
import tinybrain.downsample

METHODS = {
    "avg": lambda img, f, n, sparse: tinybrain.downsample_with_averaging(img, f, num_mips=n, sparse=sparse),
    "mode": lambda img, f, n, sparse: tinybrain.downsample_segmentation(img, f, num_mips=n, sparse=sparse),
    "min": lambda img, f, n, sparse: tinybrain.downsample.downsample_with_min_pooling(img, f, num_mips=n),
    "max": lambda img, f, n, sparse: tinybrain.downsample_with_max_pooling(img, f, num_mips=n),
    "striding": lambda img, f, n, sparse: tinybrain.downsample_with_striding(img, f, num_mips=n),
}


def tinybrain_pyramid(whole: np.ndarray, factor, num_mips: int, method: str, sparse: bool = False):
    """tinybrain on the whole array, levels 1..num_mips.

    Precomputed levels have ceil(n / f) voxels per axis: the last voxel of an odd axis
    summarises the voxels that exist. tinybrain computes that when the extent is a
    multiple of f**num_mips, so the whole array is edge-extended to one and the levels
    cropped (extending an edge repeats each voxel of an edge block equally often).
    """
    if whole.ndim == 3:
        whole = whole[..., np.newaxis]
    mult = [f**num_mips for f in factor]
    pads = [(0, (-s) % m) for s, m in zip(whole.shape[:3], mult)] + [(0, 0)]
    padded = np.asfortranarray(np.pad(whole, pads, mode="edge"))
    levels = METHODS[method](padded, tuple(factor), num_mips, sparse)
    out = []
    for k, lvl in enumerate(levels, start=1):
        shp = [-(-s // f**k) for s, f in zip(whole.shape[:3], factor)]
        out.append(lvl[: shp[0], : shp[1], : shp[2]])
    return out
