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
"""Scale and task-shape arithmetic for image pyramids.

Two kinds of question are answered here, both pure arithmetic apart from the two
functions that edit a layer's ``info``:

* *Which scales?* Neuroglancer-style scale series (near-isotropic, two-dimensional,
  plane), and the per-step factors between them.
* *How big a task?* How many pyramid levels a task shape can write without sharing a
  chunk with a neighbouring task (:func:`compute_factors`), and how many levels or how
  large a task fits a memory budget (:func:`num_mips_from_memory_target`,
  :func:`downsample_shape_from_memory_target`).

Memory model: a task that reads ``V`` voxels at the base level and writes ``N`` levels with a
per-level factor whose product is ``f`` holds ``V·(1 + 1/f + 1/f² + …)`` voxels, bounded by
``V·f/(f−1)``. That bound is what ``igneous design ds-shape`` prints, so a shape chosen here
never exceeds the budget by that measure.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from fractions import Fraction
from typing import List, Sequence, Tuple, Union

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError
from igneous.volumes import normalize_encoding, open_volume, set_encoding

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
]

log = logging.getLogger(__name__)

DEFAULT_MAX_DOWNSAMPLING = 64
DEFAULT_MAX_DOWNSAMPLED_SIZE = 128
DEFAULT_MAX_DOWNSAMPLING_SCALES = float("inf")

Scale = Tuple[int, ...]
Number = Union[int, float]

_AXIS_FACTORS = {"x": (1, 2, 2), "y": (2, 1, 2), "z": (2, 2, 1)}
# The memory-target shape search grows every downsampled axis of the chunk together; these
# are the factors the CLI (`design ds-memory`, `image xfer`) is specified to accept.
_MEMORY_SHAPE_FACTORS = ((1, 1, 1), (2, 2, 1), (2, 2, 2))
# Encoding parameters a new scale inherits from the level it is downsampled from.
_ENCODING_PARAMS = (
    "compressed_segmentation_block_size",
    "jpeg_quality",
    "jxl_quality",
    "jxl_effort",
    "png_level",
    "fpzip_precision",
)


# ---------------------------------------------------------------------------------------
# validation helpers


def _is_int(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and float(value).is_integer()


def _show(value):
    try:
        return tuple(int(v) if _is_int(v) else v for v in value)
    except TypeError:
        return value


def _int_vector(value, name: str, length: int | None = 3, minimum: int = 1) -> Tuple[int, ...]:
    """``value`` as a tuple of ints, each ≥ ``minimum``; ``length`` None accepts any length ≥ 1."""
    try:
        items = list(value)
    except TypeError:
        items = None
    wanted = "one or more" if length is None else str(length)
    if (
        items is None
        or not items
        or (length is not None and len(items) != length)
        or any(not _is_int(v) or int(v) < minimum for v in items)
    ):
        raise InvalidParameterError(f"{name} must be {wanted} integers ≥ {minimum}; got {_show(value)!r}")
    return tuple(int(v) for v in items)


def _positive_int(value, name: str) -> int:
    if not _is_int(value) or int(value) < 1:
        raise InvalidParameterError(f"{name} must be an integer ≥ 1; got {value!r}")
    return int(value)


def _count(value, name: str, minimum: int, allow_inf: bool = True) -> Number:
    """An integer ≥ ``minimum``, or infinity when ``allow_inf``."""
    if allow_inf and isinstance(value, (float, np.floating)) and math.isinf(value) and value > 0:
        return math.inf
    if not _is_int(value) or int(value) < minimum:
        upper = ", or inf" if allow_inf else ""
        raise InvalidParameterError(f"{name} must be an integer ≥ {minimum}{upper}; got {value!r}")
    return int(value)


def _limit(value, name: str, minimum: float) -> float:
    """A number ≥ ``minimum`` (infinity allowed)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{name} must be a number ≥ {minimum}; got {value!r}")
    if math.isnan(value) or value < minimum:
        raise InvalidParameterError(f"{name} must be a number ≥ {minimum}; got {value!r}")
    return float(value)


