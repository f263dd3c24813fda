"""The helpers scripts import from igneous_cli (SPEC §2.5)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import socket

import numpy as np
import pytest
from taskqueue import TaskQueue

import igneous.task_creation as tc
import igneous_cli
from tests.conftest import read_layer
from tests.integration.test_downsample import random_volume
from tests.oracles import tinybrain_pyramid


def test_is_empty(tmp_path):
    assert igneous_cli.is_empty(str(tmp_path / "missing"))
    (tmp_path / "dir").mkdir()
    assert igneous_cli.is_empty(f"file://{tmp_path / 'dir'}")
    (tmp_path / "dir" / "sub").mkdir()
    (tmp_path / "dir" / "sub" / "x").write_text("1")
    assert not igneous_cli.is_empty(f"file://{tmp_path / 'dir'}")
    assert not igneous_cli.is_empty(str(tmp_path / "dir"))


@pytest.mark.parametrize(
    "name, ext",
    [
        ("a.npy", ".npy"),
        ("A.NPY.GZ", ".npy"),
        ("dir.v1/b.hdf5", ".h5"),
        ("c.h5", ".h5"),
        ("brain.nii.gz", ".nii"),
        ("stack.tif", ".tiff"),
        ("labels.ckl.zst", ".ckl"),
        ("vol.nrrd", ".nrrd"),
        ("noext", ""),
    ],
)
def test_normalize_file_ext(name, ext):
    assert igneous_cli.normalize_file_ext(name) == ext


@pytest.mark.parametrize("suffix, opener", [("", None), (".gz", gzip), (".bz2", bz2), (".xz", lzma)])
def test_read_array_header(tmp_path, suffix, opener):
    arr = np.zeros((5, 6, 7), dtype=np.uint64, order="F")
    np.save(tmp_path / "a.npy", arr)
    path = tmp_path / f"a.npy{suffix}"
    if opener is not None:
        path.write_bytes(opener.compress((tmp_path / "a.npy").read_bytes()))
    assert igneous_cli.read_array_header(str(path)) == ((5, 6, 7), True, np.dtype(np.uint64))


def test_read_array_header_refuses_pickles_and_non_npy(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects"):
        igneous_cli.read_array_header(str(tmp_path / "o.npy"))
    (tmp_path / "t.npy").write_text("hello")
    with pytest.raises(ValueError, match="not an .npy"):
        igneous_cli.read_array_header(str(tmp_path / "t.npy"))


def test_is_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert igneous_cli.is_port_in_use(port)
    assert not igneous_cli.is_port_in_use(port)


def test_execute_helpers_run_our_worker(layer, tmp_path):
    whole = random_volume((64, 64, 8), np.uint8, seed=5)
    src = layer(whole, chunk_size=(16, 16, 8))
    queue = tmp_path / "q"
    TaskQueue(f"fq://{queue}", progress=False).insert(tc.create_downsampling_tasks(src, num_mips=1, memory_target=2e5))
    assert igneous_cli.execute_helper(str(queue), exit_on_empty=True, quiet=True) == 0
    assert TaskQueue(f"fq://{queue}", progress=False).is_empty()
    want = tinybrain_pyramid(whole, (2, 2, 1), 1, "avg")[0][..., 0]
    np.testing.assert_array_equal(read_layer(src, mip=1)[..., 0], want)

    other = layer(whole, name="other", chunk_size=(16, 16, 8))
    q2 = tmp_path / "q2"
    TaskQueue(f"fq://{q2}", progress=False).insert(tc.create_downsampling_tasks(other, num_mips=1, memory_target=2e5))
    assert igneous_cli.parallel_execute_helper(2, (f"fq://{q2}",), exit_on_empty=True, quiet=True) == 0
    np.testing.assert_array_equal(read_layer(other, mip=1)[..., 0], want)
