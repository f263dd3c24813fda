"""Graphene (PyChunkGraph) L2 meshing, pure compute: numpy in, numpy out.

A ``GrapheneMeshTask`` meshes one graph chunk. Its labels are L2 ids: each is one connected
piece of one object inside one chunk. Marching cubes needs one voxel beyond the chunk on the
high sides, but there the voxels carry the *neighbouring* chunk's L2 ids; the fragment of
an object must instead continue with its own L2 id up to the seam, or the two chunks' meshes
would not meet. ``remap_overlap`` relabels that overlap layer: a voxel takes the L2 id of the
chunk voxel it touches (its coordinates clamped into the chunk) when both belong to the same
root object, and 0 otherwise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["remap_overlap", "chunk_label_mask"]


def remap_overlap(l2: np.ndarray, roots: np.ndarray, core_shape: Sequence[int]) -> np.ndarray:
    """L2 ids of a read box (chunk + overlap on the high sides) with the overlap relabelled.

    Args:
        l2: (x, y, z) L2 ids of the read box; its first ``core_shape`` voxels are the chunk.
        roots: root ids of the same voxels (same shape).
        core_shape: the chunk's shape inside the read box.
    """
    l2 = np.asarray(l2)
    roots = np.asarray(roots)
    if l2.shape != roots.shape:
        raise ValueError(f"L2 ids {l2.shape} and root ids {roots.shape} must cover the same box")
    core = tuple(int(c) for c in core_shape)
    if any(c < 1 or c > s for c, s in zip(core, l2.shape)):
        raise ValueError(f"chunk shape {core} does not fit the read box {l2.shape}")
    idx = np.ix_(*[np.minimum(np.arange(s), c - 1) for s, c in zip(l2.shape, core)])
    inner_l2 = l2[idx]
    inner_roots = roots[idx]
    out = np.where(inner_roots == roots, inner_l2, 0).astype(l2.dtype, copy=False)
    out[: core[0], : core[1], : core[2]] = l2[: core[0], : core[1], : core[2]]
    return np.asfortranarray(out)


def chunk_label_mask(labels: np.ndarray, chunk_ids: np.ndarray, chunk_id: int) -> np.ndarray:
    """Which ``labels`` belong to the chunk ``chunk_id`` (``chunk_ids`` = each label's chunk id)."""
    return (np.asarray(chunk_ids) == np.uint64(chunk_id)) & (np.asarray(labels) != 0)
