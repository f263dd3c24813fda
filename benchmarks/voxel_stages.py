"""Voxel counting benchmark stage (issue 5): count + sum of the full 512³ sample ``seg``.

Child (run by ``stages.py`` in a fresh process): ``voxel_count`` plans and runs
``create_voxel_counting_tasks`` at ``-p 1``, then ``accumulate_voxel_counts`` (zstd, as the
CLI's default). Parent (run by ``run.py``): the stage interleaved with its codec floor (decoding
every input chunk once, ``floor.codec_floor`` with nothing written), fastest reported.

Target: ≥ 20 Mvox/s at peak RSS < 500 MB. The peak is taken when the clock stops; the check
that follows (the IntMap against ``np.unique`` of thin z-slabs, summed in a dict) reads less
at a time than the stage, so it cannot raise the process peak that ``run.py`` records either.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

VOXEL_TARGETS = {"voxel_counts": {"mvox_s_min": 20.0, "rss_mb_max": 500.0}}
CHECK_SLAB_Z = 16


def _check_counts(path: str, intmap) -> list:
    """The IntMap against numpy on the whole layer (np.unique per thin slab, summed exactly)."""
    from cloudvolume import CloudVolume

    from igneous.ops.voxels import intmap_key

    vol = CloudVolume(path, progress=False)
    bounds = vol.bounds
    want = {}
    for z in range(int(bounds.minpt.z), int(bounds.maxpt.z), CHECK_SLAB_Z):
        slab = vol[:, :, z : min(z + CHECK_SLAB_Z, int(bounds.maxpt.z))]
        labels, counts = np.unique(np.asarray(slab), return_counts=True)
        for label, count in zip(labels.tolist(), counts.tolist()):
            want[label] = want.get(label, 0) + count
        del slab
    problems = []
    if len(intmap) != len(want):
        problems.append(f"{len(intmap)} labels in voxel_counts.im, numpy finds {len(want)}")
    wrong = [k for k, v in want.items() if intmap.get(intmap_key(k)) != v]
    if wrong:
        problems.append(f"{len(wrong)} labels with wrong counts (e.g. {wrong[0]})")
    return problems


def count(layer: str, compress: str = "zstd", profile=None) -> dict:
    """Count + sum ``layer`` in this process at -p 1."""
    import json

    from stages import Timer, max_rss_mb, profiled

    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    path = "file://" + layer
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan"):
            tasks = tc.create_voxel_counting_tasks(path, 0)
            ntasks = len(tasks)
        with timer.phase("count"):
            submit_tasks(tasks, queue=None, parallel=1, progress=False)
        with timer.phase("sum"):
            intmap = tc.accumulate_voxel_counts(path, 0, progress=False, compress=compress)
    stage_rss = max_rss_mb()
    problems = _check_counts(path, intmap)
    with open(os.path.join(layer, "info")) as f:
        size = json.load(f)["scales"][0]["size"]
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "labels": len(intmap),
        "input_voxels": int(np.prod(size)),
        "rss_before_work_mb": rss_before,
        "stage_peak_rss_mb": stage_rss,
        "problems": problems,
    }


def voxel_counts(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """Count + sum of the full 512³ ``seg``: ≥ 20 Mvox/s, peak RSS < 500 MB."""
    from datasets import fresh_copy
    from run import fastest, mvox

    name, layer_dir = "voxel_counts", os.path.join(data_dir, "seg")
    print(f"{name}: seg 512³, count (512³ tasks) + sum (zstd), -p 1", flush=True)
    runs, floors = [], []
    work = os.path.join(runner.work_dir, name)
    floor_spec = {"layer_dir": layer_dir, "out_chunk": [64, 64, 64], "num_mips": 0, "write_mip0": False}
    for i in range(1, repeat + 1):
        src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
        runs.append(runner.child("voxel_count", {"layer": src}, f"{name}-{i}"))
        shutil.rmtree(work, ignore_errors=True)
        floors.append(runner.child("floor", floor_spec, f"{name}-floor-{i}"))
    best, floor_best = fastest(runs), fastest(floors)
    targets = VOXEL_TARGETS[name]
    result = {
        "params": {"layer": "seg", "compress": "zstd", "parallel": 1, "queue": None},
        "runs": runs,
        "best": best,
        "floor": {"runs": floors, "best": floor_best},
        "mvox_s": mvox(best),
        "floor_mvox_s": mvox(floor_best),
        "ratio_to_floor": best["wall_s"] / floor_best["wall_s"] if best and floor_best else None,
        "cpu_ratio_to_floor": best["cpu_s"] / floor_best["wall_s"] if best and floor_best else None,
        "targets": targets,
        "rss_budget_mb": targets["rss_mb_max"],
        "checks": {},
    }
    if best:
        result["checks"] = {
            "mvox_s": result["mvox_s"] >= targets["mvox_s_min"],
            "peak_rss": best["peak_rss_mb"] <= targets["rss_mb_max"],
        }
        ratio = result["ratio_to_floor"]
        print(
            f"  {name}: {best['wall_s']:.2f} s ({result['mvox_s']:.1f} Mvox/s, {best['tasks']} tasks, "
            f"{best['labels']} labels), peak RSS {best['peak_rss_mb']:.0f} MB (at clock stop "
            f"{best['stage_peak_rss_mb']:.0f} MB); decode floor "
            f"{floor_best['wall_s'] if floor_best else float('nan'):.2f} s; ratio {ratio or float('nan'):.2f}; "
            f"checks {result['checks']}",
            flush=True,
        )
    if profile and best:
        src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
        prof = os.path.join(runner.out_dir, f"profile_{name}.prof")
        runner.child("voxel_count", {"layer": src}, f"{name}-profile", profile=prof)
        shutil.rmtree(work, ignore_errors=True)
        result["profile"] = prof
    return result


CHILD_STAGES = {"voxel_count": count}
PARENT_STAGES = {"voxel_counts": voxel_counts}
