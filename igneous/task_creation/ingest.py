"""Getting data in (``igneous image create``): array files and image stacks → a new Precomputed layer.

Two paths, one destination layout:

* **Array files** (.npy, .h5, .nii, .nrrd, .ckl) are written synchronously by
  :func:`create_image_from_array`, block by block, so a memory-mapped file larger than RAM
  streams through.
* **Image stacks** (a directory or glob of 2-D TIFF/PNG/JPEG slices, or one multi-page /
  tiled / OME-TIFF) are planned by :func:`create_image_stack_tasks` into tasks that each own
  a chunk-aligned box of the destination and read only what that box needs.

Both validate everything (source headers, options, an existing destination) before writing
the destination ``info``; :func:`plan_image_stack` and :func:`plan_array_ingest` do that
validation and return the plan without writing anything (for ``igneous design ingest`` and
dry runs).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.exceptions import InfoUnavailableError
from cloudvolume.lib import Bbox, Vec

from igneous.errors import InvalidParameterError
from igneous.progress import progress_bar
from igneous.readers.arrays import open_array
from igneous.readers.images import SliceHeader
from igneous.readers.stacks import ImageStack, discover_stack
from igneous.task_creation.common import GridTasks, as_triple, prod, record_provenance, task_kwargs
from igneous.task_creation.downsample import MEMORY_TARGET, check_memory_target
from igneous.tasks.image.ingest import ImageStackIngestTask
from igneous.tasks.image.io import upload_all
from igneous.volumes import check_encoding, normalize_compress, normalize_encoding, set_encoding

__all__ = [
    "LayerSpec",
    "StackPlan",
    "ArrayPlan",
    "plan_image_stack",
    "create_image_stack_tasks",
    "plan_array_ingest",
    "create_image_from_array",
    "stack_task_memory",
]

log = logging.getLogger(__name__)

DEFAULT_CHUNK = (128, 128, 64)
# Bytes per voxel of the box a task holds, beyond the box itself: CloudVolume's upload copies
# each chunk out of the box and keeps its encoded bytes until written (measured ≈ 1×).
UPLOAD_OVERHEAD = 1.0
# A decoded PNG/JPEG slice is held twice briefly (the decoder's buffer and the numpy view's copy).
WHOLE_DECODE_COPIES = 2


@dataclass(frozen=True)
class LayerSpec:
    """What the new layer looks like, from ``image create``'s options (validated)."""

    resolution: Tuple[float, float, float] = (1, 1, 1)
    voxel_offset: Tuple[int, int, int] = (0, 0, 0)
    chunk_size: Tuple[int, int, int] = DEFAULT_CHUNK
    layer_type: str = "image"
    encoding: str = "raw"
    encoding_level: Optional[int] = None
    encoding_effort: Optional[int] = None
    compress: object = "br"

    @classmethod
    def make(
        cls,
        resolution=(1, 1, 1),
        voxel_offset=(0, 0, 0),
        chunk_size=DEFAULT_CHUNK,
        layer_type="image",
        encoding="raw",
        encoding_level=None,
        encoding_effort=None,
        compress="br",
    ) -> LayerSpec:
        try:
            res = tuple(float(r) for r in resolution)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"resolution must be three positive numbers; got {resolution!r}") from None
        if len(res) != 3 or not all(math.isfinite(r) and r > 0 for r in res):
            raise InvalidParameterError(f"resolution must be three positive numbers; got {resolution!r}")
        offset = tuple(int(v) for v in as_triple(voxel_offset, "offset", positive=False))
        chunk = tuple(int(v) for v in as_triple(chunk_size, "chunk_size"))
        if layer_type not in ("image", "segmentation"):
            raise InvalidParameterError(f"layer_type must be image or segmentation; got {layer_type!r}")
        enc = normalize_encoding(encoding) or "raw"
        return cls(res, offset, chunk, layer_type, enc, encoding_level, encoding_effort, normalize_compress(compress, enc))

    def info(self, size: Sequence[int], dtype, num_channels: int) -> dict:
        info = CloudVolume.create_new_info(
            num_channels=int(num_channels),
            layer_type=self.layer_type,
            data_type=np.dtype(dtype).name,
            encoding=self.encoding,
            resolution=list(self.resolution),
            voxel_offset=list(self.voxel_offset),
            volume_size=[int(s) for s in size],
            chunk_size=list(self.chunk_size),
        )
        vol = CloudVolume("mem://igneous-plan/layer", info=info, progress=False)  # nothing is written
        set_encoding(vol, 0, self.encoding, self.encoding_level, self.encoding_effort)
        return vol.info

    def check(self, dtype, num_channels: int) -> None:
        if self.layer_type == "segmentation" and not np.issubdtype(np.dtype(dtype), np.integer):
            raise InvalidParameterError(f"a segmentation layer needs integer labels; the source is {np.dtype(dtype).name}")
        check_encoding(self.encoding, dtype, num_channels, self.layer_type)


