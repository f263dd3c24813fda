"""``GrapheneMeshTask``: initial L2 meshes of one PyChunkGraph chunk (SPEC §3.4, RegisteredTask).

Reads the chunk plus one voxel on the high sides as L2 ids and as root ids (both from the
graphene server), relabels the overlap so each object's fragment reaches the seam under its
own L2 id (``igneous.ops.graphene.remap_overlap``), meshes every L2 id of this chunk, encodes
each mesh with Draco on the dataset-wide lattice (``draco_encoding_settings``), and writes
the initial shard files ``{mesh_dir}/{sharded_mesh_dir}/2/{chunk position}-{shard}.shard``
that CloudVolume's graphene mesh source reads (spec from the mesh info's ``sharding["2"]``).
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import DracoPy
import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification, synthesize_shard_files
from cloudvolume.lib import Bbox, Vec
from taskqueue import RegisteredTask

from igneous.ops.graphene import remap_overlap
from igneous.ops.mesh import forge_box
from igneous.tasks.mesh.draco import draco_encoding_settings

__all__ = ["GrapheneMeshTask", "GRAPHENE_MESH_TASK_DEFAULTS", "DEFAULT_GRAPHENE_MESH_DIR", "L2"]

log = logging.getLogger(__name__)

L2 = 2  # the graph layer whose ids are meshed
DEFAULT_GRAPHENE_MESH_DIR = "meshes"
GRAPHENE_MESH_TASK_DEFAULTS = dict(
    cache_control=None,
    draco_compression_level=1,
    fill_missing=False,
    max_simplification_error=40,
    simplification_factor=100,
    mesh_dir=None,
    progress=False,
    timestamp=None,
)


class GrapheneMeshTask(RegisteredTask):
    """Mesh the L2 chunk at ``offset`` (voxels at ``mip``, ``shape`` = one graph chunk).

    Only ``graphene://`` sources can be meshed: the task refuses any other in one line.
    """

    def __init__(self, cloudpath, shape, offset, mip, **kwargs):
        unknown = sorted(set(kwargs) - set(GRAPHENE_MESH_TASK_DEFAULTS))
        if unknown:
            raise TypeError(f"GrapheneMeshTask got unknown option(s) {', '.join(map(repr, unknown))}")
        super().__init__(cloudpath, shape, offset, mip, **kwargs)
        for key, value in GRAPHENE_MESH_TASK_DEFAULTS.items():
            if key not in kwargs:
                setattr(self, key, value)
        self.shape = Vec(*shape)
        self.offset = Vec(*offset)

    def execute(self) -> None:
        if not str(self.cloudpath).startswith("graphene://"):
            raise ValueError(f"GrapheneMeshTask meshes graphene:// segmentations only; got {self.cloudpath}")
        vol = CloudVolume(
            self.cloudpath, mip=self.mip, fill_missing=self.fill_missing, progress=False, cdn_cache=False
        )
        box, read = self.boxes(vol)
        if box.subvoxel():
            return
        kwargs = dict(mip=self.mip, agglomerate=True, timestamp=self.timestamp)
        l2 = np.asarray(vol.download(read, stop_layer=L2, **kwargs))[..., 0]  # the server calls
        roots = np.asarray(vol.download(read, **kwargs))[..., 0]
        self.mesh_and_write(vol, box, read, l2, roots)

    def boxes(self, vol) -> tuple[Bbox, Bbox]:
        """The chunk's box and the box read for it (+1 voxel on the high sides), in the layer."""
        bounds = vol.meta.bounds(self.mip)
        box = Bbox.clamp(Bbox(self.offset, self.offset + self.shape), bounds)
        return box, Bbox.clamp(Bbox(box.minpt, box.maxpt + 1), bounds)

    def mesh_and_write(self, vol, box: Bbox, read: Bbox, l2: np.ndarray, roots: np.ndarray) -> Dict[int, bytes]:
        """Everything after the server calls: returns ``{L2 id: draco bytes}`` as written."""
        labels = remap_overlap(l2, roots, box.size3())
        chunk_id = self._chunk_id(vol, labels[: box.size3()[0], : box.size3()[1], : box.size3()[2]])
        resolution = vol.meta.resolution(self.mip)
        settings = draco_encoding_settings(
            shape=box.size3(),
            offset=box.minpt,
            resolution=resolution,
            compression_level=self.draco_compression_level,
            create_metadata=False,
            uses_new_draco_bin_size=bool(vol.meta.uses_new_draco_bin_size),
        )
        meshes: Dict[int, bytes] = {}
        for label, mesh in forge_box(
            labels, resolution, read.minpt, self.simplification_factor, self.max_simplification_error
        ):
            if chunk_id is not None and int(vol.meta.decode_chunk_id(label)) != chunk_id:
                continue
            meshes[label] = bytes(DracoPy.encode(mesh.vertices, mesh.faces, **settings))
        if meshes:
            self._write_shards(vol, meshes)
        return meshes

    @staticmethod
    def _chunk_id(vol, core: np.ndarray) -> Optional[int]:
        """This chunk's id (an L2 label with its segment bits zeroed), from any of its labels."""
        nonzero = core[core != 0]
        return int(vol.meta.decode_chunk_id(nonzero[0])) if nonzero.size else None

    def _write_shards(self, vol, meshes: Dict[int, bytes]) -> None:
        cf = CloudFiles(vol.meta.cloudpath)
        mesh_dir = self.mesh_dir or vol.info.get("mesh") or DEFAULT_GRAPHENE_MESH_DIR
        info = cf.get_json(f"{mesh_dir}/info") or {}
        sharding = (info.get("sharding") or {}).get(str(L2))
        if sharding is None:
            raise ValueError(f"{mesh_dir}/info has no sharding for layer {L2}: run create_graphene_meshing_tasks")
        spec = ShardingSpecification.from_dict(sharding)
        position = int(vol.meta.decode_chunk_position_number(next(iter(meshes))))
        initial = info.get("sharded_mesh_dir", "initial")
        files = synthesize_shard_files(spec, meshes)
        cf.puts(
            [(f"{mesh_dir}/{initial}/{L2}/{position}-{name}", data) for name, data in files.items()],
            compress=None,
            content_type="application/octet-stream",
            cache_control=self.cache_control,
        )
