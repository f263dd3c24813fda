"""Pure compute of the obsolete image tasks (SPEC §3.3): remaps and masks, numpy in, numpy out."""

from __future__ import annotations

from typing import Dict, Sequence

import fastremap
import numpy as np

__all__ = ["check_remap_array", "apply_remap", "upsample_mask", "mask_affinities", "consensus_relabel"]


def check_remap_array(remap: np.ndarray) -> None:
    """A watershed remap is a 1-D array of unsigned integers (index = old id, value = new id)."""
    if remap.ndim != 1 or not np.issubdtype(remap.dtype, np.unsignedinteger):
        raise ValueError(
            f"a watershed remap must be a 1-D array of unsigned integers; got {remap.ndim}-D {remap.dtype}"
        )


def apply_remap(image: np.ndarray, remap: np.ndarray) -> np.ndarray:
    """``remap[image]`` in the remap's dtype; an id past the end of ``remap`` is an error, not 0."""
    check_remap_array(remap)
    if image.size and int(image.max()) >= len(remap):
        raise ValueError(f"label {int(image.max())} is not covered by the remap array (it has {len(remap)} entries)")
    if image.size and image.min() < 0:
        raise ValueError(f"label {int(image.min())} is negative and cannot index the remap array")
    return np.asfortranarray(remap[image])


def upsample_mask(mask: np.ndarray, factor: Sequence[int], shape: Sequence[int], start: Sequence[int]) -> np.ndarray:
    """The mask (x, y, z) repeated ``factor`` times per axis, cropped to ``shape`` from ``start``.

    ``start`` is where the wanted box begins inside the upsampled mask (0 ≤ start < factor).
    """
    up = mask
    for axis, f in enumerate(factor):
        if int(f) > 1:
            up = np.repeat(up, int(f), axis=axis)
    sx, sy, sz = (int(v) for v in start)
    ex, ey, ez = (int(a) + int(b) for a, b in zip(start, shape))
    return up[sx:ex, sy:ey, sz:ez]


def mask_affinities(affinities: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Affinities (x, y, z, c) with every channel set to 0 where ``mask`` (x, y, z) is 0."""
    if tuple(mask.shape[:3]) != tuple(affinities.shape[:3]):
        raise ValueError(f"mask shape {mask.shape[:3]} differs from the affinity shape {affinities.shape[:3]}")
    out = np.array(affinities, order="F", copy=True)
    out[np.asarray(mask) == 0] = 0
    return out


def consensus_relabel(image: np.ndarray, cells: Dict[int, Sequence[int]], dtype=np.uint32) -> np.ndarray:
    """Segments listed in ``cells`` (``{cell_id: [segid, …]}``) become their cell id; all others 0."""
    table = {int(segid): int(cell) for cell, segids in cells.items() for segid in segids}
    image = np.asarray(image)
    present = fastremap.unique(image)
    mapping = {int(s): table.get(int(s), 0) for s in present}
    out = fastremap.remap(image, mapping, preserve_missing_labels=False, in_place=False)
    return np.asfortranarray(out.astype(dtype, copy=False))
