"""Scale and task-shape arithmetic of ``igneous.downsample_scales``.

Expected values in the tables are worked out by hand from the definitions (the comment
on each case shows the arithmetic); hypothesis tests check the invariants on random input.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from cloudvolume import CloudVolume
from hypothesis import given, settings
from hypothesis import strategies as st

from igneous import downsample_scales as dss
from igneous.errors import InvalidParameterError

INF = float("inf")


# ---------------------------------------------------------------------------------------
# helpers


def make_info_layer(
    tmp_path,
    *,
    size=(1000, 700, 30),
    resolution=(4, 4, 40),
    voxel_offset=(3, 5, 7),
    chunk_size=(64, 64, 16),
    data_type="uint8",
    layer_type="image",
    encoding="raw",
    name="layer",
) -> str:
    """A layer with only an ``info`` file (no chunks): all these functions look at."""
    path = "file://" + str(tmp_path / name)
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type=layer_type,
        data_type=data_type,
        encoding=encoding,
        resolution=list(resolution),
        voxel_offset=list(voxel_offset),
        volume_size=list(size),
        chunk_size=list(chunk_size),
    )
    CloudVolume(path, info=info, progress=False).commit_info()
    return path


def stored_info(path: str) -> dict:
    """The info as written on disk (not a cached CloudVolume object)."""
    with open(path[len("file://") :] + "/info") as f:
        return json.load(f)


def edit_info(path: str, edit) -> None:
    info = stored_info(path)
    edit(info)
    with open(path[len("file://") :] + "/info", "w") as f:
        json.dump(info, f)


def memory(width, shape, factor) -> Fraction:
    """The memory model, restated independently: bytes × voxels × f/(f−1) (just the chunk for f=1)."""
    f = int(np.prod(factor))
    base = Fraction(width * int(np.prod(shape)))
    return base if f == 1 else base * Fraction(f, f - 1)


# ---------------------------------------------------------------------------------------
# scale_series_to_downsample_factors


@pytest.mark.parametrize(
    "scales, expected",
    [
        # constant 2,2,1 steps
        ([(1, 1, 1), (2, 2, 1), (4, 4, 1)], [(2, 2, 1), (2, 2, 1)]),
        # z starts halving at the third step: (4,4,2)/(2,2,1) = (2,2,2)
        ([(1, 1, 1), (2, 2, 1), (4, 4, 2)], [(2, 2, 1), (2, 2, 2)]),
        # a series that does not start at 1: (8,8,1)/(2,2,1) = (4,4,1)
        ([(2, 2, 1), (8, 8, 1)], [(4, 4, 1)]),
        # a single scale has no steps
        ([(1, 1, 1)], []),
        # no scales, no steps
        ([], []),
        # a step of 1 on every axis is allowed (a repeated scale)
        ([(1, 1, 1), (1, 1, 1)], [(1, 1, 1)]),
    ],
)
def test_scale_series_to_downsample_factors(scales, expected):
    assert dss.scale_series_to_downsample_factors(scales) == expected


@pytest.mark.parametrize(
    "scales",
    [
        [(1, 1, 1), (3, 3, 1), (4, 4, 1)],  # 4 is not a multiple of 3
        [(2, 2, 1), (1, 1, 1)],  # scales shrink
        [(1, 1, 1), (2, 2)],  # axes do not match
        [(1, 1, 1), (0, 2, 1)],  # zero scale
    ],
)
def test_scale_series_to_downsample_factors_rejects_non_multiples(scales):
    with pytest.raises(InvalidParameterError, match="scales"):
        dss.scale_series_to_downsample_factors(scales)


@given(st.lists(st.sampled_from([(1, 1, 1), (2, 2, 1), (2, 2, 2), (1, 2, 2), (2, 1, 1)]), max_size=6))
def test_scale_series_round_trip(steps):
    cumulative = [(1, 1, 1)]
    for step in steps:
        cumulative.append(tuple(a * b for a, b in zip(cumulative[-1], step)))
    assert dss.scale_series_to_downsample_factors(cumulative) == steps


# ---------------------------------------------------------------------------------------
# compute_near_isotropic_downsampling_scales


@pytest.mark.parametrize(
    "size, voxel, dims, kwargs, expected",
    [
        # 4x4x40: voxels (4,4,40) → (8,8,40) → (16,16,40) → (32,32,40); z is never closer to
        # double the finest (|40-64|=24 vs |80-64|=16 only once x,y reach 32). After (8,8,1)
        # the x,y extent is 1024/8 = 128 ≤ 128: stop.
        ((1024, 1024, 100), (4, 4, 40), [0, 1, 2], {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # same voxels, huge volume: at (8,8,1) voxels are (32,32,40); target 64 and
        # |40-64|=24 > |80-64|=16 so z halves too: (16,16,2) has product 512 > 64: stop.
        ((4096, 4096, 4096), (4, 4, 40), [0, 1, 2], {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # ... without the 64 cap the series continues (16,16,2), (32,32,4); max_scales=6 ends it.
        (
            (4096, 4096, 4096),
            (4, 4, 40),
            [0, 1, 2],
            {"max_scales": 6, "max_downsampling": INF},
            [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1), (16, 16, 2), (32, 32, 4)],
        ),
        # isotropic: every axis halves; 512/4 = 128 ≤ 128 after two steps.
        ((512, 512, 512), (8, 8, 8), [0, 1, 2], {}, [(1, 1, 1), (2, 2, 2), (4, 4, 4)]),
        # 4x6 in x,y: 6 is not below 4·4/3, so x alone; then y (8 vs 12: tie → not doubled) …
        # alternating until the product 64; (16,8,1) would be 128 > 64.
        (
            (2048, 2048, 10),
            (4, 6, 40),
            [0, 1],
            {},
            [(1, 1, 1), (2, 1, 1), (2, 2, 1), (4, 2, 1), (4, 4, 1), (8, 4, 1), (8, 8, 1)],
        ),
        # Neuroglancer steps while the product is below max_downsampling: 16 < 50 allows one more
        # step, to 64, and then the series stops although 4096/8 = 512 > 128.
        (
            (4096, 4096, 100),
            (4, 4, 40),
            [0, 1, 2],
            {"max_downsampling": 50},
            [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)],
        ),
        # max_scales counts the initial (1,1,1).
        ((4096, 4096, 100), (4, 4, 40), [0, 1, 2], {"max_scales": 2}, [(1, 1, 1), (2, 2, 1)]),
        # max_scales=1: only the identity.
        ((4096, 4096, 100), (4, 4, 40), [0, 1, 2], {"max_scales": 1}, [(1, 1, 1)]),
        # the size criterion looks only at downsampled axes: x,y ≤ 128 already, a deep z does not matter.
        ((100, 100, 100000), (4, 4, 40), [0, 1], {}, [(1, 1, 1)]),
        # 300 → 150 → 75 ≤ 128 on the largest axis.
        ((300, 200, 50), (1, 1, 1), [0, 1, 2], {}, [(1, 1, 1), (2, 2, 2), (4, 4, 4)]),
        # only z may be halved: the finest allowed axis is z whatever x,y are; 1000/8 = 125.
        ((1000, 1000, 1000), (4, 4, 40), [2], {}, [(1, 1, 1), (1, 1, 2), (1, 1, 4), (1, 1, 8)]),
        # 2-d input works the same way.
        ((1024, 256), (4, 4), [0, 1], {}, [(1, 1), (2, 2), (4, 4), (8, 8)]),
    ],
)
def test_near_isotropic_table(size, voxel, dims, kwargs, expected):
    assert dss.compute_near_isotropic_downsampling_scales(size, voxel, dims, **kwargs) == expected


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (((0, 10, 10), (4, 4, 40), [0, 1]), {}, "size"),  # zero size
        (((10, 10, 10), (4, 0, 40), [0, 1]), {}, "voxel_size"),  # zero voxel size
        (((10, 10, 10), (4, 4), [0, 1]), {}, "voxel_size"),  # axes do not match
        (((10, 10, 10), (4, 4, 40), [0, 3]), {}, "dimensions_to_downsample"),  # no axis 3
        (((10, 10, 10), (4, 4, 40), []), {}, "dimensions_to_downsample"),  # nothing to downsample
        (((10, 10, 10), (4, 4, 40), [0, 0]), {}, "dimensions_to_downsample"),  # repeated axis
        (((10, 10, 10), (4, 4, 40), [0, 1]), {"max_scales": 0}, "max_scales"),
        (((10, 10, 10), (4, 4, 40), [0, 1]), {"max_downsampling": 0.5}, "max_downsampling"),
        (((10, 10, 10), (4, 4, 40), [0, 1]), {"max_downsampled_size": -1}, "max_downsampled_size"),
        # every criterion unbounded would loop forever
        (((10, 10, 10), (4, 4, 40), [0, 1]), {"max_downsampling": INF, "max_downsampled_size": 0}, "bound"),
    ],
)
def test_near_isotropic_rejects(args, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        dss.compute_near_isotropic_downsampling_scales(*args, **kwargs)


@settings(max_examples=200, deadline=None)
@given(
    size=st.tuples(*[st.integers(1, 100_000)] * 3),
    voxel=st.tuples(*[st.sampled_from([1, 2, 3.5, 4, 8, 16, 40, 45, 100])] * 3),
    dims=st.sampled_from([[0, 1, 2], [0, 1], [1, 2], [2], [2, 0]]),
    max_scales=st.sampled_from([1, 2, 5, INF]),
    max_downsampling=st.sampled_from([1, 4, 50, 64, 4096]),
    max_downsampled_size=st.sampled_from([0, 1, 64, 128]),
)
def test_near_isotropic_invariants(size, voxel, dims, max_scales, max_downsampling, max_downsampled_size):
    scales = dss.compute_near_isotropic_downsampling_scales(
        size, voxel, dims, max_scales, max_downsampling, max_downsampled_size
    )
    assert scales[0] == (1, 1, 1)
    assert len(scales) <= max_scales
    for prev, cur in zip(scales, scales[1:]):
        step = [c // p for p, c in zip(prev, cur)]
        assert all(c == p * s for p, c, s in zip(prev, cur, step))
        assert set(step) <= {1, 2} and 2 in step  # every step halves something, nothing more
        assert all(step[d] == 1 for d in range(3) if d not in dims)  # only the allowed axes
        # a step is only taken while some downsampled axis is still larger than the target
        assert max(size[d] / prev[d] for d in dims) > max_downsampled_size
        # the finest allowed axis is always halved
        vox = [v * p for v, p in zip(voxel, prev)]
        finest = min(dims, key=lambda d: vox[d])
        assert step[finest] == 2
        # another axis halves too exactly when its voxels are below 4/3 of the finest
        # (then doubling brings it closer to the finest doubled); exact in binary here
        for d in dims:
            if d != finest:
                assert (step[d] == 2) == (3 * vox[d] < 4 * vox[finest])
    # a step is only taken from a scale whose product is still below max_downsampling
    assert all(math.prod(prev) < max_downsampling for prev in scales[:-1])


# ---------------------------------------------------------------------------------------
# two-dimensional and plane series


@pytest.mark.parametrize(
    "size, voxel, kwargs, expected",
    [
        # x,y halve together; 1024/8 = 128.
        ((1024, 1024, 100), (4, 4, 40), {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # z never halves even when it is the finest axis.
        ((1024, 1024, 1024), (40, 40, 4), {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # no product cap: 4096/32 = 128 stops it; z stays 1 although (32,32,40)-style voxels would halve z in 3-d.
        (
            (4096, 4096, 4096),
            (4, 4, 40),
            {"max_downsampling": INF},
            [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1), (16, 16, 1), (32, 32, 1)],
        ),
        # anisotropic in x,y: (4,8): x alone first (8 is not closer to 8 when doubled), then
        # both; at (8,4,1) the product 32 is still below 64 and y (1024/4) above 128, so one
        # more step to (16,8,1), after which the product 128 stops the series.
        ((1024, 1024, 10), (4, 8, 40), {}, [(1, 1, 1), (2, 1, 1), (4, 2, 1), (8, 4, 1), (16, 8, 1)]),
        # 2-d size and voxel size are extended with z = 1.
        ((1024, 1024), (4, 4), {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # max_scales=3.
        ((1024, 1024, 100), (4, 4, 40), {"max_scales": 3}, [(1, 1, 1), (2, 2, 1), (4, 4, 1)]),
    ],
)
def test_two_dimensional_table(size, voxel, kwargs, expected):
    assert dss.compute_two_dimensional_near_isotropic_downsampling_scales(size, voxel, **kwargs) == expected


@pytest.mark.parametrize("size, voxel", [((1024,), (4,)), ((1, 2, 3, 4), (4, 4, 40, 1)), (5, (4, 4))])
def test_two_dimensional_rejects_wrong_axes(size, voxel):
    with pytest.raises(InvalidParameterError, match="size"):
        dss.compute_two_dimensional_near_isotropic_downsampling_scales(size, voxel)


@pytest.mark.parametrize(
    "size, axis, kwargs, expected",
    [
        # 1024 → 512 → 256 → 128 in x,y.
        ((1024, 1024, 100), "z", {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # preserve x: halve y,z.
        ((100, 1024, 1024), "x", {}, [(1, 1, 1), (1, 2, 2), (1, 4, 4), (1, 8, 8)]),
        # preserve y: its extent counts as z's (256); the smallest plane extent decides:
        # floor(log2(256 / 128)) = 1 downsample.
        ((512, 7, 256), "y", {}, [(1, 1, 1), (2, 1, 2)]),
        # preserve z: z counts as x (2048); y = 300 decides: floor(log2(300/128)) = 1.
        ((2048, 300, 20), "z", {}, [(1, 1, 1), (2, 2, 1)]),
        # the reference's recorded series: 2048 / 128 = 16 ⇒ 4 downsamples (16 ≤ 64).
        ((2048, 2048, 512), "z", {}, [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1), (16, 16, 1)]),
        # 16384 / 128 = 128 ⇒ 7 downsamples, but no per-axis factor above 64: six.
        ((16384, 16384, 1), "z", {}, [(1, 1, 1)] + [(2**i, 2**i, 1) for i in range(1, 7)]),
        # already small: nothing to do (64 / 128 < 1).
        ((128, 64, 5000), "z", {}, [(1, 1, 1)]),
        # max_scales caps the number of downsamples: 2 of the 4.
        ((2048, 2048, 20), "z", {"max_scales": 2}, [(1, 1, 1), (2, 2, 1), (4, 4, 1)]),
        # an empty axis: the identity only (the reference does not refuse it).
        ((0, 2048, 512), "z", {}, [(1, 1, 1)]),
    ],
)
def test_plane_table(size, axis, kwargs, expected):
    assert dss.compute_plane_downsampling_scales(size, axis, **kwargs) == expected


def test_plane_rejects_unknown_axis():
    with pytest.raises(InvalidParameterError, match="axis"):
        dss.compute_plane_downsampling_scales((1024, 1024, 10), "w")


def test_plane_rejects_unbounded_size():
    with pytest.raises(InvalidParameterError, match="max_downsampled_size"):
        dss.compute_plane_downsampling_scales((1024, 1024, 10), "z", max_downsampled_size=0)


# ---------------------------------------------------------------------------------------
# axis_to_factor


@pytest.mark.parametrize("axis, expected", [("x", (1, 2, 2)), ("y", (2, 1, 2)), ("z", (2, 2, 1)), ("Z", (2, 2, 1))])
def test_axis_to_factor(axis, expected):
    assert tuple(dss.axis_to_factor(axis)) == expected


@pytest.mark.parametrize("axis", ["w", "", "xy", None, 2])
def test_axis_to_factor_rejects(axis):
    with pytest.raises(InvalidParameterError, match="axis must be one of"):
        dss.axis_to_factor(axis)


# ---------------------------------------------------------------------------------------
# compute_factors


BIG = (100_000, 100_000, 10_000)


@pytest.mark.parametrize(
    "ds_shape, factor, chunk, volume, levels",
    [
        # 512 → 256, 128, 64 are multiples of 64; 32 is not.
        ((512, 512, 64), (2, 2, 1), (64, 64, 64), BIG, 3),
        # 1024 over 128 chunks: 512, 256, 128.
        ((1024, 1024, 64), (2, 2, 1), (128, 128, 64), BIG, 3),
        # isotropic 512³ over 64³: three levels.
        ((512, 512, 512), (2, 2, 2), (64, 64, 64), BIG, 3),
        # z=64 halves to 32, not a multiple of 64, and the task does not span z: none.
        ((512, 512, 64), (2, 2, 2), (64, 64, 64), BIG, 0),
        # spanning z does not help: the 64-voxel z is one chunk, and halving it would leave
        # less than a chunk while x,y still span 8 chunks: none.
        ((512, 512, 64), (2, 2, 2), (64, 64, 64), (100_000, 100_000, 64), 0),
        # a shape that is not a multiple of chunk·factor: 96/2 = 48.
        ((96, 96, 64), (2, 2, 1), (64, 64, 64), BIG, 0),
        # 192/2 = 96 = 3·32 tiles, 192/4 = 48 does not.
        ((192, 192, 64), (2, 2, 1), (32, 32, 64), BIG, 1),
        # an axis with factor 1 never limits (z = 50 is not a chunk multiple).
        ((128, 128, 50), (2, 2, 1), (64, 64, 64), BIG, 1),
        # x spans the volume (2048 ≥ 1500), y decides: 128, 64 tile, 32 does not.
        ((2048, 256, 64), (2, 2, 1), (64, 64, 64), (1500, 10_000, 100), 2),
        # the task spans x,y entirely: 100 voxels are 1.56 chunks; 50 fits in one chunk, so
        # one level (the top of a pyramid is a single chunk, never less).
        ((128, 128, 16), (2, 2, 1), (64, 64, 16), (100, 100, 10), 1),
        # the reference's recorded layers (one task spans x,y): 2048/128 = 16 chunks ⇒ 4 levels,
        # the last one chunk; 600/64 = 9.4 ⇒ 3 levels spanning whole chunks, and 38 voxels fit one
        # chunk ⇒ 4; 333×777 over 32: 10.4 and 24.3 ⇒ 3, and 21×49 neither fills nor fits a chunk.
        ((8192, 8192, 16), (2, 2, 1), (128, 128, 16), (2048, 2048, 128), 4),
        ((4096, 4096, 64), (2, 2, 1), (64, 64, 64), (600, 600, 200), 4),
        ((8192, 8192, 16), (2, 2, 1), (32, 32, 16), (333, 777, 55), 3),
        # factor 2,2,2: z limits. 200/64 = 3.1 chunks ⇒ 1 level (2 would leave 50 < 64 while x,y
        # are 150); 1000/100 everywhere = 10 ⇒ 3 + the one-chunk top; 128/16 = 8 ⇒ 3, and the
        # z of level 3 is exactly one chunk, so no extra level.
        ((1024, 1024, 1024), (2, 2, 2), (64, 64, 64), (600, 600, 200), 1),
        ((1600, 1600, 160), (2, 2, 2), (100, 100, 10), (1000, 1000, 100), 4),
        ((2048, 2048, 256), (2, 2, 2), (128, 128, 16), (2048, 2048, 128), 3),
        # the odd factor 3: 576/3 = 192, /9 = 64, /27 not integer.
        ((576, 576, 64), (3, 3, 1), (64, 64, 64), BIG, 2),
        # preserve x: y,z halve, 256 → 128 → 64 (chunk 64).
        ((100, 256, 256), (1, 2, 2), (64, 64, 64), BIG, 2),
        # a one-voxel volume has nothing to downsample even though the task spans it.
        ((64, 64, 64), (2, 2, 1), (64, 64, 64), (1, 1, 1), 0),
    ],
)
def test_compute_factors_table(ds_shape, factor, chunk, volume, levels):
    assert dss.compute_factors(ds_shape, factor, chunk, volume) == [tuple(factor)] * levels


@pytest.mark.parametrize(
    "args, match",
    [
        (((512, 512, 64), (1, 1, 1), (64, 64, 64), BIG), "factor"),  # nothing shrinks
        (((512, 512, 64), (2, 0, 1), (64, 64, 64), BIG), "factor"),  # zero factor
        (((512, 512, 64), (2, 2, 1), (64, 0, 64), BIG), "chunk_size"),  # zero chunk
        (((512, -512, 64), (2, 2, 1), (64, 64, 64), BIG), "ds_shape"),  # negative shape
        (((512, 512), (2, 2, 1), (64, 64, 64), BIG), "ds_shape"),  # two axes
        (((512, 512, 64), (2, 2, 1), (64, 64, 64), (0, 10, 10)), "volume_size"),  # empty volume
        (((512.5, 512, 64), (2, 2, 1), (64, 64, 64), BIG), "ds_shape"),  # fractional shape
    ],
)
def test_compute_factors_rejects(args, match):
    with pytest.raises(InvalidParameterError, match=match):
        dss.compute_factors(*args)


def _level_ok(ds_shape, factor, chunk, volume, k, last: bool) -> bool:
    """Restated definition of level k: whole chunks of every task on shared axes; every axis
    still spans a whole chunk, or (the last level only) the level fits in one chunk while the
    one below it was above a chunk on every axis."""
    axes = [d for d in range(3) if factor[d] > 1]
    for d in axes:
        s, f, c, v = ds_shape[d], factor[d], chunk[d], volume[d]
        if s < v and (s % f**k or (s // f**k) % c):
            return False
    r = {d: Fraction(min(ds_shape[d], volume[d]), chunk[d]) for d in axes}
    spans = all(r[d] >= factor[d] ** k for d in axes)
    top = all(factor[d] ** (k - 1) < r[d] <= factor[d] ** k for d in axes)
    return spans or (last and top)


@settings(max_examples=300, deadline=None)
@given(
    chunk=st.tuples(*[st.sampled_from([1, 8, 16, 32, 64, 100, 128])] * 3),
    mult=st.tuples(*[st.integers(1, 64)] * 3),
    factor=st.sampled_from([(2, 2, 1), (2, 2, 2), (1, 2, 2), (2, 1, 2), (3, 3, 1), (4, 4, 1)]),
    volume=st.tuples(*[st.integers(1, 20_000)] * 3),
)
def test_compute_factors_consistent_with_chunks(chunk, mult, factor, volume):
    ds_shape = tuple(c * m for c, m in zip(chunk, mult))
    levels = len(dss.compute_factors(ds_shape, factor, chunk, volume))
    for k in range(1, levels + 1):
        assert _level_ok(ds_shape, factor, chunk, volume, k, last=k == levels)
    assert not _level_ok(ds_shape, factor, chunk, volume, levels + 1, last=True)
    # no two levels are single chunks on every downsampled axis: the pyramid stops at one chunk
    if levels >= 2:
        prev = [-(-min(s, v) // f ** (levels - 1)) for s, v, f in zip(ds_shape, volume, factor)]
        assert any(p > c for p, c, f in zip(prev, chunk, factor) if f > 1)


# ---------------------------------------------------------------------------------------
# compute_scales (on a layer)


@pytest.mark.parametrize(
    "shape, axis, factor, chunk_size, expected",
    [
        # chunk (64,64,16): 256 → 128 → 64; z unchanged.
        ((256, 256, 16), "z", None, None, [(1, 1, 1), (2, 2, 1), (4, 4, 1)]),
        # a 32,32,8 chunk allows one more level: 256/8 = 32.
        ((256, 256, 16), "z", None, (32, 32, 8), [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 8, 1)]),
        # factor wins over axis: z's 30 voxels are less than two 16-voxel chunks, so halving z
        # would leave less than a chunk while x,y still span 4: no level.
        ((256, 256, 32), "z", (2, 2, 2), None, [(1, 1, 1)]),
        # with 8-voxel z chunks (3.75 of them) level 1 spans whole chunks; level 2 (z 7.5, x,y
        # 64 of the task) is within one chunk on every axis, the top: two levels.
        ((256, 256, 32), "z", (2, 2, 2), (64, 64, 8), [(1, 1, 1), (2, 2, 2), (4, 4, 4)]),
        # shape not tileable: only the identity.
        ((96, 96, 16), "z", None, None, [(1, 1, 1)]),
    ],
)
def test_compute_scales(tmp_path, shape, axis, factor, chunk_size, expected):
    vol = CloudVolume(make_info_layer(tmp_path), progress=False)
    assert dss.compute_scales(vol, 0, shape, axis, factor, chunk_size) == expected


# ---------------------------------------------------------------------------------------
# create_downsample_scales


def test_create_downsample_scales_anisotropic_offset_uneven(tmp_path):
    # 1000x700x30 at 4x4x40 nm, offset (3,5,7), chunk 64x64x16; task 256x256x16:
    # 256/2 = 128 and 256/4 = 64 tile 64-chunks, 256/8 = 32 does not ⇒ two levels.
    path = make_info_layer(tmp_path)
    vol = dss.create_downsample_scales(path, 0, (256, 256, 16))
    scales = stored_info(path)["scales"]
    assert vol.info["scales"] == scales
    assert [s["key"] for s in scales] == ["4_4_40", "8_8_40", "16_16_40"]
    assert [s["resolution"] for s in scales] == [[4, 4, 40], [8, 8, 40], [16, 16, 40]]
    # sizes round up (700/4 = 175, 1000/4 = 250), offsets round down (5/2 → 2, 3/4 → 0)
    assert [s["size"] for s in scales] == [[1000, 700, 30], [500, 350, 30], [250, 175, 30]]
    assert [s["voxel_offset"] for s in scales] == [[3, 5, 7], [1, 2, 7], [0, 1, 7]]
    assert [s["chunk_sizes"] for s in scales] == [[[64, 64, 16]]] * 3
    assert [s["encoding"] for s in scales] == ["raw"] * 3


def test_create_downsample_scales_custom_chunk_size(tmp_path):
    # chunk 32x32x8: 128, 64, 32 tile, 16 does not ⇒ three levels; 700/8 = 87.5 → 88.
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16), chunk_size=(32, 32, 8))
    scales = stored_info(path)["scales"]
    assert [s["resolution"] for s in scales[1:]] == [[8, 8, 40], [16, 16, 40], [32, 32, 40]]
    assert scales[3]["size"] == [125, 88, 30]
    assert scales[3]["voxel_offset"] == [0, 0, 7]
    assert [s["chunk_sizes"] for s in scales] == [[[64, 64, 16]]] + [[[32, 32, 8]]] * 3


def test_create_downsample_scales_preserve_wins_over_chunk_size(tmp_path):
    # preserve_chunk_size keeps mip 0's 64x64x16 (two levels, as in the first test).
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16), preserve_chunk_size=True, chunk_size=(32, 32, 8))
    scales = stored_info(path)["scales"]
    assert len(scales) == 3
    assert [s["chunk_sizes"] for s in scales] == [[[64, 64, 16]]] * 3


def test_create_downsample_scales_max_mips(tmp_path):
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16), max_mips=1)
    assert [s["key"] for s in stored_info(path)["scales"]] == ["4_4_40", "8_8_40"]


def test_create_downsample_scales_volumetric_factor(tmp_path):
    # factor 2,2,2 with a task 32 deep over 8-voxel z chunks: z=30 is 3.75 chunks, x,y 4 chunks
    # of the task: level 1 spans whole chunks, level 2 (z 7.5, x,y 64) fits one chunk ⇒ two
    # levels. z: 30 → 15 → 8, offset 7 → 3 → 1.
    path = make_info_layer(tmp_path, chunk_size=(64, 64, 8))
    dss.create_downsample_scales(path, 0, (256, 256, 32), factor=(2, 2, 2))
    scales = stored_info(path)["scales"]
    assert [s["resolution"] for s in scales] == [[4, 4, 40], [8, 8, 80], [16, 16, 160]]
    assert [s["size"][2] for s in scales] == [30, 15, 8]
    assert [s["voxel_offset"][2] for s in scales] == [7, 3, 1]


def test_create_downsample_scales_axis_x(tmp_path):
    # axis 'x' ⇒ factor (1,2,2); layer 300x512x256 with 64³ chunks, task 64x256x256:
    # y: 128, 64 tile the task; z spans 4 chunks; a third level would leave y 32 < 64 ⇒ two.
    path = make_info_layer(tmp_path, size=(300, 512, 256), voxel_offset=(0, 0, 0), chunk_size=(64, 64, 64))
    dss.create_downsample_scales(path, 0, (64, 256, 256), axis="x")
    scales = stored_info(path)["scales"]
    assert [s["resolution"] for s in scales] == [[4, 4, 40], [4, 8, 80], [4, 16, 160]]
    assert [s["size"] for s in scales] == [[300, 512, 256], [300, 256, 128], [300, 128, 64]]


def test_create_downsample_scales_from_higher_mip_updates_existing(tmp_path):
    # mip 0 → levels 8_8_40 and 16_16_40; then from mip 1 with chunk 32x32x8 a task
    # of 128x128x16 gives 64, 32 ⇒ two levels: 16_16_40 exists (kept, re-chunked), 32_32_40 is new.
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16))
    vol = dss.create_downsample_scales(path, 1, (128, 128, 16), chunk_size=(32, 32, 8))
    scales = stored_info(path)["scales"]
    assert vol.mip == 1
    assert [s["key"] for s in scales] == ["4_4_40", "8_8_40", "16_16_40", "32_32_40"]
    assert [s["chunk_sizes"] for s in scales] == [[[64, 64, 16]], [[64, 64, 16]], [[32, 32, 8]], [[32, 32, 8]]]
    # the new level's size/offset come from mip 0 (÷8): 1000/8 = 125, 700/8 = 87.5 → 88
    assert scales[3]["size"] == [125, 88, 30]
    assert scales[3]["voxel_offset"] == [0, 0, 7]


def test_existing_scale_keeps_key_size_offset_and_loses_stale_sharding(tmp_path):
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16), max_mips=1)

    def customise(info):
        info["scales"][1].update(
            key="custom",
            size=[499, 350, 30],
            voxel_offset=[2, 2, 7],
            sharding={"@type": "neuroglancer_uint64_sharded_v1"},
        )

    edit_info(path, customise)
    dss.create_downsample_scales(path, 0, (256, 256, 16), max_mips=1, chunk_size=(32, 32, 16))
    scales = stored_info(path)["scales"]
    assert len(scales) == 2  # not duplicated
    assert scales[1]["key"] == "custom"
    assert scales[1]["size"] == [499, 350, 30]
    assert scales[1]["voxel_offset"] == [2, 2, 7]
    assert scales[1]["chunk_sizes"] == [[32, 32, 16]]
    assert "sharding" not in scales[1]


def test_create_downsample_scales_encoding(tmp_path):
    # new levels get the requested encoding; mip 0 keeps its own
    path = make_info_layer(tmp_path)
    dss.create_downsample_scales(path, 0, (256, 256, 16), encoding="png")
    assert [s["encoding"] for s in stored_info(path)["scales"]] == ["raw", "png", "png"]


def test_create_downsample_scales_compressed_segmentation(tmp_path):
    # the alias 'cseg' is accepted and the block size written
    path = make_info_layer(tmp_path, data_type="uint32", layer_type="segmentation")
    dss.create_downsample_scales(path, 0, (256, 256, 16), encoding="cseg", max_mips=1)
    scale = stored_info(path)["scales"][1]
    assert scale["encoding"] == "compressed_segmentation"
    assert list(scale["compressed_segmentation_block_size"]) == [8, 8, 8]


def test_create_downsample_scales_inherits_encoding_parameters(tmp_path):
    # a jpeg layer at quality 93: the new level is jpeg at quality 93 too
    path = make_info_layer(tmp_path, encoding="jpeg")
    edit_info(path, lambda info: info["scales"][0].update(jpeg_quality=93))
    dss.create_downsample_scales(path, 0, (256, 256, 16), max_mips=1)
    scale = stored_info(path)["scales"][1]
    assert scale["encoding"] == "jpeg"
    assert scale["jpeg_quality"] == 93


def test_create_downsample_scales_float_resolution_is_rounded(tmp_path):
    # 1.1 nm × 3 is 3.3000000000000003 in binary; the key must read 3.3.
    # task 192 with factor 3,3,1 over 64 chunks: 64 tiles, 64/3 does not ⇒ one level.
    path = make_info_layer(tmp_path, size=(600, 600, 10), resolution=(1.1, 1.1, 2.5), voxel_offset=(0, 0, 0))
    dss.create_downsample_scales(path, 0, (192, 192, 16), factor=(3, 3, 1))
    scale = stored_info(path)["scales"][1]
    assert scale["resolution"] == [3.3, 3.3, 2.5]
    assert scale["key"] == "3.3_3.3_2.5"
    assert scale["size"] == [200, 200, 10]


def test_create_downsample_scales_no_mips_is_an_error_and_writes_nothing(tmp_path):
    path = make_info_layer(tmp_path)
    before = stored_info(path)
    with pytest.raises(InvalidParameterError, match=r"ds_shape \(100, 100, 16\) yields no downsample"):
        dss.create_downsample_scales(path, 0, (100, 100, 16))
    assert stored_info(path) == before


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_mips": 0}, "max_mips"),
        ({"max_mips": -2}, "max_mips"),
        ({"factor": (1, 1, 1)}, "factor"),
        ({"axis": "q"}, "axis"),
        ({"chunk_size": (0, 64, 16)}, "chunk_size"),
        ({"encoding": "gif"}, "encoding"),
        ({"mip": 3}, "mip"),
    ],
)
def test_create_downsample_scales_rejects(tmp_path, kwargs, match):
    path = make_info_layer(tmp_path)
    before = stored_info(path)
    kwargs = {"mip": 0, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        dss.create_downsample_scales(path, ds_shape=(256, 256, 16), **kwargs)
    assert stored_info(path) == before


def test_create_downsample_scales_missing_layer(tmp_path):
    with pytest.raises(InvalidParameterError, match="no Precomputed layer"):
        dss.create_downsample_scales("file://" + str(tmp_path / "nothing"), 0, (256, 256, 16))


def test_create_downsample_scales_refuses_conflicting_existing_scale(tmp_path):
    # scale 1 exists at 8,8,80; a 2,2,1 pyramid needs 8,8,40 there
    path = make_info_layer(tmp_path, chunk_size=(64, 64, 8))
    dss.create_downsample_scales(path, 0, (256, 256, 32), factor=(2, 2, 2), max_mips=1)
    before = stored_info(path)
    with pytest.raises(InvalidParameterError, match=r"scale 1 has resolution \[8, 8, 80\]"):
        dss.create_downsample_scales(path, 0, (256, 256, 16))
    assert stored_info(path) == before


def test_create_downsample_scales_refuses_non_multiple_mip_resolution(tmp_path):
    # mip 1 at 5,5,40 over mip 0 at 4,4,40: 10/4 is not whole, CloudVolume cannot express it
    path = make_info_layer(tmp_path)

    def add_odd_scale(info):
        odd = dict(info["scales"][0], key="5_5_40", resolution=[5, 5, 40], size=[800, 560, 30])
        info["scales"].append(odd)

    edit_info(path, add_odd_scale)
    with pytest.raises(InvalidParameterError, match="whole multiple of mip 0"):
        dss.create_downsample_scales(path, 1, (256, 256, 16))


# ---------------------------------------------------------------------------------------
# add_scales


def test_add_scales_adds_exactly_num_mips_without_committing(tmp_path):
    # add_scales does not check task tiling: 5 levels even though a 64-chunk layer would
    # only shrink to 1000/32 ≈ 32 voxels wide.
    path = make_info_layer(tmp_path)
    vol = dss.add_scales(path, 0, 5)
    assert [s["resolution"] for s in vol.info["scales"]] == [[4 * 2**k, 4 * 2**k, 40] for k in range(6)]
    assert vol.info["scales"][5]["size"] == [32, 22, 30]  # 1000/32 = 31.25 → 32, 700/32 = 21.9 → 22
    assert vol.info["scales"][5]["voxel_offset"] == [0, 0, 7]
    assert len(stored_info(path)["scales"]) == 1  # caller commits
    vol.commit_info()
    assert len(stored_info(path)["scales"]) == 6


def test_add_scales_factor_chunk_and_encoding(tmp_path):
    path = make_info_layer(tmp_path)
    vol = dss.add_scales(
        path, 0, 2, preserve_chunk_size=False, chunk_size=(32, 32, 8), encoding="png", factor=(2, 2, 2)
    )
    scales = vol.info["scales"]
    assert [s["key"] for s in scales] == ["4_4_40", "8_8_80", "16_16_160"]
    assert [s["chunk_sizes"] for s in scales[1:]] == [[[32, 32, 8]]] * 2
    assert [s["encoding"] for s in scales] == ["raw", "png", "png"]
    assert scales[2]["size"] == [250, 175, 8]  # 30/4 = 7.5 → 8


def test_add_scales_default_preserves_chunk_size(tmp_path):
    path = make_info_layer(tmp_path)
    vol = dss.add_scales(path, 0, 1, chunk_size=(32, 32, 8))
    assert vol.info["scales"][1]["chunk_sizes"] == [[64, 64, 16]]


def test_add_scales_above_higher_mip(tmp_path):
    path = make_info_layer(tmp_path)
    dss.add_scales(path, 0, 1).commit_info()
    vol = dss.add_scales(path, 1, 2)
    assert [s["key"] for s in vol.info["scales"]] == ["4_4_40", "8_8_40", "16_16_40", "32_32_40"]


@pytest.mark.parametrize("num_mips", [0, -1, 1.5, None])
def test_add_scales_rejects_bad_num_mips(tmp_path, num_mips):
    path = make_info_layer(tmp_path)
    with pytest.raises(InvalidParameterError, match="num_mips"):
        dss.add_scales(path, 0, num_mips)


# ---------------------------------------------------------------------------------------
# downsample_shape_from_memory_target


@pytest.mark.parametrize(
    "width, chunk, factor, target, kwargs, expected",
    [
        # 64³ uint8, f=4: 262144·4^N·4/3 ≤ 3.5e9 ⇔ 4^(N+1) ≤ 40054 ⇒ N=6 ⇒ 64·2^6 = 4096.
        (1, (64, 64, 64), (2, 2, 1), 3.5e9, {}, (4096, 4096, 64)),
        # the same capped at 5 mips.
        (1, (64, 64, 64), (2, 2, 1), 3.5e9, {"max_mips": 5}, (2048, 2048, 64)),
        # f=8: 8^(N+1) ≤ 3.5e9·7/262144 = 93460 ⇒ N=4 ⇒ 1024³.
        (1, (64, 64, 64), (2, 2, 2), 3.5e9, {}, (1024, 1024, 1024)),
        # exact boundary: 3·4^N·4/3 = 4^(N+1); 64 bytes ⇒ N=2.
        (3, (1, 1, 1), (2, 2, 1), 64, {}, (4, 4, 1)),
        # one byte less ⇒ N=1.
        (3, (1, 1, 1), (2, 2, 1), 63, {}, (2, 2, 1)),
        # f=8 boundary: 7·8^N·8/7 = 8^(N+1); 512 ⇒ N=2; 511 ⇒ N=1.
        (7, (1, 1, 1), (2, 2, 2), 512, {}, (4, 4, 4)),
        (7, (1, 1, 1), (2, 2, 2), 511, {}, (2, 2, 2)),
        # factor 1,1,1: just the chunk (262144 bytes fit).
        (1, (64, 64, 64), (1, 1, 1), 262144, {}, (64, 64, 64)),
        # only one chunk fits (349525.33 ≤ 349526 < 4·349525.33).
        (1, (64, 64, 64), (2, 2, 1), 349526, {}, (64, 64, 64)),
        # max_mips=0: the chunk, however large the budget.
        (1, (64, 64, 64), (2, 2, 1), 1e12, {"max_mips": 0}, (64, 64, 64)),
        # infinite budget with a cap.
        (1, (64, 64, 64), (2, 2, 2), INF, {"max_mips": 2}, (256, 256, 256)),
        # uint64 with 3 channels (24 bytes), chunk 128x128x16: 24·262144·4^(N+1)/3 ≤ 1e9
        # ⇔ 4^(N+1) ≤ 476.8 ⇒ N+1=4 ⇒ N=3.
        (24, (128, 128, 16), (2, 2, 1), 1e9, {}, (1024, 1024, 16)),
    ],
)
def test_downsample_shape_from_memory_target_table(width, chunk, factor, target, kwargs, expected):
    shape = dss.downsample_shape_from_memory_target(width, *chunk, factor, target, **kwargs)
    assert tuple(int(s) for s in shape) == expected
    assert all(isinstance(int(s), int) for s in shape) and len(shape) == 3


@pytest.mark.parametrize(
    "args, match",
    [
        ((1, 64, 64, 64, (2, 2, 1), 0), "byte_target"),  # zero budget
        ((1, 64, 64, 64, (2, 2, 1), -5), "byte_target"),  # negative budget
        ((1, 64, 64, 64, (2, 2, 1), float("nan")), "byte_target"),  # NaN budget
        ((1, 0, 64, 64, (2, 2, 1), 1e9), "chunk size"),  # zero chunk dimension
        ((1, 64, 64, -1, (2, 2, 1), 1e9), "chunk size"),  # negative chunk dimension
        ((0, 64, 64, 64, (2, 2, 1), 1e9), "data_width"),  # zero bytes per voxel
        ((1, 64, 64, 64, (2, 1, 2), 1e9), "factor"),  # supported by ds-shape, not here
        ((1, 64, 64, 64, (1, 2, 2), 1e9), "factor"),
        ((1, 64, 64, 64, (3, 3, 1), 1e9), "factor"),
        ((1, 64, 64, 64, (2, 2, 1), INF), "finite"),  # nothing bounds the search
    ],
)
def test_downsample_shape_from_memory_target_rejects(args, match):
    with pytest.raises(InvalidParameterError, match=match):
        dss.downsample_shape_from_memory_target(*args)


def test_downsample_shape_from_memory_target_rejects_negative_max_mips():
    with pytest.raises(InvalidParameterError, match="max_mips"):
        dss.downsample_shape_from_memory_target(1, 64, 64, 64, (2, 2, 1), 1e9, max_mips=-1)


@pytest.mark.parametrize(
    "width, factor, target, needed",
    [
        # 64³·4/3 = 349525.33 ⇒ 349526 bytes needed.
        (1, (2, 2, 1), 349525, 349526),
        # 64³·8/7 = 299593.14 ⇒ 299594.
        (1, (2, 2, 2), 299593, 299594),
        # factor 1: the chunk itself, 2·262144.
        (2, (1, 1, 1), 524287, 524288),
    ],
)
def test_downsample_shape_from_memory_target_too_small_names_minimum(width, factor, target, needed):
    with pytest.raises(InvalidParameterError, match=f"at least {needed} bytes"):
        dss.downsample_shape_from_memory_target(width, 64, 64, 64, factor, target)


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 16),
    chunk=st.tuples(*[st.integers(1, 256)] * 3),
    factor=st.sampled_from([(2, 2, 1), (2, 2, 2), (1, 1, 1)]),
    target=st.integers(1, 10**12),
    max_mips=st.sampled_from([0, 1, 3, INF]),
)
def test_downsample_shape_fits_and_is_largest(width, chunk, factor, target, max_mips):
    if memory(width, chunk, factor) > target:
        with pytest.raises(InvalidParameterError, match="at least"):
            dss.downsample_shape_from_memory_target(width, *chunk, factor, target, max_mips=max_mips)
        return
    shape = tuple(int(s) for s in dss.downsample_shape_from_memory_target(width, *chunk, factor, target, max_mips))
    grow = (2, 2, 1) if factor == (1, 1, 1) else factor  # a plain copy grows in x,y
    ratios = {s // c for s, c, g in zip(shape, chunk, grow) if g > 1}
    assert all(s % c == 0 for s, c in zip(shape, chunk))
    assert all(s == c for s, c, g in zip(shape, chunk, grow) if g == 1)
    assert len(ratios) <= 1  # every downsampled axis grows by the same power of two
    mips = int(math.log2(ratios.pop())) if ratios else 0
    assert mips <= max_mips
    assert memory(width, shape, factor) <= target
    if mips < max_mips:
        larger = tuple(s * g for s, g in zip(shape, grow))
        assert memory(width, larger, factor) > target


# ---------------------------------------------------------------------------------------
# num_mips_from_memory_target


@pytest.mark.parametrize(
    "target, dtype, chunk, channels, factor, expected",
    [
        # uint8 64³, f=4: 4^(N+1) ≤ 40054 ⇒ 6.
        (3.5e9, "uint8", (64, 64, 64), 1, (2, 2, 1), 6),
        # uint64: 8·262144·4^(N+1)/3 ≤ 3.5e9 ⇔ 4^(N+1) ≤ 5006.8 ⇒ N+1=6 ⇒ 5.
        (3.5e9, np.uint64, (64, 64, 64), 1, (2, 2, 1), 5),
        # float32 × 3 channels, 128x128x64: 12·2^20·4^(N+1)/3 ≤ 3.5e9 ⇔ 4^(N+1) ≤ 834.5 ⇒ N=3.
        (3.5e9, "float32", (128, 128, 64), 3, (2, 2, 1), 3),
        # f=8: 8^(N+1) ≤ 93460 ⇒ N=4.
        (3.5e9, "uint8", (64, 64, 64), 1, (2, 2, 2), 4),
        # factor 2,1,2 has f=4 like 2,2,1.
        (3.5e9, "uint8", (64, 64, 64), 1, (2, 1, 2), 6),
        # exactly one level: 262144·16/3 = 1398101.33 ≤ 1398102.
        (1398102, "uint8", (64, 64, 64), 1, (2, 2, 1), 1),
        # exact boundary (3 bytes × 1 voxel): 4^(N+1) ≤ 64 ⇒ 2.
        (64, np.dtype("uint8"), (1, 1, 1), 3, (2, 2, 1), 2),
    ],
)
def test_num_mips_from_memory_target_table(target, dtype, chunk, channels, factor, expected):
    assert dss.num_mips_from_memory_target(target, dtype, chunk, channels, factor) == expected


@pytest.mark.parametrize(
    "args, match",
    [
        # one level needs 1398101.33 bytes
        ((1e6, "uint8", (64, 64, 64), 1, (2, 2, 1)), "at least 1398102 bytes"),
        ((0, "uint8", (64, 64, 64), 1, (2, 2, 1)), "memory_target"),
        ((INF, "uint8", (64, 64, 64), 1, (2, 2, 1)), "memory_target"),
        ((1e9, "uint8", (64, 64, 64), 1, (1, 1, 1)), "factor"),
        ((1e9, "uint8", (64, 0, 64), 1, (2, 2, 1)), "chunk_size"),
        ((1e9, "uint8", (64, 64, 64), 0, (2, 2, 1)), "num_channels"),
        ((1e9, "not-a-dtype", (64, 64, 64), 1, (2, 2, 1)), "dtype"),
    ],
)
def test_num_mips_from_memory_target_rejects(args, match):
    with pytest.raises(InvalidParameterError, match=match):
        dss.num_mips_from_memory_target(*args)


@settings(max_examples=200, deadline=None)
@given(
    itemsize=st.sampled_from([("uint8", 1), ("uint16", 2), ("float32", 4), ("uint64", 8)]),
    channels=st.integers(1, 4),
    chunk=st.tuples(*[st.integers(1, 128)] * 3),
    factor=st.sampled_from([(2, 2, 1), (2, 2, 2)]),
    target=st.integers(10**6, 10**11),
)
def test_num_mips_agrees_with_shape_search(itemsize, channels, chunk, factor, target):
    dtype, size = itemsize
    width = size * channels
    if memory(width, [c * f for c, f in zip(chunk, factor)], factor) > target:
        with pytest.raises(InvalidParameterError):
            dss.num_mips_from_memory_target(target, dtype, chunk, channels, factor)
        return
    mips = dss.num_mips_from_memory_target(target, dtype, chunk, channels, factor)
    shape = dss.downsample_shape_from_memory_target(width, *chunk, factor, target)
    assert tuple(int(s) for s in shape) == tuple(c * f**mips for c, f in zip(chunk, factor))


def test_public_names():
    assert set(dss.__all__) >= {
        "scale_series_to_downsample_factors",
        "compute_near_isotropic_downsampling_scales",
        "compute_two_dimensional_near_isotropic_downsampling_scales",
        "compute_plane_downsampling_scales",
        "compute_factors",
        "axis_to_factor",
        "compute_scales",
        "create_downsample_scales",
        "add_scales",
        "downsample_shape_from_memory_target",
        "num_mips_from_memory_target",
    }
    assert all(hasattr(dss, name) for name in dss.__all__)
