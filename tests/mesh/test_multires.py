"""Multi-resolution merges (unsharded, sharded, from unsharded), checked against zmesh on the
whole volume and read back through CloudVolume (docs/design-meshing.md §4.4 item 3).

The forge grid (40,40,24) does not divide crop B (96×96×64), the layer has a non-zero voxel
offset and an anisotropic resolution. Forged layers are built once per module and copied by
every test that writes.
"""

from __future__ import annotations

import shutil

import fastremap
import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.exceptions import MeshMissingError
from taskqueue import LocalTaskQueue

from igneous.errors import IncompleteMeshError, InvalidParameterError
from igneous.ops.multires import Manifest
from igneous.task_creation.mesh import create_mesh_manifest_tasks, create_meshing_tasks
from igneous.task_creation.multires import (
    configure_multires_info,
    create_sharded_multires_mesh_from_unsharded_tasks,
    create_sharded_multires_mesh_tasks,
    create_unsharded_multires_mesh_tasks,
)
from tests.conftest import make_layer, tree
from tests.mesh.conftest import RESOLUTION, VOXEL_OFFSET
from tests.oracles import edge_use, mesh_weld, surface_area, zmesh_whole_volume

MESH_DIR = "mesh_mip_0_err_40"
SHAPE = (40, 40, 24)
HIGH = np.uint64(2**63)


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def high_labels(crop: np.ndarray) -> np.ndarray:
    """Half the labels moved above 2^63 (sharding hashes and mapbuffer lookups must cope)."""
    out = crop.astype(np.uint64)
    odd = (out % 2 == 1) & (out > 0)
    out[odd] += HIGH
    return out


def forge(tmp_path_factory, name, labels, **kwargs) -> str:
    root = tmp_path_factory.mktemp(name)
    path = make_layer(
        f"file://{root}/layer", labels, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=(32, 32, 16)
    )
    run(create_meshing_tasks(path, 0, shape=SHAPE, **kwargs))
    return path


@pytest.fixture(scope="module")
def exact_forge(tmp_path_factory, crop_b):
    return forge(tmp_path_factory, "exact", crop_b.astype(np.uint64), simplification=False)


@pytest.fixture(scope="module")
def exact_sharded_forge(tmp_path_factory, crop_b):
    labels = high_labels(crop_b)
    frag_root = tmp_path_factory.mktemp("frags")
    path = forge(tmp_path_factory, "exact_sharded", labels, simplification=False, sharded=True,
                 frag_path=f"file://{frag_root}")  # fmt: skip
    return path, f"file://{frag_root}", labels


@pytest.fixture(scope="module")
def simplified_forge(tmp_path_factory, crop_b):
    return forge(tmp_path_factory, "simplified", crop_b.astype(np.uint64))


@pytest.fixture(scope="module")
def simplified_sharded_forge(tmp_path_factory, crop_b):
    return forge(tmp_path_factory, "simplified_sharded", crop_b.astype(np.uint64), sharded=True)


@pytest.fixture
def copy_layer(tmp_path):
    def copy(path: str, name: str = "copy") -> str:
        dest = tmp_path / name
        shutil.copytree(path[len("file://") :], dest)
        return f"file://{dest}"

    return copy


def index_labels(path: str) -> set:
    """Labels with an unsharded multires mesh, from the listing (CloudVolume cannot list)."""
    names = CloudFiles(f"{path}/{MESH_DIR}").list()
    return {int(n[: -len(".index")]) for n in names if n.endswith(".index")}


def bbox(v):
    return np.concatenate([v.min(axis=0), v.max(axis=0)])


