"""The task grid covers its bounds exactly once, lazily, and slices consistently."""

from __future__ import annotations

import functools
import pickle

import numpy as np
from cloudvolume.lib import Bbox
from hypothesis import given, settings
from hypothesis import strategies as st

from igneous.task_creation.common import FinelyDividedTaskIterator, GridTasks, num_tasks


def box_task(shape, offset):
    return (tuple(shape), tuple(offset))


dims = st.integers(min_value=1, max_value=40)


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(dims, dims, dims), shape=st.tuples(dims, dims, dims), origin=st.tuples(*(st.integers(-50, 50),) * 3)
)
def test_cells_cover_bounds_exactly_once(size, shape, origin):
    bounds = Bbox(origin, np.add(origin, size))
    tasks = GridTasks(bounds, shape, box_task)
    cover = np.zeros(size, dtype=np.int32)
    for t in tasks:
        kw = t.keywords
        lo = np.maximum(np.subtract(kw["offset"], origin), 0)
        hi = np.minimum(np.add(np.subtract(kw["offset"], origin), kw["shape"]), size)
        assert np.all(hi > lo)  # no empty cells
        cover[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += 1
    assert np.all(cover == 1)
    assert len(tasks) == num_tasks(bounds, shape)


def test_x_fastest_order_and_slicing():
    tasks = GridTasks(Bbox((0, 0, 0), (4, 4, 4)), (2, 2, 2), box_task)
    offsets = [t.keywords["offset"] for t in tasks]
    assert offsets[:3] == [[0, 0, 0], [2, 0, 0], [0, 2, 0]]
    part = tasks[3:6]
    assert len(part) == 3
    assert [t.keywords["offset"] for t in part] == offsets[3:6]


def test_on_finish_runs_once_after_full_iteration():
    calls = []
    tasks = GridTasks(Bbox((0, 0, 0), (4, 2, 2)), (2, 2, 2), box_task, functools.partial(calls.append, 1))
    it = iter(tasks)
    next(it)
    assert calls == []
    list(it)
    assert calls == [1]
    list(tasks[1:])  # a partial slice is not the whole plan: no record
    assert calls == [1]


def test_picklable():
    tasks = GridTasks(Bbox((0, 0, 0), (8, 8, 8)), (4, 4, 4), box_task)
    again = pickle.loads(pickle.dumps(tasks))
    assert [t.keywords for t in again] == [t.keywords for t in tasks]


def test_subclass_contract():
    class Mine(FinelyDividedTaskIterator):
        def task(self, shape, offset):
            return tuple(offset)

    assert list(Mine(Bbox((0, 0, 0), (2, 1, 1)), (1, 1, 1))) == [(0, 0, 0), (1, 0, 0)]
