"""Pure forge compute and mesh file names (no storage): milliseconds each."""

from __future__ import annotations

import numpy as np
import pytest
from cloudvolume.datasource.precomputed.spatial_index import SpatialIndex
from cloudvolume.lib import Bbox
from mapbuffer import IntMap, MapBuffer

from igneous import meshes
from igneous.ops import mesh as ops
from igneous.tasks.mesh.draco import calculate_draco_quantization_bits_and_range, draco_encoding_settings


def cube(n=16, lo=4, hi=10):
    a = np.zeros((n, n, n), dtype=np.uint16, order="F")
    a[lo:hi, lo:hi, lo:hi] = 1
    return a


def test_vertices_are_voxel_centred_absolute_nm():
    ((label, mesh),) = ops.forge_box(cube(), (4, 4, 40), origin_vox=(25, 50, 10), simplification_factor=0)
    assert label == 1 and mesh.vertices.dtype == np.float32
    np.testing.assert_array_equal(mesh.vertices.min(0), [100 + 16, 200 + 16, 400 + 160])
    np.testing.assert_array_equal(mesh.vertices.max(0), [100 + 40, 200 + 40, 400 + 400])


@pytest.mark.parametrize("lo, hi", [((1, 0, 0), (0, 0, 1)), ((1, 1, 1), (1, 1, 1)), ((0, 0, 0), (0, 0, 0))])
def test_padding_only_where_asked(lo, hi):
    a = cube(8, 0, 8)
    padded = ops.pad_labels(a, lo, hi)
    assert padded.shape == tuple(np.add(np.add(a.shape, lo), hi))
    assert padded.flags.f_contiguous and padded.sum() == a.sum()
    x, y, z = lo
    np.testing.assert_array_equal(padded[x : x + 8, y : y + 8, z : z + 8], a)


def test_closed_edge_padding_on_dataset_faces_only():
    lo, hi = ops.closed_edge_padding((0, 10, 5), (20, 30, 9), (0, 0, 5), (40, 30, 9), closed=True)
    assert lo.tolist() == [1, 0, 1] and hi.tolist() == [0, 1, 1]
    lo, hi = ops.closed_edge_padding((0, 10, 5), (20, 30, 9), (0, 0, 5), (40, 30, 9), closed=False)
    assert not lo.any() and not hi.any()


def boundary_edges(v, f) -> int:
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64), axis=1)
    _, counts = np.unique(e[:, 0] * len(v) + e[:, 1], return_counts=True)
    return int((counts == 1).sum())


def ball(shape=(64, 64, 32)):
    x, y, z = np.mgrid[: shape[0], : shape[1], : shape[2]]
    return (((x - 30) ** 2 + (y - 32) ** 2 + ((z - 16) * 2) ** 2) < 22**2).astype(np.uint16)


@pytest.mark.parametrize("res", [(8, 8, 40), (3.6, 3.6, 33.3), (4.1, 5.7, 45.1)])
@pytest.mark.parametrize("reduction, error", [(0, None), (100, 40), (100, 8)])
def test_seam_vertices_identical_on_both_sides(reduction, error, res):
    """Two boxes meeting on a shared voxel layer, with origins far from 0 and resolutions that are
    not exact in binary: the seam vertices must be bit-identical so the fused mesh is closed."""
    b = ball()
    origin = np.array([1000, 2000, 300])
    left = ops.pad_labels(np.asfortranarray(b[:33]), (1, 1, 1), (0, 1, 1))
    right = ops.pad_labels(np.asfortranarray(b[32:]), (0, 1, 1), (1, 1, 1))
    ((_, a),) = ops.forge_box(left, res, origin + (-1, -1, -1), reduction, error)
    ((_, c),) = ops.forge_box(right, res, origin + (32, -1, -1), reduction, error)
    plane = np.float32((origin[0] + 32.5) * np.float64(res[0]))  # centre plane of the shared layer x = 32
    seam_a = {tuple(v) for v in a.vertices[a.vertices[:, 0] == plane]}
    seam_c = {tuple(v) for v in c.vertices[c.vertices[:, 0] == plane]}
    assert len(seam_a) > 20 and seam_a == seam_c
    v, f = ops.fuse([(a.vertices, a.faces), (c.vertices, c.faces)])
    assert boundary_edges(v, f) == 0  # the fused ball is watertight


