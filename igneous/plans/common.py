"""What every priced plan shares: sampling real chunks, the request arithmetic of chunk reads,
the outputs of pyramid levels, and the planner's own requests.

Each capability's ``plan_*`` functions live in their own module of ``igneous.plans`` and call
these helpers; ``igneous.plan`` holds the ``Plan`` itself and the grid arithmetic.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import spatial
from igneous.ops.downsample import pyramid
from igneous.plan import Output, Plan, bytes_per_voxel, chunks_in, sample_boxes
from igneous.throughput import PLAN_REQUESTS, SHARDED_READ

__all__ = [
    "SAMPLES",
    "FILE_NOTE",
    "SHARD_INDEX_BYTES_PER_CHUNK",
    "SAMPLE_BLOCK_VOXELS",
    "ImageSample",
    "sample_block",
    "sample_reader",
    "committed",
    "chunk_gets",
    "box_voxels",
    "finish_plan",
    "chunk_boxes",
    "level_outputs",
    "is_sharded",
    "stored_bytes_per_voxel",
    "run_compress",
    "chunked_bytes",
    "sampled_bpv",
    "spread_cells",
    "forge_samples",
    "object_size",
    "labels_over_grid",
    "spatial_labels",
]

SAMPLES = 3  # blocks of real chunks (or forge tasks) measured per plan
FILE_NOTE = "file:// layer: requests are counted as an object store would see them"
SHARD_INDEX_BYTES_PER_CHUNK = 24  # a minishard index entry (before its gzip)
SAMPLE_BLOCK_VOXELS = 2**24  # cap on one sample block (a 2-level block of 128x128x64 chunks is 16 M)


def sample_block(chunk, factor, num_mips: int) -> Vec:
    """Sample blocks cover one chunk of level 2 (or 1, if that block would be too big), so
    the levels measured are whole chunks, as the run writes them."""
    for levels in (min(2, num_mips), 1, 0):
        block = Vec(*chunk) * Vec(*factor) ** levels
        if int(np.prod(block)) <= SAMPLE_BLOCK_VOXELS:
            return block
    return Vec(*chunk)


def sample_reader(vol: CloudVolume, mip: int) -> CloudVolume:
    """A reader of ``vol``'s layer that treats missing chunks as background."""
    return CloudVolume(vol.meta.cloudpath, mip=mip, fill_missing=True, progress=False, cdn_cache=False)


def committed(path: str) -> bool:
    from igneous.task_creation.transfer import _existing_info

    return _existing_info(path) is not None


