"""Planning multi-resolution mesh merges (SPEC §2.2, docs/design-meshing.md §3.6–3.9).

Every planner refuses before writing anything when the forge is not finished (a task box
without its ``.spatial`` marker, a sharded box without its ``.frags``), then rewrites the
mesh info to ``neuroglancer_multilod_draco`` and returns the merge tasks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.label_shards import hashed_shard_spec, write_shard_labels
from igneous.layerfiles import legacy_merge_prefixes, subdir_path
from igneous.ops.multires import check_vertex_quantization_bits
from igneous.shards import check_index_encoding
from igneous.task_creation.checks import (
    check_forge_complete,
    check_forge_found_labels,
    check_forged_object_ids,
    forge_found_labels,
    forge_record,
    int_at_least,
    require_mesh_info,
)
from igneous.task_creation.common import as_triple, record_provenance, task_kwargs
from igneous.task_creation.spatial_index import all_labels, check_spatial_db
from igneous.tasks.mesh.multires import (
    DEFAULT_LOD_MAX_ERROR,
    LOD_MAX_ERROR_KEY,
    MultiResShardedFromUnshardedMeshMergeTask,
    MultiResShardedMeshMergeTask,
    MultiResUnshardedMeshMergeTask,
)
from igneous.validate import whole

__all__ = [
    "configure_multires_info",
    "create_unsharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_from_unsharded_tasks",
    "prepare_unsharded_multires_merge",
    "prepare_sharded_multires_merge",
    "PreparedMultiresMerge",
]

_join = subdir_path
_int_at_least = int_at_least

# -- validation -----------------------------------------------------------------------------------


_check_vqb = check_vertex_quantization_bits


def _check_level(level) -> int:
    return whole(level, "draco_compression_level", 0, 10)


_check_encoding = check_index_encoding


def _forged(layer_path: str, mesh_dir: Optional[str]):
    """(vol, mesh_dir, info) of a forged layer, refusing unfinished forges."""
    vol, mesh_dir, info = require_mesh_info(layer_path, mesh_dir)
    if "mip" not in info:
        raise InvalidParameterError(f"{layer_path}/{mesh_dir}/info has no 'mip': forge again with `igneous mesh forge`")
    check_forge_complete(vol, layer_path, mesh_dir, info)
    check_forged_object_ids(vol, layer_path, mesh_dir, info)
    return vol, mesh_dir, info


# -- info -------------------------------------------------------------------------------------------


def forge_max_error(vol: CloudVolume, mesh_dir: str) -> float:
    """The forge's ``max_simplification_error`` (nm) from the layer's provenance (SPEC default 40)."""
    try:
        return float(forge_record(vol, mesh_dir).get("max_simplification_error", DEFAULT_LOD_MAX_ERROR))
    except (TypeError, ValueError):
        return DEFAULT_LOD_MAX_ERROR


def multires_info(
    info: dict, resolution: Sequence[float], vertex_quantization_bits: int, lod_max_error: Optional[float] = None
) -> dict:
    """The multires mesh info for a legacy (or multires) one; keeps ``mip``, ``chunk_size``,
    ``spatial_index``. The transform maps model units (voxels of the mesh mip) to nm.
    ``lod_max_error`` (nm) bounds how far each LOD may move from the one it was built from."""
    rx, ry, rz = (float(r) for r in resolution)
    if lod_max_error is None:
        lod_max_error = info.get(LOD_MAX_ERROR_KEY, DEFAULT_LOD_MAX_ERROR)
    out = dict(info)
    out.update(
        {
            "@type": meshes.MULTILOD_MESH_TYPE,
            "vertex_quantization_bits": int(vertex_quantization_bits),
            "transform": [rx, 0.0, 0.0, 0.0, 0.0, ry, 0.0, 0.0, 0.0, 0.0, rz, 0.0],
            "lod_scale_multiplier": 1.0,
            LOD_MAX_ERROR_KEY: float(lod_max_error),
        }
    )
    out.pop("sharding", None)
    return out


def configure_multires_info(cloudpath: str, vertex_quantization_bits: int, mesh_dir: Optional[str]) -> dict:
    """Rewrite ``{mesh_dir}/info`` as ``neuroglancer_multilod_draco`` (no-cache) and return it.

    Open a new CloudVolume afterwards: CloudVolume picks its mesh reader when constructed.
    """
    vqb = _check_vqb(vertex_quantization_bits)
    vol, mesh_dir, info = require_mesh_info(cloudpath, mesh_dir)
    if "mip" not in info:
        raise InvalidParameterError(f"{cloudpath}/{mesh_dir}/info has no 'mip': forge again with `igneous mesh forge`")
    new = multires_info(info, vol.meta.resolution(int(info["mip"])), vqb, forge_max_error(vol, mesh_dir))
    meshes.write_mesh_info(cloudpath, mesh_dir, new)
    return new


def _check_fragments_exist(vol: CloudVolume, cloudpath: str, mesh_dir: str, info: dict) -> None:
    """The first label the spatial index names must have its fragment file: a forge with
    ``--sharded`` wrote ``.frags`` instead, and merging it unsharded would produce nothing."""
    if "spatial_index" not in info:
        return
    cf = CloudFiles(_join(cloudpath, mesh_dir))
    resolution = info["spatial_index"]["resolution"]
    for name in meshes.expected_spatial_names(vol.meta.bounds(int(info["mip"])), info):
        labels = cf.get_json(name) or {}
        if labels:
            label = next(iter(labels))
            box = meshes.box_from_spatial_filename(name, resolution)
            fragment = meshes.fragment_filename(int(label), 0, box)
            if not cf.exists(fragment):
                raise InvalidParameterError(
                    f"{cloudpath}/{mesh_dir} has no fragment {fragment} although {name} lists label {label}: "
                    f"a --sharded forge is merged with `igneous mesh merge-sharded`"
                )
            return


# -- unsharded --------------------------------------------------------------------------------------


def create_unsharded_multires_mesh_tasks(
    cloudpath: str,
    num_lod: int = 0,
    magnitude: int = 3,
    mesh_dir: Optional[str] = None,
    vertex_quantization_bits: int = 16,
    min_chunk_size: Sequence[int] = (256, 256, 256),
):
    """Plan the unsharded multires merge: ``{segid}.index`` + ``{segid}`` per label.

    One ``MultiResUnshardedMeshMergeTask`` per label-name prefix (about ``10^magnitude``).
    ``num_lod`` extra levels are built where a label spans more than ``min_chunk_size``
    voxels (each level halves the faces); vqb 16 is recommended (cracks between LODs are at
    most one quantum: chunk/65535 voxels, vs chunk/1023 at 10 bits).

    Raises:
        InvalidParameterError: before anything is written, for bad parameters or an
            unfinished forge.
    """
    job = prepare_unsharded_multires_merge(
        cloudpath, num_lod, magnitude, mesh_dir, vertex_quantization_bits, min_chunk_size
    )
    meshes.write_mesh_info(cloudpath, job.mesh_dir, job.new_info)
    tasks = [
        functools.partial(MultiResUnshardedMeshMergeTask, cloudpath, prefix, **job.kwargs) for prefix in job.prefixes
    ]
    record_provenance(
        cloudpath,
        "MultiResUnshardedMeshMergeTask",
        dict(job.kwargs, magnitude=job.magnitude, vertex_quantization_bits=job.vqb),
    )
    return tasks


@dataclass
class PreparedMultiresMerge:
    """A validated multires merge plan: the mesh info it would write and the tasks' arguments."""

    vol: CloudVolume
    mesh_dir: str
    info: dict  # the forge's mesh info
    new_info: dict
    kwargs: dict
    vqb: int
    magnitude: int = 0
    prefixes: list = field(default_factory=list)
    labels: Optional[np.ndarray] = None
    spec: Optional[dict] = None


