"""Skeleton tasks (wire module ``igneous.tasks.skeleton``, SPEC §3.5, §3.7).

``SkeletonTask``, ``UnshardedSkeletonMergeTask`` and ``ShardedSkeletonMergeTask`` are
``RegisteredTask`` classes (wire = flat dict with ``"class"``); the others are queueable
functions. Formats live in ``igneous.skeletons``; the compute in ``igneous.ops.skeleton``.

What a forge task writes, for its box ``[offset, offset + spatial_grid_shape)`` (it reads one
more voxel on the high sides: ``shape = spatial_grid_shape + 1``):

1. unsharded, several tasks: ``{skel_dir}/{segid}:{BBOX_nm}`` per label (Precomputed, gzip);
   unsharded, one task for the whole layer: the finished ``{skel_dir}/{segid}``;
   sharded: one ``{frag root}/{skel_dir}/{BBOX}.frags`` MapBuffer (brotli per entry);
2. **last**, when ``spatial_index``: ``{skel_dir}/{BBOX_nm}.spatial``, even when empty. A box
   without its ``.spatial`` is unfinished; merges refuse to run until it exists.

Every merge re-reads what it wrote: a label with fragments but no finished skeleton raises
``IncompleteSkeletonError`` naming it (labels whose whole cable is below ``dust_threshold`` are
dropped on purpose and logged).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import fastremap
import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification, synthesize_shard_file
from cloudvolume.lib import Bbox, Vec
from taskqueue import RegisteredTask

from igneous import skeletons as fmt
from igneous.errors import IncompleteSkeletonError
from igneous.label_shards import (
    check_shard_labels,
    check_shard_membership,
    read_shard_index,
    read_shard_labels,
    shard_labels_filename,
    shown,
)
from igneous.layerfiles import (
    RangeBuffer,
    read_sub_info,
    remove_other_variants,
    strip_compression_extension,
    subdir_files,
    subdir_path,
)
from igneous.ops import skeleton as ops
from igneous.ops.voxels import intmap_key
from igneous.spatial import frags_filename, frags_filename_from_spatial, spatial_index_filename
from igneous.tasks.image.common import download_renumbered, source_volume
from igneous.tasks.image.voxels import globally_small
from igneous.tasks.registry import queueable

__all__ = [
    "SkeletonTask",
    "UnshardedSkeletonMergeTask",
    "ShardedSkeletonMergeTask",
    "ShardedFromUnshardedSkeletonMergeTask",
    "DeleteSkeletonFilesTask",
    "TransferSkeletonFilesTask",
    "filename_to_segid",
    "strip_integer_attributes",
    "labels_for_shard",
    "frag_root",
]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.skeleton"
# A .frags file up to this size is read whole (one request); larger ones are range-read.
WHOLE_FRAGS_BYTES = 32 * 2**20
LABELS_PER_BATCH = 200


def _args(local: dict, names: Sequence[str]) -> dict:
    return {name: local[name] for name in names}


def _skel_context(cloudpath: str, skel_dir: Optional[str] = None) -> tuple[str, dict, dict]:
    """``(skel_dir, skeleton info, layer info)`` of a layer whose skeleton info exists."""
    layer_info = CloudFiles(cloudpath, progress=False).get_json("info")
    if layer_info is None:
        raise IncompleteSkeletonError(f"no layer info at {cloudpath}")
    skel_dir = fmt.resolve_skel_dir(layer_info, skel_dir)
    info = read_sub_info(cloudpath, skel_dir) if skel_dir else None
    if info is None:
        raise IncompleteSkeletonError(f"{cloudpath} has no skeleton info: run the skeleton planner first")
    return skel_dir, info, layer_info


def frag_root(cloudpath: str, frag_path: Optional[str], skel_dir: str) -> str:
    """Where a sharded forge's ``.frags`` go: ``{frag_path or layer}/{skel_dir}``; when
    ``frag_path`` is a layer whose info names a skeleton directory, that directory."""
    if not frag_path:
        return subdir_path(cloudpath, skel_dir)
    other = CloudFiles(frag_path, progress=False).get_json("info") or {}
    return subdir_path(frag_path, fmt.resolve_skel_dir(other) or skel_dir)


def filename_to_segid(filename: str) -> int:
    """The label of a fragment (``12:…``) or finished skeleton (``12``) name."""
    name = strip_compression_extension(filename.rsplit("/", 1)[-1])
    parsed = fmt.parse_fragment_name(name)
    if parsed is not None:
        return parsed[0]
    if fmt.is_final_name(name):
        return int(name)
    raise ValueError(f"{filename} is not a skeleton file name")


def strip_integer_attributes(skeletons):
    """Keep only float32 vertex attributes (what the info lists; SPEC: integer ones are dropped)."""
    single = not isinstance(skeletons, (list, tuple, dict))
    items = [skeletons] if single else (list(skeletons.values()) if isinstance(skeletons, dict) else skeletons)
    out = []
    for skel in items:
        attrs = [a for a in skel.extra_attributes if np.dtype(a["data_type"]) == np.float32]
        out.append(ops.keep_attributes(skel, attrs))
    if single:
        return out[0]
    if isinstance(skeletons, dict):
        return dict(zip(skeletons.keys(), out))
    return out


# -- forge --------------------------------------------------------------------------------------


class SkeletonTask(RegisteredTask):
    """Skeletonize one box of a segmentation into fragments (SPEC §3.5 for every option).

    Fragments hold exactly the skeleton info's float32 vertex attributes (radius, and
    cross_sectional_area when asked for), so every merge can decode them; integer attributes
    (vertex types, section contacts) are never stored, whatever ``strip_integer_attributes``
    says. ``progress`` and ``cross_sectional_area_low_memory_threshold`` are accepted for the
    wire format and have no effect.
    """

    def __init__(
        self,
        cloudpath: str,
        shape: Sequence[int],
        offset: Sequence[int],
        mip: int,
        teasar_params: dict,
        will_postprocess: bool,
        info: Optional[dict] = None,
        object_ids: Optional[Sequence[int]] = None,
        mask_ids: Optional[Sequence[int]] = None,
        fix_branching: bool = True,
        fix_borders: bool = True,
        fix_avocados: bool = False,
        fill_holes: int = 0,
        dust_threshold: int = 1000,
        progress: bool = False,
        parallel: int = 1,
        fill_missing: bool = False,
        sharded: bool = False,
        frag_path: Optional[str] = None,
        spatial_index: bool = True,
        spatial_grid_shape: Optional[Sequence[int]] = None,
        synapses: Optional[dict] = None,
        dust_global: bool = False,
        cross_sectional_area: bool = False,
        cross_sectional_area_smoothing_window: int = 1,
        cross_sectional_area_shape_delta: int = 150,
        cross_sectional_area_repair_sec_per_label: int = 0,
        cross_sectional_area_low_memory_threshold: int = 8000000000,
        dry_run: bool = False,
        strip_integer_attributes: bool = True,
        fix_autapses: bool = False,
        timestamp: Optional[int] = None,
        root_ids_cloudpath: Optional[str] = None,
    ):
        # RegisteredTask's __init__, without its per-argument loop: planners make millions of these
        args = dict(locals())  # exactly the parameters, in signature order (nothing else is bound yet)
        del args["self"]
        self._args = args
        self.__dict__.update(args)

    def execute(self) -> None:
        self.shape = Vec(*self.shape)
        self.offset = Vec(*self.offset)
        grid = self.spatial_grid_shape
        self.spatial_grid_shape = Vec(*(grid if grid is not None else self.shape))
        graphene = self.cloudpath.startswith("graphene://")
        if not graphene and (self.fix_autapses or self.root_ids_cloudpath or self.timestamp is not None):
            raise ValueError("fix_autapses, timestamp and root_ids_cloudpath need a graphene:// segmentation")
        if self.fix_autapses:
            raise NotImplementedError("fix_autapses (graphene L2 connectivity) is not supported by this worker")
        vol = source_volume(
            self.cloudpath, self.mip, fill_missing=self.fill_missing, agglomerate=graphene, timestamp=self.timestamp
        )
        skel_dir = fmt.resolve_skel_dir(vol.info) or fmt.default_skel_dir(self.mip)
        info = self.info or read_sub_info(vol.meta.cloudpath, skel_dir)
        if info is None:
            raise IncompleteSkeletonError(
                f"{self.cloudpath}/{skel_dir}/info is missing: run create_skeletonizing_tasks"
            )
        attributes = [a for a in info.get("vertex_attributes", [fmt.RADIUS]) if a["data_type"] == "float32"]
        bounds = vol.meta.bounds(self.mip)
        read = Bbox.clamp(Bbox(self.offset, self.offset + self.shape), bounds)
        grid = Bbox.clamp(Bbox(self.offset, self.offset + self.spatial_grid_shape), bounds)
        if read.subvoxel() or grid.subvoxel():
            return
        resolution = np.asarray(vol.meta.resolution(self.mip), dtype=np.float64)

        labels, originals = self._labels(vol, read, bounds, resolution)
        targets = self._synapse_targets(labels, originals, read)
        skels = ops.skeletonize_blocks(
            labels,
            resolution,
            self.teasar_params or ops.DEFAULT_TEASAR_PARAMS,
            fix_branching=bool(self.fix_branching),
            fix_borders=bool(self.fix_borders),
            fix_avocados=bool(self.fix_avocados),
            parallel=int(self.parallel or 1),
            targets=targets,
        )
        if self.cross_sectional_area and skels:
            skels = self._cross_sections(vol, labels, skels, read, resolution, originals)
        del labels

        finals = not self.will_postprocess and not self.sharded
        fragments = {}
        spatial = {}
        for label, skel in skels.items():
            segid = int(originals[label])
            skel.vertices = ops.place_vertices(skel.vertices, read.minpt, resolution)
            skel.space = "physical"
            skel.id = segid
            if finals:  # the task covers the layer: its skeletons are finished here
                skel = ops.prune_forced_stubs(
                    skel, info.get(fmt.FORGE_KEY), resolution, bounds.minpt, bounds.maxpt, single_task=True
                )
            fragments[segid] = fmt.encode_skeleton(skel, attributes)
            spatial[str(segid)] = fmt.skeleton_bounds_nm(skel.vertices)
        if self.dry_run:
            return
        res_json = (info.get("spatial_index") or {}).get("resolution") or vol.info["scales"][self.mip]["resolution"]
        self._write_fragments(vol.meta.cloudpath, skel_dir, read, grid, res_json, fragments)
        if self.spatial_index:
            self._write_spatial_index(vol.meta.cloudpath, skel_dir, grid, res_json, spatial)

    # -- preparing labels ---------------------------------------------------------------------

    def _labels(self, vol, read: Bbox, bounds: Bbox, resolution) -> tuple[np.ndarray, dict]:
        """The read box renumbered, masked and dusted: ``(labels, new → original)``."""
        if self.root_ids_cloudpath:  # graphene: a materialized root-id layer instead of the chunkgraph
            vol = source_volume(self.root_ids_cloudpath, self.mip, fill_missing=self.fill_missing)
        img, remap = download_renumbered(vol, read, self.mip, self.fill_missing)
        originals = {int(new): int(orig) for orig, new in remap.items()}
        if self.object_ids is not None:
            wanted = {int(x) for x in self.object_ids}
            keep = [new for new, orig in originals.items() if orig in wanted and new != 0]
            img = fastremap.mask_except(img, keep, in_place=True)
        if self.mask_ids:
            unwanted = {int(x) for x in self.mask_ids}
            drop = [new for new, orig in originals.items() if orig in unwanted and new != 0]
            if drop:
                img = fastremap.mask(img, drop, in_place=True)
        if self.dust_global and self.dust_threshold:
            small = globally_small(
                vol.meta.cloudpath, vol.meta.key(self.mip), originals, int(self.dust_threshold), IncompleteSkeletonError
            )
            if small:
                img = fastremap.mask(img, small, in_place=True)
        img = np.asfortranarray(img)
        if self.fill_holes and int(self.fill_holes) > 0 and img.any():
            from igneous.ops.mesh import fill_holes

            img, _ = fill_holes(img, int(self.fill_holes), resolution)
        if self.dust_threshold and not self.dust_global:
            faces = ops.interior_faces(read.minpt, read.maxpt, bounds.minpt, bounds.maxpt)
            img = ops.seam_safe_dust(img, int(self.dust_threshold), faces)
        return np.asfortranarray(img), originals

    def _synapse_targets(self, labels: np.ndarray, originals: dict, read: Bbox) -> Optional[dict]:
        """``{label: [voxel in labels]}``: the voxel of each synapse's label nearest its centroid."""
        if not self.synapses:
            return None
        import kimimaro

        by_original = {orig: new for new, orig in originals.items()}
        wanted = {}
        for label, pairs in self.synapses.items():
            new = by_original.get(int(label))
            if new is None or new == 0:
                continue
            wanted[new] = [(tuple(np.asarray(c, dtype=np.int64) - read.minpt), swc) for c, swc in pairs]
        if not wanted:
            return None
        found = kimimaro.synapses_to_targets(labels, wanted)
        targets: dict = defaultdict(list)
        for pt in found:
            targets[int(labels[pt])].append(pt)
        return dict(targets)

    # -- cross sections -----------------------------------------------------------------------

    def _cross_sections(self, vol, labels, skels: dict, read: Bbox, resolution, originals: dict) -> dict:
        smoothing = int(self.cross_sectional_area_smoothing_window or 1)
        skels = ops.cross_sectional_areas(labels, skels, resolution, smoothing)
        budget = self.cross_sectional_area_repair_sec_per_label
        if not budget:
            return skels
        touched = {label for label, s in skels.items() if np.any(s.cross_sectional_area_contacts)}
        if not touched:
            return skels
        # Sections that touched the cutout may be cut short: recompute them in a larger box.
        delta = int(self.cross_sectional_area_shape_delta)
        big = Bbox.clamp(Bbox(read.minpt - delta, read.maxpt + delta), vol.meta.bounds(self.mip))
        img, remap = download_renumbered(vol, big, self.mip, self.fill_missing)
        shift = (read.minpt - big.minpt).astype(np.float32)
        by_original = {orig: new for new, orig in remap.items()}
        for label in sorted(touched):
            start = time.time()
            new = by_original.get(originals[label])
            if new is None:
                continue
            binary = np.asfortranarray(img == new).astype(np.uint8)
            skel = skels[label]
            skel.vertices = skel.vertices + shift
            try:
                ops.cross_sectional_areas(binary, {1: skel}, resolution, smoothing, repair_contacts=True)
            finally:
                skel.vertices = skel.vertices - shift
            if budget >= 0 and time.time() - start > budget:
                log.info("label %d: cross-section repair used its %s s budget", originals[label], budget)
        return skels

    # -- writing (a dry run's plan measures these instead: igneous.plans.skeleton) -------------

    def _write_spatial_index(self, layer: str, skel_dir: str, grid: Bbox, res_json, spatial: dict) -> None:
        CloudFiles(layer, progress=False).put(
            f"{skel_dir}/{spatial_index_filename(grid, res_json)}",
            json.dumps(spatial).encode("utf8"),
            compress="gzip",
            content_type="application/json",
            cache_control="no-cache",
        )

    def _write_fragments(self, layer: str, skel_dir: str, read: Bbox, grid: Bbox, res_json, fragments: dict) -> None:
        if self.sharded:
            from mapbuffer import MapBuffer

            root = frag_root(layer, self.frag_path, skel_dir)
            CloudFiles(root, progress=False).put(
                frags_filename(grid),
                MapBuffer(fragments, compress="br").tobytes(),
                compress=None,
                content_type="application/x.mapbuffer",
                cache_control="no-cache",
            )
            return
        if self.will_postprocess:
            names = {segid: fmt.fragment_filename(segid, read, res_json) for segid in fragments}
        else:  # the whole layer in one task: these are the finished skeletons
            names = {segid: str(segid) for segid in fragments}
        directory = subdir_path(layer, skel_dir)
        remove_other_variants(directory, names.values(), "gzip")
        subdir_files(directory).puts(
            ((names[segid], data) for segid, data in fragments.items()),
            compress="gzip",
            content_type="application/octet-stream",
            cache_control="no-cache",
        )


