"""Global voxel counts (SPEC §3.1 ``CountVoxelsTask``, §4.5 ``stats/``).

``CountVoxelsTask`` counts the labels of its box and writes ``{key}/stats/voxel_counts/{bbox}.json``;
``accumulate_voxel_counts`` (planning side) sums those into the IntMap ``{key}/stats/voxel_counts.im``
that ``dust_global`` meshing and skeletonizing read with :func:`load_voxel_counts`. The file
layout lives here, in one place.
"""

from __future__ import annotations

import logging
from typing import Iterator, Optional, Sequence

from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec
from mapbuffer import IntMap

from igneous.errors import InvalidParameterError
from igneous.ops.voxels import count_labels, counts_to_json, intmap_key, merge_counts
from igneous.tasks.image.common import source_volume, task_box
from igneous.tasks.registry import queueable

__all__ = [
    "CountVoxelsTask",
    "TASK_SHAPE",
    "BLOCK_VOXELS",
    "counts_dir",
    "counts_filename",
    "intmap_path",
    "voxel_counts_filename",
    "read_voxel_counts",
    "cached_voxel_counts",
    "globally_small",
    "load_voxel_counts",
    "voxel_count",
    "read_blocks",
]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.image.image"

TASK_SHAPE = (512, 512, 512)  # SPEC §2.1: voxel counting uses fixed 512³ tasks
# Read at most this many voxels at once (32 MiB of uint64): a 512³ task holds one strip of a
# chunk-thick z-slab, not the 1 GiB box. Measured on the 512³ sample: as fast as 128 MiB slabs,
# and a worker peaks at ~190 MB instead of ~400 MB.
BLOCK_VOXELS = 2**22
INTMAP_CONTENT_TYPE = "application/x-intmap"


def counts_dir(vol: CloudVolume, mip: int) -> str:
    """Where the per-task count files of ``mip`` go (relative to the layer)."""
    return f"{vol.meta.key(mip)}/stats/voxel_counts"


def counts_filename(vol: CloudVolume, mip: int, box: Bbox) -> str:
    """The count file of one task box (clipped to the layer), relative to the layer."""
    return f"{counts_dir(vol, mip)}/{box.to_filename()}.json"


def voxel_counts_filename(scale_key: str) -> str:
    """Where ``accumulate_voxel_counts`` puts the global counts of a scale (SPEC §4.5)."""
    return f"{scale_key}/stats/voxel_counts.im"


def intmap_path(vol: CloudVolume, mip: int) -> str:
    """The accumulated counts of ``mip`` (a mapbuffer IntMap), relative to the layer."""
    return voxel_counts_filename(vol.meta.key(mip))


def read_voxel_counts(layer_path: str, scale_key: str) -> Optional[IntMap]:
    """The global voxel counts of a scale as an ``IntMap``, or None when they were never summed.

    CloudFiles strips any transport compression, so every protocol and compression works.
    """
    data = CloudFiles(layer_path, progress=False).get(voxel_counts_filename(scale_key))
    return None if data is None else IntMap(data)


_COUNTS: dict = {}


def cached_voxel_counts(layer_path: str, scale_key: str) -> Optional[IntMap]:
    """:func:`read_voxel_counts`, read once per worker process and layer (counts do not change
    while a forge runs). A missing file is not remembered: the task fails now, its retry may
    find it."""
    key = (layer_path, scale_key)
    if key not in _COUNTS:
        counts = read_voxel_counts(layer_path, scale_key)
        if counts is None:
            return None
        _COUNTS.clear()  # one layer's counts at a time: they can be large
        _COUNTS[key] = counts
    return _COUNTS[key]