def prepare_unsharded_multires_merge(
    cloudpath: str,
    num_lod: int = 0,
    magnitude: int = 3,
    mesh_dir: Optional[str] = None,
    vertex_quantization_bits: int = 16,
    min_chunk_size: Sequence[int] = (256, 256, 256),
) -> PreparedMultiresMerge:
    """Validate and plan ``create_unsharded_multires_mesh_tasks`` without writing anything."""
    num_lod = _int_at_least(num_lod, "num_lod", 0)
    magnitude = _int_at_least(magnitude, "magnitude", 1)
    vqb = _check_vqb(vertex_quantization_bits)
    min_chunk_size = as_triple(min_chunk_size, "min_chunk_size")
    vol, mesh_dir, info = _forged(cloudpath, mesh_dir)
    if "sharding" in info:
        raise InvalidParameterError(f"{cloudpath}/{mesh_dir} is sharded: use `igneous mesh merge-sharded`")
    check_forge_found_labels(cloudpath, mesh_dir, forge_found_labels(vol, cloudpath, mesh_dir, info))
    _check_fragments_exist(vol, cloudpath, mesh_dir, info)
    new_info = multires_info(info, vol.meta.resolution(int(info["mip"])), vqb, forge_max_error(vol, mesh_dir))
    kwargs = task_kwargs(mesh_dir=mesh_dir, num_lod=num_lod, min_chunk_size=min_chunk_size)
    prefixes = list(legacy_merge_prefixes(magnitude))
    return PreparedMultiresMerge(vol, mesh_dir, info, new_info, kwargs, vqb, magnitude, prefixes)


