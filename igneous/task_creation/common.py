"""Planning helpers shared by every capability: the task grid, bounds, provenance."""

from __future__ import annotations

import copy
import functools
import getpass
import logging
import math
import os
import subprocess
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.errors import InvalidParameterError
from igneous.label_shards import compute_shard_params_for_hashed  # SPEC §2.5 names it here
from igneous.validate import triple, whole
from igneous.volumes import set_encoding

__all__ = [
    "FinelyDividedTaskIterator",
    "GridTasks",
    "operator_contact",
    "prod",
    "get_bounds",
    "num_tasks",
    "set_encoding",
    "record_provenance",
    "compute_shard_params_for_hashed",
    "task_kwargs",
    "as_triple",
    "graphene_prefixes",
]

log = logging.getLogger(__name__)


def prod(x) -> int:
    """Product of a sequence of integers (as a Python int, never overflowing)."""
    return functools.reduce(lambda a, b: a * int(b), x, 1)


def as_triple(value, name: str, positive: bool = True, allow_zero: bool = False) -> Vec:
    """Validate a 3-vector of integers given by a user; returns a ``Vec``."""
    minimum = (0 if allow_zero else 1) if positive else None
    return triple(value, name, minimum)


def num_tasks(bounds: Bbox, shape: Sequence[int]) -> int:
    """Number of grid cells of ``shape`` needed to cover ``bounds``."""
    size = Vec(*bounds.size3())
    return prod(int(math.ceil(s / float(sh))) for s, sh in zip(size, shape))


class FinelyDividedTaskIterator:
    """A lazy, sized grid of tasks over ``bounds`` in cells of ``shape`` (x fastest).

    Subclasses override ``task(shape, offset)`` and optionally ``on_finish()``, which
    runs once iteration has yielded every task. Supports ``len()`` and slicing, so a
    petavoxel plan of millions of tasks costs constant memory until inserted.
    """

    def __init__(self, bounds: Bbox, shape: Sequence[int]):
        self.bounds = Bbox.create(bounds)
        self.shape = Vec(*shape)
        self.start = 0
        self.end = num_tasks(self.bounds, self.shape)

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, slc):
        if not isinstance(slc, slice) or slc.step not in (None, 1):
            raise TypeError("task iterators support contiguous slices only, e.g. tasks[100:200]")
        itr = copy.copy(self)
        start, stop, _ = slc.indices(len(self))
        itr.start = self.start + start
        itr.end = self.start + max(start, stop)
        return itr

    def task(self, shape: Vec, offset: Vec):
        raise NotImplementedError()

    def on_finish(self) -> None:
        pass

    def __iter__(self) -> Iterator:
        size = self.bounds.size3()
        sx, sy, sz = (int(v) for v in self.shape)
        gx = int(math.ceil(size[0] / sx))
        gy = int(math.ceil(size[1] / sy))
        minx, miny, minz = (int(v) for v in self.bounds.minpt)
        shape = Vec(sx, sy, sz)
        for i in range(self.start, self.end):
            x, rem = i % gx, i // gx
            y, z = rem % gy, rem // gy
            yield self.task(shape, Vec(minx + x * sx, miny + y * sy, minz + z * sz))
        self.on_finish()


class GridTasks(FinelyDividedTaskIterator):
    """The grid iterator every creator uses: ``make_task(shape=, offset=)`` per cell.

    ``make_task`` is normally ``functools.partial(TaskFn, **common_kwargs)`` and
    ``finish`` a picklable callable (e.g. a provenance recorder), so the iterator can be
    handed to other processes for parallel insertion.

    With ``clip`` the cells on the far edges are cut to ``bounds`` (for tasks that act on
    exactly their box); without it every cell has the nominal shape, which pyramid tasks
    need to know which levels they can write. ``clip_to`` cuts every cell to a region
    inside ``bounds`` (the grid stays aligned to ``bounds``; every cell must meet the region).
    """

    def __init__(
        self,
        bounds: Bbox,
        shape: Sequence[int],
        make_task: Callable,
        finish: Optional[Callable] = None,
        clip: bool = False,
        instantiate: bool = False,
        clip_to: Optional[Bbox] = None,
    ):
        super().__init__(bounds, shape)
        self.make_task = make_task
        self.finish = finish
        self.clip = clip
        self.clip_to = None if clip_to is None else Bbox.create(clip_to)
        # RegisteredTask classes (e.g. MeshTask) travel as objects, not as partials.
        self.instantiate = instantiate

    def task(self, shape: Vec, offset: Vec):
        return self._make([int(v) for v in shape], [int(v) for v in offset])

    def _make(self, shape: list, offset: list):
        """The task of the cell ``[offset, offset + shape)`` (plain int lists, fresh per cell)."""
        if self.clip:
            shape = [min(s, int(m) - o) for s, m, o in zip(shape, self.bounds.maxpt, offset)]
        if self.clip_to is not None:
            cell = Bbox.intersection(Bbox(offset, Vec(*offset) + Vec(*shape)), self.clip_to)
            offset, shape = cell.minpt.tolist(), cell.size3().tolist()
        if self.instantiate:
            return self.make_task(shape=shape, offset=offset)
        return functools.partial(self.make_task, shape=shape, offset=offset)

    def __iter__(self) -> Iterator:
        # The per-cell work is plain int arithmetic: Vec/Bbox construction per cell was most
        # of the planning time of a million-task forge.
        size = self.bounds.size3()
        sx, sy, sz = (int(v) for v in self.shape)
        gx = int(math.ceil(size[0] / sx))
        gy = int(math.ceil(size[1] / sy))
        minx, miny, minz = (int(v) for v in self.bounds.minpt)
        fast = not self.clip and self.clip_to is None
        make, partial, instantiate = self.make_task, functools.partial, self.instantiate
        for i in range(self.start, self.end):
            x, rem = i % gx, i // gx
            y, z = rem % gy, rem // gy
            ox, oy, oz = minx + x * sx, miny + y * sy, minz + z * sz
            if not fast:
                yield self._make([sx, sy, sz], [ox, oy, oz])
            elif instantiate:
                yield make(shape=[sx, sy, sz], offset=[ox, oy, oz])
            else:
                yield partial(make, shape=[sx, sy, sz], offset=[ox, oy, oz])
        self.on_finish()

    def on_finish(self) -> None:
        if self.finish is not None and self.start == 0:
            self.finish()


