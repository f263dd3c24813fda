"""Ingest tasks (wire module ``igneous.tasks.image.ingest``): image stacks → Precomputed.

A task owns a chunk-aligned box of the destination: it reads only the slices of its z range
and, in each, only the region of its box (for tiled or stripped TIFFs only those segments),
then writes the box's chunks. No two tasks write one chunk, so tasks run in any order, any
number of times.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from igneous.readers.stacks import read_box
from igneous.tasks.image.common import dest_volume, task_box
from igneous.tasks.image.io import upload_all
from igneous.tasks.registry import queueable

__all__ = ["ImageStackIngestTask"]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.image.ingest"


@queueable(WIRE)
def ImageStackIngestTask(
    src: str,
    sources: Sequence[Sequence],
    dest_path: str,
    shape: Sequence[int],
    offset: Sequence[int],
    mip: int = 0,
    compress="gzip",
    rows_per_read: Optional[int] = None,
):
    """Write the dest box ``offset + shape`` from the slices ``sources`` under ``src``.

    ``sources[k]`` is ``[file name, TIFF page offsets or None]`` for dest z = box z0 + k.
    ``rows_per_read`` reads the box in bands of that many rows, so a box wider than memory
    allows in one piece is still read once (the planner sets it when a slice is huge).
    """
    vol = dest_volume(dest_path, mip, compress)
    box = task_box(vol, mip, shape, offset)
    if box.subvoxel():
        return
    origin = vol.meta.voxel_offset(mip)
    lo = box.minpt - origin
    hi = box.maxpt - origin
    nz = int(hi.z - lo.z)
    if len(sources) < nz:
        raise ValueError(f"task for z {int(box.minpt.z)}-{int(box.maxpt.z)} was given {len(sources)} slices")
    sources = sources[:nz]
    image = np.empty(tuple(box.size3()) + (vol.num_channels,), dtype=vol.dtype, order="F")
    band = int(rows_per_read) if rows_per_read else int(hi.y - lo.y)
    for y in range(int(lo.y), int(hi.y), band):
        y1 = min(int(hi.y), y + band)
        read_box(
            src,
            sources,
            (int(lo.x), int(hi.x), y, y1),
            vol.num_channels,
            vol.dtype,
            out=image[:, y - int(lo.y) : y1 - int(lo.y)],
        )
    upload_all(vol, [(image, box, mip)])
