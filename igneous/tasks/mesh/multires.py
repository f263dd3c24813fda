"""Multi-resolution mesh merges (wire module ``igneous.tasks.mesh.multires``, SPEC §3.4).

Each task turns forged fragments into finished Neuroglancer ``neuroglancer_multilod_draco``
meshes and then **re-reads what it wrote**: a label that was forged but has no finished mesh
raises ``IncompleteMeshError`` naming the label and the missing input, never a silent success.

* ``MultiResUnshardedMeshMergeTask``: legacy fragments ``{segid}:0:{bbox}`` under a name prefix
  → ``{segid}`` (Draco fragments) + ``{segid}.index`` (manifest).
* ``MultiResShardedMeshMergeTask``: the labels of one shard (``{shard}.labels``), located in the
  forge's ``.frags`` MapBuffers through the spatial index (files or SQL), → ``{shard}.shard``.
* ``MultiResShardedFromUnshardedMeshMergeTask``: finished unsharded meshes (legacy manifests or
  multires ``.index``) of another layer → one shard; multires sources are repacked unchanged.

The geometry lives in ``igneous.ops.multires``; format names in ``igneous.meshes``.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification, synthesize_shard_file
from tqdm import tqdm

from igneous import meshes
from igneous.errors import IncompleteMeshError
from igneous.label_shards import (
    check_shard_labels,
    check_shard_membership,
    read_shard_index,
    read_shard_labels,
    shard_labels_filename,
    shown,
)
from igneous.ops import multires as mr
from igneous.ops.mesh import decode_fragment, fuse
from igneous.tasks.registry import queueable

__all__ = [
    "MultiResUnshardedMeshMergeTask",
    "MultiResShardedMeshMergeTask",
    "MultiResShardedFromUnshardedMeshMergeTask",
    "process_mesh",
    "generate_lods",
    "determine_mesh_shape_from_lods",
    "retriangulate_mesh",
    "create_octree_level_from_mesh",
    "cmp_zorder",
    "labels_for_shard",
    "locations_for_labels",
    "collect_mesh_fragments",
    "create_mesh_shard",
    "get_mesh_filenames_subset",
    "verify_shard",
    "shard_labels_filename",
    "LOD_MAX_ERROR_KEY",
    "DEFAULT_LOD_MAX_ERROR",
]

log = logging.getLogger(__name__)

WIRE = "igneous.tasks.mesh.multires"
# A .frags file up to this size is read whole (one request); larger ones are range-read.
WHOLE_FRAGS_BYTES = 32 * 2**20
LABELS_PER_BATCH = 500
# Our key in a multires mesh info (readers ignore it): how far (nm) a LOD's vertices may move
# from the LOD it is simplified from. The planner copies the forge's max_simplification_error.
LOD_MAX_ERROR_KEY = "lod_max_error"
DEFAULT_LOD_MAX_ERROR = 40.0


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def _files(path: str) -> CloudFiles:
    """CloudFiles for a directory. Local files need no threads: CloudFiles' thread pool polls
    every 0.1 s, which would dominate a small merge task."""
    local = path.startswith("file://")
    return CloudFiles(path, num_threads=0 if local else 20, progress=False)


def _get_many(cf: CloudFiles, names: Sequence[str]) -> Dict[str, Optional[bytes]]:
    """``{name: content or None}``; one bulk request remotely, a plain loop locally."""
    if cf.protocol == "file":
        return {n: cf.get(n) for n in names}
    return {r["path"]: r["content"] for r in cf.get(list(names))}


# -- format helpers ------------------------------------------------------------------------------


def _mesh_context(cloudpath: str, mesh_dir: Optional[str]) -> Tuple[str, dict, np.ndarray]:
    """``(mesh_dir, multires mesh info, resolution of the mesh mip)`` of a layer."""
    layer_info = CloudFiles(cloudpath).get_json("info")
    if layer_info is None:
        raise IncompleteMeshError(f"no layer info at {cloudpath}")
    mesh_dir = meshes.resolve_mesh_dir(layer_info, mesh_dir)
    info = meshes.read_mesh_info(cloudpath, mesh_dir) if mesh_dir else None
    if info is None or info.get("@type") != meshes.MULTILOD_MESH_TYPE:
        raise IncompleteMeshError(
            f"{cloudpath}/{mesh_dir}/info is not a multires mesh info: run the merge planner, which configures it"
        )
    mip = int(info.get("mip", 0))
    resolution = np.asarray(layer_info["scales"][mip]["resolution"], dtype=np.float64)
    return mesh_dir, info, resolution


def _model_mesh(fragments: Iterable[Tuple[np.ndarray, np.ndarray]], resolution: np.ndarray):
    """Fuse nm fragments into one mesh in model units (voxels of the mesh mip)."""
    vertices, faces = fuse(fragments)
    return vertices.astype(np.float64) / resolution, faces


def _encode(label_mesh, info: dict, num_lod: int, min_chunk_size, level: int) -> Tuple[bytes, bytes]:
    vertices, faces = label_mesh
    return mr.encode_label(
        vertices,
        faces,
        min_chunk_size,
        num_lod,
        int(info["vertex_quantization_bits"]),
        int(level),
        max_error=float(info.get(LOD_MAX_ERROR_KEY, DEFAULT_LOD_MAX_ERROR)),
        resolution=np.asarray(info["transform"], dtype=np.float64)[[0, 5, 10]],
    )


_shown = shown


# -- unsharded ------------------------------------------------------------------------------------


@queueable(WIRE)
def MultiResUnshardedMeshMergeTask(
    cloudpath: str,
    prefix: str,
    cache_control=False,
    draco_compression_level: int = 1,
    mesh_dir: Optional[str] = None,
    num_lod: int = 1,
    min_chunk_size=(512, 512, 512),
    progress: bool = False,
) -> None:
    """Merge the legacy fragments of every label under ``prefix`` into multires meshes.

    Writes ``{segid}`` (fragment data) before ``{segid}.index`` so a reader never sees a
    manifest without its data, then re-reads every manifest and checks its sizes.
    """
    mesh_dir, info, resolution = _mesh_context(cloudpath, mesh_dir)
    cf = _files(_join(cloudpath, mesh_dir))
    by_label = get_mesh_filenames_subset(cloudpath, mesh_dir, prefix)
    cache_control = "no-cache" if not cache_control else cache_control
    labels = sorted(by_label)
    written: Dict[int, int] = {}
    with tqdm(total=len(labels), disable=not progress, desc="Merge") as pbar:
        # one request batch per group of labels: stores answer many small requests best in bulk
        for start in range(0, len(labels), LABELS_PER_BATCH):
            batch = labels[start : start + LABELS_PER_BATCH]
            names = [n for label in batch for n in by_label[label]]
            contents = _get_many(cf, names)
            data_files, index_files = [], []
            for label in batch:
                missing = [n for n in by_label[label] if contents.get(n) is None]
                if missing:
                    raise IncompleteMeshError(f"label {label}: fragment {missing[0]} was listed but cannot be read")
                mesh = _model_mesh((decode_fragment(contents.pop(n)) for n in by_label[label]), resolution)
                data, manifest = _encode(mesh, info, num_lod, min_chunk_size, draco_compression_level)
                data_files.append((str(label), data))
                index_files.append((f"{label}.index", manifest))
                written[label] = len(data)
                pbar.update(1)
            # data before manifests: a reader never finds a manifest without its data
            for files in (data_files, index_files):
                cf.puts(files, compress=None, cache_control=cache_control, content_type="application/octet-stream")
    _verify_unsharded(cf, written)


def _verify_unsharded(cf: CloudFiles, written: Dict[int, int]) -> None:
    if not written:
        return
    labels = sorted(written)
    manifests = _get_many(cf, [f"{x}.index" for x in labels])
    sizes = cf.size([str(x) for x in labels])
    for label in labels:
        raw = manifests.get(f"{label}.index")
        if raw is None:
            raise IncompleteMeshError(f"label {label}: fragments were listed but {label}.index was not written")
        try:
            manifest = mr.Manifest.from_bytes(raw)
        except ValueError as err:
            raise IncompleteMeshError(f"label {label}: {label}.index does not parse ({err})") from None
        size = sizes.get(str(label))
        if size is None or manifest.data_size != size or size != written[label]:
            raise IncompleteMeshError(
                f"label {label}: {label}.index describes {manifest.data_size} bytes of fragments "
                f"but the data file {label} has {size}"
            )


def get_mesh_filenames_subset(cloudpath: str, mesh_dir: str, prefix: str) -> Dict[int, List[str]]:
    """``{segid: [fragment names]}`` of the LOD 0 legacy fragments whose names start with ``prefix``."""
    cf = _files(_join(cloudpath, mesh_dir))
    by_label: Dict[int, List[str]] = defaultdict(list)
    for name in cf.list(prefix=prefix, flat=True):
        name = meshes.strip_compression_extension(name)
        parsed = meshes.parse_fragment_name(name)
        if parsed is not None and parsed[1] == 0:
            by_label[parsed[0]].append(name)
    return {k: sorted(v) for k, v in by_label.items()}


# -- sharded from forge ---------------------------------------------------------------------------


@queueable(WIRE)
def MultiResShardedMeshMergeTask(
    cloudpath: str,
    shard_no: str,
    draco_compression_level: int = 1,
    mesh_dir: Optional[str] = None,
    frag_path: Optional[str] = None,
    cache: bool = False,
    num_lod: int = 1,
    spatial_index_db: Optional[str] = None,
    min_chunk_size=(128, 128, 128),
    progress: bool = False,
) -> None:
    """Build shard ``shard_no`` from the sharded forge's ``.frags`` files.

    Memory: every payload of the shard at once (about twice the shard); the planner's
    ``max_labels_per_shard`` bounds it.
    """
    mesh_dir, info, resolution = _mesh_context(cloudpath, mesh_dir)
    spec = _spec(info)
    labels = labels_for_shard(cloudpath, shard_no, mesh_dir=mesh_dir)
    _check_shard_membership(spec, labels, shard_no)
    vol = CloudVolume(cloudpath, spatial_index_db=spatial_index_db, progress=False, cache=cache, cdn_cache=False)
    locations = locations_for_labels(vol, labels)
    fragments = collect_mesh_fragments(_join(frag_path or cloudpath, mesh_dir), locations, info)
    payloads, offsets = {}, {}
    for label in tqdm(labels, disable=not progress, desc="Merge"):
        mesh = _model_mesh(fragments.pop(label), resolution)
        data, manifest = _encode(mesh, info, num_lod, min_chunk_size, draco_compression_level)
        payloads[label] = data + manifest
        offsets[label] = len(manifest)
    create_mesh_shard(cloudpath, mesh_dir, spec, shard_no, payloads, offsets)


def _spec(info: dict) -> ShardingSpecification:
    if "sharding" not in info:
        raise IncompleteMeshError("the mesh info has no sharding: run the sharded merge planner, which configures it")
    return ShardingSpecification.from_dict(info["sharding"])


_check_shard_membership = check_shard_membership


def labels_for_shard(cloudpath, shard_no: str, progress: bool = False, mesh_dir: Optional[str] = None) -> List[int]:
    """The labels the planner assigned to ``shard_no`` (``{shard_no}.labels``); ``cloudpath``
    may also be a CloudVolume (SPEC's ``labels_for_shard(cv, shard_no)``)."""
    cloudpath = getattr(cloudpath, "cloudpath", cloudpath)
    if mesh_dir is None:
        mesh_dir = meshes.resolve_mesh_dir(CloudFiles(cloudpath).get_json("info") or {}, None)
    labels = read_shard_labels(_join(cloudpath, mesh_dir), shard_no)
    if labels is None:
        raise IncompleteMeshError(
            f"shard {shard_no}: {mesh_dir}/{shard_labels_filename(shard_no)} is missing; "
            f"rerun create_sharded_multires_mesh_tasks"
        )
    return labels


def locations_for_labels(cv: CloudVolume, labels: Sequence[int]) -> Dict[int, List[str]]:
    """``{label: [.spatial basenames]}`` through CloudVolume's spatial index (SQL when configured)."""
    index = cv.mesh.spatial_index
    if index is None:
        raise IncompleteMeshError("the mesh info has no spatial_index: the sharded merge cannot locate fragments")
    found = index.file_locations_per_label(labels)
    missing = [x for x in labels if not found.get(int(x))]
    if missing:
        raise IncompleteMeshError(f"labels {_shown(missing)} are not in the spatial index: no forged fragments found")
    return {int(x): sorted(found[int(x)]) for x in labels}


def collect_mesh_fragments(frags_root: str, locations: Dict[int, List[str]], info: dict) -> Dict[int, list]:
    """``{label: [(vertices nm, faces), …]}`` read from the ``.frags`` named by the index.

    A missing ``.frags`` or a label absent from one is an ``IncompleteMeshError`` naming both.
    """
    from mapbuffer import MapBuffer

    resolution_json = info["spatial_index"]["resolution"]
    by_file: Dict[str, List[int]] = defaultdict(list)
    for label, spatials in locations.items():
        for name in spatials:
            by_file[meshes.frags_filename_from_spatial(name, resolution_json)].append(label)
    cf = _files(frags_root)
    sizes = cf.size(list(by_file))
    out: Dict[int, list] = defaultdict(list)
    for fname in sorted(by_file):
        size = sizes.get(fname)
        if size is None:
            raise IncompleteMeshError(
                f"label {by_file[fname][0]}: {frags_root}/{fname} is missing (rerun the forge task of that box)"
            )
        buffer = cf.get(fname) if size <= WHOLE_FRAGS_BYTES else meshes.RangeBuffer(frags_root, fname, size)
        mbuf = MapBuffer(buffer)
        for label in by_file[fname]:
            entry = mbuf.get(meshes.intmap_key(label))
            if entry is None:
                raise IncompleteMeshError(f"label {label}: not found in {fname}, which the spatial index names for it")
            out[label].append(decode_fragment(entry))
    return out


def create_mesh_shard(
    cloudpath: str, mesh_dir: str, spec: ShardingSpecification, shard_no: str, payloads: dict, offsets: dict
) -> bytes:
    """Write ``{shard_no}.shard`` (payload = fragments ‖ manifest, index → manifest) and verify it."""
    if spec.data_encoding != "raw":
        raise ValueError("multires mesh shards need data_encoding 'raw' (the manifest offsets address raw bytes)")
    expected = sorted(payloads)
    shard = synthesize_shard_file(spec, payloads, data_offset=offsets)
    cf = _files(_join(cloudpath, mesh_dir))
    cf.put(f"{shard_no}.shard", shard, compress=None, content_type="application/octet-stream", cache_control="no-cache")
    try:
        verify_shard(cf.get(f"{shard_no}.shard"), spec, expected, shard_no)
    except Exception:
        # a shard on disk means "finished" to `mesh clean`, which then deletes the .frags it came from
        cf.delete(f"{shard_no}.shard")
        raise
    return shard


def verify_shard(shard: Optional[bytes], spec: ShardingSpecification, labels: Sequence[int], shard_no: str) -> None:
    """Decode a written multires shard: exactly ``labels``, each manifest parses and its
    fragments lie just before it inside the file."""
    if shard is None:
        raise IncompleteMeshError(f"shard {shard_no}: {shard_no}.shard was not written")
    index_len = 16 * 2**spec.minishard_bits
    found = read_shard_index(shard, spec)
    check_shard_labels(found, labels, shard_no, error=IncompleteMeshError)
    for label, (start, size) in found.items():
        try:
            manifest = mr.Manifest.from_bytes(shard[start : start + size])
        except ValueError as err:
            raise IncompleteMeshError(f"shard {shard_no}: label {label}'s manifest does not parse ({err})") from None
        if start + size > len(shard) or start - manifest.data_size < index_len:
            raise IncompleteMeshError(f"shard {shard_no}: label {label}'s fragments lie outside the shard data")


# -- sharded from finished unsharded meshes ------------------------------------------------------


@queueable(WIRE)
def MultiResShardedFromUnshardedMeshMergeTask(
    src: str,
    dest: str,
    shard_no: str,
    cache_control=False,
    draco_compression_level: int = 1,
    mesh_dir: Optional[str] = None,
    num_lod: int = 1,
    progress: bool = False,
    min_chunk_size=(512, 512, 512),
) -> None:
    """One dest shard from finished unsharded meshes of ``src``.

    A multires source is repacked byte for byte (``{segid}`` ‖ ``{segid}.index``); a legacy
    source's manifest fragments are fused and encoded.
    """
    dest_dir, info, resolution = _mesh_context(dest, mesh_dir)
    spec = _spec(info)
    labels = labels_for_shard(dest, shard_no, mesh_dir=dest_dir)
    _check_shard_membership(spec, labels, shard_no)
    src_dir = dest_dir  # the planner keeps the source's mesh directory name
    src_info = meshes.read_mesh_info(src, src_dir) or {}
    scf = _files(_join(src, src_dir))
    payloads, offsets = {}, {}
    if src_info.get("@type") == meshes.MULTILOD_MESH_TYPE:
        names = [n for x in labels for n in (str(x), f"{x}.index")]
        got = _get_many(scf, names)
        for label in labels:
            data, manifest = got.get(str(label)), got.get(f"{label}.index")
            if data is None or manifest is None:
                which = f"{label}.index" if manifest is None else str(label)
                raise IncompleteMeshError(f"label {label}: {src_dir}/{which} is missing in {src}")
            payloads[label] = data + manifest
            offsets[label] = len(manifest)
    else:
        for label in tqdm(labels, disable=not progress, desc="Merge"):
            frag_names = _legacy_manifest(scf, label, src_dir)
            contents = _get_many(scf, frag_names)
            missing = [n for n in frag_names if contents.get(n) is None]
            if missing:
                raise IncompleteMeshError(f"label {label}: fragment {src_dir}/{missing[0]} is missing in {src}")
            mesh = _model_mesh((decode_fragment(contents[n]) for n in frag_names), resolution)
            data, manifest = _encode(mesh, info, num_lod, min_chunk_size, draco_compression_level)
            payloads[label] = data + manifest
            offsets[label] = len(manifest)
    create_mesh_shard(dest, dest_dir, spec, shard_no, payloads, offsets)


def _legacy_manifest(cf: CloudFiles, label: int, mesh_dir: str) -> List[str]:
    manifest = cf.get_json(meshes.manifest_filename(label, 0))
    if manifest is None or "fragments" not in manifest:
        raise IncompleteMeshError(f"label {label}: legacy manifest {mesh_dir}/{label}:0 is missing")
    return [str(n) for n in manifest["fragments"]]


# -- SPEC helper names (thin aliases over igneous.ops.multires) -----------------------------------


def process_mesh(cv, label, mesh, num_lod, min_chunk_size=(512, 512, 512), draco_compression_level=7):
    """``(manifest bytes, fragment data)`` of a mesh in nm for the layer ``cv``'s mesh mip."""
    info = cv.mesh.meta.info
    res = np.asarray(cv.meta.resolution(int(info.get("mip", 0))), dtype=np.float64)
    data, manifest = mr.encode_label(
        np.asarray(mesh.vertices, np.float64) / res,
        mesh.faces,
        min_chunk_size,
        num_lod,
        int(info.get("vertex_quantization_bits", 16)),
        draco_compression_level,
    )
    return manifest, data


def _as_arrays(mesh) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, (tuple, list)):
        vertices, faces = mesh
    else:
        vertices, faces = mesh.vertices, mesh.faces
    return np.asarray(vertices, np.float32).reshape(-1, 3), np.asarray(faces, np.uint32).reshape(-1, 3)


