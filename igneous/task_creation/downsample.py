"""Planning unsharded image pyramids (``create_downsampling_tasks``)."""

from __future__ import annotations

import copy
import functools
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
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.tasks.image.image import DownsampleTask
from igneous.types import DownsampleMethods, ShapeType
from igneous.volumes import (
    open_volume,
    output_encoding,
    set_encoding,
    truncate_scales,
)

__all__ = [
    "create_downsampling_tasks",
    "create_fixup_downsample_tasks",
    "compute_fixup_offsets",
    "check_factor",
    "check_memory_target",
    "add_pyramid_scales",
    "prepare_downsampling",
    "PreparedDownsample",
]

MEMORY_TARGET = int(3.5e9)


def check_factor(factor) -> Vec:
    factor = as_triple(factor, "factor")
    if not any(f > 1 for f in factor):
        raise InvalidParameterError(f"factor {tuple(factor)} does not downsample; use e.g. 2,2,1 or 2,2,2")
    return factor


def check_memory_target(memory_target) -> int:
    try:
        value = float(memory_target)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"memory_target must be a number of bytes; got {memory_target!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidParameterError(f"memory_target must be a positive number of bytes; got {memory_target!r}")
    return int(value)


def check_count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def pyramid_task_shape(
    base_chunk: Sequence[int], new_chunk: Sequence[int], factor: Sequence[int], num_mips: int
) -> Vec:
    """Smallest task shape whose every level is whole chunks: lcm(read chunk, new chunk × f^n)."""
    return Vec(*[math.lcm(int(b), int(c) * int(f) ** num_mips) for b, c, f in zip(base_chunk, new_chunk, factor)])


def add_pyramid_scales(
    vol: CloudVolume,
    mip: int,
    num_mips: int,
    factor: Sequence[int],
    chunk_size,
    encoding: Optional[str],
    encoding_level,
    encoding_effort,
) -> None:
    """Add (or overwrite) ``num_mips`` scales above ``mip`` in ``vol.info`` (not committed)."""
    base = np.array(vol.meta.resolution(0), dtype=float)
    for k in range(1, num_mips + 1):
        res = np.array(vol.meta.resolution(mip), dtype=float) * np.array(factor, dtype=float) ** k
        ratio = np.round(res / base).astype(int)
        vol.meta.add_scale(ratio, encoding=encoding or vol.meta.encoding(mip), chunk_size=list(chunk_size))
        index = _scale_index(vol, res)
        set_encoding(vol, index, encoding, encoding_level, encoding_effort)


def _scale_index(vol: CloudVolume, res) -> int:
    for i, scale in enumerate(vol.info["scales"]):
        if np.allclose(scale["resolution"], res):
            return i
    raise AssertionError(f"scale {res} was not added")  # pragma: no cover


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
    """Plan an unsharded pyramid above ``mip``.

    Each task reads a block of ``chunk × factor^num_mips`` voxels at ``mip`` and writes all
    ``num_mips`` levels of it in one pass, so no level is ever re-read. ``num_mips=None``
    picks as many levels as fit ``memory_target`` bytes per task (input plus outputs).

    Args:
        layer_path: the layer (read at ``mip``; written at mip+1… unless ``dest_path``).
        method: a ``DownsampleMethods``; AUTO = avg for images, mode for segmentation.
        chunk_size: chunk size of the new scales (default: ``mip``'s, ``preserve_chunk_size``).
        encoding, encoding_level, encoding_effort: of the new scales (default: ``mip``'s).
        compress: none/gzip/br/zstd; None picks by encoding (none for jpeg/png/jxl/fpzip/zfpc).
        delete_black_uploads, background_color: delete rather than write all-background chunks.
        bounds, bounds_mip: restrict to a region (expanded to whole task blocks).

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
    return GridTasks(job.bounds, job.shape, functools.partial(DownsampleTask, **job.kwargs), finish)


@dataclass
class PreparedDownsample:
    """A validated pyramid plan; ``dest.info`` holds the new scales, not yet committed."""

    vol: CloudVolume
    dest: CloudVolume
    dest_path: Optional[str]
    bounds: Bbox
    shape: Vec
    num_mips: int
    factor: Vec
    method: int
    kwargs: dict


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
    factor = check_factor(factor if factor is not None else dss.axis_to_factor(axis))
    method = resolve_method(method, vol.layer_type, vol.dtype)
    check_factor_for_method(method, factor)
    memory_target = check_memory_target(memory_target)
    encoding, compress = output_encoding(vol, mip, encoding, compress)
    base_chunk = vol.meta.chunk_size(mip)
    new_chunk = base_chunk if chunk_size is None else as_triple(chunk_size, "chunk_size")
    if chunk_size is not None and not preserve_chunk_size:
        preserve_chunk_size = False

    if num_mips is None:
        num_mips = dss.num_mips_from_memory_target(memory_target, vol.dtype, new_chunk, vol.num_channels, factor)
    num_mips = check_count(num_mips, "num_mips")
    shape = pyramid_task_shape(base_chunk, new_chunk, factor, num_mips)
    task_bounds = get_bounds(vol, bounds, mip, bounds_mip, chunk_size=shape)

    dest_path = None if dest_path in (None, layer_path) or _same_path(dest_path, layer_path) else dest_path
    dest = _prepare_dest(vol, dest_path, mip) if dest_path else vol
    add_pyramid_scales(dest, mip, num_mips, factor, new_chunk, encoding, encoding_level, encoding_effort)

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
        max_mips=num_mips,
        method=int(method),
        codec_threads=codec_threads,
    )
    return PreparedDownsample(vol, dest, dest_path, task_bounds, shape, num_mips, factor, method, kwargs)


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
