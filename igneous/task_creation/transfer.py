"""Planning transfers: copy, rechunk, re-encode, translate, with on-the-fly pyramids."""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import downsample_scales as dss
from igneous.errors import InvalidParameterError, LayerNotFoundError
from igneous.ops.downsample import check_factor_for_method, resolve_method
from igneous.readers import foreign
from igneous.scales import add_pyramid
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.task_creation.downsample import (
    MEMORY_TARGET,
    check_count,
    check_factor,
    check_memory_target,
)
from igneous.tasks.image.image import TransferTask
from igneous.types import DownsampleMethods, ShapeType
from igneous.volumes import (
    check_writable,
    clean_xfer_info,
    default_compress,
    open_volume,
    output_encoding,
    set_encoding,
)
from igneous.volumes import (
    truncate_scales as truncate_info_scales,
)

__all__ = [
    "create_transfer_tasks",
    "create_transfer_cloudvolume",
    "clean_xfer_info",
    "_select_compression_by_encoding",
    "check_distinct_layers",
    "prepare_transfer",
    "PreparedTransfer",
]


def _select_compression_by_encoding(encoding: str):
    """SPEC's 'auto' compression: gzip for raw and segmentation codecs, none for image codecs."""
    return default_compress(encoding)


def check_distinct_layers(src: str, dest: str) -> None:
    """The destination is neither the source nor inside it (a copy must not land among, or
    overwrite, the files it reads)."""
    a, b = cfpaths.normalize(src).rstrip("/"), cfpaths.normalize(dest).rstrip("/")
    if a == b:
        raise InvalidParameterError(
            f"destination {dest} is the source layer; transferring onto itself would overwrite the data it reads"
        )
    if b.startswith(a + "/"):
        raise InvalidParameterError(
            f"destination {dest} is inside the source layer {src}; choose a destination outside it"
        )


def _existing_info(path: str) -> Optional[dict]:
    try:
        return open_volume(path).info
    except LayerNotFoundError:
        return None


def create_transfer_cloudvolume(
    src_vol: CloudVolume,
    dst_cloudpath: str,
    dest_voxel_offset,
    mip: int,
    bounds_mip: int,
    encoding,
    encoding_level,
    encoding_effort,
    chunk_size,
    truncate_scales: bool,
    clean_info: bool,
    cutout: bool,
    bounds: Bbox,
    translate=(0, 0, 0),
) -> CloudVolume:
    """The destination layer's info (not yet committed): the source's, re-chunked, re-encoded,
    translated and cut out as asked. An existing destination keeps its own info."""
    existing = _existing_info(dst_cloudpath)
    if existing is not None:
        dest = CloudVolume(dst_cloudpath, progress=False, cdn_cache=False)
        _check_compatible(src_vol, dest, mip)
        _check_existing_layout(dest, mip, chunk_size, encoding, dest_voxel_offset, bounds + Vec(*translate))
        return dest

    info = copy.deepcopy(src_vol.info)
    if truncate_scales:
        truncate_info_scales(info, mip)
    if clean_info:
        clean_xfer_info(info)
    for scale in info["scales"]:  # the copy's layout is decided here, not inherited from a sharded source
        scale.pop("sharding", None)
    dest = CloudVolume(dst_cloudpath, info=info, progress=False, cdn_cache=False)
    translate = Vec(*translate)
    for m in range(len(dest.info["scales"])):
        scale = dest.info["scales"][m]
        ratio = np.array(dest.meta.resolution(mip), dtype=float) / np.array(dest.meta.resolution(m), dtype=float)
        shift = np.floor(np.array(translate) * ratio).astype(int)
        if cutout:
            box = src_vol.bbox_to_mip(bounds, mip, m)
            scale["voxel_offset"] = (box.minpt + shift).tolist()
            scale["size"] = box.size3().tolist()
        else:
            scale["voxel_offset"] = (np.array(scale["voxel_offset"]) + shift).tolist()
    if chunk_size is not None:
        dest.info["scales"][mip]["chunk_sizes"] = [list(chunk_size)]
    set_encoding(dest, mip, encoding, encoding_level, encoding_effort)
    return dest


