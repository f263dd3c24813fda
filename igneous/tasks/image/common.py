"""Reading and writing image boxes: what every image task shares."""

from __future__ import annotations

from typing import List, Optional, Sequence

import fastremap
import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.downsample_scales import axis_to_factor

__all__ = [
    "source_volume",
    "dest_volume",
    "task_box",
    "download_renumbered",
    "pyramid_factor",
    "writable_levels",
    "level_box",
    "chunks_inside",
    "level_ratio",
]


def source_volume(
    path: str,
    mip: int,
    fill_missing: bool = False,
    agglomerate: bool = False,
    timestamp=None,
    stop_layer=None,
    use_https: bool = False,
    codec_threads: int = 1,
) -> CloudVolume:
    kwargs = dict(
        mip=mip,
        fill_missing=fill_missing,
        progress=False,
        cdn_cache=False,
        use_https=use_https,
        codec_threads=codec_threads,
    )
    if path.startswith("graphene://"):
        kwargs.update(agglomerate=agglomerate, timestamp=timestamp, stop_layer=stop_layer)
    return CloudVolume(path, **kwargs)


def dest_volume(
    path: str,
    mip: int,
    compress=None,
    delete_black_uploads: bool = False,
    background_color: int = 0,
    codec_threads: int = 1,
) -> CloudVolume:
    return CloudVolume(
        path,
        mip=mip,
        compress=compress,
        progress=False,
        cdn_cache=False,
        delete_black_uploads=delete_black_uploads,
        background_color=background_color,
        non_aligned_writes=False,
        codec_threads=codec_threads,
    )


def task_box(vol: CloudVolume, mip: int, shape: Sequence[int], offset: Sequence[int]) -> Bbox:
    """The task's box at ``mip`` clipped to the layer: what it reads and owns."""
    box = Bbox(Vec(*offset), Vec(*offset) + Vec(*shape))
    return Bbox.clamp(box, vol.meta.bounds(mip))


def download_renumbered(vol, read: Bbox, mip: int, fill_missing: bool) -> tuple[np.ndarray, dict]:
    """The read box renumbered 1..N in a small dtype (a 449³ uint64 cutout would be 724 MB)
    and ``{original: new}``. CloudVolume renumbers chunk by chunk, but fails on missing chunks
    under ``fill_missing``; then slabs one chunk thick are renumbered here with one mapping."""
    if not fill_missing:
        img, remap = vol.download(read, mip=mip, renumber=True)
        return img[..., 0], remap
    out = np.zeros(tuple(int(s) for s in read.size3()), dtype=np.uint32, order="F")
    remap = {0: 0}
    step = int(vol.meta.chunk_size(mip)[2])
    z = int(read.minpt[2])
    while z < read.maxpt[2]:
        z1 = min(
            int(read.maxpt[2]),
            (z - int(vol.meta.voxel_offset(mip)[2])) // step * step + step + int(vol.meta.voxel_offset(mip)[2]),
        )
        slab = Bbox((read.minpt[0], read.minpt[1], z), (read.maxpt[0], read.maxpt[1], z1))
        data = np.asarray(vol.download(slab, mip=mip))[..., 0]
        for label in fastremap.unique(data):
            remap.setdefault(int(label), len(remap))
        lo = z - int(read.minpt[2])
        out[:, :, lo : lo + data.shape[2]] = fastremap.remap(data, remap, preserve_missing_labels=False)
        z = z1
    return fastremap.refit(out), remap



def pyramid_factor(vol: CloudVolume, mip: int, factor: Optional[Sequence[int]], axis: str = "z") -> Vec:
    """The factor between ``mip`` and ``mip + 1``: given, else read from the scales, else by axis."""
    if factor is not None:
        return Vec(*factor)
    if mip + 1 < len(vol.info["scales"]):
        ratio = np.array(vol.meta.resolution(mip + 1)) / np.array(vol.meta.resolution(mip))
        return Vec(*np.round(ratio).astype(int))
    return Vec(*axis_to_factor(axis))


