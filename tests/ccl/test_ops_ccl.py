"""The pure parts of CCL (igneous.ops.ccl): numbering, thresholds, faces, union-find, label maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igneous.ops.ccl import (
    DisjointSet,
    blackout_non_face_rails,
    compute_label_offset,
    compute_task_number,
    connected_components,
    equivalence_entries,
    face_pairs,
    format_label_map,
    owned_counts,
    parse_label_map,
    smallest_uint,
    task_of_label,
    task_relabeling,
    threshold_image,
    union_find,
)


@pytest.mark.parametrize(
    "grid, point, number",
    [
        ((3, 4, 5), (0, 0, 0), 0),
        ((3, 4, 5), (2, 0, 0), 2),  # x fastest
        ((3, 4, 5), (0, 1, 0), 3),
        ((3, 4, 5), (0, 0, 1), 12),
        ((3, 4, 5), (2, 3, 4), 59),  # the last
    ],
)
def test_task_number_is_x_fastest(grid, point, number):
    assert compute_task_number(grid, point) == number


def test_label_offsets_leave_room_for_every_voxel_of_the_extended_box():
    shape = (4, 5, 6)
    per_task = 5 * 6 * 7
    assert compute_label_offset(shape, (2, 2, 2), (1, 1, 1)) == 7 * per_task
    # a task whose extended box is all single-voxel labels uses offset+1 … offset+per_task
    labels = np.array([per_task, per_task + 1, 2 * per_task], dtype=np.uint64)
    assert task_of_label(labels, shape).tolist() == [0, 1, 1]


def test_threshold_image_on_float_and_int():
    img = np.array([[[np.nan, 0.1, 0.5, 0.9]]], dtype=np.float32)
    assert threshold_image(img, None, 0.5).tolist() == [[[False, False, True, True]]]
    assert threshold_image(img, 0.5, 0.1).tolist() == [[[False, True, True, False]]]
    ints = np.arange(5, dtype=np.uint8).reshape(1, 1, 5)
    assert threshold_image(ints, 3, None).tolist() == [[[True, True, True, True, False]]]
    assert threshold_image(ints, None, None) is ints  # no threshold: the labels themselves


def test_blackout_zeroes_only_where_two_overlaps_meet():
    labels = np.ones((3, 3, 3), dtype=np.uint32)
    blackout_non_face_rails(labels, (2, 2, 2))
    kept = {(x, y, z) for x, y, z in zip(*np.nonzero(labels))}
    in_overlap = lambda p: sum(c == 2 for c in p)  # noqa: E731
    assert kept == {p for p in np.ndindex(3, 3, 3) if in_overlap(p) <= 1}


def test_rails_are_kept_for_26_connectivity():
    img = np.zeros((3, 3, 2), dtype=bool)
    img[1, 1, 0] = img[2, 2, 0] = True  # own voxel and the rail voxel diagonal to it
    labels6, n6 = connected_components(img.copy(), 6, (2, 2, 1))
    labels26, n26 = connected_components(img.copy(), 26, (2, 2, 1))
    assert n6 == 1 and labels6[2, 2, 0] == 0  # rail blacked out
    assert n26 == 1 and labels26[2, 2, 0] == labels26[1, 1, 0] == 1


def test_owned_counts_leave_out_the_overlap():
    labels = np.zeros((3, 3, 3), dtype=np.uint32, order="F")
    labels[:2, :2, :2] = 1
    labels[2, :, :] = 2  # the x overlap
    labels[0, 0, 2] = 2  # the z overlap
    labels[1, 1, 1] = 3
    counts = owned_counts(labels, (2, 2, 2), 3)
    assert counts.tolist() == [0, 7, 0, 1]


def test_face_pairs_link_labels_of_the_same_voxel():
    mine = np.array([[1, 1, 0], [2, 0, 5]], dtype=np.uint64)
    theirs = np.array([[7, 8, 0], [9, 4, 0]], dtype=np.uint64)
    a, b = face_pairs(mine, theirs)
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 7), (1, 8), (2, 9)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=80))
def test_union_find_agrees_with_a_disjoint_set(edges):
    a = np.array([e[0] for e in edges], dtype=np.uint64)
    b = np.array([e[1] for e in edges], dtype=np.uint64)
    labels, root = union_find(a, b)
    ds = DisjointSet()
    for x, y in edges:
        ds.union(x, y)
    for label, r in zip(labels.tolist(), root.tolist()):
        assert labels[r] == ds.find(label)  # both pick the smallest label of the component


def test_equivalence_entries_record_the_label_count():
    keys, vals = equivalence_entries(np.array([11, 12], np.uint64), np.array([3, 3], np.uint64), 15)
    assert dict(zip(keys.tolist(), vals.tolist())) == {3: 3, 11: 3, 12: 3, 15: 15}
    keys, vals = equivalence_entries(np.zeros(0, np.uint64), np.zeros(0, np.uint64), None)
    assert keys.size == 0


def test_label_maps_round_trip_the_whole_uint64_range():
    keys = np.array([1, 2**63, 2**64 - 1], dtype=np.uint64)
    vals = np.array([0, 5, 2**64 - 2], dtype=np.uint64)
    data = format_label_map(keys, vals)
    assert data.startswith(b'{"1":0,')
    k, v = parse_label_map(data)
    assert k.tolist() == keys.tolist() and v.tolist() == vals.tolist()
    assert parse_label_map(b"{}")[0].size == 0
    k, v = parse_label_map(b'{"10": 3, "11": 4}')  # other writers' spacing
    assert k.tolist() == [10, 11] and v.tolist() == [3, 4]
    with pytest.raises(ValueError):
        parse_label_map(b'{"1": [2]}')  # not a label map: no evaluation, just refusal


def test_task_relabeling_numbers_interior_and_opened_components_in_label_order():
    # task 1 of a grid with 100 labels per task: labels 101…105; 102 and 104 are linked.
    # 102's component starts in task 0 (root label 7, id 3); 104 opens a component here.
    all_linked = np.array([7, 102, 104, 230], dtype=np.uint64)
    root = np.array([0, 0, 2, 2])  # 230 (task 2) joins 104's component
    root_ids = np.zeros(4, dtype=np.uint64)
    root_ids[0] = 3
    new, next_id = task_relabeling(5, 100, all_linked[1:3], np.arange(1, 3), root[1:3], root_ids, next_id=10)
    assert new.tolist() == [0, 10, 3, 11, 12, 13]
    assert next_id == 14 and root_ids[2] == 12

    counts = np.array([0, 1, 50, 9, 1, 4], dtype=np.uint64)
    alive = np.array([True, False, False, False])  # 104's component is dust over the whole volume
    root_ids[:] = 0
    root_ids[0] = 3
    new, next_id = task_relabeling(
        5, 100, all_linked[1:3], np.arange(1, 3), root[1:3], root_ids, 10, counts=counts, alive=alive,
        dust_threshold=4,
    )  # fmt: skip
    assert new.tolist() == [0, 0, 3, 10, 0, 11]  # 101 (1 voxel) dusted, 102 kept by its component
    assert next_id == 12


def test_smallest_uint():
    assert smallest_uint(255) == np.uint8 and smallest_uint(256) == np.uint16
    assert smallest_uint(10, at_least=np.uint32) == np.uint32
    assert smallest_uint(2**40) == np.uint64
