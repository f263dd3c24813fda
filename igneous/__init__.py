"""Igneous: turn huge Neuroglancer Precomputed volumes into pyramids, copies, meshes,
skeletons and statistics, as tasks on a queue."""

import logging

from cloudvolume import CloudVolume, EmptyVolumeException
from taskqueue import LocalTaskQueue, MockTaskQueue, RegisteredTask, TaskQueue
from zmesh import Mesher

from igneous import atomic, integrity, remote

# Process-wide, before anything reads or writes a layer (workers import igneous too): file://
# writes become atomic, read errors name the layer, mip and chunk file, and AWS keys work
# without a session token.
atomic.install()
integrity.install()
remote.install()

from igneous import downsample_scales, task_creation, tasks, types  # noqa: E402
from igneous.tasks import *  # noqa: E402,F403
from igneous.tasks import __all__ as _tasks_all  # noqa: E402

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