# -- merging --------------------------------------------------------------------------------------


def _attributes(info: dict) -> list:
    return [a for a in info.get("vertex_attributes", [fmt.RADIUS]) if a["data_type"] == "float32"]


class _MergeContext:
    """What merging a label needs from the infos: attributes, the forge grid, the layer box."""

    def __init__(self, info: dict, layer_info: dict):
        self.attributes = _attributes(info)
        self.forge = info.get(fmt.FORGE_KEY)
        scale = layer_info["scales"][int(info.get("mip", 0))]
        self.resolution = np.asarray(scale["resolution"], dtype=np.float64)
        self.bounds_min = np.asarray(scale["voxel_offset"], dtype=np.int64)
        self.bounds_max = self.bounds_min + np.asarray(scale["size"], dtype=np.int64)

    def faces(self, read_box: Bbox) -> list:
        """The planes a fragment read from ``read_box`` (voxels) shares with its neighbours (nm)."""
        return ops.shared_faces_nm(read_box.minpt, read_box.maxpt, self.bounds_min, self.bounds_max, self.resolution)

    def merge(self, fragments: List, dust_threshold, tick_threshold, max_cable_length, boxes=None):
        """Fragments → one skeleton: merge seam vertices (one set of in-plane paths per shared
        plane), prune the stubs seams forced, then kimimaro's postprocess. None when nothing is
        left (shorter than ``dust_threshold``). ``boxes``: each fragment's read box (voxels)."""
        faces = [self.faces(b) for b in boxes] if boxes is not None else None
        skel = ops.merge_fragments(fragments, faces)
        skel = ops.prune_forced_stubs(skel, self.forge, self.resolution, self.bounds_min, self.bounds_max)
        skel = ops.postprocess(skel, dust_threshold, tick_threshold, max_cable_length)
        return None if skel.empty() else ops.keep_attributes(skel, self.attributes)


