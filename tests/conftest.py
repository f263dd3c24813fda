"""Shared fixtures: small layers under tmp_path and the ways to run tasks.

Every integration test that plans tasks takes the ``backend`` fixture, so the same test
runs in-process (LocalTaskQueue), through a real fq:// queue drained by an
``igneous execute`` subprocess, and through the command line (CliRunner).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Optional, Sequence

import numpy as np
import pytest
from cloudvolume import CloudVolume

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_SEGMENTATION = os.path.join(REPO, "..", "shared", "data", "connectomics.npy.ckl.gz")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_DIR", str(tmp_path / ".cloudfiles"))
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(tmp_path / ".cloudvolume"))


def make_layer(
    path: str,
    data: np.ndarray,
    *,
    resolution: Sequence[float] = (4, 4, 40),
    voxel_offset: Sequence[int] = (0, 0, 0),
    chunk_size: Sequence[int] = (32, 32, 8),
    layer_type: Optional[str] = None,
    encoding: str = "raw",
    compress="gzip",
) -> str:
    """Write ``data`` (x, y, z[, c]) as a Precomputed layer at ``path`` (file://...)."""
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if layer_type is None:
        layer_type = "segmentation" if data.dtype in (np.uint32, np.uint64) else "image"
    info = CloudVolume.create_new_info(
        num_channels=data.shape[3],
        layer_type=layer_type,
        data_type=str(data.dtype),
        encoding=encoding,
        resolution=list(resolution),
        voxel_offset=list(voxel_offset),
        volume_size=list(data.shape[:3]),
        chunk_size=list(chunk_size),
    )
    vol = CloudVolume(path, info=info, compress=compress, progress=False)
    vol.commit_info()
    vol[:, :, :] = np.asfortranarray(data)
    return path


def read_layer(path: str, mip: int = 0, **kwargs) -> np.ndarray:
    vol = CloudVolume(path, mip=mip, progress=False, **kwargs)
    return np.asarray(vol[vol.meta.bounds(mip)])


def tree(root) -> dict:
    """Every file under ``root`` with a digest of its bytes: to prove a refused command wrote
    nothing, or a re-run wrote the same bytes."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                found[os.path.relpath(full, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture
def layer(tmp_path):
    """Factory: ``layer(data, name='src', **make_layer_kwargs) -> file:// path``."""

    def factory(data, name="src", **kwargs):
        return make_layer(f"file://{tmp_path / name}", data, **kwargs)

    return factory


def igneous_subprocess(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "igneous_cli", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


class Backend:
    """How planned tasks get executed. ``run(create, cli_args, **kwargs)``."""

    name = "abstract"

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def run(self, creator, cli_args: Sequence[str], *args, **kwargs):
        raise NotImplementedError


class LocalBackend(Backend):
    name = "local"

    def run(self, creator, cli_args, *args, **kwargs):
        from taskqueue import LocalTaskQueue

        tasks = creator(*args, **kwargs)
        LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


class FileQueueBackend(Backend):
    """Insert into a real fq:// queue, drain it with an ``igneous execute`` subprocess."""

    name = "fq"

    def run(self, creator, cli_args, *args, **kwargs):
        from taskqueue import TaskQueue

        qpath = f"fq://{self.tmp_path / 'queue'}"
        tasks = creator(*args, **kwargs)
        TaskQueue(qpath, progress=False).insert(tasks)
        proc = igneous_subprocess("execute", "-x", "-q", "--lease-sec", "60", qpath)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert TaskQueue(qpath, progress=False).is_empty()


class CliBackend(Backend):
    """The same job through the command line (in-process CliRunner)."""

    name = "cli"

    def run(self, creator, cli_args, *args, **kwargs):
        from click.testing import CliRunner

        from igneous_cli import main

        result = CliRunner().invoke(main, list(cli_args), catch_exceptions=False)
        assert result.exit_code == 0, result.output


BACKENDS = {cls.name: cls for cls in (LocalBackend, FileQueueBackend, CliBackend)}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def local(tmp_path):
    return LocalBackend(tmp_path)
