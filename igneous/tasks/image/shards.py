"""Sharded image tasks (wire module ``igneous.tasks.image.image``, SPEC §3.1).

Each task owns whole shard files, so it never reads, merges or rewrites another task's
shard: a re-run writes the same bytes. A task streams its box in z-slabs, encodes each
slab's chunks (two threads: codecs and gzip release the GIL), keeps them in a ``Spool``
(memory up to two slabs, then a scratch file) and assembles each shard as soon as its
last chunk is encoded.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import mmap
import os
import tempfile
from typing import Dict, List

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume import chunks as cv_chunks
from cloudvolume.datasource.precomputed.common import morton_code_to_gridpt
from cloudvolume.lib import Bbox, Vec

from igneous.atomic import copy_file
from igneous.integrity import CorruptChunkError, MissingChunkError, check_payload, describe
from igneous.ops.downsample import pyramid, resolve_method
from igneous.shards import (
    Spool,
    chunk_codes,
    encode_data,
    grid_size,
    image_shard_shape_from_spec,
    put_shard,
    shard_filename,
    shard_number,
    shard_payloads,
    spool_allowance,
)
from igneous.tasks.image.common import level_box, source_volume, task_box
from igneous.tasks.image.io import UPLOAD_THREADS, read_box
from igneous.tasks.image.transcode import lossless_transcode, recompressor
from igneous.tasks.registry import queueable
from igneous.types import DownsampleMethods

__all__ = ["ImageShardTransferTask", "ImageShardDownsampleTask"]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.image.image"


class ScaleWriter:
    """Encodes chunks of one sharded scale and writes each shard once all its chunks are in."""

    def __init__(self, vol: CloudVolume, mip: int, box: Bbox, spool: Spool):
        meta = vol.meta
        self.layer_path = meta.cloudpath
        self.mip = mip
        self.key = meta.key(mip)
        self.spec = meta.info["scales"][mip]["sharding"]
        self.encoding = meta.encoding(mip)
        self.block_size = meta.compressed_segmentation_block_size(mip)
        self.params = meta.compression_params(mip)
        self.chunk = Vec(*meta.chunk_size(mip))
        self.origin = Vec(*meta.voxel_offset(mip))
        self.size = Vec(*meta.volume_size(mip))
        self.grid = grid_size(self.size, self.chunk)
        self.spool = spool
        check_owns_whole_shards(self.spec, box, self.size, self.chunk, self.origin, mip)
        codes = chunk_codes(self.gridpoints(box), self.grid)
        self.pending: Dict[int, List[int]] = {}
        for code in codes.tolist():
            self.pending.setdefault(self.shard_of(code), []).append(code)
        self.remaining = {shard: len(c) for shard, c in self.pending.items()}
        self.written: List[str] = []

    def shard_of(self, code: int) -> int:
        return shard_number(code, self.spec)

    def gridpoints(self, box: Bbox) -> np.ndarray:
        return gridpoints(self.origin, self.chunk, box)

    def encode(self, image: np.ndarray) -> bytes:
        payload = cv_chunks.encode(
            image, self.encoding, block_size=self.block_size, compression_params=self.params
        )
        return encode_data(payload, self.spec.get("data_encoding", "raw"))

    def submit(self, image: np.ndarray, box: Bbox, pool) -> list:
        """Start encoding the chunks of ``image`` (covering ``box``, chunk-aligned) on ``pool``."""
        jobs = []
        codes = chunk_codes(self.gridpoints(box), self.grid).tolist()
        for (gx, gy, gz), code in zip(self.gridpoints(box), codes):
            lo = self.origin + Vec(gx, gy, gz) * self.chunk
            hi = Vec(*np.minimum(lo + self.chunk, self.origin + self.size))
            rel_lo, rel_hi = lo - box.minpt, hi - box.minpt
            view = image[rel_lo.x : rel_hi.x, rel_lo.y : rel_hi.y, rel_lo.z : rel_hi.z]
            jobs.append((code, pool.submit(self.encode, view)))
        return jobs

    def collect(self, jobs: list) -> None:
        """Spool what ``submit`` encoded (futures, or payloads ready as bytes) and write every
        shard that is now complete."""
        for code, job in jobs:
            self.spool.add((self.mip, code), job if isinstance(job, bytes) else job.result())
            shard = self.shard_of(code)
            self.remaining[shard] -= 1
            if self.remaining[shard] == 0:
                self.flush(shard)

    def flush(self, shard: int) -> None:
        name = put_shard(self.layer_path, self.key, self.spec, shard, self.spool, self.mip, self.pending.pop(shard))
        self.written.append(name)

    def check_done(self) -> None:
        if self.pending:
            missing = sorted(shard_filename(s, self.spec) for s in self.pending)
            raise RuntimeError(f"shards {missing[:5]} of {self.key} were not completed")


def gridpoints(origin, chunk, box: Bbox) -> np.ndarray:
    """Grid points (N×3, x fastest) of the chunks ``box`` touches, counted from ``origin``."""
    origin, chunk = Vec(*origin), Vec(*chunk)
    lo = (box.minpt - origin) // chunk
    hi = -(-(box.maxpt - origin) // chunk)
    axes = [np.arange(int(a), int(b)) for a, b in zip(lo, hi)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)


def check_owns_whole_shards(spec: dict, box: Bbox, size, chunk, origin, mip: int) -> None:
    """A task box must be whole shards (clipped at the far faces) of this scale, else the
    layer's info changed after planning and writing would replace shards with partial ones."""
    shape = Vec(*image_shard_shape_from_spec(spec, size, chunk))
    lo = box.minpt - origin
    hi = box.maxpt - origin
    end = Vec(*size)
    if np.any(lo % shape) or np.any((hi % shape != 0) & (hi != end)):
        raise ValueError(
            f"task box {box} is not whole shards of {tuple(shape)} at mip {mip}; the layer's info changed "
            "after the tasks were planned (re-plan them)"
        )


