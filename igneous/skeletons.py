"""Skeleton format knowledge, in one place (SPEC §4.3).

Every name a forge writes and a merge, xfer, rm, clean or convert reads is built here:

* ``{skel_dir}/info``: ``{"@type": "neuroglancer_skeletons", "transform": identity 3×4,
  "vertex_attributes": [radius float32 (+ cross_sectional_area float32)], "mip": m,
  "spatial_index": {"resolution": [nm], "chunk_size": [shape·res]}}`` (+ ``sharding`` once
  merged sharded). Vertices are in nm, at voxel centres: voxel ``i`` → ``(i + 0.5)·res``.
* Unsharded forge fragment ``{segid}:{BBOX_nm}``: BBOX_nm = the task box *including* its +1
  overlap, clipped to the layer, × resolution (CloudVolume's precision rule). Content: a
  **Precomputed skeleton** (``uint32 nv, uint32 ne, float32[nv·3], uint32[ne·2]``, then one
  array per info vertex attribute), gzip. The reference stored Python pickles here; those are
  never unpickled unless the caller opts in (:func:`decode_fragment`).
* Sharded forge fragments ``{BBOX}.frags`` (``igneous.spatial.frags_filename``): MapBuffer
  ``{segid: Precomputed skeleton}``, brotli per entry, stored uncompressed.
* Final unsharded ``{segid}``: Precomputed skeleton, gzip. Sharded: ``{shard}.shard`` +
  ``{shard}.labels`` (``igneous.label_shards``), data_encoding gzip by default.
* ``{BBOX_nm}.spatial`` (``igneous.spatial``): ``{segid: [x0,y0,z0,x1,y1,z1]}`` of the
  fragment's vertices in integer nm, written last by each forge task.

Neighbouring fragments of one label share the vertices on the voxel plane both tasks read
(the +1 overlap), bit for bit, so concatenating a label's fragments and merging identical
vertices joins them.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import numpy as np
from cloudvolume.lib import Bbox, Vec, getprecision
from osteoid import Skeleton

from igneous.errors import UnsafeFragmentError
from igneous.layerfiles import read_sub_info, write_sub_info
from igneous.spatial import spatial_index_info
from igneous.validate import subdirectory

__all__ = [
    "SKELETON_TYPE",
    "RADIUS",
    "CROSS_SECTIONAL_AREA",
    "ALLOW_PICKLE_ENV",
    "default_skel_dir",
    "resolve_skel_dir",
    "skeleton_info",
    "FORGE_KEY",
    "forge_params",
    "read_skeleton_info",
    "write_skeleton_info",
    "fragment_filename",
    "parse_fragment_name",
    "is_final_name",
    "encode_skeleton",
    "decode_skeleton",
    "decode_fragment",
    "looks_pickled",
    "pickles_allowed",
    "skeleton_bounds_nm",
    "to_swc",
]

SKELETON_TYPE = "neuroglancer_skeletons"
RADIUS = {"id": "radius", "data_type": "float32", "num_components": 1}
CROSS_SECTIONAL_AREA = {"id": "cross_sectional_area", "data_type": "float32", "num_components": 1}
IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
ALLOW_PICKLE_ENV = "IGNEOUS_ALLOW_PICKLED_FRAGMENTS"
# Our key in a skeleton info (readers ignore it): what the merge needs to tell the forge's
# forced seam targets from TEASAR's own branches (see igneous.ops.skeleton.prune_forced_stubs).
FORGE_KEY = "igneous_forge"
FRAGMENT_RE = re.compile(r"^(\d+):(.+)$")
FINAL_RE = re.compile(r"^\d+$")


def default_skel_dir(mip: int) -> str:
    return f"skeletons_mip_{int(mip)}"


def resolve_skel_dir(info: dict, skel_dir: Optional[str] = None) -> Optional[str]:
    """The skeleton directory a command acts on: the given one, else the layer info's ``skeletons``."""
    if skel_dir is not None:  # given, even empty: it must name a folder inside the layer
        return subdirectory(skel_dir, "skel_dir (--dir)", "skeletons_mip_0")
    found = info.get("skeletons")  # the layer's own pointer must stay inside it too
    return subdirectory(found, 'the layer info\'s "skeletons"', "skeletons_mip_0") if found else None


