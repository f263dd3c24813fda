"""Skeleton directories as files (SPEC §2.3, §1.3): transfer, deletion, the spatial index,
``skeleton clean`` and SWC ``convert``."""

from __future__ import annotations

import functools
from typing import Optional, Sequence

from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume

from igneous import skeletons as fmt
from igneous import spatial
from igneous.errors import InvalidParameterError
from igneous.layerfiles import (
    filename_prefixes,
    short_exact_names,
    strip_compression_extension,
    subdir_path,
)
from igneous.task_creation.checks import (
    check_same_grid,
    int_at_least,
    open_segmentation,
    refuse_index_of_unfinished_forge,
)
from igneous.task_creation.common import as_triple, record_provenance
from igneous.task_creation.skeleton_merge import DIR_KEY, FORGE_TASK, require_skeleton_info, unsharded_labels
from igneous.task_creation.spatial_index import spatial_index_grid
from igneous.tasks.skeleton import (
    DeleteSkeletonFilesTask,
    TransferSkeletonFilesTask,
)
from igneous.volumes import normalize_compress

__all__ = [
    "create_xfer_skeleton_tasks",
    "create_skeleton_deletion_tasks",
    "create_spatial_index_skeleton_tasks",
    "clean_skeleton_intermediates",
    "finished_labels",
    "swc_files",
]


def create_xfer_skeleton_tasks(src: str, dest: str, skel_dir: Optional[str] = None, magnitude: int = 2):
    """Copy a skeleton directory file by file (compression kept), one task per name prefix.

    ``dest`` must already be a layer (its ``info`` exists); it gets ``info["skeletons"]`` and
    the skeleton info now.
    """
    magnitude = int_at_least(magnitude, "magnitude", 1)
    _, skel_dir, info = require_skeleton_info(src, skel_dir)
    if cfpaths.normalize(src).rstrip("/") == cfpaths.normalize(dest).rstrip("/"):
        raise InvalidParameterError("src and dest are the same layer; choose another dest")
    cf_dest = CloudFiles(dest, progress=False)
    dest_info = cf_dest.get_json("info")
    if dest_info is None:
        raise InvalidParameterError(
            f"{dest} has no info: create the destination layer first (e.g. `igneous image xfer`)"
        )
    if dest_info.get("skeletons") != skel_dir:
        dest_info["skeletons"] = skel_dir
        cf_dest.put_json("info", dest_info, cache_control="no-cache")
    fmt.write_skeleton_info(dest, skel_dir, info)
    hexadecimal = bool(info.get("sharding"))
    cf_src = CloudFiles(subdir_path(src, skel_dir), progress=False)
    present = [name for name, ok in cf_src.exists(short_exact_names(magnitude, hexadecimal)).items() if ok]
    if present:  # bare short names (label 5's skeleton "5") no prefix lists alone
        cf_src.transfer_to(CloudFiles(subdir_path(dest, skel_dir), progress=False), paths=present)
    record_provenance(dest, "TransferSkeletonFilesTask", {"src": src, "skel_dir": skel_dir}, sources=[src])
    return [
        functools.partial(TransferSkeletonFilesTask, src, dest, prefix, skel_dir=skel_dir)
        for prefix in filename_prefixes(magnitude, hexadecimal)
    ]


def create_skeleton_deletion_tasks(cloudpath: str, magnitude: int = 2, skel_dir: Optional[str] = None):
    """Delete a skeleton directory: its ``info`` now (no reader sees a half-deleted layer), the
    files by prefix tasks (sharded: one task)."""
    magnitude = int_at_least(magnitude, "magnitude", 1)
    vol = open_segmentation(cloudpath, 0, "skeleton deletion")
    found = fmt.resolve_skel_dir(vol.info, skel_dir)
    info = fmt.read_skeleton_info(cloudpath, found) if found else None
    cf = CloudFiles(subdir_path(cloudpath, found), progress=False) if found else None
    if info is None:
        # a deletion whose tasks were lost already removed the info: finish it with one task
        if cf is not None and next(iter(cf.list()), None) is not None:
            return [functools.partial(DeleteSkeletonFilesTask, cloudpath, "", skel_dir=found)]
        require_skeleton_info(cloudpath, skel_dir)  # refuses, naming what is missing
    cf.delete("info")
    if info.get("sharding"):
        return [functools.partial(DeleteSkeletonFilesTask, cloudpath, "", skel_dir=found)]
    cf.delete([name for name, ok in cf.exists(short_exact_names(magnitude)).items() if ok])
    return [
        functools.partial(DeleteSkeletonFilesTask, cloudpath, prefix, skel_dir=found)
        for prefix in filename_prefixes(magnitude)
    ]