def _slabs(box: Bbox, thickness: int):
    for z in range(int(box.minpt.z), int(box.maxpt.z), int(thickness)):
        yield Bbox((box.minpt.x, box.minpt.y, z), (box.maxpt.x, box.maxpt.y, min(z + thickness, box.maxpt.z)))


def _same_sharded_layout(src: CloudVolume, dest: CloudVolume, mip: int) -> bool:
    """True when a destination shard is byte for byte a source shard (copy the file)."""
    keys = ("chunk_sizes", "voxel_offset", "size", "encoding", "compressed_segmentation_block_size",
            "resolution", "sharding", "jpeg_quality", "png_level", "jxl_quality", "fpzip_precision")
    a, b = src.info["scales"][mip], dest.info["scales"][mip]
    return (
        src.image.is_sharded(mip)
        and all(a.get(k) == b.get(k) for k in keys)
        and src.dtype == dest.dtype
        and src.num_channels == dest.num_channels
        and src.meta.path.format == "precomputed"
    )


def _same_chunk_files(src: CloudVolume, dest: CloudVolume, mip: int) -> bool:
    """An unsharded source whose chunk files hold exactly the destination's chunk payloads."""
    keys = ("chunk_sizes", "voxel_offset", "size", "encoding", "compressed_segmentation_block_size",
            "jpeg_quality", "png_level", "jxl_quality", "fpzip_precision")
    a, b = src.info["scales"][mip], dest.info["scales"][mip]
    return (
        not src.image.is_sharded(mip)
        and all(a.get(k) == b.get(k) for k in keys)
        and src.dtype == dest.dtype
        and src.num_channels == dest.num_channels
        and src.meta.path.format == "precomputed"
    )


def payload_checker(vol: CloudVolume, mip: int):
    """``check(content, compress, box, name)``: proves one chunk file of ``vol`` at ``mip``
    whole before it is copied without decoding (``igneous.integrity.check_payload``)."""
    encoding = vol.meta.encoding(mip)
    bpv = np.dtype(vol.dtype).itemsize * vol.num_channels
    block_size = vol.meta.compressed_segmentation_block_size(mip) or (8, 8, 8)

    def check(content, compress, box: Bbox, name: str) -> None:
        # per chunk of a fast copy: python ints, and a decoder only where one is needed
        sx, sy, sz = (box.maxpt - box.minpt).tolist()
        decode = None
        if encoding != "raw" and not compress:

            def decode(payload):
                cv_chunks.decode(
                    payload, encoding, shape=(sx, sy, sz, vol.num_channels), dtype=vol.dtype, block_size=block_size
                )

        check_payload(content, compress, encoding, sx * sy * sz * bpv, name, decode=decode)

    return check


