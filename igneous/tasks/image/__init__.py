"""Image tasks."""

from igneous.tasks.image.ccl import CCLEquivalancesTask, CCLFacesTask, RelabelCCLTask
from igneous.tasks.image.image import (
    BlackoutTask,
    DeleteTask,
    DownsampleTask,
    ImageShardDownsampleTask,
    ImageShardTransferTask,
    QuantizeTask,
    ReorderTask,
    TouchTask,
    TransferTask,
    downsample_and_upload,
)
from igneous.tasks.image.voxels import CountVoxelsTask

__all__ = [
    "BlackoutTask",
    "DeleteTask",
    "DownsampleTask",
    "ImageShardDownsampleTask",
    "ImageShardTransferTask",
    "QuantizeTask",
    "TouchTask",
    "TransferTask",
    "downsample_and_upload",
    "CountVoxelsTask",
    "CCLFacesTask",
    "CCLEquivalancesTask",
    "RelabelCCLTask",
]
_not_exported = (ReorderTask,)  # SPEC §3: ReorderTask is importable only from igneous.tasks.image
