"""Planning connected components over a whole layer (SPEC §2.1 ``create_ccl_*``, §3.2).

Four steps share one task grid and one set of options: ``create_ccl_face_tasks`` (pass 1)
records them in ``{key}/ccl/params.json``; ``create_ccl_equivalence_tasks`` (pass 2),
``create_relabeling`` (synchronous) and ``create_ccl_relabel_tasks`` (pass 4) refuse to run
with other options, or before the step they need has finished.

Each creator is validate → pure plan (:func:`plan_ccl`, :func:`plan_ccl_relabel`: task
count, grid, files to be written; nothing written) → write → lazy task grid.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from igneous.errors import InvalidParameterError
from igneous.ops.ccl import labels_per_task, smallest_uint
from igneous.task_creation.common import GridTasks, record_provenance, task_kwargs
from igneous.task_creation.transfer import check_distinct_layers
from igneous.tasks.image.ccl import CCLEquivalancesTask, CCLFacesTask, RelabelCCLTask
from igneous.tasks.image.ccl_layout import (
    FACES,
    CCLGrid,
    CCLParams,
    equivalences_path,
    face_path,
    max_label_path,
    params_path,
)
from igneous.tasks.image.ccl_relabel import (
    check_connectivity,
    check_triple,
    clean_intermediate_files,
    create_relabeling,
    missing_files,
    read_max_label,
    read_params,
    recorded_params,
)
from igneous.volumes import check_encoding, clean_xfer_info, normalize_encoding, open_volume, set_encoding

__all__ = [
    "create_ccl_face_tasks",
    "create_ccl_equivalence_tasks",
    "create_relabeling",
    "create_ccl_relabel_tasks",
    "clean_intermediate_files",
    "CCLPlan",
    "RelabelPlan",
    "plan_ccl",
    "plan_ccl_relabel",
    "check_no_other_run",
    "unfinished_tasks",
    "LABEL_ENCODINGS",
]

log = logging.getLogger(__name__)

DEFAULT_SHAPE = (512, 512, 512)
# Lossless codecs that store unsigned labels of any width (compressed_segmentation: 32/64 bits).
LABEL_ENCODINGS = ("compresso", "crackle", "compressed_segmentation", "raw")


@dataclass(frozen=True)
class CCLPlan:
    """What one CCL run over a layer will do; computing it reads only the layer's info."""

    cloudpath: str
    mip: int
    key: str
    grid: CCLGrid
    params: CCLParams
    dtype: str

    @property
    def num_tasks(self) -> int:
        return self.grid.num_tasks

    def files(self, step: str) -> Dict[str, int]:
        """``{path pattern: how many}`` that ``step`` (faces, links, calc-labels) writes under the layer."""
        t = self.num_tasks
        ccl = f"{self.key}/ccl"
        if step == "faces":
            out = {f"{ccl}/params.json": 1, f"{ccl}/faces/{{gx}}-{{gy}}-{{gz}}-{{xy,xz,yz}}.ckl": 3 * t}
            out[f"{ccl}/labels/{{gx}}-{{gy}}-{{gz}}.npy"] = t
            out[f"{ccl}/leading/{{gx}}-{{gy}}-{{gz}}.npy"] = t
            if self.params.dust_threshold:
                out[f"{ccl}/counts/{{gx}}-{{gy}}-{{gz}}.u64"] = t
            return out
        if step == "links":
            return {f"{ccl}/equivalences/{{gx}}-{{gy}}-{{gz}}.json": t}
        if step == "calc-labels":
            return {f"{ccl}/relabel/{{task_num}}.json": t, f"{ccl}/max_label.json": 1}
        raise ValueError(f"unknown step {step!r}")


