"""Array files for ``image create``: .npy, .h5/.hdf5, .nii/.nii.gz, .nrrd, .ckl.

Axes follow the reference: the array is indexed ``[x, y, z, channel]`` (x fastest in the
file's Fortran view; a C-ordered .npy of shape (X, Y, Z) is still indexed that way, only its
bytes are laid out differently). Arrays with fewer than three axes get trailing axes of
length 1; a fourth axis holds channels. Every reader reads z-slabs lazily where the format
allows (.npy is memory-mapped, HDF5 and NIfTI are sliced, crackle decodes z ranges), so a
file bigger than memory can be ingested.
"""

from __future__ import annotations

import gzip
import io
import os
from typing import Tuple

import numpy as np

from igneous.errors import InvalidParameterError
from igneous.readers.images import missing_extra

__all__ = ["ARRAY_EXTENSIONS", "is_array_file", "ArrayFile", "open_array"]

ARRAY_EXTENSIONS = (".npy", ".npy.gz", ".h5", ".hdf5", ".nii", ".nii.gz", ".nrrd", ".ckl", ".ckl.gz")
SUPPORTED_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64")


def is_array_file(path: str) -> bool:
    return str(path).lower().endswith(ARRAY_EXTENSIONS)


def _kind(path: str) -> str:
    low = path.lower()
    for ext in ARRAY_EXTENSIONS:
        if low.endswith(ext):
            return ext.replace(".gz", "")
    raise InvalidParameterError(f"{path}: unknown array format; expected one of {', '.join(ARRAY_EXTENSIONS)}")


class ArrayFile:
    """An array file opened for block reads: ``shape`` is (x, y, z, c).

    ``getter(x0, x1, z0, z1)`` returns ``[x0:x1, :, z0:z1, :]``. ``slab_axis`` is the axis
    along which blocks are cheap to read: z for Fortran-ordered data (NIfTI, F-ordered
    .npy), x for C-ordered .npy, whose x-slabs are contiguous on disk.
    """

    def __init__(self, path: str, getter, shape4, dtype, closer=None, slab_axis: str = "z"):
        self.path = path
        self._getter = getter
        self.shape = tuple(int(s) for s in shape4)
        self.dtype = np.dtype(dtype)
        self._closer = closer
        self.slab_axis = slab_axis

    def read(self, x0: int, x1: int, z0: int, z1: int) -> np.ndarray:
        """Voxels ``[x0:x1, :, z0:z1, :]`` as a Fortran-ordered (x, y, z, c) array of ``dtype``."""
        block = np.asarray(self._getter(x0, x1, z0, z1))
        block = block.reshape((x1 - x0, self.shape[1], z1 - z0, self.shape[3]), order="A")
        if block.dtype == np.bool_:
            block = block.view(np.uint8)
        return np.asfortranarray(block, dtype=self.dtype)

    def close(self) -> None:
        if self._closer is not None:
            self._closer()

    def __enter__(self) -> ArrayFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _getter(data, ndim: int):
    """Block reads of an array with ``ndim`` axes, as if it had trailing axes of length 1."""

    def get(x0, x1, z0, z1):
        if ndim >= 3:
            block = data[x0:x1, :, z0:z1]
        elif ndim == 2:
            block = data[x0:x1, :] if z0 == 0 else data[x0:x0, :]
        else:
            block = data[x0:x1]
        block = np.asarray(block)
        while block.ndim < 3:
            block = block[..., np.newaxis]
        return block

    return get


def _as_4d(path: str, shape, channel_axis_last: bool = True) -> Tuple[int, int, int, int]:
    shape = tuple(int(s) for s in shape)
    while len(shape) > 4 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 4:
        raise InvalidParameterError(f"{path} has {len(shape)} axes {shape}; at most 4 (x, y, z, channel)")
    if any(s == 0 for s in shape):
        raise InvalidParameterError(f"{path} is empty (shape {shape})")
    return tuple(shape + (1,) * (4 - len(shape)))  # type: ignore[return-value]


