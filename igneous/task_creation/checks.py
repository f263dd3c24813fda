"""Validation that mesh and skeleton planners share: the segmentation layer, label lists,
small integers, and "is the forge finished?" checks on a sub-directory (``mesh_dir`` or
``skel_dir``). Every check raises ``InvalidParameterError`` before anything is written."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from igneous import spatial
from igneous.errors import InvalidParameterError
from igneous.layerfiles import subdir_path
from igneous.ops.voxels import intmap_key
from igneous.validate import whole
from igneous.volumes import open_volume

__all__ = [
    "open_segmentation",
    "check_label_list",
    "check_nonnegative_int",
    "int_at_least",
    "check_number",
    "check_compress",
    "check_ids_exist",
    "check_forge_complete",
    "forge_record",
    "check_forged_object_ids",
    "check_forge_found_labels",
    "forge_found_labels",
    "found_labels_reads",
    "check_same_grid",
    "refuse_index_of_unfinished_forge",
    "require_sub_info",
    "require_mesh_info",
]

log = logging.getLogger(__name__)

FRAGMENT_COMPRESSIONS = ("gzip", "br", "zstd")


def open_segmentation(layer_path: str, mip: int = 0, what: str = "meshing") -> CloudVolume:
    """The layer at ``mip``, refused unless it is an integer segmentation."""
    vol = open_volume(layer_path, mip)
    if vol.layer_type != "segmentation" or not np.issubdtype(np.dtype(vol.dtype), np.integer):
        raise InvalidParameterError(
            f"{what} needs a segmentation layer of integer labels; {layer_path} is a "
            f"{vol.layer_type} layer of {vol.dtype}"
        )
    return vol


def require_sub_info(
    layer_path: str, subdir: Optional[str], key: str, kind: str, what: Optional[str] = None
) -> tuple[CloudVolume, str, dict]:
    """``(vol, subdir, sub-info)`` of a forged layer: ``subdir`` if given, else the layer info's
    ``key`` (``mesh``, ``skeletons``); refuses when there is nothing forged."""
    from igneous.layerfiles import read_sub_info
    from igneous.meshes import resolve_mesh_dir
    from igneous.skeletons import resolve_skel_dir

    vol = open_segmentation(layer_path, 0, what or f"{kind} work")
    resolve = {"mesh": resolve_mesh_dir, "skeletons": resolve_skel_dir}[key]
    found = resolve(vol.info, subdir)  # the one place a --dir or the info's pointer is checked
    info = read_sub_info(layer_path, found) if found else None
    if info is None:
        where = f"{layer_path}/{found}/info" if found else f"{layer_path} (its info has no '{key}')"
        raise InvalidParameterError(f"no {kind} info at {where}: run `igneous {kind} forge` first")
    return vol, found, info


def require_mesh_info(layer_path: str, mesh_dir: Optional[str]) -> tuple[CloudVolume, str, dict]:
    """``(vol, mesh_dir, mesh info)`` of a forged layer; refuses when there is nothing forged."""
    return require_sub_info(layer_path, mesh_dir, "mesh", "mesh", "meshing")


def check_label_list(ids, name: str) -> Optional[list[int]]:
    if ids is None:
        return None
    try:
        values = [int(x) for x in ids]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a list of label ids; got {ids!r}") from None
    if any(isinstance(x, bool) or int(x) != x for x in ids) or any(v < 0 or v >= 2**64 for v in values):
        raise InvalidParameterError(f"{name} must hold integers in [0, 2^64); got {ids!r}")
    return values


def check_nonnegative_int(value, name: str, upper: Optional[int] = None) -> int:
    return whole(value, name, 0, upper)


def int_at_least(value, name: str, minimum: int) -> int:
    return whole(value, name, minimum)


def check_number(value, name: str, minimum: float = 0.0, allow_none: bool = False):
    """A number >= ``minimum`` (None allowed when ``allow_none``), as a float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value >= minimum:
        raise InvalidParameterError(f"{name} must be a number >= {minimum:g}; got {value!r}")
    return float(value)


def check_compress(compress) -> Optional[str]:
    """A transport compression for fragment files: None, gzip, br or zstd."""
    if compress in (None, False) or (isinstance(compress, str) and compress.lower() in ("none", "false", "")):
        return None
    if compress is True:
        return "gzip"
    if str(compress).lower() not in FRAGMENT_COMPRESSIONS:
        raise InvalidParameterError(
            f"compress must be one of none, {', '.join(FRAGMENT_COMPRESSIONS)}; got {compress!r}"
        )
    return str(compress).lower()


def check_ids_exist(counts, ids: list[int], source: str, name: str = "object_ids") -> None:
    """Every id must have a global voxel count (``counts`` is the IntMap of voxel counts)."""
    unknown = [i for i in ids if counts.get(intmap_key(i)) is None]
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:5])
        raise InvalidParameterError(
            f"{name} {shown}{' …' if len(unknown) > 5 else ''} do not occur in the segmentation ({source})"
        )


def check_forge_complete(
    vol: CloudVolume,
    layer_path: str,
    subdir: str,
    info: dict,
    what: str = "mesh forge",
    command: str = "forge",
    bounds=None,
) -> None:
    """Refuse to merge while any forge box (of ``bounds``, default the layer at the forge's mip)
    lacks its ``.spatial`` completion marker."""
    if "spatial_index" not in info:
        log.warning("%s/%s has no spatial index: cannot check that forging finished", layer_path, subdir)
        return
    mip = int(info.get("mip", 0))
    bounds = vol.meta.bounds(mip) if bounds is None else bounds
    missing, total = spatial.missing_spatial_boxes(layer_path, subdir, bounds, info)
    if missing:
        example = ", ".join(n[: -len(".spatial")] for n in missing[:5])
        raise InvalidParameterError(
            f"{what} is incomplete: {len(missing)} of {total} task boxes have no .spatial file "
            f"(e.g. {example}): rerun the {command} tasks"
        )


