"""Forging, checked against zmesh on the whole volume (docs/design-meshing.md §4.4).

Task shapes do not divide the volume and the layer has a non-zero voxel offset, so every
kind of seam (clipped last tasks, tasks touching the dataset faces) is exercised.
"""

from __future__ import annotations

import fastremap
import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

from igneous import meshes
from igneous.ops.mesh import decode_fragment, fuse
from igneous.task_creation.mesh import create_meshing_tasks
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import edge_use, is_closed, mesh_weld, surface_area, zmesh_whole_volume


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def fused_fragments(path: str, mesh_dir: str) -> dict:
    """Every label's fragments read straight from the files, fused (no CloudVolume reader)."""
    cf = CloudFiles(f"{path}/{mesh_dir}")
    per_label = {}
    for name in cf.list():
        parsed = meshes.parse_fragment_name(name)
        if parsed:
            per_label.setdefault(parsed[0], []).append(name)
    out = {}
    for label, names in per_label.items():
        out[label] = fuse(decode_fragment(cf.get(n)) for n in names)
    return out


def bbox(v):
    return np.concatenate([v.min(axis=0), v.max(axis=0)])


def assert_exact(fused: dict, oracle: dict):
    assert set(fused) == set(oracle)
    for label, (ov, of) in oracle.items():
        fv, ff = fused[label]
        ov, of = mesh_weld(ov, of)
        np.testing.assert_array_equal(bbox(fv), bbox(ov), err_msg=f"label {label}")
        assert surface_area(fv, ff) == pytest.approx(surface_area(ov, of), rel=1e-6), label
        assert edge_use(ff)[0] == 0 or not is_closed(ov, of), label
        assert (edge_use(ff)[0] == 0) == (edge_use(of)[0] == 0), label


@pytest.mark.parametrize(
    "closed, crop, shape, dtype",
    [(True, "crop_a", (48, 40, 56), np.uint64), (False, "crop_b", (40, 40, 24), np.uint32)],
    ids=["closed-edges-128", "open-edges-96"],
)
def test_unsimplified_forge_equals_whole_volume_zmesh(layer, request, closed, crop, shape, dtype):
    labels = request.getfixturevalue(crop).astype(dtype)
    path = layer(labels, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    run(create_meshing_tasks(path, 0, shape=shape, simplification=False, closed_dataset_edges=closed))

    mesh_dir = CloudVolume(path).info["mesh"]
    assert mesh_dir == "mesh_mip_0_err_40"
    fused = fused_fragments(path, mesh_dir)
    oracle = zmesh_whole_volume(labels, RESOLUTION, VOXEL_OFFSET, closed_edges=closed)
    assert set(oracle) == set(fastremap.unique(labels)) - {0}
    assert_exact(fused, oracle)
    if closed:
        assert all(is_closed(*m) for m in fused.values())


def test_simplified_forge_is_closed_and_close_to_whole_volume(layer, crop_b):
    path = layer(crop_b, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    run(create_meshing_tasks(path, 0, shape=(40, 40, 24), max_simplification_error=40))
    fused = fused_fragments(path, "mesh_mip_0_err_40")
    exact = zmesh_whole_volume(crop_b, RESOLUTION, VOXEL_OFFSET)
    labels, counts = fastremap.unique(crop_b, return_counts=True)
    big = {int(lbl) for lbl, c in zip(labels, counts) if c >= 1000 and lbl}
    assert set(fused) == set(exact)
    total_f = total_o = 0.0
    for label, (ov, of) in exact.items():
        fv, ff = fused[label]
        assert edge_use(ff)[0] == 0, f"label {label} has gaps"
        np.testing.assert_allclose(bbox(fv), bbox(ov), atol=40, err_msg=f"label {label}")
        area_f, area_o = surface_area(fv, ff), surface_area(ov, of)
        if label in big:
            assert area_f == pytest.approx(area_o, rel=0.05), label
            total_f += area_f
            total_o += area_o
    assert total_f == pytest.approx(total_o, rel=0.03)