# -- sharded ----------------------------------------------------------------------------------------


def _shard_spec(
    num_labels: int,
    shard_index_bytes: int,
    minishard_index_bytes: int,
    min_shards: int,
    max_labels_per_shard: Optional[int],
    minishard_index_encoding: str,
) -> dict:
    # the manifest offsets address raw fragment bytes
    return hashed_shard_spec(
        num_labels, shard_index_bytes, minishard_index_bytes, min_shards, max_labels_per_shard,
        minishard_index_encoding, data_encoding="raw",
    )  # fmt: skip


def _write_shard_labels(cloudpath: str, mesh_dir: str, labels: np.ndarray, spec: dict) -> list[str]:
    """Write ``{shard}.labels`` for every shard that has labels; returns the shard names."""
    return write_shard_labels(_join(cloudpath, mesh_dir), labels, spec)


def _check_frags_complete(vol: CloudVolume, frag_root: str, mesh_dir: str, info: dict) -> None:
    names = [
        meshes.frags_filename_from_spatial(n, info["spatial_index"]["resolution"])
        for n in meshes.expected_spatial_names(vol.meta.bounds(int(info["mip"])), info)
    ]
    found = CloudFiles(_join(frag_root, mesh_dir)).exists(names)
    missing = [n for n in names if not found[n]]
    if missing:
        example = ", ".join(n[: -len(".frags")] for n in missing[:5])
        raise InvalidParameterError(
            f"sharded forge is incomplete: {len(missing)} of {len(names)} task boxes have no .frags under "
            f"{_join(frag_root, mesh_dir)} (e.g. {example}): forge with --sharded (and the same --frag-path)"
        )


def _check_spatial_db(spatial_index_db: Optional[str]) -> None:
    check_spatial_db(spatial_index_db, "mesh")


def _all_labels(cloudpath: str, spatial_index_db: Optional[str], info: dict) -> np.ndarray:
    return all_labels(cloudpath, spatial_index_db, info, "mesh")


def create_sharded_multires_mesh_tasks(
    cloudpath: str,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    num_lod: int = 0,
    draco_compression_level: int = 7,
    vertex_quantization_bits: int = 16,
    minishard_index_encoding: str = "gzip",
    mesh_dir: Optional[str] = None,
    spatial_index_db: Optional[str] = None,
    frag_path: Optional[str] = None,
    cache: bool = False,
    min_chunk_size: Sequence[int] = (256, 256, 256),
    max_labels_per_shard: Optional[int] = None,
    progress: bool = True,
) -> list:
    """Plan the sharded multires merge of a sharded forge (``.frags`` + ``.spatial``).

    Labels come from the spatial index (``spatial_index_db`` from `mesh spatial-index db`,
    else the ``.spatial`` files); shard bits from ``compute_shard_params_for_hashed`` with
    ``min_shards`` raised so that no shard has more than ``max_labels_per_shard`` labels on
    average. A task holds its whole shard in memory (about twice its size), so
    ``max_labels_per_shard`` is the memory knob. Writes the mesh info and ``{shard}.labels``.

    Returns:
        A list of ``MultiResShardedMeshMergeTask`` partials, one per shard with labels.

    Raises:
        InvalidParameterError: before anything is written, for bad parameters, an unfinished
            forge, an unusable database, or a forge that found no labels.
    """
    job = prepare_sharded_multires_merge(
        cloudpath,
        shard_index_bytes=shard_index_bytes,
        minishard_index_bytes=minishard_index_bytes,
        min_shards=min_shards,
        num_lod=num_lod,
        draco_compression_level=draco_compression_level,
        vertex_quantization_bits=vertex_quantization_bits,
        minishard_index_encoding=minishard_index_encoding,
        mesh_dir=mesh_dir,
        spatial_index_db=spatial_index_db,
        frag_path=frag_path,
        cache=cache,
        min_chunk_size=min_chunk_size,
        max_labels_per_shard=max_labels_per_shard,
        progress=progress,
    )
    meshes.write_mesh_info(cloudpath, job.mesh_dir, job.new_info)
    shards = _write_shard_labels(cloudpath, job.mesh_dir, job.labels, job.spec)
    record_provenance(
        cloudpath,
        "MultiResShardedMeshMergeTask",
        dict(job.kwargs, vertex_quantization_bits=job.vqb, sharding=job.spec, num_labels=len(job.labels)),
    )
    return [functools.partial(MultiResShardedMeshMergeTask, cloudpath, shard, **job.kwargs) for shard in shards]


