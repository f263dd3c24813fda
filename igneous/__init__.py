"""Igneous: turn huge Neuroglancer Precomputed volumes into pyramids, copies, meshes,
skeletons and statistics, as tasks on a queue."""

import logging

from cloudvolume import CloudVolume, EmptyVolumeException
from taskqueue import LocalTaskQueue, MockTaskQueue, RegisteredTask, TaskQueue
from zmesh import Mesher

from igneous import downsample_scales, task_creation, tasks, types
from igneous.tasks import *  # noqa: F403
from igneous.tasks import __all__ as _tasks_all

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "CloudVolume",
    "EmptyVolumeException",
    "LocalTaskQueue",
    "MockTaskQueue",
    "TaskQueue",
    "RegisteredTask",
    "Mesher",
    "downsample_scales",
    "task_creation",
    "tasks",
    "types",
] + list(_tasks_all)

logging.getLogger(__name__).addHandler(logging.NullHandler())
