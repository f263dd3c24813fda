"""Forge options: dust (local and global), object masks, hole filling, Draco, sharded .frags,
the spatial index, dry runs, and the MeshTask wire format."""

from __future__ import annotations

import gzip
import json

import fastremap
import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox
from mapbuffer import IntMap, MapBuffer
from taskqueue import LocalTaskQueue
from taskqueue.registered_task import totask

from igneous import meshes
from igneous.errors import IncompleteMeshError, InvalidParameterError
from igneous.ops.mesh import decode_fragment, fuse
from igneous.task_creation.mesh import create_meshing_tasks
from igneous.tasks.mesh.mesh import MeshTask
from tests.conftest import tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.mesh.test_forge import fused_fragments
from tests.oracles import edge_use, mesh_weld, surface_area, zmesh_whole_volume

MESH_DIR = "mesh_mip_0_err_40"


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def assert_same_as_oracle(fused, oracle, labels):
    assert set(fused) == set(labels)
    for label in labels:
        ov, of = mesh_weld(*oracle[label])
        fv, ff = fused[label]
        np.testing.assert_array_equal(np.r_[fv.min(0), fv.max(0)], np.r_[ov.min(0), ov.max(0)])
        assert surface_area(fv, ff) == pytest.approx(surface_area(ov, of), rel=1e-6)


def small_labels_volume():
    """Label 1: big. Label 2: 8 voxels inside task 0. Label 3: 8 voxels across the x=16 seam.
    Label 4: 12 voxels, interior to task 1. Tasks are 16 wide in x."""
    a = np.zeros((32, 16, 12), dtype=np.uint32)
    a[1:30, 1:14, 1:10] = 1
    a[4:6, 4:6, 4:6] = 2
    a[15:17, 8:10, 4:6] = 3
    a[22:25, 4:6, 4:6] = 4
    return a


def test_local_dust_never_cuts_a_label_at_a_seam(layer):
    data = small_labels_volume()
    path = layer(data, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(16, 16, 12))
    run(create_meshing_tasks(path, 0, shape=(16, 16, 12), simplification=False, dust_threshold=10))
    fused = fused_fragments(path, MESH_DIR)
    # 2 is small and interior: dropped. 3 is small but straddles the seam: kept whole, closed.
    # 4 has 12 voxels: kept. 1's surface is unchanged by dropping 2 (zmesh meshes labels apart).
    oracle = zmesh_whole_volume(data, RESOLUTION, VOXEL_OFFSET)
    assert_same_as_oracle(fused, oracle, [1, 3, 4])
    assert edge_use(fused[3][1])[0] == 0


def put_voxel_counts(path, data, compress="zstd"):
    labels, counts = fastremap.unique(data, return_counts=True)
    im = IntMap({int(k): int(v) for k, v in zip(labels, counts)})
    key = CloudVolume(path).meta.key(0)
    CloudFiles(path).put(meshes.voxel_counts_filename(key), im.tobytes(), compress=compress)


def test_dust_global_uses_the_global_counts(layer, crop_b):
    crop = crop_b[:48, :48, :32]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    with pytest.raises(InvalidParameterError, match="stats/voxel_counts.im: run `igneous image voxels count`"):
        create_meshing_tasks(path, 0, dust_threshold=500, dust_global=True)
    put_voxel_counts(path, crop)
    run(create_meshing_tasks(path, 0, shape=(20, 24, 20), simplification=False, dust_threshold=500, dust_global=True))
    labels, counts = fastremap.unique(crop, return_counts=True)
    big = [int(lbl) for lbl, c in zip(labels, counts) if lbl and c >= 500]
    assert 0 < len(big) < len(labels) - 1
    assert_same_as_oracle(fused_fragments(path, MESH_DIR), zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET), big)


def test_dust_global_names_a_label_missing_from_stale_counts(layer, crop_b):
    crop = crop_b[:24, :24, :16]
    path = layer(crop, resolution=RESOLUTION)
    put_voxel_counts(path, np.where(crop == crop.max(), 0, crop).astype(crop.dtype))
    with pytest.raises(IncompleteMeshError, match=f"label {int(crop.max())} is not in .*voxel_counts.im"):
        run(create_meshing_tasks(path, 0, dust_threshold=10, dust_global=True))


def test_object_ids_and_exclusions(layer, crop_b):
    crop = crop_b[:48, :48, :32]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    labels = [int(x) for x in fastremap.unique(crop) if x]
    keep, drop = labels[:6], labels[2:4]
    run(
        create_meshing_tasks(
            path, 0, shape=(20, 24, 20), simplification=False, object_ids=keep, exclude_object_ids=drop
        )
    )
    oracle = zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET)
    assert_same_as_oracle(fused_fragments(path, MESH_DIR), oracle, sorted(set(keep) - set(drop)))


