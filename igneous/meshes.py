"""Mesh format knowledge, in one place (SPEC §4.2; docs/design-meshing.md §2).

Every name a forge writes and a merge, xfer, rm or clean reads is built here, so the
producers and consumers cannot drift apart:

* ``{mesh_dir}/info`` (legacy): ``{"@type": "neuroglancer_legacy_mesh", "mip": m,
  "chunk_size": [task shape], "spatial_index": {"resolution": [nm], "chunk_size": [shape·res]}}``.
* Unsharded forge fragment ``{segid}:{lod}:{BBOX}``: BBOX = ``Bbox.to_filename()`` of the
  task box in voxels at the mesh mip, clipped to the layer, *without* the +1 overlap.
  Content: a Precomputed mesh (``uint32 nv``, ``float32[nv·3]`` xyz in absolute nm,
  ``uint32[3·nf]``), or a Draco mesh when forged with ``encoding='draco'``; stored with the
  forge's ``compress`` (gzip by default). Neighbouring fragments of one label meet exactly
  on the centre plane of the shared voxel layer, so concatenating a label's fragments and
  welding identical vertices gives a watertight mesh.
* Legacy manifest ``{segid}:{lod}``: uncompressed JSON ``{"fragments": [names, sorted]}``.
* Sharded forge fragments ``{BBOX}.frags`` under ``frag_path`` (or the layer) ``/{mesh_dir}/``:
  a MapBuffer ``{segid: precomputed mesh bytes}`` with brotli per entry, stored *without*
  transport compression (so merges can range-read single entries), content type
  ``application/x.mapbuffer``. An empty task writes an empty MapBuffer (16-byte header).
* Spatial index ``{BBOX_nm}.spatial``: gzip JSON ``{"segid": [x0, y0, z0, x1, y1, z1]}`` in
  integer nm (floor of min, ceil of max of the label's fragment vertices). A forge task writes
  it **last**, even when ``{}``: its presence means "this box is finished".

What meshes share with skeletons lives in ``igneous.spatial`` (forge grid, ``.spatial`` and
``.frags`` names, completeness), ``igneous.layerfiles`` (compression variants, prefix schemes,
range reads), ``igneous.label_shards`` and ``igneous.tasks.image.voxels`` (voxel counts); this
module re-exports those names for the mesh code that has always used them from here. Merges
must look up labels ≥ 2^63 in an IntMap/MapBuffer with :func:`intmap_key`.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from cloudvolume.lib import Bbox

from igneous.layerfiles import (
    COMPRESSION_EXTENSIONS,
    RangeBuffer,
    filename_prefixes,
    legacy_merge_prefixes,
    read_sub_info,
    remove_other_variants,
    short_exact_names,
    strip_compression_extension,
    subdir_files,
    subdir_path,
    write_sub_info,
)
from igneous.ops.voxels import intmap_key
from igneous.spatial import (
    box_from_spatial_filename,
    expected_spatial_names,
    frags_filename,
    frags_filename_from_spatial,
    grid_boxes,
    missing_spatial_boxes,
    spatial_index_filename,
    spatial_index_info,
)
from igneous.tasks.image.voxels import read_voxel_counts as load_voxel_counts
from igneous.tasks.image.voxels import voxel_counts_filename
from igneous.validate import subdirectory

__all__ = [
    "LEGACY_MESH_TYPE",
    "MULTILOD_MESH_TYPE",
    "default_mesh_dir",
    "resolve_mesh_dir",
    "legacy_mesh_info",
    "read_mesh_info",
    "write_mesh_info",
    "fragment_filename",
    "manifest_filename",
    "parse_fragment_name",
    "mesh_files",
    "mesh_path",
    # shared with skeletons, re-exported (homes: igneous.spatial, igneous.layerfiles, …)
    "COMPRESSION_EXTENSIONS",
    "remove_other_variants",
    "strip_compression_extension",
    "frags_filename",
    "spatial_index_filename",
    "box_from_spatial_filename",
    "frags_filename_from_spatial",
    "grid_boxes",
    "expected_spatial_names",
    "missing_spatial_boxes",
    "voxel_counts_filename",
    "load_voxel_counts",
    "intmap_key",
    "RangeBuffer",
    "legacy_merge_prefixes",
    "filename_prefixes",
    "short_exact_names",
]

LEGACY_MESH_TYPE = "neuroglancer_legacy_mesh"
MULTILOD_MESH_TYPE = "neuroglancer_multilod_draco"
FRAGMENT_RE = re.compile(r"^(\d+):(\d+):(.+)$")

mesh_path = subdir_path
mesh_files = subdir_files


def default_mesh_dir(mip: int, max_simplification_error) -> str:
    """``mesh_mip_{mip}_err_{err}``; an integral error prints as an int (40, not 40.0)."""
    err = max_simplification_error
    if isinstance(err, float) and err.is_integer():
        err = int(err)
    return f"mesh_mip_{mip}_err_{err}"


def resolve_mesh_dir(info: dict, mesh_dir: Optional[str] = None) -> Optional[str]:
    """The mesh directory a command acts on: the given one, else the layer info's ``mesh``."""
    if mesh_dir is not None:  # given, even empty: it must name a folder inside the layer
        return subdirectory(mesh_dir, "mesh_dir (--dir)")
    found = info.get("mesh")  # the layer's own pointer must stay inside it too
    return subdirectory(found, 'the layer info\'s "mesh"', "mesh_mip_0_err_40") if found else None


def legacy_mesh_info(mip: int, shape: Sequence[int], resolution: Sequence[float], spatial_index: bool = True) -> dict:
    info = {"@type": LEGACY_MESH_TYPE, "mip": int(mip), "chunk_size": [int(s) for s in shape]}
    if spatial_index:
        info["spatial_index"] = spatial_index_info(shape, resolution)
    return info


read_mesh_info = read_sub_info
write_mesh_info = write_sub_info


def fragment_filename(segid: int, lod: int, box: Bbox) -> str:
    return f"{int(segid)}:{int(lod)}:{box.to_filename()}"


def manifest_filename(segid: int, lod: int = 0) -> str:
    return f"{int(segid)}:{int(lod)}"


def parse_fragment_name(name: str) -> Optional[tuple[int, int, str]]:
    """``'12:0:0-64_0-64_0-32'`` → ``(12, 0, '0-64_0-64_0-32')``; anything else → None."""
    m = FRAGMENT_RE.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3)
