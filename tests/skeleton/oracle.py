"""Comparing merged skeletons with kimimaro on the whole volume (numpy + scipy only)."""

from __future__ import annotations

import cc3d
import numpy as np
from scipy.spatial import cKDTree


def components(skel) -> int:
    return len(skel.components()) if len(skel.vertices) else 0


def label_is_connected(seg: np.ndarray, label: int) -> bool:
    return cc3d.connected_components(seg == label, connectivity=26, return_N=True)[1] == 1


def compare(ours: dict, whole: dict, seg: np.ndarray, resolution, min_cable: float) -> dict:
    """Per label above dust: components, cable ratio and the distance (in voxels) of each of our
    vertices to the whole-volume skeleton's vertices. Above dust = whole-volume cable of at least
    twice ``min_cable`` (a label near the threshold may fall on either side of it)."""
    res = np.asarray(resolution, dtype=np.float64)
    out = {}
    for label, w in whole.items():
        if w.cable_length() < 2 * min_cable:
            continue
        s = ours.get(label)
        if s is None or len(s.vertices) == 0:
            out[label] = None
            continue
        dist, _ = cKDTree(np.asarray(w.vertices) / res).query(np.asarray(s.vertices) / res)
        out[label] = {
            "components": components(s),
            "connected_label": label_is_connected(seg, label),
            "ratio": s.cable_length() / w.cable_length(),
            "cable": s.cable_length(),
            "whole_cable": w.cable_length(),
            "far": float(np.mean(dist > 2.0)),
            "vertices": len(s.vertices),
        }
    return out


def summary(result: dict) -> dict:
    found = [r for r in result.values() if r is not None]
    ratios = np.asarray([r["ratio"] for r in found])
    return {
        "labels": len(result),
        "missing": [k for k, v in result.items() if v is None],
        "split": [k for k, r in result.items() if r and r["connected_label"] and r["components"] != 1],
        "total_ratio": sum(r["cable"] for r in found) / sum(r["whole_cable"] for r in found),
        "within_5pct": float(np.mean(np.abs(ratios - 1) <= 0.05)),
        "median_ratio": float(np.median(ratios)),
        "far_vertices": sum(r["far"] * r["vertices"] for r in found) / sum(r["vertices"] for r in found),
    }
