"""Planning graphene (PyChunkGraph) meshes (SPEC §2.2): L2 meshing and hybrid manifests.

A ``graphene://`` layer's info comes from its server; the data (watershed, meshes) lives
under the info's ``data_dir``, which is where the mesh info and shards are written. The
planners validate their parameters before they contact the server, and refuse a
non-graphene path for meshing in one line.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Iterator, Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification
from cloudvolume.lib import Bbox, Vec

from igneous import meshes
from igneous.errors import InvalidParameterError
from igneous.task_creation.common import GridTasks, graphene_prefixes, record_provenance, to_bbox
from igneous.tasks.mesh.graphene import L2, GrapheneMeshTask
from igneous.tasks.mesh.mesh import MeshManifestPrefixTask
from igneous.validate import label_list, plain, whole

__all__ = [
    "create_graphene_meshing_tasks",
    "create_graphene_hybrid_mesh_manifest_tasks",
    "graphene_meshing_plan",
    "graphene_chunk_shape",
]

log = logging.getLogger(__name__)

DEFAULT_MESH_DIR = "meshes"


def _require_graphene(cloudpath: str) -> None:
    if not isinstance(cloudpath, str) or not cloudpath.startswith("graphene://"):
        raise InvalidParameterError(f"graphene meshing needs a graphene:// layer; got {cloudpath!r}")


def _check_sharding(sharding) -> Optional[dict]:
    """A sharding spec for L2 meshes: one spec, or ``{layer: spec}`` with layer 2 in it."""
    if sharding is None:
        return None
    if not isinstance(sharding, dict):
        raise InvalidParameterError(f"sharding must be a sharding specification (dict); got {sharding!r}")
    per_layer = sharding if "@type" not in sharding else {str(L2): sharding}
    try:
        for spec in per_layer.values():
            ShardingSpecification.from_dict(copy.deepcopy(spec))
    except Exception as err:
        raise InvalidParameterError(f"sharding is not a valid sharding specification ({err})") from None
    if str(L2) not in {str(k) for k in per_layer}:
        raise InvalidParameterError(f"sharding must give a specification for layer {L2}")
    return {str(k): v for k, v in per_layer.items()}


def create_graphene_meshing_tasks(
    cloudpath: str,
    timestamp,
    mip: int,
    simplification: bool = True,
    max_simplification_error=40,
    mesh_dir: Optional[str] = None,
    cdn_cache: bool = False,
    object_ids=None,
    progress: bool = False,
    fill_missing: bool = False,
    sharding=None,
    draco_compression_level: int = 1,
    bounds=None,
):
    """Plan L2 meshing of a graphene segmentation: one ``GrapheneMeshTask`` per graph chunk.

    Each task meshes one graph chunk (``graph.chunk_size`` voxels at the watershed mip,
    rescaled to ``mip``, which must be at or above the watershed mip) into the initial shards
    ``{mesh_dir}/initial/2/``. The mesh info (``{data_dir}/{mesh_dir}/info``, default
    mesh_dir ``meshes``) gets ``@type``, ``mip``, ``chunk_size`` and the layer-2 ``sharding``
    (given here, or already in the info). ``object_ids`` is accepted for compatibility and
    ignored: every L2 id of a chunk is meshed.

    Contacts the graphene server once (for the info) after every parameter is checked.
    """
    _require_graphene(cloudpath)
    mip = whole(mip, "mip", 0)
    whole(draco_compression_level, "draco_compression_level", 0, 10)
    if not isinstance(max_simplification_error, (int, float)) or max_simplification_error < 0:
        raise InvalidParameterError(f"max_simplification_error must be >= 0; got {max_simplification_error!r}")
    sharding = _check_sharding(sharding)
    if object_ids is not None:
        label_list(object_ids, "object_ids")
        log.warning("object_ids is ignored by graphene meshing: every L2 id of each chunk is meshed")
    if bounds is not None:
        bounds = to_bbox(bounds)
    vol = CloudVolume(cloudpath, mip=0, progress=False, cdn_cache=False)  # the server call
    return graphene_meshing_plan(
        vol, cloudpath, timestamp, mip, simplification=simplification,
        max_simplification_error=max_simplification_error, mesh_dir=mesh_dir, cdn_cache=cdn_cache,
        progress=progress, fill_missing=fill_missing, sharding=sharding,
        draco_compression_level=draco_compression_level, bounds=bounds,
    )  # fmt: skip


def graphene_chunk_shape(vol, mip: int) -> Vec:
    """One graph chunk in voxels at ``mip`` (the graph's chunk size is at the watershed mip)."""
    ws = int(vol.meta.watershed_mip)
    chunk = np.asarray(vol.meta.graph_chunk_size, dtype=np.float64)
    ratio = np.asarray(vol.meta.resolution(mip), float) / np.asarray(vol.meta.resolution(ws), float)
    shape = chunk / ratio
    if np.any(shape < 1) or not np.allclose(shape, np.rint(shape)):
        raise InvalidParameterError(
            f"mip {mip} does not divide the graph chunk {tuple(int(c) for c in chunk)} (watershed mip {ws}) "
            "into whole voxels"
        )
    return Vec(*np.rint(shape).astype(int))


def graphene_meshing_plan(
    vol,
    cloudpath: str,
    timestamp,
    mip: int,
    simplification: bool = True,
    max_simplification_error=40,
    mesh_dir: Optional[str] = None,
    cdn_cache: bool = False,
    progress: bool = False,
    fill_missing: bool = False,
    sharding: Optional[dict] = None,
    draco_compression_level: int = 1,
    bounds: Optional[Bbox] = None,
):
    """``create_graphene_meshing_tasks`` once the layer's info is at hand (``vol``: a graphene
    CloudVolume): checks the mip, writes the mesh info under ``data_dir``, returns the tasks."""
    sharding = _check_sharding(sharding)
    ws = int(vol.meta.watershed_mip)
    if mip < ws or mip >= len(vol.info["scales"]):
        raise InvalidParameterError(
            f"mip must be at or above the watershed mip {ws} and below {len(vol.info['scales'])}; got {mip}"
        )
    shape = graphene_chunk_shape(vol, mip)
    layer = vol.meta.bounds(mip)
    # the graph's chunk grid starts at the voxel offset or at 0 (chunks_start_at_voxel_offset)
    origin = layer.minpt if vol.meta.chunks_start_at_voxel_offset else Vec(0, 0, 0)
    if bounds is None:
        selected = layer.clone()
    else:
        selected = Bbox.intersection(bounds, layer)
        if selected.subvoxel():
            raise InvalidParameterError(
                f"bounds {plain(bounds.to_list())} lie outside the layer {plain(layer.to_list())}"
            )
    lo = origin + ((selected.minpt - origin) // shape) * shape
    hi = origin + -(-(selected.maxpt - origin) // shape) * shape
    grid = Bbox(lo, hi)

    mesh_dir = mesh_dir or DEFAULT_MESH_DIR
    cf = CloudFiles(vol.meta.cloudpath)
    current = cf.get_json(f"{mesh_dir}/info") or {}
    info = copy.deepcopy(current)
    if sharding is None and str(L2) not in (info.get("sharding") or {}):
        raise InvalidParameterError(
            f"graphene meshes are written as layer-{L2} shards: pass sharding= (no sharding in {mesh_dir}/info)"
        )
    info.update({"@type": meshes.LEGACY_MESH_TYPE, "mip": int(mip), "chunk_size": [int(s) for s in shape]})
    if sharding is not None:
        info["sharding"] = {**(info.get("sharding") or {}), **sharding}
    if info != current:
        cf.put_json(f"{mesh_dir}/info", info, cache_control="no-cache")

    kwargs = dict(
        cloudpath=cloudpath, mip=int(mip), simplification_factor=100 if simplification else 0,
        max_simplification_error=max_simplification_error, draco_compression_level=int(draco_compression_level),
        mesh_dir=mesh_dir, cache_control=None if cdn_cache else "no-cache", progress=bool(progress),
        timestamp=timestamp, fill_missing=bool(fill_missing),
    )  # fmt: skip
    finish = functools.partial(
        record_provenance_safely, vol.meta.cloudpath, "GrapheneMeshTask", {**kwargs, "bounds": grid}
    )
    return GridTasks(grid, shape, functools.partial(GrapheneMeshTask, **kwargs), finish, instantiate=True)


def record_provenance_safely(data_dir: str, task: str, params: dict) -> None:
    """Provenance goes to the data directory (the graphene info itself is the server's)."""
    try:
        record_provenance(data_dir, task, params)
    except Exception as err:  # a read-only or foreign data_dir must not fail a finished plan
        log.warning("could not record provenance in %s: %s", data_dir, err)


class _PrefixTasks:
    """A sized, lazy list of ``MeshManifestPrefixTask`` partials, one per prefix."""

    def __init__(self, layer_path: str, prefixes: Sequence[str], mesh_dir: Optional[str]):
        self.layer_path, self.prefixes, self.mesh_dir = layer_path, list(prefixes), mesh_dir

    def __len__(self) -> int:
        return len(self.prefixes)

    def __iter__(self) -> Iterator:
        for prefix in self.prefixes:
            yield functools.partial(
                MeshManifestPrefixTask, layer_path=self.layer_path, prefix=prefix, lod=0, mesh_dir=self.mesh_dir
            )


def create_graphene_hybrid_mesh_manifest_tasks(
    cloudpath: str, mip: int, mip_bits: int, x_bits: int, y_bits: int, z_bits: int
):
    """Legacy ``{segid}:0`` manifests of graphene fragments, one ``MeshManifestPrefixTask`` per
    decimal prefix of the ids of graph layer ``mip`` (``graphene_prefixes``).

    For a ``graphene://`` path the manifests go to its ``data_dir`` (one server call for the
    info); any other path is used as it is.
    """
    prefixes = graphene_prefixes(mip=mip, mip_bits=mip_bits, coord_bits=(x_bits, y_bits, z_bits))
    layer_path, mesh_dir = cloudpath, None
    if str(cloudpath).startswith("graphene://"):
        vol = CloudVolume(cloudpath, progress=False, cdn_cache=False)  # the server call
        layer_path, mesh_dir = vol.meta.cloudpath, vol.info.get("mesh", DEFAULT_MESH_DIR)
    elif CloudFiles(layer_path).get_json("info") is None:
        raise InvalidParameterError(f"no Precomputed layer at {layer_path} (its info file is missing or unreadable)")
    return _PrefixTasks(layer_path, prefixes, mesh_dir)
