"""Nothing destroyed, nothing written before refusing (issue 9): each class of mistake is tried
on several commands, and the whole directory tree (every path, every file's bytes) is compared
before and after."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous_cli import main
from tests.conftest import make_layer, read_layer, tree

SEG = dict(chunk_size=(32, 32, 8), voxel_offset=(16, 8, 4), resolution=(8, 8, 40))


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def refused(root, *args, words=None):
    """Run a command that must be refused: one line, exit 2, no traceback, no numpy reprs, and
    ``root`` byte-identical afterwards."""
    before = tree(root)
    result = run(*args, code=2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), result.output
    assert "Traceback" not in result.output and "np." not in result.output, result.output
    if words:
        assert words.lower() in result.output.lower(), result.output
    assert tree(root) == before
    return result


@pytest.fixture
def img(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, size=(160, 96, 24), dtype=np.uint8)
    return make_layer(f"file://{tmp_path / 'img'}", data, chunk_size=(32, 32, 8), voxel_offset=(16, 8, 4))


@pytest.fixture
def seg(tmp_path):
    labels = np.zeros((64, 64, 16), dtype=np.uint32)
    labels[8:40, 8:40, 2:10] = 7
    return make_layer(f"file://{tmp_path / 'seg'}", labels, layer_type="segmentation", **SEG)


# ---------------------------------------------------------------- image rm deletes only what was asked


def files_by_level(root):
    out = {}
    for path, digest in tree(root).items():
        if "/" in path:
            key, name = path.split("/", 1)
            out.setdefault(key, {})[name.split(".")[0]] = digest
    return out


def level_boxes(path):
    vol = CloudVolume(path)
    return [(vol.meta.key(m), vol.meta.voxel_offset(m), vol.meta.resolution(m)) for m in range(len(vol.info["scales"]))]


@pytest.mark.parametrize("xrange,mip", [("48,112", 0), ("16,48", 0), ("112,176", 0), ("24,40", 1)])
def test_rm_deletes_exactly_the_chunks_inside_the_range(img, tmp_path, xrange, mip):
    tasks = tc.create_downsampling_tasks(img, num_mips=2, chunk_size=(16, 16, 8))
    from taskqueue import LocalTaskQueue

    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)
    root = tmp_path / "img"
    before = files_by_level(root)
    listed = run("image", "rm", img, "--mip", mip, "--xrange", xrange, "--dry-run").stdout.split()
    assert files_by_level(root) == before  # a dry run deletes nothing
    run("image", "rm", img, "--mip", mip, "--xrange", xrange)
    after = files_by_level(root)

    vol = CloudVolume(img)
    lo, hi = (int(v) for v in xrange.split(","))
    deleted = set()
    for m, (key, offset, _) in enumerate(level_boxes(img)):
        ratio = int(vol.meta.resolution(m)[0] // vol.meta.resolution(mip)[0]) if m >= mip else None
        end = vol.meta.bounds(mip).maxpt[0]
        for name in before[key]:
            x0, x1 = (int(v) for v in name.split("_")[0].split("-"))
            if ratio is None:
                inside = False
            else:
                # the chunk's x extent at --mip, relative to the layer origin
                origin, origin_m = vol.meta.voxel_offset(mip)[0], offset[0]
                a = origin + (x0 - origin_m) * ratio
                b = min(end, origin + (x1 - origin_m) * ratio)
                inside = lo <= a and b <= hi
            if inside:
                deleted.add(f"{key}/{name}")
                assert name not in after.get(key, {}), f"{key}/{name} was inside the range and is still there"
            else:
                assert after[key][name] == before[key][name], f"{key}/{name} is outside the range and changed"
    assert set(listed) == deleted  # --dry-run lists exactly what the real run deletes
    assert deleted  # the ranges above always hold at least one whole chunk


def test_rm_refuses_a_range_that_is_not_chunk_aligned(img, tmp_path):
    result = refused(tmp_path, "image", "rm", img, "--xrange", "30,60", words="not chunk-aligned")
    assert "--xrange 48,48" not in result.output  # no empty "inside" suggestion
    assert "--xrange 16,80" in result.output  # the covering range, on the chunk grid from offset 16


def test_rm_through_a_queue_deletes_the_same(img, tmp_path):
    queue = tmp_path / "q"
    run("image", "rm", img, "--num-mips", "0", "--xrange", "48,80", "--queue", queue)
    assert len(tree(tmp_path / "img")) > 0
    run("execute", "-x", "-q", queue)
    names = [p for p in tree(tmp_path / "img") if p.startswith("4_4_40/")]
    assert not any(p.startswith("4_4_40/48-80_") for p in names)
    assert any(p.startswith("4_4_40/16-48_") for p in names) and any(p.startswith("4_4_40/80-112_") for p in names)


# ---------------------------------------------------------------- typos are not relative directories


@pytest.mark.parametrize("dest", ["s4://bucket/out", "gs:/bucket/out", "fq://{tmp}/queue", "sqs://igneous-tasks",
                                  "precomputed://s4://bucket/out"])
def test_unknown_schemes_and_queue_urls_are_not_layers(img, tmp_path, monkeypatch, dest):
    monkeypatch.chdir(tmp_path)
    refused(tmp_path, "image", "xfer", img, dest.format(tmp=tmp_path))
    assert not any(name.endswith(":") or "s4:" in name for name in os.listdir(tmp_path))


def test_a_destination_inside_its_source_is_refused(img, tmp_path):
    refused(tmp_path, "image", "xfer", img, img + "/copy", words="inside the source")


# ---------------------------------------------------------------- --queue is checked before planning


@pytest.mark.parametrize("kind", ["file", "layer", "nonempty"])
@pytest.mark.parametrize("command", ["downsample", "xfer", "forge", "voxels", "rm"])
def test_a_queue_that_is_not_a_queue_is_refused_before_anything_is_written(img, seg, tmp_path, kind, command):
    if kind == "file":
        queue = tmp_path / "queue.txt"
        queue.write_text("not a queue")
    elif kind == "layer":
        queue = tmp_path / "img"
    else:
        queue = tmp_path / "notes"
        queue.mkdir()
        (queue / "todo.txt").write_text("x")
    args = {
        "downsample": ["image", "downsample", img],
        "xfer": ["image", "xfer", img, f"file://{tmp_path / 'dest'}"],
        "forge": ["mesh", "forge", seg],
        "voxels": ["image", "voxels", "count", seg],
        "rm": ["image", "rm", img],
    }[command]
    refused(tmp_path, *args, "--queue", queue, words="queue")


def test_a_new_queue_directory_is_created_by_inserting(img, tmp_path):
    run("image", "downsample", img, "--queue", tmp_path / "new" / "q")
    assert os.path.isdir(tmp_path / "new" / "q" / "queue")


# ---------------------------------------------------------------- damaged layers and bad numbers


def damage(path: str, how: str) -> str:
    root = path[len("file://"):]
    with open(os.path.join(root, "info")) as f:
        info = json.load(f)
    if how == "file":
        return path + "/info"
    if how == "truncated":
        text = json.dumps(info)[:40]
    elif how == "empty":
        text = ""
    elif how == "no-scales":
        info.pop("scales")
        text = json.dumps(info)
    else:
        info["scales"][0]["size"] = [-160, 96, 24]
        text = json.dumps(info)
    with open(os.path.join(root, "info"), "w") as f:
        f.write(text)
    return path


@pytest.mark.parametrize("how", ["file", "truncated", "empty", "no-scales", "negative-size"])
@pytest.mark.parametrize("command", ["downsample", "xfer", "bounds", "rm"])
def test_a_damaged_layer_is_one_line(img, tmp_path, how, command):
    path = damage(img, how)
    args = {
        "downsample": ["image", "downsample", path],
        "xfer": ["image", "xfer", path, f"file://{tmp_path / 'dest'}"],
        "bounds": ["design", "bounds", path],
        "rm": ["image", "rm", path],
    }[command]
    refused(tmp_path, *args)


@pytest.mark.parametrize("args,words", [
    (["image", "downsample", "{img}", "--codec-threads", "-4"], "codec_threads"),
    (["image", "downsample", "{img}", "--sharded", "--codec-threads", "-1"], "codec_threads"),
    (["design", "ds-memory", "{img}", "1e400"], "too large"),
    (["design", "ds-memory", "{img}", "lots"], "number of bytes"),
    (["image", "xfer", "{img}", "{dest}", "--memory", "2 bananas"], "number of bytes"),
    (["image", "xfer", "{img}", "{tmp}/afile/dest"], "is a file"),
    (["image", "downsample", "{img}", "--num-mips", "0"], "num_mips"),
])
def test_bad_numbers_and_destinations_are_refused(img, tmp_path, args, words):
    (tmp_path / "afile").write_text("x")
    fill = {"img": img, "dest": f"file://{tmp_path / 'dest'}", "tmp": tmp_path}
    refused(tmp_path, *[a.format(**fill) for a in args], words=words)


@pytest.mark.parametrize("num_mips", ["40", "1000"])
def test_too_many_mips_build_what_the_layer_has(img, num_mips):
    result = run("image", "downsample", img, "--num-mips", num_mips, "--chunk-size", "16,16,8")
    assert "fill at least a chunk" in result.output  # one warning says what was built
    scales = CloudVolume(img).info["scales"]
    # 160×96 is 10×6 chunks of 16: two levels span whole chunks (40×24); a third (20×12) would
    # neither fill nor fit in one chunk
    assert len(scales) == 3
    np.testing.assert_array_equal(read_layer(img, mip=2).shape[:3], (40, 24, 24))


@pytest.mark.parametrize("memory", ["2e9", "2GB", "512MiB", "1.5 GiB", "3500000000"])
def test_byte_options_take_units(img, tmp_path, memory):
    run("image", "xfer", img, f"file://{tmp_path / 'sharded'}", "--sharded", "--memory", memory)
    np.testing.assert_array_equal(read_layer(f"file://{tmp_path / 'sharded'}"), read_layer(img))
    run("design", "ds-memory", img, memory)
