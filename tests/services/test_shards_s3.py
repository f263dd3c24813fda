"""Sharded images on S3 (moto on loopback): shard files go up as file objects, never with
per-file compression, and CloudVolume reads them back with byte-range requests."""

from __future__ import annotations

import numpy as np
from cloudfiles import CloudFiles
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from tests.conftest import make_layer, read_layer
from tests.oracles import tinybrain_pyramid


def test_sharded_transfer_and_pyramid_on_s3(aws, s3_bucket):
    rng = np.random.default_rng(11)
    whole = np.asfortranarray(rng.integers(0, 255, size=(96, 80, 24), dtype=np.uint8))
    bucket = s3_bucket()
    src = make_layer(f"s3://{bucket}/img", whole, voxel_offset=(5, 3, 1), chunk_size=(16, 16, 8))
    dst = f"s3://{bucket}/sharded"

    LocalTaskQueue(parallel=1, progress=False).insert_all(
        tc.create_image_shard_transfer_tasks(src, dst, memory_target=60000)
    )
    names = [n for n in CloudFiles(dst).list() if n.endswith(".shard") or ".shard." in n]
    assert names and all(n.endswith(".shard") for n in names)  # no .shard.gz: range reads must work
    np.testing.assert_array_equal(read_layer(dst)[..., 0], whole)

    # the same layout again: each shard is copied object to object, byte for byte
    copy = f"s3://{bucket}/copy"
    LocalTaskQueue(parallel=1, progress=False).insert_all(
        tc.create_image_shard_transfer_tasks(dst, copy, memory_target=60000)
    )
    for name in names:
        assert CloudFiles(copy).get(name) == CloudFiles(dst).get(name), name
    np.testing.assert_array_equal(read_layer(copy)[..., 0], whole)

    LocalTaskQueue(parallel=1, progress=False).insert_all(
        tc.create_image_shard_downsample_tasks(dst, num_mips=2, memory_target=10**6)
    )
    want = tinybrain_pyramid(whole, (2, 2, 1), 2, "avg")
    for k in (1, 2):
        np.testing.assert_array_equal(read_layer(dst, mip=k)[..., 0], np.asarray(want[k - 1])[..., 0]
                                      if np.asarray(want[k - 1]).ndim == 4 else want[k - 1])
