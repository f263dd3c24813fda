"""Distributed CCL has exactly cc3d's whole-volume partition (DESIGN §5).

Task shapes never divide the volume, offsets are not zero, and objects cross the task seams
through faces, edges and corners only.
"""

from __future__ import annotations

import os

import cc3d
import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from tests.ccl.conftest import assert_consecutive, assert_same_partition, oracle, run_ccl
from tests.conftest import read_layer

SHAPE = (8, 8, 8)
OFFSET = (5, 3, 7)


# Two-voxel objects that meet only across a seam at (cx, cy, cz): (low voxel, high voxel) offsets
# from it, and the connectivity from which the two voxels are one object.
CROSSINGS = {
    "face": (((-1, 3, 3), (0, 3, 3)), 6),
    "face-diagonal": (((-1, 2, 3), (0, 3, 3)), 18),  # across the x face, one step in y
    "edge": (((-1, -1, 3), (0, 0, 3)), 18),  # across the x-y edge only
    "edge-diagonal": (((-1, -1, 3), (0, 0, 4)), 26),
    "corner": (((-1, -1, -1), (0, 0, 0)), 26),  # across the corner only
}


def seam_crossings(size, shape):
    """Each kind of crossing planted at the task corners (cx, cy, cz), kinds taken in turn."""
    img = np.zeros(size, dtype=np.uint8)
    kinds = sorted(CROSSINGS)
    points = [
        (cx, cy, cz)
        for cz in range(shape[2], size[2], shape[2])
        for cy in range(shape[1], size[1], shape[1])
        for cx in range(shape[0], size[0], shape[0])
    ]
    planted = []
    for i, point in enumerate(points):
        (lo, hi), _ = CROSSINGS[kinds[i % len(kinds)]]
        a = tuple(c + d for c, d in zip(point, lo))
        b = tuple(c + d for c, d in zip(point, hi))
        img[a] = img[b] = 1
        planted.append((kinds[i % len(kinds)], a, b))
    return img, planted


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_objects_crossing_seams_through_faces_edges_corners(layer, tmp_path, connectivity):
    img, planted = seam_crossings((21, 22, 21), SHAPE)  # 3 x 3 x 3 tasks of 8³, the last ones cut short
    want = oracle(img, connectivity)
    for kind, a, b in planted:  # the volume tests what it says: which pairs are one object
        assert (want[a] == want[b]) == (CROSSINGS[kind][1] <= connectivity), kind
    assert len(planted) == 8
    src = layer(img, voxel_offset=OFFSET, chunk_size=(8, 8, 8))
    n = run_ccl(src, f"file://{tmp_path / 'dest'}", SHAPE, threshold_gte=1, connectivity=connectivity)
    out = read_layer(f"file://{tmp_path / 'dest'}")[..., 0]
    assert n == want.max()
    assert_same_partition(out, want)
    assert_consecutive(out, n)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_random_binary_near_percolation(layer, tmp_path, connectivity):
    density = {6: 0.35, 18: 0.2, 26: 0.12}[connectivity]  # many components, many seam crossings
    img = (np.random.default_rng(connectivity).random((29, 22, 18)) < density).astype(np.uint8)
    src = layer(img, voxel_offset=OFFSET, chunk_size=(4, 8, 5))
    shape = (12, 8, 10)
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, shape, threshold_gte=1, connectivity=connectivity)
    out = read_layer(dest)[..., 0]
    want = oracle(img, connectivity)
    assert n == want.max()
    assert_same_partition(out, want)
    assert_consecutive(out, n)
    assert out.dtype == (np.uint8 if n < 256 else np.uint16)


@pytest.mark.parametrize(
    "dtype, gte, lte",
    [
        (np.float32, 0.6, None),
        (np.float32, 0.3, 0.7),
        (np.uint8, None, 90),
    ],
)
def test_thresholds_on_float_and_integer_images(layer, tmp_path, dtype, gte, lte):
    rng = np.random.default_rng(7)
    raw = rng.random((24, 20, 12))
    img = raw.astype(np.float32) if dtype == np.float32 else (raw * 255).astype(np.uint8)
    src = layer(img, voxel_offset=(1, 2, 3), chunk_size=(8, 10, 4))
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (16, 10, 8), threshold_gte=gte, threshold_lte=lte, connectivity=26)
    want = oracle(img, 26, gte=gte, lte=lte)
    assert n == want.max()
    assert_same_partition(read_layer(dest)[..., 0], want)