def _copy_chunk_payloads(src: CloudVolume, dest: CloudVolume, mip: int, box: Bbox, chunk_z: int, fill_missing: bool,
                         recompress=None):
    """Fast path: move chunk files into the shard without decoding them. A gzip chunk file is
    already a gzip data_encoding payload; anything else is re-compressed as the spec says
    (``recompress(payload, name)`` first: JPEG bitstreams into JPEG XL and back).
    Each file is proven whole first (a damaged one fails the task, named, even with
    ``fill_missing``); an uncompressed 0-byte file is CloudVolume's placeholder for a missing
    chunk and is treated as missing."""
    from cloudfiles.compression import decompress

    bpv = np.dtype(dest.dtype).itemsize * dest.num_channels
    spool = Spool(spool_allowance(int(box.size3().x * box.size3().y * chunk_z) * bpv))
    check = payload_checker(src, mip)
    where = describe(src.meta.cloudpath, mip, "")
    try:
        writer = ScaleWriter(dest, mip, box, spool)
        want = writer.spec.get("data_encoding", "raw")
        cf = CloudFiles(src.meta.cloudpath, progress=False)
        key = src.meta.key(mip)
        background = {}
        for slab in _slabs(box, chunk_z):
            points = writer.gridpoints(slab)
            codes = chunk_codes(points, writer.grid).tolist()
            boxes = []
            for gp in points:
                lo = writer.origin + Vec(*gp) * writer.chunk
                boxes.append(Bbox(lo, Vec(*np.minimum(lo + writer.chunk, writer.origin + writer.size))))
            files = cf.get([f"{key}/{b.to_filename()}" for b in boxes], raw=True)
            by_path = {f["path"]: f for f in files}
            jobs = []
            for code, chunk_box in zip(codes, boxes):
                path = f"{key}/{chunk_box.to_filename()}"
                name = where + path
                found = by_path[path]
                if found.get("error"):
                    err = found["error"]
                    raise CorruptChunkError(f"{name} cannot be read: {type(err).__name__}: {err}") from err
                content, compress = found["content"], found.get("compress")
                if content is None or (len(content) == 0 and not compress):
                    if not fill_missing:
                        raise MissingChunkError(f"{name} is missing")
                    shape = tuple(chunk_box.size3())
                    if shape not in background:
                        blank = np.zeros(shape + (dest.num_channels,), dtype=dest.dtype, order="F")
                        background[shape] = writer.encode(blank)
                    jobs.append((code, background[shape]))
                    continue
                check(content, compress, chunk_box, name)
                if recompress is not None:
                    payload = recompress(decompress(content, compress, filename=name), name)
                    jobs.append((code, encode_data(payload, want)))
                elif want == "gzip" and compress == "gzip":
                    jobs.append((code, content))
                else:
                    jobs.append((code, encode_data(decompress(content, compress, filename=name), want)))
            writer.collect(jobs)
        writer.check_done()
    finally:
        spool.close()


@contextlib.contextmanager
def local_shard(src_dir: str, name: str, scratch_dir=None):
    """A local path of the shard file ``src_dir/name`` (a remote one is streamed to a scratch
    file first), or None when it does not exist. Never held in memory."""
    where = cfpaths.extract(src_dir)
    if where.protocol == "file":
        path = os.path.join(where.path, name)
        yield path if os.path.exists(path) else None
        return
    files = CloudFiles(src_dir, progress=False)
    if not files.exists(name):
        yield None
        return
    with tempfile.TemporaryDirectory(dir=scratch_dir) as tmp:
        files.transfer_to(f"file://{tmp}", paths=[name])
        yield os.path.join(tmp, name)


def copy_verified_shard(src: CloudVolume, dest: CloudVolume, mip: int, name: str, scratch_dir=None) -> None:
    """Copy the shard file ``name`` of ``src`` to ``dest`` (same layout) byte for byte, after
    checking its indexes and every payload (``shards.shard_payloads`` and
    :func:`payload_checker`): a damaged shard fails the task, named, and is never copied.

    Never held in memory: a local source is memory-mapped, a remote one is streamed to a
    scratch file first. A local destination is written atomically; a remote source and
    destination on the same store are still copied object to object."""
    src_dir = f"{src.meta.cloudpath.rstrip('/')}/{src.meta.key(mip)}"
    dest_dir = f"{dest.meta.cloudpath.rstrip('/')}/{dest.meta.key(mip)}"
    src_files = CloudFiles(src_dir, progress=False)
    where = cfpaths.extract(src_dir)
    with local_shard(src_dir, name, scratch_dir) as local:
        if local is None:
            raise MissingChunkError(f"{describe(src.meta.cloudpath, mip, f'{src.meta.key(mip)}/{name}')} is missing")
        _check_shard_file(src, mip, local, describe(src.meta.cloudpath, mip, f"{src.meta.key(mip)}/{name}"))
        dest_where = cfpaths.extract(dest_dir)
        if dest_where.protocol == "file":
            copy_file(local, os.path.join(dest_where.path, name))
        elif where.protocol != "file" and where.protocol == dest_where.protocol:
            src_files.transfer_to(dest_dir, paths=[name])  # server side
        else:
            with open(local, "rb") as f:
                CloudFiles(dest_dir, progress=False).put(
                    name, f, compress=None, raw=True, content_type="application/octet-stream", cache_control="no-cache"
                )