def _box_order(names, box_of) -> list:
    """Fragments in one order for every merge (unsharded names hold nm boxes, .frags voxel
    boxes): by box corner, z then y then x. A merged vertex keeps the attributes of its first
    occurrence, so the order decides its radius."""
    return sorted(names, key=lambda n: tuple(float(c) for c in reversed(Bbox.from_filename(box_of(n), dtype=float).minpt)))


def _crop_fragment(skel, name_box: str, crop: int, resolution) -> object:
    box = Bbox.from_filename(name_box, dtype=float)
    margin = np.asarray(resolution, dtype=np.float64) * int(crop)
    return skel.crop(Bbox(box.minpt + margin, box.maxpt - margin))


def merge_unsharded_label(context: _MergeContext, label: int, named: List[tuple], crop: int, dust_threshold,
                          tick_threshold, max_cable_length):  # fmt: skip
    """One label's unsharded fragments ``[(name, bytes)]`` (in ``_box_order``) → its skeleton,
    or None when the merge drops it as dust."""
    frags, boxes = [], []
    for name, data in named:
        skel = fmt.decode_fragment(data, label, context.attributes, name=name)
        if crop:
            skel = _crop_fragment(skel, name.split(":", 1)[1], crop, context.resolution)
        frags.append(skel)
        nm = Bbox.from_filename(name.split(":", 1)[1], dtype=float)
        boxes.append(Bbox(np.rint(np.asarray(nm.minpt) / context.resolution).astype(np.int64),
                          np.rint(np.asarray(nm.maxpt) / context.resolution).astype(np.int64)))  # fmt: skip
    skel = context.merge(frags, dust_threshold, tick_threshold, max_cable_length, boxes=boxes)
    if skel is not None:
        skel.id = label
    return skel