def chunk_gets(vol: CloudVolume, mip: int, chunk_reads: int, tasks: int, task_shape) -> int:
    """GET requests for ``chunk_reads`` chunk reads of ``vol`` at ``mip`` by ``tasks`` tasks."""
    if not is_sharded(vol, mip):
        return int(chunk_reads)
    slabs = tasks * max(1, -(-int(task_shape[2]) // int(vol.meta.chunk_size(mip)[2])))
    return int(round(slabs * SHARDED_READ["per_slab"] + chunk_reads * SHARDED_READ["per_chunk"]))


def box_voxels(box: Bbox) -> int:
    return int(np.prod(box.size3(), dtype=np.int64))


def finish_plan(plan: Plan, path: Optional[str]) -> Plan:
    """Planning's own requests (infos, provenance), and a note for local layers (``path`` None: a
    preview without a destination)."""
    plan.add_requests(PLAN_REQUESTS.get(plan.command, {}))
    if path is not None and cfpaths.extract(path).protocol == "file":
        plan.notes.append(FILE_NOTE)
    return plan


# -- sampling --------------------------------------------------------------------------------------


class ImageSample:
    """Blocks of real chunks of ``vol`` at ``mip``: their stored bytes per voxel, and the arrays."""

    def __init__(self, vol: CloudVolume, mip: int, bounds: Bbox, block: Sequence[int], count: int = SAMPLES):
        reader = sample_reader(vol, mip)
        chunk = Vec(*vol.meta.chunk_size(mip))
        origin = Vec(*vol.meta.voxel_offset(mip))
        self.boxes = sample_boxes(bounds, block, origin, count)
        self.images = [np.asarray(reader.download(box, mip=mip)) for box in self.boxes]
        names, sizes = [], {}
        if not is_sharded(vol, mip):
            key = vol.meta.key(mip)
            for box in self.boxes:
                for cbox in chunk_boxes(box, chunk, origin, vol.meta.bounds(mip)):
                    names.append(f"{key}/{cbox.to_filename()}")
            sizes = CloudFiles(vol.meta.cloudpath, progress=False).size(names) if names else {}
        found = {n: s for n, s in sizes.items() if s is not None}
        self.chunks = len(names)
        self.present = len(found)
        self.voxels = sum(box_voxels(b) for b in self.boxes)
        if is_sharded(vol, mip):  # chunks live inside shards: re-encode them as stored
            spec = vol.meta.info["scales"][mip]["sharding"]
            compress = "gzip" if spec.get("data_encoding", "raw") == "gzip" else None
            self.stored_bpv = self.bpv(vol.meta.encoding(mip), compress, vol.meta.compression_params(mip))
        else:
            present_voxels = sum(box_voxels(Bbox.from_filename(n.rsplit("/", 1)[-1])) for n in found)
            self.stored_bpv = sum(found.values()) / present_voxels if present_voxels else 0.0
        self.fraction_present = self.present / self.chunks if self.chunks else 1.0

    def bpv(self, encoding: str, compress, params: Optional[dict] = None, images=None) -> float:
        """Bytes per voxel of the sample written with ``encoding`` and ``compress`` (voxel-weighted)."""
        images = self.images if images is None else images
        total = sum(int(np.prod(img.shape[:3])) for img in images)
        if not total:
            return 0.0
        return sum(bytes_per_voxel(img, encoding, compress, params) * np.prod(img.shape[:3]) for img in images) / total

    def levels(self, factor, num_mips: int, method, sparse: bool = False) -> list:
        """The sample downsampled: ``levels()[k-1]`` is every block at level k."""
        per_block = [pyramid(img, factor, num_mips, method, sparse) for img in self.images]
        return [[levels[k] for levels in per_block] for k in range(num_mips)]

    def describe(self) -> dict:
        return {
            "blocks": len(self.boxes),
            "chunks": self.chunks,
            "chunks_present": self.present,
            "voxels": self.voxels,
            "stored_bytes_per_voxel": round(self.stored_bpv, 4),
        }


def chunk_boxes(box: Bbox, chunk: Vec, origin: Vec, bounds: Bbox) -> list:
    lo = origin + ((box.minpt - origin) // chunk) * chunk
    out = []
    for z in range(int(lo.z), int(box.maxpt.z), int(chunk.z)):
        for y in range(int(lo.y), int(box.maxpt.y), int(chunk.y)):
            for x in range(int(lo.x), int(box.maxpt.x), int(chunk.x)):
                out.append(Bbox.intersection(Bbox((x, y, z), Vec(x, y, z) + chunk), bounds))
    return out


def level_outputs(dest: CloudVolume, mip: int, bounds: Bbox, levels: int, bpvs: list, first: int = 1) -> list:
    """One Output per level ``mip + first … mip + levels``: chunk files over ``bounds`` (at ``mip``)."""
    outputs = []
    for k in range(first, levels + 1):
        level = mip + k
        box = Bbox.clamp(dest.bbox_to_mip(bounds, mip, level), dest.meta.bounds(level))
        files = chunks_in(box, dest.meta.chunk_size(level), dest.meta.voxel_offset(level))
        what = f"mip {level} ({dest.meta.key(level)}), chunks {'x'.join(map(str, dest.meta.chunk_size(level)))}"
        outputs.append(Output(what, files, int(round(box_voxels(box) * bpvs[k - first]))))
    return outputs


def stored_bytes_per_voxel(vol: CloudVolume, mip: int) -> float:
    """Stored bytes per voxel from the sizes of a few chunk files (no decoding)."""
    if is_sharded(vol, mip):
        return float(np.dtype(vol.dtype).itemsize)
    chunk, origin, bounds = Vec(*vol.meta.chunk_size(mip)), vol.meta.voxel_offset(mip), vol.meta.bounds(mip)
    boxes = [Bbox.intersection(b, bounds) for b in sample_boxes(bounds, chunk, origin, SAMPLES)]
    names = [f"{vol.meta.key(mip)}/{b.to_filename()}" for b in boxes]
    sizes = CloudFiles(vol.meta.cloudpath, progress=False).size(names)
    found = [(b, sizes[n]) for b, n in zip(boxes, names) if sizes.get(n) is not None]
    voxels = sum(box_voxels(b) for b, _ in found)
    return sum(s for _, s in found) / voxels if voxels else 0.0


def is_sharded(vol: CloudVolume, mip: int) -> bool:
    return "sharding" in vol.meta.info["scales"][mip]


def run_compress(encoding: str, compress):
    """The compression CloudVolume applies to chunks written with ``compress`` (None: its default)."""
    from cloudvolume.datasource.precomputed.common import should_compress

    return should_compress(encoding, compress, None)


def chunked_bytes(image: np.ndarray, chunk: Sequence[int], encoding: str, compress, params: Optional[dict] = None) -> int:
    """Stored bytes of ``image`` (x, y, z, c) cut into ``chunk``-sized files from its corner, as
    written: codecs with per-chunk tables (compresso, crackle, png) pay them once per file."""
    cx, cy, cz = (int(c) for c in chunk)
    total = 0.0
    for z in range(0, image.shape[2], cz):
        for y in range(0, image.shape[1], cy):
            for x in range(0, image.shape[0], cx):
                part = image[x : x + cx, y : y + cy, z : z + cz]
                total += bytes_per_voxel(part, encoding, compress, params) * int(np.prod(part.shape[:3]))
    return int(round(total))


def sampled_bpv(images: Sequence[np.ndarray], chunk: Sequence[int], encoding: str, compress, params=None) -> float:
    """Voxel-weighted stored bytes per voxel of ``images`` written in ``chunk``-sized files."""
    voxels = sum(int(np.prod(img.shape[:3])) for img in images)
    if not voxels:
        return 0.0
    return sum(chunked_bytes(img, chunk, encoding, compress, params) for img in images) / voxels


def spread_cells(grid_size: Sequence[int], count: int) -> list:
    """Up to ``count`` distinct cells of a grid, spread over all three axes (Roberts' R3
    low-discrepancy sequence): unlike evenly spaced flat indices, which on a grid whose x size
    divides the spacing all fall in one column at the layer's edge."""
    g = [int(v) for v in grid_size]
    total = math.prod(g)
    if count >= total:
        return [(x, y, z) for z in range(g[2]) for y in range(g[1]) for x in range(g[0])]
    phi = 1.2207440846057596  # the plastic number's 3-D analogue: x^4 = x + 1
    alpha = [1 / phi, 1 / phi**2, 1 / phi**3]
    cells: list = []
    i = 0
    while len(cells) < count and i < 100 * count:
        cell = tuple(min(g[a] - 1, int(((0.5 + alpha[a] * i) % 1.0) * g[a])) for a in range(3))
        if cell not in cells:
            cells.append(cell)
        i += 1
    return cells


# -- forges (meshes, skeletons) --------------------------------------------------------------------


def forge_samples(bounds: Bbox, shape: Vec, tasks: int, budget: int) -> tuple[list, Vec, bool]:
    """Boxes to forge for a forge's estimate, their shape, and whether they are sub-boxes of a task.

    Whole tasks, spread over the grid, as many as fit ``budget`` (all of them on
    a small volume: the estimate is then exact). When one task is bigger than that, a centred
    sub-box of the middle task, scaled up by the caller (a statistical estimate).
    """
    task_voxels = int(np.prod(shape))
    if task_voxels <= budget:
        count = max(1, min(tasks, budget // task_voxels))
        return sample_boxes(bounds, shape, bounds.minpt, count), Vec(*shape), False
    side = (budget / task_voxels) ** (1 / 3)
    sub = Vec(*[max(1, int(s * side)) for s in shape])
    [middle] = sample_boxes(bounds, shape, bounds.minpt, 1)
    lo = Vec(*np.maximum(middle.minpt, middle.minpt + (Vec(*middle.size3()) - sub) // 2))
    return [Bbox(lo, lo + sub)], sub, True


def object_size(labels: float, box: Sequence[int]) -> float:
    """Typical object size L (voxels) such that objects of size L meet ``labels`` of them in a
    box: prod(1 + side / L) == labels (convex objects tiling space)."""
    lo, hi = 1e-3, 1e9
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        if float(np.prod(1 + np.asarray(box, dtype=float) / mid)) > labels:
            lo = mid
        else:
            hi = mid
    return lo


def labels_over_grid(bounds: Bbox, shape: Vec, size: float) -> float:
    """Sum over every (clipped) task box of the labels it meets: prod over axes of
    sum over the task segments of (1 + length / L), since the model is separable."""
    total = 1.0
    for a in range(3):
        lo, hi, s = int(bounds.minpt[a]), int(bounds.maxpt[a]), int(shape[a])
        total *= sum(1 + (min(start + s, hi) - start) / size for start in range(lo, hi, s))
    return total


def spatial_labels(dir_path: str, bounds: Bbox, info: dict) -> tuple[dict, list]:
    """``{label: [.spatial names holding it]}`` from a forge's .spatial files under ``dir_path``
    (a mesh or skeleton directory; ``bounds`` in voxels at the forge's mip), and every name."""
    names = spatial.expected_spatial_names(bounds, info)
    cf = CloudFiles(dir_path, progress=False)
    found: dict = {}
    for name, content in zip(names, cf.get_json(names)):
        for label in content or {}:
            found.setdefault(int(label), []).append(name)
    return found, names
