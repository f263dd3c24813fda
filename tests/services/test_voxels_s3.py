"""Global voxel counts on S3 (moto on loopback): counted and summed in the bucket, with
transport compression, and read back by both readers (the task module's and the forge's)."""

from __future__ import annotations

import numpy as np
import pytest
from cloudfiles import CloudFiles
from mapbuffer import IntMap
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous import meshes
from igneous.tasks.image.voxels import load_voxel_counts, voxel_count
from tests.conftest import make_layer


@pytest.mark.parametrize("compress", ["zstd", "gzip", None])
def test_voxel_counts_in_a_bucket(aws, s3_bucket, tmp_path, compress):
    rng = np.random.default_rng(5)
    palette = np.array([0, 3, 2**40, 2**63 + 7], dtype=np.uint64)
    data = palette[rng.integers(0, len(palette), size=(40, 30, 20))]
    path = make_layer(f"s3://{s3_bucket()}/seg", data, voxel_offset=(9, 1, 4), chunk_size=(16, 16, 8))

    LocalTaskQueue(parallel=1, progress=False).insert_all(tc.create_voxel_counting_tasks(path, 0))
    local = tmp_path / "counts.im"
    tc.accumulate_voxel_counts(path, 0, progress=False, compress=compress, additional_output=str(local))

    labels, counts = np.unique(data, return_counts=True)
    want = dict(zip(labels.tolist(), counts.tolist()))
    assert {int(k): int(v) for k, v in load_voxel_counts(path, 0).items()} == want
    forge_reader = meshes.load_voxel_counts(path, "4_4_40")  # what `mesh forge --dust-global` reads
    assert {label: voxel_count(forge_reader, label) for label in want} == want
    assert {int(k): int(v) for k, v in IntMap(local.read_bytes()).items()} == want
    # S3 keeps the key name and records the compression in Content-Encoding
    assert CloudFiles(path).exists("4_4_40/stats/voxel_counts.im")
    head = CloudFiles(path).head("4_4_40/stats/voxel_counts.im")
    assert (head.get("Content-Encoding") or None) == ({"gzip": "gzip", "zstd": "zstd"}.get(compress))
    assert head.get("Content-Type") == "application/x-intmap"