def merge_sharded_label(context: _MergeContext, label: int, entries: List[tuple], dust_threshold, tick_threshold,
                        max_cable_length):  # fmt: skip
    """One label's ``.frags`` entries ``[(task box, bytes)]`` (from ``collect_fragments``) → its
    skeleton, or None when the merge drops it as dust."""
    frags = [fmt.decode_skeleton(data, label, context.attributes) for _, data in entries]
    reads = [Bbox(b.minpt, np.minimum(b.maxpt + 1, context.bounds_max)) for b, _ in entries]
    skel = context.merge(frags, dust_threshold, tick_threshold, max_cable_length, boxes=reads)
    if skel is not None:
        skel.id = label
    return skel


class UnshardedSkeletonMergeTask(RegisteredTask):
    """Merge the fragments of every label whose file names start with ``prefix`` into
    ``{skel_dir}/{segid}``, then read every written skeleton back."""

    def __init__(
        self,
        cloudpath: str,
        prefix: str,
        crop: int = 0,
        dust_threshold: float = 4000,
        max_cable_length: Optional[float] = None,
        tick_threshold: float = 6000,
        delete_fragments: bool = False,
    ):
        super().__init__(**_args(locals(), self._arg_names))

    def execute(self) -> None:
        skel_dir, info, layer_info = _skel_context(self.cloudpath)
        context = _MergeContext(info, layer_info)
        attributes = context.attributes
        directory = subdir_path(self.cloudpath, skel_dir)
        cf = subdir_files(directory)
        by_label: Dict[int, List[str]] = defaultdict(list)
        for name in cf.list(prefix=str(self.prefix), flat=True):
            name = strip_compression_extension(name)
            parsed = fmt.parse_fragment_name(name)
            if parsed is not None:
                by_label[parsed[0]].append(name)
        labels = sorted(by_label)
        written: Dict[int, int] = {}
        dust = []
        for start in range(0, len(labels), LABELS_PER_BATCH):
            batch = labels[start : start + LABELS_PER_BATCH]
            names = [n for label in batch for n in _box_order(by_label[label], lambda n: n.split(":", 1)[1])]
            contents = (
                {n: cf.get(n) for n in names}
                if cf.protocol == "file"
                else {r["path"]: r["content"] for r in cf.get(names)}
            )
            finals = []
            for label in batch:
                named = []
                for name in _box_order(by_label[label], lambda n: n.split(":", 1)[1]):
                    data = contents.pop(name, None)
                    if data is None:
                        raise IncompleteSkeletonError(f"label {label}: fragment {name} was listed but cannot be read")
                    named.append((name, data))
                skel = merge_unsharded_label(
                    context, label, named, self.crop, self.dust_threshold, self.tick_threshold, self.max_cable_length
                )
                if skel is None:
                    dust.append(label)
                    continue
                data = fmt.encode_skeleton(skel, attributes)
                finals.append((str(label), data))
                written[label] = len(skel.vertices)
            remove_other_variants(directory, (n for n, _ in finals), "gzip")
            cf.puts(finals, compress="gzip", content_type="application/octet-stream", cache_control="no-cache")
        if dust:
            log.info(
                "prefix %s: %d label(s) shorter than %s nm dropped (%s)",
                self.prefix,
                len(dust),
                self.dust_threshold,
                shown(dust),
            )
        _verify_unsharded(cf, written, attributes)
        if self.delete_fragments:
            cf.delete([n for label in labels for n in by_label[label]])


