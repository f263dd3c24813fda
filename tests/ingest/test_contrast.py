"""Contrast: histograms → equalize equals a numpy stretch from the same histograms; CLAHE over
tasks equals OpenCV's CLAHE of each whole slice; ROI boxes equal cc3d's."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous_cli import main
from tests.conftest import read_layer, tree


def uneven_volume(shape=(70, 52, 10), dtype=np.uint8, seed=0):
    """Slices of different brightness and spread, with some zero (missing) voxels."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    vol = np.zeros(shape, dtype=np.float64)
    for z in range(shape[2]):
        center, spread = rng.uniform(0.2, 0.6) * top, rng.uniform(0.05, 0.2) * top
        vol[:, :, z] = rng.normal(center, spread, size=shape[:2])
    vol = np.clip(vol, 1, top).astype(dtype)
    vol[:5, :5] = 0
    return vol


def run(tasks):
    from taskqueue import LocalTaskQueue

    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def expected_stretch(image, levels, fraction, lo=0.0, hi=255.0):
    """The stretch written independently: sorted non-zero samples, clip order statistics."""
    counts = np.asarray(levels)
    values = np.repeat(np.arange(len(counts)), counts)
    values = values[values > 0]
    n = len(values)
    lower = values[int(np.floor(fraction * n))]
    upper = max(values[int(np.ceil((1 - fraction) * n)) - 1], lower + 1)
    out = (image.astype(np.float64) - lower) * (hi - lo) / (upper - lower) + lo
    return np.floor(np.clip(out, lo, hi) + 0.5)


def test_histogram_then_equalize(backend, layer, tmp_path):
    vol = uneven_volume()
    src = layer(vol, chunk_size=(32, 32, 4), voxel_offset=(3, 4, 5))
    backend.run(tc.create_luminance_levels_tasks, ["image", "contrast", "histogram", src, "--coverage", "1"], src,
                coverage_factor=1.0)  # fmt: skip
    levels_dir = tmp_path / "src" / "levels" / "0"
    assert sorted(int(n) for n in os.listdir(levels_dir)) == list(range(5, 15))
    dest = f"file://{tmp_path / 'dest'}"
    run(tc.create_contrast_normalization_tasks(src, dest, shape=(64, 64, 4), clip_fraction=0.05))
    out = read_layer(dest)[..., 0]
    for z in range(vol.shape[2]):
        with open(levels_dir / str(z + 5)) as f:
            record = json.load(f)
        assert record["num_patches"] == 1 and record["coverage_ratio"] == 1.0
        # the whole slice was sampled: the histogram is the slice's own
        np.testing.assert_array_equal(record["levels"], np.bincount(vol[:, :, z].ravel(), minlength=256))
        np.testing.assert_array_equal(out[:, :, z], expected_stretch(vol[:, :, z], record["levels"], 0.05))
    assert len(CloudVolume(dest).info["scales"]) > 1  # and then it downsamples


def test_equalize_minval_maxval_translate(layer, tmp_path):
    vol = uneven_volume(shape=(40, 36, 4), dtype=np.uint16, seed=4)
    src = layer(vol, chunk_size=(16, 16, 2))
    run(tc.create_luminance_levels_tasks(src, coverage_factor=1.0))
    dest = f"file://{tmp_path / 'dest'}"
    run(tc.create_contrast_normalization_tasks(src, dest, shape=(32, 32, 2), minval=100, maxval=60000,
                                               translate=(16, 0, 2)))  # fmt: skip
    dvol = CloudVolume(dest)
    assert dvol.meta.voxel_offset(0).tolist() == [16, 0, 2]
    out = read_layer(dest)[..., 0]
    for z in range(4):
        with open(tmp_path / "src" / "levels" / "0" / str(z)) as f:
            levels = json.load(f)["levels"]
        np.testing.assert_array_equal(out[:, :, z], expected_stretch(vol[:, :, z], levels, 0.01, 100, 60000))


