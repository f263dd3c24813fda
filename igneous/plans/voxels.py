"""Priced plan of ``image voxels count``: count files sized from a few real task boxes."""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from cloudfiles.compression import compress as compress_bytes
from cloudvolume.lib import Vec

from igneous.plan import Output, Plan, grid_cells, grid_reads, task_requests
from igneous.plans.common import ImageSample, box_voxels, chunk_gets, finish_plan

__all__ = ["plan_voxel_counting"]


def plan_voxel_counting(cloudpath: str, mip: int, fill_missing: bool = False, agglomerate: bool = False,
                        timestamp: Optional[int] = None) -> Plan:  # fmt: skip
    """The plan of ``create_voxel_counting_tasks`` (same arguments)."""
    from igneous.ops.voxels import count_labels, counts_to_json
    from igneous.task_creation.voxels import _counting_volume
    from igneous.tasks.image.voxels import TASK_SHAPE

    vol = _counting_volume(cloudpath, mip)
    bounds = vol.meta.bounds(mip)
    tasks = grid_cells(bounds, TASK_SHAPE)
    reads = grid_reads(bounds, TASK_SHAPE, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip), bounds)
    # a count file lists every label of its box: measure whole task boxes, up to 32 M voxels each
    block = Vec(*np.minimum(TASK_SHAPE, (256, 256, 256)))
    sample = ImageSample(vol, mip, bounds, block)
    per_voxel = []
    for img in sample.images:
        text = json.dumps(counts_to_json(count_labels(img[..., 0]))).encode()
        per_voxel.append(len(compress_bytes(text, "gzip")) / max(1, np.prod(img.shape[:3])))
    task_voxels = box_voxels(bounds) / max(1, tasks)
    # labels in a box grow more slowly than its volume: scale the sample by (volume ratio)^(2/3)
    scale = (task_voxels / max(1, sample.voxels / max(1, len(sample.images)))) ** (2 / 3)
    file_bytes = float(np.mean(per_voxel)) * (sample.voxels / max(1, len(sample.images))) * scale if per_voxel else 0
    plan = Plan(
        command="image voxels count",
        task="CountVoxelsTask",
        tasks=tasks,
        stage="voxel_count",
        work=box_voxels(bounds),
        outputs=[
            Output(
                f"{vol.meta.key(mip)}/stats/voxel_counts/*.json (one per task)", tasks, int(round(file_bytes * tasks))
            )
        ],  # fmt: skip
        bytes_read=int(round(box_voxels(bounds) * sample.stored_bpv)),
        task_shape=TASK_SHAPE,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": chunk_gets(vol, mip, reads, tasks, TASK_SHAPE)})
    plan.add_requests(task_requests("CountVoxelsTask"), tasks)
    plan.add_requests({"PUT": tasks})
    plan.notes.append("then `image voxels sum` reads the count files and writes stats/voxel_counts.im")
    return finish_plan(plan, cloudpath)