def _verify_unsharded(cf: CloudFiles, written: Dict[int, int], attributes) -> None:
    labels = sorted(written)
    for start in range(0, len(labels), LABELS_PER_BATCH):
        batch = labels[start : start + LABELS_PER_BATCH]
        for label in batch:
            data = cf.get(str(label))
            if data is None:
                raise IncompleteSkeletonError(f"label {label}: its skeleton {label} was not written")
            try:
                skel = fmt.decode_skeleton(data, label, attributes)
            except Exception as err:
                raise IncompleteSkeletonError(f"label {label}: the written skeleton does not decode ({err})") from None
            if len(skel.vertices) != written[label]:
                raise IncompleteSkeletonError(
                    f"label {label}: wrote {written[label]} vertices but read back {len(skel.vertices)}"
                )


def labels_for_shard(cv, shard_no: str, progress: bool = False, skel_dir: Optional[str] = None) -> List[int]:
    """The labels the planner assigned to ``shard_no`` (``{skel_dir}/{shard_no}.labels``);
    ``cv`` is a CloudVolume or a cloudpath."""
    cloudpath = getattr(cv, "cloudpath", cv)
    if skel_dir is None:
        skel_dir = fmt.resolve_skel_dir(CloudFiles(cloudpath, progress=False).get_json("info") or {})
    labels = read_shard_labels(subdir_path(cloudpath, skel_dir), shard_no)
    if labels is None:
        raise IncompleteSkeletonError(
            f"shard {shard_no}: {skel_dir}/{shard_labels_filename(shard_no)} is missing; rerun the sharded merge planner"
        )
    return labels


