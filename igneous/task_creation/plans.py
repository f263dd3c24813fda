"""Priced plans of the planning commands (``--dry-run``): the same ``prepare_*`` step the
creators use, then the chunk grid and a few real chunks, and nothing written.

Each ``plan_*`` takes the creator's arguments and returns an ``igneous.plan.Plan``. Bytes come
from the grid and bytes per voxel measured on ``SAMPLES`` blocks of real chunks (re-encoded as
the run would write them); forge plans run the forge on a few sample tasks without writing;
requests add the per-task overheads of ``igneous.throughput.TASK_REQUESTS``.
"""

from __future__ import annotations

import json
import logging
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudfiles.compression import compress as compress_bytes
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous import meshes
from igneous.ops.downsample import pyramid, resolve_method
from igneous.plan import Output, Plan, bytes_per_voxel, chunks_in, grid_cells, grid_reads, sample_boxes, task_requests
from igneous.throughput import MESH_MERGE_BYTES_RATIO, NEW_LAYER_PROBE, PLAN_REQUESTS, SHARDED_READ

__all__ = [
    "SAMPLES",
    "plan_downsampling",
    "plan_transfer",
    "plan_image_shard_transfer",
    "plan_image_shard_downsample",
    "plan_voxel_counting",
    "plan_meshing",
    "plan_mesh_manifest",
    "plan_unsharded_multires_merge",
    "plan_sharded_multires_merge",
]

log = logging.getLogger(__name__)

SAMPLES = 3  # blocks of real chunks (or forge tasks) measured per plan
FILE_NOTE = "file:// layer: requests are counted as an object store would see them"
SHARD_INDEX_BYTES_PER_CHUNK = 24  # a minishard index entry (before its gzip)
SAMPLE_BLOCK_VOXELS = 2**24  # cap on one sample block (a 2-level block of 128x128x64 chunks is 16 M)


def sample_block(chunk, factor, num_mips: int) -> Vec:
    """Sample blocks cover one chunk of level 2 (or 1, if that block would be too big), so
    the levels measured are whole chunks, as the run writes them."""
    for levels in (min(2, num_mips), 1, 0):
        block = Vec(*chunk) * Vec(*factor) ** levels
        if int(np.prod(block)) <= SAMPLE_BLOCK_VOXELS:
            return block
    return Vec(*chunk)


def _volume(vol: CloudVolume, mip: int) -> CloudVolume:
    """A reader of ``vol``'s layer that treats missing chunks as background."""
    return CloudVolume(vol.meta.cloudpath, mip=mip, fill_missing=True, progress=False, cdn_cache=False)


def _committed(path: str) -> bool:
    from igneous.task_creation.transfer import _existing_info

    return _existing_info(path) is not None


