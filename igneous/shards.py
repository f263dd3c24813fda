"""Sharded image layout (``neuroglancer_uint64_sharded_v1``): the one home of its format knowledge.

A sharded scale stores chunk ``g`` (grid point counted from the scale's ``voxel_offset``) under
the key ``compressed_morton_code(g, grid)``. With ``t = preshift_bits + minishard_bits`` the
file holding a chunk is ``code >> t`` (``shard_bits`` hex digits), and the chunks of one file
form an aligned box of ``2^n_x × 2^n_y × 2^n_z`` chunks, clipped at the far faces. Our specs
always use every Morton bit (``p + m + s == total``) so no two regions alias one file.

A shard file is ``[fixed index: 2^m × (start, end) uint64][chunk data, minishard by minishard,
keys ascending][minishard indices]``; offsets count from the end of the fixed index and each
minishard index is a (3, n) uint64 array of key deltas, offset deltas and sizes.
``ShardWriter`` produces exactly what cloud-volume's ``synthesize_shard_file`` would, but
streams to a file object and keeps pending payloads in a ``Spool`` that spills to a scratch
file past a memory allowance, so a task's memory does not grow with its shard.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudfiles.compression import compress as cf_compress
from cloudvolume.datasource.precomputed.common import compressed_morton_code
from cloudvolume.lib import Vec

from igneous.atomic import atomic_write, remove_stale_partials
from igneous.errors import InvalidParameterError

__all__ = [
    "SHARD_TYPE",
    "INDEX_ENCODINGS",
    "check_index_encoding",
    "image_shard_shape_from_spec",
    "grid_size",
    "morton_bits",
    "morton_shape",
    "chunk_codes",
    "shard_filename",
    "Spool",
    "spool_allowance",
    "ShardWriter",
    "put_shard",
    "shard_payloads",
]

SHARD_TYPE = "neuroglancer_uint64_sharded_v1"
# How a shard stores its minishard indices and its payloads (Neuroglancer: "raw" or "gzip").
INDEX_ENCODINGS = ("raw", "gzip")


def check_index_encoding(value, name: str = "minishard_index_encoding") -> str:
    """``value`` if it is a sharded format's index or data encoding (raw, gzip), else refuse."""
    if value not in INDEX_ENCODINGS:
        raise InvalidParameterError(f"{name} must be raw or gzip; got {value!r}")
    return value
MAX_MORTON_BITS = 64