def _spec(info: dict) -> ShardingSpecification:
    if not info.get("sharding"):
        raise IncompleteSkeletonError("the skeleton info has no sharding: run the sharded merge planner first")
    return ShardingSpecification.from_dict(info["sharding"])


def _locations(cloudpath: str, labels: Sequence[int], spatial_index_db: Optional[str], cache) -> Dict[int, List[str]]:
    """``{label: [.spatial basenames]}`` from the skeleton spatial index (SQL when given)."""
    from cloudvolume import CloudVolume

    vol = CloudVolume(cloudpath, spatial_index_db=spatial_index_db, progress=False, cache=cache, cdn_cache=False)
    index = vol.skeleton.spatial_index
    if index is None:
        raise IncompleteSkeletonError("the skeleton info has no spatial_index: the sharded merge cannot find fragments")
    found = index.file_locations_per_label(labels)
    missing = [x for x in labels if not found.get(int(x))]
    if missing:
        raise IncompleteSkeletonError(
            f"labels {shown(missing)} are not in the spatial index: no forged fragments found"
        )
    return {int(x): sorted(found[int(x)]) for x in labels}


def collect_fragments(root: str, locations: Dict[int, List[str]], resolution_json) -> Dict[int, List[tuple]]:
    """``{label: [(task box in voxels, fragment bytes)]}`` in one fixed order, for one shard's labels.

    Memory: only these labels' entries. Each ``.frags`` is read once, whole when small, else
    by byte ranges (its header, index and the entries needed), so a merge does not grow with
    the size of the dataset.
    """
    from mapbuffer import MapBuffer

    by_file: Dict[str, List[int]] = defaultdict(list)
    for label, spatials in locations.items():
        for name in spatials:
            by_file[frags_filename_from_spatial(name, resolution_json)].append(label)
    cf = CloudFiles(root, progress=False)
    sizes = cf.size(sorted(by_file))
    out: Dict[int, List[tuple]] = defaultdict(list)
    for fname in _box_order(by_file, lambda n: n[: -len(".frags")]):
        size = sizes.get(fname)
        if size is None:
            raise IncompleteSkeletonError(
                f"label {by_file[fname][0]}: {root}/{fname} is missing (rerun the forge task of that box)"
            )
        buffer = cf.get(fname) if size <= WHOLE_FRAGS_BYTES else RangeBuffer(root, fname, size)
        mbuf = MapBuffer(buffer)
        for label in by_file[fname]:
            entry = mbuf.get(intmap_key(label))
            if entry is None:
                raise IncompleteSkeletonError(
                    f"label {label}: not found in {fname}, which the spatial index names for it"
                )
            out[label].append((Bbox.from_filename(fname[: -len(".frags")]), entry))
        del mbuf, buffer
    return out


