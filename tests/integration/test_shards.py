"""Sharded transfers and pyramids, read back through CloudVolume and compared with the source
array and with tinybrain on the whole array."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume, EmptyVolumeException
from taskqueue import LocalTaskQueue

from igneous.errors import InvalidParameterError
from igneous.shards import grid_size, morton_bits
from igneous.task_creation import (
    create_image_shard_downsample_tasks,
    create_image_shard_transfer_tasks,
    create_transfer_tasks,
)
from igneous.task_creation.image import create_sharded_image_info
from igneous.types import DownsampleMethods
from igneous_cli import main
from tests.conftest import make_layer, read_layer, tree
from tests.oracles import tinybrain_pyramid

OFFSET = (7, -3, 11)
SIZE = (100, 72, 40)
CHUNK = (16, 16, 8)


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def squeeze(a):
    return a[..., 0] if a.ndim == 4 and a.shape[3] == 1 else a


def shard_files(path, mip=0):
    vol = CloudVolume(path, progress=False)
    root = path.replace("file://", "")
    return sorted(f for f in os.listdir(os.path.join(root, vol.meta.key(mip))) if f.endswith(".shard"))


@pytest.fixture
def image(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, size=SIZE, dtype=np.uint8)
    return data, make_layer(f"file://{tmp_path / 'img'}", data, voxel_offset=OFFSET, chunk_size=CHUNK)


@pytest.fixture
def seg(tmp_path):
    rng = np.random.default_rng(1)
    data = (rng.integers(0, 6, size=SIZE).astype(np.uint64) * np.uint64(2**40 + 3)).astype(np.uint64)
    return data, make_layer(
        f"file://{tmp_path / 'seg'}", data, voxel_offset=OFFSET, chunk_size=CHUNK, encoding="compressed_segmentation"
    )


# -- transfer ------------------------------------------------------------------------------------


def test_transfer_through_every_backend(backend, image, tmp_path):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    backend.run(
        create_image_shard_transfer_tasks,
        ["image", "xfer", src, dst, "--sharded", "--memory", "50000"],
        src, dst, memory_target=50000,
    )
    assert np.array_equal(squeeze(read_layer(dst)), data)
    vol = CloudVolume(dst)
    assert vol.image.is_sharded(0)
    # one file per shard: 50 kB holds 2^4 chunks of 2 KiB, a 4×2×2-chunk Morton box, so the
    # 7×5×5 chunk grid is 2×3×3 shards
    assert len(shard_files(dst)) == 18


@pytest.mark.parametrize(
    "memory, chunk",
    [(10**9, None), (50000, None), (80000, (32, 16, 8)), (200000, (8, 8, 8)), (10**9, (64, 64, 16))],
)
@pytest.mark.parametrize("compress", ["gzip", "none"])
def test_transfer_oracle(image, tmp_path, memory, chunk, compress):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    tasks = create_image_shard_transfer_tasks(src, dst, memory_target=memory, chunk_size=chunk, compress=compress)
    vol = CloudVolume(dst)
    spec = vol.scale["sharding"]
    assert spec["data_encoding"] == ("gzip" if compress == "gzip" else "raw")
    grid = grid_size(vol.scale["size"], vol.scale["chunk_sizes"][0])
    assert spec["preshift_bits"] + spec["minishard_bits"] + spec["shard_bits"] == sum(morton_bits(grid))
    run(tasks)
    assert len(shard_files(dst)) == len(tasks)
    assert np.array_equal(squeeze(read_layer(dst)), data)
    box = np.s_[10:60, 5:50, 3:30]
    lo = np.array(OFFSET) + [10, 5, 3]
    part = CloudVolume(dst, progress=False)[lo[0] : lo[0] + 50, lo[1] : lo[1] + 45, lo[2] : lo[2] + 27]
    assert np.array_equal(squeeze(np.asarray(part)), data[box])


@pytest.mark.parametrize("encoding", ["compressed_segmentation", "compresso", "raw"])
def test_transfer_segmentation(seg, tmp_path, encoding):
    data, src = seg
    dst = f"file://{tmp_path / 'dst'}"
    run(create_image_shard_transfer_tasks(src, dst, memory_target=300000, encoding=encoding))
    assert CloudVolume(dst).scale["sharding"]["data_encoding"] == "gzip"
    assert np.array_equal(squeeze(read_layer(dst)), data)


def test_transfer_codecs(image, tmp_path):
    data, src = image
    png = f"file://{tmp_path / 'png'}"
    run(create_image_shard_transfer_tasks(src, png, memory_target=100000, encoding="png"))
    assert CloudVolume(png).scale["sharding"]["data_encoding"] == "raw"
    assert np.array_equal(squeeze(read_layer(png)), data)
    smooth = (np.add.outer(np.add.outer(np.arange(100), np.arange(72)), np.arange(40)) % 256).astype(np.uint8)
    src2 = make_layer(f"file://{tmp_path / 'smooth'}", smooth, voxel_offset=OFFSET, chunk_size=CHUNK)
    jpeg = f"file://{tmp_path / 'jpeg'}"
    run(create_image_shard_transfer_tasks(src2, jpeg, memory_target=100000, encoding="jpeg", encoding_level=95))
    out = squeeze(read_layer(jpeg)).astype(int)
    assert np.mean(np.abs(out - smooth)) < 3
    jxl = f"file://{tmp_path / 'jxl'}"
    run(create_image_shard_transfer_tasks(src2, jxl, memory_target=100000, encoding="jxl", encoding_level=90))
    assert CloudVolume(jxl).scale["sharding"]["data_encoding"] == "raw"
    out = squeeze(read_layer(jxl)).astype(int)
    assert np.mean(np.abs(out - smooth)) < 3


def test_transfer_translate_cutout_and_offset(image, tmp_path):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    bounds = [OFFSET[0] + 16, OFFSET[1] + 16, OFFSET[2] + 8, OFFSET[0] + 80, OFFSET[1] + 64, OFFSET[2] + 32]
    run(create_image_shard_transfer_tasks(src, dst, memory_target=50000, bounds=bounds, cutout=True,
                                          dest_voxel_offset=(0, 0, 0)))
    vol = CloudVolume(dst)
    assert list(vol.voxel_offset) == [0, 0, 0] and list(vol.volume_size) == [64, 48, 24]
    assert np.array_equal(squeeze(read_layer(dst)), data[16:80, 16:64, 8:32])

    moved = f"file://{tmp_path / 'moved'}"
    run(create_image_shard_transfer_tasks(src, moved, memory_target=50000, translate=(5, 6, 7)))
    vol = CloudVolume(moved)
    assert list(vol.voxel_offset) == [OFFSET[0] + 5, OFFSET[1] + 6, OFFSET[2] + 7]
    assert np.array_equal(squeeze(read_layer(moved)), data)


def test_transfer_missing_chunks(image, tmp_path):
    data, src = image
    root = src.replace("file://", "")
    key = CloudVolume(src).meta.key(0)
    victim = sorted(os.listdir(os.path.join(root, key)))[3]
    os.remove(os.path.join(root, key, victim))
    dst = f"file://{tmp_path / 'dst'}"
    with pytest.raises(EmptyVolumeException, match=victim.replace(".gz", "")):
        run(create_image_shard_transfer_tasks(src, dst, memory_target=10**9))
    filled = f"file://{tmp_path / 'filled'}"
    run(create_image_shard_transfer_tasks(src, filled, memory_target=10**9, fill_missing=True))
    expected = squeeze(np.asarray(CloudVolume(src, fill_missing=True, progress=False)[:, :, :]))
    assert np.array_equal(squeeze(read_layer(filled)), expected)
    assert (expected == 0).sum() > 0


def test_round_trip_and_sharded_to_sharded(image, tmp_path):
    data, src = image
    sharded = f"file://{tmp_path / 'sharded'}"
    run(create_image_shard_transfer_tasks(src, sharded, memory_target=100000))
    back = f"file://{tmp_path / 'back'}"
    run(create_transfer_tasks(sharded, back, skip_downsamples=True))
    assert not CloudVolume(back).image.is_sharded(0)
    assert np.array_equal(squeeze(read_layer(back)), data)

    # same layout: shard files are copied byte for byte
    copy = f"file://{tmp_path / 'copy'}"
    run(create_image_shard_transfer_tasks(sharded, copy, memory_target=100000))
    key = CloudVolume(sharded).meta.key(0)
    a, b = tree(tmp_path / "sharded" / key), tree(tmp_path / "copy" / key)
    assert a == b and len(a) > 1
    # a different layout: re-sharded, voxel-identical
    rechunked = f"file://{tmp_path / 'rechunked'}"
    run(create_image_shard_transfer_tasks(sharded, rechunked, memory_target=200000, chunk_size=(32, 32, 8)))
    assert np.array_equal(squeeze(read_layer(rechunked)), data)


def test_rerun_writes_identical_bytes(image, tmp_path):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    tasks = list(create_image_shard_transfer_tasks(src, dst, memory_target=50000))
    run(tasks)
    key = CloudVolume(dst).meta.key(0)
    first = tree(tmp_path / "dst" / key)
    run(tasks[:5])
    assert tree(tmp_path / "dst" / key) == first


def test_stale_task_is_refused(image, tmp_path):
    """A task whose box is not one shard of the committed layout raises before writing."""
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    tasks = list(create_image_shard_transfer_tasks(src, dst, memory_target=50000))
    from igneous.tasks.image.shards import ImageShardTransferTask

    bad = dict(tasks[0].keywords)
    bad["offset"] = [o + 16 for o in bad["offset"]]
    bad["shape"] = [s * 2 for s in bad["shape"]]
    with pytest.raises(ValueError, match="not whole shards"):
        ImageShardTransferTask(**bad)


# -- pyramid -------------------------------------------------------------------------------------


def check_pyramid(path, whole, factor, num_mips, method, sparse=False):
    want = tinybrain_pyramid(whole, factor, num_mips, method, sparse)
    for k in range(1, num_mips + 1):
        got = squeeze(read_layer(path, mip=k))
        assert np.array_equal(got, squeeze(want[k - 1])), f"level {k}"


def test_pyramid_through_every_backend(backend, image):
    data, path = image
    backend.run(
        create_image_shard_downsample_tasks,
        ["image", "downsample", path, "--sharded", "--num-mips", "3", "--memory", "540000"],
        path, num_mips=3, memory_target=540000,
    )
    check_pyramid(path, data, (2, 2, 1), 3, "avg")


@pytest.mark.parametrize(
    "factor, num_mips, memory",
    [((2, 2, 1), 1, 10**9), ((2, 2, 1), 2, 300000), ((2, 2, 1), 3, 10**9), ((2, 2, 2), 2, 10**9),
     ((2, 2, 2), 2, 2 * 10**6), ((2, 2, 2), 3, 10**8)],
)
def test_pyramid_oracle(image, factor, num_mips, memory):
    data, path = image
    tasks = create_image_shard_downsample_tasks(path, num_mips=num_mips, factor=factor, memory_target=memory)
    run(tasks)
    check_pyramid(path, data, factor, num_mips, "avg")
    for k in range(1, num_mips + 1):
        assert CloudVolume(path).image.is_sharded(k)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("method", ["avg", "min", "max", "striding"])
def test_pyramid_dtypes_and_methods(tmp_path, dtype, method):
    rng = np.random.default_rng(2)
    data = (rng.random(SIZE) * 1000).astype(dtype)
    path = make_layer(f"file://{tmp_path / 'l'}", data, voxel_offset=OFFSET, chunk_size=CHUNK)
    methods = {"avg": DownsampleMethods.AVERAGE_POOLING, "min": DownsampleMethods.MIN_POOLING,
               "max": DownsampleMethods.MAX_POOLING, "striding": DownsampleMethods.STRIDING}
    run(create_image_shard_downsample_tasks(path, num_mips=2, memory_target=3 * 10**6, method=methods[method]))
    check_pyramid(path, data, (2, 2, 1), 2, method)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("factor", [(2, 2, 1), (2, 2, 2)])
def test_pyramid_segmentation(seg, factor, sparse):
    data, path = seg
    memory = 3 * 10**6 if factor[2] == 1 else 10**7  # (2,2,2) slabs are 32 deep: one task
    tasks = create_image_shard_downsample_tasks(path, num_mips=2, factor=factor, memory_target=memory, sparse=sparse)
    assert len(tasks) > 1 or factor[2] == 2
    run(tasks)
    check_pyramid(path, data, factor, 2, "mode", sparse)


def test_pyramid_new_chunk_size_and_second_pass(image):
    data, path = image
    run(create_image_shard_downsample_tasks(path, num_mips=2, chunk_size=(8, 8, 4), memory_target=10**9))
    assert CloudVolume(path).meta.chunk_size(1).tolist() == [8, 8, 4]
    check_pyramid(path, data, (2, 2, 1), 2, "avg")
    # a second pass reads the sharded top level
    run(create_image_shard_downsample_tasks(path, mip=2, num_mips=1, memory_target=10**9))
    level2 = squeeze(read_layer(path, mip=2))
    assert np.array_equal(squeeze(read_layer(path, mip=3)), squeeze(tinybrain_pyramid(level2, (2, 2, 1), 1, "avg")[0]))


def test_pyramid_lossy_top_level_is_lossless(tmp_path):
    smooth = (np.add.outer(np.add.outer(np.arange(100), np.arange(72)), np.arange(40)) % 256).astype(np.uint8)
    path = make_layer(f"file://{tmp_path / 'l'}", smooth, voxel_offset=OFFSET, chunk_size=CHUNK)
    run(create_image_shard_downsample_tasks(path, num_mips=2, encoding="jpeg", memory_target=10**9))
    vol = CloudVolume(path)
    assert vol.info["scales"][1]["encoding"] == "jpeg"
    assert vol.info["scales"][2]["encoding"] == "png"
    want = tinybrain_pyramid(smooth, (2, 2, 1), 2, "avg")
    assert np.array_equal(squeeze(read_layer(path, mip=2)), squeeze(want[1]))
    assert np.mean(np.abs(squeeze(read_layer(path, mip=1)).astype(int) - squeeze(want[0]))) < 3


def test_pyramid_jxl_top_level_is_lossless(tmp_path):
    smooth = (np.add.outer(np.add.outer(np.arange(100), np.arange(72)), np.arange(40)) % 256).astype(np.uint8)
    path = make_layer(f"file://{tmp_path / 'l'}", smooth, voxel_offset=OFFSET, chunk_size=CHUNK)
    run(create_image_shard_downsample_tasks(path, num_mips=2, encoding="jxl", encoding_level=80, memory_target=10**9))
    scales = CloudVolume(path).info["scales"]
    assert scales[1]["jxl_quality"] == 80 and scales[2]["jxl_quality"] == 100
    want = tinybrain_pyramid(smooth, (2, 2, 1), 2, "avg")
    assert np.array_equal(squeeze(read_layer(path, mip=2)), squeeze(want[1]))
    assert np.mean(np.abs(squeeze(read_layer(path, mip=1)).astype(int) - squeeze(want[0]))) < 3


def test_pyramid_fill_missing(image, tmp_path):
    data, path = image
    key = CloudVolume(path).meta.key(0)
    chunk = sorted(os.listdir(tmp_path / "img" / key))[3]
    os.remove(tmp_path / "img" / key / chunk)
    with pytest.raises(EmptyVolumeException):
        run(create_image_shard_downsample_tasks(path, num_mips=1, memory_target=10**9))
    run(create_image_shard_downsample_tasks(path, num_mips=1, memory_target=10**9, fill_missing=True))
    whole = squeeze(np.asarray(CloudVolume(path, fill_missing=True, progress=False)[:, :, :]))
    assert (whole == 0).sum() > (data == 0).sum()
    check_pyramid(path, whole, (2, 2, 1), 1, "avg")


def test_pyramid_bounds_subset_leaves_other_shards(image, tmp_path):
    data, path = image
    run(create_image_shard_downsample_tasks(path, num_mips=1, memory_target=200000))
    key = CloudVolume(path).meta.key(1)
    before = tree(tmp_path / "img" / key)
    first = sorted(before)[0]
    os.remove(tmp_path / "img" / key / first)
    bounds = [OFFSET[0], OFFSET[1], OFFSET[2], OFFSET[0] + 16, OFFSET[1] + 16, OFFSET[2] + 8]
    tasks = create_image_shard_downsample_tasks(path, num_mips=1, memory_target=200000, bounds=bounds)
    assert len(tasks) < 10
    run(tasks)
    assert tree(tmp_path / "img" / key) == before
    check_pyramid(path, data, (2, 2, 1), 1, "avg")


# -- existing destinations ---------------------------------------------------------------------


def test_replanning_a_transfer_keeps_the_destination_pyramid(image, tmp_path):
    """Planning into an existing sharded destination leaves its higher levels' specs alone."""
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    run(create_image_shard_transfer_tasks(src, dst, memory_target=10**9))
    run(create_image_shard_downsample_tasks(dst, num_mips=1, memory_target=10**9))
    level1 = read_layer(dst, mip=1)
    run(create_image_shard_transfer_tasks(src, dst, memory_target=10**9))
    assert CloudVolume(dst).image.is_sharded(1)
    assert np.array_equal(read_layer(dst, mip=1), level1)