def vertex_attributes(cross_sectional_area: bool) -> list[dict]:
    return [dict(RADIUS)] + ([dict(CROSS_SECTIONAL_AREA)] if cross_sectional_area else [])


def skeleton_info(
    mip: int,
    shape: Sequence[int],
    resolution: Sequence[float],
    cross_sectional_area: bool = False,
    spatial_index: bool = True,
    existing: Optional[dict] = None,
    forge: Optional[dict] = None,
) -> dict:
    """The skeleton sub-info a forge of ``shape`` boxes at ``mip`` writes (SPEC §4.3).

    Keys of an ``existing`` info that the forge does not own (e.g. a user's ``transform``
    edits are not kept: vertices are in nm, so the transform is the identity) are preserved.
    """
    info = dict(existing or {})
    info.pop("sharding", None)
    info.update(
        {
            "@type": SKELETON_TYPE,
            "transform": list(IDENTITY),
            "vertex_attributes": vertex_attributes(cross_sectional_area),
            "mip": int(mip),
        }
    )
    if spatial_index:
        info["spatial_index"] = spatial_index_info(shape, resolution)
    else:
        info.pop("spatial_index", None)
    if forge is not None:
        info[FORGE_KEY] = forge
    return info


def forge_params(shape: Sequence[int], block: Sequence[int], teasar_params: dict, fix_borders: bool) -> dict:
    """The forge grid (task ``shape``, sub-``block``) and TEASAR invalidation parameters."""
    return {
        "shape": [int(s) for s in shape],
        "block": [int(b) for b in block],
        "scale": float(teasar_params.get("scale", 10)),
        "const": float(teasar_params.get("const", 10)),
        "fix_borders": bool(fix_borders),
    }


def read_skeleton_info(layer_path: str, skel_dir: str) -> Optional[dict]:
    return read_sub_info(layer_path, skel_dir)


def write_skeleton_info(layer_path: str, skel_dir: str, info: dict) -> None:
    write_sub_info(layer_path, skel_dir, info)


def fragment_filename(segid: int, box_vox: Bbox, resolution_json: Sequence) -> str:
    """``{segid}:{BBOX_nm}`` of a task's read box (with its +1 overlap) in voxels."""
    precision = max(getprecision(r) for r in resolution_json)
    res = Vec(*resolution_json, dtype=int if precision == 0 else float)
    nm = Bbox(Vec(*box_vox.minpt).astype(res.dtype) * res, Vec(*box_vox.maxpt).astype(res.dtype) * res)
    return f"{int(segid)}:{nm.to_filename(precision)}"


def parse_fragment_name(name: str) -> Optional[tuple[int, str]]:
    """``'12:0-64_0-64_0-40'`` → ``(12, '0-64_0-64_0-40')``; finals and others → None."""
    m = FRAGMENT_RE.match(name)
    if m is None:
        return None
    return int(m.group(1)), m.group(2)


def is_final_name(name: str) -> bool:
    """A finished unsharded skeleton is named by its label alone."""
    return FINAL_RE.match(name) is not None


def encode_skeleton(skel: Skeleton, attributes: Sequence[dict]) -> bytes:
    """Precomputed skeleton bytes holding exactly ``attributes`` (float32 arrays per vertex)."""
    nv = len(skel.vertices)
    parts = [
        np.asarray([nv, len(skel.edges)], dtype="<u4").tobytes(),
        np.ascontiguousarray(skel.vertices, dtype="<f4").tobytes(),
        np.ascontiguousarray(skel.edges, dtype="<u4").tobytes(),
    ]
    for attr in attributes:
        values = getattr(skel, attr["id"], None)
        if values is None or len(values) != nv:
            values = np.zeros((nv, int(attr["num_components"])), dtype=attr["data_type"])
        parts.append(np.ascontiguousarray(values, dtype=np.dtype(attr["data_type"]).newbyteorder("<")).tobytes())
    return b"".join(parts)