def check_destination(dest: Optional[str], info: dict) -> bool:
    """True when ``dest`` already holds this very layer (a re-run); refuses any other layer there."""
    if dest is None:
        return False
    try:
        existing = CloudVolume(dest, progress=False, cdn_cache=False).info
    except InfoUnavailableError:
        return False
    want, have = info["scales"][0], existing["scales"][0]
    fields = {
        "size": (want["size"], have["size"]),
        "voxel_offset": (want["voxel_offset"], have["voxel_offset"]),
        "resolution": ([float(r) for r in want["resolution"]], [float(r) for r in have["resolution"]]),
        "chunk_sizes": (want["chunk_sizes"], have["chunk_sizes"]),
        "encoding": (want["encoding"], have["encoding"]),
        "data_type": (info["data_type"], existing["data_type"]),
        "num_channels": (info["num_channels"], existing["num_channels"]),
        "type": (info["type"], existing["type"]),
    }
    for name, (a, b) in fields.items():
        if a != b:
            raise InvalidParameterError(
                f"destination {dest} exists with another layer ({name} {b}, this source needs {a}); "
                "choose a new destination or remove it"
            )
    return True


# -- image stacks ---------------------------------------------------------------------------


def stack_task_memory(header: SliceHeader, box: Sequence[int], rows_per_read: Optional[int] = None) -> int:
    """Peak bytes of one ingest task owning ``box`` (x, y, z) of a stack of ``header`` slices.

    The box itself, what uploading it costs, and what reading one band of one slice costs:
    an uncompressed TIFF reads just the rows (full width), a stripped one whole strips, a
    tiled one its tiles, a PNG/JPEG the whole decoded slice.
    """
    bpv = header.channels * np.dtype(header.dtype).itemsize
    tx, ty, tz = (int(v) for v in box)
    held = tx * ty * tz * bpv * (1 + UPLOAD_OVERHEAD)
    band = min(ty, int(rows_per_read or ty))
    seg_h, seg_w = header.segment
    if header.layout == "rows":
        read = header.width * band * bpv
    elif header.layout == "strips":
        read = header.width * (band + 2 * seg_h) * bpv * 2
    elif header.layout == "tiles":
        read = (tx + seg_w) * seg_h * bpv * 3
    else:
        read = header.slice_bytes() * WHOLE_DECODE_COPIES
    return int(held + read)


def _fits(header, box, band, budget) -> bool:
    return stack_task_memory(header, box, band) <= budget


