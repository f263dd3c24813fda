"""Priced plans of skeletons: ``skeleton forge`` (sample tasks forged without writing) and the
merges (``skeleton merge``, ``merge-sharded``), sized from the forge's .spatial files and a few
labels merged in memory.
"""

from __future__ import annotations

import json

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles.compression import compress as compress_bytes
from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous import skeletons as fmt
from igneous.label_shards import shard_groups, shard_labels_bytes
from igneous.layerfiles import strip_compression_extension, subdir_files, subdir_path
from igneous.plan import Output, Plan, grid_reads, task_requests
from igneous.plans.common import (
    SHARD_INDEX_BYTES_PER_CHUNK,
    box_voxels,
    chunk_gets,
    finish_plan,
    forge_samples,
    labels_over_grid,
    object_size,
    spatial_labels,
    stored_bytes_per_voxel,
)

__all__ = [
    "FORGE_SAMPLE_VOXELS",
    "MERGE_SAMPLE_LABELS",
    "plan_skeletonizing",
    "plan_unsharded_skeleton_merge",
    "plan_sharded_skeleton_merge",
]

FORGE_SAMPLE_VOXELS = 2**22  # about 9 s of forging at the calibrated rate
MERGE_SAMPLE_LABELS = 64  # labels merged in memory to size a merge (all of them when fewer)


def _measured_forge(make, **kwargs):
    """A forge task whose writes are measured (files, bytes) instead of made."""
    task = make(**kwargs)
    task.files, task.nbytes = 0, 0

    def write_fragments(layer, skel_dir, read, grid, res_json, fragments):
        if task.sharded:
            from mapbuffer import MapBuffer

            task.files += 1
            task.nbytes += len(MapBuffer(fragments, compress="br").tobytes())
            return
        for data in fragments.values():
            task.files += 1
            task.nbytes += len(compress_bytes(data, "gzip"))

    def write_spatial_index(layer, skel_dir, grid, res_json, spatial):
        task.files += 1
        task.nbytes += len(compress_bytes(json.dumps(spatial).encode("utf8"), "gzip"))

    task._write_fragments = write_fragments
    task._write_spatial_index = write_spatial_index
    return task