def grid_size(dataset_size: Sequence[int], chunk_size: Sequence[int]) -> Tuple[int, int, int]:
    """Chunks per axis of a scale: ``ceil(size / chunk)``."""
    return tuple(-(-int(d) // int(c)) for d, c in zip(dataset_size, chunk_size))


def morton_bits(grid: Sequence[int]) -> Tuple[int, int, int]:
    """Bits of compressed Morton code per axis: ``ceil(log2 g)`` (0 for a single chunk)."""
    return tuple(int(math.ceil(math.log2(int(g)))) if int(g) > 1 else 0 for g in grid)


def morton_shape(grid: Sequence[int], bits: int) -> Tuple[int, int, int]:
    """How the lowest ``bits`` Morton bits split over x, y, z: ``(n_x, n_y, n_z)``.

    Bits are handed out in rounds i = 0, 1, …, one per axis (x, y, z) while ``2**i < g``,
    which is exactly the order ``compressed_morton_code`` interleaves them.
    """
    n = [0, 0, 0]
    given = 0
    i = 0
    while given < bits:
        progressed = False
        for d in range(3):
            if given < bits and 2**i < int(grid[d]):
                n[d] += 1
                given += 1
                progressed = True
        if not progressed:
            break
        i += 1
    return tuple(n)


def image_shard_shape_from_spec(spec: dict, dataset_size: Sequence[int], chunk_size: Sequence[int]) -> Vec:
    """Voxel extent of one image shard (not clipped to the volume), as Python ints."""
    bits = int(spec["preshift_bits"]) + int(spec["minishard_bits"])
    if bits >= MAX_MORTON_BITS:
        raise InvalidParameterError(f"preshift_bits + minishard_bits = {bits} must be below 64")
    n = morton_shape(grid_size(dataset_size, chunk_size), bits)
    return Vec(*(int(c) * 2**k for c, k in zip(chunk_size, n)))


def chunk_codes(gridpts: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """Morton codes (uint64) of grid points (N×3, counted from the scale's voxel_offset)."""
    gridpts = np.asarray(gridpts, dtype=np.int64).reshape(-1, 3)
    if len(gridpts) == 0:
        return np.zeros((0,), dtype=np.uint64)
    return np.asarray(compressed_morton_code(gridpts, list(grid)), dtype=np.uint64).reshape(-1)


def shard_number(code: int, spec: dict) -> int:
    return (int(code) >> (int(spec["preshift_bits"]) + int(spec["minishard_bits"]))) & (
        (1 << int(spec["shard_bits"])) - 1
    )


def shard_filename(number: int, spec: dict) -> str:
    """``{hex}.shard``, zero-padded to ``ceil(shard_bits / 4)`` digits, as cloud-volume names it."""
    digits = int(math.ceil(int(spec["shard_bits"]) / 4.0))
    return f"{format(int(number), 'x').zfill(digits)}.shard"


def encode_data(payload: bytes, data_encoding: str) -> bytes:
    """Apply a spec's ``data_encoding`` (raw or gzip) to one chunk."""
    return payload if data_encoding == "raw" else cf_compress(payload, "gzip")


def spool_allowance(slab_bytes: int) -> int:
    """Encoded bytes a shard task keeps in memory before spilling to scratch: two slabs' worth.

    A function of the task's own shape, so the planner can budget it and the task needs no
    extra argument. Spilling is slow on ordinary disks (it doubled a 3-level pyramid's wall
    time at half a slab), so memory that the target allows is used first.
    """
    return 2 * int(slab_bytes)


class Spool:
    """Pending chunk payloads keyed by ``(group, code)``: in memory up to ``allowance`` bytes,
    then appended to an anonymous scratch file (``IGNEOUS_SCRATCH`` or the temp directory)."""

    def __init__(self, allowance: int, scratch_dir: Optional[str] = None):
        self.allowance = int(allowance)
        self.scratch_dir = scratch_dir or os.environ.get("IGNEOUS_SCRATCH") or tempfile.gettempdir()
        self.memory: Dict[tuple, bytes] = {}
        self.on_disk: Dict[tuple, Tuple[int, int]] = {}
        self.in_memory = 0
        self.spilled = 0
        self._file = None

    def add(self, key: tuple, payload: bytes) -> None:
        if self.in_memory + len(payload) <= self.allowance:
            self.memory[key] = payload
            self.in_memory += len(payload)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self.scratch_dir)
        self._file.seek(0, os.SEEK_END)
        self.on_disk[key] = (self._file.tell(), len(payload))
        self._file.write(payload)
        self.spilled += len(payload)

    def __contains__(self, key: tuple) -> bool:
        return key in self.memory or key in self.on_disk

    def pop(self, key: tuple) -> bytes:
        if key in self.memory:
            payload = self.memory.pop(key)
            self.in_memory -= len(payload)
            return payload
        offset, size = self.on_disk.pop(key)
        self._file.seek(offset)
        return self._file.read(size)

    def size(self, key: tuple) -> int:
        return len(self.memory[key]) if key in self.memory else self.on_disk[key][1]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.memory.clear()
        self.on_disk.clear()
        self.in_memory = 0


class ShardWriter:
    """Assemble one shard from spooled payloads (already data-encoded) and stream it out."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.preshift = int(spec["preshift_bits"])
        self.minishard_bits = int(spec["minishard_bits"])
        self.index_encoding = spec.get("minishard_index_encoding", "raw")

    def write(self, spool: Spool, group, codes: Iterable[int], out) -> int:
        """Write the shard of ``codes`` (payloads under ``(group, code)`` in ``spool``) to ``out``,
        popping them from the spool. Returns the bytes written."""
        codes = np.unique(np.asarray(list(codes), dtype=np.uint64))
        mask = np.uint64((1 << self.minishard_bits) - 1)
        minishards = (codes >> np.uint64(self.preshift)) & mask
        sizes = np.array([spool.size((group, int(c))) for c in codes], dtype=np.uint64)

        index = np.zeros((2**self.minishard_bits, 2), dtype="<u8")
        tables = []
        position = 0
        order = np.argsort(minishards, kind="stable")  # codes stay ascending inside a minishard
        for mno in np.unique(minishards):
            members = order[minishards[order] == mno]
            table = np.zeros((3, len(members)), dtype="<u8")
            table[0] = np.diff(codes[members], prepend=np.uint64(0))
            table[1, 0] = position
            table[2] = sizes[members]
            position += int(sizes[members].sum())
            data = table.tobytes("C")
            if self.index_encoding == "gzip":
                data = cf_compress(data, "gzip")
            tables.append((int(mno), data))
        for mno, data in tables:
            index[mno] = (position, position + len(data))
            position += len(data)

        out.write(index.tobytes("C"))
        for i in order:
            out.write(spool.pop((group, int(codes[i]))))
        for _, data in tables:
            out.write(data)
        return index.nbytes + position


def shard_payloads(data, spec: dict, name: str):
    """Yield ``(code, payload)`` for every chunk of the shard file ``data`` (payloads still
    data-encoded), checking the structure as it goes: the fixed index, every minishard index
    and every payload's byte range must lie inside the file and decode. Raises
    ``igneous.integrity.CorruptChunkError`` naming ``name`` otherwise (a truncated or damaged
    shard). The payloads themselves are the caller's to check."""
    from igneous.integrity import CorruptChunkError

    index_length = 16 * 2 ** int(spec["minishard_bits"])
    size = len(data)
    if size < index_length:
        raise CorruptChunkError(f"{name}: {size} bytes, shorter than its {index_length}-byte index")
    index = np.frombuffer(bytes(data[:index_length]), dtype="<u8").reshape(-1, 2).astype(np.int64) + index_length
    gzip_index = spec.get("minishard_index_encoding", "raw") == "gzip"
    for mno, (start, end) in enumerate(index.tolist()):
        if start == end:
            continue
        if not index_length <= start < end <= size:
            raise CorruptChunkError(f"{name}: minishard {mno} index at bytes {start}-{end} is outside the file ({size} bytes)")
        table = bytes(data[start:end])
        if gzip_index:
            import deflate

            try:
                table = bytes(deflate.gzip_decompress(table))
            except Exception as err:
                raise CorruptChunkError(f"{name}: minishard {mno} index does not decompress ({err})") from err
        if len(table) % 24:
            raise CorruptChunkError(f"{name}: minishard {mno} index has {len(table)} bytes, not a multiple of 24")
        rows = np.frombuffer(table, dtype="<u8").reshape(3, -1)
        codes = np.cumsum(rows[0], dtype=np.uint64)
        sizes = rows[2].astype(np.int64)
        offsets = np.cumsum(rows[1].astype(np.int64)) + index_length
        offsets[1:] += np.cumsum(sizes[:-1])
        if len(rows[0]) and (offsets.min() < index_length or (offsets + sizes).max() > size or sizes.min() < 0):
            raise CorruptChunkError(f"{name}: minishard {mno} points outside the file ({size} bytes)")
        for code, offset, length in zip(codes.tolist(), offsets.tolist(), sizes.tolist()):
            yield code, data[offset : offset + length]


def put_shard(layer_path: str, key: str, spec: dict, number: int, spool: Spool, group, codes, scratch_dir=None) -> str:
    """Assemble and upload one shard file; returns its name. Never compresses the file itself:
    readers fetch byte ranges of it. Local layers get the file written next to its final name
    and renamed into view when complete (``igneous.atomic``: a killed writer's leftover is
    taken over by the rerun); remote ones get it streamed from a scratch file."""
    name = shard_filename(number, spec)
    where = cfpaths.extract(layer_path)
    if where.protocol == "file":
        final = os.path.join(where.path, key, name)

        def fill(fd: int) -> None:
            with os.fdopen(fd, "wb", closefd=False) as out:
                ShardWriter(spec).write(spool, group, codes, out)

        atomic_write(final, fill)
        remove_stale_partials(final)  # a killed private writer's (or an earlier version's) leftover
        return name
    cf = CloudFiles(layer_path, progress=False)
    with tempfile.TemporaryFile(dir=scratch_dir or spool.scratch_dir) as out:
        ShardWriter(spec).write(spool, group, codes, out)
        out.seek(0)
        cf.put(cf.join(key, name), out, compress=None, content_type="application/octet-stream", cache_control="no-cache")
    return name
