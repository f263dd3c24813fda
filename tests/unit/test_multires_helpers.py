"""SPEC §3.4 multires helpers: each parameter of generate_lods does what it says; octree helpers."""

from __future__ import annotations

import numpy as np
import pytest
import zmesh

from igneous.tasks.mesh import multires as mt
from tests.oracles import surface_area


@pytest.fixture(scope="module")
def sphere():
    """A closed mesh of a ball of radius 40 voxels (model units), ~30k triangles."""
    x, y, z = np.mgrid[:96, :96, :96]
    labels = (((x - 48) ** 2 + (y - 48) ** 2 + (z - 48) ** 2) < 40**2).astype(np.uint32)
    mesher = zmesh.Mesher((1, 1, 1))
    mesher.mesh(np.asfortranarray(labels))
    return mesher.get(1, normals=False, reduction_factor=0)


def faces(lods):
    return [len(m.faces) for m in lods]


def test_generate_lods_num_lods_and_decimation(sphere):
    lods = mt.generate_lods(7, sphere, None, (8, 8, 8), 3)
    assert len(lods) == 3 and all(m.segid == 7 for m in lods)
    n = len(sphere.faces)
    assert faces(lods)[0] == n
    for k in (1, 2):
        assert abs(faces(lods)[k] - n / 2**k) <= 0.05 * n / 2**k + 4  # halve per LOD
    quartered = mt.generate_lods(7, sphere, None, (8, 8, 8), 3, decimation_factor=4)
    assert abs(faces(quartered)[1] - n / 4) <= 0.05 * n / 4 + 4


def test_generate_lods_extent_limits_the_number_of_levels(sphere):
    # the ball spans ~79 voxels: 79 / 64 allows one halving, 79 / 8 three
    assert len(mt.generate_lods(1, sphere, None, (64, 64, 64), 5)) == 1 + 0
    assert len(mt.generate_lods(1, sphere, None, (32, 32, 32), 5)) == 2
    assert len(mt.generate_lods(1, sphere, None, (8, 8, 8), 5)) == 4
    # mesh_shape is what is measured, not the vertices
    assert len(mt.generate_lods(1, sphere, (512, 512, 512), (64, 64, 64), 5)) == 4


def test_generate_lods_caps_triangles_per_chunk(sphere):
    lods = mt.generate_lods(1, sphere, None, (32, 32, 32), 2, max_triangle_target_per_chunk=100)
    assert faces(lods)[1] <= 100  # LOD 1 is the top: one chunk


def test_generate_lods_aggressiveness_and_progress(sphere, capsys):
    gentle = mt.generate_lods(1, sphere, None, (8, 8, 8), 2, aggressiveness=2)
    fierce = mt.generate_lods(1, sphere, None, (8, 8, 8), 2, aggressiveness=12)
    assert not np.array_equal(gentle[1].vertices, fierce[1].vertices)
    mt.generate_lods(1, sphere, None, (8, 8, 8), 2, progress=True)
    assert "LODs of 1" in capsys.readouterr().err
    mt.generate_lods(1, sphere, None, (8, 8, 8), 2, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="decimation_factor"):
        mt.generate_lods(1, sphere, None, (8, 8, 8), 2, decimation_factor=1)


def test_determine_mesh_shape_from_lods(sphere):
    lods = mt.generate_lods(1, sphere, None, (8, 8, 8), 3)
    want = np.max([m.vertices.max(0) for m in lods], 0) - np.min([m.vertices.min(0) for m in lods], 0)
    np.testing.assert_allclose(mt.determine_mesh_shape_from_lods(lods), want)
    np.testing.assert_allclose(mt.determine_mesh_shape_from_lods([(sphere.vertices, sphere.faces)]),
                               sphere.vertices.max(0) - sphere.vertices.min(0))  # fmt: skip


def test_retriangulate_mesh_puts_every_triangle_in_one_cell(sphere):
    offset, scale = np.array([8.3, 8.3, 8.3]), np.array([20.0, 20.0, 20.0])  # planes cross triangles
    out = mt.retriangulate_mesh(sphere, offset, scale)
    tri = out.vertices[out.faces].astype(np.float64)
    cells_lo = np.floor((tri.min(axis=1) - offset) / scale + 1e-4)
    cells_hi = np.floor((tri.max(axis=1) - offset) / scale - 1e-4)
    assert np.array_equal(cells_lo, cells_hi)
    assert len(out.faces) > len(sphere.faces)  # cut triangles were split
    assert surface_area(out.vertices, out.faces) == pytest.approx(surface_area(sphere.vertices, sphere.faces), 1e-4)


def test_create_octree_level_from_mesh(sphere):
    offset = sphere.vertices.min(0).astype(np.float64)
    chunk = np.ceil((sphere.vertices.max(0) - offset) / 4)
    meshes, positions = mt.create_octree_level_from_mesh(sphere, chunk, 1, 3, offset, 2)
    assert positions.shape[1] == 3 and len(meshes) == len(positions) == 8  # the ball fills all 8 cells
    codes = [mt.cmp_zorder(a, b) for a, b in zip(positions[:-1], positions[1:])]
    assert all(c < 0 for c in codes)  # Z-order
    area = sum(surface_area(m.vertices, m.faces) for m in meshes)
    assert area == pytest.approx(surface_area(sphere.vertices, sphere.faces), 1e-4)
    for m, pos in zip(meshes, positions):
        lo = offset + pos * chunk * 2
        assert np.all(m.vertices >= lo - 1e-3) and np.all(m.vertices <= lo + chunk * 2 + 1e-3)
    with pytest.raises(ValueError, match="power of two"):
        mt.create_octree_level_from_mesh(sphere, chunk, 0, 3, offset, 3)
