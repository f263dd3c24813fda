"""Every CCL step through LocalTaskQueue, an fq:// queue drained by `igneous execute`, and the CLI;
`ccl auto` in-process and draining its own queue; a step that does not finish is named."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous.tasks.image.ccl import clean_intermediate_files, create_relabeling
from igneous_cli import main
from tests.ccl.conftest import assert_consecutive, assert_same_partition, oracle
from tests.conftest import read_layer, tree

SHAPE = (8, 7, 5)
CHUNK = (4, 7, 5)


@pytest.fixture
def volume(layer):
    img = (np.random.default_rng(4).random((20, 14, 10)) < 0.15).astype(np.uint8)
    return img, layer(img, voxel_offset=(2, 3, 4), chunk_size=CHUNK)


def ccl_files(tmp_path, name="src"):
    return {k: v for k, v in tree(tmp_path / name).items() if "/ccl/" in k}


def test_every_step_through_each_backend(backend, volume, tmp_path):
    img, src = volume
    dest = f"file://{tmp_path / 'dest'}"
    api = dict(threshold_gte=1, connectivity=26)
    cli = ["--shape", ",".join(map(str, SHAPE)), "--threshold-gte", "1", "--connectivity", "26"]
    backend.run(tc.create_ccl_face_tasks, ["image", "ccl", "faces", src, *cli], src, 0, SHAPE, **api)
    backend.run(tc.create_ccl_equivalence_tasks, ["image", "ccl", "links", src, *cli], src, 0, SHAPE, **api)
    if backend.name == "cli":
        result = CliRunner().invoke(main, ["image", "ccl", "calc-labels", src, "--mip", "0", "--shape", "8,7,5"])
        assert result.exit_code == 0, result.output
    else:
        create_relabeling(src, 0, SHAPE)
    backend.run(tc.create_ccl_relabel_tasks, ["image", "ccl", "relabel", src, dest, *cli], src, dest, 0, SHAPE, **api)

    out = read_layer(dest)[..., 0]
    want = oracle(img, 26)
    assert_same_partition(out, want)
    assert_consecutive(out, int(want.max()))
    info = CloudVolume(dest).info
    assert info["data_type"] == "uint8" and info["scales"][0]["encoding"] == "compresso"
    assert ccl_files(tmp_path)
    if backend.name == "cli":
        result = CliRunner().invoke(main, ["image", "ccl", "clean", src, "--mip", "0"])
        assert result.exit_code == 0, result.output
    else:
        clean_intermediate_files(src, 0)
    assert ccl_files(tmp_path) == {}


def test_auto_in_process_and_through_a_queue_write_the_same_layer(volume, tmp_path):
    img, src = volume
    args = ["--shape", "8,7,5", "--threshold-gte", "1", "--dust", "3", "--chunk-size", "8,7,5"]
    result = CliRunner().invoke(main, ["image", "ccl", "auto", src, f"file://{tmp_path / 'a'}", *args])
    assert result.exit_code == 0, result.output
    assert ccl_files(tmp_path) == {}  # --clean by default
    queue = str(tmp_path / "queue")
    result = CliRunner().invoke(
        main, ["image", "ccl", "auto", src, f"file://{tmp_path / 'b'}", *args, "--queue", queue, "--no-clean"]
    )
    assert result.exit_code == 0, result.output
    assert ccl_files(tmp_path)  # --no-clean keeps them
    assert not os.listdir(tmp_path / "queue" / "queue")  # drained by the command itself
    a = {k: v for k, v in tree(tmp_path / "a").items() if k != "provenance"}
    b = {k: v for k, v in tree(tmp_path / "b").items() if k != "provenance"}
    assert a == b and any(k.endswith(".gz") for k in a)
    assert CloudVolume(f"file://{tmp_path / 'a'}").chunk_size.tolist() == [8, 7, 5]
    assert_same_partition(read_layer(f"file://{tmp_path / 'a'}")[..., 0], oracle(img, 6, dust=3))


@pytest.mark.parametrize("queued", [False, True])
def test_auto_names_the_step_that_did_not_finish(volume, tmp_path, queued):
    _, src = volume
    scale = CloudVolume(src).meta.key(0)
    CloudFiles(src).delete(f"{scale}/10-14_3-10_4-9")  # read by the tasks at x 10-18 and x 2-10 (+1 voxel)
    args = ["image", "ccl", "auto", src, f"file://{tmp_path / 'dest'}", "--shape", "8,7,5", "--threshold-gte", "1"]
    if queued:
        args += ["--queue", str(tmp_path / "queue"), "--max-attempts", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    if queued:  # the two tasks that read the missing chunk were dead-lettered, the others ran
        assert "step 'faces' did not complete: 2 of 12 tasks unfinished" in result.output
    else:  # in-process the first failure stops the step
        assert "step 'faces' did not complete:" in result.output and "8-14_3-10_4-9" not in result.output
        assert "10-14_3-10_4-9" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "dest").exists()