def test_a_label_image_keeps_touching_labels_apart(layer, tmp_path):
    rng = np.random.default_rng(3)
    img = rng.integers(1, 4, size=(20, 20, 14)).astype(np.uint32)
    img[rng.random(img.shape) < 0.3] = 0
    src = layer(img, chunk_size=(5, 5, 7))
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (10, 15, 7), connectivity=18)
    want = cc3d.connected_components(img, connectivity=18)
    assert n == want.max()
    assert_same_partition(read_layer(dest)[..., 0], want)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_dust_is_global(layer, tmp_path, connectivity):
    rng = np.random.default_rng(11)
    img = (rng.random((24, 24, 16)) < 0.12).astype(np.uint8)
    # a rod through four tasks: 4 voxels in each, 16 in all, kept by dust=10
    img[2:18, 12, 4] = 1
    img[2:18, 11, 4] = img[2:18, 13, 4] = img[2:18, 12, 3] = img[2:18, 12, 5] = 0
    img[1, 12, 4] = img[18, 12, 4] = 0
    src = layer(img, chunk_size=(4, 8, 8))
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (4, 8, 8), threshold_gte=1, dust_threshold=10, connectivity=connectivity)
    out = read_layer(dest)[..., 0]
    want = oracle(img, connectivity, dust=10)
    assert out[2:18, 12, 4].min() > 0 and len(np.unique(out[2:18, 12, 4])) == 1
    assert n == want.max() and n > 0
    assert_same_partition(out, want)
    assert_consecutive(out, n)


def test_dust_on_a_label_image(layer, tmp_path):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 3, size=(18, 18, 10)).astype(np.uint32)
    src = layer(img, chunk_size=(6, 6, 5))
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (6, 6, 5), dust_threshold=4, connectivity=6)
    want = cc3d.connected_components(cc3d.dust(img, 4, connectivity=6), connectivity=6)
    assert n == want.max()
    assert_same_partition(read_layer(dest)[..., 0], want)


def test_one_task_gives_cc3d_ids_exactly(layer, tmp_path):
    img = (np.random.default_rng(2).random((20, 16, 12)) < 0.3).astype(np.uint8)
    src = layer(img, chunk_size=(10, 8, 6))
    dest = f"file://{tmp_path / 'dest'}"
    run_ccl(src, dest, (32, 32, 32), threshold_gte=1, dust_threshold=3, connectivity=26)
    np.testing.assert_array_equal(read_layer(dest)[..., 0], oracle(img, 26, dust=3))


def test_missing_chunk_fails_or_is_background(layer, tmp_path):
    img = (np.random.default_rng(9).random((16, 16, 16)) < 0.3).astype(np.uint8)
    src = layer(img, chunk_size=(8, 8, 8))
    scale = CloudVolume(src).meta.key(0)
    CloudFiles(src).delete(f"{scale}/8-16_0-8_0-8")
    assert not any(name.startswith("8-16_0-8_0-8") for name in os.listdir(tmp_path / "src" / scale))
    with pytest.raises(Exception, match="8-16_0-8_0-8"):
        LocalTaskQueue(parallel=1, progress=False).insert_all(
            tc.create_ccl_face_tasks(src, 0, (8, 8, 8), threshold_gte=1)
        )
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (8, 8, 8), threshold_gte=1, fill_missing=True)
    filled = img.copy()
    filled[8:16, 0:8, 0:8] = 0
    want = oracle(filled, 6)
    assert n == want.max()
    assert_same_partition(read_layer(dest)[..., 0], want)


@pytest.mark.parametrize("as_labels", [False, True])
def test_real_sample(layer, tmp_path, sample, as_labels):
    seg = sample((200, 180, 230), (70, 66, 40))
    if not as_labels:  # the sample is dense: keep a third of its neurons as the foreground
        seg = np.where(seg % 3 == 0, seg, 0)
    src = layer(seg, voxel_offset=(100, 40, 9), chunk_size=(16, 16, 8))
    dest = f"file://{tmp_path / 'dest'}"
    if as_labels:  # each label's pieces are components; touching labels stay apart
        n = run_ccl(src, dest, (32, 48, 16), connectivity=6)
        want = cc3d.connected_components(seg, connectivity=6)
    else:  # every labelled voxel is foreground: touching neurons merge
        n = run_ccl(src, dest, (32, 48, 16), threshold_gte=1, connectivity=26)
        want = oracle(seg, 26, gte=1)
    out = read_layer(dest)[..., 0]
    assert n == want.max() and n >= 3
    assert_same_partition(out, want)
    assert_consecutive(out, n)
