"""Planning unsharded image pyramids (``create_downsampling_tasks``)."""

from __future__ import annotations

import copy
import functools
import logging
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import downsample_scales as dss
from igneous.errors import InvalidParameterError
from igneous.ops.downsample import check_factor_for_method, resolve_method
from igneous.scales import add_pyramid
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.tasks.image.image import DownsampleTask
from igneous.types import DownsampleMethods, ShapeType
from igneous.validate import byte_budget, count, downsample_factor, whole
from igneous.volumes import (
    check_writable,
    open_volume,
    output_encoding,
    truncate_scales,
)

__all__ = [
    "create_downsampling_tasks",
    "create_fixup_downsample_tasks",
    "compute_fixup_offsets",
    "check_factor",
    "check_memory_target",
    "plan_pyramid",
    "prepare_downsampling",
    "PreparedDownsample",
]

log = logging.getLogger(__name__)

MEMORY_TARGET = int(3.5e9)


def check_factor(factor) -> Vec:
    return Vec(*downsample_factor(factor))


def check_memory_target(memory_target) -> int:
    return int(byte_budget(memory_target, "memory_target"))


def check_count(value, name: str, minimum: int = 1) -> int:
    return count(value, name, minimum)


def pyramid_task_shape(
    base_chunk: Sequence[int], new_chunk: Sequence[int], factor: Sequence[int], num_mips: int
) -> Vec:
    """Smallest task shape whose every level is whole chunks: lcm(read chunk, new chunk × f^n)."""
    return Vec(*[math.lcm(int(b), int(c) * int(f) ** num_mips) for b, c, f in zip(base_chunk, new_chunk, factor)])


def create_downsampling_tasks(
    layer_path: str,
    mip: int = 0,
    fill_missing: bool = False,
    axis: str = "z",
    num_mips: Optional[int] = None,
    preserve_chunk_size: bool = True,
    sparse: bool = False,
    bounds=None,
    chunk_size: Optional[ShapeType] = None,
    encoding: Optional[str] = None,
    delete_black_uploads: bool = False,
    background_color: int = 0,
    dest_path: Optional[str] = None,
    compress=None,
    factor: Optional[ShapeType] = None,
    bounds_mip: int = 0,
    memory_target: int = MEMORY_TARGET,
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    method: int = DownsampleMethods.AUTO,
    codec_threads: int = 1,
):
    """Plan an unsharded pyramid above ``mip``, with the reference's levels and task shapes.

    Each task reads a block of ``chunk × factor^N`` voxels at ``mip``, N the most levels that
    fit ``memory_target`` bytes (input plus outputs), and writes its levels in one pass, so no
    level is ever re-read. Levels go on while they span whole chunks, plus a last one that
    fits in a single chunk; ``num_mips`` caps them (it does not shrink the tasks; more than
    the memory allows makes tasks bigger, with a warning).

    Args:
        layer_path: the layer (read at ``mip``; written at mip+1… unless ``dest_path``).
        method: a ``DownsampleMethods``; AUTO = avg for images, mode for segmentation.
        chunk_size: chunk size of the new scales (default: ``mip``'s, ``preserve_chunk_size``).
        encoding, encoding_level, encoding_effort: of the new scales (default: ``mip``'s).
        compress: none/gzip/br/zstd; None picks by encoding (none for jpeg/png/jxl/fpzip/zfpc).
        delete_black_uploads, background_color: delete rather than write all-background chunks.
        bounds, bounds_mip: restrict to a region; tasks stay inside it rounded up to whole
            chunks of the top level, so nothing outside is rewritten.

    Returns:
        A lazy, sized iterator of ``DownsampleTask``; provenance is recorded when it is exhausted.

    Raises:
        InvalidParameterError: before anything is written, for any unusable parameter.
    """
    job = prepare_downsampling(
        layer_path,
        mip=mip,
        fill_missing=fill_missing,
        axis=axis,
        num_mips=num_mips,
        preserve_chunk_size=preserve_chunk_size,
        sparse=sparse,
        bounds=bounds,
        chunk_size=chunk_size,
        encoding=encoding,
        delete_black_uploads=delete_black_uploads,
        background_color=background_color,
        dest_path=dest_path,
        compress=compress,
        factor=factor,
        bounds_mip=bounds_mip,
        memory_target=memory_target,
        encoding_level=encoding_level,
        encoding_effort=encoding_effort,
        method=method,
        codec_threads=codec_threads,
    )
    job.dest.commit_info()
    finish = functools.partial(
        record_provenance,
        job.dest_path or layer_path,
        "DownsampleTask",
        {**job.kwargs, "bounds": job.bounds, "shape": job.shape},
    )
    return GridTasks(job.bounds, job.shape, functools.partial(DownsampleTask, **job.kwargs), finish, clip=job.clip)


