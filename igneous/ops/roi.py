"""Regions of interest: bounding boxes of the tissue in a small image (pure numpy, cc3d)."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["shrink_to_axial_length", "tissue_boxes"]


def shrink_to_axial_length(image: np.ndarray, max_axial_length: int) -> Tuple[np.ndarray, int]:
    """Average-pool (2,2,1) until x·y ≤ max_axial_length²; returns the image and the xy factor."""
    import tinybrain

    factor = 1
    while image.shape[0] * image.shape[1] > int(max_axial_length) ** 2 and min(image.shape[:2]) > 1:
        image = tinybrain.downsample_with_averaging(image, (2, 2, 1), num_mips=1)[0]
        factor *= 2
    return image, factor


def tissue_boxes(image: np.ndarray, suppress_faint_voxels=0, dust_threshold: int = 10) -> List[Tuple[int, ...]]:
    """Half-open boxes ``(x0, y0, z0, x1, y1, z1)`` of the 26-connected components of voxels
    brighter than ``suppress_faint_voxels`` (any channel), ignoring components of fewer than
    ``dust_threshold`` voxels."""
    import cc3d

    image = np.asarray(image)
    if image.ndim == 4:
        foreground = np.any(image > suppress_faint_voxels, axis=3)
    else:
        foreground = image > suppress_faint_voxels
    labels = cc3d.connected_components(np.asfortranarray(foreground), connectivity=26)
    if dust_threshold > 0:
        labels = cc3d.dust(labels, threshold=int(dust_threshold), connectivity=26, in_place=True)
    stats = cc3d.statistics(labels)
    boxes = []
    for label, slices in enumerate(stats["bounding_boxes"]):
        if label == 0 or slices is None or stats["voxel_counts"][label] == 0:
            continue
        boxes.append(tuple(int(s.start) for s in slices) + tuple(int(s.stop) for s in slices))
    return sorted(boxes)