def whole_slice_clahe(image_xy, tile, clip):
    """cv2.createCLAHE on the whole slice, extended by reflection to whole tiles as OpenCV does."""
    img = np.ascontiguousarray(image_xy.T)
    pad_y, pad_x = -img.shape[0] % tile[1], -img.shape[1] % tile[0]
    img = np.pad(img, ((0, pad_y), (0, pad_x)), mode="reflect")
    grid = (img.shape[1] // tile[0], img.shape[0] // tile[1])
    out = cv2.createCLAHE(clipLimit=clip, tileGridSize=grid).apply(img)
    return out[: image_xy.shape[1], : image_xy.shape[0]].T


@pytest.mark.parametrize("dtype,size", [(np.uint8, (200, 150, 4)), (np.uint16, (130, 96, 2))])
def test_clahe_equals_whole_slice(layer, tmp_path, dtype, size):
    vol = uneven_volume(shape=size, dtype=dtype, seed=7)
    src = layer(vol, chunk_size=(32, 32, 2), voxel_offset=(7, 0, 3))
    dest = f"file://{tmp_path / 'dest'}"
    tasks = tc.create_clahe_tasks(src, dest, shape=(64, 64, 2), clip_limit=3.0, tile_grid_size=(4, 4))
    assert len(tasks) >= 4  # several tasks, so seams would show
    run(tasks)
    out = read_layer(dest)[..., 0]
    for z in range(size[2]):
        np.testing.assert_array_equal(out[:, :, z], whole_slice_clahe(vol[:, :, z], (16, 16), 3.0))


def test_roi_equals_cc3d(layer, tmp_path):
    import cc3d

    vol = np.zeros((128, 96, 8), dtype=np.uint8)
    vol[10:40, 20:50, 1:5] = 200
    vol[70:120, 60:90, 2:8] = 150
    vol[100:102, 5:7, 0:1] = 90  # dust once pooled
    src = layer(vol, chunk_size=(32, 32, 4), voxel_offset=(4, 0, 0))
    run(tc.create_downsampling_tasks(src, num_mips=2))
    boxes = tc.compute_rois(src, dust_threshold=3, max_axial_length=16)
    low = read_layer(src, mip=2)[..., 0]  # 32x24: pooled once more in memory (x·y ≤ 16²)
    import tinybrain

    small = tinybrain.downsample_with_averaging(low, (2, 2, 1))[0]
    labels = cc3d.dust(cc3d.connected_components(small > 0, connectivity=26), threshold=3, connectivity=26)
    want = []
    for sl in cc3d.statistics(labels)["bounding_boxes"][1:]:
        if sl is None:  # a label removed as dust
            continue
        lo = np.array([s.start for s in sl]) * [8, 8, 1] + [4, 0, 0]
        hi = np.minimum(np.array([s.stop for s in sl]) * [8, 8, 1] + [4, 0, 0], [132, 96, 8])
        want.append(lo.tolist() + (hi - 1).tolist())
    assert len(want) == 2
    assert sorted(CloudVolume(src).info["scales"][0]["rois"]) == sorted(want)
    assert sorted(b.minpt.tolist() + (b.maxpt - 1).tolist() for b in boxes) == sorted(want)
    result = CliRunner().invoke(main, ["image", "roi", src, "--dust", "3", "--max-axial-len", "16"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 2


def test_histogram_plot(layer, tmp_path):
    src = layer(uneven_volume(), chunk_size=(32, 32, 4))
    png = tmp_path / "levels.png"
    result = CliRunner().invoke(main, ["image", "contrast", "histogram", src, "--plot", str(png)])
    assert result.exit_code == 0, result.output
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).astype(int)
    orange = np.abs(pixels - [255, 127, 14]).sum(axis=1) < 30  # the median line
    blue = np.abs(pixels - [31, 119, 180]).sum(axis=1) < 30  # the clip percentiles
    assert orange.sum() > 100 and blue.sum() > 100


@pytest.mark.parametrize(
    "args,needle",
    [
        (["image", "contrast", "equalize", "{src}", "{dest}"], "no histogram"),
        (["image", "contrast", "clahe", "{f32}", "{dest}"], "uint8 or uint16"),
        (["image", "contrast", "clahe", "{src}", "{dest}", "--clip-limit", "0"], "clip_limit"),
        (["image", "contrast", "equalize", "{src}", "{dest}", "--shape", "30,32,4"], "multiple of the chunk"),
        (["image", "contrast", "histogram", "{src}", "--coverage", "2"], "coverage_factor"),
        (["image", "roi", "{src}", "--z-step", "0"], "z_step"),
    ],
)
def test_contrast_bad_input(layer, tmp_path, args, needle):
    paths = {
        "src": layer(uneven_volume(shape=(32, 32, 4)), chunk_size=(16, 16, 4)),
        "f32": layer(np.zeros((8, 8, 2), np.float32), name="f32", chunk_size=(8, 8, 2)),
        "dest": f"file://{tmp_path / 'dest'}",
    }
    before = tree(tmp_path)
    result = CliRunner().invoke(main, [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    assert tree(tmp_path) == before


def test_plans_write_nothing(layer, tmp_path):
    from igneous.task_creation.contrast import plan_clahe, plan_contrast_normalization

    src = layer(uneven_volume(shape=(64, 64, 8)), chunk_size=(32, 32, 4))
    run(tc.create_luminance_levels_tasks(src, coverage_factor=1.0))
    before = tree(tmp_path)
    eq = plan_contrast_normalization(src, f"file://{tmp_path / 'eq'}", shape=(32, 32, 4))
    cl = plan_clahe(src, f"file://{tmp_path / 'cl'}", shape=(32, 32, 4))
    assert tree(tmp_path) == before
    assert len(eq.tasks) == 8 and len(cl.tasks) == 8
    assert len(eq.dest.info["scales"]) == 1  # a 32³-chunk task of 32 voxels has no whole-chunk level above it
