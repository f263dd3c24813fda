"""Planning sharded image transfers and pyramids (``create_image_shard_*_tasks``, SPEC §2.1).

Each creator has a ``prepare_*`` twin that validates, plans and builds the destination info
without writing anything; ``igneous design shard-xfer|shard-ds`` prints that plan, and the
creator commits it and returns the tasks.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.errors import InvalidParameterError
from igneous.ops.downsample import check_factor_for_method, resolve_method
from igneous.scales import add_pyramid
from igneous.shards import check_index_encoding
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.task_creation.downsample import MEMORY_TARGET, check_count, check_memory_target
from igneous.task_creation.sharding import (
    ShardPlan,
    create_sharded_image_info,
    plan_shard_pyramid,
    plan_shard_transfer,
    shard_data_encoding,
)
from igneous.task_creation.transfer import check_distinct_layers, create_transfer_cloudvolume, resolve_translate
from igneous.tasks.image.shards import ImageShardDownsampleTask, ImageShardTransferTask
from igneous.types import DownsampleMethods
from igneous.validate import whole
from igneous.volumes import check_writable, normalize_encoding, open_volume, output_encoding
from igneous.volumes import truncate_scales as truncate_info_scales

__all__ = [
    "create_image_shard_transfer_tasks",
    "create_image_shard_downsample_tasks",
    "create_sharded_image_info",
    "prepare_shard_transfer",
    "prepare_shard_downsample",
]

log = logging.getLogger(__name__)
SHARD_FACTORS = ((2, 2, 1), (2, 2, 2))
LOSSY = ("jpeg", "jxl")


@dataclass
class PreparedShardJob:
    """A validated plan: the layer info to commit, the task grid and its arguments."""

    vol: CloudVolume
    plan: ShardPlan
    bounds: Bbox
    kwargs: dict
    memory_target: int = 0


def _bpv(vol: CloudVolume) -> int:
    return int(np.dtype(vol.dtype).itemsize) * int(vol.num_channels)


def prepare_shard_transfer(
    src_layer_path: str,
    dst_layer_path: str,
    mip: int = 0,
    chunk_size=None,
    encoding: Optional[str] = None,
    bounds=None,
    bounds_mip: int = 0,
    fill_missing: bool = False,
    translate=(0, 0, 0),
    dest_voxel_offset=None,
    agglomerate: bool = False,
    timestamp=None,
    memory_target: int = MEMORY_TARGET,
    clean_info: bool = False,
    encoding_level=None,
    truncate_scales: bool = True,
    compress="auto",
    cutout: bool = False,
    minishard_index_encoding: str = "gzip",
    stop_layer=None,
    encoding_effort=None,
    use_https_for_source: bool = False,
) -> PreparedShardJob:
    check_distinct_layers(src_layer_path, dst_layer_path)
    src = open_volume(src_layer_path, mip, use_https=use_https_for_source)
    check_writable(dst_layer_path)
    memory_target = check_memory_target(memory_target)
    check_index_encoding(minishard_index_encoding)
    encoding, _ = output_encoding(src, mip, encoding, None)
    written = encoding or src.meta.encoding(mip)
    data_encoding = shard_data_encoding(written, compress)
    if chunk_size is not None:
        chunk_size = as_triple(chunk_size, "chunk_size")

    selected = get_bounds(src, bounds, mip, bounds_mip)
    translate, dest_voxel_offset = resolve_translate(src, mip, selected, translate, dest_voxel_offset, cutout)

    existing_spec = None
    dest = create_transfer_cloudvolume(
        src, dst_layer_path, dest_voxel_offset, mip, bounds_mip, encoding, encoding_level, encoding_effort,
        chunk_size, truncate_scales, clean_info, cutout, selected, translate,
    )
    scale = dest.info["scales"][mip]
    if "sharding" in scale and _committed(dst_layer_path):
        existing_spec = scale["sharding"]
        _check_existing(dest, mip, existing_spec)
    elif _committed(dst_layer_path):
        raise InvalidParameterError(
            f"destination {dst_layer_path} exists and mip {mip} is not sharded; choose a new destination"
        )

    plan = plan_shard_transfer(
        dest.meta.volume_size(mip), dest.meta.chunk_size(mip), mip, _bpv(dest), dest.meta.encoding(mip),
        memory_target, spec=existing_spec, minishard_index_encoding=minishard_index_encoding,
        data_encoding=data_encoding,
    )
    scale["sharding"] = plan.levels[0].spec
    shape = Vec(*plan.task_shape)
    region = selected + translate
    task_bounds = Bbox.clamp(region.expand_to_chunk_size(shape, offset=dest.meta.voxel_offset(mip)), dest.meta.bounds(mip))
    if task_bounds != region:
        if existing_spec is not None:
            raise InvalidParameterError(
                f"shards of the existing destination are {'×'.join(map(str, shape))} voxels and are rewritten "
                f"whole: the region {region.minpt.tolist()}–{region.maxpt.tolist()} would overwrite the rest of "
                f"{task_bounds.minpt.tolist()}–{task_bounds.maxpt.tolist()}; select shard-aligned bounds or "
                "choose a new destination"
            )
        log.info("Sharded writes are whole shards: the region grows to %s", task_bounds)
    kwargs = task_kwargs(
        src_path=src_layer_path,
        dst_path=dst_layer_path,
        mip=mip,
        fill_missing=bool(fill_missing),
        translate=list(translate),
        agglomerate=bool(agglomerate),
        timestamp=timestamp,
        stop_layer=stop_layer,
        use_https_for_source=bool(use_https_for_source),
    )
    return PreparedShardJob(dest, plan, task_bounds, kwargs, memory_target)


def _committed(path: str) -> bool:
    from igneous.task_creation.transfer import _existing_info

    return _existing_info(path) is not None


def _check_existing(dest: CloudVolume, mip: int, spec: dict) -> None:
    from igneous.shards import grid_size, morton_bits

    total = sum(morton_bits(grid_size(dest.meta.volume_size(mip), dest.meta.chunk_size(mip))))
    used = int(spec["preshift_bits"]) + int(spec["minishard_bits"]) + int(spec["shard_bits"])
    if spec.get("hash") != "identity" or used < total:
        raise InvalidParameterError(
            f"destination {dest.cloudpath} mip {mip} has a sharding spec that does not give each region its own "
            "shard file; choose a new destination"
        )


def create_image_shard_transfer_tasks(
    src_layer_path: str,
    dst_layer_path: str,
    mip: int = 0,
    chunk_size=None,
    encoding: Optional[str] = None,
    bounds=None,
    bounds_mip: int = 0,
    fill_missing: bool = False,
    translate=(0, 0, 0),
    dest_voxel_offset=None,
    agglomerate: bool = False,
    timestamp=None,
    memory_target: int = MEMORY_TARGET,
    clean_info: bool = False,
    encoding_level=None,
    truncate_scales: bool = True,
    compress="auto",
    cutout: bool = False,
    minishard_index_encoding: str = "gzip",
    stop_layer=None,
    encoding_effort=None,
    use_https_for_source: bool = False,
):
    """Plan a sharded copy of ``src_layer_path`` at ``mip``: one task per destination shard.

    Shards are as large as ``memory_target`` allows (as an uncompressed byte target and in the
    task's memory model); each chunk is stored gzip or raw (``compress``; image codecs raw).
    A selected region grows to whole shards. An existing destination must already be sharded
    at ``mip`` with a non-aliasing spec, which is kept.

    Returns:
        A lazy, sized iterator of ``ImageShardTransferTask``.

    Raises:
        InvalidParameterError: before anything is written, for any unusable parameter.
    """
    job = prepare_shard_transfer(
        src_layer_path, dst_layer_path, mip=mip, chunk_size=chunk_size, encoding=encoding, bounds=bounds,
        bounds_mip=bounds_mip, fill_missing=fill_missing, translate=translate, dest_voxel_offset=dest_voxel_offset,
        agglomerate=agglomerate, timestamp=timestamp, memory_target=memory_target, clean_info=clean_info,
        encoding_level=encoding_level, truncate_scales=truncate_scales, compress=compress, cutout=cutout,
        minishard_index_encoding=minishard_index_encoding, stop_layer=stop_layer, encoding_effort=encoding_effort,
        use_https_for_source=use_https_for_source,
    )
    job.vol.commit_info()
    finish = functools.partial(
        record_provenance, dst_layer_path, "ImageShardTransferTask",
        {**job.kwargs, "shape": list(job.plan.task_shape), "bounds": job.bounds}, [src_layer_path],
    )
    return GridTasks(job.bounds, job.plan.task_shape, functools.partial(ImageShardTransferTask, **job.kwargs), finish)


def prepare_shard_downsample(
    cloudpath: str,
    mip: int = 0,
    fill_missing: bool = False,
    sparse: bool = False,
    chunk_size=None,
    encoding: Optional[str] = None,
    memory_target: int = MEMORY_TARGET,
    agglomerate: bool = False,
    timestamp=None,
    factor=(2, 2, 1),
    bounds=None,
    bounds_mip: int = 0,
    encoding_level=None,
    encoding_effort=None,
    method=DownsampleMethods.AUTO,
    num_mips: Optional[int] = None,
    truncate_scales: bool = True,
    codec_threads: int = 1,
) -> PreparedShardJob:
    vol = open_volume(cloudpath, mip)
    check_writable(cloudpath)
    codec_threads = whole(codec_threads, "codec_threads (0 = all cores)", 0)
    memory_target = check_memory_target(memory_target)
    factor = as_triple(factor, "factor")
    if tuple(factor) not in SHARD_FACTORS:
        raise InvalidParameterError(f"sharded pyramids use factor 2,2,1 or 2,2,2; got {','.join(map(str, factor))}")
    method = resolve_method(method, vol.layer_type, vol.dtype)
    check_factor_for_method(method, factor)
    encoding, _ = output_encoding(vol, mip, encoding, None)
    written = encoding or vol.meta.encoding(mip)
    chunk = as_triple(chunk_size, "chunk_size") if chunk_size is not None else Vec(*vol.meta.chunk_size(mip))
    bpv = _bpv(vol)
    explicit = num_mips is not None
    wanted = check_count(num_mips, "num_mips") if explicit else 3

    def attempt(n: int, over_target_ok: bool) -> PreparedShardJob:
        info_vol = CloudVolume(cloudpath, info=_copy_info(vol.info), progress=False, cdn_cache=False)
        if truncate_scales:
            truncate_info_scales(info_vol.info, mip)
        add_pyramid(info_vol, mip, [factor] * n, chunk, encoding, encoding_level, encoding_effort)
        lossless_top = _lossless_top(info_vol, mip + n, written, n)
        sizes = [tuple(int(v) for v in info_vol.meta.volume_size(mip + k)) for k in range(1, n + 1)]
        data_encodings = [shard_data_encoding(info_vol.meta.encoding(mip + k)) for k in range(1, n + 1)]
        plan = plan_shard_pyramid(
            vol.meta.volume_size(mip), vol.meta.chunk_size(mip), sizes, chunk, mip, factor, bpv, memory_target,
            data_encodings, over_target_ok=over_target_ok,
        )
        for level in plan.levels:
            info_vol.info["scales"][level.mip]["sharding"] = level.spec
        if lossless_top:
            log.warning("num_mips > 1: mip %d is stored %s so later passes do not compound loss", mip + n, lossless_top)
        elif n == 1 and normalize_encoding(written) in LOSSY:
            log.warning(
                "mip %d is stored %s, lossy: a later pass built from it compounds the loss (use num_mips > 1 to "
                "keep the top level lossless)", mip + 1, written,
            )
        selected = get_bounds(vol, bounds, mip, bounds_mip, chunk_size=plan.task_shape)
        kwargs = task_kwargs(
            src_path=cloudpath, mip=mip, fill_missing=bool(fill_missing), sparse=bool(sparse),
            agglomerate=bool(agglomerate), timestamp=timestamp, factor=list(factor), method=int(method),
            num_mips=n, codec_threads=int(codec_threads),
        )
        return PreparedShardJob(info_vol, plan, selected, kwargs, memory_target)

    if explicit:
        job = attempt(wanted, over_target_ok=True)
    else:
        # Without an explicit num_mips, fewer levels are planned rather than exceeding the
        # memory target; one level always runs (with a warning if even that is over).
        for n in range(wanted, 0, -1):
            try:
                job = attempt(n, over_target_ok=n == 1)
            except InvalidParameterError:
                if n == 1:
                    raise
                continue
            if n < wanted:
                log.warning("num_mips reduced to %d to fit memory_target %s", n, memory_target)
            break
    if bounds is not None and get_bounds(vol, bounds, mip, bounds_mip) != vol.meta.bounds(mip):
        _check_partial_rebuild(vol.info, job.vol.info, mip)
    return job


def _check_partial_rebuild(before: dict, after: dict, mip: int) -> None:
    """A run over part of the layer rewrites only the shards inside its bounds, so every level it
    touches must keep its layout, and levels it does not rebuild must stay in the info: else the
    shards outside the bounds would be read with a spec they were not written with, or lost."""
    old, new = before["scales"], after["scales"]
    layout = ("size", "voxel_offset", "chunk_sizes", "encoding", "sharding")
    for level in range(mip + 1, len(old)):
        if level >= len(new):
            raise InvalidParameterError(
                f"bounds cover part of the layer, and the plan would drop mip {level} from the info; "
                "use num_mips to rebuild it too, or truncate_scales=False"
            )
        changed = [k for k in layout if old[level].get(k) != new[level].get(k)]
        if changed:
            raise InvalidParameterError(
                f"bounds cover part of the layer, and mip {level} already exists laid out differently "
                f"({', '.join(changed)}); use the memory_target, chunk_size and encoding of the run that wrote it, "
                "or rebuild the whole layer"
            )


def _copy_info(info: dict) -> dict:
    import copy

    return copy.deepcopy(info)


def _lossless_top(vol: CloudVolume, top: int, encoding: str, num_mips: int) -> Optional[str]:
    """With several levels, the top one is what the next pass reads: store it without loss."""
    if num_mips < 2 or normalize_encoding(encoding) not in LOSSY:
        return None
    scale = vol.info["scales"][top]
    if encoding == "jpeg":
        for key in ("jpeg_quality",):
            scale.pop(key, None)
        scale["encoding"] = "png"
        scale["png_level"] = 9
        return "png (level 9)"
    scale["jxl_quality"] = 100
    return "jxl at quality 100 (lossless)"


def create_image_shard_downsample_tasks(
    cloudpath: str,
    mip: int = 0,
    fill_missing: bool = False,
    sparse: bool = False,
    chunk_size=None,
    encoding: Optional[str] = None,
    memory_target: int = MEMORY_TARGET,
    agglomerate: bool = False,
    timestamp=None,
    factor=(2, 2, 1),
    bounds=None,
    bounds_mip: int = 0,
    encoding_level=None,
    encoding_effort=None,
    method=DownsampleMethods.AUTO,
    num_mips: Optional[int] = None,
    truncate_scales: bool = True,
    codec_threads: int = 1,
):
    """Plan ``num_mips`` sharded levels above ``mip`` in one pass (default 3, fewer if 3 cannot
    fit ``memory_target``; an explicit ``num_mips`` is honoured or refused).

    Each task reads a box at ``mip`` in z-slabs and writes every shard of every level inside
    it. Per-level shard specs are chosen so that no shard straddles two tasks; the top level
    is stored lossless when ``num_mips > 1`` and the encoding is jpeg or jxl.

    Returns:
        A lazy, sized iterator of ``ImageShardDownsampleTask``.

    Raises:
        InvalidParameterError: before anything is written; an impossible plan names a
            num_mips, chunk_size or memory_target that would work.
    """
    job = prepare_shard_downsample(
        cloudpath, mip=mip, fill_missing=fill_missing, sparse=sparse, chunk_size=chunk_size, encoding=encoding,
        memory_target=memory_target, agglomerate=agglomerate, timestamp=timestamp, factor=factor, bounds=bounds,
        bounds_mip=bounds_mip, encoding_level=encoding_level, encoding_effort=encoding_effort, method=method,
        num_mips=num_mips, truncate_scales=truncate_scales, codec_threads=codec_threads,
    )
    job.vol.commit_info()
    finish = functools.partial(
        record_provenance, cloudpath, "ImageShardDownsampleTask",
        {**job.kwargs, "shape": list(job.plan.task_shape), "bounds": job.bounds},
    )
    return GridTasks(job.bounds, job.plan.task_shape, functools.partial(ImageShardDownsampleTask, **job.kwargs),
                     finish)
