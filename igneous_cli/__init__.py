"""The ``igneous`` command line (entry point ``igneous_cli:main``) and the helpers scripts import from it."""

from igneous_cli.cli import main
from igneous_cli.common import compute_bounds, enqueue_tasks, normalize_encoding, normalize_path, numberify
from igneous_cli.design import memory_used
from igneous_cli.params import (
    CloudPath,
    CompressType,
    DownsampleMethodType,
    EncodingType,
    ListN,
    Tuple2,
    Tuple3,
    Tuple34,
)
from igneous_cli.queue import natural_time_delta

__all__ = [
    "main",
    "numberify",
    "normalize_path",
    "normalize_encoding",
    "compute_bounds",
    "enqueue_tasks",
    "memory_used",
    "natural_time_delta",
    "ListN",
    "Tuple34",
    "Tuple3",
    "Tuple2",
    "EncodingType",
    "CompressType",
    "CloudPath",
    "DownsampleMethodType",
]
