"""The stack planner's arithmetic: chunk-aligned boxes, within the memory target, whole slices when they fit."""

from __future__ import annotations

import pytest

from igneous.errors import InvalidParameterError
from igneous.readers.images import SliceHeader
from igneous.task_creation.ingest import choose_stack_task_shape, stack_task_memory


def header(layout, width, height, segment=None, dtype="uint8", channels=1):
    seg = segment or {"rows": (1, width), "whole": (height, width)}.get(layout, (256, 256))
    return SliceHeader("tiff" if layout != "whole" else "png", width, height, channels, dtype, layout, seg)


@pytest.mark.parametrize(
    "layout,width,height,segment,memory",
    [
        ("rows", 2048, 2048, None, 3.5e9),  # whole slices fit: one chunk deep, full xy
        ("rows", 16384, 16384, None, 1e9),  # split y only: rows are read directly
        ("rows", 200000, 300, None, 5e7),  # one chunk row of full width is too much: narrow boxes, banded reads
        ("strips", 40000, 28000, (16, 40000), 3.5e9),
        ("tiles", 40000, 28000, (512, 512), 1e9),  # square boxes of tiles
        ("whole", 4000, 4000, None, 3e8),  # PNG: split, each slice decoded more than once
    ],
)
def test_boxes_are_chunk_aligned_and_fit(layout, width, height, segment, memory):
    head = header(layout, width, height, segment)
    chunk = (128, 128, 64)
    shape, band, decodes = choose_stack_task_shape(head, (width, height, 500), chunk, int(memory))
    assert all(s % c == 0 for s, c in zip(shape, chunk))
    assert stack_task_memory(head, shape, band) <= memory
    if layout in ("rows", "strips") and shape[1] >= 128 and band is None:
        assert shape[0] >= width  # full rows: every slice region is read once
    assert decodes >= 1 and (decodes == 1 or layout == "whole")


def test_whole_slices_when_they_fit():
    shape, band, decodes = choose_stack_task_shape(header("rows", 2048, 2048), (2048, 2048, 128), (128, 128, 64), 3_500_000_000)
    assert tuple(shape) == (2048, 2048, 64) and band is None and decodes == 1


def test_refused_when_nothing_fits():
    with pytest.raises(InvalidParameterError, match="too small"):
        choose_stack_task_shape(header("whole", 40000, 28000), (40000, 28000, 10), (128, 128, 64), 10**9)
