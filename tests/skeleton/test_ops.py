"""Pure skeleton compute and format code (igneous.ops.skeleton, igneous.skeletons): milliseconds."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from osteoid import Skeleton

from igneous import skeletons as fmt
from igneous.errors import UnsafeFragmentError
from igneous.ops import skeleton as ops
from igneous.task_creation.common import graphene_prefixes
from igneous.task_creation.skeleton import synapses_in_space

ATTRS = [fmt.RADIUS]


def path_skeleton(points, radius=10.0, segid=1) -> Skeleton:
    skel = Skeleton.from_path(np.asarray(points, dtype=np.float32))
    skel.radius = np.full(len(points), radius, dtype=np.float32)
    skel.id = segid
    skel.space = "physical"
    return skel


@pytest.mark.parametrize("resolution", [(16, 16, 40), (3.6, 4.1, 33.3), (8, 8, 8)])
@pytest.mark.parametrize("origin", [(0, 0, 0), (7, 11, 5), (1023, 4097, 333)])
def test_seam_vertices_are_bit_identical_from_both_tasks(resolution, origin):
    """The voxel a seam target sits on, seen from the task below (local index = shape) and the
    task above (local index 0), lands on the same float32 nm (DESIGN: seams match exactly)."""
    shape = np.array([56, 56, 40])
    local_below = np.array([[56, 3, 7], [17, 56, 40]], dtype=np.float32)
    below = ops.place_vertices(local_below, origin, resolution)
    local_above = local_below - np.array([[56, 0, 0], [0, 56, 0]], dtype=np.float32)
    above = ops.place_vertices(local_above, np.asarray(origin) + np.array([[56, 0, 0], [0, 56, 0]]), resolution)
    assert below.tobytes() == above.tobytes()
    np.testing.assert_allclose(below[0], (np.asarray(origin) + [56, 3, 7] + 0.5) * resolution, rtol=1e-6)
    assert shape.sum()  # the grid is independent of the arithmetic


def test_merge_fragments_joins_on_shared_vertices():
    a = path_skeleton([[0, 0, 0], [10, 0, 0], [20, 0, 0]])
    b = path_skeleton([[20, 0, 0], [30, 0, 0]])
    merged = ops.merge_fragments([a, b])
    assert len(merged.vertices) == 4 and len(merged.components()) == 1
    assert merged.cable_length() == pytest.approx(30)


def test_seam_safe_dust_keeps_components_touching_interior_faces():
    labels = np.zeros((20, 20, 20), dtype=np.uint32, order="F")
    labels[2:4, 2:4, 2:4] = 1  # 8 voxels, inside: dust
    labels[17:20, 5:7, 5:7] = 2  # 12 voxels touching the high x face (a seam): kept
    labels[5:15, 5:15, 5:15] = 3  # 1000 voxels: kept
    out = ops.seam_safe_dust(labels, 100, [(0, 1)])
    assert set(np.unique(out)) == {0, 2, 3}
    out = ops.seam_safe_dust(labels, 100, [])  # no seams: the layer edge is the label's end
    assert set(np.unique(out)) == {0, 3}


def test_terminal_branches_and_prune_of_a_seam_stub():
    # a long path along x with a 2-vertex stub ending on a seam plane x = 60 near it
    main = [[x, 0, 0] for x in range(0, 200, 10)]
    vertices = np.array(main + [[60, 10, 0], [60, 20, 0]], dtype=np.float32)
    edges = [[i, i + 1] for i in range(19)] + [[6, 20], [20, 21]]
    skel = Skeleton(vertices, np.array(edges, dtype=np.uint32), radii=np.full(22, 20, np.float32), space="physical")
    branches = ops.terminal_branches(skel.edges, len(skel.vertices))
    ends = sorted(b[0] for b, _ in branches)
    assert ends == [0, 19, 21]
    seams = np.zeros(len(skel.vertices), dtype=bool)
    seams[21] = True
    pruned = ops.prune_invalidated_branches(skel, scale=4, const=10, seams=seams)
    assert len(pruned.vertices) == 20 and len(pruned.components()) == 1
    # without a seam vertex the branch is TEASAR's own: kept
    kept = ops.prune_invalidated_branches(skel, scale=4, const=10, seams=np.zeros(len(skel.vertices), bool))
    assert len(kept.vertices) == 22


def test_fragment_round_trip_and_pickles_refused(monkeypatch):
    skel = path_skeleton([[0, 0, 0], [16, 16, 40], [32, 32, 80]], radius=7.5, segid=12)
    data = fmt.encode_skeleton(skel, ATTRS)
    back = fmt.decode_fragment(data, 12, ATTRS)
    np.testing.assert_array_equal(back.vertices, skel.vertices)
    np.testing.assert_array_equal(back.radius, skel.radius)
    pickled = pickle.dumps(skel, protocol=4)
    monkeypatch.delenv(fmt.ALLOW_PICKLE_ENV, raising=False)
    with pytest.raises(UnsafeFragmentError, match=fmt.ALLOW_PICKLE_ENV):
        fmt.decode_fragment(pickled, 12, ATTRS, name="12:0-1_0-1_0-1")
    got = fmt.decode_fragment(pickled, 12, ATTRS, allow_pickle=True)
    np.testing.assert_array_equal(got.vertices, skel.vertices)
    monkeypatch.setenv(fmt.ALLOW_PICKLE_ENV, "1")
    assert len(fmt.decode_fragment(pickled, 12, ATTRS).vertices) == 3
    with pytest.raises(ValueError):
        fmt.decode_fragment(b"garbage!", 12, ATTRS)


def test_fragment_names_follow_the_precision_rule():
    from cloudvolume.lib import Bbox

    box = Bbox((0, 0, 0), (57, 57, 41))
    assert fmt.fragment_filename(5, box, [16, 16, 40]) == "5:0-912_0-912_0-1640"
    assert fmt.parse_fragment_name("5:0-912_0-912_0-1640") == (5, "0-912_0-912_0-1640")
    assert fmt.parse_fragment_name("5") is None and fmt.is_final_name("5")
    assert fmt.fragment_filename(5, box, [4.5, 4, 40]).startswith("5:0.0-256.5_")


def test_graphene_prefixes_cover_every_id_of_a_layer():
    prefixes = graphene_prefixes(mip=2, mip_bits=8, coord_bits=(2, 2, 2), prefix_length=4)
    rng = np.random.default_rng(0)
    layer_shift = 56
    for _ in range(2000):
        x, y, z = (int(v) for v in rng.integers(0, 4, 3))
        seg = int(rng.integers(0, 2**50))
        label = (2 << layer_shift) | (x << 54) | (y << 52) | (z << 50) | seg
        assert str(label)[:4] in prefixes


def test_synapses_in_space_indexes_centroids():
    tree, labels = synapses_in_space([((10.0, 20.0, 30.0), 5, 3), ((100.0, 0.0, 0.0), 6, 4)])
    assert tree.n == 2 and labels[(10.0, 20.0, 30.0)] == [(5, 3)]
    tree, labels = synapses_in_space(iter([((1.0, 2.0, 3.0), 7, 1)]), N=1)
    assert tree.n == 1
