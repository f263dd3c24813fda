"""Planning skeletons (SPEC §2.3). The forge is here; merges live in ``skeleton_merge.py`` and
transfer, deletion, spatial index, ``clean`` and SWC in ``skeleton_files.py``, re-exported here
(SPEC §2.3 is one namespace).

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
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import skeletons as fmt
from igneous import spatial
from igneous.errors import InvalidParameterError
from igneous.layerfiles import subdir_path
from igneous.ops.skeleton import SKELETON_BLOCK
from igneous.task_creation.checks import (
    check_ids_exist,
    check_label_list,
    check_nonnegative_int,
    check_number,
    check_same_grid,
    open_segmentation,
)
from igneous.task_creation.common import GridTasks, as_triple, num_tasks, record_provenance, task_kwargs
from igneous.task_creation.skeleton_files import (
    clean_skeleton_intermediates,
    create_skeleton_deletion_tasks,
    create_spatial_index_skeleton_tasks,
    create_xfer_skeleton_tasks,
    finished_labels,
    swc_files,
)
from igneous.task_creation.skeleton_merge import (
    DIR_KEY,
    FORGE_TASK,
    create_flat_graphene_skeleton_merge_tasks,
    create_sharded_skeleton_merge_tasks,
    create_sharded_skeletons_from_unsharded_tasks,
    create_unsharded_skeleton_merge_tasks,
    plan_flat_graphene_merge_prefixes,
    require_skeleton_info,
)
from igneous.tasks.image.voxels import read_voxel_counts, voxel_counts_filename
from igneous.tasks.skeleton import SkeletonTask

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
# also importable (not SPEC §2.3 creators): bounds_from_mesh, synapses_in_space, plan_skeletonizing_tasks, make_forge_task,
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
GRAPHENE_ONLY = ("fix_autapses", "timestamp", "root_ids_cloudpath")


# -- validation ------------------------------------------------------------------------------------


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
        number = check_number(value, f"teasar_params[{key!r}]")
        # kimimaro takes a power-of-two pdrf_exponent as an int (it tests its bits)
        out[key] = int(number) if float(number).is_integer() and key == "pdrf_exponent" else value
    return out


def _check_flag_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


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


def make_forge_task(shape, offset, synapse_index=None, resolution=None, **kwargs) -> SkeletonTask:
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
        make_forge_task,
        synapse_index=plan.synapse_index[:2] if plan.synapse_index else None,
        resolution=plan.synapse_index[2] if plan.synapse_index else None,
        **plan.task_kwargs,
    )
    return GridTasks(plan.bounds, Vec(*plan.shape), make_task=make, finish=finish, clip=False, instantiate=True)


_reexported = (
    clean_skeleton_intermediates, finished_labels, swc_files, plan_flat_graphene_merge_prefixes, require_skeleton_info,
    DIR_KEY,
)  # fmt: skip