def assert_lod0_matches_oracle(vol: CloudVolume, oracle: dict, rel_area: float = 0.01):
    """Every label: same bbox (within one quantum), area within 1%, closed iff the oracle is."""
    Q = 2 ** vol.mesh.meta.info["vertex_quantization_bits"] - 1
    got = vol.mesh.get(sorted(oracle), lod=0)
    assert set(got) == set(oracle)
    for label, (ov, of) in oracle.items():
        v, f = mesh_weld(got[label].vertices, got[label].faces)
        ov, of = mesh_weld(ov, of)
        quantum = np.asarray(vol.mesh.get_manifest(label).chunk_shape, float) * np.asarray(RESOLUTION) / Q
        np.testing.assert_allclose(bbox(v), bbox(ov), atol=float(quantum.max()) + 1e-3, err_msg=f"label {label}")
        assert surface_area(v, f) == pytest.approx(surface_area(ov, of), rel=rel_area), label
        assert (edge_use(f)[0] == 0) == (edge_use(of)[0] == 0), label


# -- the oracle: LOD 0 equals zmesh on the whole volume --------------------------------------------


def test_unsharded_lod0_equals_whole_volume_zmesh(exact_forge, copy_layer, crop_b):
    path = copy_layer(exact_forge)
    run(create_unsharded_multires_mesh_tasks(path, num_lod=1, magnitude=1, min_chunk_size=(32, 32, 32)))
    oracle = zmesh_whole_volume(crop_b, RESOLUTION, VOXEL_OFFSET)
    assert index_labels(path) == set(oracle) == set(fastremap.unique(crop_b)) - {0}
    vol = CloudVolume(path)  # a new CloudVolume: the reader is chosen from the info at construction
    assert type(vol.mesh).__name__ == "UnshardedMultiLevelPrecomputedMeshSource"
    assert_lod0_matches_oracle(vol, oracle)
    manifests = [Manifest.from_bytes(CloudFiles(f"{path}/{MESH_DIR}").get(f"{x}.index")) for x in oracle]
    assert max(m.num_lods for m in manifests) == 2  # big labels were cut into several LOD 0 cells


def test_sharded_lod0_equals_whole_volume_zmesh(exact_sharded_forge, copy_layer, tmp_path):
    src, frag_root, labels = exact_sharded_forge
    path = copy_layer(src)
    # LOD 0 only: cutting into cells and LODs is the same code as unsharded (tested above)
    tasks = create_sharded_multires_mesh_tasks(path, num_lod=0, max_labels_per_shard=20, frag_path=frag_root)
    assert len(tasks) >= 4  # 77 labels, at most ~20 per shard
    run(tasks)
    vol = CloudVolume(path)
    assert type(vol.mesh).__name__ == "ShardedMultiLevelPrecomputedMeshSource"
    spec = vol.mesh.meta.info["sharding"]
    assert spec["data_encoding"] == "raw" and spec["hash"] == "murmurhash3_x86_128"
    oracle = zmesh_whole_volume(labels, RESOLUTION, VOXEL_OFFSET)
    assert any(label >= 2**63 for label in oracle)
    assert_lod0_matches_oracle(vol, oracle)
    coarsest = vol.mesh.get(list(oracle), lod=-1)
    assert set(coarsest) == set(oracle)
    with pytest.raises(MeshMissingError):
        vol.mesh.get(12345, lod=0)


# -- levels of detail ---------------------------------------------------------------------------


def lattice_levels(path: str, label: int, vqb: int):
    """Every LOD of an unsharded multires mesh on the integer lattice of LOD 0, decoded with
    CloudVolume's manifest parser and DracoPy (not with igneous)."""
    import DracoPy
    from cloudvolume.datasource.precomputed.mesh.multilod import MultiLevelPrecomputedMeshManifest

    cf = CloudFiles(f"{path}/{MESH_DIR}")
    manifest = MultiLevelPrecomputedMeshManifest.from_binary(cf.get(f"{label}.index"), segment_id=label)
    data = cf.get(str(label))
    Q = 2**vqb - 1
    levels, start = [], 0
    for lod in range(manifest.num_lods):
        verts, faces, offset = [], [], 0
        for pos, size in zip(manifest.fragment_positions[lod], manifest.fragment_offsets[lod].tolist()):
            blob, start = data[start : start + size], start + size
            if blob:
                d = DracoPy.decode(blob)
                verts.append((pos.astype(np.int64) * Q + np.asarray(d.points, np.int64).reshape(-1, 3)) * 2**lod)
                faces.append(np.asarray(d.faces, np.int64).reshape(-1, 3) + offset)
                offset += len(verts[-1])
        levels.append(mesh_weld(np.concatenate(verts).astype(np.float64), np.concatenate(faces)))
    return levels, manifest


