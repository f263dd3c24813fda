"""Hand-built SPEC §5.3 messages for the task names added in issue 10, run by `igneous execute`.

Planners prepare the layers (infos, label lists); the tasks themselves travel as JSON written
by hand in the wire format another Igneous installation would send, through a real fq://
queue drained by an `igneous execute` subprocess. Results are checked against numpy (or read
back through CloudVolume); the two tasks that need what this machine lacks (a graphene server,
chunkflow) must be found, run, and refused with their one-line error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

from igneous.task_creation.mesh import create_meshing_tasks
from igneous.task_creation.multires import (
    create_sharded_multires_mesh_from_unsharded_tasks,
    create_sharded_multires_mesh_tasks,
    create_unsharded_multires_mesh_tasks,
)
from igneous.task_creation.obsolete import create_mask_affinity_map_tasks, create_watershed_remap_tasks
from tests.conftest import igneous_subprocess, make_layer, read_layer
from tests.integration.test_wire_format import put_message

M = "igneous.tasks.mesh.multires"


def blobs() -> np.ndarray:
    labels = np.zeros((48, 40, 24), np.uint64)
    labels[4:20, 4:30, 2:20] = 1
    labels[22:44, 10:36, 6:22] = 2
    labels[8:16, 32:38, 4:10] = 3
    return labels


def forge(tmp_path, name: str, sharded: bool) -> str:
    path = make_layer(f"file://{tmp_path / name}", blobs(), chunk_size=(16, 16, 8), resolution=(8, 8, 40))
    LocalTaskQueue(parallel=1, progress=False).insert_all(create_meshing_tasks(path, 0, shape=(24, 24, 24),
                                                                               sharded=sharded))  # fmt: skip
    return path


def execute(qdir, *extra) -> str:
    proc = igneous_subprocess("execute", "-x", "--lease-sec", "60", *extra, f"fq://{qdir}")
    return proc


def test_multires_merge_messages(tmp_path):
    legacy = forge(tmp_path, "legacy", sharded=False)
    sharded = forge(tmp_path, "sharded", sharded=True)
    create_unsharded_multires_mesh_tasks(legacy, num_lod=1, min_chunk_size=(8, 8, 8))  # configures the info
    shards = [t.args[1] for t in create_sharded_multires_mesh_tasks(sharded, num_lod=1, min_chunk_size=(8, 8, 8))]
    qdir = tmp_path / "queue"
    for prefix in ("1", "2", "3"):
        put_message(qdir, [[M, "MultiResUnshardedMeshMergeTask"], [], {
            "cloudpath": legacy, "prefix": prefix, "cache_control": False, "draco_compression_level": 1,
            "mesh_dir": None, "num_lod": 1, "min_chunk_size": [8, 8, 8], "progress": False}, -1])  # fmt: skip
    for shard in shards:
        put_message(qdir, [[M, "MultiResShardedMeshMergeTask"], [sharded, shard], {
            "draco_compression_level": 1, "mesh_dir": None, "frag_path": None, "cache": False, "num_lod": 1,
            "spatial_index_db": None, "min_chunk_size": [8, 8, 8], "progress": False}, -1])  # fmt: skip
    proc = execute(qdir)
    assert proc.returncode == 0, proc.stderr[-3000:]

    dest = f"file://{tmp_path / 'dest'}"
    from_unsharded = create_sharded_multires_mesh_from_unsharded_tasks(legacy, dest, num_lod=1)
    for task in from_unsharded:
        put_message(qdir, [[M, "MultiResShardedFromUnshardedMeshMergeTask"], [], {
            "src": legacy, "dest": dest, "shard_no": task.args[2], "cache_control": False,
            "draco_compression_level": 1, "mesh_dir": None, "num_lod": 1, "progress": False,
            "min_chunk_size": [512, 512, 512]}, -1])  # fmt: skip
    proc = execute(qdir)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for path in (legacy, sharded, dest):
        got = CloudVolume(path).mesh.get([1, 2, 3])
        assert sorted(got) == [1, 2, 3], path
        for label, mesh in got.items():
            lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
            where = np.argwhere(blobs() == label)
            want_lo, want_hi = where.min(0) * (8, 8, 40), (where.max(0) + 1) * (8, 8, 40)
            np.testing.assert_allclose(lo, want_lo, atol=41)
            np.testing.assert_allclose(hi, want_hi, atol=41)


def test_obsolete_task_messages(tmp_path):
    seg = blobs().astype(np.uint32)
    src = make_layer(f"file://{tmp_path / 'seg'}", seg, chunk_size=(16, 16, 8))
    remap = np.array([0, 10, 20, 30], np.uint16)
    np.save(tmp_path / "remap.npy", remap)
    remapped = f"file://{tmp_path / 'remapped'}"
    create_watershed_remap_tasks(str(tmp_path / "remap.npy"), src, remapped, shape=(48, 40, 24))  # dest info

    aff = np.asfortranarray(np.random.default_rng(0).random((48, 40, 24, 3), dtype=np.float32))
    aff_path = make_layer(f"file://{tmp_path / 'aff'}", aff, chunk_size=(16, 16, 8), layer_type="image")
    mask = np.zeros((24, 20, 24), np.uint8)
    mask[3:15, 2:9, 4:20] = 1
    mask_path = make_layer(f"file://{tmp_path / 'mask'}", mask, resolution=(8, 8, 40), layer_type="image")
    masked = f"file://{tmp_path / 'masked'}"
    create_mask_affinity_map_tasks(aff_path, masked, 0, mask_path, 0, (0, 0, 0), (48, 40, 24), (1, 1, 1))

    consensus_dest = f"file://{tmp_path / 'consensus'}"
    (tmp_path / "consensus.json").write_text(json.dumps({"5": {"77": [1, 3]}}))
    info = CloudVolume(src).info
    info["data_type"] = "uint32"
    CloudVolume(consensus_dest, info=info).commit_info()

    qdir = tmp_path / "queue"
    put_message(qdir, {"map_path": str(tmp_path / "remap.npy"), "src_path": src, "dest_path": remapped,
                       "shape": [48, 40, 24], "offset": [0, 0, 0], "class": "WatershedRemapTask"})  # fmt: skip
    put_message(qdir, {"aff_input_layer_path": aff_path, "aff_output_layer_path": masked, "aff_mip": 0,
                       "mask_layer_path": mask_path, "mask_mip": 0, "bounds": [0, 0, 0, 48, 40, 24],
                       "class": "MaskAffinitymapTask"})  # fmt: skip
    put_message(qdir, {"src_path": src, "dest_path": consensus_dest, "ew_volume_id": 5,
                       "consensus_map_path": str(tmp_path / "consensus.json"), "shape": [48, 40, 24],
                       "offset": [0, 0, 0], "class": "HyperSquareConsensusTask"})  # fmt: skip
    proc = execute(qdir)
    assert proc.returncode == 0, proc.stderr[-3000:]

    np.testing.assert_array_equal(read_layer(remapped)[..., 0], remap[seg])
    up = np.repeat(np.repeat(mask, 2, 0), 2, 1)
    np.testing.assert_array_equal(read_layer(masked), aff * (up[..., np.newaxis] != 0))
    np.testing.assert_array_equal(read_layer(consensus_dest)[..., 0], np.where(np.isin(seg, [1, 3]), 77, 0))


@pytest.mark.parametrize(
    "payload, refusal",
    [
        ({"cloudpath": "file:///nowhere", "shape": [8, 8, 8], "offset": [0, 0, 0], "mip": 0,
          "draco_compression_level": 1, "class": "GrapheneMeshTask"}, "graphene:// segmentations only"),
        ({"image_layer_path": "file:///img", "convnet_path": "net", "mask_layer_path": None,
          "output_layer_path": "file:///out", "output_offset": [0, 0, 0], "output_shape": [8, 8, 8],
          "patch_size": [8, 8, 8], "patch_overlap": [0, 0, 0], "cropping_margin_size": [0, 0, 0],
          "output_key": "output", "num_output_channels": 3, "image_mip": 1, "output_mip": 1, "mask_mip": 3,
          "class": "InferenceTask"}, "optional package chunkflow"),
    ],
)  # fmt: skip
def test_tasks_needing_missing_services_are_found_and_refused(tmp_path, payload, refusal):
    if payload["class"] == "InferenceTask":
        try:
            import chunkflow  # noqa: F401

            pytest.skip("chunkflow is installed here")
        except ImportError:
            pass
    qdir = tmp_path / "queue"
    put_message(qdir, payload)
    proc = execute(qdir, "--max-attempts", "1")
    assert proc.returncode == 1, proc.stderr[-3000:]
    dead = [json.loads(p.read_text()) for p in (qdir / "dead").iterdir() if p.suffix == ".json"]
    assert len(dead) == 1 and refusal in dead[0]["error"], dead
