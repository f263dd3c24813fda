"""Priced plans of ``image contrast histogram|equalize|clahe``.

``histogram`` computes a few slices' levels files without writing them; ``equalize`` stretches a
few real blocks with their slices' histograms and downsamples them as the run does; ``clahe``
equalises a few blocks of whole tiles. Bytes come from those blocks re-encoded as written.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.plan import Output, Plan, chunks_in, grid_cells, grid_reads, sample_boxes, task_requests
from igneous.plans.common import (
    SAMPLES,
    ImageSample,
    box_voxels,
    chunk_gets,
    committed,
    finish_plan,
    level_outputs,
    run_compress,
    sample_block,
    sampled_bpv,
    stored_bytes_per_voxel,
)
from igneous.throughput import NEW_LAYER_PROBE

__all__ = ["plan_luminance_levels", "plan_equalize", "plan_clahe_run"]


def _stored_chunk_bytes(vol: CloudVolume, mip: int) -> float:
    """Mean stored bytes of one chunk file of ``vol`` at ``mip`` (from a few files' sizes)."""
    return stored_bytes_per_voxel(vol, mip) * float(np.prod(vol.meta.chunk_size(mip)))


def plan_luminance_levels(
    layer_path: str,
    levels_path: Optional[str] = None,
    coverage_factor: float = 0.01,
    mip: int = 0,
    bounds_mip: int = 0,
    bounds=None,
) -> Plan:
    """The plan of ``create_luminance_levels_tasks`` (same arguments): every slice's patches are
    drawn as the tasks draw them (exact chunk reads); ``SAMPLES`` slices are computed, not written."""
    from cloudfiles.lib import jsonify

    from igneous.ops.contrast import sample_patches
    from igneous.task_creation.contrast import create_luminance_levels_tasks

    grid = create_luminance_levels_tasks(layer_path, levels_path, coverage_factor, mip=mip, bounds_mip=bounds_mip,
                                         bounds=bounds)  # fmt: skip  # lazy: nothing is written until it is drained
    vol = CloudVolume(layer_path, mip=mip, progress=False, fill_missing=True)
    box, chunk, origin = grid.bounds, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip)
    size_xy = box.size3()[:2]
    reads = sampled = 0
    for z in range(int(box.minpt.z), int(box.maxpt.z)):
        for x0, x1, y0, y1 in sample_patches(size_xy, float(coverage_factor), seed=z):
            patch = Bbox(box.minpt + Vec(x0, y0, z - box.minpt.z), box.minpt + Vec(x1, y1, z - box.minpt.z + 1))
            reads += chunks_in(patch, chunk, origin)
            sampled += box_voxels(patch)
    tasks = len(grid)
    picks = sorted({int((k + 0.5) * tasks / SAMPLES) for k in range(min(SAMPLES, tasks))})
    # one task of the lazy grid each (never drained: draining records provenance)
    file_bytes = [len(jsonify(next(iter(grid[i : i + 1])).levels()[1])) for i in picks]
    plan = Plan(
        command="image contrast histogram",
        task="LuminanceLevelsTask",
        tasks=tasks,
        stage="histogram",
        work=reads * float(np.prod(chunk)),  # patches decode whole chunks
        outputs=[Output(f"levels/{mip}/{{z}} (one per slice)", tasks, int(round(np.mean(file_bytes) * tasks)))],
        bytes_read=int(round(reads * _stored_chunk_bytes(vol, mip))),
        task_shape=grid.shape,
        sample={"slices": len(picks), "voxels_sampled": int(sampled)},
    )
    plan.add_requests({"GET": reads})
    plan.add_requests(task_requests("LuminanceLevelsTask"), plan.tasks)
    plan.add_requests({"PUT": plan.tasks})
    return finish_plan(plan, layer_path)