def prepare_sharded_multires_merge(
    cloudpath: str,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    num_lod: int = 0,
    draco_compression_level: int = 7,
    vertex_quantization_bits: int = 16,
    minishard_index_encoding: str = "gzip",
    mesh_dir: Optional[str] = None,
    spatial_index_db: Optional[str] = None,
    frag_path: Optional[str] = None,
    cache: bool = False,
    min_chunk_size: Sequence[int] = (256, 256, 256),
    max_labels_per_shard: Optional[int] = None,
    progress: bool = True,
) -> PreparedMultiresMerge:
    """Validate and plan ``create_sharded_multires_mesh_tasks`` without writing anything."""
    num_lod = _int_at_least(num_lod, "num_lod", 0)
    vqb = _check_vqb(vertex_quantization_bits)
    level = _check_level(draco_compression_level)
    minishard_index_encoding = _check_encoding(minishard_index_encoding)
    min_chunk_size = as_triple(min_chunk_size, "min_chunk_size")
    _int_at_least(shard_index_bytes, "shard_index_bytes", 16)
    _int_at_least(minishard_index_bytes, "minishard_index_bytes", 24)
    vol, mesh_dir, info = _forged(cloudpath, mesh_dir)
    if "spatial_index" not in info:
        raise InvalidParameterError(
            f"{cloudpath}/{mesh_dir} has no spatial index: the sharded merge needs a forge with --spatial-index"
        )
    _check_frags_complete(vol, frag_path or cloudpath, mesh_dir, info)
    _check_spatial_db(spatial_index_db)
    labels = _all_labels(cloudpath, spatial_index_db, info)
    check_forge_found_labels(cloudpath, mesh_dir, len(labels) > 0)
    spec = _shard_spec(
        len(labels),
        shard_index_bytes,
        minishard_index_bytes,
        min_shards,
        max_labels_per_shard,
        minishard_index_encoding,
    )
    new_info = multires_info(info, vol.meta.resolution(int(info["mip"])), vqb, forge_max_error(vol, mesh_dir))
    new_info["sharding"] = spec
    kwargs = task_kwargs(
        draco_compression_level=level,
        mesh_dir=mesh_dir,
        frag_path=frag_path,
        cache=bool(cache),
        num_lod=num_lod,
        spatial_index_db=spatial_index_db,
        min_chunk_size=min_chunk_size,
    )
    return PreparedMultiresMerge(vol, mesh_dir, info, new_info, kwargs, vqb, labels=labels, spec=spec)


def _unsharded_labels(src: str, mesh_dir: str, info: dict) -> np.ndarray:
    """Labels with a finished unsharded mesh: ``segid.index`` (multires) or ``segid:0`` (legacy)."""
    cf = CloudFiles(_join(src, mesh_dir))
    multires = info.get("@type") == meshes.MULTILOD_MESH_TYPE
    labels = set()
    for name in cf.list(flat=True):
        name = meshes.strip_compression_extension(name)
        if multires and name.endswith(".index") and name[: -len(".index")].isdigit():
            labels.add(int(name[: -len(".index")]))
        elif not multires and name.endswith(":0") and name[:-2].isdigit():
            labels.add(int(name[:-2]))
    return np.asarray(sorted(labels), dtype=np.uint64)


