"""Benchmark stages of issue 14: how fast a dry run and ``igneous view`` answer.

- ``dry_run``: the priced plan (``--dry-run``) of the virtual 100k×100k×20k uint8 layer's
  pyramid (``num_mips=4``, 751,513 tasks) and of its 2048×2048×64 transfer, in a fresh process:
  the library call (``plans.plan_*`` + ``report``) and the whole command
  (``python -m igneous_cli … --dry-run --json``, interpreter start and imports included).
  Target: the downsample dry run ≤ 2 s.
- ``view_startup``: ``igneous view LAYER --no-browser`` on a layer with 10 scales: seconds from
  starting the process to the URL on stdout, and to the layer's ``info`` served by its local
  server. Target ≤ 2 s.

Each runs ``--repeat`` times; the fastest is reported (the machine is shared).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VIRTUAL = {"size": [100000, 100000, 20000], "chunk": [128, 128, 64], "num_mips": 4, "shape": [2048, 2048, 64]}
PLAN_VIEW_TARGETS = {"dry_run": {"seconds_max": 2.0}, "view_startup": {"seconds_max": 2.0}}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def _library_dry_run(src: str, dest: str) -> dict:
    """In a child: time plan_* + report for the downsample and the transfer of the virtual layer."""
    code = f"""
import json, time
t0 = time.perf_counter()
from igneous.plan import report
from igneous.task_creation import plans
t1 = time.perf_counter()
ds = report(plans.plan_downsampling({src!r}, num_mips={VIRTUAL["num_mips"]}), 100)
t2 = time.perf_counter()
xf = report(plans.plan_transfer({src!r}, {dest!r}, shape={VIRTUAL["shape"]!r}), 100)
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "downsample_s": t2 - t1, "transfer_s": t3 - t2,
                   "downsample_tasks": ds["tasks"], "transfer_tasks": xf["tasks"],
                   "downsample_cpu_hours": ds["cpu_hours"], "downsample_wall_hours_100_workers": ds["wall_hours"]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command_dry_run(src: str) -> float:
    cmd = [sys.executable, "-m", "igneous_cli", "image", "downsample", src, "--num-mips", str(VIRTUAL["num_mips"]),
           "--dry-run", "--json"]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    json.loads(out.stdout)
    return elapsed


def dry_run(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """The dry run of the virtual layer's pyramid: ≤ 2 s."""
    sys.path.insert(0, HERE)
    from stages import virtual_layer

    work = tempfile.mkdtemp(prefix="igneous-bench-dry-run-")
    src = "file://" + os.path.join(work, "virtual")
    virtual_layer(src, VIRTUAL["size"], VIRTUAL["chunk"])
    print(
        f"dry_run: virtual {'x'.join(map(str, VIRTUAL['size']))} uint8, downsample num_mips 4 and transfer", flush=True
    )
    runs = []
    for _ in range(repeat):
        lib = _library_dry_run(src, "file://" + os.path.join(work, "virtual-dest"))
        lib["command_s"] = _command_dry_run(src)
        lib["wall_s"] = lib["downsample_s"]
        lib["tasks"] = lib["downsample_tasks"]
        runs.append(lib)
    shutil.rmtree(work, ignore_errors=True)
    best = min(runs, key=lambda r: r["downsample_s"])
    best_cmd = min(r["command_s"] for r in runs)
    target = PLAN_VIEW_TARGETS["dry_run"]["seconds_max"]
    print(
        f"  dry_run: downsample plan {best['downsample_s']:.3f} s ({best['downsample_tasks']:,} tasks), transfer plan "
        f"{best['transfer_s']:.3f} s; whole command {best_cmd:.2f} s (imports {best['import_s']:.2f} s); "
        f"target <= {target} s {'ok' if best['downsample_s'] <= target else 'MISSED'}",
        flush=True,
    )
    return {
        "params": VIRTUAL,
        "runs": runs,
        "best": best,
        "command_s": best_cmd,
        "targets": PLAN_VIEW_TARGETS["dry_run"],
        "checks": {"seconds": best["downsample_s"] <= target},
    }


def _ten_scale_layer(path: str) -> None:
    import numpy as np
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="image", data_type="uint8", encoding="raw", resolution=[8, 8, 40],
        voxel_offset=[0, 0, 0], volume_size=[4096, 4096, 64], chunk_size=[128, 128, 64],
    )  # fmt: skip
    vol = CloudVolume(path, info=info, progress=False)
    for k in range(1, 10):
        vol.add_scale((2**k, 2**k, 1), chunk_size=(128, 128, 64))
    vol.commit_info()
    vol[0:128, 0:128, 0:64] = np.zeros((128, 128, 64), dtype=np.uint8)


def _view_once(path: str) -> dict:
    cmd = [sys.executable, "-m", "igneous_cli", "view", path, "--no-browser", "--port", "0"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(60):
                raise RuntimeError("igneous view printed no URL within 60 s")
        url = proc.stdout.readline().strip()
        printed = time.perf_counter() - t0
        cpu = _cpu_seconds(proc.pid)
        state = json.loads(urllib.parse.unquote(url.partition("#!")[2]))
        source = state["layers"][0]["source"][len("precomputed://") :]
        with urllib.request.urlopen(source + "/info", timeout=10) as resp:
            resp.read()
        served = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    return {"url_s": printed, "info_served_s": served, "wall_s": served, "cpu_s_at_url": cpu}


def _cpu_seconds(pid: int):
    """User + system CPU seconds of a running process (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def view_startup(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """``igneous view`` on a 10-scale layer: URL printed and server up ≤ 2 s after start."""
    work = tempfile.mkdtemp(prefix="igneous-bench-view-")
    path = "file://" + os.path.join(work, "ten-scales")
    _ten_scale_layer(path)
    print("view_startup: igneous view --no-browser on a 10-scale layer (process start to info served)", flush=True)
    runs = [_view_once(path) for _ in range(repeat)]
    shutil.rmtree(work, ignore_errors=True)
    best = min(runs, key=lambda r: r["info_served_s"])
    target = PLAN_VIEW_TARGETS["view_startup"]["seconds_max"]
    print(
        f"  view_startup: URL after {best['url_s']:.2f} s ({best['cpu_s_at_url']} CPU s), info served after "
        f"{best['info_served_s']:.2f} s; load {os.getloadavg()[0]:.1f}; "
        f"target <= {target} s {'ok' if best['info_served_s'] <= target else 'MISSED'}",
        flush=True,
    )
    return {
        "runs": runs,
        "best": best,
        "targets": PLAN_VIEW_TARGETS["view_startup"],
        "checks": {"seconds": best["info_served_s"] <= target},
    }


PARENT_STAGES = {"dry_run": dry_run, "view_startup": view_startup}
