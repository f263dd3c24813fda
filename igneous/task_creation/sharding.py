"""Planning sharded images: shard specs, task boxes that own whole shards, and the memory model.

Everything here is pure arithmetic over sizes, so ``create_image_shard_*_tasks`` and the
``design shard-*`` dry runs compute the same plan.

A task owns whole shards at every level it writes: for transfers one task is one shard;
for pyramids the task box ``T`` at ``mip`` is the top level's shard scaled by ``f^n``, and
each lower level gets the largest Morton shard shape that tiles ``T / f^k``. A task streams
z-slabs of ``T``; finished shards are assembled from a spool that spills to scratch disk, so
its memory is the slab and its pyramid, not the shards.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np

from igneous.errors import InvalidParameterError
from igneous.shards import (
    SHARD_TYPE,
    check_index_encoding,
    grid_size,
    morton_bits,
    morton_shape,
    spool_allowance,
)

log = logging.getLogger(__name__)

__all__ = [
    "create_sharded_image_info",
    "shard_data_encoding",
    "spec_for_bits",
    "ShardLevel",
    "ShardPlan",
    "plan_shard_transfer",
    "plan_shard_pyramid",
    "shard_task_memory",
]

IMAGE_CODECS = ("jpeg", "jxl", "png", "kempressed", "fpzip", "zfpc")
SHARD_BYTE_TARGET = 3_500_000_000
READ_BATCH = 64 * 2**20
PUT_BUFFER = 100_000_000  # object stores read a file below the multipart threshold into memory
KERNEL_FACTOR = 1.0  # tinybrain temporaries per slab byte


def _limits(max_shard_index_bytes: int, max_minishard_index_bytes: int, max_labels_per_minishard: int):
    labels = min(int(max_labels_per_minishard), int(max_minishard_index_bytes) // 24)
    if labels < 1 or max_shard_index_bytes < 16:
        raise InvalidParameterError(
            "index limits too small: a shard index needs >= 16 bytes and a minishard index >= 24 bytes"
        )
    return int(math.floor(math.log2(labels))), int(math.floor(math.log2(int(max_shard_index_bytes) // 16)))


def _bits_for(t: int, label_bits: int, max_minishard_bits: int) -> Optional[Tuple[int, int]]:
    """(preshift, minishard) bits for a shard of 2^t chunks, or None if the indices overflow."""
    minishard = max(0, t - label_bits)
    if minishard > max_minishard_bits:
        return None
    return t - minishard, minishard


def max_shard_bits(label_bits: int = 10, max_minishard_bits: int = 9) -> int:
    """The largest ``t`` (chunks per shard = 2^t) the index limits allow."""
    return label_bits + max_minishard_bits


def shard_data_encoding(encoding: str, compress="auto") -> str:
    """How each chunk is stored inside a shard: gzip or raw (image codecs are always raw)."""
    if encoding in IMAGE_CODECS:
        return "raw"
    if compress in ("auto", None, True, "gzip"):
        return "gzip"
    if compress in (False, "none", "raw", ""):
        return "raw"
    raise InvalidParameterError(
        f"sharded images store each chunk raw or gzip; compress must be gzip or none, got {compress!r}"
    )


def spec_for_bits(
    total: int,
    t: int,
    label_bits: int = 10,
    max_minishard_bits: int = 9,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
) -> dict:
    bits = _bits_for(t, label_bits, max_minishard_bits)
    if bits is None:
        raise InvalidParameterError(f"a shard of 2^{t} chunks overflows the shard index limits")
    preshift, minishard = bits
    return {
        "@type": SHARD_TYPE,
        "hash": "identity",
        "preshift_bits": int(preshift),
        "minishard_bits": int(minishard),
        "shard_bits": int(total - t),
        "minishard_index_encoding": minishard_index_encoding,
        "data_encoding": data_encoding,
    }


def _check_bits(size, chunk) -> Tuple[tuple, int]:
    grid = grid_size(size, chunk)
    total = sum(morton_bits(grid))
    if total > 64:
        bigger = list(int(c) for c in chunk)
        while sum(morton_bits(grid_size(size, bigger))) > 64:
            bigger = [c * 2 for c in bigger]
        raise InvalidParameterError(
            f"a {grid[0]}×{grid[1]}×{grid[2]} chunk grid needs {total} bits of Morton code (max 64); "
            f"use a larger chunk_size (e.g. {','.join(map(str, bigger))})"
        )
    return grid, total


def _shard_chunk_bits(size, chunk, chunk_bytes: int, byte_target) -> int:
    """log2 of the chunks one shard holds: as many as fit the byte target (a power of two), but
    no more than the power of two that holds every chunk of the scale.

    The reference sizes shards this way; a scale whose grid is not a power of two per axis
    then keeps some Morton bits for ``shard_bits`` (a 5×5×10 grid: 256-chunk shards, 2 shard
    bits) although one file could hold it all.
    """
    num_chunks = int(np.prod(grid_size(size, chunk)))
    fit = int(math.floor(math.log2(max(1, int(byte_target) // chunk_bytes))))  # ≤ target; ≥ one chunk
    whole_scale = int(math.ceil(math.log2(num_chunks))) if num_chunks > 1 else 0
    return min(fit, whole_scale)


def _bytes_per_voxel(dtype) -> int:
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        return int(dtype)
    return int(np.dtype(dtype).itemsize)


def create_sharded_image_info(
    dataset_size: Sequence[int],
    chunk_size: Sequence[int],
    encoding: str,
    dtype,
    uncompressed_shard_bytesize: int = SHARD_BYTE_TARGET,
    max_shard_index_bytes: int = 8192,
    max_minishard_index_bytes: int = 40000,
    max_labels_per_minishard: int = 4000,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
) -> dict:
    """The ``sharding`` spec of an image scale: shards as large as fit the byte target.

    ``dtype`` may be a numpy dtype or an int number of bytes per voxel (itemsize × channels).
    The shard never exceeds ``uncompressed_shard_bytesize`` uncompressed, every Morton bit is
    used (no two regions share a file) and the indices stay within their limits.

    Raises:
        InvalidParameterError: bad sizes or encodings, a grid needing more than 64 bits, or a
            single chunk larger than the byte target.
    """
    size = [int(v) for v in dataset_size]
    chunk = [int(v) for v in chunk_size]
    if len(size) != 3 or len(chunk) != 3 or min(size + chunk) < 1:
        raise InvalidParameterError(f"dataset_size and chunk_size must be 3 positive ints; got {size}, {chunk}")
    check_index_encoding(minishard_index_encoding)
    check_index_encoding(data_encoding, "data_encoding")
    label_bits, max_minishard = _limits(max_shard_index_bytes, max_minishard_index_bytes, max_labels_per_minishard)
    _, total = _check_bits(size, chunk)
    chunk_bytes = int(np.prod(chunk)) * _bytes_per_voxel(dtype)
    if not uncompressed_shard_bytesize or uncompressed_shard_bytesize <= 0:
        raise InvalidParameterError(f"uncompressed_shard_bytesize must be positive; got {uncompressed_shard_bytesize!r}")
    t = min(_shard_chunk_bits(size, chunk, chunk_bytes, uncompressed_shard_bytesize), total)
    t = min(t, max_shard_bits(label_bits, max_minishard))
    if encoding in IMAGE_CODECS:
        data_encoding = "raw"
    return spec_for_bits(total, t, label_bits, max_minishard, minishard_index_encoding, data_encoding)


@dataclass(frozen=True)
class ShardLevel:
    """One sharded scale of a plan."""

    mip: int
    size: tuple
    chunk: tuple
    spec: dict
    shard_shape: tuple  # voxels, not clipped
    shard_bytes: int  # uncompressed, clipped to the scale
    num_shards: int

    @property
    def grid(self) -> tuple:
        return grid_size(self.size, self.chunk)

    @property
    def shard_chunks(self) -> tuple:
        return tuple(s // c for s, c in zip(self.shard_shape, self.chunk))


@dataclass(frozen=True)
class ShardPlan:
    """Task geometry and peak-memory model of a sharded transfer or pyramid."""

    kind: str
    task_shape: tuple  # at the read mip
    num_tasks: int
    slab_z: int
    levels: Tuple[ShardLevel, ...]
    memory: dict = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        return int(sum(self.memory.values()))


def _level(mip: int, size, chunk, spec: dict, bpv: int) -> ShardLevel:
    from igneous.shards import image_shard_shape_from_spec

    shape = tuple(int(v) for v in image_shard_shape_from_spec(spec, size, chunk))
    clipped = [min(s, d) for s, d in zip(shape, size)]
    count = int(np.prod([-(-d // s) for d, s in zip(size, shape)]))
    return ShardLevel(mip, tuple(int(v) for v in size), tuple(int(v) for v in chunk), spec, shape,
                      int(np.prod(clipped)) * bpv, count)


def shard_task_memory(slab_bytes: int, chunk_bytes: int, largest_shard: int, output_fraction: float = 0.0,
                      pyramid: bool = False) -> dict:
    """Peak bytes of one shard task, term by term (the planner keeps the sum ≤ memory_target).

    slab: the z-slab read; read: CloudVolume's transient while decoding it; outputs/kernel: the
    pyramid levels and tinybrain's temporaries; encode: chunks in flight on two threads;
    spool: encoded chunks kept in memory before spilling to scratch; put: the upload buffer.
    """
    terms = {
        "slab": 2 * int(slab_bytes),  # the slab being encoded and the next one being read
        "read": 2 * int(min(slab_bytes, READ_BATCH)) + int(slab_bytes),
        "encode": 2 * 2 * int(chunk_bytes),
        "spool": spool_allowance(slab_bytes),
        "put": int(min(largest_shard, PUT_BUFFER)),
    }
    if pyramid:
        terms["outputs"] = 2 * int(slab_bytes * output_fraction)
        terms["kernel"] = int(slab_bytes * KERNEL_FACTOR)
    return terms


def plan_shard_transfer(
    size: Sequence[int],
    chunk: Sequence[int],
    mip: int,
    bpv: int,
    encoding: str,
    memory_target: int,
    spec: Optional[dict] = None,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
    selected_tasks=None,
) -> ShardPlan:
    """One task per shard, shards of ``memory_target`` uncompressed bytes (the reference's
    layout) unless an existing destination's ``spec`` is given.

    A task streams its shard by z-slabs, so its peak memory is usually well below the shard
    size; when the model says it needs more than ``memory_target`` (tiny targets, big chunks)
    the plan still runs, with one warning giving the figure.
    """
    size = tuple(int(v) for v in size)
    chunk = tuple(int(v) for v in chunk)
    chunk_bytes = int(np.prod(chunk)) * bpv
    if spec is None:
        spec = create_sharded_image_info(
            size, chunk, encoding, bpv, uncompressed_shard_bytesize=int(memory_target),
            minishard_index_encoding=minishard_index_encoding, data_encoding=data_encoding,
        )
    level = _level(mip, size, chunk, spec, bpv)
    shape = level.shard_shape
    slab = min(shape[0], size[0]) * min(shape[1], size[1]) * chunk[2] * bpv
    memory = shard_task_memory(slab, chunk_bytes, level.shard_bytes)
    plan = ShardPlan("transfer", shape, level.num_shards, chunk[2], (level,), memory)
    if plan.peak_bytes > memory_target:
        log.warning(
            "a task writing one %s-voxel shard needs about %s bytes, above memory_target=%s; running it anyway "
            "(a smaller chunk_size or a larger memory_target would fit)",
            "×".join(map(str, shape)), f"{plan.peak_bytes:,}", f"{int(memory_target):,}",
        )
    return plan


def _tiles(shape_vox: Sequence[int], footprint: Sequence[int], covered: Sequence[bool]) -> bool:
    return all(cov or (fp % s == 0) for s, fp, cov in zip(shape_vox, footprint, covered))


def plan_shard_pyramid(
    size: Sequence[int],
    src_chunk: Sequence[int],
    level_sizes: Sequence[Sequence[int]],
    chunk: Sequence[int],
    mip: int,
    factor: Sequence[int],
    bpv: int,
    memory_target: int,
    data_encodings: Sequence[str],
    minishard_index_encoding: str = "gzip",
    over_target_ok: bool = False,
) -> ShardPlan:
    """Task box and per-level shard specs for ``len(level_sizes)`` levels above ``mip``.

    The smallest task box that keeps every level shard-aligned may still need more than
    ``memory_target``: with ``over_target_ok`` (the user asked for exactly these levels and
    chunks) that plan runs with one warning naming the memory a task needs and what would fit;
    otherwise it is refused so the caller can plan fewer levels.

    Raises:
        InvalidParameterError: when no task box fits ``memory_target`` and not ``over_target_ok``;
            the message names a num_mips, memory_target and chunk_size that would work.
    """
    chunk_bytes = int(np.prod(chunk)) * bpv
    if chunk_bytes > SHARD_BYTE_TARGET:
        raise InvalidParameterError(
            f"one chunk of {'×'.join(map(str, chunk))} is {chunk_bytes:,} bytes, above the "
            f"{SHARD_BYTE_TARGET:,}-byte shard target; use a smaller chunk_size"
        )
    plan, fits = _plan_pyramid(size, src_chunk, level_sizes, chunk, mip, factor, bpv, memory_target,
                               data_encodings, minishard_index_encoding)
    if fits:
        return plan
    smallest = plan.peak_bytes
    n = len(level_sizes)
    hints = []
    for fewer in range(n - 1, 0, -1):
        _, ok = _plan_pyramid(size, src_chunk, level_sizes[:fewer], chunk, mip, factor, bpv, memory_target,
                              data_encodings[:fewer], minishard_index_encoding)
        if ok:
            hints.append(f"num_mips ≤ {fewer}")
            break
    for j in (1, 2, 3):
        smaller = [max(8, c // 2**j) if (d < 2 or f > 1) else c for d, (c, f) in enumerate(zip(chunk, factor))]
        if list(smaller) == list(chunk):
            continue
        sizes = [tuple(s) for s in level_sizes]
        _, ok = _plan_pyramid(size, src_chunk, sizes, smaller, mip, factor, bpv, memory_target, data_encodings,
                              minishard_index_encoding)
        if ok:
            hints.append(f"chunk_size {','.join(map(str, smaller))}")
            break
    hints.append(f"memory_target ≥ {_round_up(smallest)}")
    if over_target_ok:
        log.warning(
            "num_mips=%d needs about %s bytes per task, above memory_target=%s; running it anyway (%s would fit)",
            n, f"{smallest:,}", f"{int(memory_target):,}", " or ".join(hints),
        )
        return plan
    raise InvalidParameterError(
        f"num_mips={n} cannot be shard-aligned within memory_target={int(memory_target):,} bytes: the smallest "
        f"task needs {smallest:,} bytes; use {', or '.join(hints)}"
    )


def _round_up(nbytes: int) -> str:
    step = 10 ** max(0, len(str(int(nbytes))) - 2)
    return f"{-(-int(nbytes) // step) * step:,}"


def _plan_pyramid(size, src_chunk, level_sizes, chunk, mip, factor, bpv, memory_target, data_encodings,
                  minishard_index_encoding):
    size = np.array(size, dtype=np.int64)
    chunk = np.array(chunk, dtype=np.int64)
    factor = np.array(factor, dtype=np.int64)
    n = len(level_sizes)
    chunk_bytes = int(np.prod(chunk)) * bpv
    label_bits, max_minishard = 10, 9
    t_limit = max_shard_bits(label_bits, max_minishard)
    grids, totals = [], []
    for ls in level_sizes:
        grid, total = _check_bits(ls, chunk)
        grids.append(grid)
        totals.append(total)
    top = n - 1
    fn = factor**n
    slab_z = int(chunk[2] * fn[2])  # whole chunk rows at every level (ImageShardDownsampleTask reads so)
    output_fraction = sum(1.0 / float(np.prod(factor)) ** k for k in range(1, n + 1))

    # Start from the shard size the reference would pick for each level (the same spec as a
    # transfer of that scale); smaller shards are tried only when a task box must tile them.
    starts = [
        min(_shard_chunk_bits(ls, chunk, chunk_bytes, SHARD_BYTE_TARGET), total, t_limit)
        for ls, total in zip(level_sizes, totals)
    ]
    smallest = None
    for t_top in range(starts[top], -1, -1):
        e_top = np.array(morton_shape(grids[top], t_top))
        shard_top = chunk * 2**e_top
        if int(np.prod(np.minimum(shard_top, level_sizes[top]))) * bpv > SHARD_BYTE_TARGET:
            continue
        task = shard_top * fn
        covered = task >= size
        levels = []
        for k in range(1, n + 1):
            idx = k - 1
            footprint = task // factor**k
            chosen = None
            for t in range(starts[idx], -1, -1):
                shape = chunk * 2 ** np.array(morton_shape(grids[idx], t))
                if int(np.prod(np.minimum(shape, level_sizes[idx]))) * bpv > SHARD_BYTE_TARGET:
                    continue
                if _tiles(shape, footprint, covered):
                    chosen = t
                    break
            spec = spec_for_bits(totals[idx], chosen, label_bits, max_minishard, minishard_index_encoding,
                                 data_encodings[idx])
            levels.append(_level(mip + k, level_sizes[idx], chunk, spec, bpv))
        task_xy = np.minimum(task, size + (-size) % fn)
        z = min(slab_z, int(task[2]))
        slab = int(task_xy[0] * task_xy[1] * z) * bpv
        memory = shard_task_memory(slab, chunk_bytes, max(lv.shard_bytes for lv in levels), output_fraction,
                                   pyramid=True)
        num = int(np.prod([-(-int(s) // int(t)) for s, t in zip(size, task)]))
        plan = ShardPlan("pyramid", tuple(int(v) for v in task), num, z, tuple(levels), memory)
        if plan.peak_bytes <= memory_target:
            return plan, True
        if smallest is None or plan.peak_bytes <= smallest.peak_bytes:
            smallest = plan
    return smallest, False
