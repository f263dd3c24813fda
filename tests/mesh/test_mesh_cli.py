"""`igneous mesh xfer|rm|clean` and the refusals every mesh command shares (exit 2, one line,
nothing written)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from igneous import meshes
from igneous_cli import main
from tests.conftest import tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import mesh_weld, surface_area

MESH_DIR = "mesh_mip_0_err_40"
SHARDING = {
    "@type": "neuroglancer_uint64_sharded_v1", "hash": "murmurhash3_x86_128", "preshift_bits": 0,
    "minishard_bits": 0, "shard_bits": 1, "minishard_index_encoding": "gzip", "data_encoding": "raw",
}  # fmt: skip
MULTIRES = {
    "@type": meshes.MULTILOD_MESH_TYPE, "vertex_quantization_bits": 16, "lod_scale_multiplier": 1.0,
    "transform": [16, 0, 0, 0, 0, 16, 0, 0, 0, 0, 40, 0],
}  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def forged(layer, crop_b, merge=True):
    crop = crop_b[:40, :40, :24]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    result = invoke("mesh", "forge", path, "--shape", "24,24,16", "--skip-simplify")
    assert result.exit_code == 0, result.output
    if merge:
        result = invoke("mesh", "merge", path)
        assert result.exit_code == 0, result.output
    return path, crop


def test_xfer_copies_every_file_and_meshes_read_back(layer, crop_b, tmp_path):
    src, crop = forged(layer, crop_b)
    cf = CloudFiles(f"{src}/{MESH_DIR}")
    cf.put("5", b"short label data")  # a bare short name (multires data of label 5)
    dest = f"file://{tmp_path / 'dest'}"
    result = invoke("mesh", "xfer", src, dest)
    assert result.exit_code == 0, result.output
    assert sorted(CloudFiles(f"{dest}/{MESH_DIR}").list()) == sorted(cf.list())
    assert CloudFiles(f"{dest}/{MESH_DIR}").get("5") == b"short label data"
    labels = sorted(int(x) for x in np.unique(crop) if x)
    a = CloudVolume(src).mesh.get(labels, fuse=False)
    b = CloudVolume(dest).mesh.get(labels, fuse=False)
    for label in labels:
        assert surface_area(*mesh_weld(a[label].vertices, a[label].faces)) == surface_area(
            *mesh_weld(b[label].vertices, b[label].faces)
        )


def test_xfer_prefixes_list_every_mesh_file_name():
    names = [
        "12:0", "12:0:0-24_0-24_0-16", "7:0", "7:0:24-40_0-24_0-16", "12.index", "12", "123456.index",
        "3.shard", "3.labels", "0-384_0-384_0-640.spatial", "-16-368_0-384_0-640.spatial",
        "384.5-400.0_0.0-1.0_0.0-2.0.spatial", "0-24_0-24_0-16.frags", "99:0", "5",
    ]  # fmt: skip
    hex_names = ["0a.shard", "0a.labels", "f.shard", "abc.shard"]  # sharded layouts name shards in hex
    for hexadecimal in (False, True):
        prefixes = meshes.filename_prefixes(2, hexadecimal)
        short = set(meshes.short_exact_names(2, hexadecimal))
        for name in names + (hex_names if hexadecimal else []):
            hits = sum(name.startswith(p) for p in prefixes) + (name in short)
            assert hits == 1, (name, hexadecimal, hits)


def test_rm_deletes_the_mesh_directory(layer, crop_b, tmp_path):
    path, _ = forged(layer, crop_b)
    CloudFiles(f"{path}/{MESH_DIR}").put("5", b"x")
    assert len(os.listdir(tmp_path / "src" / MESH_DIR)) > 10
    result = invoke("mesh", "rm", path)
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / "src" / MESH_DIR) == []
    assert "mesh" in CloudVolume(path).info  # the layer itself is untouched


def manifest_bytes(sizes):
    """A one-LOD multires manifest (SPEC §4.2) listing fragments of ``sizes`` bytes."""
    n = len(sizes)
    head = np.array([16, 16, 16, 0, 0, 0], "<f4").tobytes() + np.array([1], "<u4").tobytes()
    head += np.array([1], "<f4").tobytes() + np.zeros(3, "<f4").tobytes() + np.array([n], "<u4").tobytes()
    return head + np.zeros(3 * n, "<u4").tobytes() + np.asarray(sizes, "<u4").tobytes()


def test_clean_keeps_legacy_fragments_and_what_unfinished_multires_labels_need(layer, crop_b):
    path, crop = forged(layer, crop_b, merge=False)
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    before = sorted(cf.list())
    result = invoke("mesh", "clean", path)
    assert result.exit_code == 0 and "deleted 0" in result.output
    assert sorted(cf.list()) == before

    finished, unfinished = [int(x) for x in np.unique(crop) if x][:2]
    info = cf.get_json("info")
    info.update(MULTIRES)
    cf.put_json("info", info)
    cf.put(f"{finished}.index", manifest_bytes([10, 6]))
    cf.put(str(finished), b"x" * 16)
    cf.put(f"{unfinished}.index", manifest_bytes([10]))
    cf.put(str(unfinished), b"x" * 3)  # truncated data: not finished
    result = invoke("mesh", "clean", path)
    assert result.exit_code == 0, result.output
    after = set(cf.list())
    assert not [n for n in after if n.startswith(f"{finished}:")]
    assert [n for n in after if n.startswith(f"{unfinished}:0:")]
    assert {n for n in before if n.endswith(".spatial")} <= after and "info" in after


def test_clean_sharded_waits_for_every_shard(layer, crop_b):
    path, _ = forged(layer, crop_b, merge=False)
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    info = cf.get_json("info")
    info.update(MULTIRES, sharding=SHARDING)
    cf.put_json("info", info)
    cf.puts([("0.labels", b"[]"), ("1.labels", b"[]"), ("0.shard", b"s"), ("0-24_0-24_0-16.frags", b"f")])
    result = invoke("mesh", "clean", path)
    assert "shards 1 are not merged yet" in result.output
    assert {"0.labels", "1.labels", "0-24_0-24_0-16.frags"} <= set(cf.list())
    cf.put("1.shard", b"s")
    result = invoke("mesh", "clean", path)
    assert result.exit_code == 0, result.output
    names = set(cf.list())
    assert not [n for n in names if n.endswith((".labels", ".frags"))] and {"0.shard", "1.shard"} <= names


@pytest.mark.parametrize(
    "case, args, message",
    [
        ("no layer", ["mesh", "forge", "{missing}"], "no Precomputed layer at"),
        ("image layer", ["mesh", "forge", "{image}"], "meshing needs a segmentation layer"),
        ("bad mip", ["mesh", "forge", "{seg}", "--mip", "3"], "mip must be an integer in [0, 0]"),
        ("bad fill", ["mesh", "forge", "{seg}", "--fill-holes", "104"], "fill_holes must be an integer in [0, 103]"),
        ("dust global", ["mesh", "forge", "{seg}", "--dust-global"], "dust_global needs a dust_threshold"),
        ("compress", ["mesh", "forge", "{seg}", "--compress", "lzma"], "compress must be one of"),
        ("sharded", ["mesh", "forge", "{seg}", "--sharded", "--skip-spatial-index"], "sharded forging needs"),
        ("merge first", ["mesh", "merge", "{seg}"], "run `igneous mesh forge` first"),
        ("merge image", ["mesh", "merge", "{image}"], "meshing needs a segmentation layer"),
        ("rm first", ["mesh", "rm", "{seg}"], "run `igneous mesh forge` first"),
        ("xfer first", ["mesh", "xfer", "{seg}", "{missing}"], "run `igneous mesh forge` first"),
        ("clean first", ["mesh", "clean", "{seg}"], "run `igneous mesh forge` first"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(layer, tmp_path, case, args, message):
    seg = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    image = layer(np.ones((8, 8, 8), np.uint8), name="image")
    paths = {"seg": seg, "image": image, "missing": f"file://{tmp_path / 'missing'}"}
    before = tree(tmp_path)
    result = invoke(*[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert tree(tmp_path) == before


def test_merge_nlod_and_xfer_sharded_reach_the_multires_creators(layer, crop_b, tmp_path):
    path, crop = forged(layer, crop_b)  # legacy meshes: what xfer --sharded converts
    labels = sorted(int(x) for x in np.unique(crop) if x)
    dest = f"file://{tmp_path / 'sharded'}"
    result = invoke("mesh", "xfer", path, dest, "--sharded", "--nlod", "1")
    assert result.exit_code == 0, result.output
    result = invoke("mesh", "merge", path, "--nlod", "1", "--min-chunk-size", "16,16,16")
    assert result.exit_code == 0, result.output
    for where in (path, dest):
        vol = CloudVolume(where, progress=False)
        assert vol.mesh.meta.info["@type"] == meshes.MULTILOD_MESH_TYPE
        got = vol.mesh.get(labels[:5], lod=0)
        assert set(got) == set(labels[:5]) and all(len(m.faces) for m in got.values())


def test_every_merge_of_an_all_zero_forge_refuses_like_merge_sharded(layer, tmp_path):
    """A forge that found no labels: the legacy and unsharded multires merges answer exactly as
    merge-sharded does (exit 2, one line), and write nothing (no info, manifest or provenance)."""
    cases = {
        "merge-sharded": (["--sharded"], ["merge-sharded"]),
        "legacy": ([], ["merge"]),
        "multires": ([], ["merge", "--nlod", "1"]),
    }
    outcomes = {}
    for name, (forge_args, merge_args) in cases.items():
        path = layer(np.zeros((40, 40, 24), np.uint32), name=name, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
        result = invoke("mesh", "forge", path, "--shape", "24,24,16", *forge_args)
        assert result.exit_code == 0, result.output
        before = tree(tmp_path / name)
        result = invoke("mesh", *merge_args, path)
        assert tree(tmp_path / name) == before, name
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        outcomes[name] = (result.exit_code, lines[0].replace(path, "PATH"))
    assert outcomes["merge-sharded"] == (2, f"Error: the forge of PATH/{MESH_DIR} found no labels: nothing to merge")
    assert outcomes["legacy"] == outcomes["multires"] == outcomes["merge-sharded"]


@pytest.mark.parametrize("bad", ["../escaped", "/abs/mesh", "", "a/../../x", "a\\b"])
@pytest.mark.parametrize(
    "args",
    [["mesh", "forge", "{seg}"], ["mesh", "merge", "{seg}"], ["mesh", "merge-sharded", "{seg}"],
     ["mesh", "rm", "{seg}"], ["mesh", "xfer", "{seg}", "{dest}"], ["mesh", "clean", "{seg}"]],
)  # fmt: skip
def test_dir_must_stay_inside_the_layer(layer, tmp_path, args, bad):
    seg = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    before = tree(tmp_path)
    result = invoke(*[a.format(seg=seg, dest=f"file://{tmp_path / 'dest'}") for a in args], "--dir", bad)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "must be a folder name inside the layer" in lines[0], result.output
    assert tree(tmp_path) == before


def test_dir_normal_names_and_python_api(layer):
    import igneous.task_creation as tc
    from igneous.errors import InvalidParameterError

    seg = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    for bad in ("../escaped", "/abs", ""):
        with pytest.raises(InvalidParameterError, match="inside the layer"):
            tc.create_meshing_tasks(seg, 0, mesh_dir=bad)
    result = invoke("mesh", "forge", seg, "--dir", "mesh_mip_0_err_40")
    assert result.exit_code == 0, result.output
    assert meshes.read_mesh_info(seg, "mesh_mip_0_err_40") is not None


@pytest.mark.parametrize(
    "key,args",
    [("mesh", ["mesh", "merge"]), ("mesh", ["mesh", "forge"]), ("mesh", ["mesh", "clean"]),
     ("skeletons", ["skeleton", "merge"]), ("skeletons", ["skeleton", "forge"])],
)  # fmt: skip
def test_an_info_pointing_outside_the_layer_is_refused(layer, tmp_path, key, args):
    seg = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    vol = CloudVolume(seg)
    vol.info[key] = "../outside"
    vol.commit_info()
    before = tree(tmp_path)
    result = invoke(*args, seg)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"the layer info's {key!r}" in lines[0].replace('"', "'"), result.output
    assert tree(tmp_path) == before
