"""``--dry-run`` figures against a real run of the same plan on file:// (issue 14).

For every planning command: the dry run writes nothing (the directory tree is byte-identical),
its task count is exact, and the bytes the real run then writes are within 20% of the estimate.
tests/services/test_dry_run_s3.py checks request counts against moto's request log.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from taskqueue import LocalTaskQueue

import igneous.plans.mesh
import igneous.task_creation as tc
from igneous.plan import report
from igneous.task_creation import plans
from igneous_cli import main
from tests.conftest import make_layer, tree

BYTES_TOLERANCE = 0.20
ACCURACY = []  # (case, predicted, actual) for the report printed at the end of the module


def image_data(shape=(320, 256, 32), seed=0) -> np.ndarray:
    """Smooth structure plus noise: compresses like EM, not like a constant or white noise."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    smooth = 128 + 60 * np.sin(x / 17.0) * np.cos(y / 23.0) + 20 * np.sin(z / 5.0)
    return (smooth + rng.normal(0, 12, shape)).clip(0, 255).astype(np.uint8)


def segmentation_data(shape=(128, 128, 96), cells=40, seed=1) -> np.ndarray:
    """Voronoi cells: a dense segmentation whose statistics are the same everywhere (like EM labels)."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, 1, (cells, 3)) * np.array(shape)
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    _, nearest = cKDTree(seeds).query(grid)
    return (nearest.reshape(shape) + 1).astype(np.uint64) * 1000 + 7


def written(before: dict, after: dict, root) -> tuple[int, int]:
    """(files, bytes) the run created or changed under ``root``, besides info and provenance
    (a few hundred bytes that plans leave out)."""
    changed = [name for name, digest in after.items() if before.get(name) != digest and not _metadata(name)]
    return len(changed), sum(os.path.getsize(os.path.join(root, name)) for name in changed)


def data_tree(root) -> dict:
    return {k: v for k, v in tree(root).items() if not k.startswith(".cloud")}


def check(case: str, plan, root, run, files_exact: bool = False) -> None:
    """The plan's task count is the run's, and its bytes are within 20% of what the run writes."""
    before = data_tree(root)
    tasks = run()
    after = data_tree(root)
    files, nbytes = written(before, after, root)
    assert plan.tasks == len(tasks), (case, plan.tasks, len(tasks))
    ACCURACY.append((case, plan.bytes_written, nbytes, plan.files_written, files))
    assert abs(plan.bytes_written - nbytes) <= BYTES_TOLERANCE * nbytes, (case, plan.bytes_written, nbytes)
    if files_exact:
        assert plan.files_written == files, (case, plan.files_written, files)


def _metadata(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base in ("info", "provenance") or base.endswith(".partial")


def run_all(tasks) -> list:
    tasks = list(tasks)
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)
    return tasks


@pytest.fixture
def img(tmp_path):
    return make_layer(f"file://{tmp_path}/img", image_data(), chunk_size=(64, 64, 16), resolution=(8, 8, 40))


@pytest.fixture
def seg(tmp_path):
    return make_layer(
        f"file://{tmp_path}/seg", segmentation_data(), chunk_size=(64, 64, 32), encoding="compressed_segmentation",
        resolution=(16, 16, 40),
    )  # fmt: skip


def dry(tmp_path, creator_plan, *args, **kwargs):
    """Plan, and prove the plan wrote nothing."""
    before = data_tree(tmp_path)
    plan = creator_plan(*args, **kwargs)
    assert data_tree(tmp_path) == before
    return plan


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_mips": 3},  # raw + gzip, average pooling
        {"num_mips": 2, "encoding": "png"},  # re-encoded levels
        {"num_mips": 2, "bounds": [64, 64, 0, 256, 320, 32], "chunk_size": (32, 32, 16)},  # part, rechunked
    ],
)
def test_downsample(tmp_path, img, kwargs):
    plan = dry(tmp_path, plans.plan_downsampling, img, **kwargs)
    check(f"downsample {sorted(kwargs)}", plan, tmp_path, lambda: run_all(tc.create_downsampling_tasks(img, **kwargs)),
          files_exact=True)  # fmt: skip


def test_downsample_segmentation(tmp_path, seg):
    plan = dry(tmp_path, plans.plan_downsampling, seg, num_mips=2)
    assert plan.stage == "downsample_segmentation"
    check("downsample seg", plan, tmp_path, lambda: run_all(tc.create_downsampling_tasks(seg, num_mips=2)),
          files_exact=True)  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chunk_size": (128, 128, 16), "max_mips": 2},  # rechunk + pyramid
        {"skip_downsamples": True},  # same layout: files copied
        {"encoding": "jpeg", "skip_downsamples": True, "translate": (8, 0, 0)},  # re-encoded, shifted
    ],
)
def test_transfer(tmp_path, img, kwargs):
    dest = f"file://{tmp_path}/dest"
    plan = dry(tmp_path, plans.plan_transfer, img, dest, **kwargs)
    check(f"xfer {sorted(kwargs)}", plan, tmp_path, lambda: run_all(tc.create_transfer_tasks(img, dest, **kwargs)),
          files_exact=True)  # fmt: skip


def test_shard_transfer_and_downsample(tmp_path, img):
    dest = f"file://{tmp_path}/sharded"
    plan = dry(tmp_path, plans.plan_image_shard_transfer, img, dest, memory_target=int(2e7))
    check(
        "xfer --sharded",
        plan,
        tmp_path,
        lambda: run_all(tc.create_image_shard_transfer_tasks(img, dest, memory_target=int(2e7))),
        files_exact=True,
    )
    plan = dry(tmp_path, plans.plan_image_shard_downsample, dest, num_mips=2, memory_target=int(1e8))
    check("downsample --sharded", plan, tmp_path,
          lambda: run_all(tc.create_image_shard_downsample_tasks(dest, num_mips=2, memory_target=int(1e8))),
          files_exact=True)  # fmt: skip


def test_voxel_counting(tmp_path, seg):
    plan = dry(tmp_path, plans.plan_voxel_counting, seg, 0)
    check("voxels count", plan, tmp_path, lambda: run_all(tc.create_voxel_counting_tasks(seg, 0)), files_exact=True)


def test_mesh_forge_and_merges(tmp_path, seg):
    shape = (64, 64, 48)
    plan = dry(tmp_path, plans.plan_meshing, seg, 0, shape=shape)
    check("mesh forge", plan, tmp_path, lambda: run_all(tc.create_meshing_tasks(seg, 0, shape=shape)))
    plan = dry(tmp_path, plans.plan_mesh_manifest, seg, magnitude=2)
    check("mesh merge", plan, tmp_path, lambda: run_all(tc.create_mesh_manifest_tasks(seg, magnitude=2)),
          files_exact=True)  # fmt: skip


def test_mesh_unsharded_multires_merge(tmp_path, seg):
    shape = (64, 64, 48)
    run_all(tc.create_meshing_tasks(seg, 0, shape=shape))
    plan = dry(tmp_path, plans.plan_unsharded_multires_merge, seg, num_lod=1, magnitude=1)
    check("mesh merge --nlod 1", plan, tmp_path,
          lambda: run_all(tc.create_unsharded_multires_mesh_tasks(seg, num_lod=1, magnitude=1)))  # fmt: skip


def test_forge_of_big_tasks_samples_a_sub_box(tmp_path, seg, monkeypatch):
    """Tasks bigger than the sampling budget: one centred sub-box is forged and scaled up, a
    statistical estimate: bytes within a factor of 1.5 of the run, fragment files within 2."""
    monkeypatch.setattr(igneous.plans.mesh, "FORGE_SAMPLE_VOXELS", 40**3)
    shape = (96, 96, 96)
    plan = dry(tmp_path, plans.plan_meshing, seg, 0, shape=shape)
    assert "40x40x40" in plan.sample["forged"] or "1 box" in plan.sample["forged"]
    before = data_tree(tmp_path)
    run_all(tc.create_meshing_tasks(seg, 0, shape=shape))
    files, nbytes = written(before, data_tree(tmp_path), tmp_path)
    assert 1 / 1.5 < plan.bytes_written / nbytes < 1.5, (plan.bytes_written, nbytes)
    assert 1 / 2 < plan.files_written / files < 2, (plan.files_written, files)


def test_mesh_sharded_forge_and_merge(tmp_path, seg):
    shape = (64, 64, 48)
    plan = dry(tmp_path, plans.plan_meshing, seg, 0, shape=shape, sharded=True)
    check(
        "mesh forge --sharded",
        plan,
        tmp_path,
        lambda: run_all(tc.create_meshing_tasks(seg, 0, shape=shape, sharded=True)),
        files_exact=True,
    )
    plan = dry(tmp_path, plans.plan_sharded_multires_merge, seg, num_lod=1)
    check("mesh merge-sharded", plan, tmp_path,
          lambda: run_all(tc.create_sharded_multires_mesh_tasks(seg, num_lod=1)))  # fmt: skip


# -- the command line --------------------------------------------------------------------------


def cli(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def test_cli_dry_run_prints_and_writes_nothing(tmp_path, img, seg):
    before = data_tree(tmp_path)
    out = cli("image", "downsample", img, "--num-mips", "2", "--dry-run").output
    assert "DownsampleTask" in out and "mip 2 (32_32_40)" in out and "nothing was written" in out
    assert "core-hours" in out and "Cost total" not in out  # no price given, none invented
    out = cli("image", "xfer", img, f"file://{tmp_path}/copy", "--chunk-size", "128,128,16", "--dry-run").output
    assert "TransferTask" in out
    cli("image", "xfer", img, f"file://{tmp_path}/copy2", "--sharded", "--memory", "20000000", "--dry-run")
    cli("image", "voxels", "count", seg, "--dry-run")
    cli("mesh", "forge", seg, "--shape", "64,64,48", "--dry-run")
    assert data_tree(tmp_path) == before


def test_cli_dry_run_of_merges_and_design(tmp_path, seg, img):
    run_all(tc.create_meshing_tasks(seg, 0, shape=(64, 64, 48)))
    before = data_tree(tmp_path)
    assert "MeshManifest" in cli("mesh", "merge", seg, "--dry-run").output
    out = cli("mesh", "merge", seg, "--nlod", "2", "--dry-run", "--json").output
    assert json.loads(out)["task"] == "MultiResUnshardedMeshMergeTask"
    out = cli("design", "shard-ds", img, "--num-mips", "2", "--memory", "100000000").output
    assert "Plan: image downsample --sharded" in out and "Requests: GET" in out
    assert data_tree(tmp_path) == before
    seg2 = make_layer(f"file://{tmp_path}/seg2", segmentation_data(), chunk_size=(64, 64, 32),
                      encoding="compressed_segmentation")  # fmt: skip
    run_all(tc.create_meshing_tasks(seg2, 0, shape=(64, 64, 48), sharded=True))
    before = data_tree(tmp_path)
    out = cli("mesh", "merge-sharded", seg2, "--dry-run", "--workers", "2", "--price-per-1k-put", "0.005").output
    assert "MultiResShardedMeshMergeTask" in out and "Cost total" in out and "Wall time" in out
    assert data_tree(tmp_path) == before


def test_cli_dry_run_json_workers_and_prices(tmp_path, img):
    out = cli(
        "image", "downsample", img, "--num-mips", "2", "--dry-run", "--json", "--workers", "3",
        "--price-core-hour", "0.05", "--price-per-1k-put", "0.005", "--price-per-1k-get", "0.0004",
    ).output  # fmt: skip
    data = json.loads(out)
    assert data["tasks"] == plans.plan_downsampling(img, num_mips=2).tasks > 0
    assert set(data["requests"]) == {"GET", "PUT", "LIST", "HEAD", "DELETE"}
    assert data["workers"] == 3 and data["wall_hours"] > 0
    items = {i["what"]: i for i in data["cost"]["items"]}
    assert items["PUT requests"]["cost"] == pytest.approx(data["requests"]["PUT"] / 1000 * 0.005)
    assert items["LIST requests" if data["requests"]["LIST"] else "PUT requests"]
    assert data["cost"]["total"] == pytest.approx(sum(i["cost"] for i in data["cost"]["items"]))
    assert data["throughput"]["source"] and data["throughput"]["date"]


def test_cli_pricing_options_need_dry_run(img):
    result = cli("image", "downsample", img, "--json", code=2)
    assert "only apply with --dry-run" in result.output
    cli("image", "downsample", img, "--dry-run", "--workers", "0", code=2)
    cli("image", "downsample", img, "--dry-run", "--price-core-hour", "-1", code=2)


def test_report_without_workers_or_prices_has_no_wall_time_or_cost(tmp_path, img):
    data = report(plans.plan_downsampling(img, num_mips=1))
    assert "wall_hours" not in data and "cost" not in data and data["cpu_hours"] > 0


def test_accuracy_table():
    """Not a check: prints predicted vs actual bytes of the cases above (run with -s to see it)."""
    for case, predicted, actual, pfiles, afiles in ACCURACY:
        print(f"{case:<55} bytes {predicted:>10,} vs {actual:>10,} ({predicted / max(1, actual) - 1:+.1%}); "
              f"files {pfiles} vs {afiles}")  # fmt: skip
