# Copyright the Igneous authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     https://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
#
# The near-isotropic scale arithmetic (compute_near_isotropic_downsampling_scales and
# compute_two_dimensional_near_isotropic_downsampling_scales) is derived from
# Neuroglancer's python/neuroglancer/downsample_scales.py, Copyright 2016 Google Inc.,
# licensed under the Apache License, Version 2.0.
"""Scale and task-shape arithmetic for image pyramids (SPEC §2.5, the reference's rules).

Two kinds of question are answered here, all pure arithmetic apart from the two SPEC
functions that edit a layer's ``info`` (:func:`create_downsample_scales`, :func:`add_scales`,
which delegate the editing to :mod:`igneous.scales`):

* *Which scales?* Neuroglancer-style scale series (near-isotropic, two-dimensional,
  plane), and the per-step factors between them.
* *How big a task, and how many levels?* How many pyramid levels a task writes
  (:func:`compute_factors`), and how many levels or how large a task fits a memory budget
  (:func:`num_mips_from_memory_target`, :func:`downsample_shape_from_memory_target`).

How many levels (the rule the reference Igneous plans by, made exact): with ``r`` the
chunks per downsampled axis that one task covers (its shape clipped to the volume, divided
by the chunk size), levels go on while every axis still spans at least one whole chunk,
plus one last level when that one fits in a single chunk on every axis. So a 2048² layer in
128² chunks gets 4 levels (the last one chunk), 600² in 64² gets 4 (the last 38², one
chunk), 333×777 in 32² gets 3 (a fourth, 21×49, would neither fill a chunk nor fit in one).
Levels below a chunk cost files and requests and Neuroglancer never asks for them. On an
axis that several tasks share, a level must also be whole chunks of every task, so
neighbours never write the same chunk.

Memory model: a task that reads ``V`` voxels at the base level and writes ``N`` levels with a
per-level factor whose product is ``f`` holds ``V·(1 + 1/f + 1/f² + …)`` voxels, bounded by
``V·f/(f−1)``. That bound is what ``igneous design ds-shape`` prints, so a shape chosen here
never exceeds the budget by that measure.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from typing import List, Sequence, Tuple, Union

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError
from igneous.scales import add_pyramid, new_chunk_size
from igneous.validate import byte_budget, count, downsample_factor, int_vector, is_int, plain, whole
from igneous.volumes import open_volume

__all__ = [
    "DEFAULT_MAX_DOWNSAMPLING",
    "DEFAULT_MAX_DOWNSAMPLED_SIZE",
    "DEFAULT_MAX_DOWNSAMPLING_SCALES",
    "scale_series_to_downsample_factors",
    "compute_near_isotropic_downsampling_scales",
    "compute_two_dimensional_near_isotropic_downsampling_scales",
    "compute_plane_downsampling_scales",
    "axis_to_factor",
    "compute_factors",
    "compute_scales",
    "create_downsample_scales",
    "add_scales",
    "downsample_shape_from_memory_target",
    "num_mips_from_memory_target",
    "task_memory",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_DOWNSAMPLING = 64
DEFAULT_MAX_DOWNSAMPLED_SIZE = 128
DEFAULT_MAX_DOWNSAMPLING_SCALES = float("inf")

Scale = Tuple[int, ...]
Number = Union[int, float]

_AXIS_FACTORS = {"x": (1, 2, 2), "y": (2, 1, 2), "z": (2, 2, 1)}
# The memory-target shape search grows every downsampled axis of the chunk together; these
# are the factors the CLI (`design ds-memory`, `image xfer`) is specified to accept. A
# factor of 1,1,1 (a plain copy) grows x and y, as 2,2,1 does.
_MEMORY_SHAPE_FACTORS = ((1, 1, 1), (2, 2, 1), (2, 2, 2))


def _limit(value, name: str, minimum: float) -> float:
    """A number ≥ ``minimum`` (infinity allowed)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{name} must be a number >= {minimum}; got {plain(value)!r}")
    if math.isnan(value) or value < minimum:
        raise InvalidParameterError(f"{name} must be a number >= {minimum}; got {plain(value)!r}")
    return float(value)


# ---------------------------------------------------------------------------------------
# scale series (Neuroglancer)