def plan_equalize(
    src_path: str,
    dest_path: str,
    levels_path: Optional[str] = None,
    shape=None,
    mip: int = 0,
    clip_fraction: float = 0.01,
    fill_missing: bool = False,
    translate=(0, 0, 0),
    minval=None,
    maxval=None,
    bounds=None,
    bounds_mip: int = 0,
) -> Plan:
    """The plan of ``create_contrast_normalization_tasks`` (same arguments)."""
    from igneous.ops.contrast import apply_lut, clip_values, stretch_lut
    from igneous.ops.downsample import DownsampleMethods, resolve_method
    from igneous.task_creation.contrast import plan_contrast_normalization
    from igneous.tasks.image.contrast import load_levels

    job = plan_contrast_normalization(src_path, dest_path, levels_path, shape, mip, clip_fraction, fill_missing,
                                      translate, minval, maxval, bounds, bounds_mip)  # fmt: skip
    dest, grid = job.dest, job.tasks
    translate = Vec(*translate)
    src = CloudVolume(src_path, mip=mip, progress=False)
    region = Bbox.intersection(grid.bounds, src.meta.bounds(mip))
    levels = len(dest.info["scales"]) - 1 - mip
    tasks = len(grid)
    reads = grid_reads(grid.bounds, grid.shape, src.meta.chunk_size(mip), src.meta.voxel_offset(mip),
                       src.meta.bounds(mip))  # fmt: skip
    sample = ImageSample(src, mip, region, sample_block(src.meta.chunk_size(mip), (2, 2, 1), levels))
    sample.images = [np.array(image) for image in sample.images]  # writable copies, stretched below
    for box, image in zip(sample.boxes, sample.images):
        zs = range(int(box.minpt.z), int(box.maxpt.z))
        hist = load_levels(levels_path or src_path, mip, zs)
        for i, z in enumerate(zs):
            clip = clip_values(hist[z], float(clip_fraction))
            if clip is not None:
                lut = stretch_lut(clip[0], clip[1], image.dtype, minval, maxval)
                image[:, :, i, :] = apply_lut(image[:, :, i, :], lut)
    compress = run_compress(dest.meta.encoding(mip), None)
    method = resolve_method(DownsampleMethods.AUTO, dest.layer_type, dest.dtype)
    pyramid = sample.levels((2, 2, 1), levels, method) if levels else []
    bpvs = [sampled_bpv(sample.images, dest.meta.chunk_size(mip), dest.meta.encoding(mip), compress,
                        dest.meta.compression_params(mip))]  # fmt: skip
    for k in range(1, levels + 1):
        m = mip + k
        bpvs.append(sampled_bpv(pyramid[k - 1], dest.meta.chunk_size(m), dest.meta.encoding(m),
                                run_compress(dest.meta.encoding(m), None), dest.meta.compression_params(m)))  # fmt: skip
    plan = Plan(
        command="image contrast equalize",
        task="ContrastNormalizationTask",
        tasks=tasks,
        stage="equalize",
        work=box_voxels(region),
        outputs=level_outputs(dest, mip, region + translate, levels, bpvs, first=0),
        bytes_read=int(round(box_voxels(region) * sample.stored_bpv)),
        task_shape=grid.shape,
        sample=sample.describe(),
    )
    xy_tasks = grid_cells(Bbox(grid.bounds.minpt, Vec(grid.bounds.maxpt.x, grid.bounds.maxpt.y,
                                                      grid.bounds.minpt.z + 1)), grid.shape)  # fmt: skip
    plan.add_requests({"GET": chunk_gets(src, mip, reads, tasks, grid.shape)})
    plan.add_requests({"GET": xy_tasks * int(region.size3().z)})  # every task reads its slices' histograms
    plan.add_requests(task_requests("ContrastNormalizationTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    if not committed(dest_path):
        plan.add_requests(NEW_LAYER_PROBE)
    return finish_plan(plan, dest_path)


def plan_clahe_run(
    src: str,
    dest: str,
    shape=None,
    mip: int = 0,
    fill_missing: bool = False,
    bounds=None,
    bounds_mip: int = 0,
    clip_limit: float = 40.0,
    tile_grid_size=(8, 8),
) -> Plan:
    """The plan of ``create_clahe_tasks`` (same arguments): ``SAMPLES`` blocks of whole CLAHE
    tiles (one chunk deep) equalised as the tasks do, then encoded in the destination's chunks."""
    from igneous.ops.clahe import clahe_region, tile_size
    from igneous.task_creation.contrast import plan_clahe

    job = plan_clahe(src, dest, shape, mip, fill_missing, bounds, bounds_mip, clip_limit, tile_grid_size)
    destvol, grid = job.dest, job.tasks
    vol = CloudVolume(src, mip=mip, progress=False, fill_missing=True)
    layer = vol.meta.bounds(mip)
    region = Bbox.intersection(grid.bounds, layer)
    tile = tile_size(grid.shape, tile_grid_size)
    chunk = Vec(*vol.meta.chunk_size(mip))
    tasks = len(grid)
    # a task reads its box grown by about one tile on each side (on the tile grid, within the layer)
    reads = grid_reads(grid.bounds, grid.shape, chunk, vol.meta.voxel_offset(mip), layer,
                       pad_lo=(tile[0], tile[1], 0), pad_hi=(tile[0], tile[1], 0))  # fmt: skip
    block = Vec(*[min(int(s), max(int(c), 2 * int(t))) for s, c, t in zip(grid.shape[:2], chunk[:2], tile)], chunk.z)
    boxes = sample_boxes(region, block, layer.minpt, SAMPLES)
    images = []
    for box in boxes:
        img = np.asarray(vol.download(box, mip=mip))
        out = np.empty_like(img)
        for i in range(img.shape[2]):
            pad = [(-int(s)) % int(t) for s, t in zip(img.shape[:2], tile)]
            out[:, :, i, 0] = clahe_region(img[:, :, i, 0], tile, float(clip_limit), pad)
        images.append(out)
    encoding = destvol.meta.encoding(mip)
    bpv = sampled_bpv(images, destvol.meta.chunk_size(mip), encoding, run_compress(encoding, None),
                      destvol.meta.compression_params(mip))  # fmt: skip
    plan = Plan(
        command="image contrast clahe",
        task="CLAHETask",
        tasks=tasks,
        stage="clahe",
        work=box_voxels(region),
        outputs=level_outputs(destvol, mip, region, 0, [bpv], first=0),
        bytes_read=int(round(reads * _stored_chunk_bytes(vol, mip))),
        task_shape=grid.shape,
        sample={"blocks": len(images), "block": list(map(int, block)), "tile": list(tile)},
    )
    plan.add_requests({"GET": chunk_gets(vol, mip, reads, tasks, grid.shape)})
    plan.add_requests(task_requests("CLAHETask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    if not committed(dest):
        plan.add_requests(NEW_LAYER_PROBE)
    return finish_plan(plan, dest)
