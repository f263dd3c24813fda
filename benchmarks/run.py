#!/usr/bin/env python
"""Igneous performance harness: wall time, voxels/s and peak RSS of fixed stages on fixed data.

    python benchmarks/run.py [--only STAGE ...] [--data DIR] [--out benchmarks/results]
                             [--repeat N] [--profile]

Each measurement runs in a fresh child process (``stages.py``) on a fresh copy of its input
layer, single process (``submit_tasks(parallel=1)``), so the peak RSS the kernel reports for
the child (``wait4``) is that stage's alone. Every stage runs ``--repeat`` times (default 2,
interleaved with its floor) and the fastest run is reported: the machine is shared.

Data stages are compared with their codec floor (``floor.py``) measured in the same run.
Results go to ``OUT/results.json`` (merged with stages measured earlier) and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from ccl_stages import CCL_TARGETS  # noqa: E402
from ccl_stages import PARENT_STAGES as CCL_STAGES  # noqa: E402
from datasets import MAKE_DATA, ensure_data, file_sha256, fresh_copy  # noqa: E402
from ingest_stages import INGEST_TARGETS  # noqa: E402
from ingest_stages import PARENT_STAGES as INGEST_STAGES  # noqa: E402
from mesh_stages import MESH_TARGETS  # noqa: E402
from mesh_stages import PARENT_STAGES as MESH_STAGES  # noqa: E402
from plan_view_stages import PARENT_STAGES as PLAN_VIEW_STAGES  # noqa: E402
from plan_view_stages import PLAN_VIEW_TARGETS  # noqa: E402
from skeleton_stages import PARENT_STAGES as SKELETON_STAGES  # noqa: E402
from skeleton_stages import SKELETON_TARGETS  # noqa: E402
from voxel_stages import PARENT_STAGES as VOXEL_STAGES  # noqa: E402
from voxel_stages import VOXEL_TARGETS  # noqa: E402

IMAGE_DOWNSAMPLE = {"num_mips": 4, "factor": [2, 2, 1], "compress": "gzip", "method": "avg"}
# num_mips=None: as many levels as the default memory target (3.5 GB) allows; the run reports how many.
SEG_DOWNSAMPLE = {"num_mips": None, "factor": [2, 2, 1], "compress": "gzip", "method": "mode"}
SEG_FALLBACK_MIPS = 3
TRANSFER = {"chunk_size": [128, 128, 64], "compress": "gzip", "skip_downsamples": True}
TASK_CREATION = {
    "size": [100000, 100000, 20000],
    "chunk": [128, 128, 64],
    "num_mips": 4,  # tasks sized by the 3.5 GB memory target (4096x4096x64) as the reference: 195,625
    "shape": [2048, 2048, 64],  # transfer task shape, the same grid
    "memory_counts": [20000, 200000],
    "fq_counts": [5000, 20000],  # both for TaskQueue.insert ("fq") and igneous' submit_tasks ("submit")
    # forge planners on a virtual 20000³ segmentation, every task iterated (plan time counted):
    # mesh 448³ cells = 91,125 tasks, skeleton 512³ = 64,000
    "forge_size": [20000, 20000, 20000],
    "forge_shapes": {"mesh": [448, 448, 448], "skeleton": [512, 512, 512]},
}

SHARD_MEMORY_TARGET = 1_000_000_000
SHARD_TRANSFER_CHUNKS = {"same_chunk": [128, 128, 16], "rechunk": [128, 128, 64]}
SHARD_DOWNSAMPLE = {"num_mips": 3, "factor": [2, 2, 1], "memory_target": SHARD_MEMORY_TARGET, "method": "avg"}

TARGETS = {
    "image_downsample": {"mvox_s_min": 65, "ratio_to_floor_max": 1.3, "rss_to_task_bytes_max": 2.0},
    "seg_downsample": {"mvox_s_min": 30},
    "transfer": {"mvox_s_min": 35},
    "task_creation": {"memory_tasks_s_min": 50000, "fq_tasks_s_min": 5000},
    "image_shard_transfer": {"mvox_s_min": 35, "rss_mb_max": 1.3 * SHARD_MEMORY_TARGET / 2**20},
    "image_shard_downsample": {"ratio_to_floor_max": 1.3, "rss_mb_max": 1.3 * SHARD_MEMORY_TARGET / 2**20},
}

STAGE_NAMES = [
    "image_downsample",
    "seg_downsample",
    "transfer",
    "image_shard_transfer",
    "image_shard_downsample",
    "task_creation",
]
STAGE_NAMES += list(MESH_STAGES)
TARGETS.update(MESH_TARGETS)
STAGE_NAMES += list(VOXEL_STAGES)
TARGETS.update(VOXEL_TARGETS)
STAGE_NAMES += list(INGEST_STAGES)
TARGETS.update(INGEST_TARGETS)
STAGE_NAMES += list(CCL_STAGES)
TARGETS.update(CCL_TARGETS)
STAGE_NAMES += list(PLAN_VIEW_STAGES)
TARGETS.update(PLAN_VIEW_TARGETS)
STAGE_NAMES += list(SKELETON_STAGES)
TARGETS.update(SKELETON_TARGETS)


# -- children -----------------------------------------------------------------------------------


class Runner:
    """Starts stage children and measures them from outside (wall, CPU, peak RSS via wait4)."""

    def __init__(self, out_dir: str, work_dir: str):
        self.out_dir = out_dir
        self.work_dir = work_dir
        self.log_dir = os.path.join(out_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)

    def child(self, stage: str, spec: dict, label: str, profile: str | None = None) -> dict:
        report = os.path.join(self.log_dir, f"{label}.json")
        log = os.path.join(self.log_dir, f"{label}.log")
        cmd = [
            sys.executable,
            os.path.join(HERE, "stages.py"),
            "--stage",
            stage,
            "--spec",
            json.dumps(spec),
            "--report",
            report,
        ]
        if profile:
            cmd += ["--profile", profile]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
        if os.path.exists(report):
            os.remove(report)
        # Start every child with no dirty pages pending (the fresh layer copy is ~0.5 GB), so the
        # kernel does not throttle the stage's own writes to flush what the harness wrote.
        os.sync()
        load = os.getloadavg()[0]
        head = git_head()
        t0 = time.perf_counter()
        with open(log, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        process_wall = time.perf_counter() - t0
        try:
            with open(report) as f:
                result = json.load(f)
        except (OSError, ValueError):
            result = {"ok": False, "error": f"child exited with {proc.returncode} without a report; see {log}"}
        result.update(
            label=label,
            exit_code=proc.returncode,
            process_wall_s=process_wall,
            process_cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024.0,  # Linux reports KiB
            loadavg_1min_before=load,  # the machine is shared: a high load explains a slow run
            git_head=head,  # others commit while we measure: each run says which library it measured
            log=os.path.relpath(log, REPO),
        )
        if not result.get("ok"):
            print(f"    {label}: FAILED {result.get('error') or result.get('problems')} (log: {log})", flush=True)
        else:
            print(f"    {label}: {result['wall_s']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
        return result


def fastest(runs: list) -> dict | None:
    good = [r for r in runs if r.get("ok")]
    return min(good, key=lambda r: r["wall_s"]) if good else None


def mvox(result: dict | None) -> float | None:
    if not result or not result.get("wall_s"):
        return None
    return result["input_voxels"] / result["wall_s"] / 1e6


# -- data stages --------------------------------------------------------------------------------


def data_stage(
    runner: Runner,
    name: str,
    repeat: int,
    layer_dir: str,
    stage: str,
    spec_for: Callable[[str], dict],
    floor_for: Callable[[dict], dict],
    profile: bool,
) -> dict:
    """Run ``stage`` on fresh copies of ``layer_dir`` and its floor, ``repeat`` times, interleaved."""
    runs, floor_runs = [], []
    work = os.path.join(runner.work_dir, name)
    for i in range(1, repeat + 1):
        src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
        spec = spec_for(src)
        run = runner.child(stage, spec, f"{name}-{i}")
        runs.append(run)
        shutil.rmtree(work, ignore_errors=True)
        if run.get("ok"):
            floor_runs.append(runner.child("floor", floor_for(run), f"{name}-floor-{i}"))
    result = {"runs": runs, "best": fastest(runs), "floor": {"runs": floor_runs, "best": fastest(floor_runs)}}
    if profile and result["best"]:
        result["profile"] = profile_stage(runner, name, layer_dir, stage, spec_for, work)
    return result


def profile_stage(runner: Runner, name: str, layer_dir: str, stage: str, spec_for, work: str) -> dict:
    """One more, untimed-for-the-record run under cProfile; the top functions by own and total time."""
    import pstats

    src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
    prof = os.path.join(runner.out_dir, f"profile_{name}.prof")
    run = runner.child(stage, spec_for(src), f"{name}-profile", profile=prof)
    shutil.rmtree(work, ignore_errors=True)
    if not os.path.exists(prof):
        return {"error": run.get("error")}
    stats = pstats.Stats(prof)
    top = {}
    for key in ("tottime", "cumulative"):
        rows = []
        stats.sort_stats(key)
        for func in stats.fcn_list[:25]:
            cc, nc, tt, ct, _ = stats.stats[func]
            rows.append({"function": f"{func[0]}:{func[1]}({func[2]})", "ncalls": nc, "tottime_s": tt, "cumtime_s": ct})
        top[key] = rows
    text = os.path.join(runner.out_dir, f"profile_{name}.txt")
    with open(text, "w") as f:
        for key, rows in top.items():
            f.write(f"# {name}: top functions by {key} (profiled wall {run.get('wall_s', float('nan')):.2f} s)\n")
            for row in rows:
                f.write(f"{row['tottime_s']:9.3f} {row['cumtime_s']:9.3f} {row['ncalls']:9d}  {row['function']}\n")
            f.write("\n")
    return {
        "wall_s": run.get("wall_s"),
        "pstats": os.path.relpath(prof, REPO),
        "text": os.path.relpath(text, REPO),
        "top": {k: v[:10] for k, v in top.items()},
    }


def summarize_data_stage(result: dict, targets: dict) -> dict:
    best, floor = result["best"], result["floor"]["best"]
    result["mvox_s"] = mvox(best)
    result["floor_mvox_s"] = mvox(floor)
    result["ratio_to_floor"] = best["wall_s"] / floor["wall_s"] if best and floor else None
    # The floor runs on one thread; a stage that uses threads can beat it on wall time, so its
    # CPU seconds against the floor say how much non-codec work it does.
    result["cpu_ratio_to_floor"] = best["cpu_s"] / floor["wall_s"] if best and floor else None
    checks = {}
    if "mvox_s_min" in targets and best:
        checks["mvox_s"] = result["mvox_s"] >= targets["mvox_s_min"]
    if "ratio_to_floor_max" in targets and result["ratio_to_floor"] is not None:
        checks["ratio_to_floor"] = result["ratio_to_floor"] <= targets["ratio_to_floor_max"]
    if best and "input_bytes" in best:
        task_mb = (best["input_bytes"] + best["output_bytes"]) / 2**20
        result["task_bytes_mb"] = task_mb
        result["rss_to_task_bytes"] = best["peak_rss_mb"] / task_mb
        # The interpreter with numpy/cloudvolume/igneous imported is ~100 MB before any work.
        result["rss_above_baseline_to_task_bytes"] = (best["peak_rss_mb"] - best["rss_before_work_mb"]) / task_mb
        if "rss_to_task_bytes_max" in targets:
            result["rss_budget_mb"] = targets["rss_to_task_bytes_max"] * task_mb
            checks["peak_rss"] = best["peak_rss_mb"] <= result["rss_budget_mb"]
    result["targets"] = targets
    result["checks"] = checks
    return result


def image_downsample(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    params = {"layer": "img", **IMAGE_DOWNSAMPLE, "parallel": 1, "queue": None}
    print(f"image_downsample: {params}", flush=True)

    def floor_for(run):
        return {
            "layer_dir": os.path.join(data_dir, "img"),
            "out_chunk": run["out_chunk"],
            "factor": IMAGE_DOWNSAMPLE["factor"],
            "num_mips": run["num_mips"],
            "method": "avg",
            "compress": IMAGE_DOWNSAMPLE["compress"],
        }

    result = data_stage(
        runner,
        "image_downsample",
        repeat,
        os.path.join(data_dir, "img"),
        "downsample",
        lambda src: {"layer": src, **IMAGE_DOWNSAMPLE},
        floor_for,
        profile,
    )
    return summarize_data_stage({"params": params, **result}, TARGETS["image_downsample"])


def seg_downsample(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    spec = dict(SEG_DOWNSAMPLE)
    params = {"layer": "seg", **spec, "parallel": 1, "queue": None}
    print(f"seg_downsample: {params} (num_mips=None: as many as the default memory target allows)", flush=True)

    def floor_for(run):
        return {
            "layer_dir": os.path.join(data_dir, "seg"),
            "out_chunk": run["out_chunk"],
            "factor": spec["factor"],
            "num_mips": run["num_mips"],
            "method": "mode",
            "compress": spec["compress"],
        }

    layer = os.path.join(data_dir, "seg")
    result = data_stage(
        runner, "seg_downsample", repeat, layer, "downsample", lambda src: {"layer": src, **spec}, floor_for, profile
    )
    choice = "memory target (num_mips=None)"
    if result["best"] is None:
        error = result["runs"][0].get("error") or result["runs"][0].get("problems")
        print(f"  num_mips=None failed ({error}); falling back to num_mips={SEG_FALLBACK_MIPS}", flush=True)
        spec["num_mips"] = SEG_FALLBACK_MIPS
        choice = f"fixed {SEG_FALLBACK_MIPS} (num_mips=None failed: {error})"
        result = data_stage(
            runner,
            "seg_downsample",
            repeat,
            layer,
            "downsample",
            lambda src: {"layer": src, **spec},
            floor_for,
            profile,
        )
    params["num_mips"] = spec["num_mips"]
    params["num_mips_choice"] = choice
    if result["best"]:
        params["num_mips_written"] = result["best"]["num_mips"]
        params["task_shape"] = result["best"]["task_shape"]
        print(f"  seg_downsample wrote {params['num_mips_written']} mips, chosen by {choice}", flush=True)
    return summarize_data_stage({"params": params, **result}, TARGETS["seg_downsample"])


def transfer(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    params = {"layer": "img", **TRANSFER, "parallel": 1, "queue": None}
    print(f"transfer: {params}", flush=True)

    def spec_for(src):
        return {"src": src, "dest": os.path.join(os.path.dirname(src), "dest"), **TRANSFER}

    def floor_for(run):
        return {
            "layer_dir": os.path.join(data_dir, "img"),
            "out_chunk": TRANSFER["chunk_size"],
            "num_mips": 0,
            "write_mip0": True,
            "compress": TRANSFER["compress"],
        }

    result = data_stage(
        runner, "transfer", repeat, os.path.join(data_dir, "img"), "transfer", spec_for, floor_for, profile
    )
    return summarize_data_stage({"params": params, **result}, TARGETS["transfer"])


def _check_rss(result: dict, targets: dict) -> dict:
    best = result.get("best")
    if best and "rss_mb_max" in targets:
        result["rss_budget_mb"] = targets["rss_mb_max"]
        result["checks"]["peak_rss"] = best["peak_rss_mb"] <= targets["rss_mb_max"]
    return result


def image_shard_transfer(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """img/ → a new sharded layer at memory_target 1 GB: same chunk size, and re-chunked."""
    variants = {}
    for variant, chunk in SHARD_TRANSFER_CHUNKS.items():
        params = {"layer": "img", "chunk_size": chunk, "memory_target": SHARD_MEMORY_TARGET, "parallel": 1}
        print(f"image_shard_transfer[{variant}]: {params}", flush=True)

        def spec_for(src, chunk=chunk):
            return {"src": src, "dest": os.path.join(os.path.dirname(src), "dest"), "chunk_size": chunk,
                    "memory_target": SHARD_MEMORY_TARGET}

        def floor_for(run, chunk=chunk):
            return {"layer_dir": os.path.join(data_dir, "img"), "out_chunk": chunk, "num_mips": 0,
                    "write_mip0": True, "compress": "gzip"}

        result = data_stage(runner, f"image_shard_transfer_{variant}", repeat, os.path.join(data_dir, "img"),
                            "shard_transfer", spec_for, floor_for, profile)
        targets = TARGETS["image_shard_transfer"]
        variants[variant] = _check_rss(summarize_data_stage({"params": params, **result}, targets), targets)
    worst = min(variants.values(), key=lambda r: r.get("mvox_s") or 0)
    return {**worst, "variants": variants}


def image_shard_downsample(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """3 sharded levels of img/ in one pass, lossless (raw + gzip), memory_target 1 GB."""
    params = {"layer": "img", **SHARD_DOWNSAMPLE, "parallel": 1}
    print(f"image_shard_downsample: {params}", flush=True)

    def floor_for(run):
        return {"layer_dir": os.path.join(data_dir, "img"), "out_chunk": run["out_chunk"],
                "factor": SHARD_DOWNSAMPLE["factor"], "num_mips": SHARD_DOWNSAMPLE["num_mips"], "method": "avg",
                "compress": "gzip"}

    result = data_stage(runner, "image_shard_downsample", repeat, os.path.join(data_dir, "img"), "shard_downsample",
                        lambda src: {"layer": src, **SHARD_DOWNSAMPLE}, floor_for, profile)
    targets = TARGETS["image_shard_downsample"]
    return _check_rss(summarize_data_stage({"params": params, **result}, targets), targets)


# -- task creation ------------------------------------------------------------------------------


def task_creation(runner: Runner, data_dir: str, repeat: int, profile: bool) -> dict:
    params = dict(TASK_CREATION)
    print(f"task_creation: {params}", flush=True)
    targets = TARGETS["task_creation"]
    cases = {}
    for kind in ("downsample", "transfer"):
        modes = (("memory", params["memory_counts"]), ("fq", params["fq_counts"]), ("submit", params["fq_counts"]))
        for mode, counts in modes:
            for count in counts:
                case = f"{kind}-{mode}-{count}"
                runs = []
                for i in range(1, repeat + 1):
                    work = os.path.join(runner.work_dir, "task_creation", case)
                    shutil.rmtree(work, ignore_errors=True)
                    os.makedirs(work)
                    spec = {
                        "work": work,
                        "kind": kind,
                        "mode": mode,
                        "count": count,
                        "size": params["size"],
                        "chunk": params["chunk"],
                        "num_mips": params["num_mips"],
                        "shape": params["shape"],
                    }
                    runs.append(runner.child("task_creation", spec, f"task_creation-{case}-{i}"))
                    shutil.rmtree(work, ignore_errors=True)
                best = fastest(runs)
                target = targets["memory_tasks_s_min" if mode == "memory" else "fq_tasks_s_min"]
                cases[case] = {
                    "kind": kind,
                    "mode": mode,
                    "count": count,
                    "runs": runs,
                    "best": best,
                    "tasks_per_s": best["tasks_per_s"] if best else None,
                    "target_tasks_s_min": target,
                    "checks": {"tasks_per_s": bool(best) and best["tasks_per_s"] >= target},
                }
    for kind, shape in params["forge_shapes"].items():
        case = f"{kind}-forge-plan"
        runs = []
        for i in range(1, repeat + 1):
            work = os.path.join(runner.work_dir, "task_creation", case)
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            spec = {"work": work, "kind": kind, "mode": "memory", "count": 10**9, "size": params["forge_size"],
                    "chunk": params["chunk"], "num_mips": 0, "shape": shape}  # fmt: skip
            runs.append(runner.child("task_creation", spec, f"task_creation-{case}-{i}"))
            shutil.rmtree(work, ignore_errors=True)
        best = fastest(runs)
        rate = best["plan_and_run_tasks_per_s"] if best else None
        target = targets["memory_tasks_s_min"]
        cases[case] = {"kind": kind, "mode": "memory", "count": best["tasks"] if best else None, "runs": runs,
                       "best": best, "tasks_per_s": rate, "target_tasks_s_min": target,
                       "checks": {"tasks_per_s": bool(best) and rate >= target}}  # fmt: skip
        if best:
            print(f"  {case}: {best['tasks']} tasks, {rate:.0f} tasks/s with planning; "
                  f"serialize {best['serialize_tasks_per_s']:.0f} tasks/s", flush=True)  # fmt: skip
    return {"params": params, "cases": cases, "targets": targets}


STAGES = {
    "image_downsample": image_downsample,
    "seg_downsample": seg_downsample,
    "transfer": transfer,
    "image_shard_transfer": image_shard_transfer,
    "image_shard_downsample": image_shard_downsample,
    "task_creation": task_creation,
    **MESH_STAGES,
    **VOXEL_STAGES,
    **INGEST_STAGES,
    **CCL_STAGES,
    **PLAN_VIEW_STAGES,
    **SKELETON_STAGES,
}


# -- report -------------------------------------------------------------------------------------


def _fmt(value, spec: str = ".2f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _targets_text(res: dict) -> str:
    targets, checks = res.get("targets", {}), res.get("checks", {})
    parts = []
    if "mvox_s" in checks:
        parts.append(f">={targets['mvox_s_min']} Mvox/s {'ok' if checks['mvox_s'] else 'MISSED'}")
    if "ratio_to_floor" in checks:
        parts.append(f"<={targets['ratio_to_floor_max']}x floor {'ok' if checks['ratio_to_floor'] else 'MISSED'}")
    if "peak_rss" in checks:
        parts.append(f"RSS <={res['rss_budget_mb']:.0f} MB {'ok' if checks['peak_rss'] else 'MISSED'}")
    return "; ".join(parts) or "-"


def print_table(stages: dict) -> None:
    header = (
        f"{'stage':<17} {'tasks':>5} {'wall s':>7} {'Mvox/s':>7} {'cpu s':>6} {'peak RSS MB':>11} {'base MB':>7} "
        f"{'task MB':>7} "
        f"{'floor s':>7} {'floor Mvox/s':>12} {'ratio':>5} {'cpu ratio':>9}  targets"
    )
    data_stages = [name for name in STAGE_NAMES if name in stages and name != "task_creation"]
    if data_stages:
        print("\n" + header + "\n" + "-" * len(header))
    for name in data_stages:
        res = stages[name]
        best = res.get("best") or {}
        floor = (res.get("floor") or {}).get("best") or {}
        print(
            f"{name:<17} {best.get('tasks', '-'):>5} {_fmt(best.get('wall_s')):>7} {_fmt(res.get('mvox_s'), '.1f'):>7} "
            f"{_fmt(best.get('cpu_s'), '.1f'):>6} {_fmt(best.get('peak_rss_mb'), '.0f'):>11} "
            f"{_fmt(best.get('rss_before_work_mb'), '.0f'):>7} {_fmt(res.get('task_bytes_mb'), '.0f'):>7} "
            f"{_fmt(floor.get('wall_s')):>7} "
            f"{_fmt(res.get('floor_mvox_s'), '.1f'):>12} {_fmt(res.get('ratio_to_floor')):>5} "
            f"{_fmt(res.get('cpu_ratio_to_floor')):>9}  {_targets_text(res)}"
        )
    for name in STAGE_NAMES:
        floor = ((stages.get(name) or {}).get("floor") or {}).get("best")
        if floor:
            print(
                f"  {name} floor: decode {floor['decode_s']:.2f} s ({floor['chunks_in']} chunks) + encode "
                f"{floor['encode_s']:.2f} s ({floor['chunks_out']} chunks); pooling {floor['pool_s']:.2f} s "
                f"not counted; libdeflate {floor['libdeflate']}"
            )
    res = stages.get("task_creation")
    if res:
        header = (
            f"{'task_creation case':<28} {'tasks':>7} {'of':>7} {'s':>7} {'tasks/s':>8} {'peak RSS MB':>11} "
            f"{'base MB':>7} {'serialize/s':>11}  target"
        )
        print("\n" + header + "\n" + "-" * len(header))
        for case, c in res["cases"].items():
            best = c.get("best") or {}
            print(
                f"{case:<28} {best.get('tasks', '-'):>7} {best.get('tasks_total', '-'):>7} "
                f"{_fmt(best.get('wall_s'), '.3f'):>7} {_fmt(c.get('tasks_per_s'), '.0f'):>8} "
                f"{_fmt(best.get('peak_rss_mb'), '.0f'):>11} {_fmt(best.get('rss_before_work_mb'), '.0f'):>7} "
                f"{_fmt(best.get('serialize_tasks_per_s'), '.0f'):>11}  "
                f">={c['target_tasks_s_min']} {'ok' if c['checks']['tasks_per_s'] else 'MISSED'}"
            )
    print()


def versions() -> dict:
    out = {}
    for dist in (
        "numpy",
        "cloud-volume",
        "cloud-files",
        "deflate",
        "tinybrain",
        "task-queue",
        "compressed-segmentation",
        "fastremap",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def git_head() -> str | None:
    """The commit measured, with "+dirty" when igneous/ has uncommitted changes; None before the first commit."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "igneous"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip()[:12] + ("+dirty" if status.stdout.strip() else "")


