"""Benchmark stages of issue 13: image-stack ingest, equalize, CLAHE (``-p 1``).

Generated TIFF series are cached in ``benchmarks/data/ingest_cache`` (or
``$IGNEOUS_INGEST_BENCH_CACHE``), never in the shared data directory.

* ``ingest_series``: a TIFF series of the 2048×2048×128 uint8 ``img`` layer (128 uncompressed
  slices, written outside the clock) → a new layer (chunks 128×128×64, raw + gzip). Floor:
  decoding every slice with tifffile + encoding every output chunk (cloudvolume.chunks + gzip),
  timed in the same run. Target ≤ 1.3× floor; Mvox/s reported.
* ``ingest_array``: the ``img`` layer as one Fortran-ordered .npy → a new layer (chunks
  128×128×64, raw + gzip), written by ``create_image_from_array`` (synchronous). Calibrates
  ``image create --dry-run`` of array files; no target.
* ``ingest_big_slices``: 16 slices of 16384×16384 uint8 (uncompressed TIFF, ``img`` tiled 8×8),
  ``memory_target=1e9``, chunks 128×128×16. Target: peak RSS ≤ 1.2 GB.
* ``equalize``: histograms of ``img`` (outside the clock), then
  ``create_contrast_normalization_tasks`` (2048×2048×64 tasks, 4 pyramid levels). Floor: the
  codec floor of decoding ``img`` and encoding mip 0 and the 4 levels. Target ≤ 1.3×.
* ``clahe``: ``create_clahe_tasks`` on ``img`` (default shape: whole 2048² slices, 256-px
  tiles). Floor: the codec floor (decode ``img``, encode mip 0) plus one OpenCV CLAHE pass
  over the same 128 slices (reported separately too). Target ≤ 1.3×.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np

SERIES_CHUNK = [128, 128, 64]
BIG = {"tile": 8, "slices": 16, "memory_target": 1_000_000_000, "chunk": [128, 128, 16]}
EQUALIZE_SHAPE = [2048, 2048, 64]
CLAHE = {"clip_limit": 40.0, "tile_grid_size": [8, 8]}

INGEST_TARGETS = {
    "ingest_series": {"ratio_to_floor_max": 1.3},
    "ingest_big_slices": {"rss_mb_max": 1.2 * 1000**3 / 2**20},
    "ingest_array": {},
    "equalize": {"ratio_to_floor_max": 1.3},
    "clahe": {"ratio_to_floor_max": 1.3},
}


# -- inputs (parent, untimed) -------------------------------------------------------------------


def _img_slices(data_dir: str):
    from cloudvolume import CloudVolume

    vol = CloudVolume("file://" + os.path.join(data_dir, "img"), progress=False)
    return np.asarray(vol[:, :, :])[..., 0]  # x, y, z


CACHE = os.environ.get("IGNEOUS_INGEST_BENCH_CACHE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                                                   "ingest_cache"))  # fmt: skip


def write_series(data_dir: str, out: str) -> str:
    """128 uncompressed TIFF slices of ``img`` (written once, reused)."""
    import tifffile

    done = os.path.join(out, ".complete")
    if os.path.exists(done):
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    img = _img_slices(data_dir)
    for z in range(img.shape[2]):
        tifffile.imwrite(os.path.join(out, f"img_{z:04d}.tif"), np.ascontiguousarray(img[:, :, z].T))
    open(done, "w").close()
    return out


def write_big_series(data_dir: str, out: str) -> str:
    """16 slices of 16384² uint8: ``img`` slices tiled 8×8 (uncompressed, one strip each)."""
    import tifffile

    done = os.path.join(out, ".complete")
    if os.path.exists(done):
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    img = _img_slices(data_dir)
    for z in range(BIG["slices"]):
        page = np.tile(np.ascontiguousarray(img[:, :, z].T), (BIG["tile"], BIG["tile"]))
        tifffile.imwrite(os.path.join(out, f"big_{z:03d}.tif"), page)
        del page
    open(done, "w").close()
    return out


# -- children (timed) ---------------------------------------------------------------------------


def _run(tasks) -> None:
    from igneous.queues import submit_tasks

    submit_tasks(tasks, queue=None, parallel=1, progress=False)


def ingest(series: str, dest: str, chunk, memory_target: float, compress: str = "gzip", profile=None) -> dict:
    from stages import Timer, check_scales, max_rss_mb, profiled

    from igneous.task_creation.ingest import create_image_stack_tasks

    shutil.rmtree(dest, ignore_errors=True)
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan"):
            tasks = create_image_stack_tasks(series, "file://" + dest, chunk_size=chunk, encoding="raw",
                                             compress=compress, memory_target=memory_target)  # fmt: skip
            ntasks = len(tasks)
        with timer.phase("run"):
            _run(tasks)
    problems = check_scales(dest, [0])
    problems += _check_slices(series, dest)
    size = _layer_size(dest)
    return {"wall_s": timer.total("wall_s"), "cpu_s": timer.total("cpu_s"), "phases": timer.phases,
            "tasks": ntasks, "task_shape": [int(v) for v in tasks.shape], "input_voxels": int(np.prod(size)),
            "rss_before_work_mb": rss_before, "problems": problems, "ok": not problems}  # fmt: skip


def _layer_size(dest: str):
    import json

    with open(os.path.join(dest, "info")) as f:
        return json.load(f)["scales"][0]["size"]


def _check_slices(series: str, dest: str) -> list:
    """Two slices of the layer against the TIFFs (a 1024² corner each: bounded memory)."""
    import tifffile
    from cloudvolume import CloudVolume

    names = sorted(n for n in os.listdir(series) if n.endswith(".tif"))
    vol = CloudVolume("file://" + dest, progress=False)
    problems = []
    for z in (0, len(names) - 1):
        want = tifffile.imread(os.path.join(series, names[z]))[:1024, :1024].T
        got = np.asarray(vol[0:1024, 0:1024, z])[:, :, 0, 0]
        if not np.array_equal(want, got):
            problems.append(f"slice {z} differs from {names[z]}")
    return problems


def series_floor(series: str, chunk, compress: str = "gzip") -> dict:
    """Decode every slice (tifffile) and encode every output chunk; only codec calls are timed."""
    import tifffile
    from cloudfiles import compression
    from cloudvolume import chunks
    from floor import libdeflate_status

    names = sorted(n for n in os.listdir(series) if n.endswith(".tif"))
    cz = int(chunk[2])
    decode_s = encode_s = 0.0
    chunks_out = 0
    voxels = 0
    for z0 in range(0, len(names), cz):
        slab = None
        for i, name in enumerate(names[z0 : z0 + cz]):
            t0 = time.perf_counter()
            page = tifffile.imread(os.path.join(series, name))
            decode_s += time.perf_counter() - t0
            if slab is None:
                slab = np.empty(page.shape[::-1] + (min(cz, len(names) - z0), 1), dtype=page.dtype, order="F")
            slab[:, :, i, 0] = page.T
        voxels += slab.size
        for x in range(0, slab.shape[0], int(chunk[0])):
            for y in range(0, slab.shape[1], int(chunk[1])):
                view = slab[x : x + int(chunk[0]), y : y + int(chunk[1])]
                t0 = time.perf_counter()
                compression.compress(chunks.encode(view, "raw"), compress)
                encode_s += time.perf_counter() - t0
                chunks_out += 1
    return {"wall_s": decode_s + encode_s, "decode_s": decode_s, "encode_s": encode_s, "pool_s": 0.0,
            "chunks_in": len(names), "chunks_out": chunks_out, "input_voxels": voxels, "ok": True,
            **libdeflate_status()}  # fmt: skip


def equalize(layer: str, dest: str, shape, profile=None) -> dict:
    from stages import Timer, check_scales, max_rss_mb, profiled

    import igneous.task_creation as tc

    histogram = Timer()  # the input: histograms, timed apart (dry-run calibration of `contrast histogram`)
    with histogram.phase("histogram"):
        levels_tasks = tc.create_luminance_levels_tasks("file://" + layer)
        _run(levels_tasks)
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan"):
            tasks = tc.create_contrast_normalization_tasks("file://" + layer, "file://" + dest, shape=shape)
            ntasks = len(tasks)
        with timer.phase("run"):
            _run(tasks)
    import json

    with open(os.path.join(dest, "info")) as f:
        num_mips = len(json.load(f)["scales"]) - 1
    problems = check_scales(dest, range(num_mips + 1))
    return {"wall_s": timer.total("wall_s"), "cpu_s": timer.total("cpu_s"), "phases": timer.phases,
            "tasks": ntasks, "num_mips": num_mips, "input_voxels": int(np.prod(_layer_size(layer))),
            "histogram": {**histogram.phases["histogram"], "tasks": len(levels_tasks)},
            "rss_before_work_mb": rss_before, "problems": problems, "ok": not problems}  # fmt: skip


def clahe(layer: str, dest: str, clip_limit: float, tile_grid_size, profile=None) -> dict:
    from stages import Timer, check_scales, max_rss_mb, profiled

    import igneous.task_creation as tc

    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan"):
            tasks = tc.create_clahe_tasks("file://" + layer, "file://" + dest, clip_limit=clip_limit,
                                          tile_grid_size=tile_grid_size)  # fmt: skip
            ntasks = len(tasks)
        with timer.phase("run"):
            _run(tasks)
    problems = check_scales(dest, [0])
    return {"wall_s": timer.total("wall_s"), "cpu_s": timer.total("cpu_s"), "phases": timer.phases,
            "tasks": ntasks, "input_voxels": int(np.prod(_layer_size(layer))), "rss_before_work_mb": rss_before,
            "problems": problems, "ok": not problems}  # fmt: skip


def clahe_floor(layer_dir: str, clip_limit: float, tile_grid_size, out_chunk) -> dict:
    """Decode ``img`` + one OpenCV CLAHE pass over every slice + encode the equalised chunks.

    Only those calls are timed; the encoded data is CLAHE's output (its entropy, not the
    input's, sets the gzip cost).
    """
    import cv2
    from cloudfiles import compression
    from cloudvolume import chunks
    from floor import codec_floor, libdeflate_status

    cv2.setNumThreads(0)
    decode = codec_floor(layer_dir, out_chunk, num_mips=0, write_mip0=False, compress="gzip")
    img = _img_slices(os.path.dirname(layer_dir))
    op = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tuple(tile_grid_size))
    clahe_s = encode_s = 0.0
    out = np.empty(img.shape + (1,), dtype=img.dtype, order="F")
    for z in range(img.shape[2]):
        page = np.ascontiguousarray(img[:, :, z].T)
        t0 = time.perf_counter()
        result = op.apply(page)
        clahe_s += time.perf_counter() - t0
        out[:, :, z, 0] = result.T
    cx, cy, cz = (int(c) for c in out_chunk)
    for z in range(0, out.shape[2], cz):
        for y in range(0, out.shape[1], cy):
            for x in range(0, out.shape[0], cx):
                view = out[x : x + cx, y : y + cy, z : z + cz]
                t0 = time.perf_counter()
                compression.compress(chunks.encode(view, "raw"), "gzip")
                encode_s += time.perf_counter() - t0
    total = decode["decode_s"] + clahe_s + encode_s
    return {"wall_s": total, "decode_s": decode["decode_s"], "clahe_s": clahe_s, "encode_s": encode_s,
            "pool_s": 0.0, "chunks_in": decode["chunks_in"], "chunks_out": decode["chunks_in"],
            "input_voxels": int(out.size), "ok": True, **libdeflate_status()}  # fmt: skip


def write_array(data_dir: str, out: str) -> str:
    """``img`` as one Fortran-ordered .npy (x, y, z), written once."""
    path = os.path.join(out, "img.npy")
    if not os.path.exists(path):
        os.makedirs(out, exist_ok=True)
        np.save(path + ".tmp.npy", np.asfortranarray(_img_slices(data_dir)))
        os.replace(path + ".tmp.npy", path)
    return path


def ingest_array(path: str, dest: str, chunk, compress: str = "gzip", profile=None) -> dict:
    """``image create`` of one .npy (synchronous, this process)."""
    from stages import Timer, check_scales, max_rss_mb, profiled

    from igneous.task_creation.ingest import create_image_from_array

    shutil.rmtree(dest, ignore_errors=True)
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("run"):
            create_image_from_array(path, "file://" + dest, chunk_size=chunk, compress=compress, progress=False)
    problems = check_scales(dest, [0])
    return {"wall_s": timer.total("wall_s"), "cpu_s": timer.total("cpu_s"), "phases": timer.phases, "tasks": 0,
            "input_voxels": int(np.prod(_layer_size(dest))), "rss_before_work_mb": rss_before,
            "problems": problems, "ok": not problems}  # fmt: skip


def make_inputs(data_dir: str, which: str) -> dict:
    """Write a cached series in a child: the parent must stay small, since a child's peak RSS
    (wait4's ru_maxrss) starts at its parent's RSS when forked."""
    if which == "array":
        write_array(data_dir, os.path.join(CACHE, "array"))
    elif which == "big":
        write_big_series(data_dir, os.path.join(CACHE, "big"))
    else:
        write_series(data_dir, os.path.join(CACHE, "series"))
    return {"ok": True, "wall_s": 0.0}


CHILD_STAGES = {"ingest_inputs": make_inputs, "ingest": ingest, "ingest_array_stage": ingest_array, "series_floor": series_floor, "equalize_stage": equalize, "clahe_stage": clahe,
                "clahe_floor": clahe_floor}  # fmt: skip


# -- parents --------------------------------------------------------------------------------------


def _stage(runner, name, repeat, run_spec, floor_name, floor_spec, targets, prepare=None, cleanup=None) -> dict:
    from run import fastest, mvox

    runs, floors = [], []
    for i in range(1, repeat + 1):
        spec = prepare() if prepare else run_spec
        runs.append(runner.child(spec["_stage"], {k: v for k, v in spec.items() if k != "_stage"}, f"{name}-{i}"))
        if cleanup:
            cleanup()
        if floor_name:
            floors.append(runner.child(floor_name, floor_spec, f"{name}-floor-{i}"))
    best, floor_best = fastest(runs), fastest(floors)
    result = {"runs": runs, "best": best, "floor": {"runs": floors, "best": floor_best}, "targets": targets,
              "mvox_s": mvox(best), "floor_mvox_s": mvox(floor_best), "checks": {}}  # fmt: skip
    if best and floor_best:
        result["ratio_to_floor"] = best["wall_s"] / floor_best["wall_s"]
        result["cpu_ratio_to_floor"] = best["cpu_s"] / floor_best["wall_s"]
        if "ratio_to_floor_max" in targets:
            result["checks"]["ratio_to_floor"] = result["ratio_to_floor"] <= targets["ratio_to_floor_max"]
    if best and "rss_mb_max" in targets:
        result["rss_budget_mb"] = targets["rss_mb_max"]
        result["checks"]["peak_rss"] = best["peak_rss_mb"] <= targets["rss_mb_max"]
    return result


def ingest_series(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    runner.child("ingest_inputs", {"data_dir": data_dir, "which": "series"}, "ingest_series-inputs")
    series = os.path.join(CACHE, "series")
    dest = os.path.join(runner.work_dir, "ingest_series", "dest")
    print(f"ingest_series: {series} (128 uncompressed TIFFs 2048²) chunks {SERIES_CHUNK}, gzip, -p 1", flush=True)
    spec = {"_stage": "ingest", "series": series, "dest": dest, "chunk": SERIES_CHUNK, "memory_target": 3.5e9}
    result = _stage(runner, "ingest_series", repeat, spec, "series_floor", {"series": series, "chunk": SERIES_CHUNK},
                    INGEST_TARGETS["ingest_series"], cleanup=lambda: shutil.rmtree(dest, ignore_errors=True))  # fmt: skip
    result["params"] = {"slices": 128, "slice": [2048, 2048], "chunk": SERIES_CHUNK, "compress": "gzip"}
    return result


def ingest_array_stage(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    runner.child("ingest_inputs", {"data_dir": data_dir, "which": "array"}, "ingest_array-inputs")
    path = os.path.join(CACHE, "array", "img.npy")
    dest = os.path.join(runner.work_dir, "ingest_array", "dest")
    print(f"ingest_array: {path} (img as one .npy) chunks {SERIES_CHUNK}, gzip, this process", flush=True)
    spec = {"_stage": "ingest_array_stage", "path": path, "dest": dest, "chunk": SERIES_CHUNK}
    result = _stage(runner, "ingest_array", repeat, spec, None, None, INGEST_TARGETS["ingest_array"],
                    cleanup=lambda: shutil.rmtree(dest, ignore_errors=True))  # fmt: skip
    result["params"] = {"array": "img.npy", "chunk": SERIES_CHUNK, "compress": "gzip"}
    return result


def ingest_big_slices(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    runner.child("ingest_inputs", {"data_dir": data_dir, "which": "big"}, "ingest_big_slices-inputs")
    series = os.path.join(CACHE, "big")
    dest = os.path.join(runner.work_dir, "ingest_big", "dest")
    print(f"ingest_big_slices: {BIG}", flush=True)
    spec = {"_stage": "ingest", "series": series, "dest": dest, "chunk": BIG["chunk"],
            "memory_target": BIG["memory_target"]}  # fmt: skip
    result = _stage(runner, "ingest_big_slices", 1, spec, None, None, INGEST_TARGETS["ingest_big_slices"],
                    cleanup=lambda: shutil.rmtree(dest, ignore_errors=True))  # fmt: skip
    result["params"] = dict(BIG)
    return result


def equalize_stage(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    from datasets import fresh_copy

    work = os.path.join(runner.work_dir, "equalize")
    print(f"equalize: img, shape {EQUALIZE_SHAPE}, pyramid from the task shape, -p 1", flush=True)

    def prepare():
        src = fresh_copy(data_dir, "img", work, "input")
        return {"_stage": "equalize_stage", "layer": src, "dest": os.path.join(work, "dest"), "shape": EQUALIZE_SHAPE}

    floor_spec = {"layer_dir": os.path.join(data_dir, "img"), "out_chunk": [128, 128, 16], "num_mips": 4,
                  "write_mip0": True, "method": "avg", "compress": "gzip"}  # fmt: skip
    spec = {"_stage": "equalize_stage"}
    result = _stage(runner, "equalize", repeat, spec, "floor", floor_spec, INGEST_TARGETS["equalize"],
                    prepare=prepare, cleanup=lambda: shutil.rmtree(work, ignore_errors=True))  # fmt: skip
    result["params"] = {"layer": "img", "shape": EQUALIZE_SHAPE, "clip_fraction": 0.01}
    return result


def clahe_stage(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    from datasets import fresh_copy

    work = os.path.join(runner.work_dir, "clahe")
    print(f"clahe: img, default shape (whole 2048² slices), {CLAHE}, -p 1", flush=True)

    def prepare():
        src = fresh_copy(data_dir, "img", work, "input")
        return {"_stage": "clahe_stage", "layer": src, "dest": os.path.join(work, "dest"), **CLAHE}

    floor_spec = {"layer_dir": os.path.join(data_dir, "img"), "out_chunk": [128, 128, 16], **CLAHE}
    spec = {"_stage": "clahe_stage"}
    result = _stage(runner, "clahe", repeat, spec, "clahe_floor", floor_spec, INGEST_TARGETS["clahe"],
                    prepare=prepare, cleanup=lambda: shutil.rmtree(work, ignore_errors=True))  # fmt: skip
    floor = result["floor"]["best"]
    if floor and result["best"]:
        result["clahe_only_s"] = floor["clahe_s"]
        result["ratio_to_clahe_only"] = result["best"]["wall_s"] / floor["clahe_s"]
    result["params"] = {"layer": "img", **CLAHE}
    return result


PARENT_STAGES = {"ingest_series": ingest_series, "ingest_array": ingest_array_stage, "ingest_big_slices": ingest_big_slices,
                 "equalize": equalize_stage, "clahe": clahe_stage}  # fmt: skip
