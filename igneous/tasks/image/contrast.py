"""Contrast tasks: luminance histograms, per-slice stretch, CLAHE (SPEC §3.1).

``LuminanceLevelsTask`` and ``ContrastNormalizationTask`` are ``RegisteredTask`` classes
(keyed by class name on the wire); ``CLAHETask`` is a queueable function registered under
``igneous.tasks.image.image``, as other Igneous workers send it.
"""

from __future__ import annotations

import logging
import posixpath

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.lib import Bbox, Vec
from taskqueue import RegisteredTask

from igneous.ops.clahe import clahe_region, region_for_box, tile_size
from igneous.ops.contrast import apply_lut, clip_values, histogram_levels, sample_patches, stretch_lut
from igneous.tasks.image.common import dest_volume, source_volume, task_box
from igneous.tasks.image.io import downsample_and_upload, read_box, upload_all
from igneous.tasks.registry import queueable

__all__ = ["LuminanceLevelsTask", "ContrastNormalizationTask", "CLAHETask", "levels_key", "load_levels"]

log = logging.getLogger(__name__)


def levels_key(mip: int, z: int) -> str:
    return posixpath.join("levels", str(int(mip)), str(int(z)))


def load_levels(levels_path: str, mip: int, zs) -> dict:
    """``{z: levels array}`` for the slices ``zs`` (a missing file is an error naming it)."""
    cf = CloudFiles(levels_path)
    keys = [levels_key(mip, z) for z in zs]
    found = cf.get_json(keys)
    out = {}
    for z, key, obj in zip(zs, keys, found):
        if obj is None:
            raise FileNotFoundError(f"{levels_path}/{key} is missing; run `igneous image contrast histogram` first")
        out[int(z)] = np.asarray(obj["levels"], dtype=np.int64)
    return out


class LuminanceLevelsTask(RegisteredTask):
    """Histogram of one z-slice from random 2048² patches → ``{levels_path or src}/levels/{mip}/{z}``.

    The JSON holds ``levels`` (one count per value), ``patch_size``, ``num_patches`` and
    ``coverage_ratio``. Patches are drawn with the slice's z as seed: a rerun writes the same file.
    """

    def __init__(self, src_path, levels_path, shape, offset, coverage_factor, mip):
        super().__init__(src_path, levels_path, shape, offset, coverage_factor, mip)
        self.shape = Vec(*shape)
        self.offset = Vec(*offset)

    def execute(self):
        z, result = self.levels()
        CloudFiles(self.levels_path or self.src_path).put_json(
            levels_key(self.mip, z), result, cache_control="no-cache"
        )

    def levels(self) -> tuple:
        """``(z, the levels file's content)``, read and computed, not written (dry runs measure it)."""
        vol = source_volume(self.src_path, self.mip, fill_missing=True)
        box = task_box(vol, self.mip, self.shape, self.offset)
        z = int(box.minpt.z)
        levels = np.zeros(1 << (8 * np.dtype(vol.dtype).itemsize), dtype=np.int64)
        patches = sample_patches(box.size3()[:2], float(self.coverage_factor), seed=z)
        covered = 0
        for x0, x1, y0, y1 in patches:
            lo = box.minpt + Vec(x0, y0, 0)
            patch = vol.download(Bbox(lo, lo + Vec(x1 - x0, y1 - y0, 1)), self.mip)[..., 0]
            levels += histogram_levels(patch, vol.dtype)
            covered += patch.size
        area = int(box.size3()[0]) * int(box.size3()[1])
        result = {
            "levels": levels.tolist(),
            "patch_size": [patches[0][1] - patches[0][0], patches[0][3] - patches[0][2], 1],
            "num_patches": len(patches),
            "coverage_ratio": covered / float(area),
        }
        return z, result


class ContrastNormalizationTask(RegisteredTask):
    """Stretch each slice of the box linearly between its clip percentiles (from its
    ``levels`` file), clamp to ``[minval, maxval]``, write to ``dest`` (shifted by
    ``translate``) with the downsamples the box allows."""

    def __init__(self, src_path, dest_path, levels_path, shape, offset, mip, clip_fraction, fill_missing, translate,
                 minval, maxval):  # fmt: skip
        super().__init__(src_path, dest_path, levels_path, shape, offset, mip, clip_fraction, fill_missing,
                         translate, minval, maxval)  # fmt: skip
        self.shape = Vec(*shape)
        self.offset = Vec(*offset)
        self.translate = Vec(*translate)

    def execute(self):
        src = source_volume(self.src_path, self.mip, self.fill_missing)
        dest = dest_volume(self.dest_path, self.mip)
        box = task_box(src, self.mip, self.shape, self.offset)
        if box.subvoxel():
            return
        image = read_box(src, box, self.mip)
        zs = range(int(box.minpt.z), int(box.maxpt.z))
        levels = load_levels(self.levels_path or self.src_path, self.mip, zs)
        for i, z in enumerate(zs):
            clip = clip_values(levels[z], float(self.clip_fraction))
            if clip is None:
                continue
            lut = stretch_lut(clip[0], clip[1], image.dtype, self.minval, self.maxval)
            image[:, :, i, :] = apply_lut(image[:, :, i, :], lut)
        dest_box = box + self.translate
        downsample_and_upload(image, dest_box, dest, self.shape, mip=self.mip)


@queueable("igneous.tasks.image.image")
def CLAHETask(src, dest, mip, fill_missing, shape, offset, clip_limit=40.0, tile_grid_size=(8, 8)):
    """CLAHE of each z-slice of the box ``offset + shape``, seamless across tasks.

    Tiles are ``shape / tile_grid_size`` pixels, anchored to the layer's origin; the task
    equalises its box grown by one tile on each side (on that grid) and keeps the box, so
    its pixels equal OpenCV's CLAHE of the whole slice on the same tiles.
    """
    srcvol = source_volume(src, mip, fill_missing)
    destvol = dest_volume(dest, mip)
    box = task_box(srcvol, mip, shape, offset)
    if box.subvoxel():
        return
    tile = tile_size(shape, tile_grid_size)
    layer = srcvol.meta.bounds(mip)
    origin, size = layer.minpt, layer.size3()
    lo, hi = region_for_box(box.minpt - origin, box.maxpt - origin, size, tile)
    inside = Bbox(
        (origin.x + lo[0], origin.y + lo[1], box.minpt.z),
        (origin.x + min(hi[0], int(size[0])), origin.y + min(hi[1], int(size[1])), box.maxpt.z),
    )
    region = read_box(srcvol, inside, mip)
    pad = (max(0, hi[0] - int(size[0])), max(0, hi[1] - int(size[1])))
    cut = box.minpt - inside.minpt
    out = np.empty(tuple(box.size3()) + (1,), dtype=srcvol.dtype, order="F")
    sx, sy = int(box.size3()[0]), int(box.size3()[1])
    for i in range(int(box.size3()[2])):
        result = clahe_region(region[:, :, i, 0], tile, clip_limit, pad)
        out[:, :, i, 0] = result[cut.x : cut.x + sx, cut.y : cut.y + sy]
    upload_all(destvol, [(out, box, mip)])