def create_sharded_multires_mesh_from_unsharded_tasks(
    src: str,
    dest: str,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    num_lod: int = 0,
    draco_compression_level: int = 1,
    vertex_quantization_bits: int = 16,
    minishard_index_encoding: str = "gzip",
    mesh_dir: Optional[str] = None,
    mip: Optional[int] = None,
    min_chunk_size: Sequence[int] = (256, 256, 256),
    max_labels_per_shard: Optional[int] = None,
) -> list:
    """Plan sharded multires meshes in ``dest`` from finished unsharded meshes of ``src``.

    A multires source is repacked without re-encoding (its vertex quantization bits are
    kept); a legacy source (``segid:0`` manifests, e.g. after `mesh merge --nlod 0`) is fused
    and encoded with ``num_lod`` extra levels. ``dest`` gets a layer info copied from ``src``
    when it has none, and ``mip`` is needed when the source mesh info does not say it.

    Returns:
        A list of ``MultiResShardedFromUnshardedMeshMergeTask`` partials, one per shard.
    """
    num_lod = _int_at_least(num_lod, "num_lod", 0)
    vqb = _check_vqb(vertex_quantization_bits)
    level = _check_level(draco_compression_level)
    minishard_index_encoding = _check_encoding(minishard_index_encoding)
    min_chunk_size = as_triple(min_chunk_size, "min_chunk_size")
    vol, src_dir, info = require_mesh_info(src, mesh_dir)
    if "sharding" in info:
        raise InvalidParameterError(f"{src}/{src_dir} is already sharded")
    if "mip" not in info:
        if mip is None:
            raise InvalidParameterError(
                f"{src}/{src_dir}/info has no 'mip': pass --mip (the mip the meshes were made at)"
            )
        info = dict(info, mip=_int_at_least(mip, "mip", 0))
    if int(info["mip"]) >= len(vol.info["scales"]):
        raise InvalidParameterError(f"mip must be in [0, {len(vol.info['scales']) - 1}]; got {info['mip']}")
    multires = info.get("@type") == meshes.MULTILOD_MESH_TYPE
    if multires:
        vqb = int(info["vertex_quantization_bits"])  # repacked as is
    labels = _unsharded_labels(src, src_dir, info)
    if len(labels) == 0:
        kind = "{segid}.index" if multires else "{segid}:0 manifests (run `igneous mesh merge` first)"
        raise InvalidParameterError(f"{src}/{src_dir} has no finished meshes: no {kind}")
    spec = _shard_spec(
        len(labels),
        shard_index_bytes,
        minishard_index_bytes,
        min_shards,
        max_labels_per_shard,
        minishard_index_encoding,
    )

    dest_cf = CloudFiles(dest)
    dest_info = dest_cf.get_json("info")
    dest_dir = src_dir
    if dest_info is not None and dest_info.get("mesh") not in (None, dest_dir):
        raise InvalidParameterError(
            f"{dest} keeps meshes in {dest_info['mesh']!r} but the source's are in {dest_dir!r}: "
            f"pick another dest or set its info 'mesh' to {dest_dir!r}"
        )
    if dest_info is None or "mesh" not in dest_info:
        dest_info = dict(vol.info) if dest_info is None else dest_info
        dest_info["mesh"] = dest_dir
        dest_cf.put_json("info", dest_info, cache_control="no-cache")
    new_info = multires_info(info, vol.meta.resolution(int(info["mip"])), vqb, forge_max_error(vol, src_dir))
    new_info["sharding"] = spec
    meshes.write_mesh_info(dest, dest_dir, new_info)
    shards = _write_shard_labels(dest, dest_dir, labels, spec)
    kwargs = task_kwargs(
        draco_compression_level=level, mesh_dir=dest_dir, num_lod=num_lod, min_chunk_size=min_chunk_size
    )
    record_provenance(
        dest,
        "MultiResShardedFromUnshardedMeshMergeTask",
        dict(kwargs, src=src, vertex_quantization_bits=vqb, sharding=spec, num_labels=len(labels)),
        sources=[src],
    )
    return [
        functools.partial(MultiResShardedFromUnshardedMeshMergeTask, src, dest, shard, **kwargs) for shard in shards
    ]
