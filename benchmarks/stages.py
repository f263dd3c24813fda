"""Stage bodies, each run in a fresh child process by ``run.py`` (so its peak RSS is its own).

    python benchmarks/stages.py --stage NAME --spec JSON --report FILE [--profile FILE]

Only the work is timed: planning (``create_*_tasks`` and ``len``) and execution, not the
interpreter start or imports. After the clock stops the output is checked (chunk counts
and a block compared with tinybrain), so a fast but wrong stage is reported as such.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import resource
import sys
import threading
import time
import traceback

import numpy as np
from floor import codec_floor, libdeflate_status


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def profiled(path):
    """cProfile the block into ``path`` (a pstats file) when a path is given.

    Threads started inside the block (the library uploads on worker threads) get their own
    profiler; all are merged, so times are summed over threads and the main thread's
    waiting shows up as ``lock.acquire``.
    """
    if not path:
        yield
        return
    profiles = [cProfile.Profile()]

    def profile_new_thread(*_):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread's life

    threading.setprofile(profile_new_thread)
    profiles[0].enable()
    try:
        yield
    finally:
        profiles[0].disable()
        threading.setprofile(None)
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(path)


class Timer:
    """Wall and CPU (all threads) seconds of named phases."""

    def __init__(self):
        self.phases = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        wall, cpu = time.perf_counter(), cpu_seconds()
        yield
        self.phases[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}

    def total(self, key: str) -> float:
        return sum(p[key] for p in self.phases.values())


# -- checks (untimed) ---------------------------------------------------------------------------


def count_chunk_files(layer_dir: str, key: str) -> int:
    scale_dir = os.path.join(layer_dir, key)
    if not os.path.isdir(scale_dir):
        return 0
    return sum(1 for name in os.listdir(scale_dir) if "_" in name and "-" in name)


def expected_chunks(scale: dict) -> int:
    size, chunk = np.array(scale["size"]), np.array(scale["chunk_sizes"][0])
    return int(np.prod(-(-size // chunk)))


def check_scales(layer_dir: str, mips) -> list:
    """Problems with the chunk files of ``mips`` (missing or extra files)."""
    with open(os.path.join(layer_dir, "info")) as f:
        info = json.load(f)
    problems = []
    for mip in mips:
        scale = info["scales"][mip]
        have, want = count_chunk_files(layer_dir, scale["key"]), expected_chunks(scale)
        if have != want:
            problems.append(f"mip {mip} ({scale['key']}): {have} chunk files, expected {want}")
    return problems


def check_pyramid_block(path: str, num_mips: int, factor, method: str) -> list:
    """Compare the first top-level chunk's block at every level with tinybrain on the source."""
    import tinybrain
    from cloudvolume import CloudVolume
    from cloudvolume.lib import Bbox, Vec

    vol = CloudVolume(path, mip=0, progress=False, cdn_cache=False)
    top_chunk = vol.meta.chunk_size(num_mips)
    scale = Vec(*factor) ** num_mips
    box = Bbox.clamp(Bbox((0, 0, 0), top_chunk * scale), vol.meta.bounds(0))
    src = vol.download(box, mip=0)
    if method == "mode":
        expect = tinybrain.downsample_segmentation(src, factor, num_mips=num_mips)
    else:
        expect = tinybrain.downsample_with_averaging(src, factor, num_mips=num_mips)
    problems = []
    for k, want in enumerate(expect, start=1):
        kbox = Bbox.clamp(Bbox((0, 0, 0), Vec(*want.shape[:3])), vol.meta.bounds(k))
        got = vol.download(kbox, mip=k)
        want = want[: got.shape[0], : got.shape[1], : got.shape[2]]
        if got.shape != want.shape or not np.array_equal(np.asarray(got), want):
            problems.append(f"mip {k}: block {kbox.to_list()} differs from tinybrain ({method})")
    return problems


def check_copy_block(src_path: str, dest_path: str, shape) -> list:
    from cloudvolume import CloudVolume
    from cloudvolume.lib import Bbox

    src = CloudVolume(src_path, progress=False, cdn_cache=False)
    dest = CloudVolume(dest_path, progress=False, cdn_cache=False)
    box = Bbox.clamp(Bbox((0, 0, 0), shape), src.meta.bounds(0))
    if not np.array_equal(np.asarray(src.download(box)), np.asarray(dest.download(box))):
        return [f"destination block {box.to_list()} differs from the source"]
    return []


# -- stages -------------------------------------------------------------------------------------


