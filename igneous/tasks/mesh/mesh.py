"""Mesh forging and legacy merge tasks (wire module ``igneous.tasks.mesh.mesh``, SPEC §3.4, §3.7).

``MeshTask`` is a ``RegisteredTask`` class (wire = flat dict with ``"class": "MeshTask"``);
the others are queueable functions. File names and formats come from ``igneous.meshes``.

What a forge task writes, for the box ``[offset, offset + shape) ∩ bounds`` at the mesh mip:

1. unsharded: ``{mesh_dir}/{segid}:{lod}:{BBOX}`` per label (Precomputed, or Draco, with
   ``compress``); sharded: one ``{frag root}/{mesh_dir}/{BBOX}.frags`` MapBuffer
   ``{segid: precomputed bytes}`` (brotli per entry, stored uncompressed);
2. **last**, when ``spatial_index``: ``{mesh_dir}/{BBOX_nm}.spatial``, even when empty. A box
   without its ``.spatial`` is unfinished; merges refuse to run until it exists.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import defaultdict
from typing import Iterable, Optional

import fastremap
import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume.lib import Bbox, Vec
from taskqueue import RegisteredTask

from igneous import meshes
from igneous.errors import IncompleteMeshError
from igneous.ops import mesh as ops
from igneous.tasks.image.common import download_renumbered, source_volume, task_box
from igneous.tasks.image.voxels import cached_voxel_counts, globally_small
from igneous.tasks.mesh.draco import draco_encoding_settings
from igneous.tasks.registry import queueable

__all__ = [
    "MeshTask",
    "MESH_TASK_DEFAULTS",
    "MeshManifestPrefixTask",
    "MeshManifestFilesystemTask",
    "TransferMeshFilesTask",
    "DeleteMeshFilesTask",
    "write_legacy_manifests",
]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.mesh.mesh"

MESH_TASK_DEFAULTS = {
    "cache_control": None,
    "draco_compression_level": 1,
    "draco_create_metadata": False,
    "dust_threshold": None,
    "dust_global": False,
    "encoding": "precomputed",
    "fill_missing": False,
    "generate_manifests": False,
    "high_padding": 1,
    "low_padding": 0,
    "lod": 0,
    "max_simplification_error": 40,
    "simplification_factor": 100,
    "mesh_dir": None,
    "frag_path": None,
    "mip": 0,
    "object_ids": None,
    "exclude_object_ids": [],
    "parallel_download": 1,
    "progress": False,
    "remap_table": None,
    "spatial_index": False,
    "sharded": False,
    "timestamp": None,
    "agglomerate": True,
    "stop_layer": 2,
    "compress": "gzip",
    "closed_dataset_edges": True,
    "fill_holes": 0,
    "dry_run": False,
}


_MESH_OPTIONS = frozenset(MESH_TASK_DEFAULTS)

_voxel_counts = cached_voxel_counts  # the worker-level cache lives with the counts' format


class MeshTask(RegisteredTask):
    """Forge one box of a segmentation into mesh fragments (SPEC §3.4 for every option).

    Only the options given travel in the queue message; the others take
    ``MESH_TASK_DEFAULTS``. An unknown option is refused (a misspelt option would otherwise
    be silently ignored by every worker).
    """

    def __init__(self, shape, offset, layer_path, **kwargs):
        if not kwargs.keys() <= _MESH_OPTIONS:
            unknown = sorted(set(kwargs) - _MESH_OPTIONS)
            raise TypeError(f"MeshTask got unknown option(s) {', '.join(map(repr, unknown))}")
        # RegisteredTask's __init__ without its per-argument loop (planners make millions of
        # these): the message holds exactly the arguments given; Vec conversion waits for execute.
        self._args = {"shape": shape, "offset": offset, "layer_path": layer_path, **kwargs}
        self.__dict__.update(MESH_TASK_DEFAULTS)
        self.__dict__.update(self._args)

    def execute(self) -> None:
        self.shape = Vec(*self.shape)
        self.offset = Vec(*self.offset)
        vol = source_volume(
            self.layer_path,
            self.mip,
            fill_missing=self.fill_missing,
            agglomerate=self.agglomerate,
            timestamp=self.timestamp,
            stop_layer=self.stop_layer,
        )
        mesh_dir = meshes.resolve_mesh_dir(vol.info, self.mesh_dir) or meshes.default_mesh_dir(
            self.mip, self.max_simplification_error
        )
        bounds = vol.meta.bounds(self.mip)
        box = task_box(vol, self.mip, self.shape, self.offset)
        read = Bbox.clamp(Bbox(box.minpt - self.low_padding, box.maxpt + self.high_padding), bounds)
        resolution = vol.meta.resolution(self.mip)

        labels, originals = self._labels(vol, read, bounds)
        pad_lo, pad_hi = ops.closed_edge_padding(
            read.minpt, read.maxpt, bounds.minpt, bounds.maxpt, self.closed_dataset_edges
        )

        fragments = {}  # original id -> encoded bytes
        spatial = {}
        for label, vertices, faces in self._meshes(labels, read.minpt, pad_lo, pad_hi, resolution):
            segid = int(originals[label])
            fragments[segid] = self._encode(segid, vertices, faces, resolution)
            spatial[str(segid)] = ops.mesh_bounds_nm(vertices)
        del labels

        if self.dry_run:
            return
        self._write_fragments(mesh_dir, box, fragments)
        if self.spatial_index:
            self._write_spatial_index(mesh_dir, box, spatial, vol)

    # -- reading and preparing labels ---------------------------------------------------------

    def _labels(self, vol, read: Bbox, bounds: Bbox) -> tuple[np.ndarray, dict]:
        """The read box renumbered to a small dtype, masked and dusted: ``(labels, new → original)``."""
        img, remap = download_renumbered(vol, read, self.mip, self.fill_missing)
        originals = {int(new): int(orig) for orig, new in remap.items()}

        if self.dust_global and self.dust_threshold:
            img = fastremap.mask(img, self._globally_small(vol, originals), in_place=True)
        if self.remap_table:
            img, originals = _apply_remap_table(img, originals, self.remap_table)
        if self.object_ids is not None:
            wanted = {int(x) for x in self.object_ids}
            keep = [new for new, orig in originals.items() if orig in wanted and new != 0]
            img = fastremap.mask_except(img, keep, in_place=True)
        if self.exclude_object_ids:
            unwanted = {int(x) for x in self.exclude_object_ids}
            drop = [new for new, orig in originals.items() if orig in unwanted and new != 0]
            if drop:
                img = fastremap.mask(img, drop, in_place=True)
        if self.dust_threshold and not self.dust_global:
            faces = ops.interior_faces(read.minpt, read.maxpt, bounds.minpt, bounds.maxpt)
            small = ops.seam_safe_dust(img, int(self.dust_threshold), faces)
            if small.size:
                img = fastremap.mask(img, small.tolist(), in_place=True)
        return np.asfortranarray(img), originals

    def _globally_small(self, vol, originals: dict) -> list:
        return globally_small(self.layer_path, vol.meta.key(self.mip), originals, self.dust_threshold, IncompleteMeshError)

    # -- meshing ------------------------------------------------------------------------------

    def _meshes(self, labels, read_min, pad_lo, pad_hi, resolution) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
        """``(renumbered label, vertices nm, faces)`` for every label with a surface."""
        forge = functools.partial(
            ops.forge_blocks,
            resolution=resolution,
            read_min=read_min,
            pad_lo=pad_lo,
            pad_hi=pad_hi,
            simplification_factor=int(self.simplification_factor or 0),
            max_simplification_error=self.max_simplification_error,
        )
        holes = {}
        if self.fill_holes and int(self.fill_holes) > 0 and labels.any():
            labels, hole_img = ops.fill_holes(labels, self.fill_holes, resolution)
            if hole_img.any():
                holes = {lbl: (v, f) for lbl, v, f in forge(hole_img)}
        if labels.any():
            for label, v, f in forge(labels):
                if label in holes:
                    yield (label, *ops.fuse([(v, f), holes.pop(label)]))
                else:
                    yield label, v, f
        for label, (v, f) in holes.items():
            yield label, v, f

    def _encode(self, segid: int, vertices, faces, resolution) -> bytes:
        # .frags always hold Precomputed meshes (SPEC §4.2): the sharded merge Draco-encodes them
        if self.encoding == "draco" and not self.sharded:
            import DracoPy

            settings = draco_encoding_settings(
                self.shape, self.offset, resolution, self.draco_compression_level, self.draco_create_metadata
            )
            try:
                return DracoPy.encode(vertices, faces, **settings)
            except Exception as err:  # Draco refuses all-degenerate meshes; keep the geometry losslessly
                log.warning("label %d: Draco refused its fragment (%s); stored as a Precomputed mesh", segid, err)
        return ops.encode_precomputed(vertices, faces)

    # -- writing ------------------------------------------------------------------------------

    def _write_fragments(self, mesh_dir: str, box: Bbox, fragments: dict) -> None:
        if self.sharded:
            from mapbuffer import MapBuffer

            root = self.frag_path or self.layer_path
            data = MapBuffer(fragments, compress="br").tobytes()
            CloudFiles(root).put(
                f"{mesh_dir}/{meshes.frags_filename(box)}",
                data,
                compress=None,
                content_type="application/x.mapbuffer",
                cache_control=self.cache_control,
            )
            return
        cf = meshes.mesh_files(self.layer_path)
        compress = self.compress if self.compress not in (None, False, "none", "false") else None
        meshes.remove_other_variants(
            self.layer_path, (f"{mesh_dir}/{meshes.fragment_filename(s, self.lod, box)}" for s in fragments), compress
        )
        cf.puts(
            (
                (f"{mesh_dir}/{meshes.fragment_filename(segid, self.lod, box)}", data)
                for segid, data in fragments.items()
            ),
            compress=compress,
            content_type="application/octet-stream",
            cache_control=self.cache_control,
        )
        if self.generate_manifests:
            cf.put_jsons(
                (
                    (
                        f"{mesh_dir}/{meshes.manifest_filename(segid, self.lod)}",
                        {"fragments": [meshes.fragment_filename(segid, self.lod, box)]},
                    )
                    for segid in fragments
                ),
                cache_control="no-cache",
            )

    def _write_spatial_index(self, mesh_dir: str, box: Bbox, spatial: dict, vol) -> None:
        mesh_info = meshes.read_mesh_info(self.layer_path, mesh_dir) or {}
        resolution = mesh_info.get("spatial_index", {}).get("resolution") or vol.info["scales"][self.mip]["resolution"]
        CloudFiles(self.layer_path).put(
            f"{mesh_dir}/{meshes.spatial_index_filename(box, resolution)}",
            json.dumps(spatial).encode("utf8"),
            compress="gzip",
            content_type="application/json",
            cache_control="no-cache",
        )


def _apply_remap_table(img: np.ndarray, originals: dict, remap_table: dict) -> tuple[np.ndarray, dict]:
    """Agglomerate: original id o becomes ``remap_table[o]``; renumbered labels that now share
    an id are merged, so their common surface disappears."""
    table = {int(k): int(v) for k, v in remap_table.items()}
    final = {new: table.get(orig, orig) for new, orig in originals.items()}
    order = {0: 0}
    for new in sorted(final):
        order.setdefault(final[new], len(order))
    img = fastremap.remap(img, {new: order[final[new]] for new in final}, preserve_missing_labels=True, in_place=True)
    return img, {idx: target for target, idx in order.items()}


# -- legacy merge ------------------------------------------------------------------------------


def _mesh_dir(layer_path: str, mesh_dir: Optional[str]) -> str:
    info = CloudFiles(layer_path).get_json("info") or {}
    found = meshes.resolve_mesh_dir(info, mesh_dir)
    if not found:
        raise IncompleteMeshError(f"{layer_path} has no mesh directory: pass mesh_dir or run `igneous mesh forge`")
    return found


def write_legacy_manifests(layer_path: str, mesh_dir: str, names: Iterable[str], lod: int = 0) -> int:
    """Group ``segid:lod:BBOX`` fragment names by label, write each ``{segid}:{lod}`` manifest,
    then read every manifest back and check it lists exactly those fragments. Returns the
    number of labels."""
    groups = defaultdict(list)
    for name in names:
        parsed = meshes.parse_fragment_name(name)
        if parsed is not None and parsed[1] == lod:
            groups[parsed[0]].append(name)
    if not groups:
        return 0
    cf = CloudFiles(layer_path)
    manifests = {
        f"{mesh_dir}/{meshes.manifest_filename(segid, lod)}": {"fragments": sorted(frags)}
        for segid, frags in groups.items()
    }
    cf.put_jsons(manifests.items(), compress=None, cache_control="no-cache")
    written = cf.get_json(list(manifests))
    for (path, expected), got in zip(manifests.items(), written):
        if got != expected:
            raise IncompleteMeshError(
                f"label {path.rsplit('/', 1)[-1].split(':')[0]}: manifest {path} was not written correctly "
                f"(expected {len(expected['fragments'])} fragments)"
            )
    return len(groups)


@queueable(WIRE)
def MeshManifestPrefixTask(layer_path: str, prefix: str, lod: int = 0, mesh_dir: Optional[str] = None) -> None:
    """Write the legacy manifests of every label whose fragments start with ``prefix``."""
    mesh_dir = _mesh_dir(layer_path, mesh_dir)
    names = (n[len(mesh_dir) + 1 :] for n in CloudFiles(layer_path).list(prefix=f"{mesh_dir}/{prefix}"))
    write_legacy_manifests(layer_path, mesh_dir, names, lod)


@queueable(WIRE)
def MeshManifestFilesystemTask(layer_path: str, lod: int = 0, mesh_dir: Optional[str] = None) -> None:
    """Write every legacy manifest of a local (file://) layer with one directory scan."""
    extracted = cfpaths.extract(layer_path)
    if extracted.protocol != "file":
        raise ValueError(f"MeshManifestFilesystemTask needs a file:// layer; got {layer_path}")
    mesh_dir = _mesh_dir(layer_path, mesh_dir)
    directory = os.path.join(extracted.path, mesh_dir)
    with os.scandir(directory) as entries:
        names = [meshes.strip_compression_extension(e.name) for e in entries if e.is_file()]
    write_legacy_manifests(layer_path, mesh_dir, names, lod)


@queueable(WIRE)
def TransferMeshFilesTask(src: str, dest: str, prefix: str, mesh_dir: Optional[str] = None) -> None:
    """Copy the mesh files starting with ``prefix`` byte for byte (compression kept)."""
    mesh_dir = _mesh_dir(src, mesh_dir)
    cf_src = CloudFiles(meshes.mesh_path(src, mesh_dir))
    cf_dest = CloudFiles(meshes.mesh_path(dest, mesh_dir))
    names = [n for n in cf_src.list(prefix=prefix) if n != "info"]
    if names:
        cf_src.transfer_to(cf_dest, paths=names, progress=False)


@queueable(WIRE)
def DeleteMeshFilesTask(cloudpath: str, prefix: str, mesh_dir: Optional[str] = None) -> None:
    """Delete the mesh files starting with ``prefix``."""
    mesh_dir = _mesh_dir(cloudpath, mesh_dir)
    cf = CloudFiles(meshes.mesh_path(cloudpath, mesh_dir))
    cf.delete(list(cf.list(prefix=prefix)))
