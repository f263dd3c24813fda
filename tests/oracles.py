"""Whole-volume references that distributed results are compared with.

These call the field's libraries directly on the whole in-memory array; they never
call igneous code.
"""

from __future__ import annotations

import numpy as np
import tinybrain
import tinybrain.downsample

METHODS = {
    "avg": lambda img, f, n, sparse: tinybrain.downsample_with_averaging(img, f, num_mips=n, sparse=sparse),
    "mode": lambda img, f, n, sparse: tinybrain.downsample_segmentation(img, f, num_mips=n, sparse=sparse),
    "min": lambda img, f, n, sparse: tinybrain.downsample.downsample_with_min_pooling(img, f, num_mips=n),
    "max": lambda img, f, n, sparse: tinybrain.downsample_with_max_pooling(img, f, num_mips=n),
    "striding": lambda img, f, n, sparse: tinybrain.downsample_with_striding(img, f, num_mips=n),
}


def tinybrain_pyramid(whole: np.ndarray, factor, num_mips: int, method: str, sparse: bool = False):
    """tinybrain on the whole array, levels 1..num_mips.

    Precomputed levels have ceil(n / f) voxels per axis: the last voxel of an odd axis
    summarises the voxels that exist. tinybrain computes that when the extent is a
    multiple of f**num_mips, so the whole array is edge-extended to one and the levels
    cropped (extending an edge repeats each voxel of an edge block equally often).
    """
    if whole.ndim == 3:
        whole = whole[..., np.newaxis]
    mult = [f**num_mips for f in factor]
    pads = [(0, (-s) % m) for s, m in zip(whole.shape[:3], mult)] + [(0, 0)]
    padded = np.asfortranarray(np.pad(whole, pads, mode="edge"))
    levels = METHODS[method](padded, tuple(factor), num_mips, sparse)
    out = []
    for k, lvl in enumerate(levels, start=1):
        shp = [-(-s // f**k) for s, f in zip(whole.shape[:3], factor)]
        out.append(lvl[: shp[0], : shp[1], : shp[2]])
    return out


# -- meshes (docs/design-meshing.md §4.2) ----------------------------------------------------------


def mesh_weld(v, f):
    """Exact duplicates → one vertex; degenerate faces dropped."""
    v = np.asarray(v, dtype=np.float32).reshape(-1, 3)
    f = np.asarray(f, dtype=np.int64).reshape(-1, 3)
    if len(v) == 0:
        return v, f
    v = np.ascontiguousarray(v)
    rows = v.view(np.dtype((np.void, 12))).reshape(-1)  # one sortable key per row: fast unique
    _, first, inv = np.unique(rows, return_index=True, return_inverse=True)
    uv, f = v[first], inv.reshape(-1)[f]
    return uv, f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]


def surface_area(v, f) -> float:
    t = np.asarray(v, dtype=np.float64)[np.asarray(f, dtype=np.int64)]
    return float(0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum())


def edge_use(f) -> tuple[int, int]:
    """(#boundary edges, #non-manifold edges) of a welded mesh."""
    f = np.asarray(f, dtype=np.int64)
    if len(f) == 0:
        return 0, 0
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, c = np.unique(e[:, 0] * (int(f.max()) + 1) + e[:, 1], return_counts=True)
    return int((c == 1).sum()), int((c > 2).sum())


def is_closed(v, f) -> bool:
    return edge_use(mesh_weld(v, f)[1])[0] == 0


def zmesh_whole_volume(labels, resolution, voxel_offset, closed_edges=True, reduction_factor=0, max_error=None):
    """zmesh on the whole array: ``{label: (vertices nm, faces)}``, voxel-centred, absolute nm."""
    import zmesh

    mesher = zmesh.Mesher(tuple(float(r) for r in resolution))
    mesher.mesh(np.asfortranarray(labels), close=closed_edges)
    shift = (np.asarray(voxel_offset, dtype=np.float64) - (1 if closed_edges else 0)) * np.asarray(resolution)
    out = {}
    for label in mesher.ids():
        m = mesher.get(label, normals=False, reduction_factor=reduction_factor, max_error=max_error, voxel_centered=True)
        mesher.erase(label)
        out[int(label)] = ((m.vertices.astype(np.float64) + shift).astype(np.float32), m.faces)
    return out
