"""Reading and writing image boxes for tasks: the one place a box becomes chunk uploads.

``read_box`` zero-fills what lies outside the layer (translated or expanded boxes);
``upload_all`` splits writes into chunk-aligned slabs on two threads; ``downsample_and_upload``
writes a box and the pyramid levels above it that the task can write whole.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Optional, Sequence

import numpy as np
from cloudvolume.lib import Bbox

from igneous.ops.downsample import pyramid, resolve_method
from igneous.tasks.image.common import level_box, pyramid_factor, writable_levels
from igneous.types import DownsampleMethods

__all__ = ["UPLOAD_THREADS", "read_box", "upload_all", "downsample_and_upload"]


def downsample_and_upload(
    image: np.ndarray,
    bounds: Bbox,
    vol,
    ds_shape: Sequence[int],
    mip: int = 0,
    axis: str = "z",
    skip_first: bool = False,
    sparse: bool = False,
    factor=None,
    max_mips: Optional[int] = None,
    method: int = DownsampleMethods.AUTO,
) -> int:
    """Write ``image`` (the box ``bounds`` at ``mip``) and the pyramid levels above it to ``vol``.

    ``ds_shape`` is the task's nominal shape; it decides how many levels can be written
    chunk-aligned. Returns the number of downsampled levels written.
    """
    writes = [] if skip_first else [(image, bounds, mip)]
    factor = pyramid_factor(vol, mip, factor, axis)
    levels = writable_levels(vol, mip, ds_shape, factor, max_mips)
    if levels:
        method = resolve_method(method, vol.layer_type, vol.dtype)
        for k, level in enumerate(pyramid(image, factor, levels, method, sparse), start=1):
            writes.append((level, level_box(vol, mip, bounds, factor, k), mip + k))
    upload_all(vol, writes)
    return levels


# Compressing chunks dominates a write and releases the GIL, so uploads run on two threads
# even at -p 1 (CloudVolume itself uses threads for remote stores, but not for file://).
UPLOAD_THREADS = min(2, os.cpu_count() or 1)


def upload_all(vol, writes) -> None:
    """Upload each ``(image, box, mip)``, split into chunk-aligned slabs spread over threads."""
    parts = [part for image, box, mip in writes for part in _split_y(vol, image, box, mip)]
    if UPLOAD_THREADS <= 1 or len(parts) <= 1:
        for image, box, mip in parts:
            vol.image.upload(image, box.minpt, mip)
        return
    with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        for fut in [pool.submit(vol.image.upload, image, box.minpt, mip) for image, box, mip in parts]:
            fut.result()


def _split_y(vol, image: np.ndarray, box: Bbox, mip: int):
    """Halves along y on a chunk boundary (whole chunks each), or the write itself."""
    chunk_y = int(vol.meta.chunk_size(mip)[1])
    nchunks = -(-int(box.size3()[1]) // chunk_y)
    if nchunks < 2:
        return [(image, box, mip)]
    cut = (nchunks // 2) * chunk_y
    lo = Bbox(box.minpt, (box.maxpt.x, box.minpt.y + cut, box.maxpt.z))
    hi = Bbox((box.minpt.x, box.minpt.y + cut, box.minpt.z), box.maxpt)
    return [(image[:, :cut], lo, mip), (image[:, cut:], hi, mip)]


def read_box(vol, box: Bbox, mip: int) -> np.ndarray:
    """Download ``box``; voxels outside the layer (a translated or expanded box) are 0."""
    inside = Bbox.intersection(box, vol.meta.bounds(mip))
    if inside == box:
        return vol.download(box, mip)
    image = np.zeros(tuple(box.size3()) + (vol.num_channels,), dtype=vol.dtype, order="F")
    if not inside.subvoxel():
        lo = inside.minpt - box.minpt
        hi = lo + inside.size3()
        image[lo.x : hi.x, lo.y : hi.y, lo.z : hi.z] = vol.download(inside, mip)
    return image
