"""Hand-built queue messages for the new task names run on our worker (fq:// + `igneous execute`)."""

from __future__ import annotations

import json

import numpy as np
import tifffile

import igneous.task_creation as tc
from igneous.task_creation.ingest import plan_image_stack, stack_tasks
from tests.conftest import igneous_subprocess, read_layer
from tests.ingest.test_contrast import uneven_volume, whole_slice_clahe
from tests.integration.test_wire_format import put_message


def test_new_task_messages_execute(layer, tmp_path):
    vol = uneven_volume(shape=(64, 64, 4))
    src = layer(vol, chunk_size=(32, 32, 2))
    qdir = tmp_path / "queue"

    # RegisteredTask: {kwargs..., "class": name}
    put_message(qdir, {"src_path": src, "levels_path": None, "shape": [64, 64, 1], "offset": [0, 0, 1],
                       "coverage_factor": 1.0, "mip": 0, "class": "LuminanceLevelsTask"})  # fmt: skip
    # queueable function under the SPEC wire module
    clahe_dest = f"file://{tmp_path / 'clahe'}"
    list(tc.create_clahe_tasks(src, clahe_dest, shape=(64, 64, 2), tile_grid_size=(4, 4)))  # writes the dest info
    put_message(qdir, [["igneous.tasks.image.image", "CLAHETask"], [],
                       {"src": src, "dest": clahe_dest, "mip": 0, "fill_missing": False, "shape": [64, 64, 2],
                        "offset": [0, 0, 2], "clip_limit": 40.0, "tile_grid_size": [4, 4]}, -1])  # fmt: skip
    # the stack ingest task (our own wire module)
    slices = np.random.default_rng(1).integers(0, 255, (3, 20, 30), dtype=np.uint8)
    (tmp_path / "s").mkdir()
    for z in range(3):
        tifffile.imwrite(tmp_path / "s" / f"z{z}.tif", slices[z])
    ingest_dest = f"file://{tmp_path / 'ingested'}"
    stack_tasks(plan_image_stack(str(tmp_path / "s"), ingest_dest, chunk_size=(16, 16, 4)))  # writes the info
    put_message(qdir, [["igneous.tasks.image.ingest", "ImageStackIngestTask"], [],
                       {"src": f"file://{tmp_path / 's'}", "sources": [["z0.tif", None], ["z1.tif", None],
                        ["z2.tif", None]], "dest_path": ingest_dest, "shape": [32, 32, 4], "offset": [0, 0, 0],
                        "mip": 0, "compress": "gzip", "rows_per_read": None}, -1])  # fmt: skip
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr

    with open(tmp_path / "src" / "levels" / "0" / "1") as f:
        np.testing.assert_array_equal(json.load(f)["levels"], np.bincount(vol[:, :, 1].ravel(), minlength=256))
    out = read_layer(clahe_dest, fill_missing=True)[..., 0]
    for z in (2, 3):
        np.testing.assert_array_equal(out[:, :, z], whole_slice_clahe(vol[:, :, z], (16, 16), 40.0))
    np.testing.assert_array_equal(read_layer(ingest_dest)[..., 0], slices.transpose(2, 1, 0))

    # ContrastNormalizationTask needs every slice's histogram
    from taskqueue import LocalTaskQueue

    LocalTaskQueue(parallel=1, progress=False).insert_all(tc.create_luminance_levels_tasks(src, coverage_factor=1.0))
    eq_dest = f"file://{tmp_path / 'eq'}"
    list(tc.create_contrast_normalization_tasks(src, eq_dest, shape=(64, 64, 2)))
    put_message(qdir, {"src_path": src, "dest_path": eq_dest, "levels_path": None, "shape": [64, 64, 2],
                       "offset": [0, 0, 0], "mip": 0, "clip_fraction": 0.01, "fill_missing": False,
                       "translate": [0, 0, 0], "minval": None, "maxval": None,
                       "class": "ContrastNormalizationTask"})  # fmt: skip
    proc = igneous_subprocess("execute", "-x", f"fq://{qdir}")
    assert proc.returncode == 0, proc.stderr
    out = read_layer(eq_dest, fill_missing=True)[..., 0]
    assert out[:, :, :2].max() == 255 and out[:, :, 2:].max() == 0  # only the queued box was written


def test_our_messages_name_wire_keys(layer, tmp_path):
    from taskqueue import TaskQueue

    src = layer(uneven_volume(shape=(32, 32, 2)), chunk_size=(16, 16, 2))
    qpath = f"fq://{tmp_path / 'queue'}"
    TaskQueue(qpath, progress=False).insert(tc.create_clahe_tasks(src, f"file://{tmp_path / 'c'}", shape=(32, 32, 2)))
    TaskQueue(qpath, progress=False).insert(tc.create_luminance_levels_tasks(src))
    keys = set()
    for path in (tmp_path / "queue" / "queue").iterdir():
        payload = json.loads(path.read_text())["payload"]
        keys.add(tuple(payload[0]) if isinstance(payload, list) else payload["class"])
    assert keys == {("igneous.tasks.image.image", "CLAHETask"), "LuminanceLevelsTask"}