def _check_dtype(path: str, dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype.name not in SUPPORTED_DTYPES:
        raise InvalidParameterError(
            f"{path} holds {dtype.name} voxels; Precomputed stores {', '.join(SUPPORTED_DTYPES)}"
        )
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def open_array(path: str, h5_dataset: str = "main") -> ArrayFile:
    """Open ``path`` for slab reads. Format libraries are optional extras, named when missing."""
    if "://" in path and not path.startswith("file://"):
        raise InvalidParameterError(f"array files are read from local disk; copy {path} here first")
    path = path[len("file://") :] if path.startswith("file://") else path
    if not os.path.isfile(path):
        raise InvalidParameterError(f"SRC {path} does not exist")
    kind = _kind(path)
    try:
        return OPENERS[kind](path, h5_dataset)
    except InvalidParameterError:
        raise
    except Exception as err:  # format libraries raise many types for a bad file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidParameterError(f"cannot read {path}: {reason}") from None


def _open_npy(path: str, _dataset) -> ArrayFile:
    if path.lower().endswith(".gz"):
        with gzip.open(path, "rb") as f:
            data = np.load(io.BytesIO(f.read()), allow_pickle=False)
    else:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    dtype = _check_dtype(path, data.dtype)
    shape4 = _as_4d(path, data.shape)
    axis = "x" if data.ndim >= 3 and data.flags.c_contiguous and not data.flags.f_contiguous else "z"
    return ArrayFile(path, _getter(data, data.ndim), shape4, dtype, slab_axis=axis)


def _open_h5(path: str, dataset: str) -> ArrayFile:
    try:
        import h5py
    except ImportError:
        raise missing_extra("h5py", "ingest") from None
    f = h5py.File(path, "r")
    if dataset not in f:
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        f.close()
        raise InvalidParameterError(
            f"{path} has no dataset {dataset!r} (--h5-dataset); it has: {', '.join(names) or 'none'}"
        )
    data = f[dataset]
    dtype = _check_dtype(path, data.dtype)
    shape4 = _as_4d(path, data.shape)
    return ArrayFile(path, _getter(data, data.ndim), shape4, dtype, closer=f.close)


def _open_nii(path: str, _dataset) -> ArrayFile:
    try:
        import nibabel
    except ImportError:
        raise missing_extra("nibabel", "nii") from None
    img = nibabel.load(path)
    proxy = img.dataobj
    dtype = _check_dtype(path, img.get_data_dtype() if not _scaled(proxy) else np.float32)
    shape4 = _as_4d(path, proxy.shape)

    get = _getter(proxy, len(proxy.shape))

    def read(x0, x1, z0, z1):
        return np.asarray(get(x0, x1, z0, z1)).astype(dtype, copy=False)

    return ArrayFile(path, read, shape4, dtype)


def _scaled(proxy) -> bool:
    slope = getattr(proxy, "slope", 1.0)
    inter = getattr(proxy, "inter", 0.0)
    return not (slope in (1, 1.0, None) and inter in (0, 0.0, None))


def _open_nrrd(path: str, _dataset) -> ArrayFile:
    try:
        import nrrd
    except ImportError:
        raise missing_extra("pynrrd", "nrrd") from None
    data, header = nrrd.read(path, index_order="F")
    kinds = [str(k).lower() for k in header.get("kinds", [])]
    nonspatial = ("vector", "rgb-color", "rgba-color", "list", "point", "covariant-vector", "3-color", "4-color")
    if data.ndim >= 3 and kinds and kinds[0] in nonspatial:
        data = np.moveaxis(data, 0, -1)  # channels first in the file (nrrd's custom) → last
        if data.ndim == 3:
            data = data[:, :, np.newaxis, :]
    dtype = _check_dtype(path, data.dtype)
    shape4 = _as_4d(path, data.shape)
    return ArrayFile(path, _getter(data, data.ndim), shape4, dtype)


def _open_ckl(path: str, _dataset) -> ArrayFile:
    import crackle
    import crackle.codec

    binary = crackle.util._load(path) if hasattr(crackle, "util") else open(path, "rb").read()
    head = crackle.header(binary)
    shape4 = _as_4d(path, (head.sx, head.sy, head.sz))
    dtype = _check_dtype(path, head.dtype if not head.signed else np.dtype(f"int{8 * head.data_width}"))

    def read(x0, x1, z0, z1):
        return crackle.codec.decompress_range(binary, z0, z1, parallel=1)[x0:x1, :, :, np.newaxis]

    return ArrayFile(path, read, shape4, dtype)


OPENERS = {
    ".npy": _open_npy,
    ".h5": _open_h5,
    ".hdf5": _open_h5,
    ".nii": _open_nii,
    ".nrrd": _open_nrrd,
    ".ckl": _open_ckl,
}
