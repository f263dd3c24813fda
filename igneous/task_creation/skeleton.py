"""Planning skeletons (SPEC §2.3): forge, unsharded and sharded merges, transfer, deletion,
spatial index, cleaning, and the graphene flat merge.

Each creator validates everything, then writes the infos it must, then returns the tasks. The
forge's pure plan step (:func:`plan_skeletonizing_tasks`) computes the task grid, the infos and
the files to replace without writing anything. Names and formats live in
``igneous.skeletons``; what meshes and skeletons share in ``igneous.spatial``,
``igneous.layerfiles``, ``igneous.label_shards`` and ``task_creation/checks.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Iterable, Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import skeletons as fmt
from igneous import spatial
from igneous.errors import InvalidParameterError
from igneous.label_shards import hashed_shard_spec, write_shard_labels
from igneous.layerfiles import (
    filename_prefixes,
    legacy_merge_prefixes,
    short_exact_names,
    strip_compression_extension,
    subdir_path,
)
from igneous.ops.skeleton import SKELETON_BLOCK
from igneous.task_creation.checks import (
    check_forge_complete,
    check_forged_object_ids,
    check_ids_exist,
    check_label_list,
    check_nonnegative_int,
    check_same_grid,
    forge_record,
    int_at_least,
    open_segmentation,
    require_sub_info,
)
from igneous.task_creation.common import GridTasks, as_triple, num_tasks, record_provenance, task_kwargs
from igneous.task_creation.spatial_index import all_labels, check_spatial_db, spatial_index_grid
from igneous.tasks.image.voxels import read_voxel_counts, voxel_counts_filename
from igneous.tasks.skeleton import (
    DeleteSkeletonFilesTask,
    ShardedFromUnshardedSkeletonMergeTask,
    ShardedSkeletonMergeTask,
    SkeletonTask,
    TransferSkeletonFilesTask,
    UnshardedSkeletonMergeTask,
    frag_root,
)
from igneous.volumes import normalize_compress

__all__ = [
    "create_skeletonizing_tasks",
    "create_unsharded_skeleton_merge_tasks",
    "create_sharded_skeleton_merge_tasks",
    "create_flat_graphene_skeleton_merge_tasks",
    "create_skeleton_deletion_tasks",
    "create_xfer_skeleton_tasks",
    "create_sharded_skeletons_from_unsharded_tasks",
    "create_spatial_index_skeleton_tasks",
]
# also importable (not SPEC §2.3 creators): bounds_from_mesh, synapses_in_space, plan_skeletonizing_tasks,
# clean_skeleton_intermediates, swc_files, finished_labels

log = logging.getLogger(__name__)

TEASAR_KEYS = (
    "scale",
    "const",
    "pdrf_scale",
    "pdrf_exponent",
    "soma_detection_threshold",
    "soma_acceptance_threshold",
    "soma_invalidation_scale",
    "soma_invalidation_const",
    "max_paths",
)
MAX_FILL_HOLES = 103
FORGE_TASK = "SkeletonTask"
DIR_KEY = "skel_dir"
GRAPHENE_ONLY = ("fix_autapses", "timestamp", "root_ids_cloudpath")


# -- validation ------------------------------------------------------------------------------------


def _check_number(value, name: str, minimum: float = 0.0, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value >= minimum:
        raise InvalidParameterError(f"{name} must be a number >= {minimum:g}; got {value!r}")
    return float(value)


def _check_teasar(teasar_params) -> dict:
    if not isinstance(teasar_params, dict):
        raise InvalidParameterError(f"teasar_params must be a dict of TEASAR parameters; got {teasar_params!r}")
    unknown = sorted(set(teasar_params) - set(TEASAR_KEYS))
    if unknown:
        raise InvalidParameterError(
            f"teasar_params has unknown key(s) {', '.join(unknown)}; known: {', '.join(TEASAR_KEYS)}"
        )
    out = {}
    for key, value in teasar_params.items():
        if key == "max_paths":
            if value is not None:
                if isinstance(value, bool) or not float(value).is_integer() or value < 1:
                    raise InvalidParameterError(f"max_paths must be a whole number >= 1 or None; got {value!r}")
                out[key] = int(value)
            continue
        number = _check_number(value, f"teasar_params[{key!r}]")
        # kimimaro takes a power-of-two pdrf_exponent as an int (it tests its bits)
        out[key] = int(number) if float(number).is_integer() and key == "pdrf_exponent" else value
    return out


def _check_flag_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


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


# -- helpers SPEC §2.5 names -------------------------------------------------------------------------


def bounds_from_mesh(vol: CloudVolume, shape: Sequence[int], labels: Iterable[int]) -> Bbox:
    """The forge bounds for a few labels: the union of their mesh bounding boxes (from the mesh
    spatial index when there is one, else the meshes), in voxels at ``vol.mip``, grown to whole
    task cells of ``shape`` (counted from the layer origin) and clipped to the layer."""
    mip = vol.mip
    res = np.asarray(vol.meta.resolution(mip), dtype=np.float64)
    boxes = []
    index = getattr(vol.mesh, "spatial_index", None)
    for label in labels:
        nm = None
        if index is not None:
            try:
                nm = index.get_bbox(int(label))
            except Exception:  # an incomplete index: fall back to the mesh itself
                nm = None
        if nm is None:
            mesh = vol.mesh.get(int(label))
            mesh = mesh[int(label)] if isinstance(mesh, dict) else mesh
            if mesh is None or len(mesh.vertices) == 0:
                raise InvalidParameterError(f"label {label} has no mesh to take its bounds from")
            nm = Bbox(np.min(mesh.vertices, axis=0), np.max(mesh.vertices, axis=0))
        boxes.append(
            Bbox(np.floor(np.asarray(nm.minpt) / res).astype(int), np.ceil(np.asarray(nm.maxpt) / res).astype(int) + 1)
        )
    bounds = Bbox.expand(*boxes)
    bounds = bounds.expand_to_chunk_size(Vec(*shape), offset=vol.meta.voxel_offset(mip))
    return Bbox.clamp(bounds, vol.meta.bounds(mip))


def synapses_in_space(synapse_itr: Iterable, N: Optional[int] = None):
    """A KD-tree of synapse centroids and ``{centroid: [(label, swc_label), …]}``.

    ``synapse_itr`` yields ``((x, y, z) in nm, label, swc_label)``; ``N`` (its length) lets a
    generator be read once into a preallocated array.
    """
    from scipy.spatial import cKDTree

    items = list(synapse_itr) if N is None else synapse_itr
    n = len(items) if N is None else int(N)
    points = np.zeros((n, 3), dtype=np.float64)
    labels: dict = {}
    count = 0
    for i, (centroid, label, swc_label) in enumerate(items):
        if i >= n:
            raise InvalidParameterError(f"num_synapses={n} but the synapse iterator yields more")
        points[i] = centroid
        labels.setdefault(tuple(float(c) for c in centroid), []).append((int(label), int(swc_label)))
        count = i + 1
    points = points[:count]
    return cKDTree(points) if count else None, labels


def _synapses_for_box(tree, labels: dict, box_nm: Bbox, resolution) -> Optional[dict]:
    """``{label: [((x, y, z) voxel, swc_label)]}`` for the synapses inside ``box_nm``."""
    if tree is None:
        return None
    center = (np.asarray(box_nm.minpt, dtype=float) + np.asarray(box_nm.maxpt, dtype=float)) / 2
    radius = float(np.linalg.norm(np.asarray(box_nm.maxpt, dtype=float) - center))
    found: dict = {}
    for i in tree.query_ball_point(center, radius):
        pt = tuple(float(c) for c in tree.data[i])
        if not (np.all(np.asarray(pt) >= box_nm.minpt) and np.all(np.asarray(pt) < box_nm.maxpt)):
            continue
        voxel = [int(v) for v in np.floor(np.asarray(pt) / np.asarray(resolution, dtype=float))]
        for label, swc in labels.get(pt, []):
            found.setdefault(str(label), []).append((voxel, swc))
    return found or None


# -- forge --------------------------------------------------------------------------------------------


def _make_skeleton_task(shape, offset, synapse_index=None, resolution=None, **kwargs) -> SkeletonTask:
    """One forge task: it reads one voxel more than its grid cell on the high sides."""
    if synapse_index is not None:
        box_nm = Bbox(offset, [o + s for o, s in zip(offset, shape)]) * Vec(*resolution)
        kwargs["synapses"] = _synapses_for_box(*synapse_index, box_nm, resolution)
    return SkeletonTask(shape=[shape[0] + 1, shape[1] + 1, shape[2] + 1], offset=offset, spatial_grid_shape=shape,
                        **kwargs)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SkeletonForgePlan:
    """What a forge will do, computed without writing anything (for ``--dry-run`` and tests)."""

    cloudpath: str
    mip: int
    skel_dir: str
    bounds: Bbox
    shape: tuple
    num_tasks: int
    skeleton_info: dict
    set_layer_skeletons: bool
    remove_stale_spatial: bool  # .spatial files of an earlier forge would vouch for unforged boxes
    task_kwargs: dict
    synapse_index: Optional[tuple] = None

    def stale_spatial(self) -> list[str]:
        """The ``.spatial`` names a new forge removes first (an earlier forge's or index's)."""
        if not self.remove_stale_spatial:
            return []
        vol = CloudVolume(self.cloudpath, progress=False, cdn_cache=False)
        return spatial.expected_spatial_names(vol.meta.bounds(self.mip), self.skeleton_info)

    def writes(self) -> list[str]:
        """Files the plan writes (or deletes) before any task runs (relative to the layer)."""
        out = (["info"] if self.set_layer_skeletons else []) + [f"{self.skel_dir}/info"]
        return out + [f"{self.skel_dir}/{n}" for n in self.stale_spatial()]


def plan_skeletonizing_tasks(
    cloudpath: str,
    mip: int,
    shape: Sequence[int] = Vec(512, 512, 512),
    teasar_params: dict = {"scale": 10, "const": 10},  # noqa: B006 - SPEC default, never mutated
    info: Optional[dict] = None,
    object_ids: Optional[Sequence[int]] = None,
    mask_ids: Optional[Sequence[int]] = None,
    fix_branching: bool = True,
    fix_borders: bool = True,
    fix_avocados: bool = False,
    fill_holes: int = 0,
    dust_threshold: int = 1000,
    progress: bool = False,
    parallel: int = 1,
    fill_missing: bool = False,
    sharded: bool = False,
    frag_path: Optional[str] = None,
    spatial_index: bool = True,
    synapses: Optional[Iterable] = None,
    num_synapses: Optional[int] = None,
    dust_global: bool = False,
    fix_autapses: bool = False,
    cross_sectional_area: bool = False,
    cross_sectional_area_smoothing_window: int = 5,
    timestamp: Optional[int] = None,
    root_ids_cloudpath: Optional[str] = None,
    cross_sectional_area_repair_sec_per_label: int = 0,
) -> SkeletonForgePlan:
    """Validate a forge and compute its plan (see :func:`create_skeletonizing_tasks`); writes nothing."""
    graphene = str(cloudpath).startswith("graphene://")
    given = {"fix_autapses": fix_autapses, "timestamp": timestamp, "root_ids_cloudpath": root_ids_cloudpath}
    used = [k for k in GRAPHENE_ONLY if given[k] not in (None, False)]
    if used and not graphene:
        raise InvalidParameterError(
            f"{', '.join(used)} only apply to graphene:// segmentations; {cloudpath} is not one"
        )
    if fix_autapses:
        raise InvalidParameterError("fix_autapses (graphene L2 connectivity) is not supported by this Igneous")
    vol = open_segmentation(cloudpath, mip, "skeletonizing")
    shape = as_triple(shape, "shape")
    teasar_params = _check_teasar(teasar_params)
    dust_threshold = check_nonnegative_int(dust_threshold, "dust_threshold")
    fill_holes = check_nonnegative_int(fill_holes, "fill_holes", MAX_FILL_HOLES)
    parallel = _check_flag_int(parallel, "parallel", 1)
    window = _check_flag_int(cross_sectional_area_smoothing_window, "cross_sectional_area_smoothing_window", 1)
    repair = _check_flag_int(cross_sectional_area_repair_sec_per_label, "cross_sectional_area_repair_sec_per_label", -1)
    object_ids = check_label_list(object_ids, "object_ids")
    mask_ids = check_label_list(mask_ids, "mask_ids")
    if sharded and not spatial_index:
        raise InvalidParameterError(
            "sharded forging needs spatial_index=True: the sharded merge finds .frags through it"
        )
    if frag_path and not sharded:
        raise InvalidParameterError(
            "frag_path applies to sharded forges (.frags); the unsharded merge reads fragments from the skeleton directory"
        )
    if fill_holes > 0:
        try:
            import fastmorph  # noqa: F401
        except ImportError:
            raise InvalidParameterError("fill_holes needs fastmorph: pip install fastmorph") from None

    key = vol.meta.key(mip)
    counts = read_voxel_counts(cloudpath, key)
    if dust_global:
        if not dust_threshold:
            raise InvalidParameterError("dust_global needs a dust_threshold (e.g. --dust-threshold 1000)")
        if counts is None:
            raise InvalidParameterError(
                f"dust_global needs {cloudpath}/{voxel_counts_filename(key)}: "
                f"run `igneous image voxels count` then `igneous image voxels sum`"
            )
    if object_ids is not None and counts is not None:
        check_ids_exist(counts, object_ids, f"per {voxel_counts_filename(key)}")

    skel_dir = fmt.resolve_skel_dir(vol.info) or fmt.default_skel_dir(mip)
    existing = fmt.read_skeleton_info(cloudpath, skel_dir)
    if existing is not None:
        if existing.get("sharding"):
            raise InvalidParameterError(
                f"{skel_dir} holds merged sharded skeletons; forge into another directory or remove them first "
                "(`igneous skeleton rm`)"
            )
        if existing.get("spatial_index"):
            check_same_grid(existing, shape, int(existing.get("mip", mip)), skel_dir, what="a new forge")
        if "mip" in existing and int(existing["mip"]) != int(mip):
            check_same_grid(existing, shape, mip, skel_dir, what="a new forge")
    resolution = vol.info["scales"][mip]["resolution"]
    forge = fmt.forge_params(shape, SKELETON_BLOCK, teasar_params, fix_borders)
    if info is not None:  # the caller's skeleton info; the merge still needs the forge grid
        skel_info = dict(info, **{fmt.FORGE_KEY: forge})
    else:
        skel_info = fmt.skeleton_info(mip, shape, resolution, cross_sectional_area, spatial_index, existing, forge)

    bounds = vol.meta.bounds(mip)
    if object_ids is not None and 0 < len(object_ids) <= 4 and not sharded and vol.info.get("mesh"):
        try:
            bounds = bounds_from_mesh(vol, shape, object_ids)
        except InvalidParameterError:
            raise
        except Exception as err:  # no usable meshes: skeletonize the whole layer
            log.info("bounds_from_mesh: %s; forging the whole layer", err)
    n = num_tasks(bounds, shape)
    synapse_index = synapses_in_space(synapses, num_synapses) if synapses is not None else None
    kwargs = task_kwargs(
        cloudpath=cloudpath,
        mip=mip,
        teasar_params=teasar_params,
        will_postprocess=bool(n > 1),
        info=skel_info,
        object_ids=object_ids,
        mask_ids=mask_ids,
        fix_branching=bool(fix_branching),
        fix_borders=bool(fix_borders),
        fix_avocados=bool(fix_avocados),
        fill_holes=fill_holes,
        dust_threshold=dust_threshold,
        progress=bool(progress),
        parallel=parallel,
        fill_missing=bool(fill_missing),
        sharded=bool(sharded),
        frag_path=frag_path,
        spatial_index=bool(spatial_index),
        dust_global=bool(dust_global),
        cross_sectional_area=bool(cross_sectional_area),
        cross_sectional_area_smoothing_window=window,
        cross_sectional_area_repair_sec_per_label=repair,
        fix_autapses=bool(fix_autapses),
        timestamp=timestamp,
        root_ids_cloudpath=root_ids_cloudpath,
    )
    return SkeletonForgePlan(
        cloudpath=cloudpath,
        mip=int(mip),
        skel_dir=skel_dir,
        bounds=bounds,
        shape=tuple(int(s) for s in shape),
        num_tasks=n,
        skeleton_info=skel_info,
        set_layer_skeletons="skeletons" not in vol.info,
        # a directory that never had an info holds no .spatial of ours (every writer writes it first)
        remove_stale_spatial=bool(spatial_index and existing is not None),
        task_kwargs=kwargs,
        synapse_index=(synapse_index + (list(resolution),)) if synapse_index else None,
    )


def create_skeletonizing_tasks(
    cloudpath: str,
    mip: int,
    shape: Sequence[int] = Vec(512, 512, 512),
    teasar_params: dict = {"scale": 10, "const": 10},  # noqa: B006 - SPEC default, never mutated
    info: Optional[dict] = None,
    object_ids: Optional[Sequence[int]] = None,
    mask_ids: Optional[Sequence[int]] = None,
    fix_branching: bool = True,
    fix_borders: bool = True,
    fix_avocados: bool = False,
    fill_holes: int = 0,
    dust_threshold: int = 1000,
    progress: bool = False,
    parallel: int = 1,
    fill_missing: bool = False,
    sharded: bool = False,
    frag_path: Optional[str] = None,
    spatial_index: bool = True,
    synapses: Optional[Iterable] = None,
    num_synapses: Optional[int] = None,
    dust_global: bool = False,
    fix_autapses: bool = False,
    cross_sectional_area: bool = False,
    cross_sectional_area_smoothing_window: int = 5,
    timestamp: Optional[int] = None,
    root_ids_cloudpath: Optional[str] = None,
    cross_sectional_area_repair_sec_per_label: int = 0,
):
    """Plan the skeleton forge: one ``SkeletonTask`` per ``shape`` box of the layer at ``mip``.

    Each task reads its box plus one voxel on the high sides (``shape + 1``) and runs kimimaro
    (TEASAR) in sub-blocks; fragments of one label meet on the shared voxel plane, so the merge
    joins them without gaps. Memory per task: about 20 bytes per voxel of ``(shape+1)³`` (the
    labels, kimimaro's distance transform and components), ~2.7 GB at 512³.

    Args:
        teasar_params: kimimaro's TEASAR parameters (scale, const in nm, pdrf_scale,
            pdrf_exponent, soma_detection_threshold, soma_acceptance_threshold,
            soma_invalidation_scale, soma_invalidation_const, max_paths).
        object_ids / mask_ids: skeletonize only / never these labels. With at most 4
            object_ids on a layer with meshes, only the boxes around their meshes are forged.
        fix_branching, fix_borders, fix_avocados: kimimaro's options (fix_borders is what makes
            task seams meet; keep it on unless a single task covers the layer).
        fill_holes: 0 (off) … 103 (fastmorph; see ``igneous.ops.mesh.fill_holes``).
        dust_threshold: skip connected components below this many voxels; locally (the
            default) only components that do not reach a task seam are judged, since their true
            size is unknown; ``dust_global`` uses ``stats/voxel_counts.im`` per label instead.
        sharded, frag_path: one ``.frags`` MapBuffer per task (for ``merge-sharded``).
        spatial_index: write ``.spatial`` files (merges use them to check the forge finished).
        synapses, num_synapses: ``((x, y, z) nm, label, swc_label)`` points every skeleton of
            ``label`` must reach.
        cross_sectional_area: add a ``cross_sectional_area`` vertex attribute (nm²), its
            normals smoothed over ``cross_sectional_area_smoothing_window`` vertices; sections
            cut by the task box are recomputed in a larger box for up to
            ``cross_sectional_area_repair_sec_per_label`` seconds per label (-1: no limit).
        fix_autapses, timestamp, root_ids_cloudpath: graphene only (refused otherwise).

    Returns:
        A lazy, sized iterator of ``SkeletonTask``; provenance is recorded when it is exhausted.

    Raises:
        InvalidParameterError: before anything is written, for any unusable parameter.
    """
    plan = plan_skeletonizing_tasks(**{k: v for k, v in locals().items()})
    return apply_forge_plan(plan)


def apply_forge_plan(plan: SkeletonForgePlan) -> GridTasks:
    """Write what the forge plan writes, then return its lazy task grid."""
    if plan.set_layer_skeletons:
        vol = CloudVolume(plan.cloudpath, progress=False, cdn_cache=False)
        vol.info["skeletons"] = plan.skel_dir
        vol.commit_info()
    fmt.write_skeleton_info(plan.cloudpath, plan.skel_dir, plan.skeleton_info)
    stale = plan.stale_spatial()
    if stale:
        CloudFiles(subdir_path(plan.cloudpath, plan.skel_dir), progress=False).delete(stale)
    params = dict(plan.task_kwargs, shape=list(plan.shape), skel_dir=plan.skel_dir, bounds=plan.bounds.to_list())
    params.pop("info", None)
    finish = functools.partial(record_provenance, plan.cloudpath, FORGE_TASK, params)
    make = functools.partial(
        _make_skeleton_task,
        synapse_index=plan.synapse_index[:2] if plan.synapse_index else None,
        resolution=plan.synapse_index[2] if plan.synapse_index else None,
        **plan.task_kwargs,
    )
    return GridTasks(plan.bounds, Vec(*plan.shape), make_task=make, finish=finish, clip=False, instantiate=True)


# -- merges -------------------------------------------------------------------------------------------


def _check_merge_numbers(dust_threshold, tick_threshold, max_cable_length) -> tuple:
    return (
        _check_number(dust_threshold, "dust_threshold"),
        _check_number(tick_threshold, "tick_threshold"),
        _check_number(max_cable_length, "max_cable_length", allow_none=True),
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
    record_provenance(layer_path, "UnshardedSkeletonMergeTask", dict(kwargs, skel_dir=skel_dir, magnitude=magnitude))
    return [UnshardedSkeletonMergeTask(layer_path, prefix, **kwargs) for prefix in legacy_merge_prefixes(magnitude)]


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
    if len(labels) == 0:
        raise InvalidParameterError(f"the forge of {layer_path}/{skel_dir} found no labels: nothing to merge")
    spec = hashed_shard_spec(
        len(labels), shard_index_bytes, minishard_index_bytes, min_shards, max_labels_per_shard,
        minishard_index_encoding, data_encoding,
    )  # fmt: skip
    fmt.write_skeleton_info(layer_path, skel_dir, dict(info, sharding=spec))
    shards = write_shard_labels(subdir_path(layer_path, skel_dir), labels, spec)
    kwargs = dict(
        dust_threshold=dust_threshold,
        tick_threshold=tick_threshold,
        frag_path=frag_path,
        cache=bool(cache),
        spatial_index_db=spatial_index_db,
        max_cable_length=max_cable_length,
    )
    record_provenance(
        layer_path, "ShardedSkeletonMergeTask", dict(kwargs, skel_dir=skel_dir, sharding=spec, num_labels=len(labels))
    )
    return [ShardedSkeletonMergeTask(layer_path, shard, **kwargs) for shard in shards]


def _unsharded_labels(cf: CloudFiles) -> np.ndarray:
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
    labels = _unsharded_labels(CloudFiles(subdir_path(src, src_dir), progress=False))
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


# -- transfer, deletion, spatial index, cleaning --------------------------------------------------------


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
        return [int(x) for x in _unsharded_labels(cf)]
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
