"""Mesh tasks: forging (``mesh.py``), legacy and multi-resolution merges (``mesh.py``,
``multires.py``). Importing registers each under its SPEC §3.7 wire name."""

from igneous.tasks.mesh.graphene import GrapheneMeshTask
from igneous.tasks.mesh.mesh import (
    DeleteMeshFilesTask,
    MeshManifestFilesystemTask,
    MeshManifestPrefixTask,
    MeshTask,
    TransferMeshFilesTask,
)
from igneous.tasks.mesh.multires import (
    MultiResShardedFromUnshardedMeshMergeTask,
    MultiResShardedMeshMergeTask,
    MultiResUnshardedMeshMergeTask,
)

__all__ = [
    "MeshTask",
    "MeshManifestPrefixTask",
    "MeshManifestFilesystemTask",
    "TransferMeshFilesTask",
    "DeleteMeshFilesTask",
    "MultiResUnshardedMeshMergeTask",
    "MultiResShardedMeshMergeTask",
    "MultiResShardedFromUnshardedMeshMergeTask",
    "GrapheneMeshTask",
]
