"""Priced plans of ``image ccl faces|links|calc-labels|relabel|auto``.

Each step is validated as its creator validates it, then a few of its tasks are computed
without writing: the faces pass labels sample task boxes and measures the files it would write;
links computes sample tasks' equivalences from the faces files; relabel relabels sample boxes
and encodes them in the destination's chunks; calc-labels counts the labels of sample tasks and
sizes their tables. ``auto`` (before any step ran) prices every step from the faces sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles.compression import compress as compress_bytes

from igneous.plan import Output, Plan, grid_reads, task_requests
from igneous.plans.common import (
    box_voxels,
    chunk_gets,
    chunked_bytes,
    finish_plan,
    run_compress,
    spread_cells,
    stored_bytes_per_voxel,
)
from igneous.throughput import CCL_LINKS_PER_TABLE_BYTE

__all__ = [
    "CCL_SAMPLE_VOXELS",
    "plan_ccl_faces",
    "plan_ccl_links",
    "plan_ccl_calc_labels",
    "plan_ccl_relabel_run",
    "plan_ccl_auto",
]

CCL_SAMPLE_VOXELS = 2**24  # voxels labelled (or relabelled) per plan: about 0.3 cpu-s
MAX_SAMPLE_TASKS = 8
LINK_SAMPLES = 16  # links and calc-labels read small files: more tasks, spread over the grid
KINDS = ("labels", "leading", "counts", "faces")
VOLUME_KINDS = ("labels", "counts")  # files that grow with a task's voxels; the others with its faces


def _kind(path: str) -> str:
    return path.split("/ccl/", 1)[1].split("/", 1)[0]


def _stored(data: bytes, options: dict) -> int:
    comp = options.get("compress")
    if options.get("raw") or comp in (None, False):
        return len(data)
    return len(compress_bytes(data, comp))


def _offset(grid, point) -> list:
    return [int(lo + p * s) for lo, p, s in zip(grid.minpt, point, grid.shape)]


def _run_kwargs(threshold_gte, threshold_lte, connectivity) -> dict:
    return {"threshold_gte": threshold_gte, "threshold_lte": threshold_lte, "connectivity": int(connectivity)}



@dataclass
class FacesSample:
    """Pass 1 computed on sample boxes: bytes of each kind of file, and the boxes' labels.

    Files that grow with the volume (labels, counts) are priced per voxel of the boxes' own
    parts; the others (faces, leading slices) per task, scaled by face area for sub-boxes.
    """

    tasks: int = 0
    scaled: bool = False
    sub_shape: Optional[Sequence[int]] = None
    voxels: int = 0  # own voxels of the sample boxes
    bytes: dict = field(default_factory=lambda: {k: 0.0 for k in KINDS})
    counts: list = field(default_factory=list)  # labels per task (scaled to a whole task by volume: an upper bound)
    boxes: list = field(default_factory=list)  # with keep_boxes: each sample's own box of labels

    def total(self, kind: str, tasks: int, layer_voxels: int) -> float:
        if kind in VOLUME_KINDS:
            return self.bytes[kind] / max(1, self.voxels) * layer_voxels
        return self.bytes[kind] / max(1, self.tasks) * tasks


def _faces_sample(plan, fill_missing: bool, dust: int, keep_boxes: bool = False) -> FacesSample:
    """Run pass 1 on up to ``MAX_SAMPLE_TASKS`` boxes spread over the layer (``CCL_SAMPLE_VOXELS``
    in all) without writing.

    Whole tasks when they fit the budget; otherwise boxes of a smaller shape on a grid of that
    shape (what a task of that shape would do), scaled up: labels and counts by volume, faces
    by the area of a face (a statistical estimate, noted in the plan).
    """
    import zstandard

    from igneous.tasks.image.ccl import _Task, face_task_files, read_labels_file

    grid, params = plan.grid, plan.params
    task_voxels = math.prod(params.shape)
    count = max(1, min(MAX_SAMPLE_TASKS, grid.num_tasks))
    sample = FacesSample()
    if task_voxels * count <= CCL_SAMPLE_VOXELS:
        picks = [(_offset(grid, point), params.shape) for point in spread_cells(grid.grid_size, count)]
    else:  # MAX_SAMPLE_TASKS smaller boxes, spread over the layer even when it is one task
        side = (CCL_SAMPLE_VOXELS / MAX_SAMPLE_TASKS / task_voxels) ** (1 / 3)
        sub = [max(1, int(s * side)) for s in params.shape]
        sub_grid = [-(-(hi - lo) // s) for lo, hi, s in zip(grid.minpt, grid.maxpt, sub)]
        picks = [([lo + p * s for lo, p, s in zip(grid.minpt, point, sub)], sub)
                 for point in spread_cells(sub_grid, MAX_SAMPLE_TASKS)]  # fmt: skip
        sample.scaled, sample.sub_shape = True, sub
    run = _run_kwargs(params.threshold_gte, params.threshold_lte, params.connectivity)
    for offset, shape in picks:
        task = _Task(plan.cloudpath, plan.mip, shape, offset, fill_missing)
        own = box_voxels(task.own)
        volume_scale = task_voxels / own if sample.scaled else 1.0
        for path, data, options in face_task_files(task, dust_threshold=dust, **run):
            kind = _kind(path)
            area_scale = 1.0 if kind in VOLUME_KINDS else volume_scale ** (2 / 3)
            sample.bytes[kind] += _stored(data, options) * area_scale
            if kind == "labels":
                labels = read_labels_file(zstandard.ZstdDecompressor().decompress(data))
                sample.counts.append(int(labels.max() if labels.size else 0) * volume_scale)
                if keep_boxes:
                    sample.boxes.append(np.array(labels[tuple(slice(0, int(s)) for s in task.own.size3())]))
                del labels
        sample.voxels += own
        sample.tasks += 1
    return sample


def _faces_outputs(plan, sample: FacesSample, dust: int) -> list:
    t, ccl, voxels = plan.num_tasks, f"{plan.key}/ccl", box_voxels(plan.grid.bounds)

    def out(kind: str, what: str, files: int) -> Output:
        return Output(f"{ccl}/{kind}/ {what}", files, int(round(sample.total(kind, t, voxels))))

    outputs = [out("labels", "(one per task, zstd)", t), out("leading", "(one per task)", t),
               out("faces", "(three per task)", 3 * t)]  # fmt: skip
    if dust:
        outputs.append(out("counts", "(one per task)", t))
    outputs.append(Output(f"{ccl}/params.json", 1, len(plan.params.dumps())))
    return outputs


def _faces_reads(plan) -> tuple:
    from cloudvolume import CloudVolume

    vol = CloudVolume(plan.cloudpath, mip=plan.mip, progress=False)
    bounds = plan.grid.bounds
    reads = grid_reads(bounds, plan.params.shape, vol.meta.chunk_size(plan.mip), vol.meta.voxel_offset(plan.mip),
                       bounds, pad_hi=(1, 1, 1))  # fmt: skip
    return chunk_gets(vol, plan.mip, reads, plan.num_tasks, plan.params.shape), vol


def _faces_stage(connectivity: int) -> str:
    return "ccl_faces" if int(connectivity) == 6 else "ccl_faces_26"  # 18 is priced as 26 (an upper bound)


def plan_ccl_faces(cloudpath: str, mip: int, shape=(512, 512, 512), threshold_gte=None, threshold_lte=None,
                   fill_missing: bool = False, dust_threshold: int = 0, connectivity: int = 6) -> Plan:  # fmt: skip
    """The plan of ``create_ccl_face_tasks`` (same arguments)."""
    from igneous.task_creation.ccl import plan_ccl

    plan = plan_ccl(cloudpath, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    _refuse_other_run(plan)
    sample = _faces_sample(plan, fill_missing, int(dust_threshold))
    gets, vol = _faces_reads(plan)
    out = Plan(
        command="image ccl faces",
        task="CCLFacesTask",
        tasks=plan.num_tasks,
        stage=_faces_stage(plan.params.connectivity),
        work=box_voxels(plan.grid.bounds),
        outputs=_faces_outputs(plan, sample, int(dust_threshold)),
        bytes_read=int(round(box_voxels(plan.grid.bounds) * stored_bytes_per_voxel(vol, mip))),
        task_shape=plan.params.shape,
        sample=_describe(sample),
    )
    out.add_requests({"GET": gets})
    out.add_requests(task_requests("CCLFacesTask"), out.tasks)
    out.add_requests({"PUT": out.files_written})
    _note_scaled(out, sample)
    return finish_plan(out, cloudpath)


def _refuse_other_run(plan) -> None:
    from igneous.task_creation.ccl import check_no_other_run

    check_no_other_run(plan, CloudFiles(_layer_root(plan.cloudpath), progress=False))


def _layer_root(path: str) -> str:
    from cloudvolume import CloudVolume

    return CloudVolume(path, progress=False).meta.cloudpath


def _describe(sample: FacesSample) -> dict:
    out = {"tasks_labelled": sample.tasks}
    if sample.scaled:
        out["sub_box"] = "x".join(map(str, sample.sub_shape))
    return out


def _note_scaled(plan: Plan, sample: FacesSample) -> None:
    if sample.scaled:
        plan.notes.append(
            f"tasks are larger than the sampling budget: {sample.tasks} box(es) of {'x'.join(map(str, sample.sub_shape))} "
            "were labelled and scaled up (labels by volume, faces by area): a statistical estimate"
        )


def _neighbour_reads(grid) -> int:
    """Faces files read by pass 2: one per task and axis on which it has a lower neighbour."""
    gx, gy, gz = grid.grid_size
    return (gx - 1) * gy * gz + gx * (gy - 1) * gz + gx * gy * (gz - 1)


def _list_pages(files: int) -> int:
    return max(1, -(-int(files) // 1000))


def plan_ccl_links(cloudpath: str, mip: int, shape=(512, 512, 512), threshold_gte=None, threshold_lte=None,
                   fill_missing: bool = False, dust_threshold: int = 0, connectivity: int = 6) -> Plan:  # fmt: skip
    """The plan of ``create_ccl_equivalence_tasks`` (same arguments; the faces pass must be done):
    up to ``LINK_SAMPLES`` tasks' equivalences computed from the faces files, not written."""
    from igneous.task_creation.ccl import create_ccl_equivalence_tasks, plan_ccl
    from igneous.tasks.image.ccl import BROTLI_LEVEL, _Task, equivalences_file

    args = (threshold_gte, threshold_lte, fill_missing, dust_threshold, connectivity)
    create_ccl_equivalence_tasks(cloudpath, mip, shape, *args)  # validation only: the grid is lazy, not drained
    plan = plan_ccl(cloudpath, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    grid, t = plan.grid, plan.num_tasks
    run = _run_kwargs(plan.params.threshold_gte, plan.params.threshold_lte, plan.params.connectivity)
    sizes, read = [], []
    cf = CloudFiles(_layer_root(cloudpath), progress=False)
    for point in spread_cells(grid.grid_size, LINK_SAMPLES):
        task = _Task(cloudpath, mip, plan.params.shape, _offset(grid, point), fill_missing)
        _, data = equivalences_file(task, **run)
        sizes.append(len(compress_bytes(data, "br", compress_level=BROTLI_LEVEL)))
        read.append(_leading_size(cf, plan.key, task.gridpoint))
    faces_read = _neighbour_reads(grid)
    face_bytes = _dir_bytes(cf, f"{plan.key}/ccl/faces/")
    out = Plan(
        command="image ccl links",
        task="CCLEquivalancesTask",
        tasks=t,
        stage="ccl_links",
        work=box_voxels(grid.bounds),
        outputs=[Output(f"{plan.key}/ccl/equivalences/ (one per task)", t, int(round(np.mean(sizes) * t)))],
        bytes_read=int(round(np.mean(read) * t + face_bytes * faces_read / max(1, 3 * t))),
        task_shape=plan.params.shape,
        sample={"tasks_linked": len(sizes)},
    )
    out.add_requests(task_requests("CCLEquivalancesTask"), t)
    out.add_requests({"GET": t + faces_read, "PUT": t})  # its leading file, its neighbours' faces; its links
    out.add_requests({"LIST": _list_pages(3 * t)})  # planning: are the faces all there?
    return finish_plan(out, cloudpath)


def _leading_size(cf: CloudFiles, key: str, point) -> int:
    from igneous.tasks.image.ccl_layout import leading_path

    return int(cf.size(leading_path(key, point)) or 0)


def _dir_bytes(cf: CloudFiles, prefix: str) -> int:
    names = list(cf.list(prefix))
    return int(sum(s or 0 for s in cf.size(names).values())) if names else 0


def _relabel_table_bytes(counts: Sequence[float], tasks: int, per_task_labels: int) -> float:
    """Bytes of the relabel tables of tasks with ``counts`` labels each (brotli 3 JSON, ids numbered
    in task order): built for the sample and scaled to every task."""
    from igneous.ops.ccl import format_label_map
    from igneous.tasks.image.ccl_relabel import BROTLI_LEVEL

    if not counts:
        return 0.0
    mean = float(np.mean(counts))
    total = 0.0
    for i, n in enumerate(counts):
        task_num = int((i + 0.5) * tasks / len(counts))
        n = int(round(n))
        keys = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(task_num * per_task_labels)
        ids = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(int(mean * task_num))
        total += len(compress_bytes(format_label_map(keys, ids), "br", compress_level=BROTLI_LEVEL))
    return total / len(counts) * tasks


def plan_ccl_calc_labels(cloudpath: str, mip: int, shape=(512, 512, 512), connectivity: Optional[int] = None) -> Plan:
    """The plan of ``create_relabeling`` (synchronous): labels per task from ``LINK_SAMPLES``
    equivalences files (each names its task's largest label), tables sized from them."""
    from igneous.ops.ccl import parse_label_map
    from igneous.tasks.image.ccl_layout import equivalences_path
    from igneous.tasks.image.ccl_relabel import check_relabeling

    vol, params, grid = check_relabeling(cloudpath, mip, shape, connectivity)
    key = vol.meta.key(mip)
    t = grid.num_tasks
    cf = CloudFiles(vol.meta.cloudpath, progress=False)
    per_task = grid.labels_per_task
    counts = []
    for point in spread_cells(grid.grid_size, LINK_SAMPLES):
        keys, _ = parse_label_map(cf.get(equivalences_path(key, point)))
        offset = grid.task_number(point) * per_task
        own = keys[(keys > np.uint64(offset)) & (keys <= np.uint64(offset + per_task))]
        counts.append(int(own.max()) - offset if own.size else 0)
    eq_bytes = _dir_bytes(cf, f"{key}/ccl/equivalences/")
    labels = float(np.mean(counts)) * t
    dust = int(params.dust_threshold)
    out = Plan(
        command="image ccl calc-labels",
        task="create_relabeling (synchronous)",
        tasks=1,
        stage="ccl_calc_labels",
        work=labels,
        outputs=[
            Output(f"{key}/ccl/relabel/ (one per task)", t, int(round(_relabel_table_bytes(counts, t, per_task)))),
            Output(f"{key}/ccl/max_label.json", 1, 16),
        ],
        bytes_read=eq_bytes + (_dir_bytes(cf, f"{key}/ccl/counts/") if dust else 0),
        sample={"equivalence_files": len(counts), "labels_per_task": round(float(np.mean(counts)), 1)},
    )
    out.add_requests(task_requests("create_relabeling"))
    # the equivalences once; with dust the counts twice (sizes of components, then their numbering)
    out.add_requests({"LIST": _list_pages(t) * (2 if dust else 1), "GET": t * (3 if dust else 1)})
    out.add_requests({"PUT": out.files_written})
    out.notes.append(f"about {labels:,.0f} labels over {t} tasks (sampled); memory grows with the labels on task faces")
    return finish_plan(out, cloudpath)


def _relabel_encoder(relabel, dest_info: dict):
    """Bytes of a box of labels written into the destination (its chunks, encoding, compression)."""
    scale = dest_info["scales"][relabel.ccl.mip]
    chunk, encoding = scale["chunk_sizes"][0], scale["encoding"]
    compress = run_compress(encoding, None)
    params = {}
    if encoding == "compressed_segmentation":
        params["block_size"] = scale.get("compressed_segmentation_block_size", (8, 8, 8))
    dtype = np.dtype(dest_info["data_type"])

    def encode(box: np.ndarray) -> int:
        return chunked_bytes(np.asfortranarray(box.astype(dtype))[..., np.newaxis], chunk, encoding, compress, params)

    return encode


def _dest_layout(relabel, src_path: str, max_label: Optional[float]):
    from dataclasses import replace

    from igneous.task_creation.ccl import _dest_info, _existing_info
    from igneous.volumes import open_volume

    if relabel.max_label is None and max_label is not None:  # auto: the dtype calc-labels will choose
        relabel = replace(relabel, max_label=int(max_label))
    info = _dest_info(open_volume(src_path, relabel.ccl.mip), relabel)
    return relabel, info, _existing_info(relabel.dest_path)


def _dest_outputs(relabel, info: dict, bpv: float) -> list:
    from cloudvolume import CloudVolume

    from igneous.plans.common import level_outputs

    dest = CloudVolume("mem://igneous-plan/ccl-dest", info=info, progress=False)
    return level_outputs(dest, relabel.ccl.mip, relabel.ccl.grid.bounds, 0, [bpv], first=0)


def plan_ccl_relabel_run(src_path: str, dest_path: str, mip: int, shape=(512, 512, 512), chunk_size=None,
                         encoding=None, threshold_gte=None, threshold_lte=None, fill_missing: bool = False,
                         dust_threshold: int = 0, connectivity: int = 6) -> Plan:  # fmt: skip
    """The plan of ``create_ccl_relabel_tasks`` (same arguments; calc-labels must be done): sample
    tasks relabelled as the run does and encoded in the destination's chunks."""
    from igneous.task_creation.ccl import plan_ccl_relabel
    from igneous.tasks.image.ccl import _Task, relabelled_box

    relabel = plan_ccl_relabel(src_path, dest_path, mip, shape, chunk_size, encoding, threshold_gte, threshold_lte,
                               dust_threshold, connectivity)  # fmt: skip
    relabel, info, existing = _dest_layout(relabel, src_path, None)
    plan = relabel.ccl
    encode = _relabel_encoder(relabel, info)
    run = _run_kwargs(plan.params.threshold_gte, plan.params.threshold_lte, plan.params.connectivity)
    task_voxels = math.prod(plan.params.shape)
    nbytes = voxels = 0
    picks = spread_cells(plan.grid.grid_size, max(1, min(MAX_SAMPLE_TASKS, CCL_SAMPLE_VOXELS // task_voxels)))
    for point in picks:
        task = _Task(src_path, mip, plan.params.shape, _offset(plan.grid, point), fill_missing)
        box = relabelled_box(task, np.dtype(info["data_type"]), **run)
        nbytes += encode(box)
        voxels += box.size
    bpv = nbytes / max(1, voxels)
    t = plan.num_tasks
    out = Plan(
        command="image ccl relabel",
        task="RelabelCCLTask",
        tasks=t,
        stage="ccl_relabel",
        work=box_voxels(plan.grid.bounds),
        outputs=_dest_outputs(relabel, info, bpv),
        bytes_read=_labels_bytes(src_path, plan),
        task_shape=plan.params.shape,
        sample={"tasks_relabelled": len(picks), "dtype": info["data_type"], "encoding": relabel.encoding},
    )
    out.add_requests(task_requests("RelabelCCLTask"), t)
    out.add_requests({"GET": 2 * t})  # each task's labels file and relabel table
    out.add_requests({"PUT": out.files_written})
    if existing != info:
        out.add_requests({"PUT": 1})  # the destination's info
    return finish_plan(out, dest_path)


def _labels_bytes(src_path: str, plan) -> int:
    cf = CloudFiles(_layer_root(src_path), progress=False)
    return _dir_bytes(cf, f"{plan.key}/ccl/labels/") + _dir_bytes(cf, f"{plan.key}/ccl/relabel/")


def plan_ccl_auto(src_path: str, dest_path: str, mip: int = 0, shape=(512, 512, 512), chunk_size=None,
                  encoding=None, threshold_gte=None, threshold_lte=None, fill_missing: bool = False,
                  dust_threshold: int = 0, connectivity: int = 6, clean: bool = True) -> Plan:  # fmt: skip
    """The plan of ``igneous image ccl auto`` before any step ran: the faces pass is sampled as in
    :func:`plan_ccl_faces`; its sample's own boxes, encoded in the destination's chunks, price the
    relabel pass, and its label counts the links and calc-labels steps (estimates, noted)."""
    from igneous.task_creation.ccl import plan_ccl, plan_ccl_relabel

    relabel = plan_ccl_relabel(src_path, dest_path, mip, shape, chunk_size, encoding, threshold_gte, threshold_lte,
                               dust_threshold, connectivity, require_labels=False)  # fmt: skip
    plan = plan_ccl(src_path, mip, shape, threshold_gte, threshold_lte, dust_threshold, connectivity)
    _refuse_other_run(plan)
    t, dust = plan.num_tasks, int(dust_threshold)
    sample = _faces_sample(plan, fill_missing, dust, keep_boxes=True)
    counts = sample.counts
    labels = float(np.mean(counts)) * t if counts else 0.0
    # the destination's dtype follows the number of components: priced with the sample's label count
    relabel_est, info, existing = _dest_layout(relabel, src_path, max(1, labels))
    encode = _relabel_encoder(relabel_est, info)
    voxels = sum(box.size for box in sample.boxes)
    bpv = sum(encode(box) for box in sample.boxes) / max(1, voxels)
    sample.boxes.clear()
    ccl = f"{plan.key}/ccl"
    outputs = _faces_outputs(plan, sample, dust)
    links_bytes = _relabel_table_bytes(counts, t, plan.grid.labels_per_task) * CCL_LINKS_PER_TABLE_BYTE
    outputs.append(Output(f"{ccl}/equivalences/ (one per task, estimated)", t, int(round(links_bytes))))
    outputs.append(Output(f"{ccl}/relabel/ (one per task)", t,
                          int(round(_relabel_table_bytes(counts, t, plan.grid.labels_per_task)))))  # fmt: skip
    outputs.append(Output(f"{ccl}/max_label.json", 1, 16))
    outputs += _dest_outputs(relabel_est, info, bpv)
    gets, vol = _faces_reads(plan)
    out = Plan(
        command="image ccl auto",
        task="CCLFacesTask, CCLEquivalancesTask, RelabelCCLTask",
        tasks=3 * t,
        stage="ccl_auto",
        work=box_voxels(plan.grid.bounds),
        outputs=outputs,
        bytes_read=int(round(box_voxels(plan.grid.bounds) * stored_bytes_per_voxel(vol, mip))),
        task_shape=plan.params.shape,
        sample={**_describe(sample), "labels_estimated": int(labels), "dtype": info["data_type"]},
    )
    out.add_requests({"GET": gets})
    for name in ("CCLFacesTask", "CCLEquivalancesTask", "RelabelCCLTask"):
        out.add_requests(task_requests(name), t)
    out.add_requests(task_requests("create_relabeling"))
    faces_files = (5 + (1 if dust else 0)) * t
    out.add_requests({"PUT": out.files_written})
    out.add_requests({"GET": t + _neighbour_reads(plan.grid)})  # links: leading files, neighbours' faces
    # calc-labels: the links once, with dust the counts twice (component sizes, then numbering)
    out.add_requests({"GET": t * (3 if dust else 1), "LIST": _list_pages(t) * (2 if dust else 1)})
    out.add_requests({"GET": 2 * t})  # relabel: labels files and tables
    out.add_requests({"LIST": _list_pages(3 * t) + _list_pages(t)})  # auto's checks that faces and links finished
    if existing != info:
        out.add_requests({"PUT": 1})  # the destination's info
    if clean:
        intermediate = faces_files + 2 * t + 2  # + params.json, equivalences, relabel tables, max_label.json
        out.add_requests({"LIST": _list_pages(intermediate), "DELETE": _list_pages(intermediate)})
        out.notes.append(f"{ccl}/ (everything but the destination) is deleted at the end (--clean)")
    out.notes.append("links and calc-labels are priced from the faces sample's label counts (estimates)")
    _note_scaled(out, sample)
    return finish_plan(out, dest_path)

