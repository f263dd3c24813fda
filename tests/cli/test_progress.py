"""Synchronous steps show a progress bar with an ETA on a terminal, and nothing in a pipe (issue 14).

The commands run in a subprocess whose stderr is a real pseudo-terminal (or a pipe).
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import numpy as np
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.progress import progress_bar
from tests.conftest import REPO

ETA = re.compile(r"100%\|.*\| (\d+)/\1 \[\d\d:\d\d<\d\d:\d\d")  # "100%|███| 8/8 [00:01<00:00, …]"


def igneous(*args: str, tty: bool) -> tuple[int, str]:
    """Run ``igneous ARGS``; returns (exit code, what it wrote to stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "igneous_cli", *args]
    if not tty:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        return proc.returncode, proc.stderr
    master, slave = pty.openpty()
    # a new pseudo-terminal is 0 columns wide: tqdm would draw nothing in it
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_progress_bar_has_an_eta_when_enabled_and_is_silent_otherwise():
    out = io.StringIO()
    for _ in progress_bar(range(5), total=5, desc="step", enabled=True, file=out):
        pass
    assert "step" in out.getvalue() and ETA.search(out.getvalue())
    quiet = io.StringIO()
    for _ in progress_bar(range(5), total=5, desc="step", enabled=False, file=quiet):
        pass
    assert quiet.getvalue() == ""


def test_voxel_sum_shows_progress_on_a_terminal_only(layer):
    seg = layer(np.arange(64 * 64 * 16, dtype=np.uint32).reshape((64, 64, 16)) % 7, layer_type="segmentation")
    LocalTaskQueue(parallel=1, progress=False).insert_all(tc.create_voxel_counting_tasks(seg, 0))
    code, err = igneous("image", "voxels", "sum", seg, tty=True)
    assert code == 0, err
    assert "Summing voxel counts" in err and ETA.search(err), err
    code, err = igneous("image", "voxels", "sum", seg, tty=False)
    assert code == 0 and "Summing voxel counts" not in err, err


def test_spatial_index_export_shows_progress_on_a_terminal(layer, tmp_path):
    seg = np.zeros((64, 64, 32), dtype=np.uint32)
    seg[5:30, 5:30, 3:20] = 3
    seg[35:60, 20:50, 10:30] = 9
    path = layer(seg, layer_type="segmentation", resolution=(8, 8, 8))
    LocalTaskQueue(parallel=1, progress=False).insert_all(tc.create_meshing_tasks(path, 0, shape=(32, 32, 32)))
    code, err = igneous("mesh", "spatial-index", "db", path, f"sqlite://{tmp_path}/index.db", tty=True)
    assert code == 0, err
    assert ETA.search(err), err
