"""Helpers that scripts import from ``igneous_cli`` (SPEC §2.5): files, ports, running workers."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import socket
from typing import Sequence, Tuple, Union

import numpy as np
from numpy.lib import format as fmt

from igneous.queues.worker import WorkerOptions
from igneous.queues.worker import execute as run_workers
from igneous_cli.common import normalize_path

__all__ = [
    "is_empty",
    "normalize_file_ext",
    "read_array_header",
    "is_port_in_use",
    "execute_helper",
    "parallel_execute_helper",
]

COMPRESSION_SUFFIXES = (".gz", ".br", ".zst", ".zstd", ".xz", ".lzma", ".bz2")
# data formats with several spellings: one name each
EXT_ALIASES = {".hdf5": ".h5", ".hdf": ".h5", ".tif": ".tiff", ".nhdr": ".nrrd", ".jpeg": ".jpg", ".crackle": ".ckl"}


def is_empty(path: str) -> bool:
    """True when ``path`` (a cloud path or a local directory) holds no file at all, or does not exist."""
    from cloudfiles import CloudFiles

    try:
        return next(iter(CloudFiles(path).list(flat=True)), None) is None
    except FileNotFoundError:
        return True


def normalize_file_ext(filename: str) -> str:
    """The data format of ``filename`` as one lower-case extension: compression suffixes are
    dropped and spellings unified (``a.NPY.gz`` → ``.npy``, ``b.hdf5`` → ``.h5``, ``c.nii.gz`` →
    ``.nii``, ``d.tif`` → ``.tiff``). No extension gives ``""``."""
    base = os.path.basename(str(filename)).lower()
    root, ext = os.path.splitext(base)
    while ext in COMPRESSION_SUFFIXES:
        root, ext = os.path.splitext(root)
    return EXT_ALIASES.get(ext, ext)


def _open_maybe_compressed(filename: str):
    lower = filename.lower()
    if lower.endswith(".gz"):
        return gzip.open(filename, "rb")
    if lower.endswith(".bz2"):
        return bz2.open(filename, "rb")
    if lower.endswith((".xz", ".lzma")):
        return lzma.open(filename, "rb")
    if lower.endswith((".zst", ".zstd")):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(filename, "rb"), closefd=True)
    return open(filename, "rb")


def read_array_header(filename: str) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` file (optionally .gz/.bz2/.xz/.zst
    compressed), reading only its header: the size of a huge array without loading it.

    Object arrays are refused (loading them would mean unpickling).
    """
    with _open_maybe_compressed(filename) as f:
        try:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except ValueError as err:
            raise ValueError(f"{filename} is not an .npy file ({err})") from None
    if dtype.hasobject:
        raise ValueError(f"{filename} holds Python objects (a pickle), not numbers")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def is_port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, int(port))) == 0


def execute_helper(
    queue: str,
    aws_region: str = "us-east-1",
    lease_sec: int = 600,
    tally: bool = True,
    min_sec: float = -1,
    exit_on_empty: bool = False,
    quiet: bool = False,
    num_tasks: int = -1,
    max_attempts: int = 5,
    grace_sec: float = 30.0,
    parallel: int = 1,
) -> int:
    """Run ``igneous execute`` on ``queue`` from Python: the same worker (lease renewal,
    retries, dead letters, signals), with the CLI's option names. Returns the exit code
    (0 drained, 1 tasks failed, 3 a worker process died, 4 stopped by -n/--min-sec,
    5 stopped by a signal). ``parallel`` > 1 supervises that many processes."""
    opts = WorkerOptions(
        queue=normalize_path(queue),
        lease_seconds=int(lease_sec),
        tally=bool(tally),
        min_sec=float(min_sec),
        quiet=bool(quiet),
        exit_on_empty=bool(exit_on_empty),
        num_tasks=int(num_tasks),
        aws_region=aws_region,
        max_attempts=int(max_attempts),
        grace_seconds=float(grace_sec),
    )
    return int(run_workers(opts, parallel=max(1, int(parallel))))


def parallel_execute_helper(parallel: int, args: Union[Sequence, dict, None] = None, **kwargs) -> int:
    """``execute_helper`` with ``parallel`` supervised worker processes; ``args`` are its
    arguments as a tuple (positional, from ``queue`` on) or a dict."""
    params: dict = {}
    if isinstance(args, dict):
        params.update(args)
    elif args is not None:
        names = list(execute_helper.__code__.co_varnames[: execute_helper.__code__.co_argcount])
        params.update(zip(names, args))
    params.update(kwargs)
    params["parallel"] = int(parallel)
    return execute_helper(**params)

