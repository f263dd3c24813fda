"""Priced plans of meshes: ``mesh forge`` (sample tasks forged without writing) and the merges
(``mesh merge``, ``--nlod``, ``merge-sharded``), sized from the forge's .spatial files.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles.compression import compress as compress_bytes
from cloudvolume import CloudVolume

from igneous import meshes
from igneous.label_shards import shard_groups, shard_labels_bytes
from igneous.plan import Output, Plan, grid_cells, grid_reads, task_requests
from igneous.plans.common import (
    box_voxels,
    chunk_gets,
    finish_plan,
    forge_samples,
    labels_over_grid,
    object_size,
    spatial_labels,
    stored_bytes_per_voxel,
)
from igneous.throughput import MESH_MERGE_BYTES_RATIO

__all__ = [
    "FORGE_SAMPLE_VOXELS",
    "plan_meshing",
    "plan_mesh_manifest",
    "plan_unsharded_multires_merge",
    "plan_sharded_multires_merge",
]


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
    boxes, sub_shape, partial = forge_samples(bounds, shape, tasks, FORGE_SAMPLE_VOXELS)
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
        per_task_bytes = nbytes / float(np.prod(sub_shape)) * box_voxels(bounds) / tasks
        if not kw["sharded"]:
            markers = 1 if kw["spatial_index"] else 0
            labels = max(files - markers, 0)
            if labels > 1:
                size = object_size(labels, sub_shape)
                per_task_files = labels_over_grid(bounds, shape, size) / tasks + markers
    what = ".frags (one per task)" if kw["sharded"] else "fragments {label}:0:{box}"
    plan = Plan(
        command="mesh forge",
        task="MeshTask",
        tasks=tasks,
        stage="mesh_forge",
        work=box_voxels(bounds),
        outputs=[
            Output(
                f"{job.mesh_dir}/ {what} and .spatial",
                int(round(per_task_files * tasks)),
                int(round(per_task_bytes * tasks)),
            )
        ],  # fmt: skip
        bytes_read=int(round(box_voxels(bounds) * stored_bytes_per_voxel(vol, mip))),
        task_shape=shape,
        sample={
            "forged": f"{len(boxes)} box(es) of {'x'.join(map(str, sub_shape))}",
            "files_per_task": round(per_task_files, 1),
            "bytes_per_task": int(per_task_bytes),
        },
    )
    plan.add_requests({"GET": chunk_gets(vol, mip, reads, tasks, shape)})
    plan.add_requests(task_requests("MeshTask"), tasks)
    plan.add_requests({"PUT": plan.files_written})
    # stale .spatial markers are deleted first (1000 per request)
    plan.add_requests({"DELETE": -(-tasks // 1000) if kw["spatial_index"] else 0})
    return finish_plan(plan, layer_path)


FORGE_SAMPLE_VOXELS = 2**22  # about 20 s of forging at the calibrated rate


def _spatial_labels(layer_path: str, mesh_dir: str, vol: CloudVolume, info: dict) -> tuple[dict, list, int]:
    """``{label: [boxes]}`` from the forge's .spatial files, their names, and how many of them
    a merge's planning reads to see that the forge found a label (``checks.forge_found_labels``)."""
    from igneous.task_creation.checks import found_labels_reads

    names, spatial = spatial_labels(meshes.mesh_path(layer_path, mesh_dir), vol.meta.bounds(int(info["mip"])), info)
    res = info["spatial_index"]["resolution"]
    boxes = {label: [meshes.box_from_spatial_filename(n, res) for n in ns] for label, ns in names.items()}
    return boxes, spatial, found_labels_reads(spatial, {n for ns in names.values() for n in ns})


def plan_mesh_manifest(layer_path: str, magnitude: int = 3, mesh_dir: Optional[str] = None) -> Plan:
    """The plan of ``create_mesh_manifest_tasks`` (legacy merge): manifests sized exactly from
    the forge's .spatial files."""
    from igneous.task_creation.mesh import prepare_mesh_manifest, require_mesh_info

    mesh_dir, magnitude, tasks = prepare_mesh_manifest(layer_path, magnitude, mesh_dir)
    vol, _, info = require_mesh_info(layer_path, mesh_dir)
    labels, spatial, label_reads = _spatial_labels(layer_path, mesh_dir, vol, info)
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
    plan.add_requests({"GET": label_reads})  # planning: .spatial files read until one lists a label
    return finish_plan(plan, layer_path)


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
    labels, spatial, label_reads = _spatial_labels(cloudpath, job.mesh_dir, job.vol, job.info)
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
    plan.add_requests({"HEAD": len(spatial), "GET": label_reads})  # planning: markers, labels found
    plan.notes.append(
        "merged bytes use igneous.throughput.MESH_MERGE_BYTES_RATIO (Draco bytes per forged byte, measured)"
    )
    return finish_plan(plan, cloudpath)


def plan_sharded_multires_merge(cloudpath: str, **kwargs) -> Plan:
    """The plan of ``create_sharded_multires_mesh_tasks`` (same arguments)."""
    from igneous.task_creation.multires import prepare_sharded_multires_merge

    job = prepare_sharded_multires_merge(cloudpath, **kwargs)
    frag_root = job.kwargs.get("frag_path") or cloudpath
    labels_boxes, spatial, _ = _spatial_labels(cloudpath, job.mesh_dir, job.vol, job.info)
    res = job.info["spatial_index"]["resolution"]
    frags = [meshes.frags_filename_from_spatial(n, res) for n in spatial]
    forged, merged = _merged_bytes(frag_root, job.mesh_dir, frags, int(job.kwargs["num_lod"]), True)
    groups = shard_groups(job.labels, job.spec)
    labels_bytes = sum(shard_labels_bytes(g) for g in groups.values())
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
    return finish_plan(plan, cloudpath)
