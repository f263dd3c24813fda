"""``--dry-run`` of image create, contrast and CCL against real runs on S3 (moto on loopback):
requests counted in moto's own request log within 10%, task counts exact, bytes within 20%,
the bucket unchanged by the dry run. The harness is tests/services/test_dry_run_s3.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

import igneous.task_creation as tc
from igneous.plan import REQUEST_KINDS
from igneous.plans import ccl as ccl_plans
from igneous.plans.contrast import plan_clahe_run, plan_equalize, plan_luminance_levels
from igneous.plans.ingest import plan_image_create
from igneous.task_creation.ingest import create_image_from_array, create_image_stack_tasks
from igneous.tasks.image.ccl import create_relabeling
from tests.conftest import make_layer
from tests.integration.test_dry_run import image_data, segmentation_data
from tests.services.test_dry_run_s3 import ACCURACY, bucket, check, log, run_all, unchanged  # noqa: F401


def test_image_create_on_s3(tmp_path, boto, bucket, log):  # noqa: F811
    import tifffile

    img = image_data((300, 260, 40), seed=5)
    (tmp_path / "stack").mkdir()
    for z in range(img.shape[2]):
        tifffile.imwrite(tmp_path / "stack" / f"s_{z:03d}.tif", np.ascontiguousarray(img[:, :, z].T))
    np.save(tmp_path / "a.npy", np.asfortranarray(img))
    kwargs = dict(chunk_size=(64, 64, 16), compress="gzip", memory_target=int(4e6))
    stack, dest = str(tmp_path / "stack"), f"s3://{bucket}/created"
    plan = unchanged(boto, bucket, plan_image_create, stack, dest, **kwargs)
    check("s3 create stack", plan, lambda: run_all(create_image_stack_tasks(stack, dest, **kwargs)), log, boto, bucket)
    array, dest = str(tmp_path / "a.npy"), f"s3://{bucket}/created-array"
    plan = unchanged(boto, bucket, plan_image_create, array, dest, encoding="png", **kwargs)
    check("s3 create array png", plan, lambda: [create_image_from_array(array, dest, encoding="png", **kwargs)], log,
          boto, bucket)  # fmt: skip


def test_contrast_on_s3(boto, bucket, log):  # noqa: F811
    src = make_layer(f"s3://{bucket}/em", image_data((256, 256, 32), seed=6), chunk_size=(64, 64, 16),
                     resolution=(8, 8, 40))  # fmt: skip
    plan = unchanged(boto, bucket, plan_luminance_levels, src)
    check("s3 contrast histogram", plan, lambda: run_all(tc.create_luminance_levels_tasks(src)), log, boto, bucket)
    dest, kwargs = f"s3://{bucket}/eq", dict(shape=(128, 128, 16))
    plan = unchanged(boto, bucket, plan_equalize, src, dest, **kwargs)
    check("s3 contrast equalize", plan, lambda: run_all(tc.create_contrast_normalization_tasks(src, dest, **kwargs)),
          log, boto, bucket)  # fmt: skip
    dest = f"s3://{bucket}/clahe"
    plan = unchanged(boto, bucket, plan_clahe_run, src, dest, **kwargs)
    check("s3 contrast clahe", plan, lambda: run_all(tc.create_clahe_tasks(src, dest, **kwargs)), log, boto, bucket)


@pytest.mark.parametrize("dust", [0, 50])
def test_ccl_steps_on_s3(boto, bucket, log, dust):  # noqa: F811
    seg = make_layer(
        f"s3://{bucket}/seg{dust}", segmentation_data((128, 128, 96), cells=30), chunk_size=(64, 64, 32),
        encoding="compressed_segmentation", resolution=(16, 16, 40),
    )  # fmt: skip
    shape, kw = (64, 64, 32), dict(dust_threshold=dust)
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_faces, seg, 0, shape, **kw)
    check(f"s3 ccl faces dust {dust}", plan, lambda: run_all(tc.create_ccl_face_tasks(seg, 0, shape, **kw)), log, boto,
          bucket)  # fmt: skip
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_links, seg, 0, shape, **kw)
    check(f"s3 ccl links dust {dust}", plan, lambda: run_all(tc.create_ccl_equivalence_tasks(seg, 0, shape, **kw)),
          log, boto, bucket)  # fmt: skip
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_calc_labels, seg, 0, shape)
    check(f"s3 ccl calc-labels dust {dust}", plan, lambda: [create_relabeling(seg, 0, shape)], log, boto, bucket)
    dest = f"s3://{bucket}/seg{dust}-cc"
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_relabel_run, seg, dest, 0, shape, **kw)
    check(f"s3 ccl relabel dust {dust}", plan, lambda: run_all(tc.create_ccl_relabel_tasks(seg, dest, 0, shape, **kw)),
          log, boto, bucket)  # fmt: skip


def test_ccl_auto_on_s3(boto, bucket, log):  # noqa: F811
    """Priced before any step ran; run with --no-clean, so the bytes of the intermediate files count."""
    from click.testing import CliRunner

    from igneous_cli import main

    seg = make_layer(
        f"s3://{bucket}/segauto", segmentation_data((128, 128, 96), cells=30, seed=4), chunk_size=(64, 64, 32),
        encoding="compressed_segmentation", resolution=(16, 16, 40),
    )  # fmt: skip
    dest, shape = f"s3://{bucket}/segauto-cc", (64, 64, 96)
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_auto, seg, dest, 0, shape, clean=False)

    def run():
        args = ["image", "ccl", "auto", seg, dest, "--shape", "64,64,96", "--no-clean"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return [None] * 3 * 4  # faces, links and relabel tasks of the 2x2x1 grid

    check("s3 ccl auto --no-clean", plan, run, log, boto, bucket)


def test_ccl_auto_with_clean_and_dust_on_s3(boto, bucket, log):  # noqa: F811
    """With --clean the intermediate files are listed and deleted: requests (not bytes: they are
    gone) against moto's log."""
    from click.testing import CliRunner

    from igneous_cli import main

    seg = make_layer(
        f"s3://{bucket}/segclean", segmentation_data((128, 128, 96), cells=30, seed=8), chunk_size=(64, 64, 32),
        encoding="compressed_segmentation", resolution=(16, 16, 40),
    )  # fmt: skip
    dest = f"s3://{bucket}/segclean-cc"
    plan = unchanged(boto, bucket, ccl_plans.plan_ccl_auto, seg, dest, 0, (64, 64, 32), dust_threshold=100)
    before = log.settled()
    result = CliRunner().invoke(main, ["image", "ccl", "auto", seg, dest, "--shape", "64,64,32", "--dust", "100"])
    assert result.exit_code == 0, result.output
    after = log.settled()
    actual = {kind: (after - before).get(kind, 0) for kind in REQUEST_KINDS}
    predicted = {kind: int(plan.requests.get(kind, 0)) for kind in REQUEST_KINDS}
    ACCURACY.append(("s3 ccl auto --dust 100 (clean)", predicted, actual, plan.bytes_written, 0))
    assert abs(sum(predicted.values()) - sum(actual.values())) <= 0.1 * sum(actual.values()), (predicted, actual)
    for kind in ("GET", "PUT", "DELETE"):
        assert abs(predicted[kind] - actual[kind]) <= 0.1 * actual[kind], (kind, predicted, actual)


def test_accuracy_table():
    """Not a check: prints predicted vs counted requests and bytes (run with -s to see it)."""
    for case, predicted, actual, pbytes, abytes in ACCURACY:
        reqs = " ".join(f"{k} {predicted[k]}/{actual[k]}" for k in REQUEST_KINDS if predicted[k] or actual[k])
        print(f"{case:<32} requests {reqs}; bytes {pbytes:,}/{abytes:,}")
