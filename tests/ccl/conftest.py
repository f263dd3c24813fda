"""CCL fixtures: the partition oracle, a four-step runner, crops of the real sample.

The oracle is cc3d on the whole in-memory volume (``cc3d.dust`` first when dust is asked
for); a distributed result is right when its labels and cc3d's are in bijection on the
same foreground.
"""

from __future__ import annotations

import os

import cc3d
import numpy as np
import pytest
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.tasks.image.ccl import create_relabeling
from tests.conftest import SAMPLE_SEGMENTATION


def assert_same_partition(got: np.ndarray, want: np.ndarray) -> None:
    """``got`` and ``want`` label the same voxels and group them the same way (ids may differ)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    fg = want > 0
    assert np.array_equal(got > 0, fg), f"{int(((got > 0) != fg).sum())} voxels differ in foreground"
    pairs = np.unique(np.stack([got[fg].astype(np.uint64), want[fg].astype(np.uint64)], axis=1), axis=0)
    n_got, n_want = len(np.unique(got[fg])), len(np.unique(want[fg]))
    assert len(pairs) == n_got == n_want, f"{n_got} labels against cc3d's {n_want} ({len(pairs)} pairs)"


def assert_consecutive(out: np.ndarray, n: int) -> None:
    ids = np.unique(out)
    assert ids.tolist() == list(range(0 if (out == 0).any() else 1, n + 1)), "ids are not 1…N"


def oracle(image: np.ndarray, connectivity: int, dust: int = 0, gte=None, lte=None) -> np.ndarray:
    fg = image
    if gte is not None or lte is not None:
        fg = np.ones(image.shape, dtype=bool)
        if gte is not None:
            fg &= image >= gte
        if lte is not None:
            fg &= image <= lte
    if dust:
        fg = cc3d.dust(fg, dust, connectivity=connectivity)
    return cc3d.connected_components(fg, connectivity=connectivity)


def run_ccl(src: str, dest: str, shape, mip: int = 0, **kwargs) -> int:
    """All four steps in-process; returns N."""
    run = LocalTaskQueue(parallel=1, progress=False).insert_all
    extra = {k: kwargs.pop(k) for k in ("chunk_size", "encoding") if k in kwargs}
    run(tc.create_ccl_face_tasks(src, mip, shape, **kwargs))
    run(tc.create_ccl_equivalence_tasks(src, mip, shape, **kwargs))
    n = create_relabeling(src, mip, shape)
    run(tc.create_ccl_relabel_tasks(src, dest, mip, shape, **extra, **kwargs))
    return n


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """``sample(offset, size) -> uint64 crop`` of the real 512³ segmentation, cached for the session."""
    if not os.path.exists(SAMPLE_SEGMENTATION):
        pytest.fail(f"the sample segmentation {SAMPLE_SEGMENTATION} is missing")
    cache = tmp_path_factory.mktemp("ccl_crops")

    def crop(offset, size) -> np.ndarray:
        name = cache / ("crop_" + "_".join(str(v) for v in (*offset, *size)) + ".npy")
        if not name.exists():
            import crackle

            arr = crackle.aload(SAMPLE_SEGMENTATION)
            (x, y, z), (sx, sy, sz) = offset, size
            np.save(name, np.asfortranarray(arr[x : x + sx, y : y + sy, z : z + sz]).astype(np.uint64))
        return np.load(name)

    return crop
