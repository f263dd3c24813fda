"""Priced plans of image pyramids and transfers: ``image downsample`` and ``image xfer``, sharded
or not. Each ``plan_*`` runs the creator's ``prepare_*`` step, then prices the chunk grid with a
few real chunks re-encoded as the run writes them; nothing is written.
"""

from __future__ import annotations

from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.ops.downsample import resolve_method
from igneous.plan import Output, Plan, chunks_in, grid_cells, grid_reads, task_requests
from igneous.plans.common import (
    SHARD_INDEX_BYTES_PER_CHUNK,
    ImageSample,
    box_voxels,
    chunk_gets,
    committed,
    finish_plan,
    level_outputs,
    sample_block,
)
from igneous.throughput import NEW_LAYER_PROBE

__all__ = ["plan_downsampling", "plan_transfer", "plan_image_shard_transfer", "plan_image_shard_downsample"]


def plan_downsampling(layer_path: str, **kwargs) -> Plan:
    """The plan of ``create_downsampling_tasks(layer_path, **kwargs)`` (same arguments)."""
    from igneous.task_creation.downsample import prepare_downsampling

    job = prepare_downsampling(layer_path, **kwargs)
    vol, dest, mip = job.vol, job.dest, int(job.kwargs["mip"])
    src_bounds = vol.meta.bounds(mip)
    region = Bbox.intersection(job.bounds, src_bounds)
    chunk, origin = vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip)
    tasks = grid_cells(job.bounds, job.shape)
    reads = grid_reads(job.bounds, job.shape, chunk, origin, src_bounds)

    sample = ImageSample(vol, mip, region, sample_block(chunk, job.factor, job.num_mips))
    levels = sample.levels(job.factor, job.num_mips, job.method, bool(job.kwargs["sparse"]))
    compress = job.kwargs["compress"]
    bpvs = [
        sample.bpv(dest.meta.encoding(mip + k), compress, dest.meta.compression_params(mip + k), levels[k - 1])
        for k in range(1, job.num_mips + 1)
    ]
    segmentation = vol.layer_type == "segmentation"
    plan = Plan(
        command="image downsample",
        task="DownsampleTask",
        tasks=tasks,
        stage="downsample_segmentation" if segmentation else "downsample",
        work=box_voxels(region),
        outputs=level_outputs(dest, mip, job.bounds, job.num_mips, bpvs),
        bytes_read=int(round(box_voxels(region) * sample.stored_bpv)),
        task_shape=job.shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": chunk_gets(vol, mip, reads, tasks, job.shape)})
    plan.add_requests(task_requests("DownsampleTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    return finish_plan(plan, layer_path)


def plan_transfer(src_layer_path: str, dest_layer_path: str, **kwargs) -> Plan:
    """The plan of ``create_transfer_tasks(src, dest, **kwargs)`` (same arguments)."""
    from igneous.task_creation.transfer import prepare_transfer
    from igneous.tasks.image.image import _same_layout

    job = prepare_transfer(src_layer_path, dest_layer_path, **kwargs)
    src, dest, mip, kw = job.src, job.dest, int(job.kwargs["mip"]), job.kwargs
    dest_bounds = dest.meta.bounds(mip)
    region = Bbox.intersection(job.bounds, dest_bounds)
    src_region = Bbox.intersection(region - job.translate, src.meta.bounds(mip))
    tasks = grid_cells(job.bounds, job.shape)
    reads = grid_reads(
        Bbox.clamp(job.bounds, dest_bounds), job.shape, src.meta.chunk_size(mip), src.meta.voxel_offset(mip),
        src.meta.bounds(mip), translate=job.translate,
    )  # fmt: skip
    factor = Vec(*kw["factor"])
    sample = ImageSample(src, mip, src_region, sample_block(src.meta.chunk_size(mip), factor, job.levels))
    plan = Plan(
        command="image xfer",
        task="TransferTask",
        tasks=tasks,
        stage="transfer",
        work=box_voxels(src_region),
        bytes_read=int(round(box_voxels(src_region) * sample.stored_bpv)),
        task_shape=job.shape,
        sample=sample.describe(),
    )
    copy = (  # TransferTask's own test for copying chunk files as they are
        (kw["skip_downsamples"] or job.levels == 0)
        and not job.translate.any()
        and not kw["delete_black_uploads"]
        and _same_layout(src, dest, mip)
    )
    if copy:  # chunk files are copied as they are
        plan.task = "TransferTask/copy"
        files = chunks_in(src_region, src.meta.chunk_size(mip), src.meta.voxel_offset(mip))
        plan.outputs = [Output(f"mip {mip} ({dest.meta.key(mip)}), chunk files copied", files, plan.bytes_read)]
        plan.notes.append("same chunk layout and encoding: chunk files are copied without re-encoding")
    else:
        compress = kw["compress"]
        bpv0 = sample.bpv(dest.meta.encoding(mip), compress, dest.meta.compression_params(mip))
        levels = sample.levels(factor, job.levels, resolve_method(kw["downsample_method"], src.layer_type, src.dtype),
                               bool(kw["sparse"])) if job.levels else []  # fmt: skip
        bpvs = [bpv0] + [
            sample.bpv(dest.meta.encoding(mip + k), compress, dest.meta.compression_params(mip + k), levels[k - 1])
            for k in range(1, job.levels + 1)
        ]
        plan.outputs = level_outputs(dest, mip, region, job.levels, bpvs, first=0)
    plan.add_requests({"GET": chunk_gets(src, mip, reads, tasks, job.shape)})
    plan.add_requests(task_requests(plan.task), tasks)
    plan.add_requests({"PUT": plan.files_written})
    updates_src = not kwargs.get("no_src_update", False) and src_layer_path.split("://")[0] in ("gs", "s3", "file")
    plan.add_requests({"GET": int(updates_src), "PUT": int(updates_src)})  # the source's provenance
    if not committed(dest_layer_path):
        plan.add_requests(NEW_LAYER_PROBE)
    return finish_plan(plan, dest_layer_path)


def _shard_outputs(job, vol: CloudVolume, levels, bpvs: list, bounds_mip: int) -> list:
    outputs = []
    for level, bpv in zip(levels, bpvs):
        box = Bbox.clamp(vol.bbox_to_mip(job.bounds, bounds_mip, level.mip), vol.meta.bounds(level.mip))
        shards = grid_cells(
            Bbox(vol.meta.voxel_offset(level.mip), vol.meta.voxel_offset(level.mip) + Vec(*level.size)),
            level.shard_shape,
        ) if box == vol.meta.bounds(level.mip) else max(1, grid_cells(box, level.shard_shape))  # fmt: skip
        chunks = chunks_in(box, level.chunk, vol.meta.voxel_offset(level.mip))
        nbytes = box_voxels(box) * bpv + chunks * SHARD_INDEX_BYTES_PER_CHUNK
        what = f"mip {level.mip} ({vol.meta.key(level.mip)}), shards of {'x'.join(map(str, level.shard_shape))} voxels"
        outputs.append(Output(what, int(shards), int(round(nbytes))))
    return outputs


def plan_image_shard_transfer(src_layer_path: str, dst_layer_path: str, **kwargs) -> Plan:
    """The plan of ``create_image_shard_transfer_tasks(src, dst, **kwargs)`` (same arguments)."""
    from igneous.task_creation.shard_image import prepare_shard_transfer

    job = prepare_shard_transfer(src_layer_path, dst_layer_path, **kwargs)
    dest, mip = job.vol, int(job.kwargs["mip"])
    src = CloudVolume(src_layer_path, mip=mip, progress=False)
    translate = Vec(*job.kwargs["translate"])
    region = Bbox.intersection(job.bounds, dest.meta.bounds(mip))
    src_region = Bbox.intersection(region - translate, src.meta.bounds(mip))
    shape = job.plan.task_shape
    tasks = grid_cells(job.bounds, shape)
    reads = grid_reads(region, shape, src.meta.chunk_size(mip), src.meta.voxel_offset(mip), src.meta.bounds(mip),
                       translate=translate)  # fmt: skip
    sample = ImageSample(src, mip, src_region, src.meta.chunk_size(mip))
    level = job.plan.levels[0]
    compress = "gzip" if level.spec.get("data_encoding", "raw") == "gzip" else None
    bpv = sample.bpv(dest.meta.encoding(mip), compress, dest.meta.compression_params(mip))
    plan = Plan(
        command="image xfer --sharded",
        task="ImageShardTransferTask",
        tasks=tasks,
        stage="shard_transfer",
        work=box_voxels(src_region),
        outputs=_shard_outputs(job, dest, [level], [bpv], mip),
        bytes_read=int(round(box_voxels(src_region) * sample.stored_bpv)),
        task_shape=shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": chunk_gets(src, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("ImageShardTransferTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    if not committed(dst_layer_path):
        plan.add_requests(NEW_LAYER_PROBE, 2)
    return finish_plan(plan, dst_layer_path)


def plan_image_shard_downsample(cloudpath: str, **kwargs) -> Plan:
    """The plan of ``create_image_shard_downsample_tasks(cloudpath, **kwargs)`` (same arguments)."""
    from igneous.task_creation.shard_image import prepare_shard_downsample

    job = prepare_shard_downsample(cloudpath, **kwargs)
    vol, mip = job.vol, int(job.kwargs["mip"])
    src = CloudVolume(cloudpath, mip=mip, progress=False)
    region = Bbox.intersection(job.bounds, src.meta.bounds(mip))
    shape = job.plan.task_shape
    tasks = grid_cells(job.bounds, shape)
    reads = grid_reads(job.bounds, shape, src.meta.chunk_size(mip), src.meta.voxel_offset(mip), src.meta.bounds(mip))
    factor = Vec(*job.kwargs["factor"])
    num_mips = int(job.kwargs["num_mips"])
    sample = ImageSample(src, mip, region, sample_block(src.meta.chunk_size(mip), factor, num_mips))
    method = resolve_method(job.kwargs["method"], src.layer_type, src.dtype)
    levels = sample.levels(factor, num_mips, method, bool(job.kwargs["sparse"]))
    bpvs = []
    for k, level in enumerate(job.plan.levels, start=1):
        compress = "gzip" if level.spec.get("data_encoding", "raw") == "gzip" else None
        bpvs.append(sample.bpv(vol.meta.encoding(level.mip), compress, vol.meta.compression_params(level.mip),
                               levels[k - 1]))  # fmt: skip
    segmentation = src.layer_type == "segmentation"
    plan = Plan(
        command="image downsample --sharded",
        task="ImageShardDownsampleTask",
        tasks=tasks,
        stage="shard_downsample" if not segmentation else "downsample_segmentation",
        work=box_voxels(region),
        outputs=_shard_outputs(job, vol, job.plan.levels, bpvs, mip),
        bytes_read=int(round(box_voxels(region) * sample.stored_bpv)),
        task_shape=shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": chunk_gets(src, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("ImageShardDownsampleTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    return finish_plan(plan, cloudpath)