def test_partial_shard_rewrite_of_an_existing_destination_is_refused(image, tmp_path):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    run(create_image_shard_transfer_tasks(src, dst, memory_target=50000))
    shard = CloudVolume(dst).scale["sharding"]
    assert shard["shard_bits"] > 0
    before = tree(tmp_path / "dst")
    inside = [OFFSET[0], OFFSET[1], OFFSET[2], OFFSET[0] + 8, OFFSET[1] + 8, OFFSET[2] + 4]
    with pytest.raises(InvalidParameterError, match="rewritten whole"):
        create_image_shard_transfer_tasks(src, dst, memory_target=50000, bounds=inside)
    assert tree(tmp_path / "dst") == before

    # shard-aligned bounds are fine: only those shards are rewritten, from a different source
    other = make_layer(f"file://{tmp_path / 'other'}", 255 - data, voxel_offset=OFFSET, chunk_size=CHUNK)
    tasks = create_image_shard_transfer_tasks(other, dst, memory_target=50000)
    first = list(tasks)[0]
    box = np.array(first.keywords["offset"]), np.array(first.keywords["shape"])
    aligned = list(box[0]) + list(box[0] + box[1])
    run(create_image_shard_transfer_tasks(other, dst, memory_target=50000, bounds=aligned))
    got = squeeze(read_layer(dst))
    lo = box[0] - OFFSET
    hi = np.minimum(lo + box[1], SIZE)
    want = data.copy()
    want[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 255 - data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"chunk_size": (32, 32, 8)}, "chunk size"),
        ({"encoding": "png"}, "encoded raw"),
        ({"dest_voxel_offset": (0, 0, 0)}, "voxel offset"),
        ({"translate": (1000, 0, 0)}, "not inside"),
    ],
)
def test_existing_destination_layout_conflicts_are_refused(image, tmp_path, kwargs, needle):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    run(create_image_shard_transfer_tasks(src, dst, memory_target=10**9))
    before = tree(tmp_path / "dst")
    with pytest.raises(InvalidParameterError, match=needle):
        create_image_shard_transfer_tasks(src, dst, **{"memory_target": 10**9, **kwargs})
    assert tree(tmp_path / "dst") == before


