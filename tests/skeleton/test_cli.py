"""`igneous skeleton …` through the command line (CliRunner): forge, merge, convert (SWC), clean,
xfer (plain and --sharded), rm, merge-sharded from .spatial files and from a sqlite database,
spatial-index create|db."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from osteoid import Skeleton

from igneous_cli import main
from tests.conftest import make_layer, tree
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET

SKEL_DIR = "skeletons_mip_0"
FORGE = ["--shape", "40,40,32", "--dust-threshold", "200"]


def cli(*args, expect: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output


@pytest.fixture(scope="module")
def small(skel_crop):
    return np.asfortranarray(skel_crop[:64, :64, :48])


@pytest.fixture
def layer(tmp_path, small):
    return make_layer(
        f"file://{tmp_path / 'seg'}", small, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def skel_files(path: str) -> dict:
    root = path[len("file://") :] + "/" + SKEL_DIR
    return {k: v for k, v in tree(root).items()}


def finished(path: str) -> list[int]:
    from igneous.task_creation.skeleton import finished_labels

    return finished_labels(path)


def test_forge_merge_convert_clean_xfer_rm(layer, tmp_path):
    cli("skeleton", "forge", layer, *FORGE, "--no-fix-branching")
    record = CloudVolume(layer).provenance.processing[-1]["method"]
    assert record["task"] == "SkeletonTask" and record["fix_branching"] is False and record["fix_borders"] is True
    cli("skeleton", "merge", layer, "--min-cable-length", "500", "--magnitude", "1")
    labels = finished(layer)
    assert len(labels) >= 10
    vol = CloudVolume(layer)
    skels = {int(s.id): s for s in vol.skeleton.get(labels)}

    # SWC files that other tools read, with the same nodes
    out = tmp_path / "swc"
    cli("skeleton", "convert", layer, out)
    assert sorted(os.listdir(out)) == sorted(f"{x}.swc" for x in labels)
    for label in labels[:5]:
        swc = Skeleton.from_swc((out / f"{label}.swc").read_text())
        ours = skels[label]
        assert len(swc.vertices) == len(ours.vertices)
        np.testing.assert_allclose(np.unique(swc.vertices, axis=0), np.unique(ours.vertices, axis=0), atol=1e-2)
    text = cli("skeleton", "convert", layer, "-", ",".join(str(x) for x in labels[:2]))
    headers = [line for line in text.splitlines() if line.startswith("# ") and line.endswith(".swc")]
    assert headers == [f"# {labels[0]}.swc", f"# {labels[1]}.swc"]

    # clean: fragments of finished labels go, .spatial and finals stay, skeletons still read
    before = skel_files(layer)
    assert any(":" in name for name in before)
    output = cli("skeleton", "clean", layer)
    after = skel_files(layer)
    assert "deleted" in output and len(after) < len(before)
    assert {n for n in before if n.endswith(".spatial.gz")} <= set(after)
    assert {n for n in after if ":" in n} == {
        n for n in before if ":" in n and int(n.split(":")[0]) not in set(labels)
    }
    assert sorted(int(s.id) for s in CloudVolume(layer).skeleton.get(labels)) == labels

    # xfer into an existing layer, and repacked as shards
    dest = f"file://{tmp_path / 'dest'}"
    CloudFiles(dest).put_json("info", CloudVolume(layer).info)
    cli("skeleton", "xfer", layer, dest, "--magnitude", "1")
    assert finished(dest) == labels
    sharded = f"file://{tmp_path / 'sharded'}"
    cli("skeleton", "xfer", layer, sharded, "--sharded")
    got = CloudVolume(sharded).skeleton.get(labels)
    for skel in got:
        np.testing.assert_array_equal(skel.vertices, skels[int(skel.id)].vertices)

    cli("skeleton", "rm", dest, "--magnitude", "1")
    assert not os.path.exists(tmp_path / "dest" / SKEL_DIR) or not os.listdir(tmp_path / "dest" / SKEL_DIR)


def test_merge_sharded_from_files_and_sqlite_give_identical_shards(layer, tmp_path):
    cli("skeleton", "forge", layer, *FORGE, "--sharded")
    copy = tmp_path / "copy"
    shutil.copytree(layer[len("file://") :], copy)
    other = f"file://{copy}"
    database = f"sqlite://{tmp_path / 'index.db'}"
    cli("skeleton", "spatial-index", "db", other, database)
    cli("skeleton", "merge-sharded", layer, "--max-labels-per-shard", "10")
    cli("skeleton", "merge-sharded", other, "--max-labels-per-shard", "10", "--spatial-index-db", database)
    shards = {n: d for n, d in skel_files(layer).items() if n.endswith(".shard")}
    assert len(shards) >= 2
    assert shards == {n: d for n, d in skel_files(other).items() if n.endswith(".shard")}
    labels = finished(layer)
    assert len(labels) >= 10 and finished(other) == labels
    assert len(CloudVolume(layer).skeleton.get(labels)) == len(labels)
    # clean removes .frags and .labels once every shard is there; the shards still read
    cli("skeleton", "clean", layer)
    assert not [n for n in skel_files(layer) if n.endswith((".frags", ".labels", ".labels.gz"))]
    assert len(CloudVolume(layer).skeleton.get(labels)) == len(labels)


def test_spatial_index_create_and_db(layer, tmp_path):
    cli("skeleton", "spatial-index", "create", layer, "--shape", "40,40,32")
    names = [n for n in skel_files(layer) if n.endswith(".spatial.gz")]
    assert len(names) == 8
    database = f"sqlite://{tmp_path / 'index.db'}"
    output = cli("skeleton", "spatial-index", "db", layer, database)
    assert "sqlite" in output
    labels = CloudVolume(layer, spatial_index_db=database.replace("sqlite://", "sqlite://")).skeleton.spatial_index
    assert labels is not None


@pytest.mark.parametrize("bad", ["../escaped", "/abs/skel", "", "a/../../x"])
@pytest.mark.parametrize("args", [["skeleton", "rm", "{seg}"], ["skeleton", "xfer", "{seg}", "{dest}"]])
def test_dir_must_stay_inside_the_layer(tmp_path, args, bad):
    seg = make_layer(f"file://{tmp_path / 'seg'}", np.ones((8, 8, 8), np.uint32))
    before = tree(tmp_path)
    cmd = [a.format(seg=seg, dest=f"file://{tmp_path / 'dest'}") for a in args] + ["--dir", bad]
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "must be a folder name inside the layer" in lines[0], result.output
    assert tree(tmp_path) == before


def test_skeleton_python_api_refuses_escaping_dirs(tmp_path):
    import igneous.task_creation as tc
    from igneous.errors import InvalidParameterError

    seg = make_layer(f"file://{tmp_path / 'seg'}", np.ones((8, 8, 8), np.uint32))
    for bad in ("../escaped", "/abs", ""):
        with pytest.raises(InvalidParameterError, match="inside the layer"):
            tc.create_skeleton_deletion_tasks(seg, skel_dir=bad)
        with pytest.raises(InvalidParameterError, match="inside the layer"):
            tc.create_xfer_skeleton_tasks(seg, f"file://{tmp_path / 'd'}", skel_dir=bad)
