"""An image stack on S3 (moto on loopback): listed, its headers probed and its tiles read with
byte-range requests, ingested into an S3 layer."""

from __future__ import annotations

import io

import numpy as np
import tifffile
from cloudfiles import CloudFiles
from taskqueue import LocalTaskQueue

from igneous.task_creation.ingest import create_image_stack_tasks
from tests.conftest import read_layer


def test_tiff_series_on_s3(aws, s3_bucket):
    bucket = s3_bucket()
    rng = np.random.default_rng(5)
    slices = rng.integers(0, 65535, size=(9, 70, 90), dtype=np.uint16)
    cf = CloudFiles(f"s3://{bucket}/slices")
    for z, page in enumerate(slices):
        buf = io.BytesIO()
        tifffile.imwrite(buf, page, tile=(32, 32), compression="zlib")
        cf.put(f"s{z + 1}.tif", buf.getvalue(), compress=None, raw=True)  # s1 … s9: natural order
    dest = f"s3://{bucket}/layer"
    tasks = create_image_stack_tasks(f"s3://{bucket}/slices/*.tif", dest, chunk_size=(32, 32, 4),
                                     memory_target=60_000, voxel_offset=(2, 2, 2))  # fmt: skip
    assert len(tasks) > 3
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)
    np.testing.assert_array_equal(read_layer(dest)[..., 0], slices.transpose(2, 1, 0))
