"""Image tasks."""

from igneous.tasks.image.contrast import CLAHETask, ContrastNormalizationTask, LuminanceLevelsTask  # issue 13
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
from igneous.tasks.image.ingest import ImageStackIngestTask  # issue 13
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
    "CLAHETask",
    "ContrastNormalizationTask",
    "LuminanceLevelsTask",
]
_also_registered = (ImageStackIngestTask,)  # wire key igneous.tasks.image.ingest; not a SPEC name
_not_exported = (ReorderTask,)  # SPEC §3: ReorderTask is importable only from igneous.tasks.image
