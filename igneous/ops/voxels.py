"""Voxel counting: how many voxels each label has (pure numpy, no storage).

Counts are kept as a pair of arrays ``(labels uint64, counts uint64)`` sorted by label, so
partial counts from slabs, tasks or files merge exactly (no float weights) and cheaply.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Tuple

import fastremap
import numpy as np

__all__ = ["Counts", "count_labels", "merge_counts", "counts_from_json", "counts_to_json", "intmap_key"]

Counts = Tuple[np.ndarray, np.ndarray]

_INT64_SPAN = 2**64


def count_labels(img: np.ndarray) -> Counts:
    """``(labels, counts)`` of every value in ``img`` (label 0 included), sorted by label."""
    labels, counts = fastremap.unique(np.asarray(img), return_counts=True)
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
