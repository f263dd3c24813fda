"""Zarr and OME-Zarr stores written by the `zarr` package → Precomputed through `image xfer`.

CloudVolume reads them (``zarr://``); our planner writes a Precomputed copy with the store's
resolution and its OME-NGFF translation as voxel_offset (see igneous/readers/foreign.py for
the two places CloudVolume gets the offset wrong and how the copy corrects them).
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from cloudvolume import CloudVolume

from igneous_cli import main
from tests.conftest import read_layer, tree

ZYX = (20, 70, 90)


def multiscales(version):
    axes = [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"]
    datasets = [
        {"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [40, 4 * 2**k, 4 * 2**k]},
            {"type": "translation", "translation": [400, 40, 80]},  # z=10, y=10, x=20 voxels at mip 0
        ]}
        for k in range(2)
    ]  # fmt: skip
    return [{"version": version, "axes": axes, "datasets": datasets}]


def write_store(path, fmt, separator="/"):
    data = np.random.default_rng(3).integers(0, 255, ZYX, dtype=np.uint8)
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    extra = {"chunk_key_encoding": {"name": "v2", "separator": separator}} if fmt == 2 else {}
    root.create_array("0", data=data, chunks=(8, 32, 32), **extra)
    root.create_array("1", data=data[:, ::2, ::2].copy(), chunks=(8, 32, 32), **extra)
    if fmt == 2:
        root.attrs["multiscales"] = multiscales("0.4")
    else:
        root.attrs["ome"] = {"version": "0.5", "multiscales": multiscales("0.5")}
    return data


@pytest.mark.parametrize("fmt", [3, 2])
def test_ome_zarr_xfer(tmp_path, fmt):
    data = write_store(tmp_path / "store.zarr", fmt)
    dest = f"file://{tmp_path / 'dest'}"
    args = ["image", "xfer", f"zarr://file://{tmp_path / 'store.zarr'}", dest, "--chunk-size", "32,32,8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    vol = CloudVolume(dest)
    assert vol.meta.resolution(0).tolist() == [4, 4, 40]
    assert vol.meta.voxel_offset(0).tolist() == [20, 10, 10]  # the OME translation, in x,y,z
    assert vol.meta.voxel_offset(1).tolist() == [10, 5, 10]
    assert vol.meta.encoding(0) == "raw"
    np.testing.assert_array_equal(read_layer(dest)[..., 0], data.transpose(2, 1, 0))
    np.testing.assert_array_equal(read_layer(dest, mip=1)[..., 0].shape, (45, 35, 20))


def test_zarr_v2_dot_separator_is_refused_before_writing(tmp_path):
    # CloudVolume 12.15 cannot find the chunks of such a group (zarr2/metadata.py chunk_name builds
    # '0.z.y.x'): every chunk would read as missing, so the copy is refused rather than zero-filled
    write_store(tmp_path / "store.zarr", 2, separator=".")
    before = tree(tmp_path)
    dest = f"file://{tmp_path / 'dest'}"
    result = CliRunner().invoke(main, ["image", "xfer", f"zarr://file://{tmp_path / 'store.zarr'}", dest])
    assert result.exit_code == 2, result.output
    assert "dimension_separator" in result.output and "Traceback" not in result.output
    assert tree(tmp_path) == before
