"""JPEG → JPEG XL at quality 100 keeps each JPEG bitstream (recompressed, not re-encoded), so
JPEG → JXL → JPEG gives back the original chunk files byte for byte and voxel for voxel."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume

from igneous_cli import main
from tests.conftest import read_layer

JXL_MAGIC = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")  # bare codestream, or the ISO BMFF container


def jpeg_layer(path: str, shape=(200, 150, 24), chunk=(64, 64, 8), offset=(32, 0, 8)) -> np.ndarray:
    rng = np.random.default_rng(1)
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    texture = (60 + 40 * np.sin(x / 7.0) * np.cos(y / 11.0))[..., None] + rng.normal(0, 12, shape)
    data = np.clip(texture, 0, 255).astype(np.uint8)
    info = CloudVolume.create_new_info(1, "image", "uint8", "jpeg", [4, 4, 40], list(offset), list(shape),
                                       chunk_size=list(chunk))
    vol = CloudVolume(path, info=info, progress=False)
    vol.commit_info()
    vol[:, :, :] = np.asfortranarray(data[..., None])
    return read_layer(path)


def chunk_files(root) -> dict:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name in ("info", "provenance"):
                continue
            with open(os.path.join(dirpath, name), "rb") as f:
                out[os.path.relpath(os.path.join(dirpath, name), root)] = f.read()
    return out


def xfer(*args) -> None:
    result = CliRunner().invoke(main, ["image", "xfer", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("sharded", [False, True])
def test_jpeg_to_jxl_to_jpeg_restores_the_files(tmp_path, sharded):
    src = f"file://{tmp_path / 'jpeg'}"
    original = jpeg_layer(src)
    jxl, back = f"file://{tmp_path / 'jxl'}", f"file://{tmp_path / 'back'}"
    extra = ["--sharded"] if sharded else ["--skip-downsample"]
    xfer(src, jxl, "--encoding", "jxl", *extra)
    xfer(jxl, back, "--encoding", "jpeg", *extra)

    assert CloudVolume(jxl).meta.encoding(0) == "jxl"
    np.testing.assert_array_equal(read_layer(back), original)  # voxel-identical after the round trip
    if not sharded:
        before, after, middle = chunk_files(tmp_path / "jpeg"), chunk_files(tmp_path / "back"), chunk_files(tmp_path / "jxl")
        assert before == after  # byte-identical JPEG files
        assert set(middle) == set(before)
        assert all(blob.startswith(JXL_MAGIC) for blob in middle.values())
        assert sum(map(len, middle.values())) < sum(map(len, before.values()))  # recompressed, smaller


def test_jpeg_to_jxl_with_a_pyramid_keeps_the_bitstream_at_the_base(tmp_path):
    src = f"file://{tmp_path / 'jpeg'}"
    original = jpeg_layer(src, shape=(256, 256, 16), chunk=(64, 64, 16), offset=(0, 0, 0))
    jxl, back = f"file://{tmp_path / 'jxl'}", f"file://{tmp_path / 'back'}"
    xfer(src, jxl, "--encoding", "jxl")
    assert len(CloudVolume(jxl).info["scales"]) > 1  # the pyramid was built as well
    xfer(jxl, back, "--encoding", "jpeg", "--skip-downsample")
    np.testing.assert_array_equal(read_layer(back), original)
