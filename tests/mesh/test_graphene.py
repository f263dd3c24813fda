"""Graphene meshing (SPEC §2.2, §2.5, §3.4) up to the graphene server call.

No PyChunkGraph server is available: the layer's info (what the server would return) is
handed to CloudVolume directly, and the L2 / root ids a task would download are built here.
Everything after those calls — planning, the mesh info, the overlap remap, meshing, Draco
on the shared lattice and the initial shard files — runs for real on file:// storage.
"""

from __future__ import annotations

import copy
import json

import DracoPy
import numpy as np
import pytest
from cloudvolume import CloudVolume
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification
from cloudvolume.lib import Bbox
from taskqueue.registered_task import deserialize

import igneous.task_creation as tc
from igneous.errors import InvalidParameterError
from igneous.ops.graphene import remap_overlap
from igneous.task_creation.common import graphene_prefixes
from igneous.task_creation.graphene import graphene_meshing_plan
from igneous.tasks.mesh.graphene import GrapheneMeshTask
from tests.oracles import is_closed, mesh_weld

SERVER = "graphene://https://127.0.0.1:9/segmentation/table/test"  # nothing listens there
SPEC = {
    "@type": "neuroglancer_uint64_sharded_v1", "hash": "murmurhash3_x86_128", "preshift_bits": 0,
    "minishard_bits": 1, "shard_bits": 1, "minishard_index_encoding": "gzip", "data_encoding": "raw",
}  # fmt: skip


# -- prefixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mip, mip_bits, prefix_length", [(1, 54, 3), (3, 52, 2), (2, 61, 2), (0, 56, 2)])
def test_graphene_prefixes_cover_every_id_once(mip, mip_bits, prefix_length):
    prefixes = graphene_prefixes(mip=mip, mip_bits=mip_bits, coord_bits=(1, 1, 1), prefix_length=prefix_length)
    shift = 64 - mip_bits
    for segid in range(mip << shift, (mip + 1) << shift):
        name = f"{segid}:0:0-1_0-1_0-1"
        assert sum(name.startswith(p) for p in prefixes) == 1, segid
    assert prefixes == sorted(set(prefixes))


def test_graphene_prefixes_defaults():
    prefixes = graphene_prefixes()
    # layer 1 ids are [2^56, 2^57): 17- and 18-digit numbers
    assert prefixes[0] == "100000" and prefixes[-1] == "999999"
    assert str(2**56)[:6] in prefixes and str(2**57 - 1)[:6] in prefixes
    assert str(2**57 + 10**12)[:6] not in prefixes and str(2**56 - 10**11)[:6] not in prefixes  # layers 2 and 0
    assert all(len(p) == 6 for p in prefixes)
    with pytest.raises(InvalidParameterError, match="fit 64 bits"):
        graphene_prefixes(mip_bits=8, coord_bits=(20, 20, 20))
    with pytest.raises(InvalidParameterError, match="mip"):
        graphene_prefixes(mip=256)


def test_hybrid_manifest_tasks_over_a_precomputed_layer(layer, tmp_path):
    path = layer(np.zeros((8, 8, 8), np.uint64))
    tasks = tc.create_graphene_hybrid_mesh_manifest_tasks(path, 1, 54, 1, 1, 1)
    assert len(tasks) == len(graphene_prefixes(1, 54, (1, 1, 1)))
    first = next(iter(tasks))
    assert first.keywords == {"layer_path": path, "prefix": graphene_prefixes(1, 54, (1, 1, 1))[0], "lod": 0,
                              "mesh_dir": None}  # fmt: skip
    with pytest.raises(InvalidParameterError, match="no Precomputed layer"):
        tc.create_graphene_hybrid_mesh_manifest_tasks(f"file://{tmp_path / 'none'}", 1, 8, 10, 10, 10)


# -- planning -----------------------------------------------------------------------------------