def _recompress_shards(src: CloudVolume, dest: CloudVolume, mip: int, box: Bbox, chunk_z: int, fill_missing: bool):
    """JPEG ⇄ JPEG XL from a sharded source on the same chunk grid: every chunk payload of the
    source shards the box touches is checked, recompressed (the JPEG bitstream is kept) and
    written into the destination's shards; nothing is decoded to pixels."""
    from cloudfiles.compression import decompress

    recompress = recompressor(src, dest, mip)
    spec = src.info["scales"][mip]["sharding"]
    have = spec.get("data_encoding", "raw")
    check = payload_checker(src, mip)
    bpv = np.dtype(dest.dtype).itemsize * dest.num_channels
    spool = Spool(spool_allowance(int(box.size3().x * box.size3().y * chunk_z) * bpv))
    src_dir = f"{src.meta.cloudpath.rstrip('/')}/{src.meta.key(mip)}"
    try:
        writer = ScaleWriter(dest, mip, box, spool)
        want = writer.spec.get("data_encoding", "raw")
        points = writer.gridpoints(box)
        boxes = {}
        for gp, code in zip(points, chunk_codes(points, writer.grid).tolist()):
            lo = writer.origin + Vec(*gp) * writer.chunk
            boxes[code] = Bbox(lo, Vec(*np.minimum(lo + writer.chunk, writer.origin + writer.size)))
        names = sorted({shard_filename(shard_number(code, spec), spec) for code in boxes})
        done = set()
        for name in names:
            where = describe(src.meta.cloudpath, mip, f"{src.meta.key(mip)}/{name}")
            with local_shard(src_dir, name) as local:
                if local is None:
                    continue
                with open(local, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    for code, payload in shard_payloads(data, spec, where):
                        if code not in boxes:
                            continue
                        label = f"{where} chunk {boxes[code].to_filename()}"
                        check(payload, None if have == "raw" else have, boxes[code], label)
                        raw = bytes(payload) if have == "raw" else decompress(bytes(payload), have)
                        writer.collect([(code, encode_data(recompress(raw, label), want))])
                        done.add(code)
        missing = [code for code in boxes if code not in done]
        if missing and not fill_missing:
            first = boxes[missing[0]].to_filename()
            raise MissingChunkError(f"{describe(src.meta.cloudpath, mip, src.meta.key(mip))} chunk {first} is missing")
        for code in missing:
            blank = np.zeros(tuple(boxes[code].size3()) + (dest.num_channels,), dtype=dest.dtype, order="F")
            writer.collect([(code, writer.encode(blank))])
        writer.check_done()
    finally:
        spool.close()


def _check_shard_file(vol: CloudVolume, mip: int, path: str, name: str) -> None:
    spec = vol.info["scales"][mip]["sharding"]
    data_encoding = spec.get("data_encoding", "raw")
    check = payload_checker(vol, mip)
    chunk = Vec(*vol.meta.chunk_size(mip))
    origin = Vec(*vol.meta.voxel_offset(mip))
    end = origin + Vec(*vol.meta.volume_size(mip))
    grid = grid_size(vol.meta.volume_size(mip), chunk)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise CorruptChunkError(f"{name} is empty (0 bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for code, payload in shard_payloads(data, spec, name):
                gp = Vec(*morton_code_to_gridpt(code, grid))
                lo = origin + gp * chunk
                box = Bbox(lo, Vec(*np.minimum(lo + chunk, end)))
                compress = None if data_encoding == "raw" else data_encoding
                check(payload, compress, box, f"{name} chunk {box.to_filename()}")


@queueable(WIRE)
def ImageShardTransferTask(
    src_path,
    dst_path,
    shape,
    offset,
    mip=0,
    fill_missing=False,
    translate=(0, 0, 0),
    agglomerate=False,
    timestamp=None,
    stop_layer=None,
    use_https_for_source=False,
):
    """Write the one destination shard whose box is ``offset + shape`` (dest voxels at ``mip``),
    reading ``box - translate`` from the source."""
    translate = Vec(*translate)
    src = source_volume(src_path, mip, fill_missing, agglomerate, timestamp, stop_layer, use_https_for_source)
    dest = CloudVolume(dst_path, mip=mip, progress=False, cdn_cache=False)
    box = task_box(dest, mip, shape, offset)
    if box.subvoxel():
        return
    spec = dest.info["scales"][mip]["sharding"]

    if not translate.any() and _same_sharded_layout(src, dest, mip):
        check_owns_whole_shards(spec, box, dest.meta.volume_size(mip), dest.meta.chunk_size(mip),
                                dest.meta.voxel_offset(mip), mip)
        first = gridpoints(dest.meta.voxel_offset(mip), dest.meta.chunk_size(mip), box)[:1]
        codes = chunk_codes(first, grid_size(dest.meta.volume_size(mip), dest.meta.chunk_size(mip)))
        name = shard_filename(shard_number(int(codes[0]), spec), spec)
        src_files = CloudFiles(f"{src.meta.cloudpath.rstrip('/')}/{src.meta.key(mip)}", progress=False)
        if src_files.exists(name):
            copy_verified_shard(src, dest, mip, name)
            return
        if not fill_missing:
            raise ValueError(f"source shard {src.meta.key(mip)}/{name} is missing")

    chunk_z = int(dest.meta.chunk_size(mip)[2])
    if not translate.any() and _same_chunk_files(src, dest, mip):
        return _copy_chunk_payloads(src, dest, mip, box, chunk_z, fill_missing)
    if not translate.any() and lossless_transcode(src, dest, mip):
        if src.image.is_sharded(mip):
            return _recompress_shards(src, dest, mip, box, chunk_z, fill_missing)
        return _copy_chunk_payloads(src, dest, mip, box, chunk_z, fill_missing, recompressor(src, dest, mip))
    bpv = np.dtype(dest.dtype).itemsize * dest.num_channels
    slab_bytes = int(box.size3().x * box.size3().y * chunk_z) * bpv
    spool = Spool(spool_allowance(slab_bytes))
    try:
        writer = ScaleWriter(dest, mip, box, spool)
        with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            pending = []  # the previous slab encodes while the next one is read
            for slab in _slabs(box, chunk_z):
                jobs = writer.submit(read_box(src, slab - translate, mip), slab, pool)
                writer.collect(pending)
                pending = jobs
            writer.collect(pending)
        writer.check_done()
    finally:
        spool.close()


@queueable(WIRE)
def ImageShardDownsampleTask(
    src_path,
    shape,
    offset,
    mip=0,
    fill_missing=False,
    sparse=False,
    agglomerate=False,
    timestamp=None,
    factor=(2, 2, 1),
    method=DownsampleMethods.AUTO,
    num_mips=1,
    progress=False,
    codec_threads=1,
):
    """Build ``num_mips`` sharded levels above ``mip`` for the box ``offset + shape``.

    Every level comes from the mip-``mip`` slab in one pyramid call (never from another
    level, so integer averaging matches the whole-array result and lossy encodings never
    compound). The task writes only the shards inside its box at each level.
    """
    vol = source_volume(src_path, mip, fill_missing, agglomerate, timestamp, codec_threads=codec_threads)
    box = task_box(vol, mip, shape, offset)
    if box.subvoxel():
        return
    factor = Vec(*factor)
    num_mips = int(num_mips)
    method = resolve_method(method, vol.layer_type, vol.dtype)
    plan_slab = int(vol.meta.chunk_size(mip + 1)[2]) * int(factor[2]) ** num_mips
    if factor[2] == 1:
        plan_slab = int(vol.meta.chunk_size(mip + 1)[2])
    bpv = np.dtype(vol.dtype).itemsize * vol.num_channels
    spool = Spool(spool_allowance(int(box.size3().x * box.size3().y * plan_slab) * bpv))
    try:
        writers = [ScaleWriter(vol, mip + k, level_box(vol, mip, box, factor, k), spool) for k in range(1, num_mips + 1)]
        slabs = list(_slabs(box, plan_slab))
        with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            pending = []  # the previous slab's levels encode while the next slab is read and pooled
            for i, slab in enumerate(slabs):
                image = read_box(vol, slab, mip)
                levels = pyramid(image, factor, num_mips, method, sparse)
                del image
                jobs = [
                    (writer, writer.submit(level, level_box(vol, mip, slab, factor, k), pool))
                    for k, (writer, level) in enumerate(zip(writers, levels), start=1)
                ]
                del levels
                for writer, prior in pending:
                    writer.collect(prior)
                pending = jobs
                if progress:
                    log.info("slab %d/%d of %s", i + 1, len(slabs), box)
            for writer, prior in pending:
                writer.collect(prior)
        for writer in writers:
            writer.check_done()
    finally:
        spool.close()