def environment(manifest: dict, data_dir: str) -> dict:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "git_head": git_head(),
        "versions": versions(),
        "data_dir": os.path.abspath(data_dir),
        "make_data_sha256": file_sha256(MAKE_DATA),
        "data_sha256": {k: v.get("sha256_fortran_slabs") for k, v in manifest.items() if isinstance(v, dict)},
    }


def write_results(path: str, env: dict, stages: dict) -> None:
    """Merge into an existing results file: stages not run this time keep their earlier figures."""
    merged = {"stages": {}}
    if os.path.exists(path):
        try:
            with open(path) as f:
                merged = json.load(f)
        except ValueError:
            pass
    merged.setdefault("stages", {})
    for name, res in stages.items():
        merged["stages"][name] = {"measured_at": env["date"], "environment": env, **res}
    merged["environment"] = env
    merged["targets"] = TARGETS
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=2)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=STAGE_NAMES, default=None, help="stages to run (default: all)")
    parser.add_argument(
        "--data",
        default=os.path.join(HERE, "data"),
        help="cache of make_data.py's layers (written if missing or its manifest differs)",
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="where results.json and logs go")
    parser.add_argument("--work", default=None, help="scratch space for layer copies (default: DATA/work)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per stage; the fastest is reported")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run each data stage once under cProfile and report its top functions",
    )
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    manifest = ensure_data(args.data)
    work_dir = args.work or os.path.join(args.data, "work")
    runner = Runner(args.out, work_dir)
    env = environment(manifest, args.data)
    print(
        f"python {env['python']} on {env['cpus']} CPUs, load {env['loadavg_at_start']}; "
        f"repeat {args.repeat}, fastest reported; parallel=1",
        flush=True,
    )

    stages = {}
    for name in args.only or STAGE_NAMES:
        stages[name] = STAGES[name](runner, args.data, args.repeat, args.profile)
    env["loadavg_at_end"] = os.getloadavg()
    env["git_head_at_end"] = git_head()
    shutil.rmtree(work_dir, ignore_errors=True)

    results = os.path.join(args.out, "results.json")
    write_results(results, env, stages)
    print_table(stages)
    for name, res in stages.items():
        for line in _profile_lines(name, res.get("profile")):
            print(line)
    if env["git_head_at_end"] != env["git_head"]:
        print(
            f"WARNING: the library changed during the run ({env['git_head']} -> {env['git_head_at_end']}); "
            "each run's git_head in results.json says which version it measured"
        )
    print(f"results: {os.path.relpath(results)}")
    failed = [name for name, res in stages.items() if _failed(res)]
    if failed:
        print(f"stages that did not complete: {', '.join(failed)} (see {os.path.join(args.out, 'logs')})")
    return 1 if failed else 0


def _failed(res: dict) -> bool:
    if "cases" in res:
        return any(c["best"] is None for c in res["cases"].values())
    return res.get("best") is None


def _profile_lines(name: str, profile: dict | None):
    if not profile or "top" not in profile:
        return
    yield (
        f"{name} under cProfile ({_fmt(profile.get('wall_s'))} s wall profiled): top 10 by own time, "
        "summed over threads"
    )
    yield f"{'tottime':>9} {'cumtime':>9} {'ncalls':>8}  function"
    for row in profile["top"]["tottime"]:
        yield f"{row['tottime_s']:9.3f} {row['cumtime_s']:9.3f} {row['ncalls']:8d}  {row['function']}"
    yield f"  full listing: {profile['text']}"
    yield ""


if __name__ == "__main__":
    sys.exit(main())