def sampled_distance(points, vertices, faces, n=8):
    """Upper bound of point-to-surface distance by dense sampling (independent of igneous)."""
    from scipy.spatial import cKDTree

    t = vertices[faces]
    a, b = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    keep = (a + b) <= 1
    a, b = a[keep], b[keep]
    s = (
        t[:, None, 0]
        + a[None, :, None] * (t[:, None, 1] - t[:, None, 0])
        + b[None, :, None] * (t[:, None, 2] - t[:, None, 0])
    )
    slack = (np.linalg.norm(t[:, 1] - t[:, 0], axis=1).max() + np.linalg.norm(t[:, 2] - t[:, 0], axis=1).max()) / n
    d, _ = cKDTree(s.reshape(-1, 3)).query(points)
    return np.maximum(d - slack, 0)


@pytest.mark.parametrize("vqb", [16])  # 10 bits: tests/unit/test_ops_multires.py
def test_lods_are_closed_smaller_and_within_the_forge_error(simplified_forge, copy_layer, vqb):
    path = copy_layer(simplified_forge)
    run(
        create_unsharded_multires_mesh_tasks(
            path, num_lod=2, magnitude=1, vertex_quantization_bits=vqb, min_chunk_size=(16, 16, 16)
        )
    )
    vol = CloudVolume(path)
    info = vol.mesh.meta.info
    assert info["vertex_quantization_bits"] == vqb
    assert info["transform"] == [16.0, 0, 0, 0, 0, 16.0, 0, 0, 0, 0, 40.0, 0]
    max_error = info["lod_max_error"]
    assert max_error == 40.0  # the forge's max_simplification_error
    several = 0
    for label in sorted(index_labels(path)):
        levels, manifest = lattice_levels(path, label, vqb)
        if manifest.num_lods < 3:
            continue
        several += 1
        scale = np.asarray(manifest.chunk_shape) * np.asarray(RESOLUTION) / (2**vqb - 1)  # nm per lattice step
        for lod, (v, f) in enumerate(levels):
            assert edge_use(f)[0] == 0, (label, lod)  # no cracks between same-LOD fragments
            if lod:
                pv, pf = levels[lod - 1]
                assert len(f) < len(pf), (label, lod)
                # within the error of the level it was simplified from (both then quantized)
                d = sampled_distance(v * scale, pv * scale, pf)
                assert d.max() <= max_error + 2 ** (lod + 1) * np.linalg.norm(scale), (label, lod, d.max())
    assert several >= 10


# -- the spatial index from files or from a database ------------------------------------------------


def test_sharded_merge_from_sqlite_equals_merge_from_files(simplified_sharded_forge, copy_layer, tmp_path):
    from_files = copy_layer(simplified_sharded_forge, "files")
    from_db = copy_layer(simplified_sharded_forge, "db")
    db = f"sqlite://{tmp_path / 'index.db'}"
    CloudVolume(from_db).mesh.spatial_index.to_sql(db, progress=False)
    kwargs = dict(num_lod=0, max_labels_per_shard=30)
    run(create_sharded_multires_mesh_tasks(from_files, **kwargs))
    tasks = create_sharded_multires_mesh_tasks(from_db, spatial_index_db=db, **kwargs)
    assert all(t.keywords["spatial_index_db"] == db for t in tasks)
    run(tasks)
    shards = sorted(n for n in CloudFiles(f"{from_files}/{MESH_DIR}").list() if n.endswith(".shard"))
    assert len(shards) >= 2
    a, b = CloudFiles(f"{from_files}/{MESH_DIR}"), CloudFiles(f"{from_db}/{MESH_DIR}")
    for name in shards:
        assert a.get(name) == b.get(name), name


