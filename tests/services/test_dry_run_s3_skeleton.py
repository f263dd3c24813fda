"""``skeleton forge|merge|merge-sharded --dry-run`` against real runs on S3 (moto on loopback):
requests counted in moto's own request log within 10%, task counts exact, bytes within 20%, and
the dry run writes nothing (as tests/services/test_dry_run_s3.py does for meshes)."""

from __future__ import annotations

import numpy as np

import igneous.task_creation as tc
from igneous.task_creation import plans
from tests.conftest import make_layer
from tests.mesh.conftest import sample_crop  # noqa: F401  (session fixture)
from tests.services.test_dry_run_s3 import bucket, check, log, run_all, unchanged  # noqa: F401  (fixtures)
from tests.skeleton.conftest import CHUNK, CROP, DUST_VOXELS, MIN_CABLE, RESOLUTION, SHAPE, TEASAR, VOXEL_OFFSET

FORGE = dict(shape=SHAPE, teasar_params=TEASAR, dust_threshold=DUST_VOXELS)


def _layer(bucket, name, sample_crop):  # noqa: F811
    return make_layer(
        f"s3://{bucket}/{name}", sample_crop(*CROP).astype(np.uint64), resolution=RESOLUTION,
        voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK,
    )  # fmt: skip


def test_skeleton_plans_on_s3(boto, bucket, log, sample_crop):  # noqa: F811
    seg = _layer(bucket, "skel", sample_crop)
    plan = unchanged(boto, bucket, plans.plan_skeletonizing, seg, 0, **FORGE)
    check("s3 skeleton forge", plan, lambda: run_all(tc.create_skeletonizing_tasks(seg, 0, **FORGE)), log, boto,
          bucket)  # fmt: skip
    merge = dict(magnitude=1, dust_threshold=MIN_CABLE, tick_threshold=0)
    plan = unchanged(boto, bucket, plans.plan_unsharded_skeleton_merge, seg, **merge)
    check("s3 skeleton merge", plan, lambda: run_all(tc.create_unsharded_skeleton_merge_tasks(seg, **merge)), log,
          boto, bucket)  # fmt: skip


def test_sharded_skeleton_plans_on_s3(boto, bucket, log, sample_crop):  # noqa: F811
    seg = _layer(bucket, "skelsh", sample_crop)
    plan = unchanged(boto, bucket, plans.plan_skeletonizing, seg, 0, sharded=True, **FORGE)
    check("s3 skeleton forge --sharded", plan,
          lambda: run_all(tc.create_skeletonizing_tasks(seg, 0, sharded=True, **FORGE)), log, boto, bucket)  # fmt: skip
    merge = dict(dust_threshold=MIN_CABLE, tick_threshold=0, max_labels_per_shard=20)
    plan = unchanged(boto, bucket, plans.plan_sharded_skeleton_merge, seg, **merge)
    check("s3 skeleton merge-sharded", plan, lambda: run_all(tc.create_sharded_skeleton_merge_tasks(seg, **merge)),
          log, boto, bucket)  # fmt: skip
