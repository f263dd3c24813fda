"""``compute_rois``: where the tissue is, from the lowest-resolution level (SPEC §2.1, §4.1)."""

from __future__ import annotations

import logging
from typing import List, Optional

from cloudvolume.lib import Bbox, Vec
from tqdm import tqdm

from igneous.errors import InvalidParameterError
from igneous.ops.roi import shrink_to_axial_length, tissue_boxes
from igneous.volumes import open_volume

__all__ = ["compute_rois"]

log = logging.getLogger(__name__)


def compute_rois(
    cloudpath: str,
    progress: bool = False,
    suppress_faint_voxels=0,
    dust_threshold: int = 10,
    max_axial_length: int = 512,
    z_step: Optional[int] = None,
) -> List[Bbox]:
    """Bounding boxes of the tissue, written to ``info.scales[0].rois`` (synchronous).

    The lowest-resolution level is read (in slabs of ``z_step`` z-slices when given, each
    with its own boxes), average-pooled in memory until x·y ≤ ``max_axial_length``², and
    thresholded (voxels > ``suppress_faint_voxels``); each 26-connected component of at
    least ``dust_threshold`` voxels gives a box, scaled to mip-0 voxels.

    Returns:
        The boxes as half-open mip-0 ``Bbox`` es; the info stores them inclusive,
        ``[x0, y0, z0, x1, y1, z1]`` with ``x1`` the last voxel.
    """
    vol = open_volume(cloudpath, 0)
    if int(max_axial_length) < 1:
        raise InvalidParameterError(f"max_axial_length must be >= 1; got {max_axial_length!r}")
    if z_step is not None and int(z_step) < 1:
        raise InvalidParameterError(f"z_step must be >= 1; got {z_step!r}")
    if int(dust_threshold) < 0:
        raise InvalidParameterError(f"dust_threshold must be >= 0; got {dust_threshold!r}")
    mip = len(vol.info["scales"]) - 1
    bounds = vol.meta.bounds(mip)
    step = int(z_step) if z_step else int(bounds.size3()[2])
    slabs = list(range(int(bounds.minpt.z), int(bounds.maxpt.z), step))
    boxes: List[Bbox] = []
    for z in tqdm(slabs, desc="ROI slabs", disable=not progress):
        slab = Bbox((bounds.minpt.x, bounds.minpt.y, z), (bounds.maxpt.x, bounds.maxpt.y, min(z + step, bounds.maxpt.z)))
        vol.mip = mip
        image = vol.download(slab, mip=mip)
        small, factor = shrink_to_axial_length(image, max_axial_length)
        for x0, y0, z0, x1, y1, z1 in tissue_boxes(small, suppress_faint_voxels, dust_threshold):
            lo = slab.minpt + Vec(x0 * factor, y0 * factor, z0)
            hi = slab.minpt + Vec(x1 * factor, y1 * factor, z1)
            box = Bbox.clamp(vol.bbox_to_mip(Bbox(lo, hi), mip, 0), vol.meta.bounds(0))
            boxes.append(box)
    vol.info["scales"][0]["rois"] = [box.minpt.tolist() + (box.maxpt - 1).tolist() for box in boxes]
    vol.commit_info()
    log.info("%d regions of interest written to %s", len(boxes), cloudpath)
    return boxes