def choose_stack_task_shape(
    header: SliceHeader, size: Sequence[int], chunk: Sequence[int], memory_target: int
) -> Tuple[Vec, Optional[int], int]:
    """``(task shape, rows_per_read, slice decodes per slice)`` for a stack of ``size`` voxels.

    Tasks span whole slices when they fit (each slice is then read exactly once); otherwise
    they split y first (rows are what TIFF strips hold), then x. Depth is one chunk: it
    does not change the work, and more tasks spread better over workers. A PNG/JPEG slice
    is decoded whole by every task that touches it, so splitting it costs re-decoding
    (reported as the third value).
    """
    cx, cy, cz = (int(c) for c in chunk)
    full_x = int(math.ceil(size[0] / cx)) * cx
    full_y = int(math.ceil(size[1] / cy)) * cy
    tz = min(cz, int(math.ceil(size[2] / cz)) * cz)
    whole = header.layout == "whole"

    def fits(tx, ty, band=None):
        return _fits(header, (tx, ty, tz), band, memory_target)

    if fits(full_x, full_y):
        return Vec(full_x, full_y, tz), None, 1
    if header.layout == "tiles":
        # square-ish boxes of whole tiles of the source when possible
        step = max(1, int(math.ceil(max(header.segment) / max(cx, cy))))
        k = step
        best = None
        while True:
            tx, ty = min(full_x, k * cx), min(full_y, k * cy)
            if not fits(tx, ty):
                break
            best = (tx, ty)
            if tx == full_x and ty == full_y:
                break
            k += step
        if best is None and fits(cx, cy):
            best = (cx, cy)
        if best is not None:
            return Vec(best[0], best[1], tz), None, 1
    else:
        ty = _largest_multiple(cy, full_y, lambda t: fits(full_x, t, t))
        if ty:
            return Vec(full_x, ty, tz), None, (int(math.ceil(full_y / ty)) if whole else 1)
        # even one chunk row of full width is too big: narrow boxes, read in bands of rows
        band = 1 if header.layout == "rows" else header.segment[0]
        tx = _largest_multiple(cx, full_x, lambda t: fits(t, cy, band))
        if tx and not whole:
            return Vec(tx, cy, tz), band, 1
    need = stack_task_memory(header, (cx, cy, tz), 1 if header.layout == "rows" else None)
    raise InvalidParameterError(
        f"--memory {memory_target:.3g} bytes is too small for these slices ({header.describe()}, "
        f"{header.layout} layout): one task needs at least {need:.3g} bytes"
        + ("; a PNG/JPEG slice is decoded whole, so convert to tiled TIFF or raise --memory" if whole else "")
    )


def _largest_multiple(step: int, limit: int, ok) -> int:
    """Largest multiple of ``step`` ≤ ``limit`` with ``ok(value)`` (0 if none); ``ok`` is monotone."""
    lo, hi = 0, limit // step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid * step):
            lo = mid
        else:
            hi = mid - 1
    return lo * step


@dataclass(frozen=True)
class StackPlan:
    """Everything ``create_image_stack_tasks`` will do, computed without writing."""

    src: str
    dest: str
    stack: ImageStack
    info: dict
    bounds: Bbox
    task_shape: Vec
    rows_per_read: Optional[int]
    decodes_per_slice: int
    memory_per_task: int
    memory_target: int
    compress: object
    dest_exists: bool
    num_tasks: int = field(default=0)

    @property
    def chunk_files(self) -> int:
        chunk = self.info["scales"][0]["chunk_sizes"][0]
        return prod(int(math.ceil(s / c)) for s, c in zip(self.info["scales"][0]["size"], chunk))

    @property
    def files_written(self) -> list:
        return (["info"] if not self.dest_exists else []) + [f"{self.chunk_files} chunk files", "provenance"]

    def summary(self) -> dict:
        header = self.stack.header
        return {
            "source": self.src,
            "kind": self.stack.kind,
            "slices": self.stack.shape[2],
            "slice": header.describe(),
            "format": header.format,
            "layout": header.layout,
            "size": list(self.stack.shape),
            "chunk_size": self.info["scales"][0]["chunk_sizes"][0],
            "task_shape": self.task_shape.tolist(),
            "tasks": self.num_tasks,
            "memory_per_task": self.memory_per_task,
            "memory_target": self.memory_target,
            "decodes_per_slice": self.decodes_per_slice,
            "files_written": self.files_written,
        }


