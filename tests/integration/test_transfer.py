"""Transfers read back voxel-identical to the source in every lossless encoding."""

from __future__ import annotations

import numpy as np
import pytest
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from tests.conftest import read_layer
from tests.integration.test_downsample import assert_pyramid, random_volume


def xfer_args(src, dest, extra=()):
    return ["image", "xfer", src, dest] + list(extra)


@pytest.mark.parametrize(
    "dtype,channels,encoding,chunk",
    [
        (np.uint8, 1, "raw", (32, 32, 8)),  # same chunking: the byte-copy fast path
        (np.uint8, 1, "raw", (64, 16, 4)),  # rechunk
        (np.uint8, 1, "png", (16, 16, 16)),
        (np.uint32, 1, "compressed_segmentation", (64, 64, 8)),
        (np.uint64, 1, "compresso", (32, 32, 16)),
        (np.uint64, 1, "crackle", (16, 32, 8)),
        (np.float32, 1, "fpzip", (32, 32, 8)),
        (np.uint8, 4, "raw", (32, 16, 8)),
    ],
)
def test_lossless_transfer_is_identical(backend, layer, tmp_path, dtype, channels, encoding, chunk):
    shape = (100, 70, 19) + ((channels,) if channels > 1 else ())
    whole = random_volume(shape, dtype, labels=11 if dtype in (np.uint32, np.uint64) else None)
    src = layer(whole, chunk_size=(32, 32, 8), voxel_offset=(32, 0, 8))
    dest = f"file://{tmp_path / 'dest'}"
    args = ["--chunk-size", ",".join(map(str, chunk)), "--encoding", encoding, "--skip-downsample"]
    backend.run(
        tc.create_transfer_tasks,
        xfer_args(src, dest, args),
        src,
        dest,
        chunk_size=chunk,
        encoding=encoding,
        skip_downsamples=True,
    )
    vol = CloudVolume(dest)
    assert vol.info["scales"][0]["chunk_sizes"] == [list(chunk)]
    assert vol.info["scales"][0]["encoding"] == encoding
    got = read_layer(dest)
    assert got.dtype == whole.dtype
    np.testing.assert_array_equal(got, whole.reshape(got.shape))


@pytest.mark.parametrize("translate", [(0, 0, 0), (64, -32, 8), (5, 3, 1)])
def test_translate(local, layer, tmp_path, translate):
    whole = random_volume((80, 64, 16), np.uint16, seed=8)
    src = layer(whole, chunk_size=(32, 32, 8), voxel_offset=(64, 64, 16))
    dest = f"file://{tmp_path / 'dest'}"
    local.run(tc.create_transfer_tasks, (), src, dest, translate=translate, skip_downsamples=True)
    vol = CloudVolume(dest)
    assert vol.meta.voxel_offset(0).tolist() == [64 + translate[0], 64 + translate[1], 16 + translate[2]]
    np.testing.assert_array_equal(read_layer(dest)[..., 0], whole)


def test_dest_voxel_offset_and_cutout(local, layer, tmp_path):
    whole = random_volume((128, 128, 16), np.uint8, seed=12)
    src = layer(whole, chunk_size=(32, 32, 8))
    dest = f"file://{tmp_path / 'dest'}"
    local.run(
        tc.create_transfer_tasks,
        (),
        src,
        dest,
        bounds=[[32, 64, 0], [96, 128, 8]],
        cutout=True,
        dest_voxel_offset=(0, 0, 0),
        skip_downsamples=True,
    )
    vol = CloudVolume(dest)
    assert vol.meta.bounds(0).to_list() == [0, 0, 0, 64, 64, 8]
    np.testing.assert_array_equal(read_layer(dest)[..., 0], whole[32:96, 64:128, 0:8])


@pytest.mark.parametrize("factor", [(2, 2, 1), (2, 2, 2)])
def test_transfer_builds_pyramid(backend, layer, tmp_path, factor):
    whole = random_volume((130, 100, 24), np.uint8, seed=6)
    src = layer(whole, chunk_size=(16, 16, 8), voxel_offset=(16, 32, 0))
    dest = f"file://{tmp_path / 'dest'}"
    extra = ["--chunk-size", "32,32,8", "--max-mips", "2", "--shape", "128,128,16"]
    if factor == (2, 2, 2):
        extra.append("--volumetric")
    backend.run(
        tc.create_transfer_tasks,
        xfer_args(src, dest, extra),
        src,
        dest,
        chunk_size=(32, 32, 8),
        max_mips=2,
        shape=(128, 128, 16),
        factor=factor,
    )
    np.testing.assert_array_equal(read_layer(dest)[..., 0], whole)
    levels = len(CloudVolume(dest).info["scales"]) - 1
    assert levels >= 1
    assert_pyramid(dest, whole, factor, levels, "avg")


def test_clean_info_and_truncate(local, layer, tmp_path):
    whole = random_volume((64, 64, 8), np.uint32, labels=5)
    src = layer(whole)
    vol = CloudVolume(src)
    vol.info["mesh"] = "mesh"
    vol.info["skeletons"] = "skeletons"
    vol.commit_info()
    local.run(tc.create_downsampling_tasks, (), src, num_mips=1)
    dest = f"file://{tmp_path / 'dest'}"
    local.run(tc.create_transfer_tasks, (), src, dest, clean_info=True, skip_downsamples=True)
    info = CloudVolume(dest).info
    assert "mesh" not in info and "skeletons" not in info
    assert len(info["scales"]) == 1  # truncate_scales: levels above mip are rebuilt, not copied


def test_provenance_recorded(local, layer, tmp_path):
    whole = random_volume((64, 64, 8), np.uint8)
    src = layer(whole)
    dest = f"file://{tmp_path / 'dest'}"
    local.run(tc.create_transfer_tasks, (), src, dest, skip_downsamples=True)
    prov = CloudVolume(dest).provenance
    assert prov.processing[-1]["method"]["task"] == "TransferTask"
    assert src in prov.sources
    assert CloudVolume(src).provenance.processing[-1]["method"]["dest_path"] == dest


@pytest.mark.parametrize("encoding", ["png", "jpeg", "jxl"])
def test_codecs_that_scramble_channels_are_refused(layer, tmp_path, encoding):
    # cloud-volume's png/jpeg/jxl codecs reorder 3-channel chunks: writing them would corrupt data
    src = layer(random_volume((32, 32, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="does not round-trip"):
        tc.create_transfer_tasks(src, f"file://{tmp_path / 'dest'}", encoding=encoding)
    assert not (tmp_path / "dest").exists()
