"""CLAHE over a tile grid anchored to the whole slice, computed on part of it (OpenCV).

OpenCV's CLAHE splits an image into a grid of tiles, equalises each tile's clipped
histogram, and interpolates each pixel between the four nearest tile centres. A pixel
therefore depends on the tiles next to its own. Running OpenCV on a region that starts
and ends on the slice's tile grid, with one extra tile on each side of the box we keep,
gives that box exactly the values OpenCV gives on the whole slice: seams between tasks
disappear. A slice whose size is not a multiple of the tile size is extended on the far
side by reflection (OpenCV's BORDER_REFLECT_101, numpy's 'reflect'), as OpenCV does.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from igneous.errors import InvalidParameterError

__all__ = ["tile_size", "clahe_region", "clahe_slice", "region_for_box"]


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InvalidParameterError("CLAHE needs OpenCV: pip install 'igneous[contrast]'") from None
    cv2.setNumThreads(0)
    return cv2


def tile_size(shape_xy: Sequence[int], tile_grid_size: Sequence[int]) -> Tuple[int, int]:
    """Tile size in pixels: the task shape divided by the grid (CLAHE per task box, as the reference)."""
    return tuple(int(math.ceil(int(s) / int(g))) for s, g in zip(shape_xy[:2], tile_grid_size))  # type: ignore


def region_for_box(box_lo: Sequence[int], box_hi: Sequence[int], size: Sequence[int], tile: Sequence[int]):
    """The region (lo, hi per axis, slice coordinates) to equalise for a box: the box grown by one
    tile on each side, on the tile grid, within the slice extended to whole tiles."""
    lo, hi = [], []
    for a in range(2):
        t = int(tile[a])
        ext = int(math.ceil(int(size[a]) / t)) * t
        lo.append(max(0, (int(box_lo[a]) // t - 1) * t))
        hi.append(min(ext, (-(-int(box_hi[a]) // t) + 1) * t))
    return lo, hi


def clahe_region(region: np.ndarray, tile: Sequence[int], clip_limit: float, pad: Sequence[int] = (0, 0)) -> np.ndarray:
    """CLAHE of ``region`` (x, y), a block of the slice's tile grid; ``pad`` pixels beyond the
    slice's far edge are added by reflection first (then removed from the result)."""
    cv2 = _cv2()
    image = np.ascontiguousarray(region.T)  # OpenCV wants (rows = y, cols = x)
    if pad[0] or pad[1]:
        image = np.pad(image, ((0, int(pad[1])), (0, int(pad[0]))), mode="reflect")
    rows, cols = image.shape
    grid = (cols // int(tile[0]), rows // int(tile[1]))
    out = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=grid).apply(image)
    return out[: out.shape[0] - int(pad[1]), : out.shape[1] - int(pad[0])].T


def clahe_slice(image: np.ndarray, tile: Sequence[int], clip_limit: float) -> np.ndarray:
    """CLAHE of a whole slice (x, y) on a grid of ``tile``-pixel tiles (the reference for tests)."""
    sx, sy = image.shape
    pad = (-sx % int(tile[0]), -sy % int(tile[1]))
    return clahe_region(image, tile, clip_limit, pad)
