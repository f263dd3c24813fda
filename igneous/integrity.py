"""Chunk integrity: read errors that name the chunk, and payloads proven whole before a copy.

**Every read error names the layer, the mip and the chunk file.** CloudVolume reports a
damaged chunk as ``DeflateError: Decompression failed`` or ``File contains zero bytes: N/A``
and a missing one as a bare bounding box. :func:`install` wraps the two functions every
image read of CloudVolume's precomputed source goes through — ``rx.download_chunk`` (each
unsharded chunk file: downloads, unique labels, single voxels, raw reads) and
``rx.download_sharded`` (sharded reads) — so whatever reads a volume (downsampling,
transfers, meshing, skeletons, CCL, voxel counts, ``igneous view``) fails with
:class:`CorruptChunkError` or :class:`MissingChunkError` naming the file. The original
exception stays chained as ``__cause__``.

**What counts as missing.** A chunk file that does not exist is missing: filled with the
background colour with ``fill_missing``, an error without it. A *damaged* chunk (garbage,
truncated, a 0-byte compressed file, bytes that do not decode) is never treated as missing,
with or without ``fill_missing``. The one ambiguous case is an *uncompressed 0-byte* file:
CloudVolume itself writes those as placeholders for missing chunks (``transfer_to`` with
``fill_missing``), so it is read as missing, exactly as CloudVolume reads it. Igneous' own
writes are atomic (``igneous.atomic``) and never leave one.

**Copies that do not decode prove each payload whole** (:func:`check_payload`): a chunk
copied byte for byte into a shard or another layer must be a complete file of the expected
size. A gzip payload's header and its trailer (``ISIZE``, the decompressed length) are
checked in O(1): a truncated or garbage file fails that check except with probability
2^-32 for raw chunks, whose decompressed size is known. Payloads whose decompressed size is
not known (other encodings inside gzip) are decompressed with libdeflate, which also
checks the CRC-32. The O(1) check costs ~1 µs a chunk; inflating a raw 256 KiB chunk just
to check its CRC costs ~0.6 ms on a quiet machine (2 ms under load), about as much as the
whole fast copy of that chunk (~0.8 ms), so it would double a same-layout sharded transfer.
``IGNEOUS_VERIFY_PAYLOADS=crc`` turns that full check on for every gzip payload. Either
way a reader still checks the CRC of every chunk it decompresses, and a flipped bit fails
there, named.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Optional

from cloudvolume.exceptions import EmptyVolumeException

__all__ = [
    "ChunkReadError",
    "CorruptChunkError",
    "MissingChunkError",
    "check_payload",
    "check_gzip",
    "full_crc_checks",
    "install",
]

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"


class ChunkReadError(OSError):
    """A chunk file could not be read; the message names the layer, the mip and the file."""


class CorruptChunkError(ChunkReadError):
    """A chunk file exists but its bytes are damaged (garbage, truncated, empty, undecodable)."""


class MissingChunkError(EmptyVolumeException):
    """A chunk file does not exist (and ``fill_missing`` is off). An ``EmptyVolumeException``,
    so code that tolerates missing chunks keeps working."""


def full_crc_checks() -> bool:
    return os.environ.get("IGNEOUS_VERIFY_PAYLOADS", "").strip().lower() in ("crc", "full")


def describe(layer: str, mip: int, filename: str) -> str:
    return f"layer {layer} mip {mip} chunk {filename}"


def check_gzip(content, expected_size: Optional[int], name: str, full: Optional[bool] = None) -> None:
    """Raise :class:`CorruptChunkError` unless ``content`` is a whole gzip stream (see module doc)."""
    if full is None:
        full = full_crc_checks()
    if len(content) < 18 or bytes(content[:3]) != GZIP_MAGIC:
        raise CorruptChunkError(f"{name}: not a whole gzip stream ({len(content)} bytes)")
    (isize,) = struct.unpack("<I", bytes(content[-4:]))
    if expected_size is not None and isize != expected_size % 2**32:
        raise CorruptChunkError(
            f"{name}: gzip trailer says {isize} bytes, the chunk holds {expected_size} (truncated or damaged)"
        )
    if full or expected_size is None:
        import deflate

        try:
            deflate.gzip_decompress(content, isize or 1)
        except Exception as err:  # DeflateError or ValueError: bad stream, CRC or length
            raise CorruptChunkError(f"{name}: gzip stream does not decompress ({err})") from err


def check_payload(
    content, compress: Optional[str], encoding: str, raw_size: int, name: str, decode=None
) -> None:
    """Prove the bytes of one chunk file whole before they are copied without decoding.

    Args:
        content: the file's bytes as stored.
        compress: its compression (``"gzip"``, ``"br"``, ``"zstd"`` or None).
        encoding: the layer's encoding at this mip.
        raw_size: bytes of the decoded chunk (voxels × bytes per voxel × channels).
        name: what error messages call it (:func:`describe`).
        decode: for an uncompressed non-raw payload, a function that decodes it (its
            exception is the proof of damage); None skips that check.
    """
    if content is None:
        raise MissingChunkError(f"{name} is missing")
    if len(content) == 0:
        raise CorruptChunkError(f"{name} is empty (0 bytes)")
    expected = raw_size if encoding == "raw" else None
    if compress == "gzip":
        check_gzip(content, expected, name)
        return
    if compress:
        from cloudfiles.compression import decompress

        try:
            content = decompress(content, compress, filename=name)
        except Exception as err:
            raise CorruptChunkError(f"{name}: {compress} stream does not decompress ({err})") from err
    if expected is not None:
        if len(content) != expected:
            raise CorruptChunkError(f"{name}: {len(content)} bytes, a raw chunk holds {expected} (truncated?)")
    elif decode is not None:
        try:
            decode(content)
        except Exception as err:
            raise CorruptChunkError(f"{name}: {encoding} payload does not decode ({type(err).__name__}: {err})") from err


# -- compressed_segmentation streams are bounds-checked before decoding -----------------

CSEG_BITS = (0, 1, 2, 4, 8, 16, 32)


def cseg_problem(data, shape, dtype, block_size) -> Optional[str]:
    """Why ``data`` cannot be a whole compressed_segmentation stream of ``shape``, or None.

    The decoder trusts the offsets in the stream: a truncated or garbage chunk decodes to
    wrong labels without an error (or reads past the buffer). Each block header names its
    bit width and where its lookup table and values are; all must lie inside the stream.
    Vectorised over the block headers, a small fraction of the decode itself.
    """
    import numpy as np

    if len(data) % 4:
        return f"{len(data)} bytes is not a whole number of 32-bit words"
    words = np.frombuffer(bytes(data), dtype="<u4")
    nwords = len(words)
    channels = int(shape[3]) if len(shape) > 3 else 1
    grid = [-(-int(n) // int(b)) for n, b in zip(shape[:3], block_size)]
    nblocks = int(np.prod(grid))
    block_voxels = int(np.prod([int(b) for b in block_size]))
    entry_words = 2 if np.dtype(dtype).itemsize == 8 else 1
    if nwords < channels:
        return "shorter than its channel table"
    for c in range(channels):
        start = int(words[c])
        if start + 2 * nblocks > nwords:
            return f"channel {c}: block headers run past the end ({nwords} words)"
        headers = words[start : start + 2 * nblocks].reshape(nblocks, 2).astype(np.int64)
        bits = headers[:, 0] >> 24
        if not np.isin(bits, CSEG_BITS).all():
            return f"channel {c}: invalid bit widths in block headers"
        values_end = start + headers[:, 1] + (bits * block_voxels + 31) // 32
        table_end = start + (headers[:, 0] & 0xFFFFFF) + entry_words
        if values_end.max() > nwords or table_end.max() > nwords:
            return f"channel {c}: blocks point past the end ({nwords} words): truncated or damaged"
    return None


def _checked_cseg(original):
    def decode_compressed_segmentation(bytestring, shape, dtype, block_size):
        if block_size is not None:
            problem = cseg_problem(bytestring, shape, dtype, block_size)
            if problem is not None:
                raise ValueError(f"damaged compressed_segmentation stream: {problem}")
        return original(bytestring, shape, dtype, block_size)

    decode_compressed_segmentation.__wrapped__ = original
    return decode_compressed_segmentation


# -- read errors that name the chunk ----------------------------------------------------

_installed = False


def _name_unsharded(original):
    def download_chunk(meta, cache, lru, lru_encoding, cloudpath, mip, filename, fill_missing, *args, **kwargs):
        try:
            return original(meta, cache, lru, lru_encoding, cloudpath, mip, filename, fill_missing, *args, **kwargs)
        except (ChunkReadError, MissingChunkError):
            raise
        except EmptyVolumeException:
            raise MissingChunkError(f"{describe(cloudpath, mip, filename)} is missing") from None
        except Exception as err:
            raise CorruptChunkError(
                f"{describe(cloudpath, mip, filename)} cannot be read: {type(err).__name__}: {err}"
            ) from err

    download_chunk.__wrapped__ = original
    return download_chunk


def _shard_files(meta, spec, mip: int, bbox) -> list:
    """Paths (``key/name.shard``) of the shard files a read of ``bbox`` touches."""
    from cloudvolume.lib import Bbox

    from igneous.shards import chunk_codes, grid_size, shard_filename, shard_number
    from igneous.tasks.image.shards import gridpoints

    box = Bbox.clamp(Bbox.create(bbox), meta.bounds(mip))
    grid = grid_size(meta.volume_size(mip), meta.chunk_size(mip))
    codes = chunk_codes(gridpoints(meta.voxel_offset(mip), meta.chunk_size(mip), box), grid)
    sdict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    names = sorted({shard_filename(shard_number(int(c), sdict), sdict) for c in codes.tolist()})
    return [f"{meta.key(mip)}/{name}" for name in names]


def _shard_names(files: list) -> str:
    more = f" and {len(files) - 5} more" if len(files) > 5 else ""
    return ", ".join(files[:5]) + more


def _empty_shard(meta, files: list) -> Optional[str]:
    """A 0-byte shard file among ``files`` (CloudVolume reads one as "all chunks missing", but a
    shard always has an index: it is a damaged file, e.g. left by a full disk)."""
    from cloudfiles import CloudFiles

    sizes = CloudFiles(meta.cloudpath, progress=False).size(files[:64])
    return next((path for path, size in sizes.items() if size == 0), None)


def _name_sharded(original):
    def download_sharded(requested_bbox, mip, meta, cache, lru, lru_encoding, spec, *args, **kwargs):
        try:
            return original(requested_bbox, mip, meta, cache, lru, lru_encoding, spec, *args, **kwargs)
        except (ChunkReadError, MissingChunkError):
            raise
        except Exception as err:
            try:
                files = _shard_files(meta, spec, mip, requested_bbox)
            except Exception:  # the message must not hide the real error
                files = [f"{meta.key(mip)}/*.shard"]
            where = describe(meta.cloudpath, mip, _shard_names(files))
            if not isinstance(err, EmptyVolumeException):
                raise CorruptChunkError(f"{where} cannot be read: {type(err).__name__}: {err}") from err
            try:
                empty = _empty_shard(meta, files)
            except Exception:
                empty = None
            if empty is not None:
                raise CorruptChunkError(f"{describe(meta.cloudpath, mip, empty)} is empty (0 bytes)") from None
            raise MissingChunkError(f"{where}: chunk {err} is missing") from None

    download_sharded.__wrapped__ = original
    return download_sharded


def _debug_print(*args, **kwargs) -> None:
    log.debug("%s", " ".join(str(a) for a in args))


def install() -> None:
    """Wrap CloudVolume's chunk readers so their errors name the chunk, and bounds-check
    compressed_segmentation streams before they are decoded (idempotent)."""
    global _installed
    if _installed:
        return
    from cloudfiles import compression
    from cloudvolume import chunks
    from cloudvolume.datasource.precomputed.image import rx

    chunks.decode_compressed_segmentation = _checked_cseg(chunks.decode_compressed_segmentation)
    # Both modules print a half-message on stdout before re-raising ("Filename: N/A", "File Read
    # Error: ..."): the error we raise says it all, so their prints become debug log records.
    rx.print = compression.print = _debug_print
    rx.download_chunk = _name_unsharded(rx.download_chunk)
    rx.download_sharded = _name_sharded(rx.download_sharded)
    _installed = True
