"""Planning skeleton merges (SPEC §2.3): unsharded, sharded, sharded from finished unsharded
skeletons, and the graphene flat merge. Each planner refuses an unfinished forge before it
writes anything; what forged layers share is at the top (also used by ``skeleton_files``)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox

from igneous import skeletons as fmt
from igneous import spatial
from igneous.errors import InvalidParameterError
from igneous.label_shards import hashed_shard_spec, write_shard_labels
from igneous.layerfiles import (
    legacy_merge_prefixes,
    strip_compression_extension,
    subdir_path,
)
from igneous.task_creation.checks import (
    check_forge_complete,
    check_forge_found_labels,
    check_forged_object_ids,
    check_nonnegative_int,
    check_number,
    forge_record,
    int_at_least,
    require_sub_info,
)
from igneous.task_creation.common import record_provenance
from igneous.task_creation.spatial_index import all_labels, check_spatial_db
from igneous.tasks.skeleton import (
    ShardedFromUnshardedSkeletonMergeTask,
    ShardedSkeletonMergeTask,
    UnshardedSkeletonMergeTask,
    frag_root,
)

__all__ = [
    "create_unsharded_skeleton_merge_tasks",
    "create_sharded_skeleton_merge_tasks",
    "create_sharded_skeletons_from_unsharded_tasks",
    "create_flat_graphene_skeleton_merge_tasks",
    "plan_flat_graphene_merge_prefixes",
    "require_skeleton_info",
    "skeleton_forge_record",
    "forge_bounds",
    "unsharded_labels",
    "prepare_unsharded_skeleton_merge",
    "prepare_sharded_skeleton_merge",
    "PreparedSkeletonMerge",
]

FORGE_TASK = "SkeletonTask"
DIR_KEY = "skel_dir"


def require_skeleton_info(layer_path: str, skel_dir: Optional[str] = None) -> tuple[CloudVolume, str, dict]:
    """``(vol, skel_dir, skeleton info)`` of a forged layer; refuses when nothing was forged."""
    vol, skel_dir, info = require_sub_info(layer_path, skel_dir, "skeletons", "skeleton", "skeletonizing")
    if info.get("@type", fmt.SKELETON_TYPE) != fmt.SKELETON_TYPE:
        raise InvalidParameterError(f"{layer_path}/{skel_dir}/info is not a skeleton info ({info.get('@type')})")
    return vol, skel_dir, info


def skeleton_forge_record(vol: CloudVolume, skel_dir: str) -> dict:
    return forge_record(vol, skel_dir, FORGE_TASK, DIR_KEY)


def forge_bounds(vol: CloudVolume, skel_dir: str, info: dict) -> Bbox:
    """The region the last forge planned (the layer, unless it was shrunk to a few labels)."""
    mip = int(info.get("mip", 0))
    recorded = skeleton_forge_record(vol, skel_dir).get("bounds")
    if recorded:
        return Bbox(recorded[:3], recorded[3:])
    return vol.meta.bounds(mip)


def _check_forged(vol: CloudVolume, layer_path: str, skel_dir: str, info: dict) -> None:
    check_forge_complete(
        vol, layer_path, skel_dir, info, what="skeleton forge", command="skeleton forge",
        bounds=forge_bounds(vol, skel_dir, info),
    )  # fmt: skip
    check_forged_object_ids(vol, layer_path, skel_dir, info, FORGE_TASK, DIR_KEY)


def _check_merge_numbers(dust_threshold, tick_threshold, max_cable_length) -> tuple:
    return (
        check_number(dust_threshold, "dust_threshold"),
        check_number(tick_threshold, "tick_threshold"),
        check_number(max_cable_length, "max_cable_length", allow_none=True),
    )


def _check_no_pickles(layer_path: str, skel_dir: str, info: dict, vol: CloudVolume) -> None:
    """Refuse before merging when the forge left reference pickles and the caller did not opt in
    (the tasks would refuse each one anyway, after writing some skeletons)."""
    if fmt.pickles_allowed():
        return
    cf = CloudFiles(subdir_path(layer_path, skel_dir), progress=False)
    for name in cf.list(flat=True):
        name = strip_compression_extension(name)
        if fmt.parse_fragment_name(name) is None:
            continue
        data = cf.get(name)
        if data is not None and fmt.looks_pickled(data):
            fmt.decode_fragment(data, 0, fmt.vertex_attributes(False), name=name)  # raises, naming the opt-in
        return


@dataclasses.dataclass
class PreparedSkeletonMerge:
    """A validated skeleton merge: nothing written yet. ``labels``/``spec``/``root``: sharded only."""

    vol: CloudVolume
    skel_dir: str
    info: dict
    kwargs: dict
    prefixes: list = dataclasses.field(default_factory=list)
    magnitude: int = 0
    root: Optional[str] = None
    labels: Optional[np.ndarray] = None
    spec: Optional[dict] = None


def prepare_unsharded_skeleton_merge(
    layer_path: str,
    crop: int = 0,
    magnitude: int = 3,
    dust_threshold: float = 4000,
    max_cable_length: Optional[float] = None,
    tick_threshold: float = 6000,
    delete_fragments: bool = False,
) -> PreparedSkeletonMerge:
    """Validate and plan ``create_unsharded_skeleton_merge_tasks`` without writing anything."""
    magnitude = int_at_least(magnitude, "magnitude", 1)
    crop = check_nonnegative_int(crop, "crop")
    dust_threshold, tick_threshold, max_cable_length = _check_merge_numbers(
        dust_threshold, tick_threshold, max_cable_length
    )
    vol, skel_dir, info = require_skeleton_info(layer_path)
    if info.get("sharding"):
        raise InvalidParameterError(f"{layer_path}/{skel_dir} is already merged into shards")
    if skeleton_forge_record(vol, skel_dir).get("sharded"):
        raise InvalidParameterError(
            f"{layer_path}/{skel_dir} was forged --sharded (.frags): merge it with `igneous skeleton merge-sharded`"
        )
    _check_forged(vol, layer_path, skel_dir, info)
    _check_no_pickles(layer_path, skel_dir, info, vol)
    kwargs = dict(
        crop=crop,
        dust_threshold=dust_threshold,
        max_cable_length=max_cable_length,
        tick_threshold=tick_threshold,
        delete_fragments=bool(delete_fragments),
    )
    return PreparedSkeletonMerge(vol, skel_dir, info, kwargs, legacy_merge_prefixes(magnitude), magnitude)


def create_unsharded_skeleton_merge_tasks(
    layer_path: str,
    crop: int = 0,
    magnitude: int = 3,
    dust_threshold: float = 4000,
    max_cable_length: Optional[float] = None,
    tick_threshold: float = 6000,
    delete_fragments: bool = False,
):
    """Plan the unsharded merge: ``{skel_dir}/{segid}`` per label from its fragments.

    One ``UnshardedSkeletonMergeTask`` per label-name prefix (about ``10^magnitude``); each
    merges a label's fragments, then kimimaro's postprocess drops components shorter than
    ``dust_threshold`` nm, breaks loops, joins close pieces and prunes ticks shorter than
    ``tick_threshold`` nm (skipped above ``max_cable_length`` nm). ``crop`` trims each fragment
    by that many voxels inside its box first. Refuses until every forge box has its ``.spatial``.
    """
    job = prepare_unsharded_skeleton_merge(**{k: v for k, v in locals().items()})
    record_provenance(
        layer_path, "UnshardedSkeletonMergeTask", dict(job.kwargs, skel_dir=job.skel_dir, magnitude=job.magnitude)
    )
    return [UnshardedSkeletonMergeTask(layer_path, prefix, **job.kwargs) for prefix in job.prefixes]


def _check_frags_complete(vol: CloudVolume, layer_path: str, root: str, skel_dir: str, info: dict) -> None:
    bounds = forge_bounds(vol, skel_dir, info)
    res = info["spatial_index"]["resolution"]
    names = [spatial.frags_filename_from_spatial(n, res) for n in spatial.expected_spatial_names(bounds, info)]
    found = CloudFiles(root, progress=False).exists(names)
    missing = [n for n in names if not found[n]]
    if missing:
        example = ", ".join(n[: -len(".frags")] for n in missing[:5])
        raise InvalidParameterError(
            f"sharded skeleton forge is incomplete: {len(missing)} of {len(names)} task boxes have no .frags under "
            f"{root} (e.g. {example}): forge with --sharded (and the same frag_path)"
        )


def create_sharded_skeleton_merge_tasks(
    layer_path: str,
    dust_threshold: float,
    tick_threshold: float,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
    max_cable_length: Optional[float] = None,
    frag_path: Optional[str] = None,
    cache: bool = False,
    spatial_index_db: Optional[str] = None,
    max_labels_per_shard: Optional[int] = None,
) -> list:
    """Plan the sharded merge of a sharded forge (``.frags`` + ``.spatial``).

    Labels come from the spatial index (``spatial_index_db`` from `skeleton spatial-index db`,
    else the ``.spatial`` files). Writes the skeleton info's ``sharding`` and ``{shard}.labels``.
    A task reads only its labels' fragment entries (never whole ``.frags`` of the dataset) and
    holds its finished skeletons, so ``max_labels_per_shard`` bounds its memory.

    Returns:
        A list of ``ShardedSkeletonMergeTask``, one per shard with labels.
    """
    job = prepare_sharded_skeleton_merge(**{k: v for k, v in locals().items()})
    fmt.write_skeleton_info(layer_path, job.skel_dir, dict(job.info, sharding=job.spec))
    shards = write_shard_labels(subdir_path(layer_path, job.skel_dir), job.labels, job.spec)
    record_provenance(
        layer_path, "ShardedSkeletonMergeTask",
        dict(job.kwargs, skel_dir=job.skel_dir, sharding=job.spec, num_labels=len(job.labels)),
    )  # fmt: skip
    return [ShardedSkeletonMergeTask(layer_path, shard, **job.kwargs) for shard in shards]


def prepare_sharded_skeleton_merge(
    layer_path: str,
    dust_threshold: float,
    tick_threshold: float,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
    max_cable_length: Optional[float] = None,
    frag_path: Optional[str] = None,
    cache: bool = False,
    spatial_index_db: Optional[str] = None,
    max_labels_per_shard: Optional[int] = None,
) -> PreparedSkeletonMerge:
    """Validate and plan ``create_sharded_skeleton_merge_tasks`` without writing anything."""
    dust_threshold, tick_threshold, max_cable_length = _check_merge_numbers(
        dust_threshold, tick_threshold, max_cable_length
    )
    vol, skel_dir, info = require_skeleton_info(layer_path)
    if "spatial_index" not in info:
        raise InvalidParameterError(
            f"{layer_path}/{skel_dir} has no spatial index: the sharded merge needs a forge with --spatial-index"
        )
    _check_forged(vol, layer_path, skel_dir, info)
    root = frag_root(layer_path, frag_path, skel_dir)
    _check_frags_complete(vol, layer_path, root, skel_dir, info)
    check_spatial_db(spatial_index_db, "skeleton")
    labels = all_labels(layer_path, spatial_index_db, info, "skeleton")
    check_forge_found_labels(layer_path, skel_dir, len(labels) > 0)
    spec = hashed_shard_spec(
        len(labels), shard_index_bytes, minishard_index_bytes, min_shards, max_labels_per_shard,
        minishard_index_encoding, data_encoding,
    )  # fmt: skip
    kwargs = dict(
        dust_threshold=dust_threshold,
        tick_threshold=tick_threshold,
        frag_path=frag_path,
        cache=bool(cache),
        spatial_index_db=spatial_index_db,
        max_cable_length=max_cable_length,
    )
    return PreparedSkeletonMerge(vol, skel_dir, info, kwargs, root=root, labels=labels, spec=spec)


def unsharded_labels(cf: CloudFiles) -> np.ndarray:
    """Labels with a finished unsharded skeleton: files named ``digits`` (+ compression)."""
    labels = [int(n) for n in (strip_compression_extension(x) for x in cf.list(flat=True)) if fmt.is_final_name(n)]
    return np.asarray(sorted(set(labels)), dtype=np.uint64)


def create_sharded_skeletons_from_unsharded_tasks(
    src: str,
    dest: str,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
    minishard_index_encoding: str = "gzip",
    data_encoding: str = "gzip",
    skel_dir: Optional[str] = None,
    max_labels_per_shard: Optional[int] = None,
):
    """Plan sharded skeletons in ``dest`` from the finished unsharded skeletons of ``src``.

    ``dest`` gets the source's layer info when it has none and the source's skeleton info
    with ``sharding`` (its spatial index is left out: dest has no ``.spatial`` files).

    Returns:
        A list of ``ShardedFromUnshardedSkeletonMergeTask`` partials, one per shard.
    """
    vol, src_dir, info = require_skeleton_info(src, skel_dir)
    if info.get("sharding"):
        raise InvalidParameterError(f"{src}/{src_dir} is already sharded")
    if cfpaths.normalize(src).rstrip("/") == cfpaths.normalize(dest).rstrip("/"):
        raise InvalidParameterError("src and dest are the same layer; choose another dest")
    labels = unsharded_labels(CloudFiles(subdir_path(src, src_dir), progress=False))
    if len(labels) == 0:
        raise InvalidParameterError(f"{src}/{src_dir} has no finished skeletons (run `igneous skeleton merge` first)")
    spec = hashed_shard_spec(
        len(labels), shard_index_bytes, minishard_index_bytes, min_shards, max_labels_per_shard,
        minishard_index_encoding, data_encoding,
    )  # fmt: skip
    dest_cf = CloudFiles(dest, progress=False)
    dest_info = dest_cf.get_json("info")
    if dest_info is not None and dest_info.get("skeletons") not in (None, src_dir):
        raise InvalidParameterError(
            f"{dest} keeps skeletons in {dest_info['skeletons']!r} but the source's are in {src_dir!r}: "
            f"pick another dest or set its info 'skeletons' to {src_dir!r}"
        )
    if dest_info is None or "skeletons" not in dest_info:
        dest_info = dict(vol.info) if dest_info is None else dest_info
        dest_info["skeletons"] = src_dir
        dest_cf.put_json("info", dest_info, cache_control="no-cache")
    new_info = {k: v for k, v in info.items() if k != "spatial_index"}
    new_info["sharding"] = spec
    fmt.write_skeleton_info(dest, src_dir, new_info)
    shards = write_shard_labels(subdir_path(dest, src_dir), labels, spec)
    record_provenance(
        dest, "ShardedFromUnshardedSkeletonMergeTask", {"src": src, "skel_dir": src_dir, "sharding": spec,
                                                          "num_labels": len(labels)}, sources=[src]
    )  # fmt: skip
    return [
        functools.partial(ShardedFromUnshardedSkeletonMergeTask, src, dest, shard, skel_dir=src_dir) for shard in shards
    ]


def plan_flat_graphene_merge_prefixes(mip: int, mip_bits: int, coord_bits: Sequence[int], prefix_length: int = 6):
    """Decimal prefixes of graphene L2 ids at ``mip`` (no server needed): the ids of one mip
    level share their top bits, so plain ``1:…999`` prefixes would put every label in a few
    tasks."""
    from igneous.task_creation.common import graphene_prefixes

    return sorted(graphene_prefixes(mip, mip_bits, tuple(coord_bits), prefix_length))


def create_flat_graphene_skeleton_merge_tasks(
    cloudpath: str,
    mip: int,
    crop: int = 0,
    dust_threshold: float = 4000,
    tick_threshold: float = 6000,
    delete_fragments: bool = False,
):
    """Merge the fragments of a graphene forge by graphene id prefixes (``UnshardedSkeletonMergeTask``).

    Needs the graphene server for the id layout (``meta.n_bits_for_layer_id`` and the chunk
    coordinate bits); the prefixes themselves come from :func:`plan_flat_graphene_merge_prefixes`.
    """
    if not str(cloudpath).startswith("graphene://"):
        raise InvalidParameterError(f"the flat graphene merge needs a graphene:// segmentation; got {cloudpath}")
    crop = check_nonnegative_int(crop, "crop")
    dust_threshold, tick_threshold, _ = _check_merge_numbers(dust_threshold, tick_threshold, None)
    vol = CloudVolume(cloudpath, mip=mip, progress=False)
    bits = vol.meta.n_bits_for_layer_id
    bits = bits() if callable(bits) else bits
    prefixes = plan_flat_graphene_merge_prefixes(mip, int(bits), [int(vol.meta.spatial_bit_count(mip))] * 3)
    kwargs = dict(crop=crop, dust_threshold=dust_threshold, tick_threshold=tick_threshold,
                  delete_fragments=bool(delete_fragments))  # fmt: skip
    return [UnshardedSkeletonMergeTask(cloudpath, prefix, **kwargs) for prefix in prefixes]
