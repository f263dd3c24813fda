"""The `image ccl` options of SPEC §1.4 (and ours), the destination's info, and calc-labels' union-find
holding only the labels that touch a task face."""

from __future__ import annotations

import numpy as np
import pytest
from cloudvolume import CloudVolume

import igneous.tasks.image.ccl_relabel as ccl_relabel
from igneous_cli import main
from tests.ccl.conftest import assert_same_partition, oracle, run_ccl
from tests.conftest import read_layer

SPEC_OPTIONS = {  # command: {option: default} (SPEC §1.4)
    "auto": {"shape": (512, 512, 512), "mip": 0, "chunk_size": None, "encoding": "compresso", "queue": None,
             "clean": True, "threshold_gte": None, "threshold_lte": None, "fill_missing": False, "dust": 0},
    "calc-labels": {"mip": 0, "shape": (512, 512, 512)},
    "clean": {"mip": 0},
    "faces": {"shape": (512, 512, 512), "mip": 0, "queue": None, "threshold_gte": None, "threshold_lte": None,
              "fill_missing": False, "dust": 0},
    "links": {"shape": (512, 512, 512), "mip": 0, "queue": None, "threshold_gte": None, "threshold_lte": None,
              "fill_missing": False, "dust": 0},
    "relabel": {"shape": (512, 512, 512), "mip": 0, "chunk_size": None, "encoding": "compresso", "queue": None,
                "threshold_gte": None, "threshold_lte": None, "fill_missing": False, "dust": 0},
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(SPEC_OPTIONS))
def test_spec_options_and_defaults(command):
    cmd = main.commands["image"].commands["ccl"].commands[command]
    params = {p.name: p for p in cmd.params}
    for name, default in SPEC_OPTIONS[command].items():
        assert name in params, name
        value = params[name].default
        value = params[name].type.convert(value, params[name], None) if isinstance(value, str) and name in (
            "shape", "encoding") else value  # fmt: skip
        assert value == default, (name, value)
    if command in ("calc-labels", "clean"):
        assert params["mip"].required
    if command != "clean":
        assert "connectivity" in params


def test_destination_info(layer, tmp_path):
    img = (np.random.default_rng(0).random((24, 16, 8)) < 0.4).astype(np.uint8)
    src = layer(img, chunk_size=(8, 8, 8), voxel_offset=(3, 1, 2))
    vol = CloudVolume(src)
    vol.add_scale((2, 2, 1))
    vol.info["mesh"], vol.info["skeletons"] = "mesh_mip_0_err_40", "skeletons_mip_0"
    vol.commit_info()
    dest = f"file://{tmp_path / 'dest'}"
    n = run_ccl(src, dest, (8, 8, 8), threshold_gte=1, connectivity=6, chunk_size=(8, 8, 4), encoding="cseg")
    info = CloudVolume(dest).info
    assert len(info["scales"]) == 1 and "mesh" not in info and "skeletons" not in info
    assert info["type"] == "segmentation" and info["num_channels"] == 1
    assert info["data_type"] == "uint32"  # the narrowest compressed_segmentation can hold
    scale = info["scales"][0]
    assert scale["encoding"] == "compressed_segmentation" and scale["chunk_sizes"] == [[8, 8, 4]]
    assert scale["voxel_offset"] == [3, 1, 2] and scale["size"] == [24, 16, 8]
    assert_same_partition(read_layer(dest)[..., 0], oracle(img, 6))
    assert n < 256  # uint8 would hold the ids: 32 bits because compressed_segmentation needs them


def test_calc_labels_union_finds_only_face_labels(layer, tmp_path, monkeypatch):
    # many one-voxel interior components, a few objects across the seams
    img = np.zeros((32, 32, 16), dtype=np.uint8)
    img[1:15:2, 1:15:2, 1:7:2] = 1  # 7·7·3 per task, none on a face
    img[1:31:2, 1:31:2, 9:15:2] = 1
    img[:, 16, 4] = img[16, :, 12] = 1  # two rods through every task boundary on their way
    seen = {}
    real = ccl_relabel.union_find

    def spy(a, b):
        seen["edges"] = len(a)
        return real(a, b)

    monkeypatch.setattr(ccl_relabel, "union_find", spy)
    src = layer(img, chunk_size=(16, 16, 8))
    n = run_ccl(src, f"file://{tmp_path / 'dest'}", (16, 16, 8), threshold_gte=1, connectivity=6)
    want = oracle(img, 6)
    assert n == want.max() and n > 600
    assert_same_partition(read_layer(f"file://{tmp_path / 'dest'}")[..., 0], want)
    assert 0 < seen["edges"] <= 16  # the rods' pieces, not the hundreds of interior components


def test_plans_are_pure_and_describe_the_run(layer, tmp_path):
    from igneous.task_creation.ccl import plan_ccl, plan_ccl_relabel
    from tests.conftest import tree

    src = layer(np.zeros((20, 16, 9), dtype=np.uint8), chunk_size=(10, 8, 9))
    before = tree(tmp_path)
    plan = plan_ccl(src, 0, (10, 8, 4), threshold_gte=1, dust_threshold=5, connectivity=18)
    assert plan.num_tasks == 2 * 2 * 3 and plan.grid.grid_size == (2, 2, 3)
    faces = plan.files("faces")
    assert faces["4_4_40/ccl/faces/{gx}-{gy}-{gz}-{xy,xz,yz}.ckl"] == 36
    assert faces["4_4_40/ccl/counts/{gx}-{gy}-{gz}.u64"] == 12  # only with dust
    assert plan.files("calc-labels")["4_4_40/ccl/max_label.json"] == 1
    relabel = plan_ccl_relabel(src, f"file://{tmp_path / 'dest'}", 0, (10, 8, 9), require_labels=False)
    assert relabel.encoding == "compresso" and relabel.chunk_size == (10, 8, 9) and relabel.dtype is None
    assert tree(tmp_path) == before