@functools.lru_cache(maxsize=1)
def operator_contact() -> str:
    """Who is running this: ``git config user.email``, else the login name."""
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    if email:
        return email
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Vec, np.ndarray)):
        return value.tolist()
    if isinstance(value, Bbox):
        return [int(v) for v in value.to_list()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def record_provenance(layer_path: str, task_name: str, params: dict, sources: Sequence[str] = ()) -> None:
    """Append one ``processing`` record (and any new ``sources``) to a layer's provenance."""
    vol = CloudVolume(layer_path, progress=False, cdn_cache=False)
    vol.provenance.processing.append(
        {
            "method": {"task": task_name, **_jsonable(params)},
            "by": operator_contact(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M %Z"),
        }
    )
    for src in sources:
        if src not in vol.provenance.sources:
            vol.provenance.sources.append(src)
    vol.commit_provenance()


def task_kwargs(**kwargs) -> dict:
    """The task's keyword arguments, JSON-ready, named once for the task and its provenance."""
    return {k: _jsonable(v) for k, v in kwargs.items()}


def to_bbox(bounds) -> Bbox:
    """A user's bounds as a Bbox: a Bbox, [x0,y0,z0,x1,y1,z1], or [[x0,y0,z0],[x1,y1,z1]]."""
    if isinstance(bounds, Bbox):
        return bounds.clone()
    try:
        flat = np.asarray(bounds, dtype=np.int64).reshape(-1)
        if flat.size == 6:
            return Bbox(flat[:3], flat[3:])
        return Bbox.create(bounds)
    except Exception:
        raise InvalidParameterError(f"bounds must be a Bbox or [x0,y0,z0,x1,y1,z1]; got {bounds!r}") from None


def get_bounds(vol: CloudVolume, bounds, mip: int, bounds_mip: int = 0, chunk_size=None) -> Bbox:
    """The region to process at ``mip``: the whole layer, or ``bounds`` (given at ``bounds_mip``)
    expanded to whole chunks and clipped to the layer. Bounds that miss the layer are refused.
    """
    layer = vol.meta.bounds(mip)
    if bounds is None:
        selected = layer.clone()
    else:
        bbox = to_bbox(bounds)
        if np.any(bbox.size3() <= 0):
            raise InvalidParameterError(f"bounds {bbox.to_list()} are empty")
        selected = vol.bbox_to_mip(bbox, mip=bounds_mip, to_mip=mip)
        if not Bbox.intersects(selected, layer) or np.any(Bbox.intersection(selected, layer).size3() <= 0):
            raise InvalidParameterError(
                f"bounds {bbox.to_list()} (at mip {bounds_mip}) lie outside the layer bounds "
                f"{vol.meta.bounds(bounds_mip).to_list()}"
            )
        chunk = vol.meta.chunk_size(mip) if chunk_size is None else Vec(*chunk_size)
        selected = selected.expand_to_chunk_size(chunk, offset=vol.meta.voxel_offset(mip))
        selected = Bbox.clamp(selected, layer)
    log.info("Volume Bounds: %s; Selected ROI: %s", layer, selected)
    return selected


def graphene_prefixes(mip: int = 1, mip_bits: int = 8, coord_bits=(10, 10, 10), prefix_length: int = 6) -> list[str]:
    """Decimal name prefixes that together cover every graphene id of layer ``mip``, each once.

    A graphene id is ``layer | x | y | z | segid`` from the high bits down (``mip_bits`` for
    the layer, ``coord_bits`` per chunk coordinate, the rest for the segment), so the ids of a
    layer are the interval ``[mip << (64 - mip_bits), (mip + 1) << (64 - mip_bits))``. The
    prefixes are the first ``prefix_length`` digits of those ids, computed per digit count
    without enumerating ids; ids shorter than ``prefix_length`` digits get the exact prefix
    ``"{id}:"`` (a legacy fragment name), so no prefix is a prefix of another one and a
    listing by each prefix sees every fragment exactly once. Returned sorted.
    """
    mip_bits = whole(mip_bits, "mip_bits", 1, 63)
    bits = [whole(b, "coord_bits", 0, 64) for b in coord_bits]
    if len(bits) != 3 or mip_bits + sum(bits) > 64:
        raise InvalidParameterError(f"mip_bits + coord_bits must fit 64 bits; got {mip_bits} + {tuple(bits)}")
    mip = whole(mip, "mip", 0, 2**mip_bits - 1)
    prefix_length = whole(prefix_length, "prefix_length", 1, 9)
    shift = 64 - mip_bits
    lo, hi = mip << shift, ((mip + 1) << shift) - 1
    found: set[str] = set()
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (digits - 1) if digits > 1 else 0), min(hi, 10**digits - 1)
        if a > b:
            continue
        if digits < prefix_length:
            found.update(f"{n}:" for n in range(a, b + 1))
            continue
        step = 10 ** (digits - prefix_length)
        found.update(str(q) for q in range(a // step, b // step + 1))
    return sorted(found)