def _layout_size(data: bytes, attributes: Sequence[dict]) -> Optional[int]:
    if len(data) < 8:
        return None
    nv, ne = (int(x) for x in np.frombuffer(data[:8], dtype="<u4"))
    per_vertex = 12 + sum(np.dtype(a["data_type"]).itemsize * int(a["num_components"]) for a in attributes)
    return 8 + nv * per_vertex + ne * 8


def decode_skeleton(data: bytes, segid: int, attributes: Sequence[dict]) -> Skeleton:
    """A Precomputed skeleton (vertices in nm, ``space='physical'``) with ``attributes``."""
    skel = Skeleton.from_precomputed(data, segid=int(segid), vertex_attributes=list(attributes))
    skel.space = "physical"
    return skel


def looks_pickled(data: bytes) -> bool:
    """Python pickles (protocol 2–5) start with PROTO and end with STOP."""
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[-1:] == b"."


def pickles_allowed(allow_pickle: Optional[bool] = None) -> bool:
    if allow_pickle is not None:
        return bool(allow_pickle)
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def decode_fragment(
    data: bytes, segid: int, attributes: Sequence[dict], name: str = "", allow_pickle: Optional[bool] = None
) -> Skeleton:
    """A forge fragment. Precomputed bytes are decoded; a reference Python pickle is refused
    (:class:`UnsafeFragmentError`, one line saying how to opt in) unless ``allow_pickle`` or
    ``IGNEOUS_ALLOW_PICKLED_FRAGMENTS=1``, because unpickling runs any code the file holds."""
    if _layout_size(data, attributes) == len(data):
        return decode_skeleton(data, segid, attributes)
    if looks_pickled(data):
        if not pickles_allowed(allow_pickle):
            raise UnsafeFragmentError(
                f"fragment {name or segid} is a Python pickle, which can run arbitrary code when loaded; "
                f"if you trust its source, set {ALLOW_PICKLE_ENV}=1 (or pass allow_pickle=True) to read it"
            )
        return _unpickle(data, segid, attributes)
    raise ValueError(f"fragment {name or segid} is neither a Precomputed skeleton nor a known format")


def _unpickle(data: bytes, segid: int, attributes: Sequence[dict]) -> Skeleton:
    import pickle

    obj = pickle.loads(data)  # noqa: S301 - the caller opted in (see decode_fragment)
    skel = Skeleton(
        np.asarray(obj.vertices, dtype=np.float32),
        np.asarray(obj.edges, dtype=np.uint32),
        segid=int(segid),
        space="physical",
        extra_attributes=[dict(a) for a in attributes],
    )
    for attr in attributes:
        values = getattr(obj, attr["id"], None)
        if values is None:
            values = np.zeros((len(skel.vertices),), dtype=attr["data_type"])
        setattr(skel, attr["id"], np.asarray(values, dtype=attr["data_type"]))
    return skel


def skeleton_bounds_nm(vertices: np.ndarray) -> list[int]:
    """``[x0, y0, z0, x1, y1, z1]`` in integer nm around the vertices (the ``.spatial`` entry)."""
    lo = np.floor(np.min(vertices, axis=0)).astype(np.int64)
    hi = np.ceil(np.max(vertices, axis=0)).astype(np.int64)
    return [int(v) for v in lo] + [int(v) for v in hi]


def to_swc(skel: Skeleton) -> str:
    """SWC text (nodes in nm; radius from the ``radius`` attribute) via osteoid."""
    return skel.to_swc()