def test_partial_pyramid_must_keep_existing_levels(image, tmp_path):
    data, path = image
    run(create_image_shard_downsample_tasks(path, num_mips=2, memory_target=10**7))
    before = tree(tmp_path / "img")
    part = [OFFSET[0], OFFSET[1], OFFSET[2], OFFSET[0] + 32, OFFSET[1] + 32, OFFSET[2] + 8]
    with pytest.raises(InvalidParameterError, match="laid out differently"):
        create_image_shard_downsample_tasks(path, num_mips=2, memory_target=3 * 10**5, bounds=part)
    with pytest.raises(InvalidParameterError, match="drop mip 2"):
        create_image_shard_downsample_tasks(path, num_mips=1, memory_target=10**7, bounds=part)
    assert tree(tmp_path / "img") == before
    check_pyramid(path, data, (2, 2, 1), 2, "avg")


def test_chunk_above_the_shard_target_is_named(tmp_path):
    from igneous.task_creation.sharding import plan_shard_pyramid

    with pytest.raises(InvalidParameterError, match="above the .*shard target"):
        plan_shard_pyramid((4096, 4096, 512), (2048, 2048, 256), [(2048, 2048, 512)], (2048, 2048, 256), 0,
                           (2, 2, 1), 4, 10**12, ["gzip"])


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["image", "downsample", "{src}", "--sharded", "--num-mips", "0"], "num_mips"),
        (["image", "xfer", "{src}", "{dst}", "--sharded", "--compress", "br"], "gzip or none"),
        (["image", "xfer", "{src}", "{dst}", "--sharded", "--shape", "32,32,8"], "--shape"),
        (["image", "downsample", "{src}", "--sharded", "--compress", "gzip"], "--compress"),
    ],
)
def test_bad_input_refused_before_writing(image, tmp_path, args, needle):
    data, src = image
    dst = f"file://{tmp_path / 'dst'}"
    args = [a.format(src=src, dst=dst) for a in args]
    before = tree(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert tree(tmp_path) == before


def test_bad_api_input(image, tmp_path):
    data, src = image
    before = tree(tmp_path)
    with pytest.raises(InvalidParameterError, match="2,2,1 or 2,2,2"):
        create_image_shard_downsample_tasks(src, factor=(3, 3, 1))
    with pytest.raises(InvalidParameterError, match="minishard_index_encoding"):
        create_image_shard_transfer_tasks(src, f"file://{tmp_path / 'x'}", minishard_index_encoding="br")
    assert tree(tmp_path) == before

    plain = f"file://{tmp_path / 'plain'}"
    make_layer(plain, data, chunk_size=CHUNK, voxel_offset=OFFSET)
    before = tree(tmp_path)
    with pytest.raises(InvalidParameterError, match="not sharded"):
        create_image_shard_transfer_tasks(src, plain)
    assert tree(tmp_path) == before


def test_memory_target_is_a_target_not_a_wall(tmp_path):
    """The two plans the reference runs and we used to refuse: they run, correctly, with one
    warning giving the memory a task needs and what would fit."""
    data = np.random.default_rng(7).integers(0, 255, size=(256, 256, 64), dtype=np.uint8)
    path = make_layer(f"file://{tmp_path / 'img'}", data, chunk_size=(64, 64, 16))
    result = CliRunner().invoke(main, ["image", "downsample", path, "--sharded", "--memory", "4e6", "--num-mips", "2"])
    assert result.exit_code == 0, result.output
    assert "above memory_target=4,000,000" in result.output and "would fit" in result.output
    check_pyramid(path, data, (2, 2, 1), 2, "avg")

    labels = (np.random.default_rng(8).integers(0, 9, size=(256, 256, 64)) * (2**40 + 1)).astype(np.uint64)
    seg = make_layer(f"file://{tmp_path / 'seg'}", labels, chunk_size=(64, 64, 64))
    dst = f"file://{tmp_path / 'copy'}"
    result = CliRunner().invoke(main, ["image", "xfer", seg, dst, "--sharded", "--memory", "8e6",
                                       "--chunk-size", "64,64,32"])
    assert result.exit_code == 0, result.output
    assert "above memory_target=8,000,000" in result.output
    assert np.array_equal(squeeze(read_layer(dst)), labels)


# -- design dry runs -----------------------------------------------------------------------------


def test_design_dry_runs_write_nothing(image, tmp_path):
    data, src = image
    before = tree(tmp_path)
    out = CliRunner().invoke(main, ["design", "shard-xfer", src, "--memory", "50000"])
    assert out.exit_code == 0, out.output
    assert "18 shard files" in out.output and "Tasks: 18" in out.output and "Peak memory" in out.output
    out = CliRunner().invoke(main, ["design", "shard-ds", src, "--memory", "540000", "--num-mips", "3"])
    assert out.exit_code == 0, out.output
    assert out.output.count("shard files") == 3 and "Tasks: 5" in out.output
    assert "Above --memory" not in out.output
    # an explicit num_mips that needs more than --memory: the plan that runs, its memory, what would fit
    out = CliRunner().invoke(main, ["design", "shard-ds", src, "--memory", "300000", "--num-mips", "3"])
    assert out.exit_code == 0 and "num_mips ≤ 2" in out.output and "Above --memory" in out.output
    assert tree(tmp_path) == before
    # the plan printed is the plan executed
    run(create_image_shard_downsample_tasks(src, num_mips=3, memory_target=540000))
    assert create_sharded_image_info  # exported from task_creation.image (SPEC §2.5)


# -- memory --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transfer", "pyramid"])
def test_task_memory_stays_within_the_plan(tmp_path, kind):
    """One task's traced peak (numpy buffers, decoded and encoded chunks, the spool) is within
    the memory model the planner kept under memory_target; encoded shards spill to scratch."""
    import tracemalloc

    from igneous.task_creation.shard_image import prepare_shard_downsample, prepare_shard_transfer

    rng = np.random.default_rng(5)
    data = rng.integers(0, 255, size=(256, 256, 32), dtype=np.uint8)  # incompressible: the spool must spill
    src = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=(32, 32, 8))
    memory = 3 * 10**6 if kind == "pyramid" else 10**7  # the transfer's shard is the whole 2 MB volume
    if kind == "transfer":
        dst = f"file://{tmp_path / 'dst'}"
        plan = prepare_shard_transfer(src, dst, memory_target=memory, chunk_size=(32, 32, 16)).plan
        tasks = list(create_image_shard_transfer_tasks(src, dst, memory_target=memory, chunk_size=(32, 32, 16)))
    else:
        plan = prepare_shard_downsample(src, num_mips=2, memory_target=memory).plan
        tasks = list(create_image_shard_downsample_tasks(src, num_mips=2, memory_target=memory))
    assert plan.peak_bytes <= memory
    assert len(tasks) <= 8  # big tasks: their shards are larger than the spool's allowance
    tracemalloc.start()
    try:
        tasks[0]()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= plan.peak_bytes, (peak, plan.memory)
