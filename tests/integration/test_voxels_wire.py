"""Hand-built queue messages (SPEC §3.7 keys, §5.3 envelope) for CountVoxelsTask and
SpatialIndexTask run on our worker, and the messages our planners queue use those keys."""

from __future__ import annotations

import json

import numpy as np
from cloudfiles import CloudFiles
from taskqueue import TaskQueue

import igneous.task_creation as tc
from igneous import meshes
from igneous.tasks.image.voxels import load_voxel_counts
from tests.conftest import igneous_subprocess
from tests.integration.test_wire_format import put_message


def test_hand_built_count_and_spatial_index_messages_execute(layer, tmp_path):
    rng = np.random.default_rng(8)
    data = rng.choice(np.array([0, 5, 6, 2**63 + 2], dtype=np.uint64), size=(40, 24, 16))
    path = layer(data, name="seg", voxel_offset=(2, 3, 4), chunk_size=(16, 16, 8))
    # the mesh info a planner would have written; the tasks themselves come as JSON
    meshes.write_mesh_info(path, "mesh", meshes.legacy_mesh_info(0, (20, 24, 16), [4, 4, 40]))
    qdir = tmp_path / "queue"
    put_message(
        qdir,
        [["igneous.tasks.image.image", "CountVoxelsTask"], [],
         {"cloudpath": path, "shape": [512, 512, 512], "offset": [2, 3, 4], "mip": 0, "fill_missing": False,
          "agglomerate": False, "timestamp": None}, -1],
    )  # fmt: skip
    for x in (2, 22):
        put_message(
            qdir,
            [["igneous.tasks.spatial_index", "SpatialIndexTask"], [],
             {"cloudpath": path, "shape": [20, 24, 16], "offset": [x, 3, 4], "subdir": "mesh", "precision": 0,
              "mip": 0, "fill_missing": False, "compress": "gzip"}, -1],
        )  # fmt: skip
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]

    tc.accumulate_voxel_counts(path, 0, progress=False)
    labels, counts = np.unique(data, return_counts=True)
    assert {int(k): int(v) for k, v in load_voxel_counts(path, 0).items()} == dict(zip(labels.tolist(), counts.tolist()))
    cf = CloudFiles(path)
    first = cf.get_json("mesh/8-88_12-108_160-800.spatial")  # x 2..22 (+1 overlap) at 4 nm
    assert first is not None and set(first) == {str(int(v)) for v in np.unique(data[:21]) if v}


def test_our_messages_name_the_spec_keys(layer, tmp_path):
    path = layer(np.ones((20, 20, 8), np.uint32), name="seg", chunk_size=(16, 16, 8))
    qdir = tmp_path / "queue"
    TaskQueue(f"fq://{qdir}").insert(tc.create_voxel_counting_tasks(path, 0))
    TaskQueue(f"fq://{qdir}").insert(tc.create_spatial_index_mesh_tasks(path, shape=(16, 16, 8)))
    keys = sorted({tuple(json.loads(p.read_text())["payload"][0]) for p in (qdir / "queue").iterdir()})
    assert keys == [("igneous.tasks.image.image", "CountVoxelsTask"), ("igneous.tasks.spatial_index", "SpatialIndexTask")]
