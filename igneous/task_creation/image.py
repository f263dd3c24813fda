"""Image planners (SPEC §2.1; the names users import from ``igneous.task_creation.image``).

Each capability has its own module; this one gathers them under their historical path.
"""

from igneous.downsample_scales import num_mips_from_memory_target
from igneous.task_creation.ccl import create_ccl_equivalence_tasks, create_ccl_face_tasks, create_ccl_relabel_tasks
from igneous.task_creation.deletion import create_blackout_tasks, create_deletion_tasks, create_touch_tasks
from igneous.task_creation.downsample import (
    MEMORY_TARGET,
    compute_fixup_offsets,
    create_downsampling_tasks,
    create_fixup_downsample_tasks,
)
from igneous.task_creation.obsolete import create_hypersquare_consensus_tasks, create_hypersquare_ingest_tasks
from igneous.task_creation.quantize import create_quantize_tasks, create_quantized_affinity_info
from igneous.task_creation.reorder import compute_reorder_mapping, create_reordering_tasks
from igneous.task_creation.shard_image import (
    create_image_shard_downsample_tasks,
    create_image_shard_transfer_tasks,
    create_sharded_image_info,
)
from igneous.task_creation.transfer import (
    _select_compression_by_encoding,
    clean_xfer_info,
    create_transfer_cloudvolume,
    create_transfer_tasks,
)
from igneous.task_creation.voxels import accumulate_voxel_counts, create_voxel_counting_tasks

# Exported through ``igneous.task_creation`` (SPEC §2.1). The rest is importable from here.
__all__ = [
    "create_downsampling_tasks",
    "create_transfer_tasks",
    "create_deletion_tasks",
    "create_blackout_tasks",
    "create_touch_tasks",
    "create_quantized_affinity_info",
    "create_quantize_tasks",
    "create_image_shard_transfer_tasks",
    "create_image_shard_downsample_tasks",
    "create_voxel_counting_tasks",
    "accumulate_voxel_counts",
    "create_hypersquare_ingest_tasks",
    "create_hypersquare_consensus_tasks",
    "create_ccl_face_tasks",
    "create_ccl_equivalence_tasks",
    "create_ccl_relabel_tasks",
]

_also_here = (
    MEMORY_TARGET,
    num_mips_from_memory_target,
    compute_fixup_offsets,
    create_fixup_downsample_tasks,
    compute_reorder_mapping,
    create_reordering_tasks,
    create_transfer_cloudvolume,
    clean_xfer_info,
    _select_compression_by_encoding,
    create_sharded_image_info,
)