def task_shape(tasks) -> list:
    """The task grid's cell shape (the planner's iterator exposes it; else the first task's)."""
    shape = getattr(tasks, "shape", None)
    if shape is None:
        first = next(iter(tasks[0:1]))
        shape = getattr(first, "keywords", {}).get("shape") or first.shape
    return [int(v) for v in shape]


def task_bytes(shape, size, itemsize: int, factor, num_mips: int) -> dict:
    """Bytes of one task's input cutout and of the pyramid levels it produces."""
    box = np.minimum(np.array(shape), np.array(size))
    cutout = int(np.prod(box)) * itemsize
    out = 0
    for k in range(1, num_mips + 1):
        out += int(np.prod(-(-box // np.array(factor) ** k))) * itemsize
    return {"input_bytes": cutout, "output_bytes": out}


def downsample(layer: str, num_mips, factor, compress, method: str, profile=None) -> dict:
    """Build a pyramid above mip 0 of ``layer`` in this process (``submit_tasks`` with no queue)."""
    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    path = "file://" + layer
    rss_before = max_rss_mb()
    timer = Timer()
    with timer.phase("plan"):
        tasks = tc.create_downsampling_tasks(path, mip=0, num_mips=num_mips, factor=factor, compress=compress)
        ntasks = len(tasks)
    with timer.phase("execute"), profiled(profile):
        submit_tasks(tasks, queue=None, parallel=1, progress=False)

    with open(os.path.join(layer, "info")) as f:
        info = json.load(f)
    levels = len(info["scales"]) - 1
    shape = task_shape(tasks)
    size = info["scales"][0]["size"]
    itemsize = np.dtype(info["data_type"]).itemsize * int(info["num_channels"])
    problems = check_scales(layer, range(1, levels + 1)) + check_pyramid_block(path, levels, factor, method)
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "task_shape": shape,
        "num_mips": levels,
        "num_mips_requested": num_mips,
        "out_chunk": info["scales"][1]["chunk_sizes"][0] if levels else None,
        "input_voxels": int(np.prod(size)),
        "rss_before_work_mb": rss_before,
        **task_bytes(shape, size, itemsize, factor, levels),
        "problems": problems,
        **libdeflate_status(),
    }


def transfer(src: str, dest: str, chunk_size, compress, skip_downsamples: bool, profile=None) -> dict:
    """Copy ``src`` to a new layer ``dest`` re-chunked to ``chunk_size``, in this process."""
    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    src_path, dest_path = "file://" + src, "file://" + dest
    rss_before = max_rss_mb()
    timer = Timer()
    with timer.phase("plan"):
        tasks = tc.create_transfer_tasks(
            src_path, dest_path, chunk_size=chunk_size, skip_downsamples=skip_downsamples, compress=compress
        )
        ntasks = len(tasks)
    with timer.phase("execute"), profiled(profile):
        submit_tasks(tasks, queue=None, parallel=1, progress=False)

    with open(os.path.join(src, "info")) as f:
        info = json.load(f)
    size = info["scales"][0]["size"]
    itemsize = np.dtype(info["data_type"]).itemsize * int(info["num_channels"])
    shape = task_shape(tasks)
    cutout = task_bytes(shape, size, itemsize, (1, 1, 1), 0)["input_bytes"]
    problems = check_scales(dest, [0]) + check_copy_block(src_path, dest_path, shape)
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "task_shape": shape,
        "input_voxels": int(np.prod(size)),
        "rss_before_work_mb": rss_before,
        "input_bytes": cutout,
        "output_bytes": cutout,  # the same box, re-chunked
        "problems": problems,
        **libdeflate_status(),
    }


def shard_transfer(src: str, dest: str, chunk_size, memory_target: int, profile=None) -> dict:
    """Copy ``src`` into a new sharded layer ``dest`` (``create_image_shard_transfer_tasks``)."""
    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    src_path, dest_path = "file://" + src, "file://" + dest
    rss_before = max_rss_mb()
    timer = Timer()
    with timer.phase("plan"):
        tasks = tc.create_image_shard_transfer_tasks(
            src_path, dest_path, chunk_size=chunk_size, memory_target=memory_target
        )
        ntasks = len(tasks)
    with timer.phase("execute"), profiled(profile):
        submit_tasks(tasks, queue=None, parallel=1, progress=False)
    with open(os.path.join(dest, "info")) as f:
        info = json.load(f)
    scale = info["scales"][0]
    problems = check_shard_files(dest, 0, ntasks) + check_copy_block(src_path, dest_path, scale["chunk_sizes"][0])
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "task_shape": task_shape(tasks),
        "sharding": scale["sharding"],
        "input_voxels": int(np.prod(scale["size"])),
        "rss_before_work_mb": rss_before,
        "memory_target": memory_target,
        "problems": problems,
        **libdeflate_status(),
    }


