"""The arithmetic of priced plans (igneous.plan): the chunk grid, sampling, pricing. No I/O."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from cloudvolume.lib import Bbox
from hypothesis import given, settings
from hypothesis import strategies as st

from igneous.plan import Output, Plan, Prices, bytes_per_voxel, chunks_in, grid_cells, grid_reads, report, sample_boxes
from igneous.throughput import THROUGHPUT


def brute_reads(bounds, shape, chunk, origin, clip, pad_hi=(0, 0, 0), translate=(0, 0, 0)) -> int:
    """Every task of the grid, every chunk it touches, counted one by one."""
    total = 0
    starts = [range(int(bounds.minpt[a]), int(bounds.maxpt[a]), shape[a]) for a in range(3)]
    for corner in itertools.product(*starts):
        lo = [max(corner[a] - translate[a], clip.minpt[a]) for a in range(3)]
        hi = [
            min(min(corner[a] + shape[a], bounds.maxpt[a]) + pad_hi[a] - translate[a], clip.maxpt[a]) for a in range(3)
        ]
        if any(h <= low for low, h in zip(lo, hi)):
            continue
        cells = 1
        for a in range(3):
            cells *= (hi[a] - origin[a] + chunk[a] - 1) // chunk[a] - (lo[a] - origin[a]) // chunk[a]
        total += cells
    return total


triples = st.tuples(*(st.integers(1, 9) for _ in range(3)))


@settings(max_examples=150, deadline=None)
@given(
    size=st.tuples(*(st.integers(1, 40) for _ in range(3))),
    shape=triples,
    chunk=triples,
    offset=st.tuples(*(st.integers(-7, 7) for _ in range(3))),
    pad=st.tuples(*(st.integers(0, 1) for _ in range(3))),
    translate=st.tuples(*(st.integers(-3, 3) for _ in range(3))),
)
def test_grid_reads_count_every_task_chunk_pair(size, shape, chunk, offset, pad, translate):
    bounds = Bbox(offset, np.add(offset, size))
    clip = bounds  # the source layer
    got = grid_reads(bounds, shape, chunk, offset, clip, pad_hi=pad, translate=translate)
    assert got == brute_reads(bounds, shape, chunk, offset, clip, pad, translate)


@pytest.mark.parametrize(
    "box, chunk, origin, expected",
    [
        (Bbox((0, 0, 0), (64, 64, 64)), (64, 64, 64), (0, 0, 0), 1),  # exactly one chunk
        (Bbox((0, 0, 0), (65, 64, 64)), (64, 64, 64), (0, 0, 0), 2),  # one voxel more
        (Bbox((10, 0, 0), (20, 1, 1)), (8, 8, 8), (2, 0, 0), 2),  # offset grid: [10,20) over 2..10..18..26
        (Bbox((3, 3, 3), (4, 4, 4)), (5, 5, 5), (0, 0, 0), 1),
    ],
)
def test_chunks_in(box, chunk, origin, expected):
    assert chunks_in(box, chunk, origin) == expected


def test_sample_boxes_are_spread_aligned_and_inside():
    bounds = Bbox((10, 20, 0), (1010, 620, 100))
    boxes = sample_boxes(bounds, (128, 128, 64), (10, 20, 0), 3)
    assert len(boxes) == 3 and len({b.minpt.tolist().__str__() for b in boxes}) == 3
    for b in boxes:
        assert Bbox.intersection(b, bounds) == b
        assert all((b.minpt[a] - bounds.minpt[a]) % (128, 128, 64)[a] == 0 for a in range(3))
    # more samples than blocks: each block once
    assert len(sample_boxes(Bbox((0, 0, 0), (10, 10, 10)), (10, 10, 10), (0, 0, 0), 5)) == 1


def test_bytes_per_voxel_follows_the_codec():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 16, 1), dtype=np.uint8)
    flat = np.zeros((64, 64, 16, 1), dtype=np.uint8)
    assert bytes_per_voxel(noise, "raw", None) == 1.0
    assert 0.95 < bytes_per_voxel(noise, "raw", "gzip") < 1.05  # noise does not compress
    assert bytes_per_voxel(flat, "raw", "gzip") < 0.01
    labels = np.repeat(np.arange(4, dtype=np.uint64), 64 * 64 * 4).reshape((64, 64, 16, 1), order="F")
    assert bytes_per_voxel(labels, "compressed_segmentation", None) < 0.2  # 4 labels: 2 bits each


def plan(**kw) -> Plan:
    p = Plan(command="image downsample", task="DownsampleTask", tasks=10, stage="downsample", work=3.6e12, **kw)
    p.outputs = [Output("mip 1", 1000, 2_000_000_000), Output("mip 2", 250, 500_000_000)]
    p.bytes_read = 8_000_000_000
    p.add_requests({"GET": 40_000, "PUT": 1250, "LIST": 10})
    return p


def test_report_cpu_hours_from_calibrated_throughput_and_no_invented_prices():
    data = report(plan())
    assert data["cpu_hours"] == pytest.approx(3.6e12 / THROUGHPUT["downsample"]["per_cpu_s"] / 3600)
    assert data["bytes_written"] == 2_500_000_000 and data["files_written"] == 1250
    assert "cost" not in data and "wall_hours" not in data
    assert data["throughput"]["source"].startswith("stage image_downsample")


def test_report_wall_time_rounds_tasks_over_workers():
    cpu_h = report(plan())["cpu_hours"]
    assert report(plan(), workers=4)["wall_hours"] == pytest.approx(cpu_h / 10 * math.ceil(10 / 4))
    assert report(plan(), workers=100)["wall_hours"] == pytest.approx(cpu_h / 10)  # no more than one task each


def test_report_prices_only_what_is_given():
    data = report(plan(), prices=Prices(core_hour=0.04, per_1k_put=0.005, per_1k_get=0.0004))
    items = {i["what"]: i["cost"] for i in data["cost"]["items"]}
    assert items["PUT requests"] == pytest.approx(1.25 * 0.005)
    assert items["LIST requests"] == pytest.approx(0.01 * 0.005)  # LIST billed at the PUT rate by default
    assert items["GET+HEAD requests"] == pytest.approx(40 * 0.0004)
    assert "bytes read" not in items and "storage of bytes written" not in items
    assert data["cost"]["total"] == pytest.approx(sum(items.values()))
    data = report(plan(), prices=Prices(per_1k_list=0.0, per_gb_read=0.09, per_gb_month=0.023))
    items = {i["what"]: i["cost"] for i in data["cost"]["items"]}
    assert items["bytes read"] == pytest.approx(8 * 0.09) and items["storage of bytes written"] == pytest.approx(
        2.5 * 0.023
    )
    assert items["LIST requests"] == 0


def test_grid_cells():
    assert grid_cells(Bbox((0, 0, 0), (100000, 100000, 20000)), (2048, 2048, 64)) == 49 * 49 * 313
