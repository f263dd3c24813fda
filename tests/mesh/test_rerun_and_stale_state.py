"""Meshing run twice, out of order, or over stale state: it finishes correctly or refuses, and
never reports success for meshes it did not finish."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

from igneous.errors import InvalidParameterError
from igneous.task_creation.mesh import (
    create_mesh_deletion_tasks,
    create_mesh_manifest_tasks,
    create_meshing_tasks,
    create_sharded_multires_mesh_tasks,
    create_spatial_index_mesh_tasks,
    create_unsharded_multires_mesh_tasks,
)
from igneous_cli import main
from tests.conftest import tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import edge_use, mesh_weld

SHAPE = (24, 24, 16)


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


@pytest.fixture
def small(layer, crop_b):
    crop = crop_b[:48, :48, :32]
    return crop, layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)


def mesh_dir_of(path):
    return CloudVolume(path).info["mesh"]


def test_a_forge_and_merge_run_twice_give_the_same_files(small, tmp_path):
    crop, path = small
    for _ in range(2):
        run(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False))
        run(create_mesh_manifest_tasks(path))
        if _ == 0:
            first = {k: v for k, v in tree(tmp_path / "src").items() if "provenance" not in k}
    again = {k: v for k, v in tree(tmp_path / "src").items() if "provenance" not in k}
    assert again == first


def test_a_forge_over_another_grid_or_merged_meshes_is_refused(small, tmp_path):
    crop, path = small
    run(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False))
    before = tree(tmp_path / "src")
    with pytest.raises(InvalidParameterError, match="forge task shape 24,24,16"):
        create_meshing_tasks(path, 0, shape=(16, 16, 16), simplification=False)
    assert tree(tmp_path / "src") == before

    run(create_unsharded_multires_mesh_tasks(path, num_lod=1))
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "forge", path, "--shape", "24,24,16"])
    assert result.exit_code == 2 and "holds merged neuroglancer_multilod_draco meshes" in result.output
    assert tree(tmp_path / "src") == before


def test_an_index_built_before_the_forge_does_not_vouch_for_unforged_boxes(small, tmp_path):
    crop, path = small
    run(create_spatial_index_mesh_tasks(path, shape=SHAPE))
    tasks = list(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False))
    run(tasks[:1])  # the forge stops after one box
    with pytest.raises(InvalidParameterError, match=f"{len(tasks) - 1} of {len(tasks)} task boxes have no"):
        create_mesh_manifest_tasks(path)
    run(tasks[1:])
    run(create_mesh_manifest_tasks(path))
    got = CloudVolume(path, progress=False).mesh.get(int(np.unique(crop)[-1]), fuse=False)
    assert len(got) == 1


def test_a_spatial_index_db_exported_mid_forge_is_refused(small, tmp_path):
    crop, path = small
    tasks = list(create_meshing_tasks(path, 0, shape=SHAPE, sharded=True))
    run(tasks[:2])
    db = tmp_path / "index.db"
    result = CliRunner().invoke(main, ["mesh", "spatial-index", "db", path, f"sqlite://{db}", "--allow-missing"])
    assert result.exit_code == 0, result.output
    run(tasks[2:])
    before = tree(tmp_path / "src")
    with pytest.raises(InvalidParameterError, match=f"exported while {len(tasks) - 2} forge boxes had no .spatial"):
        create_sharded_multires_mesh_tasks(path, spatial_index_db=f"sqlite://{db}")
    assert tree(tmp_path / "src") == before
    with sqlite3.connect(db) as conn:  # the export recorded the boxes it did not find
        assert conn.execute("select count(*) from igneous_missing_files").fetchone()[0] == len(tasks) - 2


def test_a_spatial_index_over_an_unfinished_forge_is_refused(small, tmp_path):
    crop, path = small
    tasks = list(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False))
    run(tasks[:1])  # the forge stops after one box
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "spatial-index", "create", path, "--shape", "24,24,16"])
    assert result.exit_code == 2, result.output
    assert f"{len(tasks) - 1} of {len(tasks)} boxes have no .spatial file" in result.output
    assert tree(tmp_path / "src") == before
    run(tasks[1:])
    run(create_spatial_index_mesh_tasks(path, shape=SHAPE))  # a finished forge's index may be rebuilt
    run(create_mesh_manifest_tasks(path))
    assert CloudVolume(path, progress=False).mesh.get(int(np.unique(crop)[-1]), fuse=False)


def test_draco_forges_cannot_become_legacy_meshes(small, tmp_path):
    crop, path = small
    run(create_meshing_tasks(path, 0, shape=SHAPE, encoding="draco"))
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "merge", path])
    assert result.exit_code == 2 and "Draco fragments, which legacy meshes cannot hold" in result.output
    assert tree(tmp_path / "src") == before
    # the multires merge reads them, and CloudVolume reads what it wrote
    run(create_unsharded_multires_mesh_tasks(path, num_lod=1))
    label = int(np.unique(crop)[-1])
    mesh = CloudVolume(path, progress=False).mesh.get(label, lod=0)[label]
    v, f = mesh_weld(mesh.vertices, mesh.faces)
    assert len(f) > 0 and edge_use(f)[0] == 0


def test_a_sharded_draco_forge_writes_precomputed_frags(small):
    from mapbuffer import MapBuffer

    crop, path = small
    run(create_meshing_tasks(path, 0, shape=SHAPE, encoding="draco", sharded=True))
    cf = CloudFiles(f"{path}/{mesh_dir_of(path)}")
    frags = [n for n in cf.list() if n.endswith(".frags")]
    entries = MapBuffer(cf.get(frags[0])).items()
    assert entries and all(not bytes(data).startswith(b"DRACO") for _, data in entries)


def test_a_re_forge_with_other_compression_replaces_every_fragment(small, tmp_path):
    crop, path = small
    run(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False, compress="gzip"))
    run(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False, compress=None))
    directory = tmp_path / "src" / mesh_dir_of(path)
    names = [n for n in os.listdir(directory) if n.count(":") == 2]
    assert names and not [n for n in names if n.endswith(".gz")]
    run(create_mesh_manifest_tasks(path))
    manifest = CloudFiles(f"{path}/{mesh_dir_of(path)}").get_json(f"{int(np.unique(crop)[-1])}:0")
    assert len(manifest["fragments"]) == len(set(manifest["fragments"]))


def test_mesh_rm_can_run_again_after_its_tasks_were_lost(small, tmp_path):
    crop, path = small
    run(create_meshing_tasks(path, 0, shape=SHAPE, simplification=False))
    directory = tmp_path / "src" / mesh_dir_of(path)
    create_mesh_deletion_tasks(path)  # deletes the info now; its tasks are dropped here
    assert not (directory / "info").exists() and os.listdir(directory)
    result = CliRunner().invoke(main, ["mesh", "rm", path])
    assert result.exit_code == 0, result.output
    assert not os.path.exists(directory) or not os.listdir(directory)
    result = CliRunner().invoke(main, ["mesh", "rm", path])
    assert result.exit_code == 2 and "run `igneous mesh forge` first" in result.output


def test_missing_global_counts_are_not_remembered_by_a_worker(small, tmp_path):
    from igneous.task_creation.voxels import accumulate_voxel_counts, create_voxel_counting_tasks
    from igneous.tasks.mesh import mesh as mesh_tasks

    crop, path = small
    assert mesh_tasks._voxel_counts(path, CloudVolume(path).meta.key(0)) is None
    run(create_voxel_counting_tasks(path, 0))
    accumulate_voxel_counts(path, 0, progress=False)
    counts = mesh_tasks._voxel_counts(path, CloudVolume(path).meta.key(0))
    label = int(np.unique(crop)[-1])
    assert counts is not None and counts[label] == int((crop == label).sum())
