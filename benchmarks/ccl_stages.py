"""Connected-components benchmark stages (issue 12).

Children (each in a fresh process, run by ``stages.py``):

* ``ccl_auto``: the steps of ``igneous image ccl auto`` (faces → links → calc-labels →
  relabel → clean, the same library calls, ``-p 1``, no queue) on a copy of the 512³ sample
  ``seg`` with 256³ tasks; after the clock, the output's partition is checked against
  cc3d on the whole volume.
* ``ccl_floor``: decode every chunk of ``seg``, one ``cc3d.connected_components`` on the
  whole volume, encode every output chunk with the stage's codec (compresso + gzip): only
  the codec and cc3d calls are timed.
* ``ccl_lattice`` / ``ccl_calc_labels``: a synthetic volume of millions of one-voxel
  components that never touch a task face (plus a few rods through every seam) is labelled
  by the faces and links passes; then calc-labels alone runs in a fresh process, so its
  peak RSS is its own.
* ``ccl_task_creation``: tasks/s of iterating ``create_ccl_face_tasks`` over a huge virtual layer.

Targets: auto ≤ 2× the floor at 6 and 26-connectivity; peak RSS ≤ 3× a task's cutout
bytes ((256+1)³ uint64 voxels); ≥ 50k tasks/s.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

CCL_SHAPE = [256, 256, 256]
CCL_CONNECTIVITIES = (6, 26)
# Two volumes of one-voxel components, the second twice the first: calc-labels' memory must not double.
LATTICES = [
    {"size": [512, 512, 256], "shape": [128, 128, 128], "chunk": [128, 128, 64]},
    {"size": [512, 512, 512], "shape": [128, 128, 128], "chunk": [128, 128, 64]},
]
CREATION = {"size": [200000, 200000, 20000], "chunk": [128, 128, 64], "shape": [256, 256, 256], "count": 200000}
CCL_TARGETS = {
    "ccl_auto": {"ratio_to_floor_max": 2.0, "rss_to_cutout_bytes_max": 3.0},
    "ccl_task_creation": {"tasks_s_min": 50000},
}


# -- children ----------------------------------------------------------------------------------


def auto(layer: str, shape, connectivity: int, encoding: str = "compresso", profile=None) -> dict:
    """The steps of ``ccl auto`` on ``layer`` (a local copy) at -p 1."""
    from stages import Timer, max_rss_mb, profiled

    import igneous.task_creation as tc
    from igneous.queues.steps import run_step
    from igneous.tasks.image.ccl import clean_intermediate_files, create_relabeling

    src = "file://" + layer
    dest = "file://" + layer + "_ccl"
    shape = tuple(shape)
    kw = dict(connectivity=connectivity)
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("faces"):
            ntasks = run_step("faces", tc.create_ccl_face_tasks(src, 0, shape, **kw))
        with timer.phase("links"):
            run_step("links", tc.create_ccl_equivalence_tasks(src, 0, shape, **kw))
        with timer.phase("calc_labels"):
            n = create_relabeling(src, 0, shape)
        with timer.phase("relabel"):
            run_step("relabel", tc.create_ccl_relabel_tasks(src, dest, 0, shape, encoding=encoding, **kw))
        with timer.phase("clean"):
            clean_intermediate_files(src, 0)
    stage_rss = max_rss_mb()
    problems = _check_partition(src, dest, connectivity, n)
    with open(os.path.join(layer, "info")) as f:
        info = json.load(f)
    size = info["scales"][0]["size"]
    itemsize = np.dtype(info["data_type"]).itemsize
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "components": n,
        "connectivity": connectivity,
        "input_voxels": int(np.prod(size)),
        "cutout_bytes": int(np.prod([s + 1 for s in shape])) * itemsize,
        "rss_before_work_mb": rss_before,
        "stage_peak_rss_mb": stage_rss,
        "problems": problems,
    }


def _check_partition(src: str, dest: str, connectivity: int, n: int) -> list:
    """Output against cc3d on the whole volume: same foreground, labels in bijection, ids 1…N."""
    import cc3d
    from cloudvolume import CloudVolume

    seg = np.asarray(CloudVolume(src, progress=False)[:, :, :])[..., 0]
    want = cc3d.connected_components(seg, connectivity=connectivity)
    del seg
    got = np.asarray(CloudVolume(dest, progress=False)[:, :, :])[..., 0]
    problems = []
    if int(want.max()) != n or int(got.max()) != n:
        problems.append(f"{n} components, output max {int(got.max())}, cc3d finds {int(want.max())}")
    fg = want > 0
    if not np.array_equal(got > 0, fg):
        problems.append("foreground differs from the input's")
    pairs = np.unique(got[fg].astype(np.uint64) << np.uint64(32) | want[fg].astype(np.uint64))
    if len(pairs) != int(want.max()):
        problems.append(f"{len(pairs)} (output, cc3d) label pairs for {int(want.max())} components: partitions differ")
    return problems


def floor(layer: str, connectivity: int, encoding: str = "compresso", compress: str = "gzip", profile=None) -> dict:
    """Decode every chunk, one cc3d on the whole volume, encode every output chunk (timed parts only)."""
    import cc3d
    from cloudfiles import compression
    from cloudvolume import chunks
    from floor import COMPRESSION_SUFFIXES

    with open(os.path.join(layer, "info")) as f:
        info = json.load(f)
    scale = info["scales"][0]
    dtype = np.dtype(info["data_type"])
    size, chunk, origin = (np.array(scale[k] if k != "chunk_sizes" else scale[k][0]) for k in
                           ("size", "chunk_sizes", "voxel_offset"))  # fmt: skip
    block = scale.get("compressed_segmentation_block_size", [8, 8, 8])
    whole = np.empty(tuple(int(s) for s in size), dtype=dtype, order="F")
    seconds = {"decode": 0.0, "cc3d": 0.0, "encode": 0.0}
    cpu = 0.0  # CPU seconds of the timed calls: steadier than wall time on a shared machine
    for z in range(0, int(size[2]), int(chunk[2])):
        for y in range(0, int(size[1]), int(chunk[1])):
            for x in range(0, int(size[0]), int(chunk[0])):
                lo = np.array([x, y, z])
                hi = np.minimum(lo + chunk, size)
                name = "_".join(f"{a}-{b}" for a, b in zip(lo + origin, hi + origin))
                path, method = os.path.join(layer, scale["key"], name), None
                for suffix, m in COMPRESSION_SUFFIXES.items():
                    if os.path.exists(path + suffix):
                        path, method = path + suffix, m
                with open(path, "rb") as f:
                    data = f.read()
                shape = [int(v) for v in hi - lo] + [1]
                t0, c0 = time.perf_counter(), time.process_time()
                arr = chunks.decode(compression.decompress(data, method), scale["encoding"], shape=shape, dtype=dtype,
                                    block_size=block)  # fmt: skip
                seconds["decode"] += time.perf_counter() - t0
                cpu += time.process_time() - c0
                whole[x : hi[0], y : hi[1], z : hi[2]] = arr.reshape(shape, order="F")[..., 0]
    t0, c0 = time.perf_counter(), time.process_time()
    labels, n = cc3d.connected_components(whole, connectivity=connectivity, return_N=True)
    seconds["cc3d"] = time.perf_counter() - t0
    cpu += time.process_time() - c0
    del whole
    from igneous.ops.ccl import smallest_uint

    out = labels.astype(smallest_uint(n), order="F")
    del labels
    nbytes = 0
    for z in range(0, int(size[2]), int(chunk[2])):
        for y in range(0, int(size[1]), int(chunk[1])):
            for x in range(0, int(size[0]), int(chunk[0])):
                view = out[x : x + chunk[0], y : y + chunk[1], z : z + chunk[2], np.newaxis]
                t0, c0 = time.perf_counter(), time.process_time()
                nbytes += len(compression.compress(chunks.encode(view, encoding), compress))
                seconds["encode"] += time.perf_counter() - t0
                cpu += time.process_time() - c0
    return {
        "wall_s": sum(seconds.values()),
        "cpu_s": cpu,
        **{f"{k}_s": v for k, v in seconds.items()},
        "components": int(n),
        "bytes_out": nbytes,
        "input_voxels": int(np.prod(size)),
    }


def lattice(work: str, size, shape, chunk, profile=None) -> dict:
    """Write the lattice volume and run the faces and links passes on it (not timed for the record)."""
    from cloudvolume import CloudVolume

    import igneous.task_creation as tc
    from igneous.queues.steps import run_step

    path = "file://" + os.path.join(work, "lattice")
    info = CloudVolume.create_new_info(1, "image", "uint8", "raw", [8, 8, 8], [0, 0, 0], list(size), list(chunk))
    vol = CloudVolume(path, info=info, progress=False, compress="gzip")
    vol.commit_info()
    img = np.zeros(tuple(size), dtype=np.uint8, order="F")
    img[1::2, 1::2, 1::2] = 1  # one-voxel components at odd coordinates: never on a task face
    for axis in range(3):  # one rod along each axis through every seam it meets
        where = [size[0] // 2 + 1, size[1] // 2 + 1, size[2] // 2 + 1]
        where[axis] = slice(None)
        img[tuple(where)] = 1
    vol[:, :, :] = img
    expected = int(img[1::2, 1::2, 1::2].sum()) - sum(s // 4 - 1 for s in size)  # rods swallow lattice voxels
    del img
    t0 = time.perf_counter()
    run_step("faces", tc.create_ccl_face_tasks(path, 0, tuple(shape), threshold_gte=1))
    run_step("links", tc.create_ccl_equivalence_tasks(path, 0, tuple(shape), threshold_gte=1))
    return {"wall_s": time.perf_counter() - t0, "path": path, "approx_components": expected, "problems": []}


def calc_labels(path: str, shape, profile=None) -> dict:
    """calc-labels alone, on the lattice prepared by ``lattice``."""
    from cloudfiles import CloudFiles
    from stages import Timer, max_rss_mb, profiled

    import igneous.tasks.image.ccl_relabel as ccl_relabel

    linked = {}
    union_find = ccl_relabel.union_find

    def counting(a, b):
        linked["edges"] = len(a)
        labels, root = union_find(a, b)
        linked["labels"] = len(labels)
        return labels, root

    ccl_relabel.union_find = counting
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("calc_labels"):
            n = ccl_relabel.create_relabeling(path, 0, tuple(shape))
    peak = max_rss_mb()
    key = "8_8_8"
    sizes = [len(CloudFiles(path).get(f"{key}/ccl/relabel/{t}.json") or b"") for t in (0,)]
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "components": n,
        "linked_labels": linked.get("labels", 0),
        "linked_pairs": linked.get("edges", 0),
        "rss_before_work_mb": rss_before,
        "stage_peak_rss_mb": peak,
        "relabel_file_bytes_task0": sizes[0],
        "problems": [] if n > 1_000_000 else [f"only {n} components"],
    }


def task_creation(work: str, size, chunk, shape, count: int, profile=None) -> dict:
    """Plan faces tasks over a huge virtual layer; iterate ``count`` of them (and serialize a sample)."""
    from stages import Timer, max_rss_mb, serialize_rate, virtual_layer

    import igneous.task_creation as tc

    src = "file://" + os.path.join(work, "virtual")
    virtual_layer(src, size, chunk)
    timer = Timer()
    with timer.phase("plan"):
        tasks = tc.create_ccl_face_tasks(src, 0, tuple(shape), threshold_gte=1)
    total = len(tasks)
    rss_before = max_rss_mb()
    with timer.phase("run"):
        seen = sum(1 for _ in tasks[0:count])
    extra = serialize_rate(tasks[0:5000], timer)
    run = timer.phases["run"]
    return {
        "wall_s": run["wall_s"],
        "tasks": seen,
        "tasks_total": total,
        "tasks_per_s": seen / run["wall_s"],
        "phases": timer.phases,
        "rss_before_work_mb": rss_before,
        "problems": [] if seen == min(count, total) else [f"{seen} tasks iterated"],
        **extra,
    }


CHILD_STAGES = {
    "ccl_auto": auto,
    "ccl_floor": floor,
    "ccl_lattice": lattice,
    "ccl_calc_labels": calc_labels,
    "ccl_task_creation": task_creation,
}


# -- parents -----------------------------------------------------------------------------------


def ccl_auto(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """``ccl auto`` on the 512³ sample, 256³ tasks, 6- and 26-connected, each against its floor."""
    from datasets import fresh_copy
    from run import fastest, mvox

    layer_dir = os.path.join(data_dir, "seg")
    targets = CCL_TARGETS["ccl_auto"]
    variants = {}
    for conn in CCL_CONNECTIVITIES:
        name = f"ccl_auto_{conn}"
        print(f"{name}: seg 512³, shape {CCL_SHAPE}, connectivity {conn}, compresso, -p 1", flush=True)
        runs, floors = [], []
        work = os.path.join(runner.work_dir, name)
        for i in range(1, repeat + 1):
            src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
            runs.append(runner.child("ccl_auto", {"layer": src, "shape": CCL_SHAPE, "connectivity": conn}, f"{name}-{i}"))
            shutil.rmtree(work, ignore_errors=True)
            floors.append(runner.child("ccl_floor", {"layer": layer_dir, "connectivity": conn}, f"{name}-floor-{i}"))
        best, floor_best = fastest(runs), fastest(floors)
        if best:  # the table's peak RSS is the stage's: the whole-volume check after the clock needs GBs
            best["child_peak_rss_mb"], best["peak_rss_mb"] = best["peak_rss_mb"], best["stage_peak_rss_mb"]
        result = {
            "params": {"layer": "seg", "shape": CCL_SHAPE, "connectivity": conn, "encoding": "compresso",
                       "parallel": 1, "queue": None},
            # not "floor": run.py's floor line describes the codec-only floors of floor.py
            "runs": runs, "best": best, "ccl_floor": {"runs": floors, "best": floor_best},
            "mvox_s": mvox(best), "floor_mvox_s": mvox(floor_best), "targets": targets, "checks": {},
        }  # fmt: skip
        if best and floor_best:
            result["ratio_to_floor"] = best["wall_s"] / floor_best["wall_s"]
            result["cpu_ratio_to_floor"] = best["cpu_s"] / floor_best["wall_s"]
            # both in CPU seconds (all threads): what the machine's load distorts least
            cpu_floor = min(r["cpu_s"] for r in floors if r.get("ok"))
            result["cpu_to_floor_cpu"] = min(r["cpu_s"] for r in runs if r.get("ok")) / cpu_floor
            result["task_bytes_mb"] = best["cutout_bytes"] / 2**20
            result["rss_budget_mb"] = targets["rss_to_cutout_bytes_max"] * result["task_bytes_mb"]
            result["checks"] = {
                "ratio_to_floor": result["ratio_to_floor"] <= targets["ratio_to_floor_max"],
                "peak_rss": best["stage_peak_rss_mb"] <= result["rss_budget_mb"],
            }
            phases = ", ".join(f"{k} {v['wall_s']:.2f}" for k, v in best["phases"].items())
            print(f"  {name}: {best['wall_s']:.2f} s ({phases}); floor {floor_best['wall_s']:.2f} s "
                  f"(decode {floor_best['decode_s']:.2f}, cc3d {floor_best['cc3d_s']:.2f}, encode "
                  f"{floor_best['encode_s']:.2f}); ratio {result['ratio_to_floor']:.2f}; peak RSS "
                  f"{best['stage_peak_rss_mb']:.0f} MB (budget {result['rss_budget_mb']:.0f}); CPU s against the "
                  f"floor's CPU s {result['cpu_to_floor_cpu']:.2f}; {best['components']} "
                  f"components; checks {result['checks']}", flush=True)  # fmt: skip
        variants[name] = result
    worst = max(variants.values(), key=lambda r: r.get("ratio_to_floor") or float("inf"))
    return {**worst, "variants": variants}


def ccl_calc_memory(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """calc-labels' peak RSS on millions of interior components, at two volume sizes."""
    from run import fastest

    name = "ccl_calc_memory"
    sizes = {}
    for lattice_spec in LATTICES:
        label = "x".join(map(str, lattice_spec["size"]))
        work = os.path.join(runner.work_dir, name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        print(f"{name}: lattice {lattice_spec}", flush=True)
        prep = runner.child("ccl_lattice", {"work": work, **lattice_spec}, f"{name}-{label}-prepare")
        runs = []
        if prep.get("ok"):
            for i in range(1, repeat + 1):
                runs.append(runner.child("ccl_calc_labels", {"path": prep["path"], "shape": lattice_spec["shape"]},
                                         f"{name}-{label}-{i}"))  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        best = fastest(runs)
        if best:
            above = best["stage_peak_rss_mb"] - best["rss_before_work_mb"]
            best["rss_above_baseline_mb"] = above
            best["bytes_per_component_above_baseline"] = above * 2**20 / max(1, best["components"])
            print(f"  {name} {label}: {best['components']} components ({best['linked_labels']} linked), calc-labels "
                  f"{best['wall_s']:.2f} s, peak RSS {best['stage_peak_rss_mb']:.0f} MB ({above:.0f} MB above the "
                  f"{best['rss_before_work_mb']:.0f} MB interpreter)", flush=True)  # fmt: skip
        sizes[label] = {"params": lattice_spec, "prepare": prep, "runs": runs, "best": best}
    largest = list(sizes.values())[-1]
    return {**largest, "sizes": sizes, "targets": {}, "checks": {}}


def ccl_task_creation(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    name = "ccl_task_creation"
    work = os.path.join(runner.work_dir, name)
    runs = []
    for i in range(1, repeat + 1):
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        runs.append(runner.child("ccl_task_creation", {"work": work, **CREATION}, f"{name}-{i}"))
    shutil.rmtree(work, ignore_errors=True)
    from run import fastest

    best = fastest(runs)
    target = CCL_TARGETS[name]["tasks_s_min"]
    checks = {"tasks_per_s": bool(best) and best["tasks_per_s"] >= target}
    if best:
        print(f"  {name}: {best['tasks']} of {best['tasks_total']} tasks in {best['wall_s']:.3f} s = "
              f"{best['tasks_per_s']:.0f}/s (target {target}); serialize {best['serialize_tasks_per_s']:.0f}/s",
              flush=True)  # fmt: skip
    return {"params": CREATION, "runs": runs, "best": best, "targets": CCL_TARGETS[name], "checks": checks}


PARENT_STAGES = {"ccl_auto": ccl_auto, "ccl_calc_memory": ccl_calc_memory, "ccl_task_creation": ccl_task_creation}
