"""Tasks: the units of work that travel through queues. Importing this registers every
task under its wire name (SPEC §3.7), which a worker needs before it leases."""

from igneous.tasks.image import *  # noqa: F403
from igneous.tasks.image import __all__ as _image_all
from igneous.tasks.mesh import *  # noqa: F403
from igneous.tasks.mesh import __all__ as _mesh_all
from igneous.tasks.skeleton import (  # noqa: F401  (re-exported through __all__)
    DeleteSkeletonFilesTask,
    ShardedFromUnshardedSkeletonMergeTask,
    ShardedSkeletonMergeTask,
    SkeletonTask,
    TransferSkeletonFilesTask,
    UnshardedSkeletonMergeTask,
)
from igneous.tasks.spatial_index import SpatialIndexTask

_skeleton_all = [
    "SkeletonTask",
    "UnshardedSkeletonMergeTask",
    "ShardedSkeletonMergeTask",
    "ShardedFromUnshardedSkeletonMergeTask",
    "DeleteSkeletonFilesTask",
    "TransferSkeletonFilesTask",
]

__all__ = list(_image_all) + list(_mesh_all) + ["SpatialIndexTask"] + _skeleton_all
