"""Spatial index tasks (wire module ``igneous.tasks.spatial_index``, SPEC §3.6, §3.7).

``SpatialIndexTask`` (re)builds one ``{subdir}/{BBOX_nm}.spatial`` file from the segmentation:
``{"segid": [x0, y0, z0, x1, y1, z1]}``, each label's voxel bounding box inside the task box
plus one voxel of high overlap (the region a forge task meshes), in integer nm. CloudVolume's
``SpatialIndex`` reads these (``query``, ``get_bbox``, ``to_sql``); the name follows its
precision rule through ``igneous.spatial.spatial_index_filename``.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.lib import Bbox

from igneous.layerfiles import read_sub_info
from igneous.ops.voxels import label_bboxes, merge_bboxes
from igneous.spatial import spatial_index_filename
from igneous.tasks.image.common import source_volume, task_box
from igneous.tasks.image.voxels import BLOCK_VOXELS, read_blocks
from igneous.tasks.registry import queueable

__all__ = ["SpatialIndexTask", "index_json"]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.spatial_index"


def index_json(boxes, resolution) -> dict:
    """``{"segid": [x0, y0, z0, x1, y1, z1]}`` in nm from half-open voxel boxes, floored/ceiled to
    integers (CloudVolume parses them as integers)."""
    labels, lo, hi = boxes
    res = np.asarray(resolution, dtype=np.float64)
    lo_nm = np.floor(lo * res).astype(np.int64)
    hi_nm = np.ceil(hi * res).astype(np.int64)
    return {str(label): a + b for label, a, b in zip(labels.tolist(), lo_nm.tolist(), hi_nm.tolist())}


@queueable(WIRE)
def SpatialIndexTask(cloudpath, shape, offset, subdir, precision, mip=0, fill_missing=False, compress="gzip"):
    """Write the ``.spatial`` file of the box ``[offset, offset + shape)`` at ``mip`` into ``subdir``.

    Reads the box plus one voxel on the high sides (clipped to the layer). ``precision`` is
    kept for wire compatibility: the file name follows the resolution in ``{subdir}/info``,
    which is what readers use to enumerate names.
    """
    vol = source_volume(cloudpath, mip, fill_missing=fill_missing)
    box = task_box(vol, mip, shape, offset)
    if box.subvoxel():
        return
    read = Bbox.clamp(Bbox(box.minpt, box.maxpt + 1), vol.meta.bounds(mip))
    # Bounding boxes merge by min/max, so the read streams in chunk-aligned blocks: memory stays
    # bounded, and no download(renumber=True), which fails on missing chunks with fill_missing.
    parts = []
    for block in read_blocks(read, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip), BLOCK_VOXELS):
        parts.append(label_bboxes(vol.download(block, mip=mip), block.minpt))
    index = index_json(merge_bboxes(parts), vol.meta.resolution(mip))

    layer = vol.meta.cloudpath
    info = read_sub_info(layer, subdir) or {}
    resolution = (info.get("spatial_index") or {}).get("resolution") or vol.info["scales"][mip]["resolution"]
    CloudFiles(layer).put(
        f"{subdir}/{spatial_index_filename(box, resolution)}",
        json.dumps(index).encode("utf8"),
        compress=compress or None,
        content_type="application/json",
        cache_control="no-cache",
    )
