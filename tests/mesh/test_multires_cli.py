"""The multires commands: `mesh merge-sharded`, `mesh merge --nlod N`, `mesh xfer --sharded`,
through the CLI and, for the sharded merge, through a real fq:// queue and `igneous execute`
(the wire format of ``igneous.tasks.mesh.multires``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

from igneous.task_creation.mesh import create_meshing_tasks
from igneous.task_creation.multires import create_sharded_multires_mesh_tasks
from igneous_cli import main
from tests.conftest import igneous_subprocess, make_layer, tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import edge_use, mesh_weld

MESH_DIR = "mesh_mip_0_err_40"
CROP = ((256, 256, 256), (64, 56, 40))


@pytest.fixture(scope="module")
def small_crop(sample_crop):
    return sample_crop(*CROP).astype(np.uint64)


def forged(tmp_path_factory, labels, sharded: bool) -> str:
    root = tmp_path_factory.mktemp("sharded" if sharded else "legacy")
    path = make_layer(f"file://{root}/layer", labels, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET,
                      chunk_size=(32, 32, 16))  # fmt: skip
    LocalTaskQueue(parallel=1, progress=False).insert_all(
        create_meshing_tasks(path, 0, shape=(40, 36, 24), sharded=sharded)
    )
    return path


@pytest.fixture(scope="module")
def sharded_forge(tmp_path_factory, small_crop):
    return forged(tmp_path_factory, small_crop, sharded=True)


@pytest.fixture(scope="module")
def legacy_forge(tmp_path_factory, small_crop):
    return forged(tmp_path_factory, small_crop, sharded=False)


def copy(path: str, dest) -> str:
    shutil.copytree(path[len("file://") :], dest)
    return f"file://{dest}"


def labels_of(crop) -> list:
    return sorted(int(x) for x in np.unique(crop) if x)


def assert_closed_meshes(path: str, labels, lod: int = 0):
    vol = CloudVolume(path)
    if lod == -1:  # cloud-volume's sharded get(lod=-1) reuses the first label's coarsest lod for all
        got = {label: vol.mesh.get(label, lod=-1)[label] for label in labels}
    else:
        got = vol.mesh.get(labels, lod=lod)
    assert set(got) == set(labels)
    for label, mesh in got.items():
        assert edge_use(mesh_weld(mesh.vertices, mesh.faces)[1])[0] == 0, label


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_merge_sharded_command(sharded_forge, small_crop, tmp_path):
    path = copy(sharded_forge, tmp_path / "layer")
    result = invoke("mesh", "merge-sharded", path, "--nlod", 1, "--min-chunk-size", "16,16,16",
                    "--max-labels-per-shard", 10, "--vqb", 10)  # fmt: skip
    assert result.exit_code == 0, result.output
    info = CloudVolume(path).mesh.meta.info
    assert info["vertex_quantization_bits"] == 10
    assert info["sharding"]["shard_bits"] >= 2  # more than 10 labels per shard would be too many
    shards = [n for n in CloudFiles(f"{path}/{MESH_DIR}").list() if n.endswith(".shard")]
    assert len(shards) == 2 ** info["sharding"]["shard_bits"]
    assert_closed_meshes(path, labels_of(small_crop))
    assert_closed_meshes(path, labels_of(small_crop), lod=-1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vqb", "12"], "vertex_quantization_bits must be 10 or 16"),
        (["--nlod", "-1"], "num_lod must be an integer >= 0"),
        (["--min-shards", "0"], "min_shards must be an integer >= 1"),
        (["--spatial-index-db", "sqlite:///nonexistent/dir/x.db"], "spatial_index_db"),
    ],
)
def test_merge_sharded_refuses_bad_options_with_one_line(sharded_forge, tmp_path, args, message):
    path = copy(sharded_forge, tmp_path / "layer")
    before = tree(tmp_path)
    result = invoke("mesh", "merge-sharded", path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")
    assert tree(tmp_path) == before


def test_merge_sharded_before_forge_exits_2(layer, small_crop, tmp_path):
    path = layer(small_crop, resolution=RESOLUTION)
    before = tree(tmp_path)
    result = invoke("mesh", "merge-sharded", path)
    assert result.exit_code == 2
    assert "run `igneous mesh forge` first" in result.output
    assert tree(tmp_path) == before


def test_merge_sharded_tasks_run_from_a_file_queue(sharded_forge, small_crop, tmp_path):
    """Queued messages name (igneous.tasks.mesh.multires, MultiResShardedMeshMergeTask) and
    an `igneous execute` worker runs them."""
    from taskqueue import TaskQueue

    path = copy(sharded_forge, tmp_path / "layer")
    queue = f"fq://{tmp_path / 'queue'}"
    tasks = create_sharded_multires_mesh_tasks(path, num_lod=0, max_labels_per_shard=15)
    TaskQueue(queue, progress=False).insert(tasks)
    messages = [p.read_text() for p in (tmp_path / "queue" / "queue").iterdir()]
    assert len(messages) == len(tasks) > 1
    assert all("igneous.tasks.mesh.multires" in m and "MultiResShardedMeshMergeTask" in m for m in messages)
    proc = igneous_subprocess("execute", "-x", "-q", "--lease-sec", "60", queue)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_closed_meshes(path, labels_of(small_crop))


def test_merge_nlod_writes_unsharded_multires(legacy_forge, small_crop, tmp_path):
    path = copy(legacy_forge, tmp_path / "layer")
    result = invoke("mesh", "merge", path, "--nlod", 2, "--magnitude", 1, "--min-chunk-size", "16,16,16")
    assert result.exit_code == 0, result.output
    names = CloudFiles(f"{path}/{MESH_DIR}").list()
    assert {int(n[:-6]) for n in names if n.endswith(".index")} == set(labels_of(small_crop))
    assert_closed_meshes(path, labels_of(small_crop))


def test_xfer_sharded_converts_legacy_meshes(legacy_forge, small_crop, tmp_path):
    src = copy(legacy_forge, tmp_path / "src")
    assert invoke("mesh", "merge", src, "--magnitude", 1).exit_code == 0  # legacy manifests
    dest = f"file://{tmp_path / 'dest'}"
    result = invoke("mesh", "xfer", src, dest, "--sharded", "--nlod", 1)
    assert result.exit_code == 0, result.output
    assert "sharding" in CloudVolume(dest).mesh.meta.info
    assert_closed_meshes(dest, labels_of(small_crop))


def test_xfer_sharded_without_finished_meshes_exits_2(legacy_forge, tmp_path):
    src = copy(legacy_forge, tmp_path / "src")  # forged, never merged: no {segid}:0 manifests
    result = invoke("mesh", "xfer", src, f"file://{tmp_path / 'dest'}", "--sharded")
    assert result.exit_code == 2
    assert "has no finished meshes" in result.output
    assert not (tmp_path / "dest").exists()