def globally_small(layer_path: str, scale_key: str, originals: dict, threshold: int, error=RuntimeError) -> list:
    """The renumbered ids (keys of ``originals``: new → original label) whose global voxel count
    is below ``threshold``. A label missing from the counts means they are stale: ``error``."""
    counts = cached_voxel_counts(layer_path, scale_key)
    name = voxel_counts_filename(scale_key)
    if counts is None:
        raise error(f"dust_global needs {name}: run `igneous image voxels count` and `igneous image voxels sum` first")
    small = []
    for new, orig in originals.items():
        if new == 0:
            continue
        count = counts.get(intmap_key(orig))
        if count is None:
            raise error(
                f"label {orig} is not in {name}: the counts are stale; rerun "
                f"`igneous image voxels count` and `igneous image voxels sum`"
            )
        if count < threshold:
            small.append(new)
    return small


def load_voxel_counts(cloudpath: str, mip: int = 0) -> IntMap:
    """The global voxel counts written by ``accumulate_voxel_counts`` (any protocol, any compression).

    Look labels up with :func:`voxel_count` (labels ≥ 2^63 need mapbuffer's int64 key).

    Raises:
        InvalidParameterError: the counts were never accumulated for this mip.
    """
    vol = CloudVolume(cloudpath, mip=mip, progress=False, cdn_cache=False)
    counts = read_voxel_counts(vol.meta.cloudpath, vol.meta.key(mip))
    if counts is None:
        raise InvalidParameterError(
            f"{cloudpath} has no global voxel counts at mip {mip} ({intmap_path(vol, mip)}); "
            f"run `igneous image voxels count` and `igneous image voxels sum` first"
        )
    return counts


def voxel_count(counts: IntMap, label, default: Optional[int] = None) -> Optional[int]:
    """Voxels of ``label`` in ``counts`` (``default`` if absent), safe for labels ≥ 2^63."""
    value = counts.get(intmap_key(label))
    return default if value is None else int(value)


def _edges(lo: int, hi: int, step: int, origin: int) -> list:
    """``lo``, the multiples of ``step`` (counted from ``origin``) inside ``(lo, hi)``, and ``hi``."""
    first = origin + ((lo - origin) // step + 1) * step
    return [lo] + list(range(first, hi, step)) + [hi]


def read_blocks(
    box: Bbox, chunk_size: Sequence[int], voxel_offset: Sequence[int], budget: int = BLOCK_VOXELS
) -> Iterator[Bbox]:
    """Chunk-aligned blocks covering ``box``: chunk-thick z-slabs, cut into y-strips of whole
    chunk rows when a slab holds more than ``budget`` voxels. Every chunk is read once."""
    chunk, origin = Vec(*chunk_size), Vec(*voxel_offset)
    width = int(box.size3()[0])
    rows = max(1, budget // max(1, width * int(chunk.y) * int(chunk.z))) * int(chunk.y)
    zs = _edges(int(box.minpt.z), int(box.maxpt.z), int(chunk.z), int(origin.z))
    ys = _edges(int(box.minpt.y), int(box.maxpt.y), rows, int(origin.y))
    for z0, z1 in zip(zs[:-1], zs[1:]):
        for y0, y1 in zip(ys[:-1], ys[1:]):
            yield Bbox((box.minpt.x, y0, z0), (box.maxpt.x, y1, z1))


@queueable(WIRE)
def CountVoxelsTask(cloudpath, shape, offset, mip=0, fill_missing=False, agglomerate=False, timestamp=None):
    """Count every label (0 included) in the box; write ``{key}/stats/voxel_counts/{bbox}.json``.

    The box is read in chunk-aligned blocks of at most ``BLOCK_VOXELS`` voxels, so memory
    stays bounded whatever the task shape.
    """
    vol = source_volume(cloudpath, mip, fill_missing=fill_missing, agglomerate=agglomerate, timestamp=timestamp)
    box = task_box(vol, mip, shape, offset)
    if box.subvoxel():
        return
    parts = []
    for block in read_blocks(box, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip), BLOCK_VOXELS):
        parts.append(count_labels(vol.download(block, mip=mip)))
        # Merge as we go: a block's label list is small next to the block itself.
        if len(parts) >= 8:
            parts = [merge_counts(parts)]
    counts = merge_counts(parts)
    CloudFiles(vol.meta.cloudpath, progress=False).put_json(
        counts_filename(vol, mip, box), counts_to_json(counts), compress="gzip", cache_control="no-cache"
    )
