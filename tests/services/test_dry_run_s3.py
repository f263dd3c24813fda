"""``--dry-run`` against real runs on S3 (moto on loopback, DESIGN §4): the requests the plan
predicts are counted by the server itself, in moto's request log, within 10%; task counts are
exact and bytes within 20% (the objects' sizes, listed with boto3); the dry run writes nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.plan import REQUEST_KINDS
from igneous.task_creation import plans
from tests.conftest import make_layer
from tests.integration.test_dry_run import image_data, segmentation_data

REQUEST_TOLERANCE = 0.10
BYTES_TOLERANCE = 0.20
LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (/[^ ]*) HTTP/[0-9.]+" (\d+)')
ACCURACY = []


class RequestLog:
    """The moto server's own access log (werkzeug: one line per request), for one bucket."""

    def __init__(self, tmp_path_factory, bucket: str):
        logs = sorted(tmp_path_factory.getbasetemp().glob("moto*/moto_server.log"))
        assert logs, "the moto_server fixture's log was not found"
        self.path = logs[-1]
        self.bucket = bucket
        self.detail = False

    def counts(self) -> Counter:
        out = Counter()
        with open(self.path, errors="replace") as f:
            for line in f:
                m = LINE.search(line)
                if m is None:
                    continue
                method, target, _ = m.groups()
                path, _, query = target.partition("?")
                if path.strip("/").split("/")[0] != self.bucket:
                    continue
                kind = classify(method, path, query, self.bucket)
                out[kind] += 1
                if self.detail:
                    name = path.rsplit("/", 1)[-1]
                    out[(kind, name if name in ("info", "provenance") else name.rsplit(".", 1)[-1][:12])] += 1
        return out

    def settled(self) -> Counter:
        """Counts once the log stops growing (the server writes a line after it answers)."""
        last = None
        for _ in range(50):
            now = self.counts()
            if now == last:
                return now
            last = now
            time.sleep(0.1)
        return last


def classify(method: str, path: str, query: str, bucket: str) -> str:
    if method == "GET" and path.strip("/") == bucket:
        return "LIST"
    if method == "POST" and "delete" in query:
        return "DELETE"
    if method == "POST":
        return "PUT"  # multipart uploads
    return method


def object_bytes(boto, bucket: str, prefix: str) -> dict:
    sizes = {}
    for page in boto.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            sizes[obj["Key"]] = obj["Size"]
    return sizes


def metadata(key: str) -> bool:
    return key.rsplit("/", 1)[-1] in ("info", "provenance")


def check(case, plan, run, log: RequestLog, boto, bucket: str):
    before_objects = object_bytes(boto, bucket, "")
    before = log.settled()
    tasks = list(run())
    after = log.settled()
    actual = {kind: (after - before).get(kind, 0) for kind in REQUEST_KINDS}
    if log.detail:
        print(case, {k: v for k, v in (after - before).items() if isinstance(k, tuple)})
    objects = object_bytes(boto, bucket, "")
    nbytes = sum(size for key, size in objects.items() if before_objects.get(key) != size and not metadata(key))
    predicted = {kind: int(plan.requests.get(kind, 0)) for kind in REQUEST_KINDS}
    ACCURACY.append((case, predicted, actual, plan.bytes_written, nbytes))
    assert plan.tasks == len(tasks)
    for kind in ("GET", "PUT"):
        assert abs(predicted[kind] - actual[kind]) <= REQUEST_TOLERANCE * actual[kind], (case, kind, predicted, actual)
    total_p, total_a = sum(predicted.values()), sum(actual.values())
    assert abs(total_p - total_a) <= REQUEST_TOLERANCE * total_a, (case, predicted, actual)
    assert abs(plan.bytes_written - nbytes) <= BYTES_TOLERANCE * nbytes, (case, plan.bytes_written, nbytes)


def run_all(tasks):
    tasks = list(tasks)
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)
    return tasks


@pytest.fixture
def bucket(s3_bucket):
    return s3_bucket("igneous-dry")


@pytest.fixture
def log(tmp_path_factory, bucket):
    log = RequestLog(tmp_path_factory, bucket)
    # IGNEOUS_TEST_REQUEST_DETAIL=1 prints each case's requests by file kind (for recalibrating
    # igneous.throughput's overheads)
    log.detail = bool(os.environ.get("IGNEOUS_TEST_REQUEST_DETAIL"))
    return log


def unchanged(boto, bucket, plan_fn, *args, **kwargs):
    before = object_bytes(boto, bucket, "")
    plan = plan_fn(*args, **kwargs)
    assert object_bytes(boto, bucket, "") == before  # the dry run wrote nothing
    return plan