def graphene_volume(tmp_path, size=(64, 64, 16), chunk=(32, 32, 8), offset=(0, 0, 0), start_at_offset=False,
                    extra_scale=True):  # fmt: skip
    """A graphene CloudVolume whose info is given (as the server would send it), data on file://."""
    data_dir = f"file://{tmp_path / 'ws'}"
    info = CloudVolume.create_new_info(1, "segmentation", "uint64", "raw", [4, 4, 40], list(offset), list(size),
                                       chunk_size=[16, 16, 8])  # fmt: skip
    ws = CloudVolume(data_dir, info=info)
    if extra_scale:
        ws.add_scale((2, 2, 1), chunk_size=(16, 16, 8))
    ws.commit_info()
    ginfo = copy.deepcopy(ws.info)
    ginfo.update(
        data_dir=data_dir,
        app={"supported_api_versions": [0, 1]},
        chunks_start_at_voxel_offset=start_at_offset,
        graph={"chunk_size": list(chunk), "cv_mip": 0, "n_layers": 4, "n_bits_for_layer_id": 8,
               "spatial_bit_masks": {"1": 10, "2": 10, "3": 9, "4": 8}},
    )  # fmt: skip
    return CloudVolume(SERVER, info=ginfo, secrets="0123abcd", progress=False), data_dir


def test_plan_covers_the_graph_chunks_and_writes_the_mesh_info(tmp_path):
    vol, data_dir = graphene_volume(tmp_path, size=(70, 64, 16), offset=(10, 0, 0))
    tasks = graphene_meshing_plan(vol, SERVER, 1234, 0, sharding={"2": SPEC})
    tasks = list(tasks)
    # the graph grid starts at 0 (not at the voxel offset 10): x chunks [0,32) [32,64) [64,96)
    assert len(tasks) == 3 * 2 * 2
    assert sorted({t.offset.x for t in tasks}) == [0, 32, 64]
    assert all(list(t.shape) == [32, 32, 8] for t in tasks)
    t = tasks[0]
    assert (t.cloudpath, t.mip, t.timestamp, t.mesh_dir, t.cache_control) == (SERVER, 0, 1234, "meshes", "no-cache")
    again = deserialize(json.loads(json.dumps(t.payload())))  # SPEC §5.3 round trip
    assert isinstance(again, GrapheneMeshTask) and list(again.offset) == list(t.offset)
    info = json.loads((tmp_path / "ws" / "meshes" / "info").read_text())
    assert info["@type"] == "neuroglancer_legacy_mesh" and info["chunk_size"] == [32, 32, 8]
    assert info["sharding"] == {"2": SPEC} and info["mip"] == 0

    # chunks that start at the voxel offset; bounds select whole graph chunks
    vol, _ = graphene_volume(tmp_path / "b", size=(70, 64, 16), offset=(10, 0, 0), start_at_offset=True)
    tasks = list(graphene_meshing_plan(vol, SERVER, None, 0, sharding=SPEC, bounds=Bbox((45, 0, 0), (46, 1, 1))))
    assert [list(t.offset) for t in tasks] == [[42, 0, 0]]


def test_plan_at_a_coarser_mip_uses_the_chunk_at_that_mip(tmp_path):
    vol, _ = graphene_volume(tmp_path)
    tasks = list(graphene_meshing_plan(vol, SERVER, None, 1, sharding=SPEC))
    assert len(tasks) == 8 and list(tasks[0].shape) == [16, 16, 8]  # the same 2×2×2 graph chunks


def test_plan_refusals(tmp_path):
    vol, _ = graphene_volume(tmp_path)
    with pytest.raises(InvalidParameterError, match="sharding"):
        graphene_meshing_plan(vol, SERVER, None, 0)
    with pytest.raises(InvalidParameterError, match="watershed mip"):
        vol.info["graph"]["cv_mip"] = 1
        graphene_meshing_plan(vol, SERVER, None, 0, sharding=SPEC)
    assert not (tmp_path / "ws" / "meshes").exists()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(cloudpath="file:///tmp/x"), "graphene://"),
        (dict(mip=-1), "mip"),
        (dict(draco_compression_level=11), "draco_compression_level"),
        (dict(sharding={"@type": "neuroglancer_uint64_sharded_v1"}), "sharding"),
        (dict(sharding={"3": SPEC}), "layer 2"),
        (dict(max_simplification_error=-1), "max_simplification_error"),
    ],
)
def test_creator_validates_before_contacting_the_server(kwargs, words):
    args = {**dict(cloudpath=SERVER, timestamp=None, mip=0, sharding=SPEC), **kwargs}
    with pytest.raises(InvalidParameterError, match=words):
        tc.create_graphene_meshing_tasks(**args)