def forge_record(vol: CloudVolume, subdir: str, task: str = "MeshTask", dir_key: str = "mesh_dir") -> dict:
    """The parameters of the last forge planned into ``subdir``, from the layer's provenance
    ({} when none is recorded, e.g. a forge by a tool that keeps no provenance)."""
    for record in reversed(vol.provenance.processing):
        method = record.get("method") if isinstance(record, dict) else None
        if isinstance(method, dict) and method.get("task") == task and method.get(dir_key) == subdir:
            return method
    return {}


def refuse_index_of_unfinished_forge(
    vol: CloudVolume, layer_path: str, subdir: str, info: Optional[dict], task: str = "MeshTask",
    dir_key: str = "mesh_dir",
) -> None:
    """``spatial-index create`` writes a ``.spatial`` file for every box, and a ``.spatial`` file
    is what tells a merge that a forge box finished: while a forge that writes them is still
    running, that would vouch for boxes never forged (the merge would silently miss their
    fragments). Refuse it then; a finished forge's index may be rebuilt."""
    record = forge_record(vol, subdir, task, dir_key)
    if not record or record.get("spatial_index") is False or not info or "spatial_index" not in info:
        return
    mip = int(info.get("mip", 0))
    missing, total = spatial.missing_spatial_boxes(layer_path, subdir, vol.meta.bounds(mip), info)
    if missing:
        raise InvalidParameterError(
            f"the forge into {subdir} is unfinished ({len(missing)} of {total} boxes have no .spatial file yet); a "
            "spatial index written now would mark unforged boxes done: let the forge finish or re-forge"
        )


def check_forged_object_ids(
    vol: CloudVolume, layer_path: str, subdir: str, info: dict, task: str = "MeshTask", dir_key: str = "mesh_dir"
) -> None:
    """When the forge asked for ``object_ids``, each must occur in the spatial index."""
    record = forge_record(vol, subdir, task, dir_key)
    if not record.get("object_ids") or "spatial_index" not in info:
        return
    wanted = {int(x) for x in record["object_ids"]}
    mip = int(info.get("mip", 0))
    names = spatial.expected_spatial_names(vol.meta.bounds(mip), info)
    cf = CloudFiles(subdir_path(layer_path, subdir))
    found = set()
    for content in cf.get_json(names):
        found.update(int(k) for k in (content or {}))
    unknown = sorted(wanted - found)
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:5])
        raise InvalidParameterError(
            f"object_ids {shown} were requested at forge but do not occur in the segmentation; forge again without them"
        )


FOUND_LABELS_BATCH = 1000


def forge_found_labels(vol: CloudVolume, layer_path: str, subdir: str, info: dict) -> bool:
    """Whether any ``.spatial`` file of the forge lists a label (read in batches, stopping at
    the first that does). Without a spatial index nobody can tell: ``True``."""
    if "spatial_index" not in info:
        return True
    names = spatial.expected_spatial_names(vol.meta.bounds(int(info.get("mip", 0))), info)
    cf = CloudFiles(subdir_path(layer_path, subdir), progress=False)
    for start in range(0, len(names), FOUND_LABELS_BATCH):
        if any(content for content in cf.get_json(names[start : start + FOUND_LABELS_BATCH])):
            return True
    return False


def found_labels_reads(names: list, holding: set) -> int:
    """The ``.spatial`` files ``forge_found_labels`` reads, given the forge's ``names`` in order
    and the ones ``holding`` a label: whole batches up to the first that lists one."""
    first = next((i for i, name in enumerate(names) if name in holding), None)
    if first is None:
        return len(names)
    return min(len(names), (first // FOUND_LABELS_BATCH + 1) * FOUND_LABELS_BATCH)


def check_forge_found_labels(layer_path: str, subdir: str, found: bool) -> None:
    """Every merge refuses a forge that found no labels (e.g. a segmentation of zeros) in the
    same words: merging it would write an info, manifests or shards for nothing."""
    if not found:
        raise InvalidParameterError(f"the forge of {layer_path}/{subdir} found no labels: nothing to merge")


def check_same_grid(existing: dict, shape, mip: int, subdir: str, what: str = "the spatial index") -> None:
    """``what`` must use the forge grid recorded in ``{subdir}/info`` (task shape and mip):
    fragments and ``.spatial`` files of two grids in one directory would overlap."""
    recorded = existing.get("chunk_size")
    if recorded is None and existing.get("spatial_index"):
        recorded = spatial.grid_shape(existing).tolist()
    if recorded is not None and [int(s) for s in recorded] != [int(s) for s in shape]:
        raise InvalidParameterError(
            f"{subdir}/info records forge task shape {','.join(map(str, recorded))}; {what} "
            f"must use the same grid: pass shape={','.join(map(str, recorded))} or use another directory"
        )
    if "mip" in existing and int(existing["mip"]) != int(mip):
        raise InvalidParameterError(
            f"{subdir} was forged at mip {existing['mip']}; {what} must use mip {existing['mip']} or another directory"
        )
