"""Planning meshes (SPEC §2.2): forge, legacy merge, transfer, deletion, cleaning.

Each creator validates everything, then writes the infos it must, then returns the tasks.
Names and formats live in ``igneous.meshes``; the multi-resolution and spatial-index
creators live in sibling modules and are re-exported here (SPEC §2.2 is one namespace).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.task_creation.checks import (
    check_compress,
    check_forge_complete,
    check_forge_found_labels,
    check_forged_object_ids,
    check_ids_exist,
    check_label_list,
    check_nonnegative_int,
    check_same_grid,
    forge_found_labels,
    forge_record,
    open_segmentation,
    require_mesh_info,
)
from igneous.task_creation.common import GridTasks, as_triple, record_provenance, task_kwargs
from igneous.task_creation.graphene import create_graphene_hybrid_mesh_manifest_tasks, create_graphene_meshing_tasks

# SPEC §2.2 is one namespace: the multi-resolution and spatial-index creators (and the §2.5
# helper configure_multires_info) live in their own modules and are re-exported here.
from igneous.task_creation.multires import (
    configure_multires_info,
    create_sharded_multires_mesh_from_unsharded_tasks,
    create_sharded_multires_mesh_tasks,
    create_unsharded_multires_mesh_tasks,
)
from igneous.task_creation.spatial_index import create_spatial_index_mesh_tasks
from igneous.tasks.image.voxels import read_voxel_counts, voxel_counts_filename
from igneous.tasks.mesh.mesh import (
    MESH_TASK_DEFAULTS,
    DeleteMeshFilesTask,
    MeshManifestFilesystemTask,
    MeshManifestPrefixTask,
    MeshTask,
    TransferMeshFilesTask,
)

__all__ = [
    "create_meshing_tasks",
    "create_mesh_manifest_tasks",
    "create_spatial_index_mesh_tasks",
    "create_unsharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_from_unsharded_tasks",
    "create_xfer_meshes_tasks",
    "create_mesh_deletion_tasks",
    "create_graphene_meshing_tasks",
    "create_graphene_hybrid_mesh_manifest_tasks",
]

# Importable from here (plans and dry runs use them), not star-exported into igneous.task_creation
# (SPEC §2: that namespace is exactly its create_* functions).
_PLANNING = ("prepare_meshing", "PreparedMeshing", "prepare_mesh_manifest")

log = logging.getLogger(__name__)

MESH_ENCODINGS = ("precomputed", "draco")
MAX_FILL_HOLES = 103


# -- forge -------------------------------------------------------------------------------------


def create_meshing_tasks(
    layer_path: str,
    mip: int,
    shape: Sequence[int] = (448, 448, 448),
    simplification: bool = True,
    max_simplification_error: float = 40.0,
    mesh_dir: Optional[str] = None,
    cdn_cache: bool = False,
    dust_threshold: Optional[int] = None,
    object_ids: Optional[Sequence[int]] = None,
    progress: bool = False,
    fill_missing: bool = False,
    encoding: str = "precomputed",
    spatial_index: bool = True,
    frag_path: Optional[str] = None,
    sharded: bool = False,
    compress="gzip",
    closed_dataset_edges: bool = True,
    dust_global: bool = False,
    fill_holes: int = 0,
    dry_run: bool = False,
    exclude_object_ids: Sequence[int] = [],
):
    """Plan the forge: one ``MeshTask`` per ``shape`` box of the layer at ``mip``.

    Each task meshes its box plus one voxel of overlap on the high side, so fragments of
    neighbouring tasks meet exactly and a label's fused mesh is watertight. Cost is dominated
    by simplification (``simplification=False`` is about 10× faster, meshes far larger).
    Memory per task is about 2–4 bytes × (shape+1)³ plus the triangles; keep
    ``shape + 2 ≤ (1023, 1023, 511)`` or zmesh switches to a slower 64-bit mesher.

    Args:
        mesh_dir: default ``info["mesh"]``, else ``mesh_mip_{mip}_err_{max_simplification_error}``.
        dust_threshold: skip labels with fewer voxels; locally (in the cutout) only labels
            that do not reach a task seam are judged, since their true size is unknown;
            ``dust_global`` uses ``stats/voxel_counts.im`` instead (`igneous image voxels`).
        object_ids / exclude_object_ids: mesh only / never these labels.
        encoding: ``precomputed`` (readable by CloudVolume) or ``draco`` (smaller).
        spatial_index: write ``.spatial`` files (needed by merges to check completeness).
        sharded, frag_path: write one ``.frags`` MapBuffer per task (for ``merge-sharded``).
        closed_dataset_edges: close meshes where they meet the dataset boundary.
        fill_holes: 0 (off) … 103, see ``igneous.ops.mesh.fill_holes``.
        dry_run: plan and run tasks without writing anything.

    Returns:
        A lazy, sized iterator of ``MeshTask``; provenance is recorded when it is exhausted.

    Raises:
        InvalidParameterError: before anything is written, for any unusable parameter.
    """
    job = prepare_meshing(
        layer_path,
        mip=mip,
        shape=shape,
        simplification=simplification,
        max_simplification_error=max_simplification_error,
        mesh_dir=mesh_dir,
        cdn_cache=cdn_cache,
        dust_threshold=dust_threshold,
        object_ids=object_ids,
        progress=progress,
        fill_missing=fill_missing,
        encoding=encoding,
        spatial_index=spatial_index,
        frag_path=frag_path,
        sharded=sharded,
        compress=compress,
        closed_dataset_edges=closed_dataset_edges,
        dust_global=dust_global,
        fill_holes=fill_holes,
        dry_run=dry_run,
        exclude_object_ids=exclude_object_ids,
    )
    vol, mesh_dir, shape, kwargs = job.vol, job.mesh_dir, job.shape, job.kwargs
    if not dry_run:
        if "mesh" not in vol.info:
            vol.info["mesh"] = mesh_dir
            vol.commit_info()
        mesh_info = meshes.legacy_mesh_info(mip, shape, vol.info["scales"][mip]["resolution"], spatial_index)
        meshes.write_mesh_info(layer_path, mesh_dir, mesh_info)
        if spatial_index and job.had_info:
            # .spatial files are each box's "forged" marker: ones left by an earlier forge plan or by
            # `spatial-index create` must not vouch for boxes this forge has not done yet. A directory
            # that never had an info holds none (every writer writes the info first).
            CloudFiles(meshes.mesh_path(layer_path, mesh_dir)).delete(
                meshes.expected_spatial_names(vol.meta.bounds(mip), mesh_info)
            )

    finish = None
    if not dry_run:
        params = dict(kwargs, shape=shape.tolist(), layer_path=layer_path)
        finish = functools.partial(record_provenance, layer_path, "MeshTask", params)
    return GridTasks(
        vol.meta.bounds(mip),
        shape,
        make_task=functools.partial(MeshTask, layer_path=layer_path, **kwargs),
        finish=finish,
        clip=False,
        instantiate=True,
    )


@dataclass
class PreparedMeshing:
    """A validated forge plan: nothing written yet."""

    vol: CloudVolume
    mesh_dir: str
    shape: Vec
    kwargs: dict
    had_info: bool = False  # mesh_dir/info existed: an earlier forge or index may have left .spatial files


def prepare_meshing(
    layer_path: str,
    mip: int,
    shape: Sequence[int] = (448, 448, 448),
    simplification: bool = True,
    max_simplification_error: float = 40.0,
    mesh_dir: Optional[str] = None,
    cdn_cache: bool = False,
    dust_threshold: Optional[int] = None,
    object_ids: Optional[Sequence[int]] = None,
    progress: bool = False,
    fill_missing: bool = False,
    encoding: str = "precomputed",
    spatial_index: bool = True,
    frag_path: Optional[str] = None,
    sharded: bool = False,
    compress="gzip",
    closed_dataset_edges: bool = True,
    dust_global: bool = False,
    fill_holes: int = 0,
    dry_run: bool = False,
    exclude_object_ids: Sequence[int] = [],
) -> PreparedMeshing:
    """Validate and plan ``create_meshing_tasks`` without writing anything."""
    vol = open_segmentation(layer_path, mip)
    shape = as_triple(shape, "shape")
    try:
        max_error = float(max_simplification_error)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"max_simplification_error must be a number of nm; got {max_simplification_error!r}"
        ) from None
    if not max_error >= 0:
        raise InvalidParameterError(f"max_simplification_error must be >= 0 nm; got {max_simplification_error!r}")
    if dust_threshold is not None:
        dust_threshold = check_nonnegative_int(dust_threshold, "dust_threshold")
    if encoding not in MESH_ENCODINGS:
        raise InvalidParameterError(f"encoding must be one of {', '.join(MESH_ENCODINGS)}; got {encoding!r}")
    compress = check_compress(compress)
    fill_holes = check_nonnegative_int(fill_holes, "fill_holes", MAX_FILL_HOLES)
    if fill_holes > 0:
        try:
            import fastmorph  # noqa: F401
        except ImportError:
            raise InvalidParameterError("fill_holes needs fastmorph: pip install fastmorph") from None
    if sharded and not spatial_index:
        raise InvalidParameterError(
            "sharded forging needs spatial_index=True: the sharded merge finds .frags through it"
        )
    object_ids = check_label_list(object_ids, "object_ids")
    exclude_object_ids = check_label_list(exclude_object_ids, "exclude_object_ids") or []

    counts = read_voxel_counts(layer_path, vol.meta.key(mip))
    if dust_global:
        if not dust_threshold:
            raise InvalidParameterError("dust_global needs a dust_threshold (e.g. --dust-threshold 1000)")
        if counts is None:
            raise InvalidParameterError(
                f"dust_global needs {layer_path}/{voxel_counts_filename(vol.meta.key(mip))}: "
                f"run `igneous image voxels count` then `igneous image voxels sum`"
            )
    if object_ids is not None and counts is not None:
        check_ids_exist(counts, object_ids, f"per {voxel_counts_filename(vol.meta.key(mip))}")

    mesh_dir = meshes.resolve_mesh_dir(vol.info, mesh_dir) or meshes.default_mesh_dir(mip, max_simplification_error)
    had_info = _check_forge_target(layer_path, mesh_dir, mip, shape)
    kwargs = task_kwargs(
        mip=mip,
        simplification_factor=(100 if simplification else 0),
        max_simplification_error=max_simplification_error,
        mesh_dir=mesh_dir,
        cache_control=(None if cdn_cache else "no-cache"),
        dust_threshold=dust_threshold,
        dust_global=bool(dust_global),
        progress=bool(progress),
        object_ids=object_ids,
        exclude_object_ids=exclude_object_ids,
        fill_missing=bool(fill_missing),
        encoding=encoding,
        spatial_index=bool(spatial_index),
        frag_path=frag_path,
        sharded=bool(sharded),
        compress=compress,
        closed_dataset_edges=bool(closed_dataset_edges),
        fill_holes=fill_holes,
        dry_run=bool(dry_run),
    )
    assert set(kwargs) <= set(MESH_TASK_DEFAULTS)
    return PreparedMeshing(vol, mesh_dir, shape, kwargs, had_info)


def _check_forge_target(layer_path: str, mesh_dir: str, mip: int, shape) -> bool:
    """A forge may repeat an earlier forge of ``mesh_dir``, never overlay another grid or
    overwrite the info of meshes that were already merged to multi-resolution.

    Returns whether ``mesh_dir`` already has an info."""
    existing = meshes.read_mesh_info(layer_path, mesh_dir)
    if existing is None:
        return False
    kind = existing.get("@type", meshes.LEGACY_MESH_TYPE)
    if kind != meshes.LEGACY_MESH_TYPE:
        raise InvalidParameterError(
            f"{mesh_dir} holds merged {kind} meshes; forge into another mesh_dir, or remove them first "
            "(`igneous mesh rm`)"
        )
    check_same_grid(existing, shape, mip, mesh_dir, what="a new forge")
    return True


# -- legacy merge ------------------------------------------------------------------------------


def create_mesh_manifest_tasks(layer_path: str, magnitude: int = 3, mesh_dir: Optional[str] = None):
    """Plan the legacy merge: write ``{segid}:0`` manifests listing each label's fragments.

    Refuses until every forge box has its ``.spatial`` marker. A file:// layer gets one
    ``MeshManifestFilesystemTask`` (one directory scan); other stores get one
    ``MeshManifestPrefixTask`` per label prefix (about ``10^magnitude`` of them).
    """
    mesh_dir, magnitude, tasks = prepare_mesh_manifest(layer_path, magnitude, mesh_dir)
    record_provenance(layer_path, "MeshManifestTask", {"mesh_dir": mesh_dir, "magnitude": magnitude})
    return tasks


def prepare_mesh_manifest(layer_path: str, magnitude: int = 3, mesh_dir: Optional[str] = None):
    """Validate and plan ``create_mesh_manifest_tasks`` without writing: ``(mesh_dir, magnitude, tasks)``."""
    magnitude = check_nonnegative_int(magnitude, "magnitude")
    if magnitude < 1:
        raise InvalidParameterError("magnitude must be an integer >= 1; got 0")
    vol, mesh_dir, info = require_mesh_info(layer_path, mesh_dir)
    if info.get("@type", meshes.LEGACY_MESH_TYPE) != meshes.LEGACY_MESH_TYPE:
        raise InvalidParameterError(
            f"{layer_path}/{mesh_dir} holds {info.get('@type')} meshes, not forged legacy fragments: "
            f"forge again to rebuild legacy manifests"
        )
    forge = forge_record(vol, mesh_dir)
    if forge.get("sharded"):
        raise InvalidParameterError(
            f"{layer_path}/{mesh_dir} was forged --sharded (.frags): merge it with `igneous mesh merge-sharded`"
        )
    if forge.get("encoding") == "draco":
        raise InvalidParameterError(
            f"{layer_path}/{mesh_dir} was forged with Draco fragments, which legacy meshes cannot hold "
            "(CloudVolume and Neuroglancer read them as Precomputed): merge with --nlod 1 or more, or forge "
            "again with the precomputed encoding"
        )
    check_forge_complete(vol, layer_path, mesh_dir, info)
    check_forged_object_ids(vol, layer_path, mesh_dir, info)
    check_forge_found_labels(layer_path, mesh_dir, forge_found_labels(vol, layer_path, mesh_dir, info))

    if cfpaths.extract(layer_path).protocol == "file":
        tasks = [functools.partial(MeshManifestFilesystemTask, layer_path, lod=0, mesh_dir=mesh_dir)]
    else:
        tasks = [
            functools.partial(MeshManifestPrefixTask, layer_path, prefix, lod=0, mesh_dir=mesh_dir)
            for prefix in meshes.legacy_merge_prefixes(magnitude)
        ]
    return mesh_dir, magnitude, tasks


# -- transfer, deletion, cleaning --------------------------------------------------------------


def create_xfer_meshes_tasks(src: str, dest: str, mesh_dir: Optional[str] = None, magnitude: int = 2):
    """Copy a mesh directory file by file (compression kept), one task per name prefix.

    The destination layer gets the source's layer info if it has none, ``info["mesh"]``
    pointing at the copied directory, and the mesh info, immediately.
    """
    magnitude = check_nonnegative_int(magnitude, "magnitude")
    if magnitude < 1:
        raise InvalidParameterError("magnitude must be an integer >= 1; got 0")
    vol, mesh_dir, info = require_mesh_info(src, mesh_dir)
    if cfpaths.normalize(src).rstrip("/") == cfpaths.normalize(dest).rstrip("/"):
        raise InvalidParameterError("src and dest are the same layer; choose another dest")
    cf_dest = CloudFiles(dest)
    dest_info = cf_dest.get_json("info") or dict(vol.info)
    dest_info["mesh"] = mesh_dir
    cf_dest.put_json("info", dest_info, cache_control="no-cache")
    meshes.write_mesh_info(dest, mesh_dir, info)

    hexadecimal = "sharding" in info
    cf_src = CloudFiles(meshes.mesh_path(src, mesh_dir))
    short = meshes.short_exact_names(magnitude, hexadecimal)
    present = [name for name, ok in cf_src.exists(short).items() if ok]
    if present:  # bare short names (e.g. the multires data file "5") no prefix lists alone
        cf_src.transfer_to(CloudFiles(meshes.mesh_path(dest, mesh_dir)), paths=present, progress=False)
    record_provenance(dest, "TransferMeshFilesTask", {"src": src, "mesh_dir": mesh_dir}, sources=[src])
    return [
        functools.partial(TransferMeshFilesTask, src, dest, prefix, mesh_dir=mesh_dir)
        for prefix in meshes.filename_prefixes(magnitude, hexadecimal)
    ]


def create_mesh_deletion_tasks(layer_path: str, magnitude: int = 3, mesh_dir: Optional[str] = None):
    """Delete a mesh directory: its ``info`` now (so no reader sees a half-deleted mesh), the
    files by prefix tasks (sharded: one task)."""
    magnitude = check_nonnegative_int(magnitude, "magnitude")
    if magnitude < 1:
        raise InvalidParameterError("magnitude must be an integer >= 1; got 0")
    vol = open_segmentation(layer_path, 0)
    found = meshes.resolve_mesh_dir(vol.info, mesh_dir)
    info = meshes.read_mesh_info(layer_path, found) if found else None
    if info is None:
        # a deletion whose tasks were lost already removed the info: finish it with one task
        if found and next(iter(CloudFiles(meshes.mesh_path(layer_path, found)).list()), None) is not None:
            log.info("%s/%s has no info left; one task deletes every file in it", layer_path, found)
            return [functools.partial(DeleteMeshFilesTask, layer_path, "", mesh_dir=found)]
        require_mesh_info(layer_path, mesh_dir)  # refuses, naming what is missing
    mesh_dir = found
    cf = CloudFiles(meshes.mesh_path(layer_path, mesh_dir))
    cf.delete("info")
    if "sharding" in info:
        return [functools.partial(DeleteMeshFilesTask, layer_path, "", mesh_dir=mesh_dir)]
    short = meshes.short_exact_names(magnitude)
    cf.delete([name for name, ok in cf.exists(short).items() if ok])
    return [
        functools.partial(DeleteMeshFilesTask, layer_path, prefix, mesh_dir=mesh_dir)
        for prefix in meshes.filename_prefixes(magnitude)
    ]


def _finished_multires_labels(cf: CloudFiles, names: Sequence[str]) -> set[int]:
    """Labels whose ``{segid}.index`` parses and whose ``{segid}`` data has exactly the bytes it lists."""
    from cloudvolume.datasource.precomputed.mesh.multilod import MultiLevelPrecomputedMeshManifest

    present = set(names)
    candidates = [n[: -len(".index")] for n in names if n.endswith(".index") and n[: -len(".index")] in present]
    finished = set()
    indices = cf.get([f"{c}.index" for c in candidates])
    sizes = cf.size(candidates)
    for item in indices:
        segid = item["path"][: -len(".index")]
        try:
            manifest = MultiLevelPrecomputedMeshManifest.from_binary(item["content"], segment_id=int(segid))
            total = int(sum(int(np.sum(o)) for o in manifest.fragment_offsets))
        except Exception:  # a corrupt index is not a finished mesh
            continue
        if manifest.num_lods >= 1 and sizes.get(segid) == total:
            finished.add(int(segid))
    return finished


def clean_mesh_intermediates(layer_path: str, mesh_dir: Optional[str] = None) -> tuple[int, str]:
    """Delete forge intermediates that no finished mesh needs (``igneous mesh clean``).

    * legacy: the fragments *are* the finished meshes; nothing is deleted (``.frags`` are
      kept for a later ``merge-sharded``).
    * unsharded multires: the ``segid:0:*`` fragments and ``segid:0`` manifest of every label
      whose ``.index`` and data are complete; other labels keep theirs.
    * sharded: ``*.labels`` and ``*.frags`` once every ``.labels`` has its ``.shard``.

    ``.spatial`` and ``info`` are never deleted. Returns ``(number deleted, what was kept)``.
    """
    _, mesh_dir, info = require_mesh_info(layer_path, mesh_dir)
    cf = CloudFiles(meshes.mesh_path(layer_path, mesh_dir))
    names = list(cf.list())
    if "sharding" in info:
        labels_files = [n for n in names if n.endswith(".labels")]
        shards = {n for n in names if n.endswith(".shard")}
        unmerged = [n[: -len(".labels")] for n in labels_files if n[: -len(".labels")] + ".shard" not in shards]
        if unmerged:
            return 0, f"shards {', '.join(unmerged[:5])} are not merged yet: nothing deleted"
        doomed = labels_files + [n for n in names if n.endswith(".frags")]
        kept = ""
    elif info.get("@type") == meshes.MULTILOD_MESH_TYPE:
        finished = _finished_multires_labels(cf, names)
        doomed, unfinished = [], set()
        for name in names:
            parsed = meshes.parse_fragment_name(name)
            segid = parsed[0] if parsed else None
            if parsed is None and ":" in name and name.split(":")[0].isdigit() and len(name.split(":")) == 2:
                segid = int(name.split(":")[0])  # a legacy manifest segid:lod
            if segid is None:
                continue
            if segid in finished:
                doomed.append(name)
            else:
                unfinished.add(segid)
        kept = f"fragments of {len(unfinished)} label(s) without a finished mesh" if unfinished else ""
    else:
        return 0, "legacy fragments are the finished meshes: nothing deleted"
    cf.delete(doomed)
    return len(doomed), kept


_reexported = (configure_multires_info, check_forge_complete, check_forged_object_ids, forge_record)
