"""Mesh fixtures: crops of the real sample segmentation (../shared/data), decoded once per session.

Crop A (128³ at (256,256,256), ~173 labels) is the exact, unsimplified oracle; crop B
(96×96×64 at the same corner, 78 labels) is small enough to simplify in a fast suite.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import SAMPLE_SEGMENTATION

CROP_A = ((256, 256, 256), (128, 128, 128))
CROP_B = ((256, 256, 256), (96, 96, 64))
# Non-zero, not chunk-aligned, and the benchmark's resolution.
VOXEL_OFFSET = (7, 11, 5)
RESOLUTION = (16, 16, 40)


@pytest.fixture(scope="session")
def sample_crop(tmp_path_factory):
    """``sample_crop(offset, size) -> uint32 array``, cached as .npy for the session."""
    if not os.path.exists(SAMPLE_SEGMENTATION):
        pytest.fail(f"the sample segmentation {SAMPLE_SEGMENTATION} is missing")
    cache = tmp_path_factory.mktemp("crops")

    def crop(offset, size) -> np.ndarray:
        name = cache / ("crop_" + "_".join(str(v) for v in (*offset, *size)) + ".npy")
        if not name.exists():
            import crackle

            arr = crackle.aload(SAMPLE_SEGMENTATION)
            (x, y, z), (sx, sy, sz) = offset, size
            np.save(name, np.asfortranarray(arr[x : x + sx, y : y + sy, z : z + sz]))
        return np.load(name)

    return crop


@pytest.fixture(scope="session")
def crop_a(sample_crop):
    return sample_crop(*CROP_A)


@pytest.fixture(scope="session")
def crop_b(sample_crop):
    return sample_crop(*CROP_B)