def scale_series_to_downsample_factors(scales: Sequence[Sequence[int]]) -> List[Scale]:
    """Per-step factors of a cumulative scale series.

    Args:
        scales: cumulative scales, e.g. ``[(1,1,1), (2,2,1), (4,4,1)]``.

    Returns:
        The factor between each scale and the next, e.g. ``[(2,2,1), (2,2,1)]``;
        empty for a series of fewer than two scales.

    Raises:
        InvalidParameterError: a scale is not a whole multiple of the one before it.
    """
    scales = list(scales)
    if not scales:
        return []
    ndim = len(list(scales[0]))
    series = [int_vector(s, f"scales[{i}]", ndim) for i, s in enumerate(scales)]
    factors = []
    for i, (prev, cur) in enumerate(zip(series, series[1:]), start=1):
        if any(c % p for p, c in zip(prev, cur)):
            raise InvalidParameterError(
                f"scales[{i}] {cur} must be a whole multiple of scales[{i - 1}] {prev} on every axis"
            )
        factors.append(tuple(c // p for p, c in zip(prev, cur)))
    return factors


def _check_stopping(max_scales, max_downsampling, max_downsampled_size) -> Tuple[Number, float, float]:
    max_scales = count(max_scales, "max_scales", 1, allow_inf=True)
    max_downsampling = _limit(max_downsampling, "max_downsampling", 1)
    max_downsampled_size = _limit(max_downsampled_size, "max_downsampled_size", 0)
    if math.isinf(max_scales) and math.isinf(max_downsampling) and max_downsampled_size == 0:
        raise InvalidParameterError(
            "at least one of max_scales, max_downsampling (finite) or max_downsampled_size (> 0) must bound the series"
        )
    return max_scales, max_downsampling, max_downsampled_size


def compute_near_isotropic_downsampling_scales(
    size: Sequence[int],
    voxel_size: Sequence[float],
    dimensions_to_downsample: Sequence[int],
    max_scales: Number = DEFAULT_MAX_DOWNSAMPLING_SCALES,
    max_downsampling: Number = DEFAULT_MAX_DOWNSAMPLING,
    max_downsampled_size: Number = DEFAULT_MAX_DOWNSAMPLED_SIZE,
) -> List[Scale]:
    """Successive cumulative scales that make voxels more and more isotropic (Neuroglancer).

    Each step doubles the axis (among ``dimensions_to_downsample``) whose current voxel
    size is smallest, together with every other such axis whose voxel size doubling moves
    closer to that doubled size (i.e. voxel size below 4/3 of the smallest). Anisotropic
    EM data at 4×4×40 nm thus goes 2,2,1 → 4,4,1 → 8,8,1 and only starts halving z
    once x,y voxels approach 40 nm.

    A step is taken while the series is shorter than ``max_scales``, the current total
    downsampling (product of the scale) is below ``max_downsampling``, and some downsampled
    axis is still larger than ``max_downsampled_size`` voxels — Neuroglancer's criteria, so
    the last step may take the product past ``max_downsampling``.

    Args:
        size: voxels per axis (any number of axes).
        voxel_size: voxel size per axis (e.g. nm).
        dimensions_to_downsample: indices of the axes that may be halved.
        max_scales: maximum length of the returned list, counting the initial ``(1,…)``.
        max_downsampling: no step is taken once the product of the scale reaches this.
        max_downsampled_size: stop once every downsampled axis is at most this many voxels.

    Returns:
        Cumulative scales, starting with ``(1, 1, 1)``.

    Raises:
        InvalidParameterError: on non-positive sizes, unknown axes or unbounded criteria.
    """
    size = np.asarray(int_vector(size, "size", None), dtype=float)
    ndim = len(size)
    voxel = _positive_numbers(voxel_size, "voxel_size", ndim)
    dims = _dimensions(dimensions_to_downsample, ndim)
    max_scales, max_downsampling, max_downsampled_size = _check_stopping(
        max_scales, max_downsampling, max_downsampled_size
    )
    scale = np.ones(ndim, dtype=np.int64)
    scales = [tuple(int(s) for s in scale)]
    while (
        len(scales) < max_scales
        and math.prod(int(s) for s in scale) < max_downsampling
        and (size[dims] / scale[dims]).max() > max_downsampled_size
    ):
        current = scale * voxel
        finest = min(dims, key=lambda d: current[d])  # first of equals, like np.argmin
        target = current[finest] * 2
        step = np.ones(ndim, dtype=np.int64)
        step[finest] = 2
        for d in dims:
            if d != finest and abs(current[d] - target) > abs(current[d] * 2 - target):
                step[d] = 2
        scale = scale * step
        scales.append(tuple(int(s) for s in scale))
    return scales


def _positive_numbers(value, name: str, length: int) -> np.ndarray:
    try:
        items = np.asarray(list(value), dtype=float)
    except (TypeError, ValueError):
        items = np.array([])
    if items.shape != (length,) or not np.all(np.isfinite(items)) or np.any(items <= 0):
        raise InvalidParameterError(f"{name} must be {length} positive finite numbers; got {plain(value)!r}")
    return items


def _dimensions(dimensions, ndim: int) -> List[int]:
    try:
        dims = list(dimensions)
    except TypeError:
        dims = None
    if not dims or any(not is_int(d) or not 0 <= int(d) < ndim for d in dims) or len(set(dims)) != len(dims):
        raise InvalidParameterError(
            f"dimensions_to_downsample must be distinct axis indices in [0, {ndim - 1}]; got {plain(dimensions)!r}"
        )
    return [int(d) for d in dims]


def compute_two_dimensional_near_isotropic_downsampling_scales(
    size: Sequence[int],
    voxel_size: Sequence[float],
    max_scales: Number = DEFAULT_MAX_DOWNSAMPLING_SCALES,
    max_downsampling: Number = DEFAULT_MAX_DOWNSAMPLING,
    max_downsampled_size: Number = DEFAULT_MAX_DOWNSAMPLED_SIZE,
) -> List[Scale]:
    """Near-isotropic scales in x,y only; z is never downsampled.

    Args:
        size: voxels (x, y) or (x, y, z); z does not influence the result.
        voxel_size: voxel size (x, y) or (x, y, z).
        max_scales, max_downsampling, max_downsampled_size: as for
            :func:`compute_near_isotropic_downsampling_scales` (the size criterion looks at x,y).

    Returns:
        Cumulative ``(x, y, 1)`` scales starting with ``(1, 1, 1)``.
    """
    return compute_near_isotropic_downsampling_scales(
        _xyz(size, "size"),
        _xyz(voxel_size, "voxel_size"),
        [0, 1],
        max_scales,
        max_downsampling,
        max_downsampled_size,
    )


def _xyz(value, name: str) -> list:
    """An (x, y) or (x, y, z) sequence as (x, y, z); a missing z is 1 (it is never downsampled)."""
    try:
        items = list(value)
    except TypeError:
        items = []
    if len(items) not in (2, 3):
        raise InvalidParameterError(f"{name} must have 2 (x, y) or 3 (x, y, z) entries; got {plain(value)!r}")
    return items + [1] * (3 - len(items))


def compute_plane_downsampling_scales(
    size: Sequence[int],
    preserve_axis: str = "z",
    max_scales: Number = DEFAULT_MAX_DOWNSAMPLING_SCALES,
    max_downsampling: Number = DEFAULT_MAX_DOWNSAMPLING,
    max_downsampled_size: Number = DEFAULT_MAX_DOWNSAMPLED_SIZE,
) -> List[Scale]:
    """Factor-2 scales in the plane perpendicular to ``preserve_axis``, regardless of voxel size.

    The number of downsamples is ``floor(log2(d / max_downsampled_size))`` where ``d`` is the
    smallest extent of the plane (the preserved axis counts as a copy of the next one), at
    most ``max_scales`` downsamples, and no factor above ``max_downsampling`` per axis. A
    size with an empty axis (≤ 0) yields only the identity.

    Args:
        size: voxels (x, y, z).
        preserve_axis: 'x', 'y' or 'z', the axis never downsampled.
        max_scales: at most this many downsamples.
        max_downsampling: largest per-axis factor.
        max_downsampled_size: the smallest plane extent stays at least this large.

    Returns:
        Cumulative scales starting with ``(1, 1, 1)``, e.g. ``(2,2,1), (4,4,1), …`` for 'z'.
    """
    axis = "xyz".index(axis_to_factor_name(preserve_axis))
    try:
        extents = [float(v) for v in size]
    except (TypeError, ValueError):
        extents = []
    if len(extents) != 3:
        raise InvalidParameterError(f"size must be 3 numbers x,y,z; got {plain(size)!r}")
    max_scales = count(max_scales, "max_scales", 0, allow_inf=True)
    max_downsampling = _limit(max_downsampling, "max_downsampling", 1)
    smallest = _limit(max_downsampled_size, "max_downsampled_size", 0)
    if smallest == 0:
        raise InvalidParameterError("max_downsampled_size must be > 0")
    if min(extents) <= 0:
        return [(1, 1, 1)]
    extents[axis] = extents[(axis + 1) % 3]
    downsamples = max(0, int(math.floor(math.log2(min(extents) / smallest))))
    if not math.isinf(max_scales):
        downsamples = min(downsamples, int(max_scales))
    scales = [(1, 1, 1)]
    for i in range(1, downsamples + 1):
        f = 2**i
        if f > max_downsampling:
            break
        scale = [f, f, f]
        scale[axis] = 1
        scales.append(tuple(scale))
    return scales


def axis_to_factor_name(axis: str) -> str:
    key = axis.lower() if isinstance(axis, str) else axis
    if key not in _AXIS_FACTORS:
        raise InvalidParameterError(f"axis must be one of 'x', 'y', 'z'; got {axis!r}")
    return key


def axis_to_factor(axis: str) -> Scale:
    """The per-level factor that keeps ``axis`` at full resolution: 'z' → (2,2,1).

    Raises:
        InvalidParameterError: ``axis`` is not one of 'x', 'y', 'z'.
    """
    return _AXIS_FACTORS[axis_to_factor_name(axis)]


# ---------------------------------------------------------------------------------------
# how many levels a task writes


def compute_factors(
    ds_shape: Sequence[int], factor: Sequence[int], chunk_size: Sequence[int], volume_size: Sequence[int]
) -> List[Scale]:
    """The levels a task of ``ds_shape`` voxels writes: ``[factor] * N``.

    With ``r`` = chunks per downsampled axis covered by the task (``min(ds_shape, volume)
    / chunk``), ``N`` is the largest ``n`` with ``r ≥ f^n`` on every downsampled axis (each
    level still spans whole chunks), plus one when every axis is still above one chunk at
    ``n`` and fits in one chunk at ``n + 1`` (the top of the pyramid is a single chunk). On
    an axis several tasks share (``ds_shape < volume``), every level must also divide the
    task into whole chunks, so neighbours never write the same chunk.

    Args:
        ds_shape: task shape in voxels at the base level.
        factor: per-level downsampling factor, e.g. (2,2,1).
        chunk_size: chunk size of the downsampled scales.
        volume_size: size of the base level in voxels.

    Returns:
        ``[factor] * levels`` (as tuples); empty when not even one level is possible.
    """
    ds_shape = int_vector(ds_shape, "ds_shape")
    factor = downsample_factor(factor)
    chunk = int_vector(chunk_size, "chunk_size")
    volume = int_vector(volume_size, "volume_size")
    axes = [d for d in range(3) if factor[d] > 1]
    ratio = {d: Fraction(min(ds_shape[d], volume[d]), chunk[d]) for d in axes}

    def spans_chunks(n: int) -> bool:  # every axis of level n is at least one whole chunk
        return all(ratio[d] >= factor[d] ** n for d in axes)

    def tiles(n: int) -> bool:  # level n is whole chunks of every task on shared axes
        return all(
            ds_shape[d] >= volume[d] or (ds_shape[d] % factor[d] ** n == 0 and (ds_shape[d] // factor[d] ** n) % chunk[d] == 0)
            for d in axes
        )

    levels = 0
    while spans_chunks(levels + 1) and tiles(levels + 1):
        levels += 1
    above = all(ratio[d] > factor[d] ** levels for d in axes)
    fits = all(ratio[d] <= factor[d] ** (levels + 1) for d in axes)
    if above and fits and tiles(levels + 1):
        levels += 1
    return [tuple(factor)] * levels


def compute_scales(
    vol: CloudVolume,
    mip: int,
    shape: Sequence[int],
    axis: str,
    factor: Sequence[int] | None,
    chunk_size: Sequence[int] | None = None,
) -> List[Scale]:
    """Cumulative scales (relative to ``mip``) that a task of ``shape`` writes.

    Args:
        vol: the layer.
        mip: the base level of the pyramid.
        shape: task shape at ``mip``.
        axis: axis kept at full resolution when ``factor`` is None.
        factor: per-level factor (overrides ``axis``).
        chunk_size: chunk size of the new scales (default: the chunk size of ``mip + 1`` when
            that scale exists, else ``mip``'s).

    Returns:
        ``[(1,1,1), factor, factor², …]`` as computed by :func:`compute_factors`.
    """
    factor = axis_to_factor(axis) if factor is None else factor
    if chunk_size is None:
        underlying = mip + 1 if mip + 1 < len(vol.info["scales"]) else mip
        chunk_size = vol.meta.chunk_size(underlying)
    scales = [(1, 1, 1)]
    for f in compute_factors(shape, factor, chunk_size, vol.meta.volume_size(mip)):
        scales.append(tuple(a * b for a, b in zip(scales[-1], f)))
    return scales


# ---------------------------------------------------------------------------------------
# editing the layer's scales (the editing itself lives in igneous.scales)


def create_downsample_scales(
    layer_path: str,
    mip: int,
    ds_shape: Sequence[int],
    axis: str = "z",
    preserve_chunk_size: bool = False,
    chunk_size: Sequence[int] | None = None,
    encoding: str | None = None,
    factor: Sequence[int] | None = None,
    max_mips: int | None = None,
) -> CloudVolume:
    """Add the scales that tasks of ``ds_shape`` will write above ``mip``, and commit the info.

    As many levels are added as :func:`compute_factors` gives (capped at ``max_mips``).
    Level k gets resolution ``mip``'s × factor^k; size and voxel offset are derived from
    mip 0 by CloudVolume (ceil / floor). A level that already exists at ``scales[mip+k]``
    with that resolution keeps its key, size and offset and gets the new chunk size (and
    encoding, if given).

    Args:
        layer_path: the layer.
        mip: base level of the pyramid.
        ds_shape: task shape at ``mip``.
        axis: axis kept at full resolution when ``factor`` is None ('z' ⇒ 2,2,1).
        preserve_chunk_size: new scales use ``mip``'s chunk size (wins over ``chunk_size``).
        chunk_size: chunk size of the new scales (default: ``mip``'s).
        encoding: encoding of the new scales (default: ``mip``'s, with its parameters).
        factor: per-level factor, e.g. (2,2,2).
        max_mips: at most this many levels (≥ 1).

    Returns:
        The CloudVolume (at ``mip``) with the committed info.

    Raises:
        InvalidParameterError: before writing, if no level is possible or a parameter is invalid.
    """
    vol = open_volume(layer_path, mip)
    factor = downsample_factor(axis_to_factor(axis) if factor is None else factor)
    chunk = new_chunk_size(vol, mip, preserve_chunk_size, chunk_size)
    volume = tuple(int(v) for v in vol.meta.volume_size(mip))
    factors = compute_factors(ds_shape, factor, chunk, volume)
    if max_mips is not None:
        factors = factors[: count(max_mips, "max_mips", 1)]
    if not factors:
        raise InvalidParameterError(
            f"ds_shape {plain(ds_shape)} yields no downsample with factor {factor}: each level must be whole "
            f"{chunk} chunks of the task on each axis several tasks share, and the volume {volume} must span "
            f"at least one chunk per downsampled axis; use a multiple of chunk_size × factor"
        )
    add_pyramid(vol, mip, factors, chunk, encoding)
    vol.commit_info()
    return vol


def add_scales(
    layer_path: str,
    mip: int,
    num_mips: int,
    preserve_chunk_size: bool = True,
    chunk_size: Sequence[int] | None = None,
    encoding: str | None = None,
    factor: Sequence[int] | None = None,
) -> CloudVolume:
    """Add exactly ``num_mips`` scales above ``mip`` to the info, without committing it.

    Used by planners that finish the new scales themselves (e.g. give them a sharding
    spec) and then call ``vol.commit_info()``; nothing is written by this function.

    Args:
        layer_path: the layer.
        mip: base level.
        num_mips: number of levels (≥ 1).
        preserve_chunk_size: new scales use ``mip``'s chunk size (wins over ``chunk_size``).
        chunk_size: chunk size of the new scales when not preserved.
        encoding: encoding of the new scales (default: ``mip``'s).
        factor: per-level factor (default 2,2,1).

    Returns:
        The CloudVolume (at ``mip``) whose ``info`` holds the new scales.
    """
    vol = open_volume(layer_path, mip)
    num_mips = count(num_mips, "num_mips", 1)
    factor = downsample_factor((2, 2, 1) if factor is None else factor)
    chunk = new_chunk_size(vol, mip, preserve_chunk_size, chunk_size)
    add_pyramid(vol, mip, [factor] * num_mips, chunk, encoding)
    return vol


# ---------------------------------------------------------------------------------------
# memory


def task_memory(bytes_per_voxel: int, shape: Sequence[int], factor: Sequence[int]) -> Fraction:
    """Bytes a downsampling task of ``shape`` holds with all its outputs: ``V·f/(f−1)``.

    ``f`` is the product of ``factor``; for a plain copy (``f == 1``) it is the cutout alone.
    The one memory model of planners and ``igneous design``.
    """
    f = math.prod(int(v) for v in factor)
    voxels = Fraction(int(bytes_per_voxel) * math.prod(int(v) for v in shape))
    return voxels * (Fraction(f, f - 1) if f > 1 else 1)


def _growth(factor: Scale) -> Scale:
    """How a task shape grows per step: by the factor, or by 2,2,1 for a plain copy."""
    return (2, 2, 1) if max(factor) == 1 else factor


def downsample_shape_from_memory_target(
    data_width: int,
    cx: int,
    cy: int,
    cz: int,
    factor: Sequence[int],
    byte_target: Number,
    max_mips: Number = math.inf,
) -> Vec:
    """The largest task shape ``chunk × factor^N`` whose memory fits ``byte_target``.

    Memory is ``data_width · x·y·z · f/(f−1)`` with f the product of ``factor`` (input
    plus every downsampled output). For factor (1,1,1) (a copy without downsamples) the
    shape grows in x and y (``chunk × (2^N, 2^N, 1)``) and memory is the cutout alone.

    Args:
        data_width: bytes per voxel (itemsize × channels).
        cx, cy, cz: chunk size.
        factor: (1,1,1), (2,2,1) or (2,2,2).
        byte_target: memory budget per task in bytes.
        max_mips: at most this many doublings (N ≤ max_mips).

    Returns:
        ``Vec(cx·gx^N, cy·gy^N, cz·gz^N)`` as Python ints.

    Raises:
        InvalidParameterError: unsupported factor, non-positive budget/width/chunk, or a
            budget too small for a one-chunk task (the message gives the minimum).
    """
    width = whole(data_width, "data_width", 1)
    chunk = int_vector((cx, cy, cz), "chunk size (cx, cy, cz)")
    factor = int_vector(factor, "factor")
    if factor not in _MEMORY_SHAPE_FACTORS:
        raise InvalidParameterError(f"factor must be one of (1,1,1), (2,2,1), (2,2,2); got {factor}")
    budget = byte_budget(byte_target, "byte_target", allow_inf=True)
    max_mips = count(max_mips, "max_mips", 0, allow_inf=True)
    needed = task_memory(width, chunk, factor)
    if needed > budget:
        raise InvalidParameterError(
            f"byte_target {plain(byte_target)} cannot hold one {chunk} chunk task; at least {math.ceil(needed)} "
            "bytes needed"
        )
    if math.isinf(budget) and math.isinf(max_mips):
        raise InvalidParameterError("byte_target or max_mips must be finite")
    grow = _growth(factor)
    mips = 0
    while mips < max_mips and task_memory(width, [c * g ** (mips + 1) for c, g in zip(chunk, grow)], factor) <= budget:
        mips += 1
    return Vec(*(c * g**mips for c, g in zip(chunk, grow)))


def num_mips_from_memory_target(
    memory_target: Number, dtype, chunk_size: Sequence[int], num_channels: int, factor: Sequence[int]
) -> int:
    """How many levels a ``chunk_size × factor^N`` task can write within ``memory_target`` bytes.

    Counts every channel and all outputs (the f/(f−1) bound, f = product of ``factor``).

    Args:
        memory_target: bytes per task.
        dtype: voxel data type.
        chunk_size: chunk size of the levels.
        num_channels: channels per voxel.
        factor: per-level factor.

    Returns:
        N ≥ 1.

    Raises:
        InvalidParameterError: not even one level fits (the message gives the minimum), or a
            parameter is invalid.
    """
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        raise InvalidParameterError(f"dtype must be a numpy data type; got {dtype!r}") from None
    bytes_per_voxel = itemsize * whole(num_channels, "num_channels", 1)
    chunk = int_vector(chunk_size, "chunk_size")
    factor = downsample_factor(factor)
    budget = byte_budget(memory_target, "memory_target")

    def fits(n: int) -> bool:
        return task_memory(bytes_per_voxel, [c * f**n for c, f in zip(chunk, factor)], factor) <= budget

    mips = 0
    while fits(mips + 1):
        mips += 1
    if mips == 0:
        needed = math.ceil(task_memory(bytes_per_voxel, [c * f for c, f in zip(chunk, factor)], factor))
        raise InvalidParameterError(
            f"memory_target {plain(memory_target)} is too small for one downsample of {chunk} chunks "
            f"({np.dtype(dtype).name}, {num_channels} channel(s), factor {factor}); at least {needed} bytes needed"
        )
    return mips