def test_image_plans_on_s3(boto, bucket, log):
    src = make_layer(f"s3://{bucket}/img", image_data((256, 256, 32)), chunk_size=(64, 64, 16), resolution=(8, 8, 40))
    plan = unchanged(boto, bucket, plans.plan_downsampling, src, num_mips=2)
    check("s3 downsample", plan, lambda: run_all(tc.create_downsampling_tasks(src, num_mips=2)), log, boto, bucket)
    dest = f"s3://{bucket}/copy"
    kwargs = dict(chunk_size=(128, 128, 16), max_mips=1)
    plan = unchanged(boto, bucket, plans.plan_transfer, src, dest, **kwargs)
    check("s3 xfer", plan, lambda: run_all(tc.create_transfer_tasks(src, dest, **kwargs)), log, boto, bucket)
    sharded = f"s3://{bucket}/sharded"
    plan = unchanged(boto, bucket, plans.plan_image_shard_transfer, src, sharded, memory_target=int(1e7))
    check(
        "s3 xfer --sharded",
        plan,
        lambda: run_all(tc.create_image_shard_transfer_tasks(src, sharded, memory_target=int(1e7))),
        log,
        boto,
        bucket,
    )
    plan = unchanged(boto, bucket, plans.plan_image_shard_downsample, sharded, num_mips=2, memory_target=int(1e8))
    check("s3 downsample --sharded", plan,
          lambda: run_all(tc.create_image_shard_downsample_tasks(sharded, num_mips=2, memory_target=int(1e8))),
          log, boto, bucket)  # fmt: skip


def test_segmentation_plans_on_s3(boto, bucket, log):
    seg = make_layer(
        f"s3://{bucket}/seg", segmentation_data((128, 128, 96), cells=30), chunk_size=(64, 64, 32),
        encoding="compressed_segmentation", resolution=(16, 16, 40),
    )  # fmt: skip
    plan = unchanged(boto, bucket, plans.plan_voxel_counting, seg, 0)
    check("s3 voxels count", plan, lambda: run_all(tc.create_voxel_counting_tasks(seg, 0)), log, boto, bucket)
    shape = (64, 64, 48)
    plan = unchanged(boto, bucket, plans.plan_meshing, seg, 0, shape=shape)
    check("s3 mesh forge", plan, lambda: run_all(tc.create_meshing_tasks(seg, 0, shape=shape)), log, boto, bucket)
    plan = unchanged(boto, bucket, plans.plan_mesh_manifest, seg, magnitude=1)
    check("s3 mesh merge", plan, lambda: run_all(tc.create_mesh_manifest_tasks(seg, magnitude=1)), log, boto, bucket)


def test_sharded_mesh_plans_on_s3(boto, bucket, log):
    seg = make_layer(
        f"s3://{bucket}/segsh", segmentation_data((128, 128, 96), cells=30), chunk_size=(64, 64, 32),
        encoding="compressed_segmentation", resolution=(16, 16, 40),
    )  # fmt: skip
    shape = (64, 64, 48)
    plan = unchanged(boto, bucket, plans.plan_meshing, seg, 0, shape=shape, sharded=True)
    check(
        "s3 mesh forge --sharded",
        plan,
        lambda: run_all(tc.create_meshing_tasks(seg, 0, shape=shape, sharded=True)),
        log,
        boto,
        bucket,
    )
    plan = unchanged(boto, bucket, plans.plan_sharded_multires_merge, seg, num_lod=1)
    check("s3 mesh merge-sharded", plan, lambda: run_all(tc.create_sharded_multires_mesh_tasks(seg, num_lod=1)),
          log, boto, bucket)  # fmt: skip


def test_held_out_image_plans_on_s3(boto, bucket, log):
    """Shapes and options the request overheads were not calibrated on."""
    src = make_layer(f"s3://{bucket}/big", image_data((448, 384, 64), seed=3), chunk_size=(64, 64, 32),
                     resolution=(4, 4, 30))  # fmt: skip
    plan = unchanged(boto, bucket, plans.plan_downsampling, src, num_mips=3)
    check("held-out downsample", plan, lambda: run_all(tc.create_downsampling_tasks(src, num_mips=3)), log, boto,
          bucket)  # fmt: skip
    dest = f"s3://{bucket}/big-copy"
    kwargs = dict(chunk_size=(128, 128, 32), skip_downsamples=True, encoding="png")
    plan = unchanged(boto, bucket, plans.plan_transfer, src, dest, **kwargs)
    check("held-out xfer png", plan, lambda: run_all(tc.create_transfer_tasks(src, dest, **kwargs)), log, boto, bucket)
    sharded = f"s3://{bucket}/big-sharded"
    plan = unchanged(boto, bucket, plans.plan_image_shard_transfer, src, sharded, memory_target=int(3e7))
    check("held-out xfer --sharded", plan,
          lambda: run_all(tc.create_image_shard_transfer_tasks(src, sharded, memory_target=int(3e7))), log, boto,
          bucket)  # fmt: skip


def test_accuracy_table():
    """Not a check: prints predicted vs counted requests and bytes (run with -s to see it)."""
    for case, predicted, actual, pbytes, abytes in ACCURACY:
        reqs = " ".join(f"{k} {predicted[k]}/{actual[k]}" for k in REQUEST_KINDS if predicted[k] or actual[k])
        print(f"{case:<26} requests {reqs}; bytes {pbytes:,}/{abytes:,}")