# -- from finished unsharded meshes ---------------------------------------------------------------


def test_sharded_from_legacy_meshes(simplified_forge, copy_layer, tmp_path, crop_b):
    src = copy_layer(simplified_forge, "src")
    run(create_mesh_manifest_tasks(src, magnitude=1))
    dest = f"file://{tmp_path / 'dest'}"
    run(create_sharded_multires_mesh_from_unsharded_tasks(src, dest, num_lod=1, min_chunk_size=(32, 32, 32)))
    legacy = CloudVolume(src).mesh.get(sorted(int(x) for x in fastremap.unique(crop_b) if x), fuse=False)
    vol = CloudVolume(dest)
    assert type(vol.mesh).__name__ == "ShardedMultiLevelPrecomputedMeshSource"
    for label, mesh in legacy.items():
        ov, of = mesh_weld(mesh.vertices, mesh.faces)
        got = vol.mesh.get(label, lod=0)[label]
        v, f = mesh_weld(got.vertices, got.faces)
        np.testing.assert_allclose(bbox(v), bbox(ov), atol=0.1, err_msg=f"label {label}")
        assert surface_area(v, f) == pytest.approx(surface_area(ov, of), rel=0.01), label
        assert edge_use(f)[0] == 0


def test_sharded_from_unsharded_multires_repacks_without_reencoding(simplified_forge, copy_layer, tmp_path):
    src = copy_layer(simplified_forge, "src")
    run(create_unsharded_multires_mesh_tasks(src, num_lod=1, magnitude=1, min_chunk_size=(32, 32, 32)))
    dest = f"file://{tmp_path / 'dest'}"
    run(create_sharded_multires_mesh_from_unsharded_tasks(src, dest, min_shards=3))
    svol, dvol = CloudVolume(src), CloudVolume(dest)
    assert dvol.mesh.meta.info["sharding"]["shard_bits"] == 2
    cf = CloudFiles(f"{src}/{MESH_DIR}")
    for label in index_labels(src):
        manifest = cf.get(f"{label}.index")
        assert dvol.mesh.get_manifest(label).fragment_positions[0].tolist() == (
            Manifest.from_bytes(manifest).fragment_positions[0].tolist()
        )
        a, b = svol.mesh.get(label, lod=0)[label], dvol.mesh.get(label, lod=0)[label]
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)


# -- every merge checks what it read and wrote --------------------------------------------------------


def test_merge_before_forge_is_refused_and_writes_nothing(layer, crop_b, tmp_path):
    path = layer(crop_b.astype(np.uint64), resolution=RESOLUTION)
    before = tree(tmp_path)
    for plan in (
        lambda: create_unsharded_multires_mesh_tasks(path, num_lod=1),
        lambda: create_sharded_multires_mesh_tasks(path),
        lambda: configure_multires_info(path, 16, None),
    ):
        with pytest.raises(InvalidParameterError, match="run `igneous mesh forge` first"):
            plan()
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vertex_quantization_bits=12), "vertex_quantization_bits must be 10 or 16"),
        (dict(num_lod=-1), "num_lod must be an integer >= 0"),
        (dict(minishard_index_encoding="zstd"), "minishard_index_encoding must be raw or gzip"),
        (dict(min_chunk_size=(0, 16, 16)), "min_chunk_size must be 3 integers >= 1"),
        (dict(max_labels_per_shard=0), "max_labels_per_shard must be an integer >= 1"),
        (dict(draco_compression_level=11), "draco_compression_level must be an integer in"),
    ],
)
def test_bad_parameters_are_refused_before_writing(simplified_sharded_forge, copy_layer, tmp_path, kwargs, message):
    path = copy_layer(simplified_sharded_forge)
    before = tree(tmp_path)
    with pytest.raises(InvalidParameterError, match=message):
        create_sharded_multires_mesh_tasks(path, **kwargs)
    assert tree(tmp_path) == before


