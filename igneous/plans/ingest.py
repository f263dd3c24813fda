"""Priced plans of ``image create``: an image stack planned into tasks, or an array file written
by the command itself. Both run the creator's validation (``plan_image_stack`` /
``plan_array_ingest``), then read a few chunk-sized blocks of the source and encode them as
the run writes them; nothing is written.
"""

from __future__ import annotations

import math

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous.plan import Output, Plan, chunks_in, sample_boxes, task_requests
from igneous.plans.common import SAMPLES, box_voxels, finish_plan, run_compress, sampled_bpv
from igneous.throughput import NEW_LAYER_PROBE

__all__ = ["plan_image_create", "plan_stack_ingest", "plan_array_create"]

ARRAY_TASK = "create_image_from_array"
REMOTE_READ_BLOCK = 1 << 20  # igneous.readers.storage.open_binary reads remote files in ranges of this size


def plan_image_create(src: str, dest: str, h5_dataset: str = "main", **kwargs) -> Plan:
    """The plan of ``igneous image create SRC DEST``: an array file or an image stack (same options)."""
    from igneous.readers.arrays import is_array_file

    if is_array_file(src):
        return plan_array_create(src, dest, h5_dataset=h5_dataset, **kwargs)
    return plan_stack_ingest(src, dest, **kwargs)


class _Layer:
    """The new layer's level 0 as the run writes it (a CloudVolume of its info on mem://)."""

    def __init__(self, info: dict, compress):
        vol = CloudVolume("mem://igneous-plan/layer", info=info, progress=False)
        self.vol = vol
        self.chunk = Vec(*vol.meta.chunk_size(0))
        self.origin = Vec(*vol.meta.voxel_offset(0))
        self.bounds = vol.meta.bounds(0)
        self.encoding = vol.meta.encoding(0)
        self.compress = run_compress(self.encoding, compress)
        self.params = vol.meta.compression_params(0)

    def output(self, bpv: float) -> Output:
        files = chunks_in(self.bounds, self.chunk, self.origin)
        what = f"mip 0 ({self.vol.meta.key(0)}), chunks {'x'.join(map(str, self.chunk))}"
        return Output(what, files, int(round(box_voxels(self.bounds) * bpv)))

    def sample_boxes(self) -> list:
        return sample_boxes(self.bounds, self.chunk, self.origin, SAMPLES)

    def bpv(self, images: list) -> float:
        return sampled_bpv(images, self.chunk, self.encoding, self.compress, self.params)


def _new_layer_requests(plan: Plan, dest_exists: bool) -> None:
    """A new destination is probed for other formats, then its info is written."""
    if not dest_exists:
        plan.add_requests(NEW_LAYER_PROBE)
        plan.add_requests({"PUT": 1})