def _reads(vol: CloudVolume, mip: int, chunk_reads: int, tasks: int, task_shape) -> int:
    """GET requests for ``chunk_reads`` chunk reads of ``vol`` at ``mip`` by ``tasks`` tasks."""
    if not _sharded(vol, mip):
        return int(chunk_reads)
    slabs = tasks * max(1, -(-int(task_shape[2]) // int(vol.meta.chunk_size(mip)[2])))
    return int(round(slabs * SHARDED_READ["per_slab"] + chunk_reads * SHARDED_READ["per_chunk"]))


def _voxels(box: Bbox) -> int:
    return int(np.prod(box.size3(), dtype=np.int64))


def _common(plan: Plan, path: str) -> Plan:
    """Planning's own requests (infos, provenance), and a note for local layers."""
    plan.add_requests(PLAN_REQUESTS.get(plan.command, {}))
    if cfpaths.extract(path).protocol == "file":
        plan.notes.append(FILE_NOTE)
    return plan


# -- sampling --------------------------------------------------------------------------------------


class ImageSample:
    """Blocks of real chunks of ``vol`` at ``mip``: their stored bytes per voxel, and the arrays."""

    def __init__(self, vol: CloudVolume, mip: int, bounds: Bbox, block: Sequence[int], count: int = SAMPLES):
        reader = _volume(vol, mip)
        chunk = Vec(*vol.meta.chunk_size(mip))
        origin = Vec(*vol.meta.voxel_offset(mip))
        self.boxes = sample_boxes(bounds, block, origin, count)
        self.images = [np.asarray(reader.download(box, mip=mip)) for box in self.boxes]
        names, sizes = [], {}
        if not _sharded(vol, mip):
            key = vol.meta.key(mip)
            for box in self.boxes:
                for cbox in _chunk_boxes(box, chunk, origin, vol.meta.bounds(mip)):
                    names.append(f"{key}/{cbox.to_filename()}")
            sizes = CloudFiles(vol.meta.cloudpath, progress=False).size(names) if names else {}
        found = {n: s for n, s in sizes.items() if s is not None}
        self.chunks = len(names)
        self.present = len(found)
        self.voxels = sum(_voxels(b) for b in self.boxes)
        if _sharded(vol, mip):  # chunks live inside shards: re-encode them as stored
            spec = vol.meta.info["scales"][mip]["sharding"]
            compress = "gzip" if spec.get("data_encoding", "raw") == "gzip" else None
            self.stored_bpv = self.bpv(vol.meta.encoding(mip), compress, vol.meta.compression_params(mip))
        else:
            present_voxels = sum(_voxels(Bbox.from_filename(n.rsplit("/", 1)[-1])) for n in found)
            self.stored_bpv = sum(found.values()) / present_voxels if present_voxels else 0.0
        self.fraction_present = self.present / self.chunks if self.chunks else 1.0

    def bpv(self, encoding: str, compress, params: Optional[dict] = None, images=None) -> float:
        """Bytes per voxel of the sample written with ``encoding`` and ``compress`` (voxel-weighted)."""
        images = self.images if images is None else images
        total = sum(int(np.prod(img.shape[:3])) for img in images)
        if not total:
            return 0.0
        return sum(bytes_per_voxel(img, encoding, compress, params) * np.prod(img.shape[:3]) for img in images) / total

    def levels(self, factor, num_mips: int, method, sparse: bool = False) -> list:
        """The sample downsampled: ``levels()[k-1]`` is every block at level k."""
        per_block = [pyramid(img, factor, num_mips, method, sparse) for img in self.images]
        return [[levels[k] for levels in per_block] for k in range(num_mips)]

    def describe(self) -> dict:
        return {
            "blocks": len(self.boxes),
            "chunks": self.chunks,
            "chunks_present": self.present,
            "voxels": self.voxels,
            "stored_bytes_per_voxel": round(self.stored_bpv, 4),
        }


def _chunk_boxes(box: Bbox, chunk: Vec, origin: Vec, bounds: Bbox) -> list:
    lo = origin + ((box.minpt - origin) // chunk) * chunk
    out = []
    for z in range(int(lo.z), int(box.maxpt.z), int(chunk.z)):
        for y in range(int(lo.y), int(box.maxpt.y), int(chunk.y)):
            for x in range(int(lo.x), int(box.maxpt.x), int(chunk.x)):
                out.append(Bbox.intersection(Bbox((x, y, z), Vec(x, y, z) + chunk), bounds))
    return out


def _level_outputs(dest: CloudVolume, mip: int, bounds: Bbox, levels: int, bpvs: list, first: int = 1) -> list:
    """One Output per level ``mip + first … mip + levels``: chunk files over ``bounds`` (at ``mip``)."""
    outputs = []
    for k in range(first, levels + 1):
        level = mip + k
        box = Bbox.clamp(dest.bbox_to_mip(bounds, mip, level), dest.meta.bounds(level))
        files = chunks_in(box, dest.meta.chunk_size(level), dest.meta.voxel_offset(level))
        what = f"mip {level} ({dest.meta.key(level)}), chunks {'x'.join(map(str, dest.meta.chunk_size(level)))}"
        outputs.append(Output(what, files, int(round(_voxels(box) * bpvs[k - first]))))
    return outputs


# -- image pyramids and transfers ------------------------------------------------------------------


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
        work=_voxels(region),
        outputs=_level_outputs(dest, mip, job.bounds, job.num_mips, bpvs),
        bytes_read=int(round(_voxels(region) * sample.stored_bpv)),
        task_shape=job.shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": _reads(vol, mip, reads, tasks, job.shape)})
    plan.add_requests(task_requests("DownsampleTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    return _common(plan, layer_path)


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
        work=_voxels(src_region),
        bytes_read=int(round(_voxels(src_region) * sample.stored_bpv)),
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
        plan.outputs = _level_outputs(dest, mip, region, job.levels, bpvs, first=0)
    plan.add_requests({"GET": _reads(src, mip, reads, tasks, job.shape)})
    plan.add_requests(task_requests(plan.task), tasks)
    plan.add_requests({"PUT": plan.files_written})
    updates_src = not kwargs.get("no_src_update", False) and src_layer_path.split("://")[0] in ("gs", "s3", "file")
    plan.add_requests({"GET": int(updates_src), "PUT": int(updates_src)})  # the source's provenance
    if not _committed(dest_layer_path):
        plan.add_requests(NEW_LAYER_PROBE)
    return _common(plan, dest_layer_path)


def _shard_outputs(job, vol: CloudVolume, levels, bpvs: list, bounds_mip: int) -> list:
    outputs = []
    for level, bpv in zip(levels, bpvs):
        box = Bbox.clamp(vol.bbox_to_mip(job.bounds, bounds_mip, level.mip), vol.meta.bounds(level.mip))
        shards = grid_cells(
            Bbox(vol.meta.voxel_offset(level.mip), vol.meta.voxel_offset(level.mip) + Vec(*level.size)),
            level.shard_shape,
        ) if box == vol.meta.bounds(level.mip) else max(1, grid_cells(box, level.shard_shape))  # fmt: skip
        chunks = chunks_in(box, level.chunk, vol.meta.voxel_offset(level.mip))
        nbytes = _voxels(box) * bpv + chunks * SHARD_INDEX_BYTES_PER_CHUNK
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
        work=_voxels(src_region),
        outputs=_shard_outputs(job, dest, [level], [bpv], mip),
        bytes_read=int(round(_voxels(src_region) * sample.stored_bpv)),
        task_shape=shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": _reads(src, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("ImageShardTransferTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    if not _committed(dst_layer_path):
        plan.add_requests(NEW_LAYER_PROBE, 2)
    return _common(plan, dst_layer_path)


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
        work=_voxels(region),
        outputs=_shard_outputs(job, vol, job.plan.levels, bpvs, mip),
        bytes_read=int(round(_voxels(region) * sample.stored_bpv)),
        task_shape=shape,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": _reads(src, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("ImageShardDownsampleTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    return _common(plan, cloudpath)


# -- voxel counts ----------------------------------------------------------------------------------


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
    task_voxels = _voxels(bounds) / max(1, tasks)
    # labels in a box grow more slowly than its volume: scale the sample by (volume ratio)^(2/3)
    scale = (task_voxels / max(1, sample.voxels / max(1, len(sample.images)))) ** (2 / 3)
    file_bytes = float(np.mean(per_voxel)) * (sample.voxels / max(1, len(sample.images))) * scale if per_voxel else 0
    plan = Plan(
        command="image voxels count",
        task="CountVoxelsTask",
        tasks=tasks,
        stage="voxel_count",
        work=_voxels(bounds),
        outputs=[
            Output(
                f"{vol.meta.key(mip)}/stats/voxel_counts/*.json (one per task)", tasks, int(round(file_bytes * tasks))
            )
        ],  # fmt: skip
        bytes_read=int(round(_voxels(bounds) * sample.stored_bpv)),
        task_shape=TASK_SHAPE,
        sample=sample.describe(),
    )
    plan.add_requests({"GET": _reads(vol, mip, reads, tasks, TASK_SHAPE)})
    plan.add_requests(task_requests("CountVoxelsTask"), tasks)
    plan.add_requests({"PUT": tasks})
    plan.notes.append("then `image voxels sum` reads the count files and writes stats/voxel_counts.im")
    return _common(plan, cloudpath)


# -- meshes ----------------------------------------------------------------------------------------


def _measured_forge(**kwargs):
    """A forge task whose writes are measured (files, bytes) instead of made."""
    from igneous.tasks.mesh.mesh import MeshTask

    task = MeshTask(**kwargs)
    task.files, task.nbytes = 0, 0

    def write_fragments(mesh_dir, box, fragments):
        if task.sharded:
            from mapbuffer import MapBuffer

            task.files += 1
            task.nbytes += len(MapBuffer(fragments, compress="br").tobytes())
            return
        comp = task.compress if task.compress not in (None, False, "none", "false") else None
        for data in fragments.values():
            task.files += 1
            task.nbytes += len(compress_bytes(data, comp)) if comp else len(data)

    def write_spatial_index(mesh_dir, box, spatial, vol):
        task.files += 1
        task.nbytes += len(compress_bytes(json.dumps(spatial).encode("utf8"), "gzip"))

    task._write_fragments = write_fragments
    task._write_spatial_index = write_spatial_index
    return task


def plan_meshing(layer_path: str, mip: int, **kwargs) -> Plan:
    """The plan of ``create_meshing_tasks(layer_path, mip, **kwargs)``: runs the forge on up to
    ``SAMPLES`` tasks spread over the grid (reading their boxes, writing nothing)."""
    from igneous.task_creation.mesh import prepare_meshing

    kwargs.pop("dry_run", None)
    job = prepare_meshing(layer_path, mip, **kwargs)
    vol, shape, kw = job.vol, job.shape, job.kwargs
    bounds = vol.meta.bounds(mip)
    tasks = grid_cells(bounds, shape)
    reads = grid_reads(bounds, shape, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip), bounds, pad_hi=(1, 1, 1))
    boxes, sub_shape, partial = _forge_samples(bounds, shape, tasks)
    files, nbytes = 0, 0
    for box in boxes:
        task = _measured_forge(shape=list(sub_shape), offset=box.minpt.tolist(), layer_path=layer_path, **kw)
        task.execute()
        files += task.files
        nbytes += task.nbytes
    per_task_files = files / max(1, len(boxes))
    per_task_bytes = nbytes / max(1, len(boxes))
    if partial:
        # One sub-box of a task: bytes follow the meshed surface, which in a segmentation of many
        # objects grows with the volume; fragment files follow the labels each task box meets.
        per_task_bytes = nbytes / float(np.prod(sub_shape)) * _voxels(bounds) / tasks
        if not kw["sharded"]:
            markers = 1 if kw["spatial_index"] else 0
            labels = max(files - markers, 0)
            if labels > 1:
                size = _object_size(labels, sub_shape)
                per_task_files = _labels_over_grid(bounds, shape, size) / tasks + markers
    what = ".frags (one per task)" if kw["sharded"] else "fragments {label}:0:{box}"
    plan = Plan(
        command="mesh forge",
        task="MeshTask",
        tasks=tasks,
        stage="mesh_forge",
        work=_voxels(bounds),
        outputs=[
            Output(
                f"{job.mesh_dir}/ {what} and .spatial",
                int(round(per_task_files * tasks)),
                int(round(per_task_bytes * tasks)),
            )
        ],  # fmt: skip
        bytes_read=int(round(_voxels(bounds) * _stored_bpv(vol, mip))),
        task_shape=shape,
        sample={
            "forged": f"{len(boxes)} box(es) of {'x'.join(map(str, sub_shape))}",
            "files_per_task": round(per_task_files, 1),
            "bytes_per_task": int(per_task_bytes),
        },
    )
    plan.add_requests({"GET": _reads(vol, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("MeshTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    # stale .spatial markers are deleted first (1000 per request)
    plan.add_requests({"DELETE": -(-tasks // 1000) if kw["spatial_index"] else 0})
    return _common(plan, layer_path)


FORGE_SAMPLE_VOXELS = 2**22  # about 20 s of forging at the calibrated rate


def _forge_samples(bounds: Bbox, shape: Vec, tasks: int) -> tuple[list, Vec, bool]:
    """Boxes to forge for the estimate, their shape, and whether they are sub-boxes of a task.

    Whole tasks, spread over the grid, as many as fit ``FORGE_SAMPLE_VOXELS`` (all of them on
    a small volume: the estimate is then exact). When one task is bigger than that, a centred
    sub-box of the middle task, scaled up in ``plan_meshing`` (a statistical estimate).
    """
    task_voxels = int(np.prod(shape))
    if task_voxels <= FORGE_SAMPLE_VOXELS:
        count = max(1, min(tasks, FORGE_SAMPLE_VOXELS // task_voxels))
        return sample_boxes(bounds, shape, bounds.minpt, count), Vec(*shape), False
    side = (FORGE_SAMPLE_VOXELS / task_voxels) ** (1 / 3)
    sub = Vec(*[max(1, int(s * side)) for s in shape])
    [middle] = sample_boxes(bounds, shape, bounds.minpt, 1)
    lo = Vec(*np.maximum(middle.minpt, middle.minpt + (Vec(*middle.size3()) - sub) // 2))
    return [Bbox(lo, lo + sub)], sub, True


def _object_size(labels: float, box: Sequence[int]) -> float:
    """Typical object size L (voxels) such that objects of size L meet ``labels`` of them in a
    box: prod(1 + side / L) == labels (convex objects tiling space)."""
    lo, hi = 1e-3, 1e9
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        if float(np.prod(1 + np.asarray(box, dtype=float) / mid)) > labels:
            lo = mid
        else:
            hi = mid
    return lo


def _labels_over_grid(bounds: Bbox, shape: Vec, size: float) -> float:
    """Sum over every (clipped) task box of the labels it meets: prod over axes of
    sum over the task segments of (1 + length / L), since the model is separable."""
    total = 1.0
    for a in range(3):
        lo, hi, s = int(bounds.minpt[a]), int(bounds.maxpt[a]), int(shape[a])
        total *= sum(1 + (min(start + s, hi) - start) / size for start in range(lo, hi, s))
    return total


def _stored_bpv(vol: CloudVolume, mip: int) -> float:
    """Stored bytes per voxel from the sizes of a few chunk files (no decoding)."""
    if _sharded(vol, mip):
        return float(np.dtype(vol.dtype).itemsize)
    chunk, origin, bounds = Vec(*vol.meta.chunk_size(mip)), vol.meta.voxel_offset(mip), vol.meta.bounds(mip)
    boxes = [Bbox.intersection(b, bounds) for b in sample_boxes(bounds, chunk, origin, SAMPLES)]
    names = [f"{vol.meta.key(mip)}/{b.to_filename()}" for b in boxes]
    sizes = CloudFiles(vol.meta.cloudpath, progress=False).size(names)
    found = [(b, sizes[n]) for b, n in zip(boxes, names) if sizes.get(n) is not None]
    voxels = sum(_voxels(b) for b, _ in found)
    return sum(s for _, s in found) / voxels if voxels else 0.0


def _spatial_labels(layer_path: str, mesh_dir: str, vol: CloudVolume, info: dict) -> tuple[dict, list]:
    """``{label: [boxes]}`` from the forge's .spatial files, and their names."""
    mip = int(info["mip"])
    names = meshes.expected_spatial_names(vol.meta.bounds(mip), info)
    res = info["spatial_index"]["resolution"]
    cf = CloudFiles(meshes.mesh_path(layer_path, mesh_dir), progress=False)
    boxes: dict = {}
    for name, content in zip(names, cf.get_json(names)):
        box = meshes.box_from_spatial_filename(name, res)
        for label in content or {}:
            boxes.setdefault(int(label), []).append(box)
    return boxes, names


def plan_mesh_manifest(layer_path: str, magnitude: int = 3, mesh_dir: Optional[str] = None) -> Plan:
    """The plan of ``create_mesh_manifest_tasks`` (legacy merge): manifests sized exactly from
    the forge's .spatial files."""
    from igneous.task_creation.mesh import prepare_mesh_manifest, require_mesh_info

    mesh_dir, magnitude, tasks = prepare_mesh_manifest(layer_path, magnitude, mesh_dir)
    vol, _, info = require_mesh_info(layer_path, mesh_dir)
    labels, spatial = _spatial_labels(layer_path, mesh_dir, vol, info)
    manifest_bytes = sum(
        len(json.dumps({"fragments": [meshes.fragment_filename(label, 0, b) for b in boxes]}).encode())
        for label, boxes in labels.items()
    )
    fragments = sum(len(b) for b in labels.values())
    kind = (
        "MeshManifestFilesystemTask" if len(tasks) == 1 and "Filesystem" in repr(tasks[0]) else "MeshManifestPrefixTask"
    )
    plan = Plan(
        command="mesh merge",
        task=kind,
        tasks=len(tasks),
        stage="mesh_merge",
        work=len(labels),
        outputs=[Output(f"{mesh_dir}/ manifests {{label}}:0", len(labels), manifest_bytes)],
        sample={"labels": len(labels), "fragments": fragments, "spatial_files_read": len(spatial)},
    )
    plan.add_requests(task_requests(kind), len(tasks))
    files_listed = fragments + len(labels) + len(spatial)
    plan.add_requests({"LIST": max(len(tasks), -(-files_listed // 1000))})
    plan.add_requests({"GET": len(labels), "PUT": len(labels)})  # each manifest written, then read back
    plan.add_requests({"HEAD": len(spatial)})  # planning: every .spatial marker is checked
    return _common(plan, layer_path)


def _merged_bytes(layer_path: str, mesh_dir: str, names: list, num_lod: int, sharded: bool) -> tuple[int, int]:
    """(bytes of the forged fragments, estimated bytes of the merged multires meshes)."""
    cf = CloudFiles(meshes.mesh_path(layer_path, mesh_dir), progress=False)
    if sharded:
        sizes = cf.size(names)
        forged = sum(s for s in sizes.values() if s)
    else:
        forged = sum(s for name, s in cf.size(list(cf.list())).items() if s and name.count(":") == 2)
    ratio = MESH_MERGE_BYTES_RATIO["sharded" if sharded else "unsharded"]
    return int(forged), int(round(forged * ratio))


def plan_unsharded_multires_merge(cloudpath: str, **kwargs) -> Plan:
    """The plan of ``create_unsharded_multires_mesh_tasks`` (same arguments)."""
    from igneous.task_creation.multires import prepare_unsharded_multires_merge

    job = prepare_unsharded_multires_merge(cloudpath, **kwargs)
    labels, spatial = _spatial_labels(cloudpath, job.mesh_dir, job.vol, job.info)
    forged, merged = _merged_bytes(cloudpath, job.mesh_dir, [], int(job.kwargs["num_lod"]), False)
    tasks = len(job.prefixes)
    plan = Plan(
        command="mesh merge --nlod",
        task="MultiResUnshardedMeshMergeTask",
        tasks=tasks,
        stage="mesh_merge_multires",
        work=len(labels),
        outputs=[Output(f"{job.mesh_dir}/ {{label}}.index and {{label}}", 2 * len(labels), merged)],
        bytes_read=forged,
        sample={"labels": len(labels), "forged_bytes": forged},
    )
    fragments = sum(len(b) for b in labels.values())
    plan.add_requests(task_requests(plan.task), tasks)
    plan.add_requests({"LIST": max(tasks, -(-fragments // 1000)), "GET": fragments, "PUT": 2 * len(labels)})
    plan.add_requests({"HEAD": len(spatial)})
    plan.notes.append(
        "merged bytes use igneous.throughput.MESH_MERGE_BYTES_RATIO (Draco bytes per forged byte, measured)"
    )
    return _common(plan, cloudpath)


def plan_sharded_multires_merge(cloudpath: str, **kwargs) -> Plan:
    """The plan of ``create_sharded_multires_mesh_tasks`` (same arguments)."""
    import shardcomputer

    from igneous.task_creation.multires import prepare_sharded_multires_merge

    job = prepare_sharded_multires_merge(cloudpath, **kwargs)
    frag_root = job.kwargs.get("frag_path") or cloudpath
    labels_boxes, spatial = _spatial_labels(cloudpath, job.mesh_dir, job.vol, job.info)
    res = job.info["spatial_index"]["resolution"]
    frags = [meshes.frags_filename_from_spatial(n, res) for n in spatial]
    forged, merged = _merged_bytes(frag_root, job.mesh_dir, frags, int(job.kwargs["num_lod"]), True)
    groups = shardcomputer.assign_labels_to_shards(
        np.asarray(job.labels, dtype=np.uint64), 0, job.spec["shard_bits"], job.spec["minishard_bits"]
    )
    labels_bytes = sum(
        len(compress_bytes(json.dumps(sorted(int(x) for x in g)).encode(), "gzip")) for g in groups.values()
    )
    # each task reads the .frags of every box holding one of its labels
    frag_reads = sum(
        len({b.to_filename() for label in group for b in labels_boxes.get(int(label), [])}) for group in groups.values()
    )
    tasks = len(groups)
    uses_db = bool(job.kwargs.get("spatial_index_db"))
    plan = Plan(
        command="mesh merge-sharded",
        task="MultiResShardedMeshMergeTask",
        tasks=tasks,
        stage="mesh_merge_multires",
        work=len(job.labels),
        outputs=[
            Output(f"{job.mesh_dir}/ {{shard}}.shard", tasks, merged),
            Output(f"{job.mesh_dir}/ {{shard}}.labels", tasks, labels_bytes),
        ],
        bytes_read=forged,
        sample={"labels": len(job.labels), "forged_bytes": forged, "shards": tasks},
    )
    plan.add_requests(task_requests(plan.task), tasks)
    plan.add_requests({"GET": frag_reads + tasks * (0 if uses_db else len(spatial)), "HEAD": tasks * len(spatial)})
    plan.add_requests({"PUT": tasks})
    plan.add_requests({"GET": len(spatial), "HEAD": 2 * len(spatial), "PUT": tasks})  # planning: labels files
    plan.notes.append(
        "merged bytes use igneous.throughput.MESH_MERGE_BYTES_RATIO (Draco bytes per forged byte, measured)"
    )
    return _common(plan, cloudpath)


def _sharded(vol: CloudVolume, mip: int) -> bool:
    return "sharding" in vol.meta.info["scales"][mip]