def test_unfinished_forge_is_refused_naming_the_box(simplified_sharded_forge, copy_layer, tmp_path):
    path = copy_layer(simplified_sharded_forge)
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    frags = sorted(n for n in cf.list() if n.endswith(".frags"))
    cf.delete(frags[3])
    before = tree(tmp_path)
    with pytest.raises(InvalidParameterError, match=f"sharded forge is incomplete: 1 of .*{frags[3][:-6]}"):
        create_sharded_multires_mesh_tasks(path)
    spatial = sorted(n for n in cf.list() if n.endswith(".spatial"))
    cf.delete(spatial[0])
    with pytest.raises(InvalidParameterError, match="mesh forge is incomplete: 1 of"):
        create_unsharded_multires_mesh_tasks(path)
    assert tree(tmp_path) == {k: v for k, v in before.items() if not k.startswith(f"copy/{MESH_DIR}/{spatial[0]}")}


def test_unsharded_merge_of_a_sharded_forge_is_refused(simplified_sharded_forge, copy_layer):
    path = copy_layer(simplified_sharded_forge)
    with pytest.raises(InvalidParameterError, match="merge-sharded"):
        create_unsharded_multires_mesh_tasks(path, num_lod=1)


def test_a_label_missing_from_its_frags_fails_the_task_naming_both(simplified_sharded_forge, copy_layer):
    from mapbuffer import MapBuffer

    from igneous import meshes

    path = copy_layer(simplified_sharded_forge)
    cf = CloudFiles(f"{path}/{MESH_DIR}")
    name = max((n for n in cf.list() if n.endswith(".frags")), key=lambda n: len(cf.get(n)))
    entries = MapBuffer(cf.get(name))
    victim = int(sorted(entries.keys())[0])
    kept = {int(k): entries[meshes.intmap_key(int(k))] for k in entries.keys() if int(k) != victim}
    cf.put(name, MapBuffer(kept, compress="br").tobytes(), compress=None)
    tasks = create_sharded_multires_mesh_tasks(path, num_lod=0)
    with pytest.raises(IncompleteMeshError, match=f"label {victim}: not found in {name}"):
        run(tasks)


def test_a_missing_labels_file_fails_the_task(simplified_sharded_forge, copy_layer):
    path = copy_layer(simplified_sharded_forge)
    tasks = create_sharded_multires_mesh_tasks(path, num_lod=0, min_shards=2)
    shard = tasks[0].args[1]
    CloudFiles(f"{path}/{MESH_DIR}").delete(f"{shard}.labels")
    with pytest.raises(IncompleteMeshError, match=f"shard {shard}: .*{shard}.labels is missing"):
        run(tasks[:1])


def test_a_shard_without_all_its_labels_is_caught(simplified_sharded_forge, copy_layer):
    from cloudvolume.datasource.precomputed.sharding import ShardingSpecification, synthesize_shard_file

    from igneous.tasks.mesh.multires import verify_shard

    spec = ShardingSpecification.from_dict(
        {"@type": "neuroglancer_uint64_sharded_v1", "hash": "murmurhash3_x86_128", "preshift_bits": 0,
         "minishard_bits": 1, "shard_bits": 0, "minishard_index_encoding": "gzip", "data_encoding": "raw"}
    )  # fmt: skip
    manifest = Manifest((1.0, 1, 1), (0.0, 0, 0), 1, [1.0], [(0.0, 0, 0)], [np.zeros((0, 3))], [np.zeros(0)])
    payloads = {5: manifest.to_bytes(), 2**63 + 9: manifest.to_bytes()}
    shard = synthesize_shard_file(spec, dict(payloads), data_offset={k: len(v) for k, v in payloads.items()})
    verify_shard(shard, spec, list(payloads), "0")
    with pytest.raises(IncompleteMeshError, match=r"lacks labels \[7\]"):
        verify_shard(shard, spec, [*payloads, 7], "0")
    with pytest.raises(IncompleteMeshError, match="was not written"):
        verify_shard(None, spec, list(payloads), "0")
