"""Queue messages in the wire format of SPEC §5.3 run on our worker, and ours have that format."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from tests.conftest import igneous_subprocess, read_layer
from tests.integration.test_downsample import random_volume
from tests.oracles import tinybrain_pyramid


def put_message(queue_dir, payload):
    """Write one message exactly as a FileQueue stores it (queue/ file + movement journal)."""
    os.makedirs(queue_dir / "queue", exist_ok=True)
    os.makedirs(queue_dir / "movement", exist_ok=True)
    ident = str(uuid.uuid4())
    name = f"0--{ident}.json"
    envelope = {"payload": payload, "queueName": str(queue_dir), "id": ident}
    (queue_dir / "queue" / name).write_text(json.dumps(envelope))
    (queue_dir / "movement" / ident).write_text(name + "\n")


def test_hand_built_messages_execute(layer, tmp_path):
    whole = random_volume((64, 64, 8), np.uint8, seed=1)
    src = layer(whole, chunk_size=(32, 32, 8))
    dest = f"file://{tmp_path / 'dest'}"
    # Create the destination info with a planner, but send the tasks as hand-written JSON.
    list(tc.create_transfer_tasks(src, dest, skip_downsamples=True))
    qdir = tmp_path / "queue"
    for x in (0, 32):
        put_message(
            qdir,
            [
                ["igneous.tasks.image.image", "TransferTask"],
                [],
                {
                    "src_path": src,
                    "dest_path": dest,
                    "shape": [32, 64, 8],
                    "offset": [x, 0, 0],
                    "fill_missing": False,
                    "translate": [0, 0, 0],
                    "mip": 0,
                    "skip_downsamples": True,
                    "delete_black_uploads": False,
                    "background_color": 0,
                    "agglomerate": False,
                    "timestamp": None,
                    "compress": "gzip",
                    "factor": None,
                    "sparse": False,
                    "stop_layer": None,
                    "downsample_method": 6,
                    "use_https_for_source": False,
                },
                -1,
            ],
        )
    vol = CloudVolume(src)
    vol.add_scale((2, 2, 1))
    vol.commit_info()
    put_message(qdir, [["igneous.tasks.image.image", "DownsampleTask"], [src, 0, [64, 64, 8], [0, 0, 0]], {}, -1])
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(read_layer(dest)[..., 0], whole)
    np.testing.assert_array_equal(
        read_layer(src, mip=1)[..., 0], tinybrain_pyramid(whole, (2, 2, 1), 1, "avg")[0][..., 0]
    )


def test_our_messages_name_spec_keys(layer, tmp_path):
    from taskqueue import TaskQueue

    src = layer(random_volume((64, 64, 8), np.uint8), chunk_size=(32, 32, 8))
    qpath = f"fq://{tmp_path / 'queue'}"
    TaskQueue(qpath, progress=False).insert(tc.create_downsampling_tasks(src, num_mips=1))
    TaskQueue(qpath, progress=False).insert(tc.create_deletion_tasks(src))
    keys = set()
    for name in os.listdir(tmp_path / "queue" / "queue"):
        msg = json.loads((tmp_path / "queue" / "queue" / name).read_text())
        assert set(msg) >= {"payload", "queueName", "id"}
        keys.add(tuple(msg["payload"][0]))
        assert {"shape", "offset"} <= set(msg["payload"][2])
    assert keys == {("igneous.tasks.image.image", "DownsampleTask"), ("igneous.tasks.image.image", "DeleteTask")}


def test_hand_built_shard_messages_execute(layer, tmp_path):
    """[["igneous.tasks.image.image", "ImageShard…Task"], [], {SPEC kwargs}, -1] run on our worker."""
    whole = random_volume((64, 64, 16), np.uint8, seed=3)
    src = layer(whole, chunk_size=(16, 16, 8))
    dest = f"file://{tmp_path / 'dest'}"
    shape = list(tc.create_image_shard_transfer_tasks(src, dest, memory_target=10**9))[0].keywords["shape"]
    qdir = tmp_path / "queue"
    put_message(
        qdir,
        [
            ["igneous.tasks.image.image", "ImageShardTransferTask"],
            [],
            {"src_path": src, "dst_path": dest, "shape": shape, "offset": [0, 0, 0], "mip": 0, "fill_missing": False,
             "translate": [0, 0, 0], "agglomerate": False, "timestamp": None, "stop_layer": None,
             "use_https_for_source": False},
            -1,
        ],
    )
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(read_layer(dest)[..., 0], whole)

    shape = list(tc.create_image_shard_downsample_tasks(dest, num_mips=2, memory_target=10**9))[0].keywords["shape"]
    put_message(
        qdir,
        [
            ["igneous.tasks.image.image", "ImageShardDownsampleTask"],
            [],
            {"src_path": dest, "shape": shape, "offset": [0, 0, 0], "mip": 0, "fill_missing": False, "sparse": False,
             "agglomerate": False, "timestamp": None, "factor": [2, 2, 1], "method": 1, "num_mips": 2,
             "progress": False, "codec_threads": 1},
            -1,
        ],
    )
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr
    want = tinybrain_pyramid(whole, (2, 2, 1), 2, "avg")
    for k in (1, 2):
        np.testing.assert_array_equal(read_layer(dest, mip=k)[..., 0], want[k - 1][..., 0])