def _lod_count(mesh_shape, min_chunk_size, num_lods: int) -> int:
    """At most ``num_lods`` levels, and no more than halving the mesh extent down to
    ``min_chunk_size`` allows (SPEC §4.2: min(nlod, log2(extent / min_chunk_size)))."""
    ratio = float(np.max(np.asarray(mesh_shape, np.float64) / np.maximum(np.asarray(min_chunk_size, np.float64), 1)))
    extra = int(math.floor(math.log2(ratio))) if ratio >= 1 else 0
    return max(1, min(int(num_lods), 1 + extra))


def generate_lods(
    label,
    mesh,
    mesh_shape,
    min_chunk_size,
    num_lods,
    decimation_factor=2,
    aggressiveness=7,
    progress=False,
    max_triangle_target_per_chunk=2000000,
):
    """Whole-mesh levels of detail: ``[LOD 0 = mesh, LOD 1, …]`` as ``zmesh.Mesh`` (id ``label``).

    LOD k is zmesh ``simplify_fqmr`` of LOD k-1 toward ``faces(LOD 0) / decimation_factor^k``
    triangles (at least 4, and at most ``max_triangle_target_per_chunk`` per octree cell of
    that level), with fqmr's ``aggressiveness``; borders are preserved for LOD ≤ 2. The number of
    levels is ``num_lods``, limited to what halving ``mesh_shape`` (the mesh extent; None = the
    vertices' extent) down to ``min_chunk_size`` allows. ``progress`` shows a bar per level.

    (The merge tasks build their octree from the finest cut instead: ``igneous.ops.multires``.)
    """
    import zmesh

    vertices, faces = _as_arrays(mesh)
    if int(decimation_factor) != decimation_factor or decimation_factor < 2:
        raise ValueError(f"decimation_factor must be an integer >= 2; got {decimation_factor!r}")
    if not aggressiveness > 0:
        raise ValueError(f"aggressiveness must be > 0; got {aggressiveness!r}")
    if int(max_triangle_target_per_chunk) < 4:
        raise ValueError(f"max_triangle_target_per_chunk must be >= 4; got {max_triangle_target_per_chunk!r}")
    if mesh_shape is None:
        mesh_shape = vertices.max(axis=0) - vertices.min(axis=0) if len(vertices) else (0, 0, 0)
    count = _lod_count(mesh_shape, min_chunk_size, num_lods)
    lods = [zmesh.Mesh(vertices, faces, None, id=label)]
    for lod in tqdm(range(1, count), disable=not progress, desc=f"LODs of {label}"):
        cells = (2 ** (count - 1 - lod)) ** 3
        target = max(4, len(faces) // int(decimation_factor) ** lod)
        target = min(target, int(max_triangle_target_per_chunk) * cells)
        simpler = zmesh.simplify_fqmr(
            lods[-1], target, aggressiveness=float(aggressiveness), preserve_border=lod <= 2
        )
        simpler.segid = label
        lods.append(simpler)
    return lods


def determine_mesh_shape_from_lods(lods) -> np.ndarray:
    """The extent (max − min of the vertices) covering every LOD mesh (``zmesh.Mesh`` or
    ``(vertices, faces)``), as float64 x, y, z."""
    if not lods:
        raise ValueError("determine_mesh_shape_from_lods needs at least one LOD")
    points = [_as_arrays(lod)[0] for lod in lods]
    points = [p for p in points if len(p)]
    if not points:
        return np.zeros(3)
    lo = np.min([p.min(axis=0) for p in points], axis=0).astype(np.float64)
    hi = np.max([p.max(axis=0) for p in points], axis=0).astype(np.float64)
    return hi - lo


def retriangulate_mesh(mesh, offset, scale):
    """The mesh cut on a grid of cells of size ``scale`` starting at ``offset``: every triangle
    of the result lies in one cell (new vertices on the planes), as one welded ``zmesh.Mesh``."""
    import zmesh

    vertices, faces = _as_arrays(mesh)
    offset = np.asarray(offset, np.float64)
    scale = np.asarray(scale, np.float64)
    if np.any(scale <= 0):
        raise ValueError(f"scale must be positive; got {tuple(scale)}")
    if len(faces) == 0:
        return zmesh.Mesh(vertices[:0], faces, None, id=getattr(mesh, "segid", None))
    # the grid of planes offset + k·scale, started at a plane at or below every vertex (zmesh
    # cannot file vertices below its grid origin)
    offset = offset + np.floor((vertices.min(axis=0) - offset) / scale) * scale
    span = vertices.max(axis=0) - offset
    n = max(1, int(np.max(np.ceil(span / scale))))
    n = 2 ** int(math.ceil(math.log2(n))) if n > 1 else 1
    pieces = _cut(vertices, faces, offset, scale, n)
    out_v, out_f, at = [], [], 0
    for _, (v, f) in sorted(pieces.items()):
        out_v.append(v)
        out_f.append(f.astype(np.int64) + at)
        at += len(v)
    v, f = mr.weld(np.concatenate(out_v), np.concatenate(out_f)) if out_v else (vertices[:0], faces[:0])
    return zmesh.Mesh(v, f, None, id=getattr(mesh, "segid", None))


def _cut(vertices: np.ndarray, faces: np.ndarray, origin, cell, n: int) -> dict:
    """``{cell: (vertices, faces)}`` of a mesh cut on an n³ grid (n a power of two). The cut runs
    relative to ``origin`` (zmesh sizes its grid in float32 from the largest vertex: an origin
    of 0 and the far corner at n·cell keep both of its computations on n cells)."""
    origin = np.asarray(origin, np.float64)
    local = (vertices.astype(np.float64) - origin).astype(np.float32)
    grid = mr.Grid((0, 0, 0), tuple(np.asarray(cell, np.float64).tolist()), int(n).bit_length())
    pieces = mr.chunk_by_centroid(local, faces, grid, 0) if len(faces) else {}
    return {
        pos: ((v.astype(np.float64) + origin).astype(np.float32), f) for pos, (v, f) in pieces.items()
    }


def create_octree_level_from_mesh(mesh, chunk_shape, lod, num_lods, offset, grid_length):
    """One octree level: the mesh cut into a ``grid_length``³ grid of cells of
    ``chunk_shape · 2^lod`` from ``offset``, each triangle filed under its centroid's cell.

    Returns ``(meshes, positions)``: one ``zmesh.Mesh`` per non-empty cell and the cells'
    integer grid positions (n × 3), in Z-order (Neuroglancer's fragment order).
    ``grid_length`` must be a power of two, ``lod < num_lods``.
    """
    import zmesh

    lod, num_lods, grid_length = int(lod), int(num_lods), int(grid_length)
    if not 0 <= lod < num_lods:
        raise ValueError(f"lod must be in [0, num_lods={num_lods}); got {lod}")
    if grid_length < 1 or grid_length & (grid_length - 1):
        raise ValueError(f"grid_length must be a power of two; got {grid_length}")
    vertices, faces = _as_arrays(mesh)
    cell = np.asarray(chunk_shape, np.float64) * 2**lod
    pieces = _cut(vertices, faces, offset, cell, grid_length)
    cells = np.asarray(sorted(pieces), dtype=np.uint32).reshape(-1, 3)
    cells = cells[mr.morton_order(cells)]
    segid = getattr(mesh, "segid", None)
    meshes = [zmesh.Mesh(*pieces[tuple(int(c) for c in pos)], None, id=segid) for pos in cells]
    return meshes, cells


def cmp_zorder(lhs, rhs) -> int:
    """Compare two grid positions in Z-order (x in bit 0), as ``functools.cmp_to_key`` wants."""
    a, b = mr.morton_codes(np.asarray([lhs, rhs]))
    return -1 if a < b else (1 if a > b else 0)
