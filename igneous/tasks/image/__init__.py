"""Image tasks. Every module that defines tasks is imported here, so they register whatever
else is imported first."""

from igneous.tasks.image.ccl import CCLEquivalancesTask, CCLFacesTask, RelabelCCLTask
from igneous.tasks.image.contrast import CLAHETask, ContrastNormalizationTask, LuminanceLevelsTask  # issue 13
from igneous.tasks.image.image import (
    BlackoutTask,
    DeleteTask,
    DownsampleTask,
    QuantizeTask,
    ReorderTask,
    TouchTask,
    TransferTask,
    downsample_and_upload,
)
from igneous.tasks.image.ingest import ImageStackIngestTask  # issue 13
from igneous.tasks.image.obsolete import (
    HyperSquareConsensusTask,
    InferenceTask,
    MaskAffinitymapTask,
    WatershedRemapTask,
)
from igneous.tasks.image.shards import ImageShardDownsampleTask, ImageShardTransferTask
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
    "HyperSquareConsensusTask",
    "WatershedRemapTask",
    "MaskAffinitymapTask",
    "InferenceTask",
    "CLAHETask",
    "ContrastNormalizationTask",
    "LuminanceLevelsTask",
    "CCLFacesTask",
    "CCLEquivalancesTask",
    "RelabelCCLTask",
]
_also_registered = (ImageStackIngestTask,)  # wire key igneous.tasks.image.ingest; not a SPEC name
_not_exported = (ReorderTask,)  # SPEC §3: ReorderTask is importable only from igneous.tasks.image