def _check_compatible(src: CloudVolume, dest: CloudVolume, mip: int) -> None:
    if mip >= len(dest.info["scales"]):
        raise InvalidParameterError(f"existing destination {dest.cloudpath} has no mip {mip}")
    if np.dtype(src.dtype) != np.dtype(dest.dtype) or src.num_channels != dest.num_channels:
        raise InvalidParameterError(
            f"existing destination {dest.cloudpath} is {dest.dtype}×{dest.num_channels}; "
            f"source is {src.dtype}×{src.num_channels} (pick a new destination)"
        )


def _check_existing_layout(dest: CloudVolume, mip: int, chunk_size, encoding, dest_voxel_offset, region: Bbox) -> None:
    """An existing destination keeps its layout: options that would change it are refused rather
    than silently ignored, and so is a region it cannot hold (tasks would drop what falls outside)."""
    where = f"existing destination {dest.cloudpath} mip {mip}"
    have_chunk = tuple(int(c) for c in dest.meta.chunk_size(mip))
    if chunk_size is not None and tuple(int(c) for c in chunk_size) != have_chunk:
        raise InvalidParameterError(
            f"{where} has chunk size {have_chunk}; drop chunk_size or choose a new destination"
        )
    if encoding is not None and encoding != dest.meta.encoding(mip):
        raise InvalidParameterError(
            f"{where} is encoded {dest.meta.encoding(mip)}; drop encoding or choose a new destination"
        )
    have_offset = tuple(int(v) for v in dest.meta.voxel_offset(mip))
    if dest_voxel_offset is not None and tuple(int(v) for v in dest_voxel_offset) != have_offset:
        raise InvalidParameterError(
            f"{where} has voxel offset {have_offset}; drop dest_voxel_offset or choose a new destination"
        )
    bounds = dest.meta.bounds(mip)
    if Bbox.intersection(region, bounds) != region:
        raise InvalidParameterError(
            f"the region {region.minpt.tolist()}–{region.maxpt.tolist()} (after translate) is not inside the "
            f"{where} bounds {bounds.minpt.tolist()}–{bounds.maxpt.tolist()}; select bounds inside it or choose a "
            "new destination"
        )


def resolve_translate(src, mip: int, selected: Bbox, translate, dest_voxel_offset, cutout: bool) -> tuple[Vec, Optional[Vec]]:
    """``(translate, dest_voxel_offset)`` as Vecs: a ``dest_voxel_offset`` moves the source origin
    (or, with ``cutout``, the selected region's corner) there, and excludes ``translate``."""
    translate = Vec(0, 0, 0) if translate is None else as_triple(translate, "translate", positive=False)
    if dest_voxel_offset is None:
        return translate, None
    dest_voxel_offset = as_triple(dest_voxel_offset, "dest_voxel_offset", positive=False)
    if translate.any():
        raise InvalidParameterError("give translate or dest_voxel_offset, not both")
    origin = selected.minpt if cutout else src.meta.voxel_offset(mip)
    return dest_voxel_offset - origin, dest_voxel_offset