def test_nonexistent_object_ids_are_refused_when_counts_exist(layer, crop_b, tmp_path):
    from click.testing import CliRunner

    from igneous_cli import main

    crop = crop_b[:24, :24, :16]
    path = layer(crop, resolution=RESOLUTION)
    put_voxel_counts(path, crop)
    before = tree(tmp_path / "src")
    result = CliRunner().invoke(main, ["mesh", "forge", path, "--labels", f"{int(crop.max()) + 1},3"])
    assert result.exit_code == 2
    assert f"object_ids {int(crop.max()) + 1}" in result.output and "do not occur in the segmentation" in result.output
    assert tree(tmp_path / "src") == before


def test_fill_holes_removes_cavities_keeps_enclosed_labels_and_seams(layer):
    a = np.zeros((40, 20, 16), dtype=np.uint32)
    a[2:38, 2:18, 2:14] = 1
    a[5:9, 5:9, 5:9] = 2  # enclosed object: absorbed into 1, still meshed as 2
    a[12:14, 12:14, 6:8] = 0  # enclosed cavity inside task 0: filled
    a[19:22, 6:10, 6:9] = 0  # cavity across the x=20 seam: touches both cutouts, left open
    path = layer(a, resolution=RESOLUTION, chunk_size=(20, 20, 16))
    run(create_meshing_tasks(path, 0, shape=(20, 20, 16), simplification=False, fill_holes=1))
    fused = fused_fragments(path, MESH_DIR)
    expect = a.copy()
    expect[5:9, 5:9, 5:9] = 1
    expect[12:14, 12:14, 6:8] = 1
    oracle = zmesh_whole_volume(expect, RESOLUTION, (0, 0, 0))
    ov, of = mesh_weld(*oracle[1])
    assert surface_area(*fused[1]) == pytest.approx(surface_area(ov, of), rel=1e-6)
    assert edge_use(fused[1][1])[0] == 0
    inner = zmesh_whole_volume(a, RESOLUTION, (0, 0, 0))[2]
    assert surface_area(*fused[2]) == pytest.approx(surface_area(*mesh_weld(*inner)), rel=1e-6)


def test_draco_fragments_fuse_closed_on_one_lattice(layer, crop_b):
    crop = crop_b[:48, :48, :32]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    run(create_meshing_tasks(path, 0, shape=(20, 24, 20), simplification=False, encoding="draco"))
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    first = next(n for n in cf.list() if meshes.parse_fragment_name(n))
    assert cf.get(first)[:5] == b"DRACO"
    fused = fused_fragments(path, MESH_DIR)
    oracle = zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET)
    assert set(fused) == set(oracle)
    for label, (ov, _) in oracle.items():
        fv, ff = fused[label]
        assert edge_use(ff)[0] == 0, f"label {label}: seams did not quantize identically"
        np.testing.assert_allclose(np.r_[fv.min(0), fv.max(0)], np.r_[ov.min(0), ov.max(0)], atol=16)


def test_sharded_forge_writes_frags_and_spatial_index(layer, crop_b, tmp_path):
    crop = crop_b[:48, :48, :32].copy()
    crop[:, :, 20:] = 0  # the upper tasks are empty
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    frag_path = f"file://{tmp_path / 'frags'}"
    run(create_meshing_tasks(path, 0, shape=(24, 24, 20), simplification=False, sharded=True, frag_path=frag_path))
    oracle = zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET)
    vol = CloudVolume(path)
    info = CloudFiles(path).get_json(f"{MESH_DIR}/info")
    per_label = {}
    for box in meshes.grid_boxes(vol.bounds, (24, 24, 20)):
        data = CloudFiles(frag_path).get(f"{MESH_DIR}/{meshes.frags_filename(box)}", raw=True)
        assert data is not None and data[:7] == b"mapbufr"  # stored without transport compression
        mb = MapBuffer(data)
        spatial = CloudFiles(path).get_json(
            f"{MESH_DIR}/{meshes.spatial_index_filename(box, info['spatial_index']['resolution'])}"
        )
        assert sorted(int(k) for k in spatial) == sorted(int(k) for k in mb.keys())
        if box.minpt[2] - VOXEL_OFFSET[2] >= 20:
            assert len(mb) == 0 and spatial == {}
        for label in mb.keys():
            v, f = decode_fragment(mb[label])
            lo, hi = np.floor(v.min(0)), np.ceil(v.max(0))
            assert np.all(lo >= spatial[str(label)][:3]) and np.all(hi <= spatial[str(label)][3:])
            per_label.setdefault(int(label), []).append((v, f))
    assert set(per_label) == set(oracle)
    for label, frags in per_label.items():
        fv, ff = fuse(frags)
        assert surface_area(fv, ff) == pytest.approx(surface_area(*mesh_weld(*oracle[label])), rel=1e-6)
    assert not [n for n in CloudFiles(path).list(prefix=MESH_DIR) if meshes.parse_fragment_name(n.split("/")[-1])]
    # CloudVolume's reader finds every label through the spatial index the forge wrote.
    assert set(int(x) for x in vol.mesh.spatial_index.query(vol.bounds * vol.resolution)) == set(oracle)