def _number(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{name} must be a number; got {value!r}")
    if not math.isfinite(float(value)):
        raise InvalidParameterError(f"{name} must be a finite number; got {value!r}")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _check_thresholds(vol: CloudVolume, path: str, gte, lte):
    """Thresholds must select some voxel values and leave some out, in the layer's dtype."""
    gte, lte = _number(gte, "threshold_gte"), _number(lte, "threshold_lte")
    dtype = np.dtype(vol.dtype)
    if gte is None and lte is None:
        if not np.issubdtype(dtype, np.integer):
            raise InvalidParameterError(
                f"{path} holds {dtype.name} values: give threshold_gte and/or threshold_lte to say what is foreground"
            )
        return gte, lte
    if vol.layer_type == "segmentation":
        for name, value in (("threshold_gte", gte), ("threshold_lte", lte)):
            if value is not None and float(value) != int(value):
                raise InvalidParameterError(
                    f"{name}={value} on the segmentation {path}: labels are whole-number ids, so a fractional "
                    f"threshold has no meaning"
                )
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo = info.min if gte is None else max(info.min, math.ceil(gte))
        hi = info.max if lte is None else min(info.max, math.floor(lte))
        every = (gte is None or gte <= info.min) and (lte is None or lte >= info.max)
    else:
        lo = -math.inf if gte is None else gte
        hi = math.inf if lte is None else lte
        every = False
    shown = " and ".join(
        f"{name}={value}" for name, value in (("threshold_gte", gte), ("threshold_lte", lte)) if value is not None
    )
    if lo > hi:
        raise InvalidParameterError(f"{shown} selects no {dtype.name} value: every voxel would be background")
    if every:
        raise InvalidParameterError(
            f"{shown} selects every {dtype.name} value: the whole volume would be one component"
        )
    return gte, lte


def plan_ccl(
    cloudpath: str,
    mip: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    threshold_gte=None,
    threshold_lte=None,
    dust_threshold: int = 0,
    connectivity: int = 6,
) -> CCLPlan:
    """Validate the options of a CCL run and describe it, writing nothing.

    Raises:
        InvalidParameterError: no layer or mip, several channels, a float image without a
            threshold, thresholds that select nothing or everything, connectivity other than
            6/18/26, a negative dust threshold, a non-positive shape.
    """
    vol = open_volume(cloudpath, mip)
    if vol.num_channels != 1:
        raise InvalidParameterError(f"CCL labels one channel; {cloudpath} has {vol.num_channels}")
    shape = check_triple(shape, "shape")
    connectivity = check_connectivity(connectivity)
    if isinstance(dust_threshold, bool) or int(dust_threshold) != dust_threshold or dust_threshold < 0:
        raise InvalidParameterError(f"dust_threshold must be a whole number of voxels >= 0; got {dust_threshold!r}")
    gte, lte = _check_thresholds(vol, cloudpath, threshold_gte, threshold_lte)
    grid = CCLGrid.of(vol, mip, shape)
    if grid.num_tasks * labels_per_task(shape) >= 2**64:
        raise InvalidParameterError(f"{grid.num_tasks} tasks of shape {shape} need labels beyond uint64")
    params = CCLParams(shape, connectivity, gte, lte, int(dust_threshold))
    return CCLPlan(cloudpath, mip, vol.meta.key(mip), grid, params, np.dtype(vol.dtype).name)


def _task_grid(plan: CCLPlan, task_fn, name: str, fill_missing: bool, **extra) -> GridTasks:
    params = plan.params
    kwargs = task_kwargs(
        **extra,
        mip=plan.mip,
        threshold_gte=params.threshold_gte,
        threshold_lte=params.threshold_lte,
        fill_missing=bool(fill_missing),
        dust_threshold=params.dust_threshold,
    )
    if params.connectivity != 6:  # 6-connected messages stay exactly the reference's
        kwargs["connectivity"] = params.connectivity
    record_to = extra.get("dest_path", extra.get("cloudpath"))
    finish = functools.partial(record_provenance, record_to, name, {**kwargs, "shape": list(params.shape)})
    return GridTasks(plan.grid.bounds, params.shape, functools.partial(task_fn, **kwargs), finish)


def _check_same_run(plan: CCLPlan, recorded: CCLParams, step: str) -> None:
    diffs = recorded.differences(plan.params)
    if diffs:
        raise InvalidParameterError(
            f"{step} options differ from the faces step recorded in {params_path(plan.key)} "
            f"({'; '.join(d.replace(' vs ', ' there, ') + ' here' for d in diffs)}); use the same options"
        )


def create_ccl_face_tasks(
    cloudpath: str,
    mip: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    threshold_gte=None,
    threshold_lte=None,
    fill_missing: bool = False,
    dust_threshold: int = 0,
    connectivity: int = 6,
) -> GridTasks:
    """CCL pass 1: one ``CCLFacesTask`` per ``shape`` box of the layer at ``mip``.

    Each task reads its box plus one voxel per axis (``shape+1`` cubed voxels of the layer's
    dtype; peak memory about 1.5× that as uint32 labels are added), thresholds it, labels it
    with cc3d and writes its faces and labels under ``{key}/ccl/``.

    Args:
        cloudpath: the layer: integer labels, or any image with a threshold.
        mip: the level to label.
        shape: task shape; every later step must use the same one.
        threshold_gte, threshold_lte: foreground is ``gte <= value <= lte`` (either may be
            None); without them the values are labels and each value's regions are separate
            components.
        fill_missing: read missing chunks as background instead of failing.
        dust_threshold: drop components of fewer voxels, counted over the whole volume.
        connectivity: 6 (faces), 18 (+edges) or 26 (+corners), across task seams too.

    Raises:
        InvalidParameterError: see :func:`plan_ccl`; also when ``ccl/`` holds a run with
            other options (clean it first).
    """
    plan = plan_ccl(cloudpath, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    cf = CloudFiles(CloudVolume(cloudpath, progress=False).meta.cloudpath, progress=False)
    recorded = check_no_other_run(plan, cf)
    if recorded is None:
        cf.put(params_path(plan.key), plan.params.dumps(), content_type="application/json", compress=None)
    return _task_grid(plan, CCLFacesTask, "CCLFacesTask", fill_missing, cloudpath=cloudpath)


def check_no_other_run(plan: CCLPlan, cf: CloudFiles) -> Optional[CCLParams]:
    """The options a run at ``plan``'s layer and mip recorded (None: no run yet); refused when
    they differ from ``plan``'s."""
    recorded = read_params(cf, plan.key)
    if recorded is not None and recorded.differences(plan.params):
        raise InvalidParameterError(
            f"{plan.cloudpath} mip {plan.mip} holds a CCL run with other options "
            f"({'; '.join(recorded.differences(plan.params))} there vs here); finish it, or run "
            f"`igneous image ccl clean` first"
        )
    return recorded


def _expected(plan: CCLPlan, step: str):
    """``(directory, expected paths, grid points)`` of the files that mark a step's tasks done."""
    points = list(plan.grid.gridpoints())
    if step == "faces":
        paths = [face_path(plan.key, p, face) for p in points for face in FACES]
        return f"{plan.key}/ccl/faces/", paths, [p for p in points for _ in FACES]
    if step == "links":
        return f"{plan.key}/ccl/equivalences/", [equivalences_path(plan.key, p) for p in points], points
    raise ValueError(step)


def unfinished_tasks(plan: CCLPlan, step: str) -> int:
    """How many ``step`` (faces or links) tasks have not written their files."""
    directory, paths, points = _expected(plan, step)
    cf = CloudFiles(CloudVolume(plan.cloudpath, progress=False).meta.cloudpath, progress=False)
    missing = set(missing_files(cf, directory, paths))
    return len({points[i] for i, name in enumerate(paths) if name in missing})


def create_ccl_equivalence_tasks(
    cloudpath: str,
    mip: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    threshold_gte=None,
    threshold_lte=None,
    fill_missing: bool = False,
    dust_threshold: int = 0,
    connectivity: int = 6,
) -> GridTasks:
    """CCL pass 2: one ``CCLEquivalancesTask`` per box; same options as pass 1 (refused otherwise).

    A task reads its labels back (the copy pass 1 wrote) and its lower neighbours'
    faces, and writes the links between them. Refused until every face of pass 1 exists.
    """
    plan = plan_ccl(cloudpath, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    _check_same_run(plan, recorded_params(open_volume(cloudpath, mip), mip, "links"), "links")
    missing = unfinished_tasks(plan, "faces")
    if missing:
        raise InvalidParameterError(
            f"{missing} of {plan.num_tasks} faces tasks have not finished (their ccl/faces files are missing); "
            f"run `igneous image ccl faces` to completion first"
        )
    return _task_grid(plan, CCLEquivalancesTask, "CCLEquivalancesTask", fill_missing, cloudpath=cloudpath)


@dataclass(frozen=True)
class RelabelPlan:
    """The destination of a CCL run: its dtype (None until calc-labels ran), encoding, chunk size."""

    ccl: CCLPlan
    dest_path: str
    encoding: str
    chunk_size: tuple
    max_label: Optional[int]

    @property
    def dtype(self) -> Optional[str]:
        if self.max_label is None:
            return None
        at_least = np.uint32 if self.encoding == "compressed_segmentation" else np.uint8
        return smallest_uint(self.max_label, at_least).name


def plan_ccl_relabel(
    src_path: str,
    dest_path: str,
    mip: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    chunk_size: Optional[Sequence[int]] = None,
    encoding: Optional[str] = None,
    threshold_gte=None,
    threshold_lte=None,
    dust_threshold: int = 0,
    connectivity: int = 6,
    require_labels: bool = True,
) -> RelabelPlan:
    """Validate the relabel step (and the whole run), writing nothing.

    With ``require_labels=False`` it can be checked before the run starts (``ccl auto``):
    everything but the existence of ``ccl/max_label.json``.
    """
    check_distinct_layers(src_path, dest_path)
    plan = plan_ccl(src_path, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    vol = open_volume(src_path, mip)
    enc = normalize_encoding(encoding) or "compresso"
    if enc not in LABEL_ENCODINGS:
        raise InvalidParameterError(
            f"encoding {enc} cannot store labels losslessly; use one of {', '.join(LABEL_ENCODINGS)}"
        )
    chunk = tuple(int(c) for c in vol.meta.chunk_size(mip)) if chunk_size is None else check_triple(chunk_size, "chunk_size")
    for axis, (s, c, g) in enumerate(zip(plan.params.shape, chunk, plan.grid.grid_size)):
        if g > 1 and s % c:
            raise InvalidParameterError(
                f"shape {','.join(map(str, plan.params.shape))} is not a multiple of the destination chunk size "
                f"{','.join(map(str, chunk))} on {'xyz'[axis]}: tasks would share chunks; choose a shape made of "
                f"whole chunks (or --chunk-size that divides it)"
            )
    max_label = None
    if require_labels:
        _check_same_run(plan, recorded_params(vol, mip, "relabel"), "relabel")
        cf = CloudFiles(vol.meta.cloudpath, progress=False)
        max_label = read_max_label(cf, plan.key)
        if max_label is None:
            raise InvalidParameterError(
                f"{max_label_path(plan.key)} is missing: run `igneous image ccl calc-labels` before relabel"
            )
    relabel = RelabelPlan(plan, dest_path, enc, chunk, max_label)
    if max_label is not None:
        check_encoding(enc, relabel.dtype, 1)
    _check_existing_dest(relabel, vol)
    return relabel


def _check_existing_dest(relabel: RelabelPlan, src: CloudVolume) -> None:
    """An existing destination must be the layer this run writes (its dtype too, once known)."""
    existing = _existing_info(relabel.dest_path)
    if existing is None:
        return
    mip = relabel.ccl.mip
    have, want = _layout(existing, mip), _layout(_dest_info(src, relabel), mip)
    if relabel.dtype is None:
        have.pop("data_type"), want.pop("data_type")
    if have != want:
        diffs = "; ".join(f"{k} {have[k]} there, {want[k]} here" for k in want if have.get(k) != want[k])
        raise InvalidParameterError(f"{relabel.dest_path} already exists as another layer ({diffs}); choose a new destination")


def _dest_info(src: CloudVolume, relabel: RelabelPlan) -> dict:
    mip = relabel.ccl.mip
    info = copy.deepcopy(src.info)
    info["scales"] = info["scales"][: mip + 1]
    clean_xfer_info(info)
    info.update(type="segmentation", data_type=relabel.dtype or "uint64", num_channels=1)
    for scale in info["scales"]:
        scale.pop("sharding", None)
    info["scales"][mip]["chunk_sizes"] = [list(relabel.chunk_size)]
    dest = CloudVolume(relabel.dest_path, info=info, progress=False, cdn_cache=False)
    for m in range(mip + 1):
        set_encoding(dest, m, relabel.encoding)
    return dest.info


def _existing_info(path: str) -> Optional[dict]:
    # Read the file itself: CloudVolume would probe other formats (zarr, n5, …) for a missing layer.
    return CloudFiles(path, progress=False).get_json("info")


def create_ccl_relabel_tasks(
    src_path: str,
    dest_path: str,
    mip: int,
    shape: Sequence[int] = DEFAULT_SHAPE,
    chunk_size: Optional[Sequence[int]] = None,
    encoding: Optional[str] = None,
    threshold_gte=None,
    threshold_lte=None,
    fill_missing: bool = False,
    dust_threshold: int = 0,
    connectivity: int = 6,
) -> GridTasks:
    """CCL pass 4: one ``RelabelCCLTask`` per box writes its final ids to a new layer.

    The destination is the source's info truncated to ``mip``, without mesh/skeleton keys
    or sharding, of the narrowest unsigned dtype that holds ``max_label`` (uint32 at least
    for compressed_segmentation), with ``encoding`` (default compresso, like the CLI) and
    ``chunk_size`` at ``mip``. An existing destination must already be exactly that layer.

    Raises:
        InvalidParameterError: destination equal to the source, calc-labels not run, options
            that differ from the faces step, a shape that is not whole destination chunks,
            an encoding that cannot store labels.
    """
    relabel = plan_ccl_relabel(
        src_path, dest_path, mip, shape, chunk_size, encoding, threshold_gte, threshold_lte, dust_threshold,
        connectivity,
    )  # fmt: skip
    info = _dest_info(open_volume(src_path, mip), relabel)
    existing = _existing_info(dest_path)
    if existing is None or existing != info:
        CloudVolume(dest_path, info=info, progress=False, cdn_cache=False).commit_info()
    return _task_grid(relabel.ccl, RelabelCCLTask, "RelabelCCLTask", fill_missing, src_path=src_path,
                      dest_path=dest_path)  # fmt: skip


def _layout(info: dict, mip: int) -> dict:
    scale = info["scales"][mip] if mip < len(info["scales"]) else {}
    return {
        "data_type": info.get("data_type"),
        "size": scale.get("size"),
        "voxel_offset": scale.get("voxel_offset"),
        "resolution": scale.get("resolution"),
        "chunk_sizes": scale.get("chunk_sizes"),
        "encoding": scale.get("encoding"),
    }

