"""A chunked, multi-task pyramid equals tinybrain on the whole in-memory array."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous.downsample_scales import task_memory
from igneous.types import DownsampleMethods
from tests.conftest import read_layer
from tests.oracles import tinybrain_pyramid

METHOD_IDS = {
    "avg": DownsampleMethods.AVERAGE_POOLING,
    "mode": DownsampleMethods.MODE_POOLING,
    "min": DownsampleMethods.MIN_POOLING,
    "max": DownsampleMethods.MAX_POOLING,
    "striding": DownsampleMethods.STRIDING,
}


def random_volume(shape, dtype, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    if labels:
        # blocky labels so mode pooling has real majorities, with noise so ties happen too
        coarse = rng.integers(0, labels, size=[max(1, s // 3) for s in shape[:3]] + list(shape[3:]))
        vol = np.repeat(np.repeat(np.repeat(coarse, 3, 0), 3, 1), 3, 2)
        pad = [(0, s - v) for s, v in zip(shape[:3], vol.shape[:3])] + [(0, 0)] * (len(shape) - 3)
        vol = np.pad(vol, pad, mode="edge")[tuple(slice(0, s) for s in shape)]
        return np.asfortranarray(vol.astype(dtype) * np.array(1000003, dtype=dtype) % np.iinfo(dtype).max)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return np.asfortranarray(rng.random(shape, dtype=np.float32).astype(dtype) * 100)
    return np.asfortranarray(rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype))


def assert_pyramid(path, whole, factor, num_mips, method, sparse=False):
    expected = tinybrain_pyramid(whole, factor, num_mips, method, sparse)
    vol = CloudVolume(path, progress=False)
    assert len(vol.info["scales"]) >= num_mips + 1
    for k, exp in enumerate(expected, start=1):
        got = read_layer(path, mip=k)
        assert got.shape == exp.shape, f"mip {k}: shape {got.shape} != {exp.shape}"
        if np.issubdtype(got.dtype, np.floating):
            np.testing.assert_allclose(got, exp, rtol=1e-6, err_msg=f"mip {k}")
        else:
            mismatch = np.count_nonzero(got != exp)
            assert mismatch == 0, f"mip {k}: {mismatch} voxels differ from tinybrain"


def cli_args(path, num_mips, factor, method, extra=()):
    args = ["image", "downsample", path, "--num-mips", str(num_mips), "--method", method]
    if tuple(factor) == (2, 2, 2):
        args.append("--volumetric")
    return args + list(extra)


def seam_memory(dtype, channels, chunk, factor, levels) -> int:
    """A memory target whose tasks write exactly ``levels`` levels (chunk·factor^levels voxels),
    so a small layer is cut into several tasks and the pyramid crosses task seams."""
    bpv = np.dtype(dtype).itemsize * channels
    return int(task_memory(bpv, [c * f**levels for c, f in zip(chunk, factor)], factor)) + 1


# shape not a multiple of chunk or task (4.7 × 4.2 × 4.6 chunks: two levels fill whole chunks);
# odd extents; offset not a multiple of anything
AWKWARD = dict(shape=(151, 133, 37), chunk=(32, 32, 8), offset=(64, 32, 8))


@pytest.mark.parametrize(
    "dtype,channels,method,factor",
    [
        (np.uint8, 1, "avg", (2, 2, 1)),  # the common EM case
        (np.uint8, 3, "avg", (2, 2, 1)),  # RGB
        (np.uint16, 1, "avg", (2, 2, 2)),  # volumetric light-sheet
        (np.float32, 1, "avg", (2, 2, 1)),
        (np.uint32, 1, "mode", (2, 2, 1)),  # segmentation
        (np.uint64, 1, "mode", (2, 2, 2)),
        (np.uint8, 1, "min", (2, 2, 1)),
        (np.uint16, 1, "max", (2, 2, 2)),
        (np.uint64, 1, "striding", (2, 2, 1)),
    ],
)
def test_pyramid_equals_tinybrain(backend, layer, dtype, channels, method, factor):
    shape = AWKWARD["shape"] + ((channels,) if channels > 1 else ())
    whole = random_volume(shape, dtype, labels=7 if method == "mode" else None)
    path = layer(whole, chunk_size=AWKWARD["chunk"], voxel_offset=AWKWARD["offset"])
    num_mips = 2
    memory = seam_memory(dtype, channels, AWKWARD["chunk"], factor, num_mips)
    tasks = tc.create_downsampling_tasks(path, num_mips=num_mips, factor=factor, memory_target=memory)
    assert len(tasks) > 1 and all(s < v for s, v in zip(tasks.shape[:2], AWKWARD["shape"]))  # seams in x and y
    backend.run(
        tc.create_downsampling_tasks,
        cli_args(path, num_mips, factor, method, ["--memory", str(memory)]),
        path,
        num_mips=num_mips,
        factor=factor,
        method=METHOD_IDS[method],
        memory_target=memory,
    )
    assert_pyramid(path, whole, factor, num_mips, method)


# every method x factor, except mode with one axis, which is refused (test_mode_needs_two_axes)
METHOD_FACTORS = [
    (m, f)
    for m in sorted(METHOD_IDS)
    for f in [(2, 2, 1), (2, 2, 2), (1, 2, 2), (2, 1, 1)]
    if not (m == "mode" and f == (2, 1, 1))
]


@pytest.mark.parametrize("method,factor", METHOD_FACTORS)
def test_every_method_and_factor(local, layer, method, factor):
    dtype = np.uint32 if method == "mode" else np.uint16
    whole = random_volume((75, 41, 37), dtype, seed=13, labels=5 if method == "mode" else None)
    path = layer(whole, chunk_size=(16, 8, 8), voxel_offset=(16, 8, 5))
    memory = seam_memory(dtype, 1, (16, 8, 8), factor, 2)
    local.run(
        tc.create_downsampling_tasks, (), path, num_mips=2, factor=factor, method=METHOD_IDS[method],
        memory_target=memory,
    )
    assert_pyramid(path, whole, factor, 2, method)


def test_mode_needs_two_axes(layer):
    path = layer(random_volume((32, 32, 8), np.uint32, labels=3))
    with pytest.raises(ValueError, match="at least two axes"):
        tc.create_downsampling_tasks(path, factor=(2, 1, 1), num_mips=1)


@pytest.mark.parametrize("offset", [(0, 0, 0), (3, 5, 7), (1024, 2048, 11)])
def test_offsets_and_anisotropy(local, layer, offset):
    whole = random_volume((97, 66, 13), np.uint8, seed=3)
    path = layer(whole, voxel_offset=offset, resolution=(4, 4, 40), chunk_size=(16, 16, 4))
    local.run(tc.create_downsampling_tasks, (), path, num_mips=3)
    assert_pyramid(path, whole, (2, 2, 1), 3, "avg")
    vol = CloudVolume(path)
    assert vol.meta.resolution(3).tolist() == [32, 32, 40]
    assert vol.meta.voxel_offset(1).tolist() == [o // 2 for o in offset[:2]] + [offset[2]]


def test_memory_target_picks_mips_and_tasks(local, layer):
    whole = random_volume((256, 256, 16), np.uint8, seed=5)
    path = layer(whole, chunk_size=(32, 32, 8))
    # 32*32*8 = 8 KiB per chunk; 1 MB of budget fits a 256x256x8 block (4 levels) with outputs
    tasks = tc.create_downsampling_tasks(path, memory_target=1_000_000)
    assert tasks.shape.tolist()[2] == 8
    local.run(lambda: tasks, ())
    num = len(CloudVolume(path).info["scales"]) - 1
    assert num >= 2
    assert_pyramid(path, whole, (2, 2, 1), num, "avg")


def test_sparse_ignores_background(local, layer):
    whole = random_volume((64, 64, 8), np.uint8, seed=9)
    whole[::2, :, :] = 0
    path = layer(whole)
    local.run(tc.create_downsampling_tasks, (), path, num_mips=1, sparse=True)
    assert_pyramid(path, whole, (2, 2, 1), 1, "avg", sparse=True)


def test_bounds_restrict_the_work(local, layer):
    whole = random_volume((128, 128, 8), np.uint8, seed=11)
    path = layer(whole)
    local.run(tc.create_downsampling_tasks, (), path, num_mips=1, bounds=[[0, 0, 0], [64, 64, 8]])
    vol = CloudVolume(path, mip=1, fill_missing=True)
    expected = tinybrain_pyramid(whole, (2, 2, 1), 1, "avg")[0]
    np.testing.assert_array_equal(vol[0:32, 0:32, 0:8], expected[:32, :32])
    assert not vol[32:64, 32:64, :].any()  # outside the bounds: never written


def test_new_chunk_size_and_encoding(local, layer):
    whole = random_volume((128, 96, 16), np.uint32, labels=9)
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(
        tc.create_downsampling_tasks, (), path, num_mips=2, chunk_size=(16, 16, 16), encoding="compressed_segmentation"
    )
    vol = CloudVolume(path)
    assert vol.info["scales"][1]["chunk_sizes"] == [[16, 16, 16]]
    assert vol.info["scales"][2]["encoding"] == "compressed_segmentation"
    assert_pyramid(path, whole, (2, 2, 1), 2, "mode")


def test_dest_path_leaves_source_untouched(local, layer, tmp_path):
    whole = random_volume((128, 128, 8), np.uint8, seed=2)
    path = layer(whole)
    dest = f"file://{tmp_path / 'pyramid'}"
    local.run(tc.create_downsampling_tasks, (), path, num_mips=2, dest_path=dest)
    assert len(CloudVolume(path).info["scales"]) == 1
    assert_pyramid(dest, whole, (2, 2, 1), 2, "avg")


def test_delete_black_uploads(local, layer, tmp_path):
    whole = np.zeros((64, 64, 8), dtype=np.uint8)
    whole[:32, :32] = 200
    path = layer(whole, chunk_size=(16, 16, 8))
    local.run(tc.create_downsampling_tasks, (), path, num_mips=1, delete_black_uploads=True)
    key = CloudVolume(path).meta.key(1)
    files = os.listdir(tmp_path / "src" / key)
    assert len(files) == 1  # only the one chunk with data; the three black ones were not written


@pytest.mark.parametrize("fill_missing", [True, False])
def test_missing_chunks(local, layer, tmp_path, fill_missing):
    whole = random_volume((64, 64, 16), np.uint8, seed=4)
    path = layer(whole, chunk_size=(32, 32, 8))
    key = CloudVolume(path).meta.key(0)
    missing = "32-64_0-32_8-16"
    [victim] = [f for f in os.listdir(tmp_path / "src" / key) if f.startswith(missing)]
    os.remove(tmp_path / "src" / key / victim)
    tasks = tc.create_downsampling_tasks(path, num_mips=1, fill_missing=fill_missing)
    if fill_missing:
        local.run(lambda: tasks, ())
        whole[32:64, 0:32, 8:16] = 0
        assert_pyramid(path, whole, (2, 2, 1), 1, "avg")
    else:
        with pytest.raises(Exception) as err:
            local.run(lambda: tasks, ())
        assert missing in str(err.value)


@pytest.mark.parametrize("encoding,level,effort", [("jpeg", 95, None), ("jxl", 90, 3), ("png", 6, None)])
def test_image_codecs_with_levels(local, layer, encoding, level, effort):
    x, y = np.meshgrid(np.arange(128), np.arange(96), indexing="ij")
    smooth = (60 + 40 * np.sin(x / 9.0) + 30 * np.cos(y / 7.0)).astype(np.uint8)
    whole = np.asfortranarray(np.repeat(smooth[:, :, None], 8, axis=2))
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(
        tc.create_downsampling_tasks,
        (),
        path,
        num_mips=2,
        encoding=encoding,
        encoding_level=level,
        encoding_effort=effort,
    )
    scale = CloudVolume(path).info["scales"][1]
    assert scale["encoding"] == encoding
    key = {"jpeg": "jpeg_quality", "jxl": "jxl_quality", "png": "png_level"}[encoding]
    assert scale[key] == level
    if effort is not None:
        assert scale["jxl_effort"] == effort
    for k, exp in enumerate(tinybrain_pyramid(whole, (2, 2, 1), 2, "avg"), start=1):
        got = read_layer(path, mip=k).astype(np.int16)
        err = np.abs(got - exp.astype(np.int16))
        if encoding == "png":
            assert err.max() == 0  # lossless
        else:
            assert err.mean() < 2.0 and err.max() < 40, (k, err.mean(), err.max())


@pytest.mark.parametrize("compress,suffix", [("gzip", ".gz"), ("br", ".br"), ("zstd", ".zstd"), ("none", "")])
def test_compression_of_new_levels(local, layer, tmp_path, compress, suffix):
    whole = random_volume((64, 64, 8), np.uint16, seed=17)
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(tc.create_downsampling_tasks, (), path, num_mips=1, compress=compress)
    key = CloudVolume(path).meta.key(1)
    names = os.listdir(tmp_path / "src" / key)
    assert names and all(n.endswith(suffix) if suffix else "." not in n for n in names), names
    assert_pyramid(path, whole, (2, 2, 1), 1, "avg")
