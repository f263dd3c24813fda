"""Adding pyramid levels to a layer's ``info``: the one place scales are created or rebuilt.

Every planner that writes downsamples (pyramids, transfers, quantization, sharded pyramids)
calls :func:`add_pyramid`, so a level always gets the same key, resolution, size, offset,
chunk size and encoding parameters whoever adds it. Nothing here writes to storage: the
caller commits the info once everything else has been validated.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import List, Optional, Sequence, Tuple

import numpy as np
from cloudvolume import CloudVolume

from igneous.errors import InvalidParameterError
from igneous.validate import int_vector, is_int
from igneous.volumes import normalize_encoding, set_encoding

__all__ = ["add_pyramid", "new_chunk_size", "ENCODING_PARAMS"]

log = logging.getLogger(__name__)

Scale = Tuple[int, ...]

# Encoding parameters a new scale inherits from the level it is downsampled from.
ENCODING_PARAMS = (
    "compressed_segmentation_block_size",
    "jpeg_quality",
    "jxl_quality",
    "jxl_effort",
    "png_level",
    "fpzip_precision",
)


def _cumulative(factors: Sequence[Scale]) -> List[Scale]:
    scales = [(1, 1, 1)]
    for f in factors:
        scales.append(tuple(a * b for a, b in zip(scales[-1], f)))
    return scales


def _decimals(value) -> int:
    if is_int(value) and not isinstance(value, (float, np.floating)):
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
                f"resolution {res.tolist()} is not a whole multiple of mip 0's {base0.tolist()}; CloudVolume derives "
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


def _update_scale(vol: CloudVolume, index: int, chunk: Scale, encoding, level, effort) -> None:
    """Rebuild an existing level in place: key, size and offset stay, chunking (and encoding) change."""
    scale = vol.info["scales"][index]
    scale["chunk_sizes"] = [list(chunk)]
    if scale.pop("sharding", None) is not None:
        # The shard layout was computed for the old chunking; a sharded planner sets a new one.
        log.warning("scale %s (%s): removed its sharding spec, the level is being rebuilt", index, scale["key"])
    if encoding is not None or level is not None:
        set_encoding(vol, index, encoding, level, effort)
    log.info("updated scale %s (%s): chunk size %s, encoding %s", index, scale["key"], chunk, scale["encoding"])


def _append_scale(vol: CloudVolume, mip: int, relative: Scale, resolution: list, chunk: Scale, encoding, level,
                  effort) -> None:
    base = vol.info["scales"][mip]
    scale = vol.add_scale(relative, encoding=encoding or base["encoding"], chunk_size=list(chunk))
    scale["resolution"] = resolution
    scale["key"] = "_".join(str(r) for r in resolution)
    if encoding is None and level is None:
        scale.update({k: base[k] for k in ENCODING_PARAMS if k in base})
    else:
        set_encoding(vol, len(vol.info["scales"]) - 1, encoding or base["encoding"], level, effort)
    log.info("added scale %s: resolution %s, size %s, chunk size %s", scale["key"], resolution, scale["size"], chunk)


def add_pyramid(
    vol: CloudVolume,
    mip: int,
    factors: Sequence[Sequence[int]],
    chunk_size: Sequence[int],
    encoding: Optional[str] = None,
    encoding_level=None,
    encoding_effort=None,
) -> List[int]:
    """Make ``scales[mip+1 … mip+len(factors)]`` the pyramid levels of ``vol.info`` (not committed).

    Level k gets resolution ``mip``'s × the product of the first k factors; size and voxel
    offset are derived from mip 0 by CloudVolume (ceil / floor). A level that already exists
    at ``scales[mip+k]`` with that resolution keeps its key, size and offset and gets the new
    chunk size (and encoding, if given). New levels inherit ``mip``'s encoding and its
    parameters unless ``encoding``/``encoding_level`` say otherwise.

    Returns:
        The indices of the levels, ``[mip+1, …]``.

    Raises:
        InvalidParameterError: before any edit, when a level would land out of pyramid order or
            at a resolution that is not a whole multiple of mip 0's.
    """
    factors = [tuple(int(v) for v in f) for f in factors]
    chunk = int_vector(chunk_size, "chunk_size")
    encoding = normalize_encoding(encoding)
    levels = _pyramid_resolutions(vol, mip, factors)
    _check_scale_slots(vol.info, mip, [res for res, _ in levels])
    for k, (resolution, relative) in enumerate(levels, start=1):
        if mip + k < len(vol.info["scales"]):
            _update_scale(vol, mip + k, chunk, encoding, encoding_level, encoding_effort)
        else:
            _append_scale(vol, mip, relative, resolution, chunk, encoding, encoding_level, encoding_effort)
    return list(range(mip + 1, mip + 1 + len(factors)))


def new_chunk_size(vol: CloudVolume, mip: int, preserve_chunk_size: bool, chunk_size) -> Scale:
    """The chunk size of new levels: ``mip``'s, or ``chunk_size`` unless ``preserve_chunk_size``."""
    base = tuple(int(c) for c in vol.meta.chunk_size(mip))
    if chunk_size is None:
        return base
    chunk = int_vector(chunk_size, "chunk_size")
    if preserve_chunk_size:
        if chunk != base:
            log.warning("preserve_chunk_size: new scales keep mip %s's chunk size %s, not %s", mip, base, chunk)
        return base
    return chunk