def writable_levels(
    vol: CloudVolume, mip: int, shape: Sequence[int], factor: Sequence[int], max_mips: Optional[int]
) -> int:
    """How many levels above ``mip`` this task can write without sharing a chunk with a neighbour.

    Level k is writable when the layer has that scale, its resolution is mip's times
    factor**k, and the task shape divided by factor**k tiles whole chunks of that scale
    on every axis (or the task spans the layer on that axis).
    """
    factor = np.array(factor, dtype=int)
    shape = np.array(shape, dtype=int)
    base_res = np.array(vol.meta.resolution(mip), dtype=float)
    layer_size = np.array(vol.meta.bounds(mip).size3(), dtype=int)
    levels = 0
    while max_mips is None or levels < max_mips:
        k = levels + 1
        if mip + k >= len(vol.info["scales"]):
            break
        scale = factor**k
        if not np.allclose(np.array(vol.meta.resolution(mip + k), dtype=float), base_res * scale):
            break
        if np.any(shape % scale):
            break
        chunk = np.array(vol.meta.chunk_size(mip + k), dtype=int)
        spans = shape >= layer_size
        if np.any(((shape // scale) % chunk != 0) & ~spans):
            break
        levels = k
    return levels


def level_box(vol: CloudVolume, mip: int, box: Bbox, factor: Sequence[int], level: int) -> Bbox:
    """Where the level-``level`` downsample of ``box`` (at ``mip``) lands.

    Pyramid levels are computed relative to the layer origin, as CloudVolume lays out
    scales (offset floor(o / f), size ceil(n / f)), so any voxel_offset works.
    """
    scale = Vec(*factor) ** level
    origin = vol.meta.voxel_offset(mip)
    origin_k = vol.meta.voxel_offset(mip + level)
    lo = origin_k + (box.minpt - origin) // scale
    hi = origin_k + -(-(box.maxpt - origin) // scale)
    return Bbox.clamp(Bbox(lo, hi), vol.meta.bounds(mip + level))


def level_ratio(vol: CloudVolume, mip: int, level: int) -> Optional[Vec]:
    """How many ``mip`` voxels one ``level`` voxel spans per axis (None if not whole numbers)."""
    ratio = np.array(vol.meta.resolution(level), dtype=float) / np.array(vol.meta.resolution(mip), dtype=float)
    if np.any(ratio < 1) or not np.allclose(ratio, np.round(ratio)):
        return None
    return Vec(*np.round(ratio).astype(int))


def chunks_inside(vol: CloudVolume, mip: int, box: Bbox, level: int) -> Optional[Bbox]:
    """The chunk-aligned box at ``level`` of exactly the chunks whose voxels all lie in ``box``
    (given at ``mip``); None when there are none.

    Levels map to ``mip`` relative to the layer origin, as pyramids are written (see
    :func:`level_box`); a chunk clipped by the layer's far face counts as inside when the box
    reaches that face. This is what deletion may touch: never a chunk that holds a voxel
    outside the requested region.
    """
    ratio = level_ratio(vol, mip, level)
    if ratio is None:
        return None
    origin, origin_k = Vec(*vol.meta.voxel_offset(mip)), Vec(*vol.meta.voxel_offset(level))
    end, end_k = vol.meta.bounds(mip).maxpt, vol.meta.bounds(level).maxpt
    chunk = Vec(*vol.meta.chunk_size(level))
    lo = origin_k + -(-(box.minpt - origin) // ratio)
    hi = origin_k + (box.maxpt - origin) // ratio
    hi = Vec(*np.where(box.maxpt >= end, end_k, hi))
    lo = origin_k + -(-(lo - origin_k) // chunk) * chunk
    hi = Vec(*np.where(hi >= end_k, end_k, origin_k + ((hi - origin_k) // chunk) * chunk))
    if np.any(hi <= lo):
        return None
    return Bbox(lo, hi)


def as_list(x) -> List[int]:
    return [int(v) for v in x]