def create_spatial_index_skeleton_tasks(
    cloudpath: str,
    shape: Sequence[int] = (448, 448, 448),
    mip: int = 0,
    fill_missing: bool = False,
    compress="gzip",
    skel_dir: Optional[str] = None,
):
    """(Re)build the skeleton ``.spatial`` files from the segmentation, one ``SpatialIndexTask``
    per box (each lists the labels in its box + 1 voxel and their bounding boxes in nm).

    Writes ``spatial_index`` into the skeleton info (creating one if needed) first. When
    skeletons were forged, ``shape`` and ``mip`` must be the forge's.
    """
    vol = open_segmentation(cloudpath, mip, "a skeleton spatial index")
    shape = as_triple(shape, "shape")
    compress = normalize_compress(compress, "raw") if compress is not None else None
    skel_dir = fmt.resolve_skel_dir(vol.info, skel_dir) or fmt.default_skel_dir(mip)
    existing = fmt.read_skeleton_info(cloudpath, skel_dir)
    if existing is not None and existing.get("spatial_index"):
        check_same_grid(existing, shape, int(existing.get("mip", mip)), skel_dir)
    if existing is not None and "mip" in existing and int(existing["mip"]) != int(mip):
        check_same_grid(existing, shape, mip, skel_dir)
    refuse_index_of_unfinished_forge(vol, cloudpath, skel_dir, existing, FORGE_TASK, DIR_KEY)
    new_info = dict(existing or fmt.skeleton_info(mip, shape, vol.info["scales"][mip]["resolution"]))
    new_info["mip"] = int(mip)
    new_info["spatial_index"] = spatial.spatial_index_info(shape, vol.info["scales"][mip]["resolution"])
    if "skeletons" not in vol.info:
        vol.info["skeletons"] = skel_dir
        vol.commit_info()
    if new_info != existing:
        fmt.write_skeleton_info(cloudpath, skel_dir, new_info)
    return spatial_index_grid(vol, cloudpath, shape, mip, fill_missing, compress, skel_dir)


def clean_skeleton_intermediates(layer_path: str, skel_dir: Optional[str] = None) -> tuple[int, str]:
    """Delete forge intermediates that no finished skeleton needs (``igneous skeleton clean``).

    * unsharded: the ``{segid}:{bbox}`` fragments of every label whose finished ``{segid}``
      exists and decodes; fragments of other labels are kept (a merge may still need them),
      unless the merge dropped the label as dust (its provenance names no such label: kept).
    * sharded: ``*.labels`` and ``*.frags`` once every ``.labels`` has its verified ``.shard``.

    ``.spatial`` and ``info`` are never deleted. Returns ``(number deleted, what was kept)``.
    """
    _, skel_dir, info = require_skeleton_info(layer_path, skel_dir)
    directory = subdir_path(layer_path, skel_dir)
    cf = CloudFiles(directory, progress=False)
    names = [strip_compression_extension(n) for n in cf.list(flat=True)]
    attributes = [a for a in info.get("vertex_attributes", [fmt.RADIUS]) if a["data_type"] == "float32"]
    if info.get("sharding"):
        labels_files = [n for n in names if n.endswith(".labels")]
        shards = {n for n in names if n.endswith(".shard")}
        unmerged = [n[: -len(".labels")] for n in labels_files if n[: -len(".labels")] + ".shard" not in shards]
        if unmerged:
            return 0, f"shards {', '.join(unmerged[:5])} are not merged yet: nothing deleted"
        doomed = labels_files + [n for n in names if n.endswith(".frags")]
        cf.delete(doomed)
        return len(doomed), ""
    finals = {n for n in names if fmt.is_final_name(n)}
    fragments: dict = {}
    for name in names:
        parsed = fmt.parse_fragment_name(name)
        if parsed is not None:
            fragments.setdefault(parsed[0], []).append(name)
    finished = set()
    for label in sorted(fragments):
        if str(label) not in finals:
            continue
        data = cf.get(str(label))
        try:
            fmt.decode_skeleton(data, label, attributes)
        except Exception:  # a corrupt skeleton is not finished
            continue
        finished.add(label)
    doomed = [n for label in sorted(finished) for n in fragments[label]]
    cf.delete(doomed)
    unfinished = len(fragments) - len(finished)
    kept = f"fragments of {unfinished} label(s) without a finished skeleton" if unfinished else ""
    return len(doomed), kept


def finished_labels(cloudpath: str, skel_dir: Optional[str] = None) -> list[int]:
    """Labels with a finished skeleton: ``{segid}`` files, or the labels in the shards' indices."""
    vol, skel_dir, info = require_skeleton_info(cloudpath, skel_dir)
    cf = CloudFiles(subdir_path(cloudpath, skel_dir), progress=False)
    if not info.get("sharding"):
        return [int(x) for x in unsharded_labels(cf)]
    reader = CloudVolume(cloudpath, progress=False).skeleton.reader
    labels: set = set()
    for name in cf.list(flat=True):
        if name.endswith(".shard"):
            labels.update(int(x) for x in reader.list_labels(f"{skel_dir}/{name}"))
    return sorted(labels)


def swc_files(cloudpath: str, labels: Optional[Sequence[int]] = None):
    """``(f"{label}.swc", SWC text)`` for ``labels`` (default: every finished skeleton), read
    through CloudVolume like any other client (vertices in nm)."""
    labels = finished_labels(cloudpath) if labels is None else [int(x) for x in labels]
    if not labels:
        return
    vol = CloudVolume(cloudpath, progress=False)
    for start in range(0, len(labels), 500):
        batch = labels[start : start + 500]
        try:
            skels = vol.skeleton.get(batch)
        except Exception as err:  # a label without a skeleton: say which, in one line
            raise InvalidParameterError(f"cannot read skeletons {batch[:5]}…: {err}") from None
        for skel in sorted(skels, key=lambda s: int(s.id)):
            yield f"{int(skel.id)}.swc", fmt.to_swc(skel)
