"""Skeleton task messages in the wire format of SPEC §5.3 (hand-built, as another Igneous
would queue them) run on our worker through fq:// + `igneous execute`; ours carry those keys."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import TaskQueue

import igneous.task_creation as tc
from igneous.task_creation.skeleton import finished_labels
from tests.conftest import igneous_subprocess, make_layer
from tests.integration.test_wire_format import put_message
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET, run

TEASAR = {"scale": 4, "const": 10, "pdrf_exponent": 4, "pdrf_scale": 100000}


@pytest.fixture(scope="module")
def small(skel_crop):
    return np.asfortranarray(skel_crop[:64, :64, :48])


@pytest.fixture
def layer(tmp_path, small):
    return make_layer(
        f"file://{tmp_path / 'seg'}", small, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def execute(qdir) -> None:
    proc = igneous_subprocess("execute", "-x", "-q", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert TaskQueue(f"fq://{qdir}", progress=False).is_empty()


def skeleton_message(layer: str, offset, sharded: bool) -> dict:
    """A SkeletonTask message with all 33 SPEC parameters, as the reference's planner sends it."""
    return {
        "cloudpath": layer, "shape": [41, 41, 33], "offset": list(offset), "mip": 0, "teasar_params": TEASAR,
        "will_postprocess": True, "info": None, "object_ids": None, "mask_ids": None, "fix_branching": True,
        "fix_borders": True, "fix_avocados": False, "fill_holes": 0, "dust_threshold": 200, "progress": False,
        "parallel": 1, "fill_missing": False, "sharded": sharded, "frag_path": None, "spatial_index": True,
        "spatial_grid_shape": [40, 40, 32], "synapses": None, "dust_global": False, "cross_sectional_area": False,
        "cross_sectional_area_smoothing_window": 1, "cross_sectional_area_shape_delta": 150,
        "cross_sectional_area_repair_sec_per_label": 0, "cross_sectional_area_low_memory_threshold": 8000000000,
        "dry_run": False, "strip_integer_attributes": True, "fix_autapses": False, "timestamp": None,
        "root_ids_cloudpath": None, "class": "SkeletonTask",
    }  # fmt: skip


def offsets():
    for z in (5, 37):
        for y in (11, 51):
            for x in (7, 47):
                yield (x, y, z)


def test_hand_built_forge_and_merge_messages(layer, tmp_path):
    # the planner writes the infos; the tasks travel as hand-written JSON
    ours = list(tc.create_skeletonizing_tasks(layer, 0, shape=(40, 40, 32), teasar_params=TEASAR, dust_threshold=200))
    assert {o for o in offsets()} == {tuple(t.offset) for t in ours}
    payload = ours[0].payload()
    assert set(payload) == set(skeleton_message(layer, (7, 11, 5), False))
    qdir = tmp_path / "queue"
    for offset in offsets():
        put_message(qdir, skeleton_message(layer, offset, sharded=False))
    execute(qdir)
    tc.create_unsharded_skeleton_merge_tasks(layer, magnitude=1)  # checks the forge finished
    for prefix in ["1:", "2:", "3:", "4:", "5:", "6:", "7:", "8:", "9:"] + [str(i) for i in range(10, 100)]:
        put_message(qdir, {
            "cloudpath": layer, "prefix": prefix, "crop": 0, "dust_threshold": 500, "max_cable_length": None,
            "tick_threshold": 0, "delete_fragments": False, "class": "UnshardedSkeletonMergeTask",
        })  # fmt: skip
    execute(qdir)
    skels = CloudVolume(layer).skeleton.get(finished_labels(layer))
    assert len(skels) >= 10

    # one queue: copy by prefix, delete by prefix (in a copy), repack into shards
    dest = f"file://{tmp_path / 'dest'}"
    CloudFiles(dest).put_json("info", CloudVolume(layer).info)
    list(tc.create_xfer_skeleton_tasks(layer, dest, magnitude=1))  # writes the infos
    doomed = tmp_path / "doomed"
    shutil.copytree(tmp_path / "seg", doomed)
    sharded = f"file://{tmp_path / 'sharded'}"
    planned = tc.create_sharded_skeletons_from_unsharded_tasks(layer, sharded, max_labels_per_shard=8)
    for prefix in [str(i) for i in range(10)] + ["-"]:
        put_message(qdir, [["igneous.tasks.skeleton", "TransferSkeletonFilesTask"], [layer, dest, prefix], {}, -1])
        put_message(qdir, [["igneous.tasks.skeleton", "DeleteSkeletonFilesTask"], [f"file://{doomed}", prefix],
                           {"skel_dir": "skeletons_mip_0"}, -1])  # fmt: skip
    for task in planned:
        put_message(qdir, [["igneous.tasks.skeleton", "ShardedFromUnshardedSkeletonMergeTask"],
                           [layer, sharded, task.args[2]], {"skel_dir": "skeletons_mip_0"}, -1])  # fmt: skip
    execute(qdir)
    labels = [int(s.id) for s in skels]
    assert len(CloudVolume(dest).skeleton.get(labels)) == len(skels)
    assert os.listdir(doomed / "skeletons_mip_0") == ["info"]
    assert len(CloudVolume(sharded).skeleton.get(labels)) == len(skels)


def test_hand_built_sharded_messages(layer, tmp_path):
    qdir = tmp_path / "queue"
    tasks = tc.create_skeletonizing_tasks(layer, 0, shape=(40, 40, 32), teasar_params=TEASAR, sharded=True)
    run([type(t).deserialize(skeleton_message(layer, t.offset, sharded=True)) for t in tasks])
    planned = tc.create_sharded_skeleton_merge_tasks(layer, 500, 0, max_labels_per_shard=8)
    assert set(planned[0].payload()) == {
        "cloudpath", "shard_no", "dust_threshold", "tick_threshold", "frag_path", "cache", "spatial_index_db",
        "max_cable_length", "dry_run", "class",
    }  # fmt: skip
    for task in planned:
        put_message(qdir, {"cloudpath": layer, "shard_no": task.shard_no, "dust_threshold": 500,
                           "tick_threshold": 0, "class": "ShardedSkeletonMergeTask"})  # fmt: skip
    execute(qdir)
    shards = [n for n in os.listdir(tmp_path / "seg" / "skeletons_mip_0") if n.endswith(".shard")]
    assert len(shards) == len(planned) >= 2
    assert len(CloudVolume(layer).skeleton.get(finished_labels(layer))) >= 10


def test_our_messages_name_spec_keys(layer, tmp_path):
    qpath = f"fq://{tmp_path / 'queue'}"
    TaskQueue(qpath, progress=False).insert(tc.create_skeletonizing_tasks(layer, 0, shape=(40, 40, 32)))
    names = os.listdir(tmp_path / "queue" / "queue")
    assert len(names) == 8
    msg = json.loads((tmp_path / "queue" / "queue" / names[0]).read_text())
    assert msg["payload"]["class"] == "SkeletonTask"
    assert len([k for k in msg["payload"] if k != "class"]) == 33
