"""Spatial index: ``SpatialIndexTask`` files equal numpy bounding boxes on the whole volume, and
a sqlite export answers CloudVolume's spatial-index queries exactly as the files do.

Layers are crop B of the real sample segmentation (78 labels) with a non-zero voxel offset,
indexed over a (40, 40, 24) grid that does not divide 96×96×64. The MySQL twin of the
export test is ``tests/services/test_mysql.py`` (it needs a running MariaDB).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox
from taskqueue import LocalTaskQueue

from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.task_creation.spatial_index import create_spatial_index_mesh_tasks, export_spatial_index_db
from igneous_cli import main
from tests.conftest import tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET

SHAPE = (40, 40, 24)
BIG = 2**63


def big_labels(crop: np.ndarray) -> np.ndarray:
    """The crop as uint64 with every label moved to ≥ 2^63 (0 stays background)."""
    out = crop.astype(np.uint64)
    out[out > 0] += np.uint64(BIG)
    return out


def whole_volume_bboxes(data: np.ndarray, offset, resolution) -> dict:
    """``{label: [x0,y0,z0,x1,y1,z1]}`` nm from numpy on the whole array (half-open voxel boxes)."""
    out = {}
    res = np.asarray(resolution, dtype=float)
    for label in np.unique(data):
        if label == 0:
            continue
        coords = np.nonzero(data == label)
        lo = (np.array([c.min() for c in coords]) + offset) * res
        hi = (np.array([c.max() + 1 for c in coords]) + offset) * res
        out[int(label)] = [int(np.floor(v)) for v in lo] + [int(np.ceil(v)) for v in hi]
    return out


def index_layer(layer, data, name="seg", resolution=RESOLUTION, shape=SHAPE, chunk_size=(32, 32, 16)):
    path = layer(data, name=name, resolution=resolution, voxel_offset=VOXEL_OFFSET, chunk_size=chunk_size)
    LocalTaskQueue(parallel=1, progress=False).insert_all(create_spatial_index_mesh_tasks(path, shape=shape))
    return path


def read_index_files(path: str) -> dict:
    vol = CloudVolume(path)
    mesh_dir = vol.info["mesh"]
    cf = CloudFiles(path)
    names = [n for n in cf.list(mesh_dir + "/") if n.endswith(".spatial")]
    return {os.path.basename(n): cf.get_json(n) for n in names}


@pytest.fixture(scope="module")
def crop(sample_crop):
    from tests.mesh.conftest import CROP_B

    return sample_crop(*CROP_B)


def test_each_file_holds_the_numpy_bboxes_of_its_box_plus_overlap(layer, crop):
    path = index_layer(layer, crop)
    files = read_index_files(path)
    bounds = Bbox(VOXEL_OFFSET, np.add(VOXEL_OFFSET, crop.shape))
    boxes = list(meshes.grid_boxes(bounds, SHAPE))
    assert len(boxes) == 3 * 3 * 3
    assert sorted(files) == sorted(meshes.spatial_index_filename(b, list(RESOLUTION)) for b in boxes)
    for box in boxes:
        read = Bbox.clamp(Bbox(box.minpt, box.maxpt + 1), bounds)  # the task's +1 high overlap
        lo, hi = read.minpt - bounds.minpt, read.maxpt - bounds.minpt
        region = crop[lo.x : hi.x, lo.y : hi.y, lo.z : hi.z]
        want = whole_volume_bboxes(region, read.minpt, RESOLUTION)
        got = files[meshes.spatial_index_filename(box, list(RESOLUTION))]
        assert {int(k): v for k, v in got.items()} == want, box


def test_union_over_files_is_the_whole_volume_bbox(layer, crop):
    path = index_layer(layer, crop)
    want = whole_volume_bboxes(crop, VOXEL_OFFSET, RESOLUTION)
    assert len(want) > 50
    union = {}
    for content in read_index_files(path).values():
        for label, b in content.items():
            u = union.setdefault(int(label), list(b))
            union[int(label)] = [min(u[i], b[i]) for i in range(3)] + [max(u[i], b[i]) for i in range(3, 6)]
    assert union == want
    vol = CloudVolume(path)  # CloudVolume's reader agrees, label by label
    for label, b in list(want.items())[::30]:  # get_bbox reads every index file: a few labels
        assert vol.mesh.spatial_index.get_bbox(label) == Bbox(b[:3], b[3:])


def test_fractional_resolution_names_follow_cloudvolume_precision(layer, crop):
    """(4.5, 4.5, 40) → precision 1: names like '36.0-180.0_…'; boxes in the files stay integers.

    The voxel offset makes the physical origin whole (8·4.5 = 36): CloudVolume's reader walks
    the index grid with integer steps and cannot find files on a fractional grid origin."""
    res, offset = (4.5, 4.5, 40), (8, 12, 5)
    data = crop[:50, :50, :30]
    path = layer(data, name="seg", resolution=res, voxel_offset=offset, chunk_size=(32, 32, 16))
    LocalTaskQueue(parallel=1, progress=False).insert_all(create_spatial_index_mesh_tasks(path, shape=(32, 32, 16)))
    files = read_index_files(path)
    assert "36.0-180.0_54.0-198.0_200.0-840.0.spatial" in files
    assert all(isinstance(v, int) for content in files.values() for b in content.values() for v in b)
    vol = CloudVolume(path)
    want = whole_volume_bboxes(data, offset, res)
    everything = vol.mesh.spatial_index.query(vol.bounds * vol.resolution)
    assert set(everything) == set(want)
    for label in list(want)[:2]:
        assert vol.mesh.spatial_index.get_bbox(label) == Bbox(want[label][:3], want[label][3:])


def test_mesh_info_records_the_grid(layer, crop):
    path = index_layer(layer, crop)
    vol = CloudVolume(path)
    assert vol.info["mesh"] == "mesh_mip_0_err_40"
    info = CloudFiles(path).get_json("mesh_mip_0_err_40/info")
    assert info == {
        "@type": "neuroglancer_legacy_mesh",
        "mip": 0,
        "chunk_size": list(SHAPE),
        "spatial_index": {"resolution": list(RESOLUTION), "chunk_size": [s * r for s, r in zip(SHAPE, RESOLUTION)]},
    }


def spatial_answers(path: str, db=None) -> dict:
    """What CloudVolume's spatial index says, with or without a database."""
    vol = CloudVolume(path, spatial_index_db=db)
    index = vol.mesh.spatial_index
    everything = sorted(int(x) for x in index.query(vol.bounds * vol.resolution))  # DB used here
    sample = everything[:: max(1, len(everything) // 3)] + everything[-1:]  # get_bbox reads every file
    return {
        "labels": everything,
        "bboxes": {label: index.get_bbox(label) for label in sample},
        "locations": {k: sorted(v) for k, v in index.file_locations_per_label(everything).items()},
        "absent": index.get_bbox(12345678901),
    }


def test_sqlite_answers_like_the_files(layer, crop, tmp_path):
    path = index_layer(layer, crop)
    db = f"sqlite://{tmp_path / 'index.db'}"
    export_spatial_index_db(path, db)
    files = spatial_answers(path)
    assert len(files["labels"]) > 50
    assert spatial_answers(path, db) == files


def test_cli_create_and_db(layer, crop, tmp_path):
    path = layer(crop, name="seg", resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    runner = CliRunner()
    result = runner.invoke(main, ["mesh", "spatial-index", "create", path, "--shape", "40,40,24"])
    assert result.exit_code == 0, result.output
    dbfile = tmp_path / "cli.db"
    result = runner.invoke(main, ["-p", "2", "mesh", "spatial-index", "db", path, f"sqlite://{dbfile}"])
    assert result.exit_code == 0, result.output  # -p 2 is forced to one writer for sqlite
    assert "started thread" not in result.output  # CloudVolume's thread prints are silenced
    assert spatial_answers(path, f"sqlite://{dbfile}") == spatial_answers(path)


def test_cli_create_through_a_queue(layer, crop, tmp_path):
    from tests.conftest import igneous_subprocess

    data = crop[:48, :48, :32]
    path = layer(data, name="seg", resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    queue = tmp_path / "q"
    result = CliRunner().invoke(
        main, ["mesh", "spatial-index", "create", path, "--shape", "40,40,24", "--queue", str(queue)]
    )
    assert result.exit_code == 0, result.output
    proc = igneous_subprocess("execute", "-x", "-q", f"fq://{queue}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    vol = CloudVolume(path)
    assert set(vol.mesh.spatial_index.query(vol.bounds * vol.resolution)) == set(
        whole_volume_bboxes(data, VOXEL_OFFSET, RESOLUTION)
    )


def test_fill_missing(layer, crop, tmp_path):
    data = crop[:48, :48, :32]
    path = layer(data, name="seg", resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    chunk = next((tmp_path / "seg" / "16_16_40").glob("7-39_11-43_5-21*"))
    chunk.unlink()
    with pytest.raises(Exception, match="7-39_11-43_5-21"):
        LocalTaskQueue(parallel=1, progress=False).insert_all(create_spatial_index_mesh_tasks(path, shape=(40, 40, 24)))
    LocalTaskQueue(parallel=1, progress=False).insert_all(
        create_spatial_index_mesh_tasks(path, shape=(40, 40, 24), fill_missing=True)
    )
    filled = data.copy()
    filled[:32, :32, :16] = 0
    vol = CloudVolume(path)
    want = whole_volume_bboxes(filled, VOXEL_OFFSET, RESOLUTION)
    assert set(vol.mesh.spatial_index.query(vol.bounds * vol.resolution)) == set(want)


# -- refusals ----------------------------------------------------------------------------------


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_db_on_a_layer_without_spatial_index_is_refused(layer, tmp_path):
    path = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    before = tree(tmp_path)
    result = cli("mesh", "spatial-index", "db", path, f"sqlite://{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert "has no mesh spatial index" in one_error_line(result)
    assert not (tmp_path / "x.db").exists()
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(".cloud")} == {
        k: v for k, v in before.items() if not k.startswith(".cloud")
    }


def test_sqlite_with_labels_at_or_above_2_63_is_refused_with_a_mysql_hint(layer, crop, tmp_path):
    path = index_layer(layer, big_labels(crop[:48, :48, :32]))
    result = cli("mesh", "spatial-index", "db", path, f"sqlite://{tmp_path / 'big.db'}")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "2^63" in line and "mysql://" in line
    assert not (tmp_path / "big.db").exists()


def test_missing_spatial_files_are_refused_unless_allowed(layer, crop, tmp_path):
    path = index_layer(layer, crop[:48, :48, :32])
    cf = CloudFiles(path)
    victim = sorted(n for n in cf.list("mesh_mip_0_err_40/") if n.endswith(".spatial"))[0]
    cf.delete(victim)
    result = cli("mesh", "spatial-index", "db", path, f"sqlite://{tmp_path / 'gap.db'}")
    assert result.exit_code == 2
    assert os.path.basename(victim) in one_error_line(result)
    result = cli("mesh", "spatial-index", "db", path, f"sqlite://{tmp_path / 'gap.db'}", "--allow-missing")
    assert result.exit_code == 0, result.output
    with_db = spatial_answers(path, f"sqlite://{tmp_path / 'gap.db'}")
    assert with_db["labels"] and victim not in str(with_db["locations"])


@pytest.mark.parametrize(
    "args,words",
    [
        (["db", "{path}", "postgresx://h/db"], "database must be sqlite://"),
        (["db", "{path}", "mysql:///db"], "mysql:// needs a host"),
        (["create", "{img}"], "segmentation"),
        (["create", "{path}", "--mip", "1"], "mip must be an integer in [0, 0]"),
        (["create", "{path}", "--shape", "0,8,8"], "shape must be 3 integers >= 1"),
        (["create", "{path}", "--shape", "32,32,16"], "pass shape=40,40,24"),  # differs from the forge grid
    ],
)
def test_bad_input_exits_2_with_one_line(layer, crop, args, words):
    path = index_layer(layer, crop[:48, :48, :32])
    img = layer(np.zeros((8, 8, 8), np.uint8), name="img")
    result = cli("mesh", "spatial-index", *[a.format(path=path, img=img) for a in args])
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)


def test_api_refuses_a_different_mip_than_the_forge(layer, crop):
    path = index_layer(layer, crop[:48, :48, :32])
    vol = CloudVolume(path)
    vol.add_scale((2, 2, 1))
    vol.commit_info()
    with pytest.raises(InvalidParameterError, match="forged at mip 0"):
        create_spatial_index_mesh_tasks(path, shape=SHAPE, mip=1)