def test_dry_run_writes_nothing(layer, crop_b, tmp_path):
    path = layer(crop_b[:24, :24, :16], resolution=RESOLUTION)
    before = tree(tmp_path / "src")
    run(create_meshing_tasks(path, 0, shape=(16, 16, 16), dry_run=True))
    assert tree(tmp_path / "src") == before


def test_mesh_task_wire_format(layer, crop_b):
    crop = crop_b[:24, :24, :16]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    tasks = list(create_meshing_tasks(path, 0, shape=(16, 16, 16), simplification=False))
    payload = tasks[0].payload()
    assert set(payload) == {
        "shape", "offset", "layer_path", "mip", "simplification_factor", "max_simplification_error", "mesh_dir",
        "cache_control", "dust_threshold", "dust_global", "progress", "object_ids", "exclude_object_ids",
        "fill_missing", "encoding", "spatial_index", "frag_path", "sharded", "compress", "closed_dataset_edges",
        "fill_holes", "dry_run", "class",
    }  # fmt: skip
    assert payload["class"] == "MeshTask" and payload["simplification_factor"] == 0
    json.dumps(payload)
    # A message from another Igneous (hand written, SPEC §5.3) runs on our worker.
    message = {
        "shape": [24, 24, 16], "offset": list(VOXEL_OFFSET), "layer_path": path, "mip": 0,
        "simplification_factor": 0, "max_simplification_error": 40, "mesh_dir": "theirs", "cache_control": "no-cache",
        "dust_threshold": None, "dust_global": False, "progress": False, "object_ids": None, "exclude_object_ids": [],
        "fill_missing": False, "encoding": "precomputed", "spatial_index": True, "frag_path": None, "sharded": False,
        "compress": "gzip", "closed_dataset_edges": True, "fill_holes": 0, "dry_run": False, "class": "MeshTask",
    }  # fmt: skip
    totask(json.dumps(message)).execute()
    cf = CloudFiles(f"{path}/theirs")
    names = list(cf.list())
    assert len([n for n in names if n.endswith(".spatial")]) == 1
    box = Bbox(VOXEL_OFFSET, np.add(VOXEL_OFFSET, (24, 24, 16)))
    assert {meshes.parse_fragment_name(n)[0] for n in names if meshes.parse_fragment_name(n)} == set(
        int(x) for x in fastremap.unique(crop) if x
    )
    assert all(n.endswith(box.to_filename()) for n in names if meshes.parse_fragment_name(n))
    with pytest.raises(TypeError, match="dust_treshold"):
        MeshTask([1, 1, 1], [0, 0, 0], path, dust_treshold=3)
    raw = CloudFiles(f"{path}/theirs").get([n for n in names if n.endswith(".spatial")][0], raw=True)
    assert json.loads(gzip.decompress(raw))


def test_fill_missing_meshes_a_missing_chunk_as_background(layer, crop_b, tmp_path):
    crop = crop_b[:64, :64, :32].copy()
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16))
    chunk = tmp_path / "src" / "16_16_40" / "39-71_43-75_21-37.gz"
    chunk.unlink()
    with pytest.raises(Exception, match="39-71_43-75_21-37"):
        run(create_meshing_tasks(path, 0, shape=(40, 40, 24), simplification=False))
    run(create_meshing_tasks(path, 0, shape=(40, 40, 24), simplification=False, fill_missing=True))
    crop[32:64, 32:64, 16:32] = 0
    oracle = zmesh_whole_volume(crop, RESOLUTION, VOXEL_OFFSET)
    assert_same_as_oracle(fused_fragments(path, MESH_DIR), oracle, sorted(oracle))


def test_remap_table_agglomerates_labels_before_meshing(layer, crop_b):
    crop = crop_b[:48, :48, :32]
    path = layer(crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET)
    a, b = [int(x) for x in fastremap.unique(crop)[1:3]]
    tasks = create_meshing_tasks(path, 0, shape=(20, 24, 20), simplification=False)
    for task in tasks:
        task.remap_table = {str(a): b}  # JSON keys are strings
        task.execute()
    merged = fastremap.remap(crop, {a: b}, preserve_missing_labels=True)
    oracle = zmesh_whole_volume(merged, RESOLUTION, VOXEL_OFFSET)
    assert a not in oracle
    assert_same_as_oracle(fused_fragments(path, MESH_DIR), oracle, sorted(oracle))
