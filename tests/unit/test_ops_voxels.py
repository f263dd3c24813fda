"""Voxel counting compute (``igneous.ops.voxels``) and the task's block plan, without storage."""

from __future__ import annotations

import numpy as np
import pytest
from cloudvolume.lib import Bbox
from mapbuffer import IntMap

from igneous.ops.voxels import (
    count_labels,
    counts_from_json,
    counts_to_json,
    intmap_key,
    label_bboxes,
    merge_bboxes,
    merge_counts,
)
from igneous.tasks.image.voxels import read_blocks

BIG = 2**63


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_count_labels_equals_np_unique(dtype):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 40, size=(17, 9, 5)).astype(dtype)
    labels, counts = count_labels(img)
    want_l, want_c = np.unique(img, return_counts=True)
    assert labels.dtype == counts.dtype == np.uint64
    np.testing.assert_array_equal(labels, want_l)
    np.testing.assert_array_equal(counts, want_c)


def test_merging_parts_equals_counting_the_whole():
    rng = np.random.default_rng(2)
    palette = np.array([0, 5, BIG, BIG + 1, 2**64 - 1, 2**40], dtype=np.uint64)
    whole = palette[rng.integers(0, len(palette), size=(30, 20, 10))]
    parts = [count_labels(whole[:, :, z : z + 3]) for z in range(0, 10, 3)]
    labels, counts = merge_counts(parts[::-1])  # order does not matter
    want_l, want_c = np.unique(whole, return_counts=True)
    np.testing.assert_array_equal(labels, want_l)
    np.testing.assert_array_equal(counts, want_c)
    empty = merge_counts([])
    assert empty[0].size == 0 and empty[1].size == 0


def test_counts_are_exact_beyond_float_precision():
    huge = 2**60 + 1  # a float64 weight would round this
    labels, counts = merge_counts([(np.array([3], np.uint64), np.array([huge], np.uint64))] * 2)
    assert labels.tolist() == [3] and counts.tolist() == [2 * huge]


def test_json_round_trip_keeps_big_labels():
    counts = (np.array([0, 7, BIG + 3], np.uint64), np.array([10, 1, 2], np.uint64))
    obj = counts_to_json(counts)
    assert obj == {"0": 10, "7": 1, str(BIG + 3): 2}
    back = counts_from_json(obj)
    np.testing.assert_array_equal(back[0], counts[0])
    np.testing.assert_array_equal(back[1], counts[1])


def test_intmap_key_finds_labels_at_and_above_2_63():
    table = {0: 1, 5: 2, BIG: 3, BIG + 9: 4, 2**64 - 1: 5}
    im = IntMap(table)
    for label, value in table.items():
        assert im.get(intmap_key(label)) == value
    assert intmap_key(5) == 5 and intmap_key(BIG) == -(2**63) and intmap_key(2**64 - 1) == -1
    with pytest.raises(OverflowError):  # the mapbuffer limitation intmap_key exists for
        im.get(BIG + 9)


@pytest.mark.parametrize(
    "box,chunk,offset,budget",
    [
        (Bbox((5, 7, 3), (517, 28, 22)), (48, 16, 8), (5, 7, 3), 2**24),  # slabs only, last one short
        (Bbox((5, 7, 3), (517, 28, 22)), (48, 16, 8), (5, 7, 3), 1),  # budget below one chunk row: rows of 16
        (Bbox((517, 7, 3), (528, 28, 22)), (48, 16, 8), (5, 7, 3), 11 * 16 * 8),  # box starts mid-chunk in x
        (Bbox((10, 13, 17), (50, 70, 40)), (8, 8, 8), (2, 1, 0), 40 * 16 * 8),  # unaligned start on every axis
    ],
)
def test_read_blocks_cover_the_box_once_and_respect_chunks(box, chunk, offset, budget):
    size = box.size3()
    seen = np.zeros(tuple(size), dtype=np.int32)
    for block in read_blocks(box, chunk, offset, budget):
        lo, hi = block.minpt - box.minpt, block.maxpt - box.minpt
        seen[lo.x : hi.x, lo.y : hi.y, lo.z : hi.z] += 1
        for axis in (1, 2):  # interior cuts fall on chunk boundaries
            for edge, bound in ((block.minpt[axis], box.minpt[axis]), (block.maxpt[axis], box.maxpt[axis])):
                assert edge == bound or (edge - offset[axis]) % chunk[axis] == 0
        assert block.size3()[2] <= chunk[2]
        assert np.prod(block.size3()) <= max(budget, size[0] * chunk[1] * chunk[2])
    assert (seen == 1).all()


def numpy_bboxes(img, origin=(0, 0, 0)) -> dict:
    out = {}
    for label in np.unique(img):
        if label == 0:
            continue
        coords = np.nonzero(img == label)
        out[int(label)] = (
            [int(c.min()) + o for c, o in zip(coords, origin)],
            [int(c.max()) + 1 + o for c, o in zip(coords, origin)],
        )
    return out


def as_dict(boxes) -> dict:
    labels, lo, hi = boxes
    return {int(label): (a, b) for label, a, b in zip(labels.tolist(), lo.tolist(), hi.tolist())}


def test_label_bboxes_equal_numpy_and_merge_over_slabs():
    rng = np.random.default_rng(4)
    palette = np.array([0, 0, 0, 3, 9, BIG + 2, 2**64 - 1], dtype=np.uint64)
    img = palette[rng.integers(0, len(palette), size=(12, 9, 10))]
    img[img == 9] = 0
    img[4:6, 7, 2] = 9  # a small label inside one slab only
    origin = (100, -3, 7)
    assert as_dict(label_bboxes(img, origin)) == numpy_bboxes(img, origin)
    slabs = [label_bboxes(img[:, :, z : z + 4], (origin[0], origin[1], origin[2] + z)) for z in range(0, 10, 4)]
    assert as_dict(merge_bboxes(slabs)) == numpy_bboxes(img, origin)
    assert as_dict(label_bboxes(np.zeros((3, 3, 3), np.uint32))) == {}
