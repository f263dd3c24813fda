"""The codec floor: the least work any implementation of a stage must do.

A stage reads every input chunk once and writes every output chunk once, so it cannot be
faster than decoding the input chunk files and encoding the output chunks with the same
codecs. Only those codec calls are timed (and summed): reading files, assembling the
slab, pooling and the pyramid are prepared outside the clock, and nothing is written.

The codecs are the ones the stage goes through — ``cloudfiles.compression`` (libdeflate
via the ``deflate`` package when installed) and ``cloudvolume.chunks`` — called with the
defaults CloudVolume's upload uses (gzip level 9), so the floor's output bytes equal the
stage's.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Sequence

import numpy as np

COMPRESSION_SUFFIXES = {".gz": "gzip", ".br": "br", ".zstd": "zstd"}


def libdeflate_status() -> dict:
    """Whether cloudfiles' gzip goes through libdeflate (the ``deflate`` package) or zlib."""
    from cloudfiles import compression

    module = getattr(compression, "deflate", None)
    return {"libdeflate": module is not None, "deflate_version": getattr(module, "__version__", None)}


def _find_chunk_file(scale_dir: str, name: str):
    for suffix, method in COMPRESSION_SUFFIXES.items():
        if os.path.exists(os.path.join(scale_dir, name + suffix)):
            return os.path.join(scale_dir, name + suffix), method
    path = os.path.join(scale_dir, name)
    if os.path.exists(path):
        return path, None
    raise FileNotFoundError(f"chunk {name} missing from {scale_dir}")


def _pyramid(slab: np.ndarray, factor: Sequence[int], num_mips: int, method: str) -> list:
    import tinybrain

    if num_mips == 0:
        return []
    if method == "mode":
        return tinybrain.downsample_segmentation(slab, factor, num_mips=num_mips)
    return tinybrain.downsample_with_averaging(slab, factor, num_mips=num_mips)


class _Clock:
    """Sums the seconds spent in each kind of codec call."""

    def __init__(self):
        self.seconds = {"decode": 0.0, "encode": 0.0, "pool": 0.0}

    def add(self, key: str, t0: float) -> None:
        self.seconds[key] += time.perf_counter() - t0


def codec_floor(
    layer_dir: str,
    out_chunk: Sequence[int],
    factor: Sequence[int] = (2, 2, 1),
    num_mips: int = 0,
    write_mip0: bool = False,
    method: str = "avg",
    compress: str | None = "gzip",
    out_encoding: str | None = None,
) -> dict:
    """Decode every chunk of ``layer_dir``'s mip 0; encode the chunks a stage would write.

    Args:
        layer_dir: a local Precomputed layer (not modified).
        out_chunk: chunk size of every written scale.
        factor, num_mips, method: the pyramid written above mip 0 ("avg" or "mode").
        write_mip0: also encode mip 0 re-chunked to ``out_chunk`` (a transfer).
        compress: file compression of the written chunks (None for none).
        out_encoding: encoding of the written chunks (default: the input's).

    Returns:
        Timings (``floor_s`` = decode + encode seconds) and chunk/byte counts.
    """
    from cloudfiles import compression
    from cloudvolume import chunks

    with open(os.path.join(layer_dir, "info")) as f:
        info = json.load(f)
    scale = info["scales"][0]
    dtype = np.dtype(info["data_type"])
    channels = int(info["num_channels"])
    in_chunk = np.array(scale["chunk_sizes"][0])
    size = np.array(scale["size"])
    origin = np.array(scale["voxel_offset"])
    in_encoding = scale["encoding"]
    block_size = scale.get("compressed_segmentation_block_size", [8, 8, 8])
    out_encoding = out_encoding or in_encoding
    out_chunk = np.array(out_chunk)
    factor = np.array(factor)
    scale_dir = os.path.join(layer_dir, scale["key"])

    slab_z = math.lcm(int(in_chunk[2]), int(out_chunk[2] * factor[2] ** num_mips))
    clock = _Clock()
    stats = {"chunks_in": 0, "bytes_in": 0, "chunks_out": 0, "bytes_out": 0, "encoded_bytes_out": 0}
    t_start = time.perf_counter()

    for z0 in range(int(origin[2]), int(origin[2] + size[2]), slab_z):
        z1 = min(int(origin[2] + size[2]), z0 + slab_z)
        slab = np.empty((int(size[0]), int(size[1]), z1 - z0, channels), dtype=dtype, order="F")
        for cz in range(z0, z1, int(in_chunk[2])):
            for cy in range(int(origin[1]), int(origin[1] + size[1]), int(in_chunk[1])):
                for cx in range(int(origin[0]), int(origin[0] + size[0]), int(in_chunk[0])):
                    hi = np.minimum(np.array([cx, cy, cz]) + in_chunk, origin + size)
                    name = f"{cx}-{hi[0]}_{cy}-{hi[1]}_{cz}-{hi[2]}"
                    path, method_in = _find_chunk_file(scale_dir, name)
                    with open(path, "rb") as f:
                        data = f.read()
                    shape = [int(hi[0] - cx), int(hi[1] - cy), int(hi[2] - cz), channels]
                    t0 = time.perf_counter()
                    raw = compression.decompress(data, method_in)
                    arr = chunks.decode(raw, in_encoding, shape=shape, dtype=dtype, block_size=block_size)
                    clock.add("decode", t0)
                    x, y, z = int(cx - origin[0]), int(cy - origin[1]), cz - z0
                    dx, dy, dz = shape[:3]
                    slab[x : x + dx, y : y + dy, z : z + dz, :] = arr.reshape(shape, order="F")
                    stats["chunks_in"] += 1
                    stats["bytes_in"] += len(data)

        t0 = time.perf_counter()
        levels = ([slab] if write_mip0 else []) + list(_pyramid(slab, factor, num_mips, method))
        clock.add("pool", t0)
        for level in levels:
            for x in range(0, level.shape[0], int(out_chunk[0])):
                for y in range(0, level.shape[1], int(out_chunk[1])):
                    for z in range(0, level.shape[2], int(out_chunk[2])):
                        view = level[x : x + out_chunk[0], y : y + out_chunk[1], z : z + out_chunk[2], :]
                        t0 = time.perf_counter()
                        encoded = chunks.encode(view, out_encoding, block_size=block_size)
                        packed = compression.compress(encoded, compress) if compress else encoded
                        clock.add("encode", t0)
                        stats["chunks_out"] += 1
                        stats["encoded_bytes_out"] += len(encoded)
                        stats["bytes_out"] += len(packed)
        del slab, levels

    decode_s, encode_s = clock.seconds["decode"], clock.seconds["encode"]
    return {
        "wall_s": decode_s + encode_s,
        "decode_s": decode_s,
        "encode_s": encode_s,
        # Pooling is the stage's own compute, not codec work: reported, not part of the floor.
        "pool_s": clock.seconds["pool"],
        "untimed_s": time.perf_counter() - t_start - decode_s - encode_s,
        "input_voxels": int(np.prod(size)),
        "params": {
            "out_chunk": out_chunk.tolist(),
            "factor": factor.tolist(),
            "num_mips": num_mips,
            "write_mip0": write_mip0,
            "method": method,
            "compress": compress or "none",
            "in_encoding": in_encoding,
            "out_encoding": out_encoding,
            "slab_z": slab_z,
        },
        **stats,
        **libdeflate_status(),
    }
