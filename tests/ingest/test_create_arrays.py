"""`image create` of array files reads back voxel-identical (axes x, y, z[, c]; <3-D padded)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from igneous.errors import InvalidParameterError
from igneous.task_creation.ingest import create_image_from_array
from igneous_cli import main
from tests.conftest import read_layer

SHAPE = (37, 45, 19)  # divides no chunk size below


def volume(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, min(np.iinfo(dtype).max, 2**20), size=shape).astype(dtype)


def save(path, arr, fmt):
    if fmt == "npy":
        np.save(path, arr)
    elif fmt == "npy-f":
        np.save(path, np.asfortranarray(arr))
    elif fmt == "h5":
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("main", data=arr, chunks=True)
            f.create_dataset("other", data=arr[:2])
    elif fmt in ("nii", "nii.gz"):
        import nibabel

        nibabel.save(nibabel.Nifti1Image(arr, np.eye(4)), path)
    elif fmt == "nrrd":
        import nrrd

        nrrd.write(path, arr, index_order="F")
    elif fmt == "ckl":
        import crackle

        with open(path, "wb") as f:
            f.write(crackle.compress(np.asfortranarray(arr)))
    return path


EXT = {"npy": "npy", "npy-f": "npy", "h5": "h5", "nii": "nii", "nii.gz": "nii.gz", "nrrd": "nrrd", "ckl": "ckl"}


@pytest.mark.parametrize(
    "fmt,dtype",
    [
        ("npy", np.uint8),  # C order: x-slabs are what is contiguous
        ("npy-f", np.float32),  # Fortran order: z-slabs
        ("h5", np.uint16),
        ("nii", np.float32),
        ("nii.gz", np.uint8),
        ("nrrd", np.uint16),
        ("ckl", np.uint32),
    ],
)
def test_array_round_trip(tmp_path, fmt, dtype):
    arr = volume(SHAPE, dtype)
    src = save(str(tmp_path / f"vol.{EXT[fmt]}"), arr, fmt)
    dest = f"file://{tmp_path / 'dest'}"
    # a small memory target streams the file in several blocks
    create_image_from_array(src, dest, chunk_size=(16, 16, 8), voxel_offset=(3, -2, 5), resolution=(4, 4, 40),
                            memory_target=200_000, layer_type="segmentation" if fmt == "ckl" else "image")  # fmt: skip
    back = read_layer(dest)
    assert back.shape == SHAPE + (1,)
    np.testing.assert_array_equal(back[..., 0], arr)
    from cloudvolume import CloudVolume

    vol = CloudVolume(dest)
    assert vol.meta.voxel_offset(0).tolist() == [3, -2, 5] and vol.meta.resolution(0).tolist() == [4, 4, 40]


def test_last_column_is_not_shifted(tmp_path):
    """Upstream users saw the last x column shifted: a marker there must land at x = X-1."""
    arr = np.zeros((33, 20, 7), dtype=np.uint8)
    arr[-1, :, :] = 200
    arr[:, -1, 3] = 100
    np.save(tmp_path / "a.npy", arr)
    dest = f"file://{tmp_path / 'dest'}"
    create_image_from_array(str(tmp_path / "a.npy"), dest, chunk_size=(16, 16, 4), memory_target=10_000)
    np.testing.assert_array_equal(read_layer(dest)[..., 0], arr)


@pytest.mark.parametrize("shape", [(50,), (50, 31), (20, 21, 5, 3)])
def test_padding_and_channels(tmp_path, shape):
    arr = volume(shape, np.uint8, seed=2)
    np.save(tmp_path / "a.npy", arr)
    dest = f"file://{tmp_path / 'dest'}"
    result = CliRunner().invoke(main, ["image", "create", str(tmp_path / "a.npy"), dest, "--chunk-size", "16,16,4"])
    assert result.exit_code == 0, result.output
    back = read_layer(dest)
    want = arr.reshape(tuple(shape) + (1,) * (4 - len(shape)))
    np.testing.assert_array_equal(back, want)


def test_h5_dataset_option_and_rerun_is_idempotent(tmp_path):
    arr = volume(SHAPE, np.uint8)
    src = save(str(tmp_path / "v.h5"), arr, "h5")
    dest = f"file://{tmp_path / 'dest'}"
    args = ["image", "create", src, dest, "--h5-dataset", "other", "--chunk-size", "16,16,8"]
    for _ in range(2):  # the second run finds its own layer there and rewrites the same chunks
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_layer(dest)[..., 0], arr[:2])
    result = CliRunner().invoke(main, ["image", "create", src, f"file://{tmp_path / 'd2'}", "--h5-dataset", "nope"])
    assert result.exit_code == 2 and "no dataset 'nope'" in result.output and "main" in result.output


def test_missing_extra_is_named(tmp_path, monkeypatch):
    src = save(str(tmp_path / "v.h5"), volume((4, 4, 4), np.uint8), "h5")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(InvalidParameterError, match=r"pip install 'igneous\[ingest\]'"):
        create_image_from_array(src, f"file://{tmp_path / 'dest'}")


def test_npy_pickles_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidParameterError, match="cannot read"):
        create_image_from_array(str(tmp_path / "obj.npy"), f"file://{tmp_path / 'dest'}")
