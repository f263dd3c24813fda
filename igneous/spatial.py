"""The forge grid and its per-box files, shared by meshes and skeletons (SPEC §4.2, §4.3).

A forge (``MeshTask``, ``SkeletonTask``) tiles a layer at its mip into task boxes and writes,
per box, under its sub-directory (``{mesh_dir}`` or ``{skel_dir}``):

* ``{BBOX}.frags`` (sharded forges): a MapBuffer ``{segid: fragment bytes}``; BBOX =
  ``Bbox.to_filename()`` of the task box in voxels, without overlap (:func:`frags_filename`);
* ``{BBOX_nm}.spatial`` **last**, even when ``{}``: gzip JSON ``{"segid": [x0, y0, z0, x1, y1,
  z1]}`` in integer nm. Its presence means "this box is finished"; merges list the expected
  names (:func:`expected_spatial_names`) and refuse while any is missing.

The sub-info records the grid: ``spatial_index {resolution, chunk_size = shape·resolution}``
(:func:`spatial_index_info`), from which every expected name can be rebuilt.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.lib import Bbox, Vec, getprecision

__all__ = [
    "spatial_index_info",
    "plain_number",
    "spatial_index_filename",
    "box_from_spatial_filename",
    "frags_filename",
    "frags_filename_from_spatial",
    "grid_boxes",
    "grid_shape",
    "expected_spatial_names",
    "missing_spatial_boxes",
]


def plain_number(x):
    """JSON-ready number that keeps an int an int (the .spatial name precision depends on it)."""
    x = x.item() if isinstance(x, np.generic) else x
    return int(x) if isinstance(x, (int, np.integer)) else float(x)


def spatial_index_info(shape: Sequence[int], resolution: Sequence[float]) -> dict:
    """The ``spatial_index`` entry of a mesh or skeleton info for a forge grid of ``shape``."""
    return {
        "resolution": [plain_number(r) for r in resolution],
        "chunk_size": [plain_number(s * r) for s, r in zip(shape, resolution)],
    }


def spatial_index_filename(box_vox: Bbox, resolution_json: Sequence) -> str:
    """CloudVolume's name for the index file of a voxel box (its precision rule, exactly).

    ``resolution_json`` must be the resolution as it reads back from the sub-info JSON:
    ``[8, 8, 40]`` gives ``1184-1312_…`` but ``[8.0, 8.0, 40.0]`` gives ``1184.0-1312.0_…``.
    """
    precision = max(getprecision(r) for r in resolution_json)
    res = Vec(*resolution_json, dtype=int if precision == 0 else float)
    minpt = Vec(*box_vox.minpt).astype(res.dtype) * res
    maxpt = Vec(*box_vox.maxpt).astype(res.dtype) * res
    return Bbox(minpt, maxpt).to_filename(precision) + ".spatial"


def box_from_spatial_filename(name: str, resolution_json: Sequence) -> Bbox:
    """The voxel box of a ``.spatial`` name (the inverse of :func:`spatial_index_filename`)."""
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".spatial"):
        base = base[: -len(".spatial")]
    nm = Bbox.from_filename(base, dtype=float)  # the default dtype=int truncates decimals
    res = np.asarray(resolution_json, dtype=float)
    return Bbox(np.rint(nm.minpt / res).astype(np.int64), np.rint(nm.maxpt / res).astype(np.int64))


def frags_filename(box: Bbox) -> str:
    return f"{box.to_filename()}.frags"


def frags_filename_from_spatial(name: str, resolution_json: Sequence) -> str:
    return frags_filename(box_from_spatial_filename(name, resolution_json))


def grid_boxes(bounds: Bbox, shape: Sequence[int]) -> Iterator[Bbox]:
    """The forge grid: cells of ``shape`` from ``bounds.minpt``, x fastest, clipped to bounds."""
    shape = Vec(*shape)
    size = bounds.size3()
    counts = [int(math.ceil(s / sh)) for s, sh in zip(size, shape)]
    for z in range(counts[2]):
        for y in range(counts[1]):
            for x in range(counts[0]):
                lo = bounds.minpt + Vec(x, y, z) * shape
                yield Bbox(lo, Vec(*np.minimum(lo + shape, bounds.maxpt)))


def grid_shape(sub_info: dict) -> np.ndarray:
    """The forge task shape (voxels) recorded by a sub-info's ``spatial_index``."""
    si = sub_info["spatial_index"]
    return np.rint(np.asarray(si["chunk_size"], dtype=float) / np.asarray(si["resolution"], dtype=float)).astype(int)


def expected_spatial_names(bounds: Bbox, sub_info: dict) -> list[str]:
    """Every ``.spatial`` name a complete forge of ``bounds`` (voxels, forge mip) has written,
    in :func:`grid_boxes` order.

    The grid is separable, so each axis's ``lo-hi`` texts are rendered once (with the same
    numpy arithmetic and precision rule as :func:`spatial_index_filename`) and joined: a
    91k-box plan costs milliseconds instead of seconds of per-box ``Bbox`` work.
    """
    res_json = sub_info["spatial_index"]["resolution"]
    precision = max(getprecision(r) for r in res_json)
    res = Vec(*res_json, dtype=int if precision == 0 else float)
    shape = grid_shape(sub_info)
    lo, hi = Vec(*bounds.minpt), Vec(*bounds.maxpt)

    def render(x) -> str:  # Bbox.to_filename's rendering of one coordinate
        return f"{round(x, precision):.{precision}f}" if precision else str(x)

    axes = []
    for i in range(3):
        starts = np.arange(int(lo[i]), int(hi[i]), int(shape[i]), dtype=np.int64)
        stops = np.minimum(starts + int(shape[i]), int(hi[i]))
        nm_lo = starts.astype(res.dtype) * res[i]
        nm_hi = stops.astype(res.dtype) * res[i]
        axes.append([f"{render(a)}-{render(b)}" for a, b in zip(nm_lo, nm_hi)])
    xs, ys, zs = axes
    return [f"{x}_{y}_{z}.spatial" for z in zs for y in ys for x in xs]


def missing_spatial_boxes(layer_path: str, subdir: str, bounds: Bbox, sub_info: dict) -> tuple[list[str], int]:
    """``(missing .spatial names, number expected)`` for a forge of ``bounds`` into ``subdir``."""
    names = expected_spatial_names(bounds, sub_info)
    cf = CloudFiles(layer_path)
    found = cf.exists([f"{subdir}/{n}" for n in names])
    missing = [n for n in names if not found[f"{subdir}/{n}"]]
    return missing, len(names)
