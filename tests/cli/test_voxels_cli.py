"""``igneous image voxels count|sum`` through CliRunner: options per SPEC §1.4, results, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from mapbuffer import IntMap
from taskqueue import TaskQueue

from igneous.tasks.image.voxels import load_voxel_counts
from igneous_cli import main
from igneous_cli.plan import DRY_RUN_PARAMS
from tests.conftest import igneous_subprocess, tree


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


@pytest.fixture
def seg(layer):
    rng = np.random.default_rng(3)
    data = rng.choice(np.array([0, 4, 9, 2**63 + 1], dtype=np.uint64), size=(40, 30, 12))
    return layer(data, name="seg", voxel_offset=(3, 2, 1), chunk_size=(16, 16, 8)), data


def as_dict(im: IntMap) -> dict:
    return {int(k): int(v) for k, v in im.items()}


def expected(data) -> dict:
    labels, counts = np.unique(data, return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist()))


def test_options_and_defaults_match_spec():
    group = main.commands["image"].commands["voxels"]
    assert set(group.commands) == {"count", "sum"}
    count = {p.name: p for p in group.commands["count"].params}
    assert {"mip", "queue", "fill_missing", "path"} == set(count) - DRY_RUN_PARAMS  # + --dry-run (issue 14)
    assert count["mip"].default == 0 and count["queue"].default is None and count["fill_missing"].default is False
    total = {p.name: p for p in group.commands["sum"].params}
    assert {"mip", "compress", "output", "path"} == set(total)
    assert total["compress"].default == "zstd" and total["output"].default is None
    assert "-o" in total["output"].opts and "--output" in total["output"].opts


def test_count_then_sum_with_local_copy(seg, tmp_path):
    path, data = seg
    run("image", "voxels", "count", path)
    out = tmp_path / "local.im"
    result = run("image", "voxels", "sum", path, "-o", out)
    assert "4 labels" in result.output
    assert as_dict(load_voxel_counts(path, 0)) == expected(data)
    assert as_dict(IntMap(out.read_bytes())) == expected(data)
    assert (tmp_path / "seg" / "4_4_40" / "stats" / "voxel_counts.im.zstd").exists()  # zstd by default


def test_sum_without_compression(seg, tmp_path):
    path, data = seg
    run("image", "voxels", "count", path)
    run("image", "voxels", "sum", path, "--compress", "none")
    assert (tmp_path / "seg" / "4_4_40" / "stats" / "voxel_counts.im").exists()
    assert as_dict(load_voxel_counts(path, 0)) == expected(data)


def test_count_through_a_queue_and_execute(seg, tmp_path):
    path, data = seg
    queue = tmp_path / "q"
    run("image", "voxels", "count", path, "--queue", queue)
    assert TaskQueue(f"fq://{queue}").enqueued == 1
    proc = igneous_subprocess("execute", "-x", "-q", f"fq://{queue}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run("image", "voxels", "sum", path)
    assert as_dict(load_voxel_counts(path, 0)) == expected(data)


def test_fill_missing_flag(seg, tmp_path):
    path, data = seg
    chunk = next((tmp_path / "seg" / "4_4_40").glob("3-19_2-18_1-9*"))
    chunk.unlink()
    run("image", "voxels", "count", path, code=1)  # a task fails on the missing chunk
    run("image", "voxels", "count", path, "--fill-missing")
    run("image", "voxels", "sum", path)
    filled = data.copy()
    filled[:16, :16, :8] = 0
    assert as_dict(load_voxel_counts(path, 0)) == expected(filled)


@pytest.mark.parametrize(
    "args,words",
    [
        (["sum", "{path}"], "run `igneous image voxels count` first"),
        (["sum", "{path}", "--compress", "lz4"], "compress must be one of"),
        (["count", "{path}", "--mip", "2"], "mip must be an integer in [0, 0]"),
        (["count", "{img}"], "layer type 'image'"),
        (["sum", "{img}"], "layer type 'image'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(seg, layer, tmp_path, args, words):
    path, _ = seg
    img = layer(np.zeros((8, 8, 8), np.uint8), name="img")
    before = {k: v for k, v in tree(tmp_path).items() if not k.startswith(".cloud")}
    result = run("image", "voxels", *[a.format(path=path, img=img) for a in args], code=2)
    assert words in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(".cloud")} == before
