"""``skeleton forge|merge|merge-sharded --dry-run`` against a real run of the same plan on
file:// (as tests/integration/test_dry_run.py does for meshes): the dry run writes nothing, its
task count is exact and the bytes the run then writes are within 20% of the estimate.
tests/services/test_dry_run_s3.py checks the request counts against moto's request log.
"""

from __future__ import annotations

import json

import pytest

import igneous.plans.skeleton
import igneous.task_creation as tc
from igneous.task_creation import plans
from tests.integration.test_dry_run import ACCURACY, check, cli, data_tree, dry, run_all, written
from tests.skeleton.conftest import DUST_VOXELS, MIN_CABLE, SHAPE, TEASAR, copy_layer

FORGE = dict(shape=SHAPE, teasar_params=TEASAR, dust_threshold=DUST_VOXELS)


@pytest.fixture
def seg(tmp_path, seg_layer):
    return copy_layer(seg_layer, tmp_path / "seg")


def test_forge_and_merge(tmp_path, seg, monkeypatch):
    monkeypatch.setattr(igneous.plans.skeleton, "MERGE_SAMPLE_LABELS", 1000)
    plan = dry(tmp_path, plans.plan_skeletonizing, seg, 0, **FORGE)
    assert plan.task == "SkeletonTask" and plan.stage == "skeleton_forge" and plan.tasks == 8
    check("skeleton forge", plan, tmp_path, lambda: run_all(tc.create_skeletonizing_tasks(seg, 0, **FORGE)),
          files_exact=True)  # fmt: skip
    merge = dict(magnitude=1, dust_threshold=MIN_CABLE, tick_threshold=0)
    plan = dry(tmp_path, plans.plan_unsharded_skeleton_merge, seg, **merge)
    assert plan.sample["labels_merged"] == plan.sample["labels"] > 1  # few labels: all merged, exact
    check("skeleton merge", plan, tmp_path, lambda: run_all(tc.create_unsharded_skeleton_merge_tasks(seg, **merge)),
          files_exact=True)  # fmt: skip


def test_merge_of_many_labels_is_sampled(tmp_path, seg, monkeypatch):
    """More labels than the sample: bytes and kept labels scaled from the merged ones (a
    statistical estimate, within a factor of 1.5 of the run)."""
    run_all(tc.create_skeletonizing_tasks(seg, 0, **FORGE))
    monkeypatch.setattr(igneous.plans.skeleton, "MERGE_SAMPLE_LABELS", 8)
    merge = dict(magnitude=1, dust_threshold=MIN_CABLE, tick_threshold=0)
    plan = dry(tmp_path, plans.plan_unsharded_skeleton_merge, seg, **merge)
    assert plan.sample["labels_merged"] == 8 < plan.sample["labels"]
    before = data_tree(tmp_path)
    run_all(tc.create_unsharded_skeleton_merge_tasks(seg, **merge))
    files, nbytes = written(before, data_tree(tmp_path), tmp_path)
    assert 1 / 1.5 < plan.bytes_written / nbytes < 1.5, (plan.bytes_written, nbytes)
    assert 1 / 1.5 < plan.files_written / files < 1.5, (plan.files_written, files)


def test_forge_of_big_tasks_samples_a_sub_box(tmp_path, seg, monkeypatch):
    """Tasks bigger than the sampling budget: one centred sub-box is forged and scaled up."""
    monkeypatch.setattr(igneous.plans.skeleton, "FORGE_SAMPLE_VOXELS", 48**3)
    kwargs = dict(FORGE, shape=(128, 128, 64))
    plan = dry(tmp_path, plans.plan_skeletonizing, seg, 0, **kwargs)
    assert "1 box" in plan.sample["forged"]
    before = data_tree(tmp_path)
    run_all(tc.create_skeletonizing_tasks(seg, 0, **kwargs))
    files, nbytes = written(before, data_tree(tmp_path), tmp_path)
    assert 1 / 2 < plan.bytes_written / nbytes < 2, (plan.bytes_written, nbytes)
    assert 1 / 2 < plan.files_written / files < 2, (plan.files_written, files)


def test_sharded_forge_and_merge(tmp_path, seg):
    plan = dry(tmp_path, plans.plan_skeletonizing, seg, 0, sharded=True, **FORGE)
    check("skeleton forge --sharded", plan, tmp_path,
          lambda: run_all(tc.create_skeletonizing_tasks(seg, 0, sharded=True, **FORGE)), files_exact=True)  # fmt: skip
    merge = dict(dust_threshold=MIN_CABLE, tick_threshold=0, max_labels_per_shard=20)
    plan = dry(tmp_path, plans.plan_sharded_skeleton_merge, seg, **merge)
    assert plan.tasks > 1
    check("skeleton merge-sharded", plan, tmp_path,
          lambda: run_all(tc.create_sharded_skeleton_merge_tasks(seg, **merge)), files_exact=True)  # fmt: skip


def test_cli_dry_runs_print_and_write_nothing(tmp_path, seg, seg_layer):
    before = data_tree(tmp_path)
    out = cli("skeleton", "forge", seg, "--shape", "80,80,48", "--dry-run").output
    assert "SkeletonTask" in out and "core-hours" in out and "nothing was written" in out
    data = json.loads(cli("skeleton", "forge", seg, "--shape", "80,80,48", "--sharded", "--dry-run", "--json").output)
    assert data["tasks"] == 8 and data["task"] == "SkeletonTask" and data["bytes_written"] > 0
    assert data_tree(tmp_path) == before
    run_all(tc.create_skeletonizing_tasks(seg, 0, **FORGE))
    before = data_tree(tmp_path)
    out = cli("skeleton", "merge", seg, "--magnitude", "1", "--dry-run", "--json").output
    assert json.loads(out)["task"] == "UnshardedSkeletonMergeTask"
    assert data_tree(tmp_path) == before
    sharded = copy_layer(seg_layer, tmp_path / "sharded")
    run_all(tc.create_skeletonizing_tasks(sharded, 0, sharded=True, **FORGE))
    before = data_tree(tmp_path)
    out = cli("skeleton", "merge-sharded", sharded, "--dry-run", "--workers", "2", "--price-per-1k-put", "0.005")
    assert "ShardedSkeletonMergeTask" in out.output and "Cost total" in out.output and "Wall time" in out.output
    assert data_tree(tmp_path) == before
    cli("skeleton", "merge", seg, "--json", code=2)  # pricing options need --dry-run


def test_accuracy_table():
    """Not a check: prints predicted vs actual bytes of the cases above (run with -s to see it)."""
    for case, predicted, actual, pfiles, afiles in ACCURACY:
        if case.startswith("skeleton"):
            print(f"{case:<28} bytes {predicted:>9,} vs {actual:>9,} ({predicted / max(1, actual) - 1:+.1%}); "
                  f"files {pfiles} vs {afiles}")  # fmt: skip