def _budget(value, name: str, allow_inf: bool) -> Number:
    """A byte budget: a positive number (infinity only when ``allow_inf``)."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = not math.isnan(value) and (allow_inf or not math.isinf(value))
    if not ok or value <= 0:
        kind = "a positive number of bytes" if allow_inf else "a positive, finite number of bytes"
        raise InvalidParameterError(f"{name} must be {kind}; got {value!r}")
    return value


def _factor(factor, name: str = "factor") -> Scale:
    """Three positive integers, at least one of them > 1 (a step that shrinks something)."""
    factor = _int_vector(factor, name)
    if max(factor) < 2:
        raise InvalidParameterError(f"{name} must downsample at least one axis (an entry ≥ 2); got {factor}")
    return factor


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
    series = [_int_vector(s, f"scales[{i}]", ndim) for i, s in enumerate(scales)]
    factors = []
    for i, (prev, cur) in enumerate(zip(series, series[1:]), start=1):
        if any(c % p for p, c in zip(prev, cur)):
            raise InvalidParameterError(
                f"scales[{i}] {cur} must be a whole multiple of scales[{i - 1}] {prev} on every axis"
            )
        factors.append(tuple(c // p for p, c in zip(prev, cur)))
    return factors


def _check_stopping(max_scales, max_downsampling, max_downsampled_size) -> Tuple[Number, float, float]:
    max_scales = _count(max_scales, "max_scales", 1)
    max_downsampling = _limit(max_downsampling, "max_downsampling", 1)
    max_downsampled_size = _limit(max_downsampled_size, "max_downsampled_size", 0)
    if math.isinf(max_scales) and math.isinf(max_downsampling) and max_downsampled_size == 0:
        raise InvalidParameterError(
            "at least one of max_scales, max_downsampling (finite) or max_downsampled_size (> 0) must bound the series"
        )
    return max_scales, max_downsampling, max_downsampled_size


def _grow_series(size, dims, next_step, max_scales, max_downsampling, max_downsampled_size) -> List[Scale]:
    """Apply ``next_step(scale)`` until a stopping criterion holds; returns cumulative scales.

    Stops when the series has ``max_scales`` entries, when every downsampled axis is
    already at most ``max_downsampled_size`` voxels, or when the next step would make the
    total downsampling (product of the scale) exceed ``max_downsampling``.
    """
    size = np.asarray(size, dtype=float)
    scale = np.ones(len(size), dtype=np.int64)
    scales = [tuple(int(s) for s in scale)]
    while len(scales) < max_scales and (size[dims] / scale[dims]).max() > max_downsampled_size:
        candidate = scale * next_step(scale)
        if math.prod(int(c) for c in candidate) > max_downsampling:
            break
        scale = candidate
        scales.append(tuple(int(s) for s in scale))
    return scales


def _near_isotropic_step(voxel_size: np.ndarray, dims: List[int]):
    """Neuroglancer's step: double the finest axis, and every other axis doubling brings closer to it."""

    def step(scale: np.ndarray) -> np.ndarray:
        current = scale * voxel_size
        finest = min(dims, key=lambda d: current[d])  # first of equals, like np.argmin
        target = current[finest] * 2
        factor = np.ones(len(scale), dtype=np.int64)
        factor[finest] = 2
        for d in dims:
            if abs(current[d] - target) > abs(current[d] * 2 - target):
                factor[d] = 2
        return factor

    return step


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

    Args:
        size: voxels per axis (any number of axes).
        voxel_size: voxel size per axis (e.g. nm).
        dimensions_to_downsample: indices of the axes that may be halved.
        max_scales: maximum length of the returned list, counting the initial ``(1,…)``.
        max_downsampling: the product of a scale never exceeds this.
        max_downsampled_size: stop once every downsampled axis is at most this many voxels.

    Returns:
        Cumulative scales, starting with ``(1, 1, 1)``.

    Raises:
        InvalidParameterError: on non-positive sizes, unknown axes or unbounded criteria.
    """
    size = _int_vector(size, "size", None)
    ndim = len(size)
    voxel = _positive_numbers(voxel_size, "voxel_size", ndim)
    dims = _dimensions(dimensions_to_downsample, ndim)
    limits = _check_stopping(max_scales, max_downsampling, max_downsampled_size)
    return _grow_series(size, dims, _near_isotropic_step(voxel, dims), *limits)


def _positive_numbers(value, name: str, length: int) -> np.ndarray:
    try:
        items = np.asarray(list(value), dtype=float)
    except (TypeError, ValueError):
        items = np.array([])
    if items.shape != (length,) or not np.all(np.isfinite(items)) or np.any(items <= 0):
        raise InvalidParameterError(f"{name} must be {length} positive finite numbers; got {_show(value)!r}")
    return items


def _dimensions(dimensions, ndim: int) -> List[int]:
    try:
        dims = list(dimensions)
    except TypeError:
        dims = None
    if not dims or any(not _is_int(d) or not 0 <= int(d) < ndim for d in dims) or len(set(dims)) != len(dims):
        raise InvalidParameterError(
            f"dimensions_to_downsample must be distinct axis indices in [0, {ndim - 1}]; got {dimensions!r}"
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
        raise InvalidParameterError(f"{name} must have 2 (x, y) or 3 (x, y, z) entries; got {_show(value)!r}")
    return items + [1] * (3 - len(items))


def compute_plane_downsampling_scales(
    size: Sequence[int],
    preserve_axis: str = "z",
    max_scales: Number = DEFAULT_MAX_DOWNSAMPLING_SCALES,
    max_downsampling: Number = DEFAULT_MAX_DOWNSAMPLING,
    max_downsampled_size: Number = DEFAULT_MAX_DOWNSAMPLED_SIZE,
) -> List[Scale]:
    """Factor-2 scales in the plane perpendicular to ``preserve_axis``, regardless of voxel size.

    Args:
        size: voxels (x, y, z).
        preserve_axis: 'x', 'y' or 'z', the axis never downsampled.
        max_scales, max_downsampling, max_downsampled_size: as for
            :func:`compute_near_isotropic_downsampling_scales` (the size criterion looks at
            the two downsampled axes).

    Returns:
        Cumulative scales starting with ``(1, 1, 1)``, e.g. ``(2,2,1), (4,4,1), …`` for 'z'.
    """
    size = _int_vector(size, "size")
    factor = np.array(axis_to_factor(preserve_axis), dtype=np.int64)
    dims = [d for d in range(3) if factor[d] > 1]
    limits = _check_stopping(max_scales, max_downsampling, max_downsampled_size)
    return _grow_series(size, dims, lambda _scale: factor, *limits)


def axis_to_factor(axis: str) -> Scale:
    """The per-level factor that keeps ``axis`` at full resolution: 'z' → (2,2,1).

    Raises:
        InvalidParameterError: ``axis`` is not one of 'x', 'y', 'z'.
    """
    key = axis.lower() if isinstance(axis, str) else axis
    if key not in _AXIS_FACTORS:
        raise InvalidParameterError(f"axis must be one of 'x', 'y', 'z'; got {axis!r}")
    return _AXIS_FACTORS[key]


# ---------------------------------------------------------------------------------------
# levels a task shape can write


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _level_tiles(ds_shape, factor, chunk, volume, level: int) -> bool:
    """Whether the ``level``-th downsample of a ``ds_shape`` task writes only whole chunks."""
    shrinking = [(v, f) for v, f in zip(volume, factor) if f > 1]
    if all(_ceil_div(v, f ** (level - 1)) <= 1 for v, f in shrinking):
        return False  # the previous level is already a single voxel on every downsampled axis
    for s, f, c, v in zip(ds_shape, factor, chunk, volume):
        if f == 1 or s >= v:
            continue  # unchanged, or one task spans the axis so there is no neighbour to collide with
        step = f**level
        if s % step or (s // step) % c:
            return False
    return True


def compute_factors(
    ds_shape: Sequence[int], factor: Sequence[int], chunk_size: Sequence[int], volume_size: Sequence[int]
) -> List[Scale]:
    """How many times ``factor`` can be applied to a task of ``ds_shape`` voxels.

    Level ``k`` is possible when, on every axis, the task shape divided by ``factor**k`` is
    a whole multiple of ``chunk_size`` (so neighbouring tasks never write the same chunk),
    or the task spans the whole ``volume_size`` on that axis, or that axis's factor is 1.
    Levels stop once every downsampled axis of the volume is a single voxel.

    Args:
        ds_shape: task shape in voxels at the base level.
        factor: per-level downsampling factor, e.g. (2,2,1).
        chunk_size: chunk size of the downsampled scales.
        volume_size: size of the base level in voxels.

    Returns:
        ``[factor] * levels`` (as tuples); empty when not even one level is possible.
    """
    ds_shape = _int_vector(ds_shape, "ds_shape")
    factor = _factor(factor)
    chunk = _int_vector(chunk_size, "chunk_size")
    volume = _int_vector(volume_size, "volume_size")
    factors = []
    while _level_tiles(ds_shape, factor, chunk, volume, len(factors) + 1):
        factors.append(factor)
    return factors


def _cumulative(factors: Sequence[Scale]) -> List[Scale]:
    scales = [(1, 1, 1)]
    for f in factors:
        scales.append(tuple(a * b for a, b in zip(scales[-1], f)))
    return scales


def compute_scales(
    vol: CloudVolume,
    mip: int,
    shape: Sequence[int],
    axis: str,
    factor: Sequence[int] | None,
    chunk_size: Sequence[int] | None = None,
) -> List[Scale]:
    """Cumulative scales (relative to ``mip``) that a task of ``shape`` can write.

    Args:
        vol: the layer.
        mip: the base level of the pyramid.
        shape: task shape at ``mip``.
        axis: axis kept at full resolution when ``factor`` is None.
        factor: per-level factor (overrides ``axis``).
        chunk_size: chunk size of the new scales (default: ``mip``'s).

    Returns:
        ``[(1,1,1), factor, factor², …]`` as computed by :func:`compute_factors`.
    """
    factor = axis_to_factor(axis) if factor is None else factor
    chunk = vol.meta.chunk_size(mip) if chunk_size is None else chunk_size
    return _cumulative(compute_factors(shape, factor, chunk, vol.meta.volume_size(mip)))


# ---------------------------------------------------------------------------------------
# editing the layer's scales


def _decimals(value) -> int:
    if _is_int(value) and not isinstance(value, (float, np.floating)):
        return 0
    return max(0, -Decimal(str(float(value))).as_tuple().exponent)


def _same_resolution(a, b) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=0))


def _pyramid_resolutions(vol: CloudVolume, mip: int, factors: Sequence[Scale]) -> List[Tuple[list, Scale]]:
    """For each level: its resolution and its factor relative to mip 0 (what CloudVolume takes).

    The resolution is ``mip``'s times the cumulative factor, rounded to the decimals of
    ``mip``'s resolution so float keys do not pick up binary noise (1.1·3 → 3.3).
    """
    base0 = np.asarray(vol.info["scales"][0]["resolution"], dtype=float)
    mip_res = vol.info["scales"][mip]["resolution"]
    floating = any(isinstance(r, (float, np.floating)) for r in mip_res)
    decimals = max(_decimals(r) for r in mip_res)
    levels = []
    for cumulative in _cumulative(factors)[1:]:
        res = np.asarray(mip_res, dtype=float) * np.asarray(cumulative, dtype=float)
        relative = res / base0
        if not np.allclose(relative, np.round(relative), rtol=1e-9, atol=1e-9):
            raise InvalidParameterError(
                f"resolution {list(res)} is not a whole multiple of mip 0's {list(base0)}; CloudVolume derives "
                "every scale from mip 0, so build the pyramid from a mip whose resolution is one"
            )
        resolution = [round(float(r), decimals) for r in res] if floating else [int(round(r)) for r in res]
        levels.append((resolution, tuple(int(r) for r in np.round(relative))))
    return levels


def _check_scale_slots(info: dict, mip: int, resolutions: Sequence[list]) -> None:
    """Refuse (before any edit) a pyramid whose levels would not land at indices mip+1, mip+2, …

    Tasks write level k into ``scales[mip + k]``; an existing scale there must have the
    planned resolution, and a new one must not duplicate a scale elsewhere.
    """
    scales = info["scales"]
    for k, res in enumerate(resolutions, start=1):
        index = mip + k
        if index < len(scales):
            if not _same_resolution(scales[index]["resolution"], res):
                raise InvalidParameterError(
                    f"scale {index} has resolution {scales[index]['resolution']} but level {k} above mip {mip} "
                    f"needs {res}; remove the scales above mip {mip} or use a factor that matches them"
                )
            continue
        for i, scale in enumerate(scales):
            if _same_resolution(scale["resolution"], res):
                raise InvalidParameterError(
                    f"resolution {res} (level {k} above mip {mip}) already exists as scale {i}, out of pyramid order; "
                    f"remove the scales above mip {mip} first"
                )


def _update_scale(vol: CloudVolume, index: int, chunk: Scale, encoding: str | None) -> None:
    """Rebuild an existing level in place: key, size and offset stay, chunking (and encoding) change."""
    scale = vol.info["scales"][index]
    scale["chunk_sizes"] = [list(chunk)]
    if scale.pop("sharding", None) is not None:
        # The shard layout was computed for the old chunking; a sharded planner sets a new one.
        log.warning("scale %s (%s): removed its sharding spec, the level is being rebuilt", index, scale["key"])
    if encoding is not None:
        set_encoding(vol, index, encoding)
    log.info("updated scale %s (%s): chunk size %s, encoding %s", index, scale["key"], chunk, scale["encoding"])


def _append_scale(
    vol: CloudVolume, mip: int, relative: Scale, resolution: list, chunk: Scale, encoding: str | None
) -> None:
    base = vol.info["scales"][mip]
    scale = vol.add_scale(relative, encoding=encoding or base["encoding"], chunk_size=list(chunk))
    scale["resolution"] = resolution
    scale["key"] = "_".join(str(r) for r in resolution)
    if encoding is None:
        scale.update({k: base[k] for k in _ENCODING_PARAMS if k in base})
    else:
        set_encoding(vol, len(vol.info["scales"]) - 1, encoding)
    log.info("added scale %s: resolution %s, size %s, chunk size %s", scale["key"], resolution, scale["size"], chunk)


def _add_pyramid(vol: CloudVolume, mip: int, factors: Sequence[Scale], chunk: Scale, encoding: str | None) -> None:
    """Make ``scales[mip+1 … mip+len(factors)]`` the pyramid levels (info edited, not committed)."""
    encoding = normalize_encoding(encoding)
    levels = _pyramid_resolutions(vol, mip, factors)
    _check_scale_slots(vol.info, mip, [res for res, _ in levels])
    for k, (resolution, relative) in enumerate(levels, start=1):
        if mip + k < len(vol.info["scales"]):
            _update_scale(vol, mip + k, chunk, encoding)
        else:
            _append_scale(vol, mip, relative, resolution, chunk, encoding)


def _new_chunk_size(vol: CloudVolume, mip: int, preserve_chunk_size: bool, chunk_size) -> Scale:
    base = tuple(int(c) for c in vol.meta.chunk_size(mip))
    if chunk_size is None:
        return base
    chunk = _int_vector(chunk_size, "chunk_size")
    if preserve_chunk_size:
        if chunk != base:
            log.warning("preserve_chunk_size: new scales keep mip %s's chunk size %s, not %s", mip, base, chunk)
        return base
    return chunk


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

    As many levels are added as :func:`compute_factors` allows (capped at ``max_mips``).
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
    factor = _factor(axis_to_factor(axis) if factor is None else factor)
    chunk = _new_chunk_size(vol, mip, preserve_chunk_size, chunk_size)
    volume = tuple(int(v) for v in vol.meta.volume_size(mip))
    factors = compute_factors(ds_shape, factor, chunk, volume)
    if max_mips is not None:
        factors = factors[: _count(max_mips, "max_mips", 1, allow_inf=False)]
    if not factors:
        raise InvalidParameterError(
            f"ds_shape {_show(ds_shape)} yields no downsample with factor {factor}: ds_shape / factor must be a "
            f"multiple of the chunk size {chunk} on each axis narrower than the volume {volume}; "
            f"use a multiple of chunk_size × factor"
        )
    _add_pyramid(vol, mip, factors, chunk, encoding)
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
    num_mips = _count(num_mips, "num_mips", 1, allow_inf=False)
    factor = _factor((2, 2, 1) if factor is None else factor)
    chunk = _new_chunk_size(vol, mip, preserve_chunk_size, chunk_size)
    _add_pyramid(vol, mip, [factor] * num_mips, chunk, encoding)
    return vol


# ---------------------------------------------------------------------------------------
# memory


def _task_memory(bytes_per_voxel: int, chunk: Sequence[int], f: int, num_mips: int) -> Fraction:
    """Bytes of a chunk·factor^num_mips task with all its outputs, by the f/(f−1) bound."""
    voxels = bytes_per_voxel * math.prod(chunk) * f**num_mips
    return Fraction(voxels) * (Fraction(f, f - 1) if f > 1 else 1)


def _min_bytes(memory: Fraction) -> int:
    return math.ceil(memory)


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
    plus every downsampled output); for factor (1,1,1) it is the chunk alone.

    Args:
        data_width: bytes per voxel (itemsize × channels).
        cx, cy, cz: chunk size.
        factor: (1,1,1), (2,2,1) or (2,2,2).
        byte_target: memory budget per task in bytes.
        max_mips: at most this many downsamples (N ≤ max_mips).

    Returns:
        ``Vec(cx·fx^N, cy·fy^N, cz·fz^N)``.

    Raises:
        InvalidParameterError: unsupported factor, non-positive budget/width/chunk, or a
            budget too small for a one-chunk task (the message gives the minimum).
    """
    width = _positive_int(data_width, "data_width")
    chunk = _int_vector((cx, cy, cz), "chunk size (cx, cy, cz)")
    factor = _int_vector(factor, "factor")
    if factor not in _MEMORY_SHAPE_FACTORS:
        raise InvalidParameterError(f"factor must be one of (1,1,1), (2,2,1), (2,2,2); got {factor}")
    budget = _budget(byte_target, "byte_target", allow_inf=True)
    max_mips = _count(max_mips, "max_mips", 0)
    f = math.prod(factor)
    needed = _task_memory(width, chunk, f, 0)
    if needed > budget:
        raise InvalidParameterError(
            f"byte_target {byte_target} cannot hold one {chunk} chunk task; at least {_min_bytes(needed)} bytes needed"
        )
    if f == 1:
        return Vec(*chunk)
    if math.isinf(budget) and math.isinf(max_mips):
        raise InvalidParameterError("byte_target or max_mips must be finite")
    mips = 0
    while mips < max_mips and _task_memory(width, chunk, f, mips + 1) <= budget:
        mips += 1
    return Vec(*(c * fi**mips for c, fi in zip(chunk, factor)))


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
    bytes_per_voxel = itemsize * _positive_int(num_channels, "num_channels")
    chunk = _int_vector(chunk_size, "chunk_size")
    factor = _factor(factor)
    budget = _budget(memory_target, "memory_target", allow_inf=False)
    f = math.prod(factor)
    mips = 0
    while _task_memory(bytes_per_voxel, chunk, f, mips + 1) <= budget:
        mips += 1
    if mips == 0:
        needed = _min_bytes(_task_memory(bytes_per_voxel, chunk, f, 1))
        raise InvalidParameterError(
            f"memory_target {memory_target} is too small for one downsample of {chunk} chunks "
            f"({np.dtype(dtype).name}, {num_channels} channel(s), factor {factor}); at least {needed} bytes needed"
        )
    return mips
