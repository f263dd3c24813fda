"""Planning contrast work (SPEC §2.1): luminance histograms, histogram stretch, CLAHE.

``create_luminance_levels_tasks`` samples each z-slice into ``levels/{mip}/{z}``;
``create_contrast_normalization_tasks`` stretches each slice between the clip percentiles
of its histogram into a new layer (with downsamples); ``create_clahe_tasks`` applies
OpenCV's CLAHE slice by slice with no seams between tasks.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import downsample_scales as dss
from igneous.errors import InvalidParameterError
from igneous.ops.contrast import LEVELS_DTYPES
from igneous.scales import add_pyramid
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs, to_bbox
from igneous.task_creation.transfer import check_distinct_layers, create_transfer_cloudvolume
from igneous.tasks.image.contrast import CLAHETask, ContrastNormalizationTask, LuminanceLevelsTask, levels_key
from igneous.volumes import open_volume

__all__ = [
    "create_luminance_levels_tasks",
    "create_contrast_normalization_tasks",
    "create_clahe_tasks",
    "plan_contrast_normalization",
    "plan_clahe",
    "DestPlan",
    "levels_summary",
]

log = logging.getLogger(__name__)

EQUALIZE_SHAPE = (2048, 2048, 64)
CLAHE_XY = 2048


def _contrast_volume(path: str, mip: int, what: str):
    vol = open_volume(path, mip)
    if np.dtype(vol.dtype).name not in LEVELS_DTYPES or vol.num_channels != 1:
        raise InvalidParameterError(
            f"{what} works on one channel of uint8 or uint16; {path} has {vol.num_channels} channel(s) of "
            f"{np.dtype(vol.dtype).name}"
        )
    return vol


def _exact_bounds(vol, bounds, mip: int, bounds_mip: int) -> Bbox:
    """``bounds`` (at ``bounds_mip``) at ``mip``, clipped to the layer but not grown to chunks."""
    layer = vol.meta.bounds(mip)
    if bounds is None:
        return layer
    box = vol.bbox_to_mip(to_bbox(bounds), bounds_mip, mip)
    box = Bbox.intersection(box, layer)
    if box.subvoxel():
        raise InvalidParameterError(f"bounds {to_bbox(bounds).to_list()} (at mip {bounds_mip}) miss the layer")
    return box


def create_luminance_levels_tasks(
    layer_path: str,
    levels_path: Optional[str] = None,
    coverage_factor: float = 0.01,
    shape=None,
    offset=None,
    mip: int = 0,
    bounds_mip: int = 0,
    bounds=None,
):
    """One ``LuminanceLevelsTask`` per z-slice of ``bounds``: a histogram of random 2048² patches
    covering ``coverage_factor`` of the slice (at least one patch), written to
    ``{levels_path or layer_path}/levels/{mip}/{z}``.

    ``shape`` and ``offset`` are deprecated and ignored (use ``bounds``). Slices are
    ``bounds``' z range, half-open (the reference's inclusive upper z named a slice
    outside the layer).
    """
    vol = _contrast_volume(layer_path, mip, "a luminance histogram")
    if not 0 < float(coverage_factor) <= 1:
        raise InvalidParameterError(f"coverage_factor must be in (0, 1]; got {coverage_factor!r}")
    if shape is not None or offset is not None:
        log.warning("create_luminance_levels_tasks: shape and offset are deprecated and ignored; use bounds")
    box = _exact_bounds(vol, bounds, mip, bounds_mip)
    size = box.size3()
    kwargs = dict(src_path=layer_path, levels_path=levels_path, coverage_factor=float(coverage_factor), mip=mip)
    finish = functools.partial(record_provenance, layer_path, "LuminanceLevelsTask", {**kwargs, "bounds": box})
    return GridTasks(box, (int(size[0]), int(size[1]), 1), functools.partial(LuminanceLevelsTask, **kwargs), finish,
                     instantiate=True)  # fmt: skip


def _check_levels(levels_path: str, mip: int, box: Bbox) -> None:
    present = set(CloudFiles(levels_path).list(prefix=f"levels/{mip}/"))
    for z in range(int(box.minpt.z), int(box.maxpt.z)):
        if levels_key(mip, z) not in present:
            raise InvalidParameterError(
                f"no histogram {levels_path}/{levels_key(mip, z)}; run `igneous image contrast histogram` "
                f"over z {int(box.minpt.z)}-{int(box.maxpt.z)} first"
            )


def _check_range(vol, minval, maxval) -> None:
    info = np.iinfo(vol.dtype)
    lo = 0 if minval is None else minval
    hi = info.max if maxval is None else maxval
    for name, value in (("minval", lo), ("maxval", hi)):
        if not info.min <= value <= info.max:
            raise InvalidParameterError(f"{name} must be within {np.dtype(vol.dtype).name}'s [{info.min}, {info.max}]")
    if lo >= hi:
        raise InvalidParameterError(f"minval ({lo}) must be below maxval ({hi})")


def _task_shape(vol, mip: int, shape, default) -> Vec:
    shape = as_triple(default if shape is None else shape, "shape")
    chunk = vol.meta.chunk_size(mip)
    if np.any(np.asarray(shape) % np.asarray(chunk)):
        raise InvalidParameterError(f"shape {tuple(shape)} must be a multiple of the chunk size {tuple(chunk)}")
    return shape


@dataclass(frozen=True)
class DestPlan:
    """A planned job that writes a new layer: its ``info`` (not yet committed) and its task grid."""

    dest: CloudVolume
    tasks: GridTasks

    def files_written(self) -> list:
        return ["info", f"{len(self.tasks)} tasks' chunks", "provenance"]


def create_contrast_normalization_tasks(
    src_path: str,
    dest_path: str,
    levels_path: Optional[str] = None,
    shape=None,
    mip: int = 0,
    clip_fraction: float = 0.01,
    fill_missing: bool = False,
    translate=(0, 0, 0),
    minval=None,
    maxval=None,
    bounds=None,
    bounds_mip: int = 0,
):
    """Stretch every z-slice between its clip percentiles into ``dest_path``, with downsamples.

    Each slice's histogram (``levels/{mip}/{z}``, from :func:`create_luminance_levels_tasks`)
    gives ``lower``/``upper``: the values clipping ``clip_fraction`` of its non-zero voxels
    at each end. Voxels map linearly ``lower → minval`` (default 0) and ``upper → maxval``
    (default the dtype's maximum), clamped. The destination is a copy of the source's info
    truncated at ``mip`` and shifted by ``translate``, plus the pyramid levels the task
    ``shape`` (default 2048×2048×64) can write. :func:`plan_contrast_normalization` gives
    the same plan without writing.

    Raises:
        InvalidParameterError: a dtype other than uint8/uint16, a missing histogram, a
            clip fraction outside [0, 0.5), an empty or inverted [minval, maxval], …
    """
    plan = plan_contrast_normalization(src_path, dest_path, levels_path, shape, mip, clip_fraction, fill_missing,
                                       translate, minval, maxval, bounds, bounds_mip)  # fmt: skip
    plan.dest.commit_info()
    return plan.tasks


def plan_contrast_normalization(
    src_path: str,
    dest_path: str,
    levels_path: Optional[str] = None,
    shape=None,
    mip: int = 0,
    clip_fraction: float = 0.01,
    fill_missing: bool = False,
    translate=(0, 0, 0),
    minval=None,
    maxval=None,
    bounds=None,
    bounds_mip: int = 0,
):
    """Validate and plan ``create_contrast_normalization_tasks``; writes nothing."""
    check_distinct_layers(src_path, dest_path)
    vol = _contrast_volume(src_path, mip, "contrast normalization")
    if not 0 <= float(clip_fraction) < 0.5:
        raise InvalidParameterError(f"clip_fraction must be in [0, 0.5); got {clip_fraction!r}")
    _check_range(vol, minval, maxval)
    translate = as_triple(translate, "translate", positive=False)
    shape = _task_shape(vol, mip, shape, EQUALIZE_SHAPE)
    task_bounds = get_bounds(vol, bounds, mip, bounds_mip)
    levels_path = levels_path or src_path
    _check_levels(levels_path, mip, task_bounds)
    dest = create_transfer_cloudvolume(vol, dest_path, None, mip, bounds_mip, None, None, None, None, True, False,
                                       False, task_bounds, translate)  # fmt: skip
    chunk = dest.meta.chunk_size(mip)
    levels = len(dss.compute_factors(shape, (2, 2, 1), chunk, dest.meta.volume_size(mip)))
    if levels:
        add_pyramid(dest, mip, [(2, 2, 1)] * levels, chunk)
    kwargs = task_kwargs(src_path=src_path, dest_path=dest_path, levels_path=levels_path, mip=mip,
                         clip_fraction=float(clip_fraction), fill_missing=bool(fill_missing), translate=translate,
                         minval=minval, maxval=maxval)  # fmt: skip
    finish = functools.partial(record_provenance, dest_path, "ContrastNormalizationTask",
                               {**kwargs, "shape": shape, "bounds": task_bounds}, [src_path])  # fmt: skip
    grid = GridTasks(task_bounds, shape, functools.partial(ContrastNormalizationTask, **kwargs), finish,
                     instantiate=True)  # fmt: skip
    return DestPlan(dest, grid)


def create_clahe_tasks(
    src: str,
    dest: str,
    shape=None,
    mip: int = 0,
    fill_missing: bool = False,
    bounds=None,
    bounds_mip: int = 0,
    clip_limit: float = 40.0,
    tile_grid_size=(8, 8),
):
    """OpenCV CLAHE of every z-slice into ``dest``, seamless across tasks.

    CLAHE tiles are ``shape[:2] / tile_grid_size`` pixels (default shape 2048×2048×chunk z,
    so 256-pixel tiles), laid on a grid anchored to the layer's origin. Each task reads
    its box grown by one tile on each side and keeps the box, so the result equals
    ``cv2.createCLAHE`` applied to each whole slice with the same tiles — no seams. Work
    per task is about (box + 2 tiles)² / box² of the box alone. :func:`plan_clahe` gives
    the same plan without writing.

    Raises:
        InvalidParameterError: a dtype other than uint8/uint16, a non-positive clip limit or
            grid, a shape that is not whole chunks, or tiles smaller than 2 pixels.
    """
    plan = plan_clahe(src, dest, shape, mip, fill_missing, bounds, bounds_mip, clip_limit, tile_grid_size)
    plan.dest.commit_info()
    return plan.tasks


def plan_clahe(
    src: str,
    dest: str,
    shape=None,
    mip: int = 0,
    fill_missing: bool = False,
    bounds=None,
    bounds_mip: int = 0,
    clip_limit: float = 40.0,
    tile_grid_size=(8, 8),
):
    """Validate and plan ``create_clahe_tasks``; writes nothing."""
    check_distinct_layers(src, dest)
    vol = _contrast_volume(src, mip, "CLAHE")
    if not float(clip_limit) > 0:
        raise InvalidParameterError(f"clip_limit must be positive; got {clip_limit!r}")
    grid = tuple(tile_grid_size)
    if len(grid) != 2 or any(int(g) != g or g < 1 for g in grid):
        raise InvalidParameterError(f"tile_grid_size must be two positive integers; got {tile_grid_size!r}")
    chunk = vol.meta.chunk_size(mip)
    if shape is None:
        shape = [int(math.ceil(CLAHE_XY / c)) * int(c) for c in chunk[:2]] + [int(chunk[2])]
    shape = _task_shape(vol, mip, shape, None)
    if any(int(s) / int(g) < 2 for s, g in zip(shape[:2], grid)):
        raise InvalidParameterError(f"shape {tuple(shape)} over tile_grid_size {grid} gives tiles under 2 pixels")
    task_bounds = get_bounds(vol, bounds, mip, bounds_mip)
    destvol = create_transfer_cloudvolume(vol, dest, None, mip, bounds_mip, None, None, None, None, True, False, False,
                                          task_bounds)  # fmt: skip
    kwargs = task_kwargs(src=src, dest=dest, mip=mip, fill_missing=bool(fill_missing), clip_limit=float(clip_limit),
                         tile_grid_size=[int(g) for g in grid])  # fmt: skip
    finish = functools.partial(record_provenance, dest, "CLAHETask", {**kwargs, "shape": shape}, [src])
    return DestPlan(destvol, GridTasks(task_bounds, shape, functools.partial(CLAHETask, **kwargs), finish))


def levels_summary(layer_path: str, mip: int = 0, levels_path: Optional[str] = None,
                   clip_fraction: float = 0.01) -> dict:  # fmt: skip
    """Per z: ``{z: (lower clip, median, upper clip)}`` from the written histograms (for plots)."""
    from igneous.ops.contrast import clip_values, percentile_value

    cf = CloudFiles(levels_path or layer_path)
    names = sorted(cf.list(prefix=f"levels/{mip}/"), key=lambda n: int(n.rsplit("/", 1)[1]))
    if not names:
        raise InvalidParameterError(f"no histograms under {levels_path or layer_path}/levels/{mip}/; run histogram first")
    out = {}
    for name, obj in zip(names, cf.get_json(names)):
        z = int(name.rsplit("/", 1)[1])
        levels = np.asarray(obj["levels"], dtype=np.int64)
        clip = clip_values(levels, clip_fraction)
        if clip is not None:
            out[z] = (clip[0], percentile_value(levels, 0.5), clip[1])
    return out

