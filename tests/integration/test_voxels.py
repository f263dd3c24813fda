"""Global voxel counts over task seams equal ``np.unique`` on the whole array (DESIGN §5).

Counting uses fixed 512³ tasks (SPEC §2.1), so the layers here are 523 voxels wide: two
tasks in x, the second one 11 voxels wide, and a chunk width (48) that 512 does not divide,
so one chunk is read by both tasks. Offsets are non-zero.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume, EmptyVolumeException
from mapbuffer import IntMap
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
import igneous.tasks.image.voxels as voxels_task
from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.tasks.image.voxels import load_voxel_counts, voxel_count
from tests.conftest import tree

SHAPE = (523, 21, 19)
OFFSET = (5, 7, 3)
CHUNK = (48, 16, 8)
BIG = 2**63  # labels at and above this overflow int64 (sqlite, mapbuffer's search key)


def labels_volume(dtype, seed: int = 0) -> np.ndarray:
    """Blocky labels (runs along x) drawn from a palette that, for uint64, includes labels ≥ 2^63."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint64:
        palette = np.array([0, 1, 2, 77, 2**32 + 5, BIG, BIG + 12345, 2**64 - 1], dtype=np.uint64)
    else:
        palette = np.array([0, 1, 2, 77, 65536, 2**31 + 3, 2**32 - 1], dtype=np.uint32)
    runs = rng.integers(0, len(palette), size=(SHAPE[0] // 7 + 1, SHAPE[1], SHAPE[2]))
    return np.repeat(palette[runs], 7, axis=0)[: SHAPE[0]].astype(dtype)


def expected_counts(data: np.ndarray) -> dict:
    labels, counts = np.unique(data, return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist()))


def intmap_dict(im: IntMap) -> dict:
    return {int(k): int(v) for k, v in im.items()}


def run_local(tasks) -> None:
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


@pytest.fixture
def seg(layer):
    def make(dtype=np.uint64, **kwargs):
        data = labels_volume(dtype)
        path = layer(data, name=f"seg_{np.dtype(dtype).name}", voxel_offset=OFFSET, chunk_size=CHUNK, **kwargs)
        return path, data

    return make


def test_counts_equal_np_unique_on_every_backend(seg, backend):
    path, data = seg(np.uint64)
    backend.run(tc.create_voxel_counting_tasks, ["image", "voxels", "count", path], path, 0)
    tc.accumulate_voxel_counts(path, 0, progress=False, compress="zstd")

    assert intmap_dict(load_voxel_counts(path, 0)) == expected_counts(data)
    im = load_voxel_counts(path, 0)
    for label, count in expected_counts(data).items():  # point lookups, incl. labels ≥ 2^63
        assert voxel_count(im, label) == count
    assert voxel_count(im, 3) is None  # absent label
    forge_reader = meshes.load_voxel_counts(path, "4_4_40")  # what `mesh forge --dust-global` reads
    assert intmap_dict(forge_reader) == expected_counts(data)


@pytest.mark.parametrize("encoding", ["raw", "compressed_segmentation"])
def test_uint32_and_streamed_blocks(seg, monkeypatch, encoding):
    """uint32 labels; a block budget so small that every z-slab is read as several y-strips."""
    path, data = seg(np.uint32, encoding=encoding)
    monkeypatch.setattr(voxels_task, "BLOCK_VOXELS", 523 * 16 * 8)  # one chunk row per read
    tasks = tc.create_voxel_counting_tasks(path, 0)
    assert len(tasks) == 2
    run_local(tasks)
    tc.accumulate_voxel_counts(path, 0, progress=False)
    assert intmap_dict(load_voxel_counts(path, 0)) == expected_counts(data)


def test_per_task_files_hold_the_counts_of_their_box(seg):
    path, data = seg(np.uint64)
    run_local(tc.create_voxel_counting_tasks(path, 0))
    cf = CloudFiles(path)
    names = sorted(cf.list("4_4_40/stats/voxel_counts/"))
    assert [os.path.basename(n) for n in names] == ["5-517_7-28_3-22.json", "517-528_7-28_3-22.json"]
    first = cf.get_json(names[0])
    assert {int(k): v for k, v in first.items()} == expected_counts(data[:512])
    assert "0" in first  # label 0 is counted too (SPEC §3.1)


def delete_chunk(path: str, data_offset, chunk_lo) -> tuple:
    """Delete the chunk whose low corner is ``chunk_lo`` (layer coordinates); returns its slices in ``data``."""
    root = path.replace("file://", "")
    hi = [min(lo + c, o + s) for lo, c, o, s in zip(chunk_lo, CHUNK, data_offset, SHAPE)]
    name = "_".join(f"{lo}-{h}" for lo, h in zip(chunk_lo, hi))
    files = glob.glob(os.path.join(root, "4_4_40", name + "*"))
    assert len(files) == 1, name
    os.remove(files[0])
    return tuple(slice(lo - o, h - o) for lo, h, o in zip(chunk_lo, hi, data_offset))


def test_missing_chunks_with_fill_missing_count_as_zero(seg):
    path, data = seg(np.uint64)
    holes = [delete_chunk(path, OFFSET, (5 + 48 * 10, 7, 3)), delete_chunk(path, OFFSET, (5, 23, 11))]
    expected = data.copy()
    for hole in holes:  # the first hole straddles the seam between the two tasks (x = 485..533)
        expected[hole] = 0

    with pytest.raises(EmptyVolumeException, match="485-528_7-23_3-11"):  # names the missing chunk
        run_local(tc.create_voxel_counting_tasks(path, 0, fill_missing=False))

    run_local(tc.create_voxel_counting_tasks(path, 0, fill_missing=True))
    tc.accumulate_voxel_counts(path, 0, progress=False)
    assert intmap_dict(load_voxel_counts(path, 0)) == expected_counts(expected)


@pytest.mark.parametrize("compress", [None, False, "gzip", "br", "zstd"])
def test_any_compression_reads_back_and_a_local_copy(seg, tmp_path, compress):
    path, data = seg(np.uint64)
    run_local(tc.create_voxel_counting_tasks(path, 0))
    local = tmp_path / "counts.im"
    tc.accumulate_voxel_counts(path, 0, progress=False, compress=compress, additional_output=str(local))
    assert intmap_dict(load_voxel_counts(path, 0)) == expected_counts(data)
    assert intmap_dict(IntMap(local.read_bytes())) == expected_counts(data)


def test_a_new_sum_replaces_an_old_one_in_another_compression(seg):
    """file:// keeps one file per compression suffix; a stale .gz must not shadow the new counts."""
    path, data = seg(np.uint64)
    run_local(tc.create_voxel_counting_tasks(path, 0))
    tc.accumulate_voxel_counts(path, 0, progress=False, compress="gzip")
    CloudVolume(path).image.delete(CloudVolume(path).bounds)  # the layer is now all zero
    run_local(tc.create_voxel_counting_tasks(path, 0, fill_missing=True))
    tc.accumulate_voxel_counts(path, 0, progress=False, compress="zstd")
    assert intmap_dict(load_voxel_counts(path, 0)) == {0: data.size}
    stats = os.path.join(path.replace("file://", ""), "4_4_40", "stats")
    assert sorted(n for n in os.listdir(stats) if n.startswith("voxel_counts.im")) == ["voxel_counts.im.zstd"]


def test_sum_refuses_before_counting_and_names_missing_files(seg, tmp_path):
    path, _ = seg(np.uint64)
    before = tree(tmp_path / "seg_uint64")
    with pytest.raises(InvalidParameterError, match="run `igneous image voxels count` first"):
        tc.accumulate_voxel_counts(path, 0, progress=False)
    assert tree(tmp_path / "seg_uint64") == before

    run_local(tc.create_voxel_counting_tasks(path, 0))
    cf = CloudFiles(path)
    cf.delete("4_4_40/stats/voxel_counts/517-528_7-28_3-22.json")
    with pytest.raises(InvalidParameterError, match=r"1 of 2 voxel count files are missing .*517-528_7-28_3-22\.json"):
        tc.accumulate_voxel_counts(path, 0, progress=False)
    assert not cf.exists("4_4_40/stats/voxel_counts.im")


def test_load_before_sum_is_refused(seg):
    path, _ = seg(np.uint64)
    with pytest.raises(InvalidParameterError, match="image voxels sum"):
        load_voxel_counts(path, 0)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda layer: layer(np.zeros((8, 8, 8), np.uint8), name="img"), "layer type 'image'"),
        (lambda layer: layer(np.zeros((8, 8, 8), np.float32), name="f", layer_type="segmentation"), "integer"),
        (lambda layer: layer(np.zeros((8, 8, 8, 2), np.uint32), name="c", layer_type="segmentation"), "channel"),
    ],
)
def test_layers_without_labels_are_refused(layer, make, message):
    path = make(layer)
    with pytest.raises(InvalidParameterError, match=message):
        tc.create_voxel_counting_tasks(path, 0)
    with pytest.raises(InvalidParameterError, match=message):
        tc.accumulate_voxel_counts(path, 0, progress=False)


def test_bad_mip_and_compression_are_refused(seg):
    path, _ = seg(np.uint64)
    with pytest.raises(InvalidParameterError, match="mip"):
        tc.create_voxel_counting_tasks(path, 3)
    run_local(tc.create_voxel_counting_tasks(path, 0))
    with pytest.raises(InvalidParameterError, match="compress"):
        tc.accumulate_voxel_counts(path, 0, progress=False, compress="lz4")