def shard_downsample(layer: str, num_mips: int, factor, memory_target: int, method: str, profile=None) -> dict:
    """Build ``num_mips`` sharded levels above mip 0 of ``layer`` in one pass."""
    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    path = "file://" + layer
    rss_before = max_rss_mb()
    timer = Timer()
    with timer.phase("plan"):
        tasks = tc.create_image_shard_downsample_tasks(
            path, num_mips=num_mips, factor=factor, memory_target=memory_target
        )
        ntasks = len(tasks)
    with timer.phase("execute"), profiled(profile):
        submit_tasks(tasks, queue=None, parallel=1, progress=False)
    with open(os.path.join(layer, "info")) as f:
        info = json.load(f)
    problems = check_pyramid_block(path, num_mips, factor, method)
    for k in range(1, num_mips + 1):
        problems += check_shard_files(layer, k, None)
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "task_shape": task_shape(tasks),
        "num_mips": num_mips,
        "out_chunk": info["scales"][1]["chunk_sizes"][0],
        "shardings": [s["sharding"] for s in info["scales"][1:]],
        "input_voxels": int(np.prod(info["scales"][0]["size"])),
        "rss_before_work_mb": rss_before,
        "memory_target": memory_target,
        "problems": problems,
        **libdeflate_status(),
    }


