"""Priced plans of the planning commands (``--dry-run``), one module per capability.

Each ``plan_*`` takes its creator's arguments, runs the same validation and preparation the
creator does, and returns an ``igneous.plan.Plan``: tasks, files and bytes written (the chunk
grid times bytes per voxel measured by re-encoding a few real blocks as the run writes them),
bytes read, object-store requests (the grid plus the per-task overheads measured in
``igneous.throughput``) and the work its throughput is calibrated in. Nothing is written.

``common`` holds what the capabilities share (sampling, request arithmetic, level outputs).
"""

from igneous.plans.common import SAMPLES
from igneous.plans.image import (
    plan_downsampling,
    plan_image_shard_downsample,
    plan_image_shard_transfer,
    plan_transfer,
)
from igneous.plans.mesh import (
    plan_mesh_manifest,
    plan_meshing,
    plan_sharded_multires_merge,
    plan_unsharded_multires_merge,
)
from igneous.plans.skeleton import (
    plan_sharded_skeleton_merge,
    plan_skeletonizing,
    plan_unsharded_skeleton_merge,
)
from igneous.plans.voxels import plan_voxel_counting

__all__ = [
    "SAMPLES",
    "plan_downsampling",
    "plan_transfer",
    "plan_image_shard_transfer",
    "plan_image_shard_downsample",
    "plan_voxel_counting",
    "plan_meshing",
    "plan_mesh_manifest",
    "plan_unsharded_multires_merge",
    "plan_sharded_multires_merge",
    "plan_skeletonizing",
    "plan_unsharded_skeleton_merge",
    "plan_sharded_skeleton_merge",
]
