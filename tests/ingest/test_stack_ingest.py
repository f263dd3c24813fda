"""Image stacks (TIFF/PNG/JPEG series, multi-page, tiled, OME-TIFF) read back voxel-identical,
however the plan splits them into tasks, from local disk or a cloud-files store."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from igneous.task_creation.ingest import create_image_stack_tasks, plan_image_stack
from tests.conftest import read_layer

SIZE = (75, 53, 21)  # x, y, z: divides no chunk size below
CHUNK = (32, 32, 8)


def stack(dtype, channels=1, seed=0, size=SIZE):
    """(z, y, x[, c]) slices as image files hold them."""
    rng = np.random.default_rng(seed)
    x, y, z = size
    shape = (z, y, x) + ((channels,) if channels > 1 else ())
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def as_xyzc(slices):
    arr = slices if slices.ndim == 4 else slices[..., np.newaxis]
    return arr.transpose(2, 1, 0, 3)


def write_series(folder, slices, ext="tif", name="z{:04d}", **kwargs):
    os.makedirs(folder, exist_ok=True)
    for z, img in enumerate(slices):
        path = os.path.join(folder, f"{name.format(z)}.{ext}")
        if ext == "tif":
            separate = kwargs.get("planarconfig") == "separate"
            tifffile.imwrite(path, img.transpose(2, 0, 1) if separate else img, **kwargs)
        else:
            Image.fromarray(img).save(path, **kwargs)
    return str(folder)


def ingest(runner, src, dest, **kwargs):
    from taskqueue import LocalTaskQueue

    tasks = create_image_stack_tasks(src, dest, **kwargs)
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)
    return len(tasks)


@pytest.mark.parametrize(
    "dtype,channels,tiff_kwargs",
    [
        (np.uint8, 1, {}),  # uncompressed strips: rows are read directly
        (np.uint16, 1, {"compression": "zlib", "rowsperstrip": 8}),  # compressed strips
        (np.float32, 1, {"tile": (16, 16), "compression": "zlib"}),  # tiles
        (np.uint8, 3, {"photometric": "rgb"}),
        (np.uint16, 3, {"photometric": "rgb", "planarconfig": "separate"}),
    ],
)
def test_tiff_series_round_trip(tmp_path, dtype, channels, tiff_kwargs):
    slices = stack(dtype, channels)
    src = write_series(tmp_path / "slices", slices, **tiff_kwargs)
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, src, dest, chunk_size=CHUNK, voxel_offset=(5, -3, 2), memory_target=300_000)
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(slices))


def test_every_backend(backend, tmp_path):
    slices = stack(np.uint8)
    src = write_series(tmp_path / "slices", slices)
    dest = f"file://{tmp_path / 'dest'}"
    backend.run(
        create_image_stack_tasks,
        ["image", "create", src, dest, "--chunk-size", "32,32,8", "--offset", "1,2,3", "--memory", "2e5"],
        src,
        dest,
        chunk_size=CHUNK,
        voxel_offset=(1, 2, 3),
        memory_target=200_000,
    )
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(slices))


def test_split_over_many_tasks_equals_one_task(tmp_path):
    slices = stack(np.uint16, seed=3)
    src = write_series(tmp_path / "slices", slices, compression="zlib", rowsperstrip=5)
    one, many = f"file://{tmp_path / 'one'}", f"file://{tmp_path / 'many'}"
    assert ingest(None, src, one, chunk_size=CHUNK, memory_target=10**9) == 3  # whole slices, one chunk deep
    assert ingest(None, src, many, chunk_size=CHUNK, memory_target=60_000) > 3
    np.testing.assert_array_equal(read_layer(one), read_layer(many))
    np.testing.assert_array_equal(read_layer(one), as_xyzc(slices))


def test_natural_order_not_lexicographic(tmp_path):
    slices = stack(np.uint8, size=(20, 10, 12))
    src = write_series(tmp_path / "s", slices, name="slice_{}")  # slice_2 must come before slice_10
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, src, dest, chunk_size=(16, 16, 4))
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(slices))


def test_one_bit_and_eight_bit_tiffs(tmp_path):
    bits = stack(np.uint8, size=(40, 30, 6)) > 127
    src = write_series(tmp_path / "bits", bits)  # tifffile writes bool as 1-bit bilevel
    assert tifffile.TiffFile(os.path.join(src, "z0000.tif")).pages[0].bitspersample == 1
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, src, dest, chunk_size=(16, 16, 4))
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(bits.astype(np.uint8)))


@pytest.mark.parametrize("mode,dtype,channels", [("L", np.uint8, 1), ("RGB", np.uint8, 3), ("I;16", np.uint16, 1)])
def test_png_series_written_by_pillow(tmp_path, mode, dtype, channels):
    slices = stack(dtype, channels, size=(41, 29, 9))
    src = write_series(tmp_path / "png", slices, ext="png")
    assert Image.open(os.path.join(src, "z0000.png")).mode == mode
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, src + "/*.png", dest, chunk_size=(16, 16, 4), memory_target=10**8)
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(slices))


def test_jpeg_series_equals_pillow_decode(tmp_path):
    slices = stack(np.uint8, size=(40, 24, 5))
    src = write_series(tmp_path / "jpg", slices, ext="jpg", quality=90)
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, src, dest, chunk_size=(16, 16, 4))
    want = np.stack([np.asarray(Image.open(os.path.join(src, f"z{z:04d}.jpg"))) for z in range(5)])
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(want))


def test_multipage_and_ome_tiff(tmp_path):
    gray = stack(np.uint16, size=(50, 40, 13))
    (tmp_path / "one").mkdir()
    tifffile.imwrite(tmp_path / "one" / "stack.tif", gray)
    for i, src in enumerate((tmp_path / "one" / "stack.tif", tmp_path / "one")):  # the file, or its folder
        dest = f"file://{tmp_path / f'd1-{i}'}"
        ingest(None, str(src), dest, chunk_size=(16, 16, 4), memory_target=50_000)
        np.testing.assert_array_equal(read_layer(dest), as_xyzc(gray))

    zcyx = stack(np.uint8, size=(30, 20, 8 * 3)).reshape(8, 3, 20, 30)  # OME: 3 channel pages per z
    tifffile.imwrite(tmp_path / "ome.ome.tif", zcyx, ome=True, metadata={"axes": "ZCYX"})
    dest = f"file://{tmp_path / 'd2'}"
    ingest(None, str(tmp_path / "ome.ome.tif"), dest, chunk_size=(16, 16, 4))
    np.testing.assert_array_equal(read_layer(dest), zcyx.transpose(3, 2, 0, 1))


def test_tiled_page_bigger_than_memory_target(tmp_path):
    """One page (384x320 uint16 = 240 kB) exceeds the 150 kB target: tasks read only their tiles."""
    page = stack(np.uint16, size=(384, 320, 3))
    tifffile.imwrite(tmp_path / "big.tif", page, tile=(32, 32), compression="zlib", photometric="minisblack")
    plan = plan_image_stack(str(tmp_path / "big.tif"), None, chunk_size=(32, 32, 1), memory_target=150_000)
    assert page[0].nbytes > 150_000 and plan.memory_per_task <= 150_000 and plan.num_tasks > 3
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, str(tmp_path / "big.tif"), dest, chunk_size=(32, 32, 1), memory_target=150_000)
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(page))


def test_cloud_source(tmp_path):
    """A series on a cloud-files store (mem:// here: the same range-read path as s3:// and gs://)."""
    from cloudfiles import CloudFiles

    slices = stack(np.uint8, size=(40, 30, 6), seed=9)
    local = write_series(tmp_path / "s", slices, tile=(16, 16))
    cf = CloudFiles("mem://ingest-test/slices")
    for name in sorted(os.listdir(local)):
        with open(os.path.join(local, name), "rb") as f:
            cf.put(name, f.read(), compress=None, raw=True)
    dest = f"file://{tmp_path / 'dest'}"
    ingest(None, "mem://ingest-test/slices", dest, chunk_size=(16, 16, 4), memory_target=40_000)
    np.testing.assert_array_equal(read_layer(dest), as_xyzc(slices))