@dataclass
class PreparedDownsample:
    """A validated pyramid plan; ``dest.info`` holds the new scales, not yet committed."""

    vol: CloudVolume
    dest: CloudVolume
    dest_path: Optional[str]
    bounds: Bbox
    shape: Vec
    num_mips: int  # the levels the plan writes
    factor: Vec
    method: int
    kwargs: dict
    clip: bool = False  # cells cut to ``bounds`` (a bounded run never reaches past its region)


def prepare_downsampling(
    layer_path: str,
    mip: int = 0,
    fill_missing: bool = False,
    axis: str = "z",
    num_mips: Optional[int] = None,
    preserve_chunk_size: bool = True,
    sparse: bool = False,
    bounds=None,
    chunk_size: Optional[ShapeType] = None,
    encoding: Optional[str] = None,
    delete_black_uploads: bool = False,
    background_color: int = 0,
    dest_path: Optional[str] = None,
    compress=None,
    factor: Optional[ShapeType] = None,
    bounds_mip: int = 0,
    memory_target: int = MEMORY_TARGET,
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    method: int = DownsampleMethods.AUTO,
    codec_threads: int = 1,
) -> PreparedDownsample:
    """Validate and plan ``create_downsampling_tasks`` without writing anything: the destination
    info (with the new scales, not committed), the task grid and the tasks' arguments."""
    vol = open_volume(layer_path, mip)
    check_writable(dest_path or layer_path)
    codec_threads = whole(codec_threads, "codec_threads (0 = all cores)", 0)
    factor = check_factor(factor if factor is not None else dss.axis_to_factor(axis))
    method = resolve_method(method, vol.layer_type, vol.dtype)
    check_factor_for_method(method, factor)
    memory_target = check_memory_target(memory_target)
    encoding, compress = output_encoding(vol, mip, encoding, compress)
    if num_mips is not None:
        num_mips = check_count(num_mips, "num_mips")
    new_chunk = vol.meta.chunk_size(mip) if chunk_size is None else as_triple(chunk_size, "chunk_size")

    shape, levels = plan_pyramid(vol, mip, factor, new_chunk, memory_target, num_mips)
    if bounds is None:
        task_bounds = get_bounds(vol, None, mip, bounds_mip, chunk_size=shape)
    else:
        # Tasks stay inside the bounds rounded up to whole top-level chunks, however large the
        # memory target would let them be: nothing outside the requested region is rewritten.
        step = pyramid_task_shape(vol.meta.chunk_size(mip), new_chunk, factor, levels)
        task_bounds = get_bounds(vol, bounds, mip, bounds_mip, chunk_size=step)
        shape = Vec(*np.minimum(shape, step * -(-task_bounds.size3() // step)))

    dest_path = None if dest_path in (None, layer_path) or _same_path(dest_path, layer_path) else dest_path
    dest = _prepare_dest(vol, dest_path, mip) if dest_path else vol
    add_pyramid(dest, mip, [factor] * levels, new_chunk, encoding, encoding_level, encoding_effort)

    kwargs = task_kwargs(
        layer_path=layer_path,
        mip=mip,
        fill_missing=bool(fill_missing),
        axis=axis,
        sparse=bool(sparse),
        delete_black_uploads=bool(delete_black_uploads),
        background_color=background_color,
        dest_path=dest_path,
        compress=compress,
        factor=list(factor),
        max_mips=levels,
        method=int(method),
        codec_threads=codec_threads,
    )
    return PreparedDownsample(
        vol, dest, dest_path, task_bounds, shape, levels, factor, method, kwargs, clip=bounds is not None
    )


def plan_pyramid(vol: CloudVolume, mip: int, factor, chunk, memory_target: int, num_mips: Optional[int]):
    """``(task shape, levels)`` of an unsharded pyramid above ``mip``, as the reference plans it.

    The task is ``chunk × factor^N`` with N the levels that fit ``memory_target``, whatever
    ``num_mips`` asks: fewer levels do not mean smaller tasks (so fewer queue messages and
    requests). The levels are those the task shape writes over this volume
    (:func:`igneous.downsample_scales.compute_factors`), capped at ``num_mips``. An explicit
    ``num_mips`` above what the memory target allows is honoured with bigger tasks and one
    warning saying how much memory a task then needs.
    """
    try:
        memory_mips = dss.num_mips_from_memory_target(memory_target, vol.dtype, chunk, vol.num_channels, factor)
    except InvalidParameterError:
        if num_mips is None:
            raise
        memory_mips = 0
    volume = tuple(int(v) for v in vol.meta.volume_size(mip))
    # More levels than the whole volume has would only make tasks bigger (and 2^num_mips huge).
    possible = len(dss.compute_factors(volume, factor, chunk, volume))
    grow = max(memory_mips, min(num_mips or 0, possible))
    shape = pyramid_task_shape(vol.meta.chunk_size(mip), chunk, factor, grow)
    levels = len(dss.compute_factors(shape, factor, chunk, volume))
    if levels < 1:
        raise InvalidParameterError(
            f"no pyramid level to build: the layer at mip {mip} is {volume} voxels, at most one "
            f"{tuple(int(c) for c in chunk)} chunk on an axis that factor {tuple(int(f) for f in factor)} "
            "halves, so it is already the top of its pyramid; use a smaller chunk_size or another factor"
        )
    if num_mips is not None:
        if num_mips > levels:
            log.warning(
                "num_mips=%s: a %s layer in %s chunks has %s level(s) that fill at least a chunk; building %s",
                num_mips, volume, tuple(int(c) for c in chunk), levels, levels,
            )
        levels = min(levels, num_mips)
        if grow > memory_mips:
            itemsize = np.dtype(vol.dtype).itemsize * vol.num_channels
            needed = math.ceil(dss.task_memory(itemsize, np.minimum(shape, volume), factor))
            log.warning(
                "num_mips=%s needs tasks of %s voxels, about %s bytes each, above memory_target=%s "
                "(which fits num_mips=%s)",
                num_mips, tuple(int(v) for v in shape), f"{needed:,}", f"{memory_target:,}", memory_mips,
            )
    return shape, levels


def _same_path(a: str, b: str) -> bool:
    return cfpaths.normalize(a) == cfpaths.normalize(b)


def _prepare_dest(vol: CloudVolume, dest_path: str, mip: int) -> CloudVolume:
    """A destination layer for downsamples of ``vol``: its info truncated at ``mip``."""
    info = copy.deepcopy(vol.info)
    truncate_scales(info, mip)
    dest = CloudVolume(dest_path, info=info, progress=False, cdn_cache=False)
    return dest


def compute_fixup_offsets(vol: CloudVolume, points, shape) -> list:
    """Task offsets (at ``vol.mip``) of the ``shape`` blocks containing each point (mip-0 coords)."""
    shape = Vec(*shape)
    origin = vol.meta.voxel_offset(vol.mip)
    offsets = set()
    for pt in points:
        p = vol.point_to_mip(Vec(*pt), 0, vol.mip)
        offsets.add(tuple(origin + ((Vec(*p) - origin) // shape) * shape))
    return [Vec(*o) for o in sorted(offsets)]


def create_fixup_downsample_tasks(
    layer_path: str, points, shape: ShapeType = Vec(2048, 2048, 64), mip: int = 0, axis: str = "z"
):
    """Re-run ``DownsampleTask`` for the blocks around ``points`` (mip-0 voxel coordinates).

    ``shape`` must be a multiple of the chunk size times the pyramid factor per level so
    each re-run rewrites whole chunks.
    """
    vol = open_volume(layer_path, mip)
    shape = as_triple(shape, "shape")
    factor = Vec(*dss.axis_to_factor(axis))
    max_mips = len(vol.info["scales"]) - 1 - mip
    if max_mips < 1:
        raise InvalidParameterError(f"layer has no scales above mip {mip} to fix up; downsample it first")
    return [
        functools.partial(
            DownsampleTask,
            layer_path=layer_path,
            mip=mip,
            shape=list(shape),
            offset=list(o),
            axis=axis,
            factor=list(factor),
        )
        for o in compute_fixup_offsets(vol, points, shape)
    ]
