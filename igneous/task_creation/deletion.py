"""Planning deletion, blackout (constant fill) and touch (read-check) over a grid."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.errors import InvalidParameterError
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs, to_bbox
from igneous.task_creation.downsample import check_count
from igneous.tasks.image.common import chunks_inside, level_ratio
from igneous.tasks.image.image import BlackoutTask, DeleteTask, TouchTask
from igneous.types import ShapeType
from igneous.volumes import check_writable, open_volume

__all__ = [
    "create_deletion_tasks",
    "create_blackout_tasks",
    "create_touch_tasks",
    "plan_deletion",
    "deletion_filenames",
    "DeletionPlan",
]


@dataclass(frozen=True)
class DeletionPlan:
    """What ``create_deletion_tasks`` will delete: per level, the box of whole chunks and their count."""

    region: Bbox  # at ``mip``
    shape: Vec
    levels: Tuple[Tuple[int, str, Optional[Bbox], int], ...]  # (mip, key, box, files)

    @property
    def files(self) -> int:
        return sum(level[3] for level in self.levels)


def _aligned(vol, mip: int, region: Bbox) -> Bbox:
    """``region`` if it is whole chunks at ``mip`` (the far face may be the layer's), else refuse
    naming the chunk-aligned ranges just inside and just outside it."""
    chunk, origin, end = Vec(*vol.meta.chunk_size(mip)), Vec(*vol.meta.voxel_offset(mip)), vol.meta.bounds(mip).maxpt
    lo_ok = (region.minpt - origin) % chunk == 0
    hi_ok = ((region.maxpt - origin) % chunk == 0) | (region.maxpt == end)
    if np.all(lo_ok) and np.all(hi_ok):
        return region
    inside_lo = origin + -(-(region.minpt - origin) // chunk) * chunk
    inside_hi = Vec(*np.where(region.maxpt >= end, end, origin + ((region.maxpt - origin) // chunk) * chunk))
    outside_lo = origin + ((region.minpt - origin) // chunk) * chunk
    outside_hi = Vec(*np.minimum(end, origin + -(-(region.maxpt - origin) // chunk) * chunk))
    bad = [axis for axis, ok in zip("xyz", lo_ok & hi_ok) if not ok]

    def ranges(lo, hi):
        return " ".join(f"--{a}range {int(lo[i])},{int(hi[i])}" for i, a in enumerate("xyz") if a in bad)

    inside = (
        f"{ranges(inside_lo, inside_hi)} (inside) or " if np.all(inside_hi > inside_lo) else "no whole chunk lies inside; "
    )
    raise InvalidParameterError(
        f"deletion works on whole {tuple(int(c) for c in chunk)} chunks at mip {mip}: the {'/'.join(bad)} range "
        f"is not chunk-aligned; use {inside}{ranges(outside_lo, outside_hi)} (covering)"
    )


def _footprint(vol, mip: int, top: int) -> Vec:
    """The smallest task shape whose cells never split a chunk of any level ``mip`` … ``top``."""
    shape = [int(c) for c in vol.meta.chunk_size(mip)]
    for m in range(mip + 1, top + 1):
        ratio = level_ratio(vol, mip, m)
        if ratio is None:
            continue
        shape = [math.lcm(s, int(c) * int(r)) for s, c, r in zip(shape, vol.meta.chunk_size(m), ratio)]
    return Vec(*shape)


def plan_deletion(
    layer_path: str, mip: int = 0, num_mips: int = 5, shape: Optional[ShapeType] = None, bounds=None
) -> Tuple[DeletionPlan, CloudVolume]:
    """Validate a deletion and compute what it removes, without writing or deleting anything."""
    vol = open_volume(layer_path, mip)
    check_writable(layer_path)
    num_mips = check_count(num_mips, "num_mips", minimum=0)
    top = min(len(vol.info["scales"]) - 1, mip + num_mips)
    layer = vol.meta.bounds(mip)
    if bounds is None:
        region = layer.clone()
    else:
        region = Bbox.intersection(vol.bbox_to_mip(to_bbox(bounds), 0, mip), layer)
        if np.any(region.size3() <= 0):
            raise InvalidParameterError(f"bounds {to_bbox(bounds).to_list()} (at mip 0) miss the layer {layer.to_list()}")
    region = _aligned(vol, mip, region)
    footprint = _footprint(vol, mip, top)
    if shape is None:
        shape = footprint
    shape = as_triple(shape, "shape")
    if np.any(shape % footprint):
        raise InvalidParameterError(
            f"shape {tuple(int(v) for v in shape)} would split chunks of the levels being deleted; use a multiple of "
            f"{tuple(int(v) for v in footprint)}"
        )
    levels = []
    for m in range(mip, top + 1):
        box = chunks_inside(vol, mip, region, m)
        files = 0 if box is None else int(np.prod(-(-box.size3() // Vec(*vol.meta.chunk_size(m)))))
        levels.append((m, vol.meta.key(m), box, files))
    return DeletionPlan(region, shape, tuple(levels)), vol


def deletion_filenames(layer_path: str, plan: DeletionPlan) -> Iterator[str]:
    """``KEY/x0-x1_y0-y1_z0-z1`` of every chunk file the plan deletes, level by level."""
    vol = open_volume(layer_path, plan.levels[0][0])
    for m, key, box, _ in plan.levels:
        if box is None:
            continue
        chunk = Vec(*vol.meta.chunk_size(m))
        end = vol.meta.bounds(m).maxpt
        for z in range(int(box.minpt.z), int(box.maxpt.z), int(chunk.z)):
            for y in range(int(box.minpt.y), int(box.maxpt.y), int(chunk.y)):
                for x in range(int(box.minpt.x), int(box.maxpt.x), int(chunk.x)):
                    lo = Vec(x, y, z)
                    yield f"{key}/{Bbox(lo, Vec(*np.minimum(lo + chunk, end))).to_filename()}"


def create_deletion_tasks(
    layer_path: str, mip: int = 0, num_mips: int = 5, shape: Optional[ShapeType] = None, bounds=None
):
    """Plan deleting chunks at levels ``mip`` … ``mip + num_mips`` (inclusive) over ``bounds``.

    ``bounds`` (at mip 0, default: the whole layer) must be whole chunks at ``mip``; at each
    higher level exactly the chunks wholly inside the region are deleted, never a chunk that
    also holds voxels outside it (so a small region may delete nothing at coarse levels). The
    default task shape is the smallest that never splits a chunk of any of those levels.

    Raises:
        InvalidParameterError: before anything is deleted, for a region that is not chunk-aligned
            (the message names the aligned ranges inside and covering it) or a shape that splits chunks.
    """
    plan, vol = plan_deletion(layer_path, mip, num_mips, shape, bounds)
    num_mips = check_count(num_mips, "num_mips", minimum=0)
    grid = plan.region.expand_to_chunk_size(plan.shape, offset=vol.meta.voxel_offset(mip))
    kwargs = task_kwargs(layer_path=layer_path, mip=mip, num_mips=num_mips)
    finish = functools.partial(record_provenance, layer_path, "DeleteTask", {**kwargs, "bounds": plan.region})
    return GridTasks(grid, plan.shape, functools.partial(DeleteTask, **kwargs), finish, clip_to=plan.region)


def create_blackout_tasks(
    cloudpath: str, bounds, mip: int = 0, shape: ShapeType = (2048, 2048, 64), value=0, non_aligned_writes: bool = False
):
    """Plan filling ``bounds`` (mip-0 voxels) with ``value`` at ``mip``.

    Without ``non_aligned_writes`` the region is expanded to whole chunks.
    """
    vol = open_volume(cloudpath, mip)
    shape = as_triple(shape, "shape")
    if bounds is None:
        raise InvalidParameterError("bounds are required for a blackout (the region to fill)")
    task_bounds = get_bounds(vol, bounds, mip, 0, chunk_size=None if non_aligned_writes else vol.meta.chunk_size(mip))
    kwargs = task_kwargs(cloudpath=cloudpath, mip=mip, value=value, non_aligned_writes=bool(non_aligned_writes))
    finish = functools.partial(record_provenance, cloudpath, "BlackoutTask", {**kwargs, "bounds": task_bounds})
    return GridTasks(task_bounds, shape, functools.partial(BlackoutTask, **kwargs), finish, clip=True)


def create_touch_tasks(cloudpath: str, mip: int = 0, shape: ShapeType = (2048, 2048, 64), bounds=None):
    """Plan reading every region of the layer at ``mip``; tasks fail on missing chunks."""
    vol = open_volume(cloudpath, mip)
    shape = as_triple(shape, "shape")
    task_bounds = get_bounds(vol, bounds, mip, 0)
    kwargs = task_kwargs(cloudpath=cloudpath, mip=mip)
    return GridTasks(task_bounds, shape, functools.partial(TouchTask, **kwargs), clip=True)