@pytest.mark.parametrize("res", [(8, 8, 40), (3.6, 3.6, 33.3)])
def test_forge_blocks_welds_sub_blocks_into_one_closed_mesh(res):
    """The multi-block path: sub-blocks share voxel layers like tasks do, and their pieces weld
    into one closed mesh with the whole box's bounds."""
    b = ball()
    pads = ((1, 1, 1), (1, 1, 1))
    ((_, whole_v, whole_f),) = ops.forge_blocks(b, res, (5, 6, 7), *pads, block=(100, 100, 100))
    ((_, v, f),) = ops.forge_blocks(b, res, (5, 6, 7), *pads, block=(16, 24, 8))
    assert boundary_edges(v, f) == 0 and boundary_edges(whole_v, whole_f) == 0
    np.testing.assert_allclose(v.min(0), whole_v.min(0), atol=float(max(res)))
    np.testing.assert_allclose(v.max(0), whole_v.max(0), atol=float(max(res)))


def test_seam_safe_dust():
    a = np.zeros((10, 10, 10), dtype=np.uint16)
    a[2:4, 2:4, 2:4] = 1  # small, interior: dust
    a[8:10, 2:4, 2:4] = 2  # small, touches the high x face
    a[0:2, 6:8, 6:8] = 3  # small, touches the low x face
    a[3:9, 5:9, 0:9] = 4  # large
    assert ops.seam_safe_dust(a, 10, [(0, 0), (0, 1)]).tolist() == [1]
    assert ops.seam_safe_dust(a, 10, []).tolist() == [1, 2, 3]  # every face on the dataset bounds


def test_precomputed_round_trip_and_weld():
    ((_, mesh),) = ops.forge_box(cube(), (4, 4, 40), (0, 0, 0), 0)
    data = ops.encode_precomputed(mesh.vertices, mesh.faces)
    assert data == mesh.to_precomputed()
    v, f = ops.decode_fragment(data)
    np.testing.assert_array_equal(v, mesh.vertices)
    v2, f2 = ops.weld(np.concatenate([v, v]), np.concatenate([f, f + len(v)]))
    assert len(v2) == len(np.unique(v, axis=0)) and len(f2) == 2 * len(f)
    assert ops.mesh_bounds_nm(np.array([[0.5, 1, 2], [3, 4.2, 5]], np.float32)) == [0, 1, 2, 3, 5, 5]


@pytest.mark.parametrize("resolution", [[8, 8, 40], [8.0, 8.0, 40.0], [4.25, 4.25, 40], [4.5, 4.25, 33.3]])
def test_spatial_index_names_are_cloudvolumes(resolution):
    bounds = Bbox((7, 11, 5), (107, 91, 45))
    shape = (48, 40, 16)
    info = meshes.legacy_mesh_info(0, shape, resolution)
    assert info["spatial_index"]["resolution"] == resolution
    config = type("Config", (), {"spatial_index_db": None, "progress": False})()
    index = SpatialIndex(
        "file:///nowhere", bounds, info["spatial_index"]["chunk_size"], config=config, resolution=resolution
    )
    theirs = list(index.index_file_paths_for_bbox(index.physical_bounds))
    ours = meshes.expected_spatial_names(bounds, info)
    assert ours == theirs
    # the per-axis rendering of a whole plan names each box as the forge task that writes it does
    assert ours == [meshes.spatial_index_filename(b, resolution) for b in meshes.grid_boxes(bounds, shape)]
    for name, box in zip(ours, meshes.grid_boxes(bounds, shape)):
        assert meshes.box_from_spatial_filename(name, resolution) == box
        assert meshes.frags_filename_from_spatial(name, resolution) == f"{box.to_filename()}.frags"


def test_default_mesh_dir():
    assert meshes.default_mesh_dir(0, 40.0) == "mesh_mip_0_err_40"
    assert meshes.default_mesh_dir(2, 12.5) == "mesh_mip_2_err_12.5"


@pytest.mark.parametrize("label", [3, 2**63 - 1, 2**63 + 3, 2**64 - 1])
def test_intmap_and_mapbuffer_lookups_of_huge_labels(label):
    im = IntMap({label: 7, 5: 1})
    assert im.get(meshes.intmap_key(label)) == 7
    mb = MapBuffer({label: b"abc", 5: b"d"}, compress="br")
    assert mb.get(meshes.intmap_key(label)) == b"abc"


def test_draco_lattice_is_global():
    bits, qrange, bin_size = calculate_draco_quantization_bits_and_range(449 * 40, 5)
    assert bin_size <= 5 and bin_size == int(bin_size) and qrange >= 449 * 40 + bin_size
    assert qrange == bin_size * (2**bits - 1)
    a = draco_encoding_settings((448, 448, 448), (0, 0, 0), (8, 8, 40), 1, False)
    b = draco_encoding_settings((448, 448, 448), (448, 448, 448), (8, 8, 40), 1, False)
    step = a["quantization_range"] / (2 ** a["quantization_bits"] - 1)
    assert a["quantization_range"] == b["quantization_range"]
    assert all(o % step == 0 for o in b["quantization_origin"])
