"""Zarr / N5 / OME-Zarr sources read through CloudVolume (``zarr://``, ``zarr2://``, ``zarr3://``, ``n5://``).

``image xfer`` copies these into Precomputed. Two things CloudVolume (12.15) reports for them
are not usable as a Precomputed destination's info, and are corrected here:

* the scale ``encoding`` of a zarr v2 / n5 layer is the store's compressor (``blosc``,
  ``gzip``, …), which is not a Precomputed encoding: the copy is written ``raw``;
* OME-NGFF ``translation`` is ignored for zarr v2 (``zarr2/metadata.py`` builds the info
  with ``voxel_offset=[0,0,0]``) and, for zarr v3, left in the array's axis order
  (``zarr3/metadata.py`` ``compute_voxel_offset`` returns z,y,x and ``zarr_to_info`` uses
  it as x,y,z). The true offset is computed here from the multiscales metadata, per axis
  name, and the transfer is shifted by the difference (CloudVolume reads the right voxels,
  only under the wrong coordinates).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError
from igneous.volumes import ENCODINGS

__all__ = ["FOREIGN_FORMATS", "is_foreign", "check_readable", "default_encoding", "ome_voxel_offset", "offset_shift"]

FOREIGN_FORMATS = ("zarr", "zarr2", "zarr3", "n5")


def is_foreign(vol) -> bool:
    return vol.meta.path.format in FOREIGN_FORMATS


def check_readable(vol, mip: int) -> None:
    """Refuse a store CloudVolume cannot read correctly, before anything is written.

    CloudVolume 12.15's Zarr v2 reader joins a group's array key to the chunk indices with the
    array's dimension separator (``zarr2/metadata.py`` ``chunk_name``): with the default ``.``
    it looks for ``0.z.y.x`` instead of ``0/z.y.x``, finds nothing, and every chunk would read
    as missing.
    """
    meta = vol.meta
    if not is_foreign(vol) or not hasattr(meta, "dimension_separator") or not hasattr(meta, "is_group"):
        return
    if meta.is_group() and meta.dimension_separator(mip) == ".":
        raise InvalidParameterError(
            f"{meta.cloudpath}: a Zarr v2 group whose arrays use the '.' dimension separator cannot be read by "
            "CloudVolume (it looks for '0.z.y.x'); rewrite the store with dimension_separator '/' or as Zarr v3"
        )


def default_encoding(vol, mip: int, encoding: Optional[str]) -> Optional[str]:
    """``encoding``, or ``raw`` when the source's own is a store compressor, not a Precomputed encoding."""
    if encoding is None and is_foreign(vol) and vol.meta.encoding(mip) not in ENCODINGS:
        return "raw"
    return encoding


def _multiscales(vol) -> Optional[dict]:
    meta = vol.meta
    for attrs in (getattr(meta, "ome", None), getattr(meta, "zattrs", None)):
        if isinstance(attrs, dict) and attrs.get("multiscales"):
            return attrs["multiscales"][0]
    return None


def ome_voxel_offset(vol, mip: int) -> Optional[Vec]:
    """The voxel offset (x, y, z) at ``mip`` from OME-NGFF multiscales metadata, or None."""
    ms = _multiscales(vol) if is_foreign(vol) else None
    if ms is None or mip >= len(ms.get("datasets", [])):
        return None
    names = [axis["name"] if isinstance(axis, dict) else str(axis) for axis in ms["axes"]]
    scale = np.ones(len(names))
    shift = np.zeros(len(names))
    for transform in ms["datasets"][mip].get("coordinateTransformations", []):
        if transform.get("type") == "scale" and isinstance(transform.get("scale"), list):
            scale = scale * np.asarray(transform["scale"], dtype=float)
        elif transform.get("type") == "translation" and isinstance(transform.get("translation"), list):
            shift = shift + np.asarray(transform["translation"], dtype=float)
    if not shift.any() or not all(a in names for a in "xyz"):
        return None
    return Vec(*[int(np.floor(shift[names.index(a)] / scale[names.index(a)] + 1e-9)) for a in "xyz"])


def offset_shift(vol, mip: int) -> Vec:
    """How far CloudVolume's voxel offset at ``mip`` is from the OME-NGFF one (0 when it agrees)."""
    true = ome_voxel_offset(vol, mip)
    if true is None:
        return Vec(0, 0, 0)
    return true - vol.meta.voxel_offset(mip)