def create_transfer_tasks(
    src_layer_path: str,
    dest_layer_path: str,
    chunk_size: Optional[ShapeType] = None,
    shape: Optional[ShapeType] = None,
    fill_missing: bool = False,
    translate: Optional[ShapeType] = None,
    bounds=None,
    mip: int = 0,
    preserve_chunk_size: bool = True,
    encoding: Optional[str] = None,
    skip_downsamples: bool = False,
    delete_black_uploads: bool = False,
    background_color: int = 0,
    agglomerate: bool = False,
    timestamp: Optional[int] = None,
    compress="auto",
    factor: Optional[ShapeType] = None,
    sparse: bool = False,
    dest_voxel_offset: Optional[ShapeType] = None,
    memory_target: int = MEMORY_TARGET,
    max_mips: int = 5,
    clean_info: bool = False,
    no_src_update: bool = False,
    bounds_mip: int = 0,
    encoding_level: Optional[int] = None,
    truncate_scales: bool = True,
    cutout: bool = False,
    stop_layer: Optional[int] = None,
    downsample_method: int = DownsampleMethods.AUTO,
    encoding_effort: Optional[int] = None,
    use_https_for_source: bool = False,
):
    """Plan a copy of ``src_layer_path`` at ``mip`` into ``dest_layer_path``.

    Rechunks (``chunk_size``), re-encodes (``encoding``/``encoding_level``/``encoding_effort``),
    shifts (``translate`` or ``dest_voxel_offset``), crops (``bounds`` with ``cutout``) and,
    unless ``skip_downsamples``, builds up to ``max_mips`` pyramid levels from each task's
    block so the pyramid costs no second read. Task shape comes from ``memory_target``
    unless ``shape`` is given (it must be whole destination chunks).

    Returns:
        A lazy, sized iterator of ``TransferTask``; provenance is recorded on the destination
        (and on the source unless ``no_src_update``) when it is exhausted.

    Raises:
        InvalidParameterError: before anything is written, for any unusable parameter.
    """
    job = prepare_transfer(
        src_layer_path,
        dest_layer_path,
        chunk_size=chunk_size,
        shape=shape,
        fill_missing=fill_missing,
        translate=translate,
        bounds=bounds,
        mip=mip,
        preserve_chunk_size=preserve_chunk_size,
        encoding=encoding,
        skip_downsamples=skip_downsamples,
        delete_black_uploads=delete_black_uploads,
        background_color=background_color,
        agglomerate=agglomerate,
        timestamp=timestamp,
        compress=compress,
        factor=factor,
        sparse=sparse,
        dest_voxel_offset=dest_voxel_offset,
        memory_target=memory_target,
        max_mips=max_mips,
        clean_info=clean_info,
        no_src_update=no_src_update,
        bounds_mip=bounds_mip,
        encoding_level=encoding_level,
        truncate_scales=truncate_scales,
        cutout=cutout,
        stop_layer=stop_layer,
        downsample_method=downsample_method,
        encoding_effort=encoding_effort,
        use_https_for_source=use_https_for_source,
    )
    job.dest.commit_info()
    sources = [] if no_src_update else [src_layer_path]
    finish = functools.partial(
        _record_transfer,
        src_layer_path,
        dest_layer_path,
        not no_src_update,
        {**job.kwargs, "shape": job.shape, "bounds": job.bounds},
        sources,
    )
    return GridTasks(job.bounds, job.shape, functools.partial(TransferTask, **job.kwargs), finish)


@dataclass
class PreparedTransfer:
    """A validated transfer plan; ``dest.info`` is the destination's, not yet committed."""

    src: CloudVolume
    dest: CloudVolume
    bounds: Bbox  # the task grid's bounds, in destination voxels at ``mip``
    shape: Vec
    translate: Vec
    levels: int  # downsample levels each task writes
    kwargs: dict


