"""The README's first command runs this demo: keep it true."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_demo_builds_pyramid_and_identical_copy(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "demo.py"), "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rechunked copy identical to the source: True" in proc.stdout
    assert "64_64_40" in proc.stdout  # three pyramid levels above 8_8_40
    assert "chunks [128, 128, 32]" in proc.stdout
    # it points at `igneous view` with both layers it wrote (not a CloudVolume one-liner)
    view = next(line.split() for line in proc.stdout.splitlines() if line.strip().startswith("igneous view"))
    assert len(view) == 4 and all(p.startswith("file://") for p in view[2:])
    assert all(os.path.exists(os.path.join(p[len("file://") :], "info")) for p in view[2:])
