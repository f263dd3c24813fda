"""The ``igneous`` command line (entry point ``igneous_cli:main``) and the helpers scripts import from it."""

from igneous_cli.cli import main
from igneous_cli.common import compute_bounds, enqueue_tasks, normalize_encoding, normalize_path, numberify
from igneous_cli.design import memory_used
from igneous_cli.helpers import (
    execute_helper,
    is_empty,
    is_port_in_use,
    normalize_file_ext,
    parallel_execute_helper,
    read_array_header,
)
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
    "is_empty",
    "normalize_file_ext",
    "read_array_header",
    "is_port_in_use",
    "execute_helper",
    "parallel_execute_helper",
    "ListN",
    "Tuple34",
    "Tuple3",
    "Tuple2",
    "EncodingType",
    "CompressType",
    "CloudPath",
    "DownsampleMethodType",
]