def prepare_transfer(
    src_layer_path: str,
    dest_layer_path: str,
    chunk_size: Optional[ShapeType] = None,
    shape: Optional[ShapeType] = None,
    fill_missing: bool = False,
    translate: Optional[ShapeType] = None,
    bounds=None,
    mip: int = 0,
    preserve_chunk_size: bool = True,
    encoding: Optional[str] = None,
    skip_downsamples: bool = False,
    delete_black_uploads: bool = False,
    background_color: int = 0,
    agglomerate: bool = False,
    timestamp: Optional[int] = None,
    compress="auto",
    factor: Optional[ShapeType] = None,
    sparse: bool = False,
    dest_voxel_offset: Optional[ShapeType] = None,
    memory_target: int = MEMORY_TARGET,
    max_mips: int = 5,
    clean_info: bool = False,
    no_src_update: bool = False,
    bounds_mip: int = 0,
    encoding_level: Optional[int] = None,
    truncate_scales: bool = True,
    cutout: bool = False,
    stop_layer: Optional[int] = None,
    downsample_method: int = DownsampleMethods.AUTO,
    encoding_effort: Optional[int] = None,
    use_https_for_source: bool = False,
) -> PreparedTransfer:
    """Validate and plan ``create_transfer_tasks`` without writing anything."""
    check_distinct_layers(src_layer_path, dest_layer_path)
    src = open_volume(src_layer_path, mip, use_https=use_https_for_source)
    check_writable(dest_layer_path)
    factor = check_factor(factor if factor is not None else (2, 2, 1))
    memory_target = check_memory_target(memory_target)
    max_mips = check_count(max_mips, "max_mips", minimum=0)
    method = resolve_method(downsample_method, src.layer_type, src.dtype)
    if not skip_downsamples:
        check_factor_for_method(method, factor)
    foreign.check_readable(src, mip)
    encoding = foreign.default_encoding(src, mip, encoding)  # zarr/n5: their compressor is not an encoding
    encoding, compress = output_encoding(src, mip, encoding, compress)
    if chunk_size is not None:
        chunk_size = as_triple(chunk_size, "chunk_size")

    selected = get_bounds(src, bounds, mip, bounds_mip)
    translate, dest_voxel_offset = resolve_translate(src, mip, selected, translate, dest_voxel_offset, cutout)
    if dest_voxel_offset is None:  # OME-Zarr: land at the metadata's offset where CloudVolume misplaces it
        translate = translate + foreign.offset_shift(src, mip)

    dest = create_transfer_cloudvolume(
        src,
        dest_layer_path,
        dest_voxel_offset,
        mip,
        bounds_mip,
        encoding,
        encoding_level,
        encoding_effort,
        chunk_size,
        truncate_scales,
        clean_info,
        cutout,
        selected,
        translate,
    )
    dest_chunk = dest.meta.chunk_size(mip)
    itemsize = np.dtype(src.dtype).itemsize * src.num_channels

    shape_given = shape is not None
    if shape is None:
        copy_only = skip_downsamples or max_mips == 0
        shape = dss.downsample_shape_from_memory_target(
            itemsize, dest_chunk.x, dest_chunk.y, dest_chunk.z, (1, 1, 1) if copy_only else factor, memory_target,
            max_mips=math.inf if copy_only else max_mips,
        )
        if factor[2] == 1:
            shape = Vec(shape.x, shape.y, dest_chunk.z)
    else:
        shape = as_triple(shape, "shape")
    if np.any(shape % dest_chunk):
        raise InvalidParameterError(
            f"shape {tuple(shape)} must be a multiple of the destination chunk size {tuple(dest_chunk)}"
        )

    levels = 0
    if not skip_downsamples and max_mips > 0:
        levels = _levels_for(dest, mip, shape, factor, max_mips)
        if levels == 0 and shape_given:
            raise InvalidParameterError(
                f"shape {tuple(shape)} yields no downsample levels with factor {tuple(factor)} and chunk size "
                f"{tuple(dest_chunk)}; use a multiple of chunk × factor (e.g. {tuple(dest_chunk * factor)}) "
                "or skip downsamples"
            )
        if levels:
            add_pyramid(dest, mip, [factor] * levels, dest_chunk, encoding, encoding_level, encoding_effort)
    dest_bounds = Bbox.clamp(
        (selected + translate).expand_to_chunk_size(shape, offset=dest.meta.voxel_offset(mip)),
        dest.meta.bounds(mip),
    )

    kwargs = task_kwargs(
        src_path=src_layer_path,
        dest_path=dest_layer_path,
        mip=mip,
        translate=list(translate),
        fill_missing=bool(fill_missing),
        skip_downsamples=bool(skip_downsamples),
        delete_black_uploads=bool(delete_black_uploads),
        background_color=background_color,
        agglomerate=bool(agglomerate),
        timestamp=timestamp,
        compress=compress,
        factor=list(factor),
        sparse=bool(sparse),
        max_mips=max_mips,
        stop_layer=stop_layer,
        downsample_method=int(method),
        use_https_for_source=bool(use_https_for_source),
    )
    return PreparedTransfer(src, dest, dest_bounds, shape, translate, levels, kwargs)


def _levels_for(dest: CloudVolume, mip: int, shape: Vec, factor: Vec, max_mips: int) -> int:
    """Pyramid levels a task of ``shape`` can write chunk-aligned (scales added as if present)."""
    tiling = dss.compute_factors(shape, factor, dest.meta.chunk_size(mip), dest.meta.bounds(mip).size3())
    return min(max_mips, len(tiling))


def _record_transfer(src_path: str, dest_path: str, update_src: bool, params: dict, sources) -> None:
    record_provenance(dest_path, "TransferTask", params, sources)
    if update_src and src_path.split("://")[0] in ("gs", "s3", "file"):
        record_provenance(src_path, "TransferTask", {**params, "dest_path": dest_path})
