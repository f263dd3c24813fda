"""The forge planners' queue messages, task by task, against the grid computed independently.

Planning is tuned for speed (no per-task Vec/Bbox work); these pin that what reaches the
queue is unchanged: every cell of the grid once, x fastest, and the exact message format.
"""

from __future__ import annotations

import itertools
import json

import pytest
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous.queues.payloads import payload_of
from igneous.tasks.mesh.mesh import MeshTask
from igneous.tasks.skeleton import SkeletonTask

SIZE, OFFSET, SHAPE = (101, 77, 33), (13, -7, 5), (32, 20, 16)


@pytest.fixture
def layer(tmp_path):
    path = "file://" + str(tmp_path / "seg")
    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="segmentation", data_type="uint32", encoding="raw",
        resolution=[4.5, 4.25, 33.3], voxel_offset=list(OFFSET), volume_size=list(SIZE), chunk_size=[16, 16, 8],
    )  # fmt: skip
    CloudVolume(path, info=info, progress=False).commit_info()
    return path


def expected_offsets():
    """Every cell origin, x fastest, computed without the planner's grid code."""
    axes = [range(o, o + s, sh) for o, s, sh in zip(OFFSET, SIZE, SHAPE)]
    return [[x, y, z] for z, y, x in itertools.product(axes[2], axes[1], axes[0])]


def messages(tasks):
    return [json.loads(json.dumps(payload_of(t))) for t in tasks]


def test_mesh_forge_messages(layer):
    got = messages(tc.create_meshing_tasks(layer, 0, shape=SHAPE, dust_threshold=5, object_ids=[3, 1]))
    options = {
        "mip": 0, "simplification_factor": 100, "max_simplification_error": 40.0, "mesh_dir": "mesh_mip_0_err_40",
        "cache_control": "no-cache", "dust_threshold": 5, "dust_global": False, "progress": False,
        "object_ids": [3, 1], "exclude_object_ids": [], "fill_missing": False, "encoding": "precomputed",
        "spatial_index": True, "frag_path": None, "sharded": False, "compress": "gzip",
        "closed_dataset_edges": True, "fill_holes": 0, "dry_run": False,
    }  # fmt: skip
    expected = [
        {"shape": list(SHAPE), "offset": off, "layer_path": layer, **options, "class": "MeshTask"}
        for off in expected_offsets()
    ]
    assert got == expected
    assert [list(m) for m in got[:2]] == [list(m) for m in expected[:2]]  # key order too
    # a message read back by a worker serializes to itself
    assert messages([MeshTask(**{k: v for k, v in got[-1].items() if k != "class"})]) == [got[-1]]


def test_skeleton_forge_messages(layer):
    got = messages(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE))
    offsets = expected_offsets()
    assert [m["offset"] for m in got] == offsets
    # each task reads one voxel more than its cell on the high sides; the cell is its spatial grid
    assert all(m["shape"] == [s + 1 for s in SHAPE] and m["spatial_grid_shape"] == list(SHAPE) for m in got)
    rest = [{k: v for k, v in m.items() if k not in ("offset",)} for m in got]
    assert all(r == rest[0] for r in rest)
    assert rest[0]["class"] == "SkeletonTask" and rest[0]["cloudpath"] == layer
    assert list(got[0])[:3] == ["cloudpath", "shape", "offset"]
    assert messages([SkeletonTask(**{k: v for k, v in got[-1].items() if k != "class"})]) == [got[-1]]
