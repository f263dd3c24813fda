"""Bad stacks and arrays are refused before anything is written: one line naming the file, exit 2."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from igneous_cli import main
from tests.conftest import tree
from tests.ingest.test_stack_ingest import stack, write_series


def refuse(tmp_path, args, needle):
    before = tree(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert needle in result.output, result.output
    assert lines[-1].startswith("Error:") and sum(line.startswith("Error:") for line in lines) == 1
    assert tree(tmp_path) == before


@pytest.fixture
def series(tmp_path):
    return write_series(tmp_path / "s", stack(np.uint8, size=(30, 20, 6)))


def test_mismatched_slice_size(tmp_path, series):
    tifffile.imwrite(os.path.join(series, "z0003.tif"), np.zeros((21, 30), np.uint8))
    refuse(tmp_path, ["image", "create", series, f"file://{tmp_path / 'd'}"], "z0003.tif is 30x21 pixels")


def test_mismatched_dtype(tmp_path, series):
    tifffile.imwrite(os.path.join(series, "z0004.tif"), np.zeros((20, 30), np.uint16))
    refuse(tmp_path, ["image", "create", series, f"file://{tmp_path / 'd'}"], "z0004.tif is 30x20 pixels, 1 channel(s) of uint16")


def test_missing_slice(tmp_path, series):
    os.remove(os.path.join(series, "z0002.tif"))
    refuse(tmp_path, ["image", "create", series, f"file://{tmp_path / 'd'}"], "slice z0002.tif is missing")


def test_unreadable_file(tmp_path, series):
    with open(os.path.join(series, "z0001.tif"), "wb") as f:
        f.write(b"not a tiff at all")
    refuse(tmp_path, ["image", "create", series, f"file://{tmp_path / 'd'}"], "cannot read")


def test_destination_with_another_shape(tmp_path, series):
    dest = f"file://{tmp_path / 'd'}"
    assert CliRunner().invoke(main, ["image", "create", series, dest, "--chunk-size", "16,16,4"]).exit_code == 0
    other = write_series(tmp_path / "other", stack(np.uint8, size=(31, 20, 6)))
    refuse(tmp_path, ["image", "create", other, dest, "--chunk-size", "16,16,4"], "exists with another layer (size")
    np.save(tmp_path / "a.npy", np.zeros((5, 5, 5), np.uint8))
    refuse(tmp_path, ["image", "create", str(tmp_path / "a.npy"), dest], "exists with another layer")


def test_memory_too_small_for_png(tmp_path):
    src = write_series(tmp_path / "p", stack(np.uint8, size=(200, 100, 2)), ext="png")
    refuse(tmp_path, ["image", "create", src, f"file://{tmp_path / 'd'}", "--memory", "1000"], "convert to tiled TIFF")


def test_queue_with_array_and_downsample_with_queue(tmp_path, series):
    np.save(tmp_path / "a.npy", np.zeros((5, 5, 5), np.uint8))
    refuse(tmp_path, ["image", "create", str(tmp_path / "a.npy"), f"file://{tmp_path / 'd'}", "--queue", str(tmp_path / "q")], "--queue applies to image stacks")  # fmt: skip
    refuse(tmp_path, ["image", "create", series, f"file://{tmp_path / 'd'}", "--queue", str(tmp_path / "q"), "--downsample"], "--downsample")  # fmt: skip


def test_design_ingest_previews_without_writing(tmp_path, series):
    before = tree(tmp_path)
    result = CliRunner().invoke(main, ["design", "ingest", series, "--chunk-size", "16,16,4", "--memory", "2e4"])
    assert result.exit_code == 0, result.output
    assert "Tasks: " in result.output and "Peak memory per task" in result.output and "rows" in result.output
    assert tree(tmp_path) == before


def test_downsample_after_ingest(tmp_path, series):
    dest = f"file://{tmp_path / 'd'}"
    result = CliRunner().invoke(main, ["image", "create", series, dest, "--chunk-size", "8,8,2", "--downsample"])
    assert result.exit_code == 0, result.output
    from cloudvolume import CloudVolume

    assert len(CloudVolume(dest).info["scales"]) > 1