def plan_stack_ingest(src: str, dest: str, memory_target=None, **kwargs) -> Plan:
    """The plan of ``create_image_stack_tasks(src, dest, **kwargs)``: reads ``SAMPLES`` chunk-sized
    blocks of the slices (only the strips/tiles they touch, or whole PNG/JPEG slices)."""
    from igneous.readers.stacks import read_box
    from igneous.readers.storage import is_local
    from igneous.task_creation.ingest import MEMORY_TARGET, plan_image_stack

    job = plan_image_stack(src, dest, memory_target=memory_target or MEMORY_TARGET, **kwargs)
    layer = _Layer(job.info, job.compress)
    stack = job.stack
    images, names = [], set()
    for box in layer.sample_boxes():
        lo, hi = box.minpt - layer.origin, box.maxpt - layer.origin
        sources = stack.sources(int(lo.z), int(hi.z))
        names.update(name for name, _ in sources)
        region = (int(lo.x), int(hi.x), int(lo.y), int(hi.y))
        images.append(read_box(stack.base, sources, region, stack.channels, stack.dtype))
    slice_bytes = _source_bytes(stack, sorted(names))
    plan = Plan(
        command="image create",
        task="ImageStackIngestTask",
        tasks=job.num_tasks,
        stage="ingest_stack",
        work=box_voxels(layer.bounds),
        outputs=[layer.output(layer.bpv(images))],
        bytes_read=int(round(slice_bytes * job.decodes_per_slice)),
        task_shape=job.task_shape,
        sample={"blocks": len(images), "slices_read": len(names), "source_bytes": int(slice_bytes)},
    )
    plan.add_requests(task_requests("ImageStackIngestTask"), plan.tasks)
    plan.add_requests({"PUT": plan.files_written})
    _new_layer_requests(plan, job.dest_exists)
    plan.notes.append(
        f"{stack.kind} of {stack.shape[2]} {stack.header.format} slices ({stack.header.layout} layout); "
        f"peak memory per task {job.memory_per_task:,} bytes"
    )
    if job.decodes_per_slice > 1:
        plan.notes.append(f"each slice is decoded by {job.decodes_per_slice} tasks (tiled TIFF avoids this)")
    if not is_local(stack.base):
        # Remote slices are read through byte ranges of REMOTE_READ_BLOCK bytes (readers.storage.RangeFile).
        per_task_slices = int(job.task_shape[2]) * max(1, job.decodes_per_slice)
        blocks = math.ceil(slice_bytes / max(1, stack.shape[2]) / REMOTE_READ_BLOCK)
        plan.add_requests({"GET": plan.tasks * per_task_slices * blocks})
        plan.notes.append("the source is remote: its reads are estimated as 1 MB range requests (not measured)")
    return finish_plan(plan, dest)


def _source_bytes(stack, sampled: list) -> float:
    """Bytes of the whole stack, from the sizes of the slices the sample read."""
    cf = CloudFiles(stack.base, progress=False)
    if stack.kind == "pages":
        return float(cf.size(stack.names[0]) or 0)
    sizes = [s for s in cf.size(sampled).values() if s] if sampled else []
    return float(np.mean(sizes)) * len(stack.names) if sizes else 0.0


def plan_array_create(src: str, dest: str, h5_dataset: str = "main", memory_target=None, **kwargs) -> Plan:
    """The plan of ``create_image_from_array`` (synchronous: this process writes every block)."""
    from igneous.readers.arrays import open_array
    from igneous.task_creation.ingest import MEMORY_TARGET, plan_array_ingest

    job = plan_array_ingest(src, dest, h5_dataset=h5_dataset, memory_target=memory_target or MEMORY_TARGET, **kwargs)
    layer = _Layer(job.info, job.compress)
    images = []
    with open_array(src, h5_dataset) as arr:
        for box in layer.sample_boxes():
            lo, hi = box.minpt - layer.origin, box.maxpt - layer.origin
            images.append(arr.read(int(lo.x), int(hi.x), int(lo.z), int(hi.z))[:, int(lo.y) : int(hi.y)])
    x, _, z = job.shape[:3]
    blocks = math.ceil(x / job.block[0]) * math.ceil(z / job.block[2])
    itemsize = np.dtype(job.dtype).itemsize * job.shape[3]
    plan = Plan(
        command="image create",
        task=f"{ARRAY_TASK} (synchronous)",
        tasks=1,
        stage="ingest_array",
        work=box_voxels(layer.bounds),
        outputs=[layer.output(layer.bpv(images))],
        bytes_read=int(np.prod(job.shape[:3], dtype=np.int64)) * itemsize,
        task_shape=None,
        sample={"blocks": len(images), "write_blocks": blocks},
    )
    plan.add_requests(task_requests(ARRAY_TASK))
    plan.add_requests({"PUT": plan.files_written})
    _new_layer_requests(plan, job.dest_exists)
    plan.notes.append(
        f"array {tuple(job.shape)} {job.dtype} written by this process in {blocks} block(s) of "
        f"{'x'.join(map(str, job.block))} voxels"
    )
    return finish_plan(plan, dest)