def plan_image_stack(
    src: str,
    dest: Optional[str],
    resolution=(1, 1, 1),
    voxel_offset=(0, 0, 0),
    chunk_size=DEFAULT_CHUNK,
    layer_type: str = "image",
    encoding: str = "raw",
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    compress="br",
    memory_target: int = MEMORY_TARGET,
) -> StackPlan:
    """Validate the stack at ``src`` and the options; return the plan. Writes nothing.

    Reads every slice's header (in parallel), never its pixels. ``dest=None`` skips the
    check of an existing destination (a preview).
    """
    spec = LayerSpec.make(resolution, voxel_offset, chunk_size, layer_type, encoding, encoding_level,
                          encoding_effort, compress)  # fmt: skip
    memory_target = check_memory_target(memory_target)
    stack = discover_stack(src)
    spec.check(stack.dtype, stack.channels)
    info = spec.info(stack.shape, stack.dtype, stack.channels)
    shape, rows_per_read, decodes = choose_stack_task_shape(stack.header, stack.shape, spec.chunk_size, memory_target)
    bounds = Bbox(Vec(*spec.voxel_offset), Vec(*spec.voxel_offset) + Vec(*stack.shape))
    exists = check_destination(dest, info)
    if decodes > 1:
        log.warning(
            "each %s slice is decoded whole by %d tasks (it does not fit --memory with its neighbours); "
            "tiled TIFF avoids this", stack.header.format, decodes,
        )  # fmt: skip
    grid = GridTasks(bounds, shape, dict)
    return StackPlan(
        src=src,
        dest=dest,
        stack=stack,
        info=info,
        bounds=bounds,
        task_shape=shape,
        rows_per_read=rows_per_read,
        decodes_per_slice=decodes,
        memory_per_task=stack_task_memory(stack.header, shape, rows_per_read),
        memory_target=memory_target,
        compress=spec.compress,
        dest_exists=exists,
        num_tasks=len(grid),
    )


class StackTaskFactory:
    """Builds one task per grid cell with the slices of its z range (picklable, no closures)."""

    def __init__(self, plan: StackPlan):
        self.stack = plan.stack
        self.z0 = int(plan.bounds.minpt.z)
        self.depth = int(plan.stack.shape[2])
        self.kwargs = task_kwargs(
            src=plan.stack.base,
            dest_path=plan.dest,
            mip=0,
            compress=plan.compress,
            rows_per_read=plan.rows_per_read,
        )

    def __call__(self, shape, offset):
        z = int(offset[2]) - self.z0
        sources = self.stack.sources(z, min(self.depth, z + int(shape[2])))
        return functools.partial(ImageStackIngestTask, sources=sources, shape=shape, offset=offset, **self.kwargs)


def create_image_stack_tasks(
    src: str,
    dest: str,
    resolution=(1, 1, 1),
    voxel_offset=(0, 0, 0),
    chunk_size=DEFAULT_CHUNK,
    layer_type: str = "image",
    encoding: str = "raw",
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    compress="br",
    memory_target: int = MEMORY_TARGET,
):
    """Plan the ingest of an image stack into a new layer at ``dest``.

    ``src`` is a directory or glob of 2-D slices (TIFF, PNG, JPEG; naturally sorted, so
    ``z2`` comes before ``z10``) or one multi-page TIFF (OME-TIFF channels become the
    layer's channels). Every task owns a chunk-aligned box, reads only its slices and, in
    TIFFs, only the strips or tiles its box touches, and stays within ``memory_target``
    bytes even when one slice is larger (tiled or uncompressed TIFF). Use
    :func:`plan_image_stack` to see the plan first.

    Args:
        src, dest: cloud-files paths (file://, s3://, gs://, …).
        resolution, voxel_offset, chunk_size, layer_type, encoding, encoding_level,
            encoding_effort, compress: the new layer.
        memory_target: peak bytes per task.

    Returns:
        A lazy, sized iterator of ``ImageStackIngestTask``; provenance is recorded when it is exhausted.

    Raises:
        InvalidParameterError: unreadable or inconsistent slices (naming the file), a gap in
            a numbered series, bad options, or a different layer already at ``dest`` — all
            before anything is written.
    """
    plan = plan_image_stack(src, dest, resolution, voxel_offset, chunk_size, layer_type, encoding, encoding_level,
                            encoding_effort, compress, memory_target)  # fmt: skip
    return stack_tasks(plan)


def stack_tasks(plan: StackPlan) -> GridTasks:
    """Write the plan's ``info`` and return its tasks."""
    if not plan.dest_exists:
        CloudVolume(plan.dest, info=plan.info, progress=False, cdn_cache=False).commit_info()
    params = {"src": plan.src, "shape": plan.task_shape, "memory_target": plan.memory_target,
              "compress": plan.compress, "slices": plan.stack.shape[2]}  # fmt: skip
    finish = functools.partial(record_provenance, plan.dest, "ImageStackIngestTask", params, [plan.src])
    return GridTasks(plan.bounds, plan.task_shape, StackTaskFactory(plan), finish, instantiate=True)


