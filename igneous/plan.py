"""Priced plans: what a run will do before it is run (``--dry-run`` on every planning command).

A ``Plan`` is a description any capability can build: the tasks, what they write (files and
bytes per output), bytes read, object-store requests by kind, and the work in the unit its
throughput was calibrated in (``igneous.throughput``). ``report(plan, workers, prices)`` turns
it into CPU-hours and, only where the user gave prices, wall time and cost. No price is ever
assumed.

Byte figures come from the chunk grid and a compression ratio measured on a few real chunks
(``sample_blocks``/``bytes_per_voxel``); request figures from the grid and the per-task
overheads measured in ``igneous.throughput.TASK_REQUESTS``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from cloudvolume.lib import Bbox, Vec

from igneous.throughput import MEASURED, TASK_REQUESTS, THROUGHPUT

__all__ = [
    "REQUEST_KINDS",
    "Output",
    "Plan",
    "Prices",
    "report",
    "task_requests",
    "chunks_in",
    "grid_reads",
    "sample_boxes",
    "bytes_per_voxel",
]

log = logging.getLogger(__name__)

REQUEST_KINDS = ("GET", "PUT", "LIST", "HEAD", "DELETE")
GB = 1e9


@dataclass
class Output:
    """One thing a run writes: e.g. a pyramid level, the shard files of a scale, mesh fragments."""

    what: str
    files: int
    bytes: int

    def to_dict(self) -> dict:
        return {"what": self.what, "files": int(self.files), "bytes": int(self.bytes)}


@dataclass
class Plan:
    """What a run will do. ``work`` is in ``THROUGHPUT[stage]["unit"]``."""

    command: str
    task: str
    tasks: int
    stage: str
    work: float
    outputs: list = field(default_factory=list)
    bytes_read: int = 0
    requests: Counter = field(default_factory=Counter)
    task_shape: Optional[Sequence[int]] = None
    notes: list = field(default_factory=list)
    sample: dict = field(default_factory=dict)

    @property
    def bytes_written(self) -> int:
        return int(sum(o.bytes for o in self.outputs))

    @property
    def files_written(self) -> int:
        return int(sum(o.files for o in self.outputs))

    def add_requests(self, counts: dict, times: int = 1) -> None:
        for kind, n in counts.items():
            self.requests[kind] += int(n) * int(times)


@dataclass(frozen=True)
class Prices:
    """What the user pays, when they say so. None means unknown: that cost is not computed."""

    core_hour: Optional[float] = None
    per_1k_put: Optional[float] = None
    per_1k_get: Optional[float] = None
    per_1k_list: Optional[float] = None  # default: the PUT price (S3 and GCS bill LIST as class A)
    per_gb_read: Optional[float] = None  # egress / transfer out of the store
    per_gb_month: Optional[float] = None  # storage of what is written, for one month


def task_requests(task: str) -> dict:
    return dict(TASK_REQUESTS.get(task, {}))


def _priced(items: list, label: str, quantity: float, unit: str, price: Optional[float], per: float) -> None:
    if price is None or quantity == 0:
        return
    items.append({"what": label, "quantity": quantity, "unit": unit, "price": price, "cost": quantity / per * price})


def report(plan: Plan, workers: Optional[int] = None, prices: Prices = Prices()) -> dict:
    """The plan as one JSON-ready object: figures, CPU-hours and, given workers/prices, wall time and cost."""
    rate = THROUGHPUT[plan.stage]
    cpu_s = float(plan.work) / float(rate["per_cpu_s"])
    requests = {kind: int(plan.requests.get(kind, 0)) for kind in REQUEST_KINDS}
    out = {
        "command": plan.command,
        "task": plan.task,
        "tasks": int(plan.tasks),
        "task_shape": [int(v) for v in plan.task_shape] if plan.task_shape is not None else None,
        "outputs": [o.to_dict() for o in plan.outputs],
        "files_written": plan.files_written,
        "bytes_read": int(plan.bytes_read),
        "bytes_written": plan.bytes_written,
        "requests": requests,
        "work": {"amount": float(plan.work), "unit": rate["unit"]},
        "cpu_hours": cpu_s / 3600,
        "throughput": {
            "per_cpu_s": rate["per_cpu_s"],
            "unit": rate["unit"],
            "source": rate["source"],
            **MEASURED,
            **rate.get("measured", {}),  # a figure measured in another run says so
        },
        "notes": list(plan.notes),
        "sample": plan.sample,
    }
    if workers:
        parallel = max(1, min(int(workers), int(plan.tasks) or 1))
        # Tasks are whole units of work: the slowest worker runs ceil(tasks / workers) of them.
        per_task = cpu_s / max(1, int(plan.tasks))
        rounds = math.ceil(max(1, int(plan.tasks)) / parallel)
        out["workers"] = int(workers)
        out["wall_hours"] = rounds * per_task / 3600
    items: list = []
    _priced(items, "CPU", cpu_s / 3600, "core-hours", prices.core_hour, 1)
    _priced(items, "PUT requests", requests["PUT"], "requests", prices.per_1k_put, 1000)
    list_price = prices.per_1k_list if prices.per_1k_list is not None else prices.per_1k_put
    _priced(items, "LIST requests", requests["LIST"], "requests", list_price, 1000)
    _priced(items, "GET+HEAD requests", requests["GET"] + requests["HEAD"], "requests", prices.per_1k_get, 1000)
    _priced(items, "bytes read", plan.bytes_read / GB, "GB", prices.per_gb_read, 1)
    _priced(items, "storage of bytes written", plan.bytes_written / GB, "GB-months", prices.per_gb_month, 1)
    if items:
        out["cost"] = {"items": items, "total": sum(i["cost"] for i in items)}
    return out


# -- the chunk grid --------------------------------------------------------------------------------


def _cells(lo: int, hi: int, origin: int, chunk: int) -> int:
    """Chunks of a grid (``origin``, ``chunk``) that [lo, hi) touches."""
    if hi <= lo:
        return 0
    return (hi - origin + chunk - 1) // chunk - (lo - origin) // chunk


def chunks_in(box: Bbox, chunk: Sequence[int], origin: Sequence[int]) -> int:
    """Chunk files a box touches."""
    return math.prod(_cells(int(box.minpt[a]), int(box.maxpt[a]), int(origin[a]), int(chunk[a])) for a in range(3))


def grid_reads(
    bounds: Bbox,
    shape: Sequence[int],
    chunk: Sequence[int],
    origin: Sequence[int],
    clip: Bbox,
    pad_lo: Sequence[int] = (0, 0, 0),
    pad_hi: Sequence[int] = (0, 0, 0),
    translate: Sequence[int] = (0, 0, 0),
) -> int:
    """Chunk reads of every task of a grid: each task reads its cell of ``shape`` over ``bounds``
    (grown by the pads, moved by ``-translate`` into the source, clipped to ``clip``), and a
    chunk on a task seam is read once per task. Per axis, then multiplied: O(tasks^(1/3))."""
    total = 1
    for a in range(3):
        lo, hi, s = int(bounds.minpt[a]), int(bounds.maxpt[a]), int(shape[a])
        axis = 0
        for start in range(lo, hi, s):
            end = min(start + s, hi)
            r0 = max(start - int(pad_lo[a]) - int(translate[a]), int(clip.minpt[a]))
            r1 = min(end + int(pad_hi[a]) - int(translate[a]), int(clip.maxpt[a]))
            axis += _cells(r0, r1, int(origin[a]), int(chunk[a]))
        total *= axis
    return total


def grid_cells(bounds: Bbox, shape: Sequence[int]) -> int:
    return math.prod(-(-int(bounds.size3()[a]) // int(shape[a])) for a in range(3))


# -- sampling real chunks --------------------------------------------------------------------------


def sample_boxes(bounds: Bbox, block: Sequence[int], origin: Sequence[int], count: int) -> list:
    """Up to ``count`` blocks of ``block`` voxels (aligned to ``origin``), spread evenly over the
    grid of ``bounds`` in x-fastest order, each clipped to ``bounds``."""
    block = Vec(*block)
    first = Vec(*[(int(bounds.minpt[a]) - int(origin[a])) // int(block[a]) for a in range(3)])
    grid = Vec(*[_cells(int(bounds.minpt[a]), int(bounds.maxpt[a]), int(origin[a]), int(block[a])) for a in range(3)])
    n = int(np.prod(grid))
    picks = sorted({int((i + 0.5) * n / count) for i in range(min(count, n))})
    boxes = []
    for flat in picks:
        x, rem = flat % grid[0], flat // grid[0]
        y, z = rem % grid[1], rem // grid[1]
        lo = Vec(*origin) + (first + Vec(x, y, z)) * block
        box = Bbox.intersection(Bbox(lo, lo + block), bounds)
        if not box.subvoxel():
            boxes.append(box)
    return boxes


def bytes_per_voxel(image: np.ndarray, encoding: str, compress, params: Optional[dict] = None) -> float:
    """Stored bytes per voxel of ``image`` (x, y, z, c) written with this encoding and compression."""
    from cloudfiles.compression import compress as compress_bytes
    from cloudvolume import chunks

    params = dict(params or {})
    block_size = params.pop("block_size", None)
    if encoding == "compressed_segmentation" and block_size is None:
        block_size = (8, 8, 8)
    data = chunks.encode(np.asfortranarray(image), encoding, block_size=block_size, compression_params=params)
    if compress:
        data = compress_bytes(data, compress)
    voxels = int(np.prod(image.shape[:3]))
    return len(data) / voxels if voxels else 0.0
