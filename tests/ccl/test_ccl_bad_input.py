"""Bad CCL input is refused before anything is written: one line, InvalidParameterError / exit 2."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.errors import InvalidParameterError
from igneous.tasks.image.ccl import create_relabeling
from igneous_cli import main
from tests.conftest import tree

SHAPE = (8, 8, 8)
S = "8,8,8"


@pytest.fixture
def layers(layer):
    rng = np.random.default_rng(0)
    seg = layer(rng.integers(0, 5, size=(16, 16, 8)).astype(np.uint32), name="seg", chunk_size=(8, 8, 8))
    img = layer(rng.random((16, 16, 8)).astype(np.float32), name="img", chunk_size=(8, 8, 8))
    return seg, img


def run(tasks):
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def cases(seg, img, dest):
    """(api call, cli args, words the message must contain)"""
    return [
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, connectivity=5),
         ["image", "ccl", "faces", seg, "--shape", S, "--connectivity", "5"], "connectivity must be 6, 18 or 26"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, threshold_gte=2.5),
         ["image", "ccl", "faces", seg, "--shape", S, "--threshold-gte", "2.5"], "fractional threshold"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, threshold_gte=3, threshold_lte=2),
         ["image", "ccl", "faces", seg, "--shape", S, "--threshold-gte", "3", "--threshold-lte", "2"],
         "selects no uint32 value"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, threshold_gte=0),
         ["image", "ccl", "faces", seg, "--shape", S, "--threshold-gte", "0"], "selects every uint32 value"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, threshold_lte=-1),
         ["image", "ccl", "faces", seg, "--shape", S, "--threshold-lte", "-1"], "selects no uint32 value"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, threshold_gte="high"),
         ["image", "ccl", "faces", seg, "--shape", S, "--threshold-gte", "high"], "threshold_gte must be a number"),
        (lambda: tc.create_ccl_face_tasks(img, 0, SHAPE),
         ["image", "ccl", "faces", img, "--shape", S], "give threshold_gte and/or threshold_lte"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, (8, 0, 8)), ["image", "ccl", "faces", seg, "--shape", "8,0,8"],
         "shape must be 3 integers >= 1"),
        (lambda: tc.create_ccl_face_tasks(seg, 0, SHAPE, dust_threshold=-3),
         ["image", "ccl", "faces", seg, "--shape", S, "--dust", "-3"], "dust_threshold"),
        (lambda: tc.create_ccl_face_tasks(seg, 2, SHAPE), ["image", "ccl", "faces", seg, "--mip", "2"], "mip"),
        (lambda: tc.create_ccl_equivalence_tasks(seg, 0, SHAPE), ["image", "ccl", "links", seg, "--shape", S],
         "run `igneous image ccl faces` before links"),
        (lambda: create_relabeling(seg, 0, SHAPE), ["image", "ccl", "calc-labels", seg, "--shape", S],
         "run `igneous image ccl faces` before calc-labels"),
        (lambda: tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE), ["image", "ccl", "relabel", seg, dest, "--shape", S],
         "before relabel"),
        (lambda: tc.create_ccl_relabel_tasks(seg, seg, 0, SHAPE), ["image", "ccl", "auto", seg, seg, "--shape", S],
         "is the source layer"),
        (lambda: tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, encoding="jpeg"),
         ["image", "ccl", "auto", seg, dest, "--shape", S, "--encoding", "jpeg"], "cannot store labels"),
        (lambda: tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, chunk_size=(16, 16, 8)),
         ["image", "ccl", "auto", seg, dest, "--shape", S, "--chunk-size", "16,16,8"],
         "not a multiple of the destination chunk size"),
        (None, ["image", "ccl", "auto", seg, dest, "--shape", "8,8"], "--shape"),
    ]  # fmt: skip


def check_refusals(cases_, root):
    for api, cli, words in cases_:
        if api is not None:
            before = tree(root)
            with pytest.raises(InvalidParameterError) as err:
                api()
            assert words in str(err.value) and "\n" not in str(err.value), (words, str(err.value))
            assert tree(root) == before, words
        if cli is not None:
            before = tree(root)
            result = CliRunner().invoke(main, cli)
            assert result.exit_code == 2, (cli, result.output)
            assert words.lower() in result.output.lower(), (words, result.output)
            assert "Traceback" not in result.output
            assert tree(root) == before, cli


def test_refused_before_anything_is_written(layers, tmp_path):
    seg, img = layers
    check_refusals(cases(seg, img, f"file://{tmp_path / 'dest'}"), tmp_path)


def test_steps_out_of_order_or_with_other_options_are_refused(layers, tmp_path):
    seg, _ = layers
    dest = f"file://{tmp_path / 'dest'}"
    faces = list(tc.create_ccl_face_tasks(seg, 0, SHAPE, connectivity=18))
    run(faces[:1])  # pass 1 stops after one task
    check_refusals(
        [
            (lambda: tc.create_ccl_equivalence_tasks(seg, 0, SHAPE, connectivity=18),
             ["image", "ccl", "links", seg, "--shape", S, "--connectivity", "18"], "3 of 4 faces tasks have not finished"),
            (lambda: tc.create_ccl_face_tasks(seg, 0, (16, 8, 8), connectivity=18),
             ["image", "ccl", "faces", seg, "--shape", "16,8,8", "--connectivity", "18"], "holds a CCL run with other options"),
        ],
        tmp_path,
    )  # fmt: skip
    run(faces[1:])
    check_refusals(
        [
            (lambda: tc.create_ccl_equivalence_tasks(seg, 0, SHAPE, connectivity=26),
             ["image", "ccl", "links", seg, "--shape", S, "--connectivity", "26"], "connectivity 18 there, 26 here"),
            (lambda: create_relabeling(seg, 0, SHAPE), ["image", "ccl", "calc-labels", seg, "--shape", S],
             "4 of 4 equivalence files are missing"),
        ],
        tmp_path,
    )  # fmt: skip
    run(tc.create_ccl_equivalence_tasks(seg, 0, SHAPE, connectivity=18))
    check_refusals(
        [
            (lambda: create_relabeling(seg, 0, (16, 16, 8)),
             ["image", "ccl", "calc-labels", seg, "--shape", "16,16,8"], "differs from the faces step's 8,8,8"),
            (lambda: tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, connectivity=18),
             ["image", "ccl", "relabel", seg, dest, "--shape", S, "--connectivity", "18"],
             "run `igneous image ccl calc-labels` before relabel"),
        ],
        tmp_path,
    )  # fmt: skip
    create_relabeling(seg, 0, SHAPE)
    run(tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, connectivity=18))
    check_refusals(  # another layer already at DEST (here: the same run's output with another chunk size)
        [(lambda: tc.create_ccl_relabel_tasks(seg, dest, 0, SHAPE, chunk_size=(4, 4, 4), connectivity=18),
          None, "already exists as another layer")],
        tmp_path,
    )  # fmt: skip