def write_shard(directory: str, spec: ShardingSpecification, shard_no: str, payloads: Dict[int, bytes], attributes):
    """Write ``{shard_no}.shard`` and verify it: exactly these labels, each decodes with the
    vertex count written. A shard that fails is deleted (a shard means "finished" to clean)."""
    expected = {label: len(fmt.decode_skeleton(data, label, attributes).vertices) for label, data in payloads.items()}
    shard = synthesize_shard_file(spec, payloads)
    del payloads
    cf = CloudFiles(directory, progress=False)
    cf.put(f"{shard_no}.shard", shard, compress=None, content_type="application/octet-stream", cache_control="no-cache")
    del shard
    try:
        verify_shard(cf.get(f"{shard_no}.shard"), spec, expected, shard_no, attributes)
    except Exception:
        cf.delete(f"{shard_no}.shard")
        raise


def verify_shard(shard: Optional[bytes], spec: ShardingSpecification, expected: Dict[int, int], shard_no, attributes):
    import gzip

    if shard is None:
        raise IncompleteSkeletonError(f"shard {shard_no}: {shard_no}.shard was not written")
    found = read_shard_index(shard, spec)
    check_shard_labels(found, expected, shard_no, error=IncompleteSkeletonError)
    for label, (start, size) in found.items():
        data = shard[start : start + size]
        if spec.data_encoding == "gzip":
            data = gzip.decompress(data)
        try:
            n = len(fmt.decode_skeleton(data, label, attributes).vertices)
        except Exception as err:
            raise IncompleteSkeletonError(f"shard {shard_no}: label {label} does not decode ({err})") from None
        if n != expected[label]:
            raise IncompleteSkeletonError(
                f"shard {shard_no}: label {label} has {n} vertices, {expected[label]} written"
            )