def check_shard_files(layer_dir: str, mip: int, expected) -> list:
    """The scale's shard files exist (as many as ``expected`` when given) and nothing else."""
    from igneous.shards import image_shard_shape_from_spec

    with open(os.path.join(layer_dir, "info")) as f:
        scale = json.load(f)["scales"][mip]
    names = os.listdir(os.path.join(layer_dir, scale["key"]))
    shards = [n for n in names if n.endswith(".shard")]
    shape = image_shard_shape_from_spec(scale["sharding"], scale["size"], scale["chunk_sizes"][0])
    want = int(np.prod([-(-s // sh) for s, sh in zip(scale["size"], shape)]))
    problems = []
    if len(shards) != want or (expected is not None and len(shards) != expected) or len(shards) != len(names):
        problems.append(f"mip {mip}: {len(shards)} shard files of {len(names)} files; plan says {want}")
    return problems


SERIALIZE_SAMPLE = 5000
# Forge planners benchmarked on a virtual segmentation (their task classes are RegisteredTasks).
FORGE_KINDS = {
    "mesh": lambda tc: tc.create_meshing_tasks,
    "skeleton": lambda tc: tc.create_skeletonizing_tasks,
}


def virtual_layer(path: str, size, chunk, segmentation: bool = False) -> None:
    """Commit the info of a huge uint8 image (or uint64 segmentation) layer that has no data
    (planning never reads any)."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="segmentation" if segmentation else "image",
        data_type="uint64" if segmentation else "uint8",
        encoding="raw",
        resolution=[8, 8, 40],
        voxel_offset=[0, 0, 0],
        volume_size=list(size),
        chunk_size=list(chunk),
    )
    CloudVolume(path, info=info, progress=False, cdn_cache=False).commit_info()


def task_creation(work: str, kind: str, mode: str, count: int, size, chunk, num_mips: int, shape) -> dict:
    """Plan over a virtual layer, then take its first ``count`` tasks and

    - ``mode="memory"``: iterate them (and serialize a sample to queue JSON);
    - ``mode="fq"``: ``taskqueue.TaskQueue("fq://…").insert`` them (queue created beforehand);
    - ``mode="submit"``: ``igneous.queues.submit_tasks(…, queue="fq://…")`` into a new queue.
    """
    from taskqueue import TaskQueue

    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    src = "file://" + os.path.join(work, "virtual")
    virtual_layer(src, size, chunk, segmentation=kind in FORGE_KINDS)
    timer = Timer()
    with timer.phase("plan"):
        if kind == "downsample":
            tasks = tc.create_downsampling_tasks(src, num_mips=num_mips)
        elif kind in FORGE_KINDS:  # the forge's prepare step writes infos: part of its planning cost
            tasks = FORGE_KINDS[kind](tc)(src, 0, shape=shape)
        else:
            dest = "file://" + os.path.join(work, "virtual_dest")
            tasks = tc.create_transfer_tasks(src, dest, shape=shape)
    with timer.phase("len"):
        total = len(tasks)
    selection = tasks[0:count]
    rss_before = max_rss_mb()
    problems = []
    extra = {}
    if mode == "memory":
        with timer.phase("run"):
            seen = 0
            for _task in selection:
                seen += 1
        extra = serialize_rate(tasks[0 : min(count, SERIALIZE_SAMPLE)], timer)
    elif mode == "fq":
        queue_dir = os.path.join(work, "queue")
        tq = TaskQueue("fq://" + queue_dir, progress=False)
        # A new fq:// queue has no insertion counter yet; taskqueue retries reading it with random
        # back-off (0.5-3 s of sleep) on the first insert. Create it outside the clock.
        tq.rezero()
        with timer.phase("run"):
            tq.insert(selection)
        seen = count_queued(queue_dir)
    else:  # "submit": the library's own path to a brand-new fq:// queue, everything inside the clock
        queue_dir = os.path.join(work, "queue")
        with timer.phase("run"):
            submit_tasks(selection, queue="fq://" + queue_dir, parallel=1, progress=False)
        seen = count_queued(queue_dir)
    if seen != min(count, total):
        problems.append(
            f"{seen} tasks {'iterated' if mode == 'memory' else 'in the queue'}, expected {min(count, total)}"
        )
    run = timer.phases["run"]
    plan_and_run = run["wall_s"] + timer.phases["plan"]["wall_s"]
    return {
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "tasks_per_s": seen / run["wall_s"] if run["wall_s"] else None,
        "plan_and_run_tasks_per_s": seen / plan_and_run if plan_and_run else None,
        "phases": timer.phases,
        "tasks": seen,
        "tasks_total": total,
        "task_shape": task_shape(tasks),
        "rss_before_work_mb": rss_before,
        "problems": problems,
        **extra,
    }


def count_queued(queue_dir: str) -> int:
    return sum(1 for name in os.listdir(os.path.join(queue_dir, "queue")) if name.endswith(".json"))


def serialize_rate(tasks, timer: Timer) -> dict:
    """Tasks/s of turning tasks into the JSON a queue stores (an insert's work besides writing files).

    Uses the library's serializer (``igneous.queues.payloads``) when it has one, else task-queue's.
    """
    from taskqueue.lib import jsonify

    try:
        from igneous.queues.payloads import payload_of

        serializer = "igneous.queues.payloads.payload_of + json"
    except ImportError:
        from taskqueue.queueables import totask

        def payload_of(task):
            return totask(task).payload()

        serializer = "taskqueue totask().payload() + json"

    with timer.phase("serialize"):
        n = 0
        for task in tasks:
            jsonify(payload_of(task))
            n += 1
    seconds = timer.phases["serialize"]["wall_s"]
    return {"serialized": n, "serialize_tasks_per_s": n / seconds if seconds else None, "serializer": serializer}


def floor(profile=None, **spec) -> dict:
    """The codec floor of a stage (see ``floor.py``)."""
    with profiled(profile):
        return codec_floor(**spec)


STAGES = {
    "downsample": downsample,
    "transfer": transfer,
    "task_creation": task_creation,
    "floor": floor,
    "shard_transfer": shard_transfer,
    "shard_downsample": shard_downsample,
}

from mesh_stages import CHILD_STAGES as _MESH_CHILD_STAGES  # noqa: E402

STAGES.update(_MESH_CHILD_STAGES)
from voxel_stages import CHILD_STAGES as _VOXEL_CHILD_STAGES  # noqa: E402

STAGES.update(_VOXEL_CHILD_STAGES)
from ingest_stages import CHILD_STAGES as _INGEST_CHILD_STAGES  # noqa: E402

STAGES.update(_INGEST_CHILD_STAGES)
from ccl_stages import CHILD_STAGES as _CCL_CHILD_STAGES  # noqa: E402

STAGES.update(_CCL_CHILD_STAGES)
from skeleton_stages import CHILD_STAGES as _SKELETON_CHILD_STAGES  # noqa: E402

STAGES.update(_SKELETON_CHILD_STAGES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    parser.add_argument("--spec", required=True, help="keyword arguments of the stage, as JSON")
    parser.add_argument("--report", required=True, help="where to write the JSON result")
    parser.add_argument("--profile", default=None, help="write a cProfile of the execution here")
    args = parser.parse_args(argv)

    spec = json.loads(args.spec)
    if args.profile:
        spec["profile"] = args.profile
    try:
        result = STAGES[args.stage](**spec)
        result["ok"] = not result.get("problems")
    except Exception as err:
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    result["child_max_rss_mb"] = max_rss_mb()
    with open(args.report, "w") as f:
        json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
