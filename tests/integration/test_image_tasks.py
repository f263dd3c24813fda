"""Deletion, blackout, touch, quantize and reorder, checked against numpy."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous.errors import InvalidParameterError
from tests.conftest import read_layer
from tests.integration.test_downsample import random_volume


def chunk_files(root, key):
    return sorted(os.listdir(os.path.join(root, key))) if os.path.isdir(os.path.join(root, key)) else []


def test_delete_levels_mip_to_mip_plus_num_mips(backend, layer, tmp_path):
    whole = random_volume((256, 256, 16), np.uint8)
    path = layer(whole, chunk_size=(32, 32, 8))
    backend.run(tc.create_downsampling_tasks, ["image", "downsample", path, "--num-mips", "3"], path, num_mips=3)
    keys = [s["key"] for s in CloudVolume(path).info["scales"]]
    root = tmp_path / "src"
    assert all(chunk_files(root, k) for k in keys)
    cli = ["image", "rm", path, "--mip", "1", "--num-mips", "1"]
    backend.__class__(tmp_path).run(tc.create_deletion_tasks, cli, path, mip=1, num_mips=1)
    assert chunk_files(root, keys[0]) and chunk_files(root, keys[3])  # mip 0 and mip 3 kept
    assert not chunk_files(root, keys[1]) and not chunk_files(root, keys[2])  # mips 1..1+1 gone


def test_delete_within_bounds_only(local, layer, tmp_path):
    whole = random_volume((128, 64, 8), np.uint8)
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(tc.create_deletion_tasks, (), path, num_mips=0, shape=(32, 32, 8), bounds=[[0, 0, 0], [64, 64, 8]])
    vol = CloudVolume(path, fill_missing=True)
    assert not vol[0:64, :, :].any()
    np.testing.assert_array_equal(vol[64:128, :, :][..., 0], whole[64:128])


def test_blackout(local, layer):
    whole = random_volume((64, 64, 16), np.uint16)
    path = layer(whole, chunk_size=(16, 16, 8))
    local.run(tc.create_blackout_tasks, (), path, bounds=[[16, 16, 0], [48, 32, 8]], value=7, shape=(32, 32, 8))
    expected = whole.copy()
    expected[16:48, 16:32, 0:8] = 7
    np.testing.assert_array_equal(read_layer(path)[..., 0], expected)


def test_touch_reports_missing_chunk(local, layer, tmp_path):
    whole = random_volume((64, 64, 8), np.uint8)
    path = layer(whole, chunk_size=(32, 32, 8))
    local.run(tc.create_touch_tasks, (), path)  # complete layer: fine
    key = CloudVolume(path).meta.key(0)
    victim = [f for f in os.listdir(tmp_path / "src" / key) if f.startswith("0-32_32-64")][0]
    os.remove(tmp_path / "src" / key / victim)
    with pytest.raises(Exception, match="0-32_32-64_0-8"):
        local.run(tc.create_touch_tasks, (), path)


def test_quantize_affinities(local, layer, tmp_path):
    rng = np.random.default_rng(1)
    aff = np.asfortranarray(rng.random((64, 64, 8, 3), dtype=np.float32))
    src = layer(aff, chunk_size=(32, 32, 8))
    dest = f"file://{tmp_path / 'quant'}"
    local.run(tc.create_quantize_tasks, (), src, dest, shape=(64, 64, 8), chunk_size=(32, 32, 8))
    got = read_layer(dest)
    assert got.dtype == np.uint8 and got.shape == (64, 64, 8, 1)
    np.testing.assert_array_equal(got[..., 0], np.floor(aff[..., 0] * 255).astype(np.uint8))
    assert len(CloudVolume(dest).info["scales"]) == 2  # one 2x2x1 level fits the 64x64 task


@pytest.mark.parametrize("mapping", [{"3": 10, "10": 3}, {str(z): 19 - z for z in range(20)}])
def test_reorder_slices_land_at_new_z(backend, layer, tmp_path, mapping):
    whole = random_volume((48, 40, 20), np.uint8, seed=2)
    src = layer(whole, chunk_size=(16, 16, 4))
    dest = f"file://{tmp_path / 'reordered'}"
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(mapping))
    cli = ["image", "reorder", src, dest, "--mapping-file", str(mapping_file)]
    backend.run(tc.create_reordering_tasks, cli, src, dest, 0, mapping)
    got = read_layer(dest)[..., 0]
    expected = whole.copy()
    for old, new in mapping.items():
        expected[:, :, int(new)] = whole[:, :, int(old)]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "mapping,problem",
    [
        ({"3": 4}, "lost"),  # 3 and 4 both land on 4
        ({"0": 99}, "outside"),  # beyond the layer
    ],
)
def test_reorder_refuses_lossy_mapping(layer, tmp_path, mapping, problem):
    src = layer(random_volume((16, 16, 8), np.uint8), chunk_size=(16, 16, 4))
    dest = f"file://{tmp_path / 'reordered'}"
    with pytest.raises(InvalidParameterError, match=problem):
        tc.create_reordering_tasks(src, dest, 0, mapping)
    assert not (tmp_path / "reordered").exists()
