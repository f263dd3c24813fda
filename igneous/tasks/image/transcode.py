"""Lossless JPEG ⇄ JPEG XL recompression of chunk files (SPEC §1.1 encodings, issue: drop-in parity).

A JPEG chunk stored as ``jxl`` at quality 100 keeps the JPEG bitstream inside the JPEG XL file
(``imagecodecs.jpegxl_encode_jpeg``), about 20 % smaller, and ``jxl`` → ``jpeg`` at quality
100 gives back the original JPEG bytes. Decoding to pixels and re-encoding would instead
lose that (a pixel-lossless JPEG XL cannot be turned back into the same JPEG). cloud-volume's
``chunks.transcode`` does the recompression; this module decides when it applies and feeds
it chunk files of the same grid.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume, EmptyVolumeException
from cloudvolume import chunks as cv_chunks
from cloudvolume.lib import Bbox, Vec

__all__ = ["LOSSLESS_PAIRS", "lossless_transcode", "recompressor", "transcode_payloads", "transcode_box"]

LOSSLESS_PAIRS = {("jpeg", "jxl"), ("jxl", "jpeg")}
_GRID_KEYS = ("chunk_sizes", "voxel_offset", "size", "resolution")


def lossless_transcode(src: CloudVolume, dest: CloudVolume, mip: int) -> bool:
    """True when ``dest``'s chunks at ``mip`` are ``src``'s recompressed JPEG ⇄ JPEG XL bitstreams:
    the same chunk grid, one of the two encodings each, and a destination quality of 100."""
    a, b = src.info["scales"][mip], dest.info["scales"][mip]
    pair = (src.meta.encoding(mip), dest.meta.encoding(mip))
    level = dest.meta.compression_params(mip).get("level")
    return (
        pair in LOSSLESS_PAIRS
        and (level is None or int(level) >= 100)
        and all(a.get(k) == b.get(k) for k in _GRID_KEYS)
        and src.dtype == dest.dtype == np.uint8
        and src.num_channels == dest.num_channels
        and src.meta.path.format == dest.meta.path.format == "precomputed"
    )


def recompressor(src: CloudVolume, dest: CloudVolume, mip: int) -> Callable[[bytes, str], bytes]:
    """``fn(payload, name)``: one chunk's JPEG (or JPEG XL) bitstream recompressed as ``dest``'s
    encoding, through cloud-volume's ``chunks.transcode``; a payload the codec rejects fails
    naming the chunk."""
    src_encoding, dest_encoding = src.meta.encoding(mip), dest.meta.encoding(mip)
    params = dest.meta.compression_params(mip)

    def recompress(payload: bytes, name: str) -> bytes:
        try:
            [(_, binary)] = list(cv_chunks.transcode(
                [(name, payload)], src_encoding, dest_encoding,
                src_chunk_size_fn=lambda label: Bbox.from_filename(label.rsplit("/", 1)[-1]).size3(),
                dtype=src.dtype, compression_params=params,
            ))  # fmt: skip
        except Exception as err:
            raise ValueError(
                f"cannot recompress {name} ({src_encoding} → {dest_encoding}): {type(err).__name__}: {err}"
            ) from err
        return binary

    return recompress


def transcode_payloads(
    files: Iterable[Tuple[str, Optional[bytes]]], src: CloudVolume, dest: CloudVolume, mip: int
) -> List[Tuple[str, bytes]]:
    """Recompress each ``(name, jpeg-or-jxl bytes)``; a missing chunk (``None``) becomes an
    encoded background chunk of its box."""
    recompress = recompressor(src, dest, mip)
    out = []
    for name, content in files:
        if content is None:
            box = Bbox.from_filename(name.rsplit("/", 1)[-1])
            blank = np.zeros(tuple(box.size3()) + (dest.num_channels,), dtype=dest.dtype, order="F")
            out.append((name, cv_chunks.encode(blank, dest.meta.encoding(mip),
                                               compression_params=dest.meta.compression_params(mip))))
        else:
            out.append((name, recompress(content, f"{src.meta.cloudpath}/{name}")))
    return out


def chunk_names(vol: CloudVolume, mip: int, box: Bbox) -> List[str]:
    """``KEY/x0-x1_y0-y1_z0-z1`` of every chunk of ``box`` (chunk-aligned, clipped at the far faces)."""
    chunk, origin, end = Vec(*vol.meta.chunk_size(mip)), Vec(*vol.meta.voxel_offset(mip)), vol.meta.bounds(mip).maxpt
    lo = (box.minpt - origin) // chunk
    hi = -(-(box.maxpt - origin) // chunk)
    names = []
    for gz in range(int(lo.z), int(hi.z)):
        for gy in range(int(lo.y), int(hi.y)):
            for gx in range(int(lo.x), int(hi.x)):
                a = origin + Vec(gx, gy, gz) * chunk
                b = Vec(*np.minimum(a + chunk, end))
                names.append(f"{vol.meta.key(mip)}/{Bbox(a, b).to_filename()}")
    return names


def transcode_box(src: CloudVolume, dest: CloudVolume, mip: int, box: Bbox, fill_missing: bool) -> None:
    """Recompress the chunk files of ``box`` from ``src`` into ``dest`` (unsharded, same grid)."""
    names = chunk_names(src, mip, box)
    found = CloudFiles(src.meta.cloudpath, progress=False).get(names)
    files = []
    for f in found:
        if f.get("error") is not None:
            raise f["error"]
        if f["content"] is None and not fill_missing:
            raise EmptyVolumeException(f"{src.meta.cloudpath}/{f['path']} is missing (use fill_missing)")
        files.append((f["path"], f["content"]))
    CloudFiles(dest.meta.cloudpath, progress=False).puts(
        transcode_payloads(files, src, dest, mip), compress=None, content_type=_content_type(dest, mip),
    )


def _content_type(vol: CloudVolume, mip: int) -> str:
    return {"jpeg": "image/jpeg", "jxl": "image/jxl"}.get(vol.meta.encoding(mip), "application/octet-stream")
