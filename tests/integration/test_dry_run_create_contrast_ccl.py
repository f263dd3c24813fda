"""``--dry-run`` of image create, contrast and CCL against real runs on file:// (issue 14): the
dry run writes nothing (the tree is byte-identical), task counts are exact, and the bytes the run
then writes are within 20% of the plan (files exact where the grid fixes them). The harness is
tests/integration/test_dry_run.py's; tests/services/test_dry_run_s3_create_contrast_ccl.py
checks the requests on S3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import igneous.plans.ccl as ccl_plans
import igneous.task_creation as tc
from igneous.plans.contrast import plan_clahe_run, plan_equalize, plan_luminance_levels
from igneous.plans.ingest import plan_image_create
from igneous.task_creation.ingest import create_image_from_array, create_image_stack_tasks
from igneous.tasks.image.ccl import clean_intermediate_files, create_relabeling
from tests.conftest import make_layer
from tests.integration.test_dry_run import (
    ACCURACY,
    check,
    cli,
    data_tree,
    dry,
    image_data,
    run_all,
    segmentation_data,
    written,
)

SHAPE = (64, 64, 32)  # CCL tasks: a 2x2x3 grid over the segmentation


@pytest.fixture
def img(tmp_path):
    return make_layer(f"file://{tmp_path}/img", image_data((320, 256, 32)), chunk_size=(64, 64, 16),
                      resolution=(8, 8, 40))  # fmt: skip


@pytest.fixture
def seg(tmp_path):
    return make_layer(
        f"file://{tmp_path}/seg", segmentation_data(), chunk_size=(64, 64, 32), encoding="compressed_segmentation",
        resolution=(16, 16, 40),
    )  # fmt: skip


@pytest.fixture
def sources(tmp_path):
    """The same image as a TIFF series, a PNG series and a .npy (outside the layers compared)."""
    import tifffile
    from PIL import Image

    data = image_data((300, 260, 40), seed=2)
    for kind in ("tif", "png"):
        (tmp_path / "src" / kind).mkdir(parents=True)
    for z in range(data.shape[2]):
        page = np.ascontiguousarray(data[:, :, z].T)
        tifffile.imwrite(tmp_path / "src" / "tif" / f"s_{z:03d}.tif", page)
        Image.fromarray(page).save(tmp_path / "src" / "png" / f"s_{z:03d}.png")
    np.save(tmp_path / "src" / "a.npy", np.asfortranarray(data))
    return tmp_path / "src"


def one(result) -> list:
    return [result]


@pytest.mark.parametrize(
    "source, kwargs",
    [
        ("tif", {"chunk_size": (64, 64, 16), "compress": "gzip"}),  # whole-slice tasks
        ("tif", {"chunk_size": (64, 64, 8), "encoding": "jpeg", "memory_target": int(2e6)}),  # split in y, lossy
        ("png", {"chunk_size": (64, 64, 16), "encoding": "png"}),  # decoded whole
        ("a.npy", {"chunk_size": (64, 64, 16), "compress": "br", "memory_target": int(2e6)}),  # array, in blocks
    ],
)
def test_image_create(tmp_path, sources, source, kwargs):
    src, dest = str(sources / source), f"file://{tmp_path}/layer"
    plan = dry(tmp_path, plan_image_create, src, dest, **kwargs)
    if source.endswith(".npy"):
        assert plan.tasks == 1 and plan.sample["write_blocks"] > 1  # synchronous, in several blocks
        run = lambda: one(create_image_from_array(src, dest, **kwargs))  # noqa: E731
    else:
        run = lambda: run_all(create_image_stack_tasks(src, dest, **kwargs))  # noqa: E731
    check(f"create {source} {sorted(kwargs)}", plan, tmp_path, run, files_exact=True)


def test_contrast_histogram(tmp_path, img):
    plan = dry(tmp_path, plan_luminance_levels, img, coverage_factor=0.5)
    check("contrast histogram", plan, tmp_path, lambda: run_all(tc.create_luminance_levels_tasks(img, coverage_factor=0.5)),
          files_exact=True)  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (128, 128, 16)},  # 2 pyramid levels per task
        {"shape": (256, 256, 16), "translate": (64, 0, 0), "clip_fraction": 0.05},  # 3 levels, shifted, harder stretch
    ],
)
def test_contrast_equalize(tmp_path, img, kwargs):
    run_all(tc.create_luminance_levels_tasks(img))
    dest = f"file://{tmp_path}/eq"
    plan = dry(tmp_path, plan_equalize, img, dest, **kwargs)
    check(f"contrast equalize {sorted(kwargs)}", plan, tmp_path,
          lambda: run_all(tc.create_contrast_normalization_tasks(img, dest, **kwargs)), files_exact=True)  # fmt: skip


@pytest.mark.parametrize("kwargs", [{"shape": (128, 128, 16)}, {"clip_limit": 10.0}])  # 64-px tiles; default shape
def test_contrast_clahe(tmp_path, img, kwargs):
    dest = f"file://{tmp_path}/clahe"
    plan = dry(tmp_path, plan_clahe_run, img, dest, **kwargs)
    check(f"contrast clahe {sorted(kwargs)}", plan, tmp_path, lambda: run_all(tc.create_clahe_tasks(img, dest, **kwargs)),
          files_exact=True)  # fmt: skip


@pytest.mark.parametrize("kwargs", [{}, {"dust_threshold": 2000, "connectivity": 26}])
def test_ccl_steps(tmp_path, seg, kwargs):
    plan = dry(tmp_path, ccl_plans.plan_ccl_faces, seg, 0, SHAPE, **kwargs)
    check(f"ccl faces {sorted(kwargs)}", plan, tmp_path, lambda: run_all(tc.create_ccl_face_tasks(seg, 0, SHAPE, **kwargs)),
          files_exact=True)  # fmt: skip
    plan = dry(tmp_path, ccl_plans.plan_ccl_links, seg, 0, SHAPE, **kwargs)
    check(f"ccl links {sorted(kwargs)}", plan, tmp_path,
          lambda: run_all(tc.create_ccl_equivalence_tasks(seg, 0, SHAPE, **kwargs)), files_exact=True)  # fmt: skip
    plan = dry(tmp_path, ccl_plans.plan_ccl_calc_labels, seg, 0, SHAPE)
    check(f"ccl calc-labels {sorted(kwargs)}", plan, tmp_path, lambda: one(create_relabeling(seg, 0, SHAPE)),
          files_exact=True)  # fmt: skip
    dest = f"file://{tmp_path}/cc"
    plan = dry(tmp_path, ccl_plans.plan_ccl_relabel_run, seg, dest, 0, SHAPE, encoding="crackle", **kwargs)
    check(f"ccl relabel {sorted(kwargs)}", plan, tmp_path,
          lambda: run_all(tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, encoding="crackle", **kwargs)),
          files_exact=True)  # fmt: skip


def test_ccl_auto_priced_before_any_step(tmp_path, seg):
    """Links and calc-labels are estimated from the faces sample: all bytes within 20% together."""
    dest = f"file://{tmp_path}/auto"
    plan = dry(tmp_path, ccl_plans.plan_ccl_auto, seg, dest, 0, SHAPE, clean=False)
    assert plan.tasks == 3 * 12 and plan.stage == "ccl_auto"

    def run():
        cli("image", "ccl", "auto", seg, dest, "--shape", "64,64,32", "--no-clean")
        return [None] * plan.tasks  # the command runs its tasks itself; the grid is 2x2x3

    check("ccl auto --no-clean", plan, tmp_path, run, files_exact=True)
    clean_intermediate_files(seg, 0)
    with_clean = dry(tmp_path, ccl_plans.plan_ccl_auto, seg, f"file://{tmp_path}/auto2", 0, SHAPE)
    assert with_clean.requests["DELETE"] >= 1 and any("--clean" in n for n in with_clean.notes)


def test_ccl_auto_on_real_em_labels_with_sub_boxes(tmp_path, monkeypatch):
    """The shared EM segmentation (a 256x256x128 crop): 128^3 tasks priced from eight 64^3 boxes."""
    import crackle

    from tests.conftest import SAMPLE_SEGMENTATION

    labels = np.asfortranarray(crackle.load(SAMPLE_SEGMENTATION)[128:384, 128:384, 192:320])
    src = make_layer(f"file://{tmp_path}/em", labels, chunk_size=(64, 64, 64), encoding="compressed_segmentation",
                     resolution=(16, 16, 40))  # fmt: skip
    monkeypatch.setattr(ccl_plans, "CCL_SAMPLE_VOXELS", 8 * 64**3)
    dest = f"file://{tmp_path}/em-cc"
    plan = dry(tmp_path, ccl_plans.plan_ccl_auto, src, dest, 0, (128, 128, 128), clean=False)
    assert plan.sample["sub_box"] == "64x64x64"

    def run():
        cli("image", "ccl", "auto", src, dest, "--shape", "128,128,128", "--no-clean")
        return [None] * plan.tasks  # the 2x2x1 grid's faces, links and relabel tasks

    check("ccl auto, real EM labels, sub-boxes", plan, tmp_path, run, files_exact=True)


def test_ccl_tasks_bigger_than_the_budget_sample_a_sub_box(tmp_path, seg, monkeypatch):
    """One sub-box labelled and scaled up (labels by volume, faces by area): within a factor 1.5."""
    monkeypatch.setattr(ccl_plans, "CCL_SAMPLE_VOXELS", 8 * 32**3)  # eight boxes of 40x40x20
    plan = dry(tmp_path, ccl_plans.plan_ccl_faces, seg, 0, SHAPE)
    assert plan.sample["sub_box"] and any("statistical" in n for n in plan.notes)
    before = data_tree(tmp_path)
    run_all(tc.create_ccl_face_tasks(seg, 0, SHAPE))
    files, nbytes = written(before, data_tree(tmp_path), tmp_path)
    assert plan.files_written == files
    assert 1 / 1.5 < plan.bytes_written / nbytes < 1.5, (plan.bytes_written, nbytes)
    print(f"ccl faces, sub-boxes {plan.sample['sub_box']}: bytes {plan.bytes_written:,} vs {nbytes:,}")


# -- the command line --------------------------------------------------------------------------


def test_cli_dry_runs_print_and_write_nothing(tmp_path, img, seg, sources):
    before = data_tree(tmp_path)
    out = cli("image", "create", sources / "tif", f"file://{tmp_path}/new", "--chunk-size", "64,64,16", "--dry-run").output
    assert "ImageStackIngestTask" in out and "nothing was written" in out and "core-hours" in out
    data = json.loads(cli("image", "create", sources / "a.npy", f"file://{tmp_path}/new", "--dry-run", "--json").output)
    assert data["task"].startswith("create_image_from_array") and data["bytes_written"] > 0
    out = cli("design", "ingest", sources / "png", "--chunk-size", "64,64,16").output
    assert "Task shape" in out and "Plan: image create" in out and "Requests: GET" in out
    out = cli("image", "contrast", "histogram", img, "--dry-run", "--workers", "4", "--price-core-hour", "0.05").output
    assert "LuminanceLevelsTask" in out and "Wall time" in out and "Cost total" in out
    assert "Plan: image ccl auto" in cli("image", "ccl", "auto", seg, f"file://{tmp_path}/cc", "--shape", "64,64,32",
                                         "--dry-run").output  # fmt: skip
    assert "CCLFacesTask" in cli("image", "ccl", "faces", seg, "--shape", "64,64,32", "--dry-run").output
    assert data_tree(tmp_path) == before
    run_all(tc.create_luminance_levels_tasks(img))
    run_all(tc.create_ccl_face_tasks(seg, 0, SHAPE))
    before = data_tree(tmp_path)
    out = cli("image", "contrast", "equalize", img, f"file://{tmp_path}/eq", "--shape", "128,128,16", "--dry-run").output
    assert "ContrastNormalizationTask" in out and "mip 1" in out
    assert "CLAHETask" in cli("image", "contrast", "clahe", img, f"file://{tmp_path}/cl", "--dry-run").output
    assert "CCLEquivalancesTask" in cli("image", "ccl", "links", seg, "--shape", "64,64,32", "--dry-run").output
    assert data_tree(tmp_path) == before
    run_all(tc.create_ccl_equivalence_tasks(seg, 0, SHAPE))
    before = data_tree(tmp_path)
    out = cli("image", "ccl", "calc-labels", seg, "--mip", "0", "--shape", "64,64,32", "--dry-run", "--json").output
    assert json.loads(out)["work"]["unit"] == "labels"
    create_relabeling(seg, 0, SHAPE)
    before = data_tree(tmp_path)
    out = cli("image", "ccl", "relabel", seg, f"file://{tmp_path}/cc", "--shape", "64,64,32", "--dry-run").output
    assert "RelabelCCLTask" in out
    assert data_tree(tmp_path) == before


def test_cli_dry_run_refuses_what_the_run_refuses(tmp_path, img, seg):
    """Planning validates as the creators do: the same usage errors, before anything is read."""
    result = cli("image", "contrast", "equalize", img, f"file://{tmp_path}/eq", "--dry-run", code=2)
    assert "histogram" in result.output  # no histograms yet
    result = cli("image", "ccl", "links", seg, "--shape", "64,64,32", "--dry-run", code=2)
    assert "faces" in result.output
    cli("image", "ccl", "faces", seg, "--shape", "64,64,32", "--json", code=2)  # --json needs --dry-run


def test_accuracy_table():
    """Not a check: prints predicted vs actual bytes of the cases above (run with -s to see it)."""
    for case, predicted, actual, pfiles, afiles in ACCURACY:
        print(f"{case:<55} bytes {predicted:>10,} vs {actual:>10,} ({predicted / max(1, actual) - 1:+.1%}); "
              f"files {pfiles} vs {afiles}")  # fmt: skip
