"""Importing ``igneous.tasks`` alone registers every SPEC §3.7 wire name, whatever else was imported.

A worker imports ``igneous.tasks`` and nothing else before it leases; a task module that is
only imported by a planner would leave its messages unrunnable. The check runs in a fresh
interpreter, so nothing this test session imported can help.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# SPEC §3.7, by wire module
QUEUEABLE = {
    "igneous.tasks.image.image": ["BlackoutTask", "CLAHETask", "CountVoxelsTask", "DeleteTask", "DownsampleTask",
                                  "ImageShardDownsampleTask", "ImageShardTransferTask", "QuantizeTask",
                                  "ReorderTask", "TouchTask", "TransferTask"],
    "igneous.tasks.image.ccl": ["CCLFacesTask", "CCLEquivalancesTask", "RelabelCCLTask"],
    "igneous.tasks.mesh.mesh": ["MeshManifestPrefixTask", "MeshManifestFilesystemTask", "TransferMeshFilesTask",
                                "DeleteMeshFilesTask"],
    "igneous.tasks.mesh.multires": ["MultiResUnshardedMeshMergeTask", "MultiResShardedMeshMergeTask",
                                    "MultiResShardedFromUnshardedMeshMergeTask"],
    "igneous.tasks.skeleton": ["ShardedFromUnshardedSkeletonMergeTask", "DeleteSkeletonFilesTask",
                               "TransferSkeletonFilesTask"],
    "igneous.tasks.spatial_index": ["SpatialIndexTask"],
}  # fmt: skip
CLASSES = {
    "MeshTask": None,
    "GrapheneMeshTask": None,
    "HyperSquareConsensusTask": None,
    "WatershedRemapTask": None,
    "MaskAffinitymapTask": None,
    "InferenceTask": None,
    "SkeletonTask": "igneous.tasks.skeleton",
    "UnshardedSkeletonMergeTask": "igneous.tasks.skeleton",
    "ShardedSkeletonMergeTask": "igneous.tasks.skeleton",
    "ContrastNormalizationTask": None,
    "LuminanceLevelsTask": None,
}
# Names other branches are building (skeletons, CCL, contrast, CLAHE): checked once their code exists.
PENDING = {"CLAHETask", "ContrastNormalizationTask", "LuminanceLevelsTask"}

PROBE = """
import json
import igneous.tasks  # the only import a worker makes
from taskqueue.queueablefns import REGISTRY as FUNCTIONS
from taskqueue.registered_task import REGISTRY as CLASSES
print(json.dumps({"functions": [list(k) for k in FUNCTIONS if isinstance(k, tuple)], "classes": list(CLASSES)}))
"""


@pytest.fixture(scope="module")
def registered() -> tuple[set, set]:
    """``(queueable keys, RegisteredTask class names)`` after ``import igneous.tasks`` alone."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return {tuple(k) for k in found["functions"]}, set(found["classes"])


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _implemented(name: str) -> bool:
    import igneous

    return name not in PENDING or hasattr(igneous, name)


def test_importing_igneous_tasks_registers_every_wire_name(registered):
    functions, classes = registered
    missing = [
        (module, name)
        for module, names in QUEUEABLE.items()
        if module in ("igneous.tasks.image.image",) or _exists(module)
        for name in names
        if _implemented(name) and (module, name) not in functions
    ]
    assert not missing, f"not registered by `import igneous.tasks`: {missing}"
    missing = [
        name
        for name, module in CLASSES.items()
        if (module is None or _exists(module)) and _implemented(name) and name not in classes
    ]
    assert not missing, f"RegisteredTask classes not registered by `import igneous.tasks`: {missing}"


def test_the_names_built_here_are_registered(registered):
    """The tasks of this round are registered under their wire names (no skipping)."""
    functions, classes = registered
    for name in QUEUEABLE["igneous.tasks.mesh.multires"]:
        assert ("igneous.tasks.mesh.multires", name) in functions
    assert {"GrapheneMeshTask", "HyperSquareConsensusTask", "WatershedRemapTask", "MaskAffinitymapTask",
            "InferenceTask", "MeshTask"} <= classes  # fmt: skip


def test_each_task_package_imports_all_its_task_modules():
    """``igneous/__init__`` imports the planners, which import most tasks, so the probe above
    would pass even if a ``tasks/*/__init__.py`` forgot a module; check the imports directly:
    every module of ``igneous.tasks`` that defines a task is imported by its package."""
    import ast
    import pathlib

    root = pathlib.Path(REPO) / "igneous" / "tasks"
    for package in [root, *[p for p in root.iterdir() if (p / "__init__.py").exists()]]:
        tree = ast.parse((package / "__init__.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        dotted = "igneous." + ".".join(package.relative_to(root.parent).parts)
        for module in package.glob("*.py"):
            source = module.read_text()
            defines_task = "@queueable(" in source or "(RegisteredTask)" in source
            if module.name == "__init__.py" or not defines_task:
                continue
            name = f"{dotted}.{module.stem}"
            assert name in imported, f"{package / '__init__.py'} does not import {name}"