# -- array files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrayPlan:
    src: str
    dest: str
    shape: Tuple[int, int, int, int]
    dtype: str
    info: dict
    compress: object
    dest_exists: bool
    block: Tuple[int, int, int]


def _array_block(shape4, dtype, chunk, slab_axis: str, memory_target: int) -> Tuple[int, int, int]:
    """Chunk-aligned blocks to stream the array through: z-slabs (or x-slabs of C-ordered data)."""
    bpv = np.dtype(dtype).itemsize * shape4[3]
    x, y, z = shape4[:3]
    cx, cy, cz = chunk
    budget = max(memory_target // 3, 1)  # the block, its upload copies, and the file's pages
    if slab_axis == "x":
        per = y * z * bpv * cx
        n = max(1, budget // max(per, 1))
        return (min(x, n * cx), y, z)
    per = x * y * bpv * cz
    n = max(1, budget // max(per, 1))
    return (x, y, min(z, n * cz))


def plan_array_ingest(
    src: str,
    dest: str,
    resolution=(1, 1, 1),
    voxel_offset=(0, 0, 0),
    chunk_size=DEFAULT_CHUNK,
    layer_type: str = "image",
    encoding: str = "raw",
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    compress="br",
    h5_dataset: str = "main",
    memory_target: int = MEMORY_TARGET,
) -> ArrayPlan:
    """Validate an array file and the options; return the plan. Writes nothing."""
    spec = LayerSpec.make(resolution, voxel_offset, chunk_size, layer_type, encoding, encoding_level,
                          encoding_effort, compress)  # fmt: skip
    memory_target = check_memory_target(memory_target)
    with open_array(src, h5_dataset) as arr:
        spec.check(arr.dtype, arr.shape[3])
        info = spec.info(arr.shape[:3], arr.dtype, arr.shape[3])
        block = _array_block(arr.shape, arr.dtype, spec.chunk_size, arr.slab_axis, memory_target)
        plan = ArrayPlan(src, dest, arr.shape, arr.dtype.name, info, spec.compress, False, block)
    exists = check_destination(dest, info)
    return ArrayPlan(plan.src, plan.dest, plan.shape, plan.dtype, info, plan.compress, exists, plan.block)


def create_image_from_array(
    src: str,
    dest: str,
    resolution=(1, 1, 1),
    voxel_offset=(0, 0, 0),
    chunk_size=DEFAULT_CHUNK,
    layer_type: str = "image",
    encoding: str = "raw",
    encoding_level: Optional[int] = None,
    encoding_effort: Optional[int] = None,
    compress="br",
    h5_dataset: str = "main",
    memory_target: int = MEMORY_TARGET,
    progress: Optional[bool] = None,
) -> CloudVolume:
    """Write the array file ``src`` as a new layer at ``dest`` (synchronous, this process).

    The array is indexed (x, y, z[, channel]); fewer than three axes are padded with
    trailing axes of length 1. It is streamed in chunk-aligned blocks (about a third of
    ``memory_target`` each), so a memory-mapped .npy larger than RAM works.

    Returns:
        The new layer.
    """
    plan = plan_array_ingest(src, dest, resolution, voxel_offset, chunk_size, layer_type, encoding, encoding_level,
                             encoding_effort, compress, h5_dataset, memory_target)  # fmt: skip
    vol = CloudVolume(dest, info=plan.info, progress=False, cdn_cache=False, compress=plan.compress,
                      non_aligned_writes=False)  # fmt: skip
    if not plan.dest_exists:
        vol.commit_info()
    origin = Vec(*plan.info["scales"][0]["voxel_offset"])
    bx, _, bz = plan.block
    x_size, _, z_size = plan.shape[:3]
    blocks = [(x, z) for z in range(0, z_size, bz) for x in range(0, x_size, bx)]
    with open_array(src, h5_dataset) as arr:
        for x, z in progress_bar(blocks, total=len(blocks), desc="Writing", unit="block", enabled=progress):
            block = arr.read(x, min(x_size, x + bx), z, min(z_size, z + bz))
            lo = origin + Vec(x, 0, z)
            upload_all(vol, [(block, Bbox(lo, lo + Vec(*block.shape[:3])), 0)])
    record_provenance(dest, "image create", {"src": src, "shape": list(plan.shape), "dtype": plan.dtype}, [src])
    return vol