def plan_skeletonizing(layer_path: str, mip: int, **kwargs) -> Plan:
    """The plan of ``create_skeletonizing_tasks(layer_path, mip, **kwargs)``: runs the forge on
    sample tasks spread over the grid (reading their boxes, writing nothing)."""
    from igneous.task_creation.skeleton import make_forge_task, plan_skeletonizing_tasks

    kwargs.pop("dry_run", None)
    job = plan_skeletonizing_tasks(layer_path, mip, **kwargs)
    vol = CloudVolume(layer_path, mip=mip, progress=False, cdn_cache=False)
    bounds, shape, tasks, kw = job.bounds, Vec(*job.shape), job.num_tasks, job.task_kwargs
    layer = vol.meta.bounds(mip)
    reads = grid_reads(bounds, shape, vol.meta.chunk_size(mip), vol.meta.voxel_offset(mip), layer, pad_hi=(1, 1, 1))
    boxes, sub_shape, partial = forge_samples(bounds, shape, tasks, FORGE_SAMPLE_VOXELS)
    index = job.synapse_index
    files, nbytes = 0, 0
    for box in boxes:
        task = _measured_forge(
            make_forge_task, shape=list(sub_shape), offset=box.minpt.tolist(),
            synapse_index=index[:2] if index else None, resolution=index[2] if index else None, **kw,
        )  # fmt: skip
        task.execute()
        files += task.files
        nbytes += task.nbytes
    per_task_files = files / max(1, len(boxes))
    per_task_bytes = nbytes / max(1, len(boxes))
    if partial:
        # One sub-box of a task: skeleton bytes follow the cable, which in a segmentation of many
        # objects grows with the volume; fragment files follow the labels each task box meets.
        per_task_bytes = nbytes / float(np.prod(sub_shape)) * box_voxels(bounds) / tasks
        if not kw["sharded"]:
            markers = 1 if kw["spatial_index"] else 0
            labels = max(files - markers, 0)
            if labels > 1:
                per_task_files = labels_over_grid(bounds, shape, object_size(labels, sub_shape)) / tasks + markers
    what = ".frags (one per task)" if kw["sharded"] else "fragments {label}:{box}"
    where = f"{kw['frag_path']}/ " if kw["sharded"] and kw["frag_path"] else f"{job.skel_dir}/ "
    plan = Plan(
        command="skeleton forge",
        task="SkeletonTask",
        tasks=tasks,
        stage="skeleton_forge",
        work=box_voxels(bounds),
        outputs=[Output(f"{where}{what} and .spatial", int(round(per_task_files * tasks)),
                        int(round(per_task_bytes * tasks)))],  # fmt: skip
        bytes_read=int(round(box_voxels(bounds) * stored_bytes_per_voxel(vol, mip))),
        task_shape=shape,
        sample={
            "forged": f"{len(boxes)} box(es) of {'x'.join(map(str, sub_shape))}",
            "files_per_task": round(per_task_files, 1),
            "bytes_per_task": int(per_task_bytes),
        },
    )
    plan.add_requests({"GET": chunk_gets(vol, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("SkeletonTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    # stale .spatial markers of an earlier forge are deleted first (1000 per request)
    plan.add_requests({"DELETE": -(-tasks // 1000) if job.remove_stale_spatial else 0})
    return finish_plan(plan, layer_path)


def _sample(labels: list) -> list:
    """Up to ``MERGE_SAMPLE_LABELS`` labels spread evenly over the sorted labels."""
    labels = sorted(labels)
    if len(labels) <= MERGE_SAMPLE_LABELS:
        return labels
    step = len(labels) / MERGE_SAMPLE_LABELS
    return [labels[int((i + 0.5) * step)] for i in range(MERGE_SAMPLE_LABELS)]


class _MergeSample:
    """Labels merged in memory: output bytes per forged fragment, and the share that survives."""

    def __init__(self, fragments: dict):
        self.fragments = fragments  # {label: fragment count} (from the spatial index)
        self.labels = 0
        self.kept = 0
        self.nbytes = 0
        self.frags = 0

    def add(self, label: int, skel, encode) -> None:
        self.labels += 1
        self.frags += self.fragments[label]
        if skel is not None:
            self.kept += 1
            self.nbytes += encode(skel)

    def scaled(self) -> tuple[int, int]:
        """(files, bytes) over every label: a label's bytes go with its fragment count."""
        if not self.labels:
            return 0, 0
        total_frags = sum(self.fragments.values())
        files = self.kept / self.labels * len(self.fragments)
        nbytes = self.nbytes / max(1, self.frags) * total_frags
        return int(round(files)), int(round(nbytes))

    def describe(self) -> dict:
        return {"labels_merged": self.labels, "labels_kept": self.kept, "labels": len(self.fragments),
                "fragments": sum(self.fragments.values())}  # fmt: skip


def _forged(layer_path: str, job) -> tuple[dict, list]:
    from igneous.task_creation.skeleton_merge import forge_bounds

    bounds = forge_bounds(job.vol, job.skel_dir, job.info)
    return spatial_labels(subdir_path(layer_path, job.skel_dir), bounds, job.info)


def plan_unsharded_skeleton_merge(layer_path: str, **kwargs) -> Plan:
    """The plan of ``create_unsharded_skeleton_merge_tasks`` (same arguments): labels and
    fragments counted exactly from the .spatial files, bytes and surviving labels from merging
    up to ``MERGE_SAMPLE_LABELS`` labels in memory."""
    from igneous.task_creation.skeleton_merge import prepare_unsharded_skeleton_merge
    from igneous.tasks.skeleton import _box_order, _MergeContext, merge_unsharded_label

    job = prepare_unsharded_skeleton_merge(layer_path, **kwargs)
    labels, spatial = _forged(layer_path, job)
    sample = _MergeSample({label: len(names) for label, names in labels.items()})
    context = _MergeContext(job.info, job.vol.info)
    cf = subdir_files(subdir_path(layer_path, job.skel_dir))
    kw = job.kwargs
    for label in _sample(list(labels)):
        names = [strip_compression_extension(n) for n in cf.list(prefix=f"{label}:", flat=True)]
        names = _box_order([n for n in names if fmt.parse_fragment_name(n) is not None], lambda n: n.split(":", 1)[1])
        named = [(n, cf.get(n)) for n in names]
        skel = merge_unsharded_label(context, label, named, kw["crop"], kw["dust_threshold"], kw["tick_threshold"],
                                     kw["max_cable_length"]) if named else None  # fmt: skip
        sample.add(label, skel, lambda s: len(compress_bytes(fmt.encode_skeleton(s, context.attributes), "gzip")))
    files, nbytes = sample.scaled()
    tasks = len(job.prefixes)
    fragments = sum(sample.fragments.values())
    plan = Plan(
        command="skeleton merge",
        task="UnshardedSkeletonMergeTask",
        tasks=tasks,
        stage="skeleton_merge",
        work=len(labels),
        outputs=[Output(f"{job.skel_dir}/ skeletons {{label}}", files, nbytes)],
        bytes_read=_fragment_bytes(cf),
        sample=sample.describe(),
    )
    plan.add_requests(task_requests(plan.task), tasks)
    # each task lists its prefix (.spatial names start with digits too), reads every fragment,
    # writes its skeletons and reads each back to verify it
    plan.add_requests({"LIST": max(tasks, -(-(fragments + len(spatial)) // 1000))})
    plan.add_requests({"GET": fragments + files, "PUT": files})
    if kw["delete_fragments"]:
        plan.add_requests({"DELETE": tasks})
    plan.add_requests({"HEAD": len(spatial)})  # planning: every .spatial marker is checked
    plan.notes.append(f"bytes and kept labels from {sample.labels} label(s) merged in memory")
    return finish_plan(plan, layer_path)


def _fragment_bytes(cf: CloudFiles) -> int:
    """Stored bytes of the forged fragments (``{label}:{box}`` files) the merge reads."""
    names = [n for n in cf.list(flat=True) if fmt.parse_fragment_name(strip_compression_extension(n)) is not None]
    return int(sum(s for s in cf.size(names).values() if s)) if names else 0


def plan_sharded_skeleton_merge(layer_path: str, **kwargs) -> Plan:
    """The plan of ``create_sharded_skeleton_merge_tasks`` (same arguments): shards exactly,
    bytes and surviving labels from merging up to ``MERGE_SAMPLE_LABELS`` labels in memory."""
    from igneous.task_creation.skeleton_merge import prepare_sharded_skeleton_merge
    from igneous.tasks.skeleton import _MergeContext, collect_fragments, merge_sharded_label

    job = prepare_sharded_skeleton_merge(layer_path, **kwargs)
    labels, spatial = _forged(layer_path, job)
    sample = _MergeSample({int(x): len(labels.get(int(x), [])) for x in job.labels})
    context = _MergeContext(job.info, job.vol.info)
    res = job.info["spatial_index"]["resolution"]
    picked = _sample(list(sample.fragments))
    raw = collect_fragments(job.root, {x: labels[x] for x in picked}, res)
    kw = job.kwargs
    gzip = job.spec.get("data_encoding", "gzip") == "gzip"

    def encoded(skel) -> int:
        data = fmt.encode_skeleton(skel, context.attributes)
        return len(compress_bytes(data, "gzip")) if gzip else len(data)

    for label in picked:
        skel = merge_sharded_label(context, label, raw.pop(label), kw["dust_threshold"], kw["tick_threshold"],
                                   kw["max_cable_length"])  # fmt: skip
        sample.add(label, skel, encoded)
    kept, nbytes = sample.scaled()
    groups = shard_groups(job.labels, job.spec)
    tasks = len(groups)
    # each shard: its labels' data, a minishard index entry per label, its fixed shard index
    nbytes += kept * SHARD_INDEX_BYTES_PER_CHUNK + tasks * 16 * 2 ** int(job.spec["minishard_bits"])
    # each task reads (and sizes) the .frags of every box holding one of its labels
    frag_reads = sum(len({n for x in group for n in labels.get(int(x), [])}) for group in groups.values())
    uses_db = bool(kw.get("spatial_index_db"))
    plan = Plan(
        command="skeleton merge-sharded",
        task="ShardedSkeletonMergeTask",
        tasks=tasks,
        stage="skeleton_merge_sharded",
        work=len(job.labels),
        outputs=[
            Output(f"{job.skel_dir}/ {{shard}}.shard", tasks, nbytes),
            Output(f"{job.skel_dir}/ {{shard}}.labels", tasks, sum(shard_labels_bytes(g) for g in groups.values())),
        ],
        bytes_read=_frags_bytes(job.root, spatial, res),
        sample=dict(sample.describe(), shards=tasks),
    )
    plan.add_requests(task_requests(plan.task), tasks)
    # the spatial index is read whole by every task (unless a database answers)
    plan.add_requests({"GET": frag_reads + tasks * (0 if uses_db else len(spatial)), "HEAD": frag_reads})
    plan.add_requests({"PUT": tasks})
    # planning: every .spatial checked and read, every .frags checked, the labels files written
    plan.add_requests({"GET": len(spatial), "HEAD": 2 * len(spatial), "PUT": tasks})
    plan.notes.append(f"bytes and kept labels from {sample.labels} label(s) merged in memory")
    return finish_plan(plan, layer_path)


def _frags_bytes(root: str, spatial: list, res) -> int:
    from igneous.spatial import frags_filename_from_spatial

    sizes = CloudFiles(root, progress=False).size([frags_filename_from_spatial(n, res) for n in spatial])
    return int(sum(s for s in sizes.values() if s))
