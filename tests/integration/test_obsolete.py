"""The obsolete tasks that need no external model (SPEC §2.4, §3.3), checked against numpy."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.errors import InvalidParameterError
from igneous.ops import obsolete as ops
from tests.conftest import read_layer
from tests.oracles import tinybrain_pyramid


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


# -- watershed remap -----------------------------------------------------------------------------


def segmentation(shape=(64, 48, 16), labels=40, seed=0, dtype=np.uint32):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, labels, size=[max(1, s // 4) for s in shape])
    vol = np.repeat(np.repeat(np.repeat(coarse, 4, 0), 4, 1), 4, 2)[: shape[0], : shape[1], : shape[2]]
    return np.asfortranarray(vol.astype(dtype))


@pytest.mark.parametrize("remap_dtype", [np.uint16, np.uint64])
def test_watershed_remap_equals_numpy_and_downsamples(layer, tmp_path, remap_dtype):
    seg = segmentation()
    src = layer(seg, chunk_size=(16, 16, 8), voxel_offset=(3, 5, 7))
    vol = CloudVolume(src)
    vol.add_scale((2, 2, 1), chunk_size=(16, 16, 8))
    vol.commit_info()
    remap = np.random.default_rng(1).integers(0, 5, size=40).astype(remap_dtype)
    map_path = tmp_path / "remap.npy"
    np.save(map_path, remap)
    dest = f"file://{tmp_path / 'dest'}"

    run(tc.create_watershed_remap_tasks(str(map_path), src, dest, shape=(32, 32, 16)))

    want = remap[seg]
    got = read_layer(dest)[..., 0]
    assert got.dtype == remap_dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(read_layer(dest, mip=1)[..., 0], tinybrain_pyramid(want, (2, 2, 1), 1, "mode")[0][..., 0])


def test_watershed_remap_refuses_pickles_and_bad_arrays(layer, tmp_path):
    src = layer(segmentation(), chunk_size=(16, 16, 8))
    dest = f"file://{tmp_path / 'dest'}"
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    raw_pickle = tmp_path / "pickle.npy"
    raw_pickle.write_bytes(pickle.dumps([1, 2, 3]))
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros(4, np.float32))
    for path, words in [(objects, "not a plain .npy"), (raw_pickle, "not a plain .npy"), (floats, "unsigned")]:
        with pytest.raises(InvalidParameterError, match=words):
            tc.create_watershed_remap_tasks(str(path), src, dest, shape=(32, 32, 16))
    np.save(tmp_path / "ok.npy", np.arange(40, dtype=np.uint32))
    with pytest.raises(InvalidParameterError, match="multiple of the chunk size"):
        tc.create_watershed_remap_tasks(str(tmp_path / "ok.npy"), src, dest, shape=(20, 32, 16))
    assert not (tmp_path / "dest").exists()  # nothing written


def test_watershed_remap_task_names_the_uncovered_label(layer, tmp_path):
    seg = segmentation(labels=40)
    src = layer(seg, chunk_size=(16, 16, 8))
    np.save(tmp_path / "short.npy", np.arange(10, dtype=np.uint32))
    tasks = tc.create_watershed_remap_tasks(str(tmp_path / "short.npy"), src, f"file://{tmp_path / 'd'}", (64, 48, 16))
    with pytest.raises(ValueError, match="not covered by the remap array"):
        run(tasks)


# -- mask affinity map ----------------------------------------------------------------------------


def test_mask_affinity_map_equals_numpy(layer, tmp_path):
    rng = np.random.default_rng(2)
    aff = np.asfortranarray(rng.random((64, 64, 16, 3), dtype=np.float32))
    src = layer(aff, name="aff", chunk_size=(16, 16, 8), resolution=(4, 4, 40), layer_type="image")
    mask = np.asfortranarray(rng.integers(0, 2, size=(16, 16, 8)).astype(np.uint8))
    mask_path = layer(mask, name="mask", chunk_size=(8, 8, 8), resolution=(16, 16, 80), layer_type="image")
    out = f"file://{tmp_path / 'out'}"

    tasks = tc.create_mask_affinity_map_tasks(src, out, 0, mask_path, 0, (0, 0, 0), (32, 32, 16), (2, 2, 1))
    assert len(tasks) == 4
    run(tasks)

    up = np.repeat(np.repeat(np.repeat(mask, 4, 0), 4, 1), 2, 2)
    want = aff * (up[..., np.newaxis] != 0)
    np.testing.assert_array_equal(read_layer(out), want)
    assert (read_layer(out) == 0).any() and (read_layer(out) != 0).any()


def test_mask_affinity_map_refusals_write_nothing(layer, tmp_path):
    aff = np.zeros((64, 64, 16, 3), np.float32)
    src = layer(aff, name="aff", chunk_size=(16, 16, 8), layer_type="image")
    mask = layer(np.ones((21, 21, 8), np.uint8), name="mask", resolution=(6, 6, 40), layer_type="image")
    out = f"file://{tmp_path / 'out'}"
    with pytest.raises(InvalidParameterError, match="whole multiple"):
        tc.create_mask_affinity_map_tasks(src, out, 0, mask, 0, (0, 0, 0), (32, 32, 16), (2, 2, 1))
    good_mask = layer(np.ones((16, 16, 8), np.uint8), name="mask2", resolution=(16, 16, 80), layer_type="image")
    with pytest.raises(InvalidParameterError, match="chunk grid"):
        tc.create_mask_affinity_map_tasks(src, out, 0, good_mask, 0, (8, 0, 0), (16, 16, 16), (2, 2, 1))
    with pytest.raises(InvalidParameterError, match="outside the layer"):
        tc.create_mask_affinity_map_tasks(src, out, 0, good_mask, 0, (0, 0, 0), (32, 32, 16), (3, 1, 1))
    assert not (tmp_path / "out").exists()


# -- hypersquare consensus ------------------------------------------------------------------------


def test_hypersquare_consensus_equals_numpy(layer, tmp_path):
    seg = segmentation(shape=(64, 32, 16), labels=30, dtype=np.uint16) + 1
    src = layer(seg.astype(np.uint16), chunk_size=(16, 16, 8), layer_type="segmentation")
    volume_map = {"0-32_0-32_0-16": 7, "32-80_0-32_0-16": 8}  # the second box is clipped to the layer
    consensus = {"7": {"4000000000": [1, 2, 3], "5": [10]}, "8": {"6": [1, 2, 20, 21]}}
    (tmp_path / "volumes.json").write_text(json.dumps(volume_map))
    (tmp_path / "consensus.json").write_text(json.dumps(consensus))
    dest = f"file://{tmp_path / 'dest'}"

    tasks = tc.create_hypersquare_consensus_tasks(
        src, dest, str(tmp_path / "volumes.json"), f"file://{tmp_path / 'consensus.json'}"
    )
    assert isinstance(tasks, list) and len(tasks) == 2
    run(tasks)

    want = np.zeros(seg.shape, np.uint32)
    for (lo, hi), cells in (((0, 32), {4000000000: [1, 2, 3], 5: [10]}), ((32, 64), {6: [1, 2, 20, 21]})):
        part = seg[lo:hi]
        for cell, ids in cells.items():
            want[lo:hi][np.isin(part, ids)] = cell
    got = read_layer(dest)[..., 0]
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)
    assert (got == 4000000000).any() and (got == 6).any()


@pytest.mark.parametrize(
    "volumes, consensus, words",
    [
        ({"0-32_0-32_0-16": 1, "16-48_0-32_0-16": 2}, {}, "overlap"),
        ({"0-24_0-32_0-16": 1}, {}, "chunk grid"),
        ({"not a box": 1}, {}, "box name"),
        ({"0-32_0-32_0-16": 1}, {"1": {"0": [1]}}, "cell id"),
        ({"0-32_0-32_0-16": 1}, {"1": {"5": [1], "6": [1]}}, "assigned to cells 5 and 6"),
        ({"0-32_0-32_0-16": 1}, {"1": {str(2**32): [1]}}, "cell id"),
    ],
)
def test_hypersquare_consensus_validates_before_writing(layer, tmp_path, volumes, consensus, words):
    src = layer(segmentation(shape=(64, 32, 16)), chunk_size=(16, 16, 8))
    (tmp_path / "v.json").write_text(json.dumps(volumes))
    (tmp_path / "c.json").write_text(json.dumps(consensus))
    with pytest.raises(InvalidParameterError, match=words):
        tc.create_hypersquare_consensus_tasks(src, f"file://{tmp_path / 'dest'}", str(tmp_path / "v.json"),
                                              str(tmp_path / "c.json"))  # fmt: skip
    assert not (tmp_path / "dest").exists()


def test_hypersquare_ingest_is_refused_as_obsolete():
    with pytest.raises(InvalidParameterError, match="obsolete") as err:
        tc.create_hypersquare_ingest_tasks("bucket", "ds", (256, 256, 256), (4, 4, 40), (0, 0, 0), (512, 512, 512), 1)
    assert "\n" not in str(err.value)


# -- inference ------------------------------------------------------------------------------------


def test_inference_plans_and_refuses_without_chunkflow(layer, tmp_path):
    try:  # chunkflow is not a dependency: the refusal is what runs here
        import chunkflow  # noqa: F401

        pytest.skip("chunkflow is installed here")
    except ImportError:
        pass
    image = layer(np.zeros((64, 64, 16), np.uint8), name="img", chunk_size=(16, 16, 8))
    out = layer(np.zeros((64, 64, 16, 3), np.float32), name="out", chunk_size=(16, 16, 8), layer_type="image")
    tasks = tc.create_inference_tasks(image, "file:///net.py", None, out, (0, 0, 0), (32, 32, 16), (2, 2, 1),
                                      (16, 16, 8), (4, 4, 2), (4, 4, 2), image_mip=0, output_mip=0)  # fmt: skip
    tasks = list(tasks)
    assert len(tasks) == 4
    assert sorted(t.output_offset for t in tasks) == [[0, 0, 0], [0, 32, 0], [32, 0, 0], [32, 32, 0]]
    with pytest.raises(RuntimeError, match="chunkflow") as err:
        tasks[0].execute()
    assert "\n" not in str(err.value)
    with pytest.raises(InvalidParameterError, match="num_output_channels"):
        tc.create_inference_tasks(image, "net", None, out, (0, 0, 0), (32, 32, 16), (1, 1, 1), (16, 16, 8),
                                  (4, 4, 2), (4, 4, 2), num_output_channels=2, image_mip=0, output_mip=0)  # fmt: skip


def test_ops_directly():
    image = np.array([[[0, 3, 2]]], np.uint64)
    np.testing.assert_array_equal(ops.apply_remap(image, np.array([9, 8, 7, 6], np.uint8)), [[[9, 6, 7]]])
    np.testing.assert_array_equal(ops.consensus_relabel(image, {5: [3]}), [[[0, 5, 0]]])
    mask = np.array([[[1, 0]]], np.uint8)
    np.testing.assert_array_equal(ops.upsample_mask(mask, (1, 1, 2), (1, 1, 3), (0, 0, 1)), [[[1, 0, 0]]])