class ShardedSkeletonMergeTask(RegisteredTask):
    """Build shard ``shard_no`` from the sharded forge's ``.frags``, located through the
    spatial index (``.spatial`` files, or ``spatial_index_db``).

    Memory is bounded by one shard's work: its labels' fragment entries (read entry by entry,
    never whole ``.frags`` of the dataset) and its finished skeletons.
    """

    def __init__(
        self,
        cloudpath: str,
        shard_no: str,
        dust_threshold: float = 4000,
        tick_threshold: float = 6000,
        frag_path: Optional[str] = None,
        cache: bool = False,
        spatial_index_db: Optional[str] = None,
        max_cable_length: Optional[float] = None,
        dry_run: bool = False,
    ):
        super().__init__(**_args(locals(), self._arg_names))

    def execute(self) -> None:
        skel_dir, info, layer_info = _skel_context(self.cloudpath)
        spec = _spec(info)
        context = _MergeContext(info, layer_info)
        attributes = context.attributes
        labels = labels_for_shard(self.cloudpath, self.shard_no, skel_dir=skel_dir)
        check_shard_membership(spec, labels, self.shard_no)
        locations = _locations(self.cloudpath, labels, self.spatial_index_db, self.cache)
        raw = collect_fragments(
            frag_root(self.cloudpath, self.frag_path, skel_dir), locations, info["spatial_index"]["resolution"]
        )
        del locations
        payloads, dust = {}, []
        for label in labels:
            skel = merge_sharded_label(
                context, label, raw.pop(label), self.dust_threshold, self.tick_threshold, self.max_cable_length
            )
            if skel is None:
                dust.append(label)
                continue
            payloads[label] = fmt.encode_skeleton(skel, attributes)
        if dust:
            log.info(
                "shard %s: %d label(s) shorter than %s nm dropped (%s)",
                self.shard_no,
                len(dust),
                self.dust_threshold,
                shown(dust),
            )
        if self.dry_run:
            return
        write_shard(subdir_path(self.cloudpath, skel_dir), spec, self.shard_no, payloads, attributes)


@queueable(WIRE)
def ShardedFromUnshardedSkeletonMergeTask(
    src: str, dest: str, shard_no: str, cache_control=False, skel_dir: Optional[str] = None, progress: bool = False
) -> None:
    """One dest shard from finished unsharded skeletons of ``src`` (repacked, not re-merged)."""
    dest_dir, info, _ = _skel_context(dest, skel_dir)
    spec = _spec(info)
    attributes = _attributes(info)
    labels = labels_for_shard(dest, shard_no, skel_dir=dest_dir)
    check_shard_membership(spec, labels, shard_no)
    src_layer = CloudFiles(src, progress=False).get_json("info") or {}
    src_dir = skel_dir or fmt.resolve_skel_dir(src_layer) or dest_dir
    cf = subdir_files(subdir_path(src, src_dir))
    payloads = {}
    for start in range(0, len(labels), LABELS_PER_BATCH):
        batch = labels[start : start + LABELS_PER_BATCH]
        for label in batch:
            data = cf.get(str(label))
            if data is None:
                raise IncompleteSkeletonError(f"label {label}: {src_dir}/{label} is missing in {src}")
            payloads[label] = data
    write_shard(subdir_path(dest, dest_dir), spec, shard_no, payloads, attributes)


@queueable(WIRE)
def DeleteSkeletonFilesTask(cloudpath: str, prefix: str, skel_dir: Optional[str] = None) -> None:
    """Delete the skeleton files starting with ``prefix``."""
    skel_dir = skel_dir or fmt.resolve_skel_dir(CloudFiles(cloudpath, progress=False).get_json("info") or {})
    if not skel_dir:
        raise IncompleteSkeletonError(f"{cloudpath} has no skeleton directory: pass skel_dir")
    cf = CloudFiles(subdir_path(cloudpath, skel_dir), progress=False)
    cf.delete(list(cf.list(prefix=prefix)))


@queueable(WIRE)
def TransferSkeletonFilesTask(src: str, dest: str, prefix: str, skel_dir: Optional[str] = None) -> None:
    """Copy the skeleton files starting with ``prefix`` byte for byte (compression kept)."""
    skel_dir = skel_dir or fmt.resolve_skel_dir(CloudFiles(src, progress=False).get_json("info") or {})
    if not skel_dir:
        raise IncompleteSkeletonError(f"{src} has no skeleton directory: pass skel_dir")
    cf_src = CloudFiles(subdir_path(src, skel_dir), progress=False)
    names = [n for n in cf_src.list(prefix=prefix) if n != "info"]
    if names:
        cf_src.transfer_to(CloudFiles(subdir_path(dest, skel_dir), progress=False), paths=names)
