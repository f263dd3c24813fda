"""Pyramid kernels on odd extents agree with tinybrain's reference definitions."""

from __future__ import annotations

import numpy as np
import pytest
import tinybrain
from tinybrain.downsample import downsample_with_averaging_numpy

from igneous.errors import InvalidParameterError
from igneous.ops.downsample import level_shape, pyramid, resolve_method
from igneous.types import DownsampleMethods as M


@pytest.mark.parametrize("shape", [(13, 11, 3), (8, 8, 2), (1, 5, 1), (33, 17, 4, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_average_edges_count_only_real_voxels(shape, dtype):
    # tinybrain's numpy reference divides each sum by the voxels that exist (odd edges included)
    rng = np.random.default_rng(0)
    img = np.asfortranarray((rng.random(shape) * 250).astype(dtype))
    [got] = pyramid(img, (2, 2, 1), 1, M.AVERAGE_POOLING)
    ref = downsample_with_averaging_numpy(img if img.ndim == 4 else img[..., None], (2, 2, 1))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), atol=1 if dtype != np.float32 else 1e-4)


def test_even_extents_equal_tinybrain_exactly():
    img = np.asfortranarray(np.random.default_rng(1).integers(0, 255, (64, 32, 8, 1), dtype=np.uint8))
    ours = pyramid(img, (2, 2, 2), 3, M.AVERAGE_POOLING)
    theirs = tinybrain.downsample_with_averaging(img, (2, 2, 2), num_mips=3)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method,fn", [(M.MIN_POOLING, np.min), (M.MAX_POOLING, np.max)])
def test_min_max_on_odd_extents(method, fn):
    img = np.asfortranarray(np.random.default_rng(2).integers(0, 1000, (7, 5, 3), dtype=np.uint16))
    [got] = pyramid(img, (2, 2, 1), 1, method)
    for x in range(4):
        for y in range(3):
            block = img[2 * x : 2 * x + 2, 2 * y : 2 * y + 2, :]
            np.testing.assert_array_equal(got[x, y, :, 0], fn(block, axis=(0, 1)))


def test_mode_picks_majority():
    img = np.zeros((4, 4, 1), dtype=np.uint64)
    img[0:2, 0:2, 0] = [[5, 5], [5, 9]]
    img[2:4, 0:2, 0] = [[7, 7], [8, 8]]
    [got] = pyramid(img, (2, 2, 1), 1, M.MODE_POOLING)
    assert got[0, 0, 0, 0] == 5
    assert got[1, 0, 0, 0] in (7, 8)


def test_level_shapes_are_ceilings():
    assert level_shape((13, 11, 3), (2, 2, 1), 1) == (7, 6, 3)
    assert level_shape((13, 11, 3), (2, 2, 1), 2) == (4, 3, 3)
    assert level_shape((13, 11, 3, 2), (2, 2, 2), 1) == (7, 6, 2, 2)


@pytest.mark.parametrize(
    "layer_type,dtype,expected",
    [
        ("image", "uint8", M.AVERAGE_POOLING),
        ("segmentation", "uint64", M.MODE_POOLING),
        ("affinities", "float32", M.STRIDING),
    ],
)
def test_auto_method(layer_type, dtype, expected):
    assert resolve_method(M.AUTO, layer_type, dtype) == expected


def test_mode_refuses_floats():
    with pytest.raises(InvalidParameterError, match="integer dtype"):
        resolve_method(M.MODE_POOLING, "segmentation", "float32")
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        resolve_method(42, "image", "uint8")
