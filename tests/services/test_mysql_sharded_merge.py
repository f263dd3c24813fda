"""The sharded multires merge locates labels through a spatial-index database exported by
`mesh spatial-index db`: to sqlite and to a real MariaDB (``mariadb`` fixture), it writes the
same shards as the merge that reads the ``.spatial`` files, and ``vol.mesh.get`` reads every
label back. MariaDB also takes labels ≥ 2^63, which sqlite refuses."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from igneous.task_creation.multires import create_sharded_multires_mesh_tasks
from igneous_cli import main
from tests.mesh.conftest import CROP_B, sample_crop  # noqa: F401  (session fixture)
from tests.mesh.test_multires import MESH_DIR, forge, high_labels, run

MERGE = dict(num_lod=1, max_labels_per_shard=25, min_chunk_size=(32, 32, 32))


@pytest.fixture(scope="module")
def small_crop(sample_crop):  # noqa: F811
    return sample_crop(*CROP_B)[:64, :64, :48]


@pytest.fixture(scope="module")
def sharded_forge(tmp_path_factory, small_crop):
    return forge(tmp_path_factory, "plain_sharded", small_crop.astype(np.uint64), sharded=True)


@pytest.fixture(scope="module")
def high_sharded_forge(tmp_path_factory, small_crop):
    return forge(tmp_path_factory, "high_sharded", high_labels(small_crop), sharded=True)


def copy_of(path: str, dest) -> str:
    shutil.copytree(path[len("file://") :], dest)
    return f"file://{dest}"


def export(path: str, database: str) -> None:
    result = CliRunner().invoke(main, ["-p", "2", "mesh", "spatial-index", "db", path, database])
    assert result.exit_code == 0, result.output


def shards(path: str) -> dict:
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    return {name: cf.get(name) for name in sorted(cf.list()) if name.endswith(".shard")}


def meshes_of(path: str, labels) -> dict:
    got = CloudVolume(path).mesh.get(labels, lod=0)
    return {int(k): (np.asarray(m.vertices), np.asarray(m.faces)) for k, m in got.items()}


def without_spatial_files(path: str) -> None:
    """Delete the .spatial files: merge tasks that still work read the database, not the files."""
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    names = [n for n in cf.list() if n.endswith(".spatial")]
    assert names
    for name in names:  # one at a time (DESIGN §4: moto-safe habit, cheap here)
        cf.delete(name)


def merged_from(path: str, database=None) -> dict:
    tasks = create_sharded_multires_mesh_tasks(path, spatial_index_db=database, **MERGE)
    assert all(t.keywords["spatial_index_db"] == database for t in tasks)
    if database:  # the planner checked the forge's .spatial markers; the tasks must use the DB
        without_spatial_files(path)
    run(tasks)
    return shards(path)


def assert_same_meshes(a: str, b: str, labels) -> None:
    ma, mb = meshes_of(a, labels), meshes_of(b, labels)
    assert set(ma) == set(mb) == set(labels)
    for label in labels:
        assert len(ma[label][1]) > 0, label
        np.testing.assert_array_equal(ma[label][0], mb[label][0])
        np.testing.assert_array_equal(ma[label][1], mb[label][1])


def test_merge_from_sqlite_and_mysql_equals_merge_from_files(sharded_forge, small_crop, mysql_db, tmp_path):
    labels = sorted(int(x) for x in np.unique(small_crop) if x != 0)
    from_files = copy_of(sharded_forge, tmp_path / "files")
    from_sqlite = copy_of(sharded_forge, tmp_path / "sqlite")
    from_mysql = copy_of(sharded_forge, tmp_path / "mysql")
    sqlite_db = f"sqlite://{tmp_path / 'index.db'}"
    export(from_sqlite, sqlite_db)
    export(from_mysql, mysql_db)

    reference = merged_from(from_files)
    assert len(reference) >= 2  # several shards, so labels really are looked up per shard
    assert merged_from(from_sqlite, sqlite_db) == reference
    assert merged_from(from_mysql, mysql_db) == reference
    assert_same_meshes(from_files, from_sqlite, labels)
    assert_same_meshes(from_files, from_mysql, labels)


def test_merge_of_labels_beyond_2_63_through_mysql(high_sharded_forge, small_crop, mysql_db, tmp_path):
    data = high_labels(small_crop)
    labels = sorted(int(x) for x in np.unique(data) if x != 0)
    assert max(labels) >= 2**63
    from_files = copy_of(high_sharded_forge, tmp_path / "files")
    from_mysql = copy_of(high_sharded_forge, tmp_path / "mysql")
    export(from_mysql, mysql_db)
    assert merged_from(from_mysql, mysql_db) == merged_from(from_files)
    assert_same_meshes(from_files, from_mysql, labels)
