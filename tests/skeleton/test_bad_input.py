"""Bad input to `igneous skeleton …` is one line, exit code 2, and writes nothing."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from osteoid import Skeleton

from igneous import skeletons as fmt
from igneous_cli import main
from tests.conftest import make_layer, tree
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET

FORGE = ["--shape", "40,40,32", "--dust-threshold", "200"]


@pytest.fixture(scope="module")
def small(skel_crop):
    return np.asfortranarray(skel_crop[:64, :64, :48])


@pytest.fixture
def layer(tmp_path, small):
    return make_layer(
        f"file://{tmp_path / 'seg'}", small, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def refused(root, *args, match: str) -> None:
    before = tree(root)
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and match in lines[0], result.output
    assert tree(root) == before


def ok(*args) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_image_layer_and_missing_mip(tmp_path, layer):
    image = make_layer(f"file://{tmp_path / 'img'}", np.zeros((32, 32, 16), np.uint8), chunk_size=(16, 16, 16))
    refused(tmp_path, "skeleton", "forge", image, match="segmentation")
    refused(tmp_path, "skeleton", "forge", layer, "--mip", "3", *FORGE, match="mip")
    refused(tmp_path, "skeleton", "forge", tmp_path / "nothing", match="no Precomputed layer")


def test_merge_before_forge(tmp_path, layer):
    refused(tmp_path, "skeleton", "merge", layer, match="skeleton forge")
    refused(tmp_path, "skeleton", "merge-sharded", layer, match="skeleton forge")
    refused(tmp_path, "skeleton", "xfer", layer, tmp_path / "dest", match="skeleton forge")


def test_unfinished_forge_is_refused_naming_boxes(tmp_path, layer):
    import igneous.task_creation as tc

    tasks = list(tc.create_skeletonizing_tasks(layer, 0, shape=(40, 40, 32), dust_threshold=200))
    tasks[0].execute()  # one of eight boxes
    refused(tmp_path, "skeleton", "merge", layer, match="7 of 8 task boxes have no .spatial")


def test_unknown_label_ids(tmp_path, layer):
    ok("image", "voxels", "count", layer)
    ok("image", "voxels", "sum", layer)
    refused(tmp_path, "skeleton", "forge", layer, *FORGE, "--labels", "123456789", match="do not occur")
    # without voxel counts the forge cannot know; the merge refuses instead
    (tmp_path / "seg" / "16_16_40" / "stats" / "voxel_counts.im.gz").unlink(missing_ok=True)
    for name in (tmp_path / "seg" / "16_16_40" / "stats").glob("voxel_counts.im*"):
        name.unlink()
    ok("skeleton", "forge", layer, *FORGE, "--labels", "123456789")
    refused(tmp_path, "skeleton", "merge", layer, match="123456789")


def test_graphene_options_on_a_precomputed_source(tmp_path, layer):
    refused(tmp_path, "skeleton", "forge", layer, "--fix-autapses", match="graphene")
    refused(tmp_path, "skeleton", "forge", layer, "--timestamp", "1700000000", match="graphene")
    refused(tmp_path, "skeleton", "forge", layer, "--root-ids", layer, match="graphene")


def test_other_parameters(tmp_path, layer):
    refused(tmp_path, "skeleton", "forge", layer, "--shape", "0,40,32", match="shape")
    refused(tmp_path, "skeleton", "forge", layer, "--fill-holes", "104", match="fill_holes")
    refused(tmp_path, "skeleton", "forge", layer, "--dust-global", match="voxel_counts")
    refused(tmp_path, "skeleton", "forge", layer, "--scale", "-1", match="scale")
    refused(tmp_path, "skeleton", "forge", layer, "-o", tmp_path / "frags", match="frag_path")


def test_pickled_fragments_need_an_opt_in(tmp_path, layer, monkeypatch):
    """A forge by the reference stored pickles: the merge refuses them in one line naming the
    opt-in, and merges them once the operator opts in."""
    monkeypatch.delenv(fmt.ALLOW_PICKLE_ENV, raising=False)
    ok("skeleton", "forge", layer, *FORGE)
    root = tmp_path / "seg" / "skeletons_mip_0"
    for path in root.glob("*:*.gz"):  # rewrite every fragment the way the reference does
        data = gzip.decompress(path.read_bytes())
        label = int(path.name.split(":")[0])
        skel = fmt.decode_skeleton(data, label, [fmt.RADIUS])
        obj = Skeleton(skel.vertices, skel.edges, radii=skel.radius, segid=label, space="physical")
        path.write_bytes(gzip.compress(pickle.dumps(obj)))
    refused(tmp_path, "skeleton", "merge", layer, match=fmt.ALLOW_PICKLE_ENV)
    monkeypatch.setenv(fmt.ALLOW_PICKLE_ENV, "1")
    ok("skeleton", "merge", layer, "--magnitude", "1", "--min-cable-length", "500")
    assert any(p.name.split(".")[0].isdigit() for p in root.iterdir())


def test_reforge_with_another_grid_or_into_merged_shards(tmp_path, layer):
    ok("skeleton", "forge", layer, *FORGE, "--sharded")
    refused(tmp_path, "skeleton", "forge", layer, "--shape", "32,32,32", match="same grid")
    refused(tmp_path, "skeleton", "merge", layer, match="merge-sharded")
    ok("skeleton", "merge-sharded", layer)
    refused(tmp_path, "skeleton", "forge", layer, *FORGE, match="merged sharded skeletons")
    refused(tmp_path, "skeleton", "merge-sharded", layer, "--min-shards", "0", match="min_shards")
