"""Drop-in parity: for every case recorded from the reference Igneous (4.37) in
``../shared/compat``, our planners make the same plan — the same scale arithmetic, shard
parameters, pyramid levels (key, size, offset, chunk size, encoding, sharding) and task
counts. The recording script runs against our package, and the project's comparison script
judges the result, so neither the cases nor the verdict is written by this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

COMPAT = os.path.join(REPO, "..", "shared", "compat")
REFERENCE = os.path.join(COMPAT, "reference_igneous_4.37.json")


@pytest.fixture(scope="module")
def our_plans(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("plans") / "plans.json"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, os.path.join(COMPAT, "reference_plans.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(out.parent),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out.write_text(proc.stdout)
    return str(out)


def test_every_recorded_case_plans_the_same(our_plans):
    proc = subprocess.run(
        [sys.executable, os.path.join(COMPAT, "compare_plans.py"), REFERENCE, our_plans],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "0 differ" in proc.stdout


def test_the_recording_covers_every_reference_case(our_plans):
    with open(REFERENCE) as f:
        reference = json.load(f)
    with open(our_plans) as f:
        ours = json.load(f)
    assert set(reference) <= set(ours)