# -- the task -----------------------------------------------------------------------------------


def test_task_refuses_other_sources(layer):
    path = layer(np.zeros((8, 8, 8), np.uint64))
    with pytest.raises(ValueError, match="graphene://"):
        GrapheneMeshTask(path, (8, 8, 8), (0, 0, 0), 0).execute()
    with pytest.raises(TypeError, match="unknown option"):
        GrapheneMeshTask(path, (8, 8, 8), (0, 0, 0), 0, colour="red")


def test_remap_overlap_matches_numpy():
    rng = np.random.default_rng(3)
    l2 = rng.integers(1, 4, size=(5, 4, 3)).astype(np.uint64)
    roots = (l2 % 2).astype(np.uint64) + 100
    core = (4, 3, 2)
    got = remap_overlap(l2, roots, core)
    want = l2.copy()
    for x in range(5):
        for y in range(4):
            for z in range(3):
                if x < 4 and y < 3 and z < 2:
                    continue
                cx, cy, cz = min(x, 3), min(y, 2), min(z, 1)
                want[x, y, z] = l2[cx, cy, cz] if roots[cx, cy, cz] == roots[x, y, z] else 0
    np.testing.assert_array_equal(got, want)


def chunk_ids(vol, roots, chunk):
    """L2 ids as the server would return them: per graph chunk, one id per (chunk, root)."""
    l2 = np.zeros(roots.shape, np.uint64)
    for cx in range(0, roots.shape[0], chunk[0]):
        for cy in range(0, roots.shape[1], chunk[1]):
            for cz in range(0, roots.shape[2], chunk[2]):
                sl = np.s_[cx : cx + chunk[0], cy : cy + chunk[1], cz : cz + chunk[2]]
                part = roots[sl]
                for root in np.unique(part[part != 0]):
                    label = vol.meta.encode_label(2, cx // chunk[0], cy // chunk[1], cz // chunk[2], int(root))
                    l2[sl][part == root] = label
    return l2


@pytest.mark.parametrize("simplification_factor", [0, 100])
def test_mesh_and_write_makes_seamless_l2_shards(tmp_path, simplification_factor):
    vol, data_dir = graphene_volume(tmp_path, size=(64, 32, 8), chunk=(32, 32, 8), extra_scale=False)
    list(graphene_meshing_plan(vol, SERVER, None, 0, sharding=SPEC))
    roots = np.zeros((64, 32, 8), np.uint64)
    roots[10:50, 8:20, 2:6] = 7  # one object across the chunk seam at x = 32
    roots[40:60, 24:30, 1:4] = 9  # another one, only in chunk 1
    l2 = chunk_ids(vol, roots, (32, 32, 8))

    written = {}
    for x in (0, 32):
        task = GrapheneMeshTask(SERVER, (32, 32, 8), (x, 0, 0), 0, simplification_factor=simplification_factor)
        box, read = task.boxes(vol)
        sl = np.s_[read.minpt.x : read.maxpt.x, read.minpt.y : read.maxpt.y, read.minpt.z : read.maxpt.z]
        written.update(task.mesh_and_write(vol, box, read, l2[sl], roots[sl]))
    assert len(written) == 3  # object 7 in two chunks, object 9 in one

    spec = ShardingSpecification.from_dict(SPEC)
    pieces = []
    for label, data in written.items():
        position = int(vol.meta.decode_chunk_position_number(label))
        shard = spec.compute_shard_location(label).shard_number
        assert (tmp_path / "ws" / "meshes" / "initial" / "2" / f"{position}-{shard}.shard").exists()
        mesh = DracoPy.decode(data)
        if int(vol.meta.decode_segid(label)) == 7:
            pieces.append((np.asarray(mesh.points).reshape(-1, 3), np.asarray(mesh.faces).reshape(-1, 3)))
    offset = len(pieces[0][0])
    v = np.concatenate([pieces[0][0], pieces[1][0]])
    f = np.concatenate([pieces[0][1], pieces[1][1] + offset])
    v, f = mesh_weld(v, f)
    assert is_closed(v, f)  # the two L2 fragments meet exactly at the seam
    assert not is_closed(*pieces[0])
