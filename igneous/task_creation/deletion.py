"""Planning deletion, blackout (constant fill) and touch (read-check) over a grid."""

from __future__ import annotations

import functools
from typing import Optional

from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.task_creation.downsample import check_count
from igneous.tasks.image.image import BlackoutTask, DeleteTask, TouchTask
from igneous.types import ShapeType
from igneous.volumes import open_volume

__all__ = ["create_deletion_tasks", "create_blackout_tasks", "create_touch_tasks"]


def create_deletion_tasks(
    layer_path: str, mip: int = 0, num_mips: int = 5, shape: Optional[ShapeType] = None, bounds=None
):
    """Plan deleting chunks at levels ``mip`` … ``mip + num_mips`` (inclusive) over ``bounds``.

    The default task shape is ``chunk × 2^num_mips`` in x and y so that each task covers
    whole chunks at every level it deletes.
    """
    vol = open_volume(layer_path, mip)
    num_mips = check_count(num_mips, "num_mips", minimum=0)
    chunk = vol.meta.chunk_size(mip)
    if shape is None:
        shape = Vec(chunk.x * 2**num_mips, chunk.y * 2**num_mips, chunk.z)
    shape = as_triple(shape, "shape")
    if any(shape % chunk):
        raise InvalidParameterError(f"shape {tuple(shape)} must be a multiple of the chunk size {tuple(chunk)}")
    task_bounds = get_bounds(vol, bounds, mip, 0, chunk_size=shape)
    kwargs = task_kwargs(layer_path=layer_path, mip=mip, num_mips=num_mips)
    finish = functools.partial(record_provenance, layer_path, "DeleteTask", {**kwargs, "bounds": task_bounds})
    return GridTasks(task_bounds, shape, functools.partial(DeleteTask, **kwargs), finish)


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
