"""Legacy merge: manifests written, checked, and read back through CloudVolume (``vol.mesh.get``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.task_creation.mesh import create_mesh_manifest_tasks, create_meshing_tasks
from igneous.tasks.mesh.mesh import MeshManifestFilesystemTask, MeshManifestPrefixTask
from igneous_cli import main
from tests.conftest import tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import edge_use, mesh_weld, surface_area, zmesh_whole_volume

SHAPE = (40, 40, 24)


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def forge_and_merge(backend, path, simplify=False):
    shape = ",".join(map(str, SHAPE))
    flag = "--simplify" if simplify else "--skip-simplify"
    backend.run(
        create_meshing_tasks,
        ["mesh", "forge", path, "--shape", shape, flag],
        path,
        0,
        shape=SHAPE,
        simplification=simplify,
    )
    backend.run(create_mesh_manifest_tasks, ["mesh", "merge", path], path)


def test_legacy_merge_reads_back_equal_to_whole_volume(backend, layer, crop_b):
    crop = crop_b[:, :, :40]  # smaller in the fq/cli runs, still 2 seams in z and a clipped last task
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    forge_and_merge(backend, path)

    vol = CloudVolume(path, progress=False)
    oracle = zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET)
    got = vol.mesh.get(sorted(oracle), fuse=False)  # fuse=True welds with np.vectorize (slow)
    assert set(got) == set(oracle)
    for label, (ov, of) in oracle.items():
        fv, ff = mesh_weld(got[label].vertices, got[label].faces)
        ov, of = mesh_weld(ov, of)
        np.testing.assert_array_equal(np.r_[fv.min(0), fv.max(0)], np.r_[ov.min(0), ov.max(0)], err_msg=str(label))
        assert surface_area(fv, ff) == pytest.approx(surface_area(ov, of), rel=1e-6), label
        assert edge_use(ff)[0] == 0, label

    cf = CloudFiles(f"{path}/{vol.info['mesh']}")
    for label in list(oracle)[:10]:
        frags = sorted(n for n in cf.list(prefix=f"{label}:0:"))
        assert cf.get_json(f"{label}:0") == {"fragments": frags}


def test_prefix_tasks_write_the_same_manifests_as_the_filesystem_task(layer, crop_b):
    path = layer(crop_b[:48, :48, :32], resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    run(create_meshing_tasks(path, 0, shape=(20, 24, 20), simplification=False))
    mesh_dir = CloudVolume(path).info["mesh"]
    MeshManifestFilesystemTask(path, mesh_dir=mesh_dir)
    cf = CloudFiles(f"{path}/{mesh_dir}")
    by_scan = {n: cf.get_json(n) for n in cf.list() if len(n.split(":")) == 2}
    cf.delete(list(by_scan))
    for prefix in meshes.legacy_merge_prefixes(3):
        MeshManifestPrefixTask(path, prefix, mesh_dir=mesh_dir)
    by_prefix = {n: cf.get_json(n) for n in cf.list() if len(n.split(":")) == 2}
    assert by_prefix == by_scan and len(by_scan) > 10


def test_legacy_merge_prefixes_cover_every_label_once():
    prefixes = meshes.legacy_merge_prefixes(3)
    for label in [1, 9, 10, 99, 100, 123, 999, 1000, 123456, 2**64 - 1]:
        name = f"{label}:0:0-1_0-1_0-1"
        assert sum(name.startswith(p) for p in prefixes) == 1, label


def test_merge_refuses_an_incomplete_forge_naming_the_box(layer, crop_b, tmp_path):
    path = layer(crop_b[:48, :48, :32], resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    run(create_meshing_tasks(path, 0, shape=(24, 24, 32), simplification=False))
    mesh_dir = CloudVolume(path).info["mesh"]
    spatial = sorted(n for n in os.listdir(tmp_path / "src" / mesh_dir) if ".spatial" in n)
    assert len(spatial) == 4
    os.remove(tmp_path / "src" / mesh_dir / spatial[1])
    before = tree(tmp_path / "src")
    with pytest.raises(InvalidParameterError, match=r"1 of 4 task boxes have no \.spatial file \(e\.g\. "):
        create_mesh_manifest_tasks(path)
    result = CliRunner().invoke(main, ["mesh", "merge", path])
    assert result.exit_code == 2
    assert "mesh forge is incomplete" in result.output and spatial[1].split(".spatial")[0][:20] in result.output
    assert tree(tmp_path / "src") == before


def test_merge_before_forge_is_refused(layer, crop_b, tmp_path):
    path = layer(crop_b[:16, :16, :8], resolution=RESOLUTION)
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "merge", path])
    assert result.exit_code == 2
    assert "run `igneous mesh forge` first" in result.output
    assert len([ln for ln in result.output.strip().splitlines() if ln.startswith("Error")]) == 1
    assert tree(tmp_path / "src") == before


def test_merge_refuses_object_ids_the_forge_never_found(layer, crop_b, tmp_path):
    crop = crop_b[:24, :24, :16]
    path = layer(crop, resolution=RESOLUTION)
    absent, present = int(crop.max()) + 1, int(np.unique(crop)[-1])
    run(create_meshing_tasks(path, 0, shape=(16, 16, 16), simplification=False, object_ids=[absent, present]))
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "merge", path])
    assert result.exit_code == 2, result.output
    assert f"object_ids {absent} were requested at forge but do not occur in the segmentation" in result.output
    assert tree(tmp_path / "src") == before


def test_queued_manifest_message_from_another_igneous_runs_here(layer, crop_b):
    import json

    from taskqueue.queueablefns import totask

    path = layer(crop_b[:24, :24, :16], resolution=RESOLUTION)
    run(create_meshing_tasks(path, 0, shape=(16, 16, 16), simplification=False))
    mesh_dir = CloudVolume(path).info["mesh"]
    label = int(np.unique(crop_b[:24, :24, :16])[-1])
    prefix = str(label)[:3]
    message = [
        ["igneous.tasks.mesh.mesh", "MeshManifestPrefixTask"],
        [path, prefix],
        {"lod": 0, "mesh_dir": mesh_dir},
        -1,
    ]
    totask(json.loads(json.dumps(message)))()
    frags = sorted(CloudFiles(f"{path}/{mesh_dir}").list(prefix=f"{label}:0:"))
    assert frags and CloudFiles(f"{path}/{mesh_dir}").get_json(f"{label}:0") == {"fragments": frags}
