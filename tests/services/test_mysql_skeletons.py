"""The sharded skeleton merge finds fragments through a spatial-index database exported by
`skeleton spatial-index db`: sqlite and a real MariaDB (``mariadb`` fixture) give the same
shards as the merge that reads the ``.spatial`` files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles

import igneous.task_creation as tc
from igneous_cli import main
from tests.conftest import make_layer
from tests.mesh.conftest import CROP_B, sample_crop  # noqa: F401  (session fixture)
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET, run

SKEL_DIR = "skeletons_mip_0"


@pytest.fixture(scope="module")
def sharded_forge(tmp_path_factory, sample_crop):  # noqa: F811
    data = sample_crop(*CROP_B)[:64, :64, :48].astype(np.uint64)
    root = tmp_path_factory.mktemp("skeleton_db")
    path = make_layer(f"file://{root / 'seg'}", data, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK)
    run(tc.create_skeletonizing_tasks(path, 0, shape=(40, 40, 32), dust_threshold=200, sharded=True))
    return path


def copy_of(path: str, dest) -> str:
    shutil.copytree(path[len("file://") :], dest)
    return f"file://{dest}"


def shards(path: str) -> dict:
    cf = CloudFiles(f"{path}/{SKEL_DIR}")
    return {name: cf.get(name) for name in sorted(cf.list()) if name.endswith(".shard")}


def merged_from(path: str, database=None) -> dict:
    tasks = tc.create_sharded_skeleton_merge_tasks(path, 500, 0, max_labels_per_shard=8, spatial_index_db=database)
    if database:  # the planner checked the .spatial markers; the tasks must use the database
        cf = CloudFiles(f"{path}/{SKEL_DIR}")
        for name in [n for n in cf.list() if n.endswith(".spatial")]:
            cf.delete(name)
    run(tasks)
    return shards(path)


def export(path: str, database: str) -> None:
    result = CliRunner().invoke(main, ["-p", "2", "skeleton", "spatial-index", "db", path, database])
    assert result.exit_code == 0, result.output


def test_merge_from_sqlite_and_mysql_equals_merge_from_files(sharded_forge, mysql_db, tmp_path):
    from_files = copy_of(sharded_forge, tmp_path / "files")
    from_sqlite = copy_of(sharded_forge, tmp_path / "sqlite")
    from_mysql = copy_of(sharded_forge, tmp_path / "mysql")
    sqlite_db = f"sqlite://{tmp_path / 'index.db'}"
    export(from_sqlite, sqlite_db)
    export(from_mysql, mysql_db)
    reference = merged_from(from_files)
    assert len(reference) >= 2
    assert merged_from(from_sqlite, sqlite_db) == reference
    assert merged_from(from_mysql, mysql_db) == reference
