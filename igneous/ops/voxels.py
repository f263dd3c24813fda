"""Voxel counting: how many voxels each label has (pure numpy, no storage).

Counts are kept as a pair of arrays ``(labels uint64, counts uint64)`` sorted by label, so
partial counts from slabs, tasks or files merge exactly (no float weights) and cheaply.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Tuple

import cc3d
import fastremap
import numpy as np

__all__ = [
    "Counts",
    "Boxes",
    "count_labels",
    "merge_counts",
    "counts_from_json",
    "counts_to_json",
    "intmap_key",
    "label_bboxes",
    "merge_bboxes",
]

Counts = Tuple[np.ndarray, np.ndarray]
Boxes = Tuple[np.ndarray, np.ndarray, np.ndarray]  # labels (n,), lo (n, 3), hi (n, 3): half-open voxels

_INT64_SPAN = 2**64


def count_labels(img: np.ndarray) -> Counts:
    """``(labels, counts)`` of every value in ``img`` (label 0 included), sorted by label."""
    img = np.asarray(img)
    if img.ndim == 4 and img.shape[3] == 1:
        img = img[..., 0]  # fastremap copies a 4-D cutout first: 3x slower
    labels, counts = fastremap.unique(img, return_counts=True)
    return labels.astype(np.uint64, copy=False), counts.astype(np.uint64, copy=False)


def merge_counts(parts: Iterable[Counts]) -> Counts:
    """Sum partial counts label by label: one sorted ``(labels, counts)`` pair.

    Exact in uint64 (a sort and ``np.add.reduceat``), whatever the number of parts.
    """
    parts = list(parts)
    if not parts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    labels = np.concatenate([np.asarray(p[0], dtype=np.uint64) for p in parts])
    counts = np.concatenate([np.asarray(p[1], dtype=np.uint64) for p in parts])
    if labels.size == 0:
        return labels, counts
    order = np.argsort(labels, kind="stable")
    labels, counts = labels[order], counts[order]
    starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    return labels[starts], np.add.reduceat(counts, starts)


def counts_to_json(counts: Counts) -> dict:
    """The ``{"segid": count}`` object a ``CountVoxelsTask`` writes (SPEC §3.1)."""
    labels, values = counts
    return {str(label): int(value) for label, value in zip(labels.tolist(), values.tolist())}


def counts_from_json(obj: Mapping) -> Counts:
    """Inverse of :func:`counts_to_json`; keys and values are decimal integers."""
    labels = np.fromiter((int(k) for k in obj.keys()), dtype=np.uint64, count=len(obj))
    values = np.fromiter((int(v) for v in obj.values()), dtype=np.uint64, count=len(obj))
    order = np.argsort(labels, kind="stable")
    return labels[order], values[order]


def intmap_key(label) -> int:
    """The key to look ``label`` up in a mapbuffer ``IntMap``.

    mapbuffer's binary search takes a C ``ssize_t``: a label ≥ 2^63 raises OverflowError
    unless it is passed as its int64 two's-complement view, which finds the right entry.
    """
    label = int(label)
    return label - _INT64_SPAN if label >= 2**63 else label


def label_bboxes(img: np.ndarray, origin=(0, 0, 0)) -> Boxes:
    """Bounding box of every non-zero label: ``(labels, lo, hi)`` sorted by label, ``[lo, hi)``
    in voxels with ``img[0, 0, 0]`` at ``origin``.

    Labels are renumbered first (cc3d sizes its tables by the largest label).
    """
    img = np.asarray(img)
    if img.ndim == 4:
        img = img[..., 0]
    renumbered, mapping = fastremap.renumber(img, preserve_zero=True, in_place=False)
    originals = np.zeros(max(mapping.values(), default=0) + 1, dtype=np.uint64)
    for orig, new in mapping.items():
        originals[new] = orig
    stats = cc3d.statistics(renumbered)
    found = [(new, s) for new, s in enumerate(stats["bounding_boxes"]) if new != 0 and s is not None]
    labels = originals[[new for new, _ in found]] if found else np.zeros(0, dtype=np.uint64)
    lo = np.array([[sl.start for sl in s[:3]] for _, s in found], dtype=np.int64).reshape(-1, 3)
    hi = np.array([[sl.stop for sl in s[:3]] for _, s in found], dtype=np.int64).reshape(-1, 3)
    lo += np.asarray(origin, dtype=np.int64)
    hi += np.asarray(origin, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    return labels[order], lo[order], hi[order]


def merge_bboxes(parts: Iterable[Boxes]) -> Boxes:
    """Union of the boxes of each label over ``parts`` (e.g. slabs of one cutout)."""
    parts = list(parts)
    if not parts:
        return np.zeros(0, np.uint64), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64)
    labels = np.concatenate([p[0] for p in parts]).astype(np.uint64, copy=False)
    lo = np.concatenate([p[1] for p in parts])
    hi = np.concatenate([p[2] for p in parts])
    if labels.size == 0:
        return labels, lo, hi
    order = np.argsort(labels, kind="stable")
    labels, lo, hi = labels[order], lo[order], hi[order]
    starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    return labels[starts], np.minimum.reduceat(lo, starts, axis=0), np.maximum.reduceat(hi, starts, axis=0)
