"""Fault injection (issue 9 items 2-4): damaged chunks and shards, a full disk, SIGKILL mid-write.

The promises proven here, on real file:// layers:

* A damaged chunk (garbage, truncated, 0 bytes) fails every reader and every pipeline with an
  error naming the layer, the mip and the chunk file, with or without ``fill_missing``: a
  *corrupt* chunk is never treated as missing. The one documented exception is an
  *uncompressed* 0-byte file, CloudVolume's own placeholder for a missing chunk: it reads as
  missing (background with ``fill_missing``, a named MissingChunkError without).
* Copies that do not decode (same-layout transfers, sharded fast paths, shard-to-shard copies)
  refuse a damaged source instead of passing it on.
* Nothing unreadable is ever left under a final name: after any failure every file in the
  destination decodes, and no ``.partial`` file is left behind; a rerun produces complete,
  correct output.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox
from taskqueue import LocalTaskQueue

from igneous import task_creation as tc
from igneous.atomic import PARTIAL_SUFFIX, atomic_write, write_bytes
from igneous.integrity import ChunkReadError, CorruptChunkError, MissingChunkError, check_gzip
from igneous.shards import shard_payloads
from tests.conftest import REPO, make_layer, read_layer, tree

SHAPE = (64, 64, 16)
CHUNK = (32, 32, 8)
FIRST = "0-32_0-32_0-8"  # the chunk every test damages


def run(tasks) -> None:
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def image(dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(SHAPE).astype(dtype)
    if np.dtype(dtype).itemsize >= 4:  # segmentation: a few labels in blocks
        return (rng.integers(1, 5, size=(8, 8, 4)).repeat(8, 0).repeat(8, 1).repeat(4, 2)).astype(dtype)
    return rng.integers(0, 255, size=SHAPE, dtype=dtype)


def chunk_file(layer: str, mip: int = 0) -> str:
    """The file of the chunk FIRST at ``mip`` (whatever its compression extension)."""
    vol = CloudVolume(layer, mip=mip, progress=False)
    directory = os.path.join(layer[len("file://") :], vol.meta.key(mip))
    [name] = [n for n in os.listdir(directory) if n.split(".")[0] == FIRST]
    return os.path.join(directory, name)


def damage(path: str, kind: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if kind == "truncated":
        data = data[: max(1, len(data) // 2)]
    elif kind == "zero":
        data = b""
    elif kind == "garbage":
        data = b"\x00GARBAGE" + os.urandom(max(64, len(data)))
    elif kind == "bitflip":
        mid = len(data) // 2
        data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
    with open(path, "wb") as f:  # the damage itself: deliberately not atomic
        f.write(data)


def assert_named(err: BaseException, layer: str, mip: int, name: str) -> None:
    text = str(err)
    assert layer.rstrip("/") in text and f"mip {mip}" in text and name in text, text


def assert_all_readable(layer: str, from_mip: int = 0) -> None:
    """Every file under a final name in ``layer`` (at ``from_mip`` and above) decodes; no
    temporary file is left."""
    root = layer[len("file://") :]
    if not os.path.exists(os.path.join(root, "info")):
        return
    leftovers = [n for _, _, files in os.walk(root) for n in files if n.endswith(PARTIAL_SUFFIX)]
    assert leftovers == []
    info = json.load(open(os.path.join(root, "info")))
    for mip, scale in enumerate(info["scales"]):
        if mip < from_mip:
            continue
        directory = os.path.join(root, scale["key"])
        if not os.path.isdir(directory):
            continue
        vol = CloudVolume(layer, mip=mip, progress=False)
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if "sharding" in scale:
                spec = scale["sharding"]
                data = open(path, "rb").read()
                for _, payload in shard_payloads(data, spec, name):
                    if spec.get("data_encoding") == "gzip":
                        check_gzip(payload, None, name, full=True)
                continue
            box = Bbox.from_filename(name.split(".")[0])
            vol.download(box, mip=mip)  # raises if the file does not decode


# -- every reader names the chunk --------------------------------------------------------------

# compress False = stored uncompressed (None would mean CloudVolume's default, gzip for raw)
FORMATS = [
    ("raw", np.uint8, "gzip"),
    ("raw", np.uint8, False),
    ("raw", np.uint8, "br"),
    ("raw", np.uint8, "zstd"),
    ("compressed_segmentation", np.uint32, "gzip"),
    ("compressed_segmentation", np.uint32, False),
    ("crackle", np.uint64, False),
    ("compresso", np.uint64, False),
    ("png", np.uint8, False),
    ("jpeg", np.uint8, False),
    ("fpzip", np.float32, False),
]


def _cases():
    for encoding, dtype, compress in FORMATS:
        for kind in ("truncated", "zero", "garbage"):
            if kind == "garbage" and encoding == "raw" and not compress:
                continue  # raw bytes of the right length have no structure to check: not detectable
            if kind == "truncated" and encoding == "fpzip":
                continue  # fpzip's decoder crashes the process on a truncated stream (a native fault)
            yield pytest.param(encoding, dtype, compress, kind, id=f"{encoding}-{compress}-{kind}")


@pytest.mark.parametrize("encoding,dtype,compress,kind", list(_cases()))
def test_every_read_error_names_layer_mip_and_chunk(tmp_path, encoding, dtype, compress, kind):
    layer = make_layer(f"file://{tmp_path / 'src'}", image(dtype), chunk_size=CHUNK, encoding=encoding, compress=compress)
    damage(chunk_file(layer), kind)
    placeholder = kind == "zero" and not compress  # CloudVolume's "missing chunk" convention
    with pytest.raises(MissingChunkError if placeholder else CorruptChunkError) as err:
        read_layer(layer)
    assert_named(err.value, layer, 0, FIRST)
    if placeholder:
        got = read_layer(layer, fill_missing=True)
        assert not got[:32, :32, :8].any() and got[32:].any()  # that chunk is background, the rest is data
    else:
        with pytest.raises(CorruptChunkError) as err:  # a corrupt chunk is never "missing"
            read_layer(layer, fill_missing=True)
        assert_named(err.value, layer, 0, FIRST)


def test_missing_chunk_is_named_and_filled_only_on_request(tmp_path):
    layer = make_layer(f"file://{tmp_path / 'src'}", image(), chunk_size=CHUNK)
    os.remove(chunk_file(layer))
    with pytest.raises(MissingChunkError) as err:
        read_layer(layer)
    assert_named(err.value, layer, 0, FIRST)
    assert not read_layer(layer, fill_missing=True)[:32, :32, :8].any()


# -- pipelines fail naming the chunk and leave nothing unreadable -------------------------------


def _downsample(src, dst, fill_missing):
    run(tc.create_downsampling_tasks(src, num_mips=1, fill_missing=fill_missing))
    return src  # writes into the source layer's own pyramid


def _transfer_same(src, dst, fill_missing):  # the byte-copy fast path
    run(tc.create_transfer_tasks(src, dst, fill_missing=fill_missing, skip_downsamples=True))
    return dst


def _transfer_rechunk(src, dst, fill_missing):  # decode, re-encode
    run(tc.create_transfer_tasks(src, dst, chunk_size=(64, 64, 16), fill_missing=fill_missing, skip_downsamples=True))
    return dst


def _shard_same(src, dst, fill_missing):  # payloads moved into shards without decoding
    run(tc.create_image_shard_transfer_tasks(src, dst, chunk_size=CHUNK, fill_missing=fill_missing))
    return dst


def _shard_rechunk(src, dst, fill_missing):
    run(tc.create_image_shard_transfer_tasks(src, dst, chunk_size=(64, 64, 8), fill_missing=fill_missing))
    return dst


def _forge(src, dst, fill_missing):
    run(tc.create_meshing_tasks(src, mip=0, shape=(64, 64, 16), fill_missing=fill_missing))
    return src


PIPELINES = {
    "downsample": _downsample,
    "transfer_same_layout": _transfer_same,
    "transfer_rechunk": _transfer_rechunk,
    "shard_transfer_same_chunks": _shard_same,
    "shard_transfer_rechunk": _shard_rechunk,
    "mesh_forge": _forge,
}
SOURCES = [("raw", np.uint8, "gzip"), ("raw", np.uint8, False), ("compressed_segmentation", np.uint32, "gzip")]


def _pipeline_cases():
    for pipeline in sorted(PIPELINES):
        for encoding, dtype, compress in SOURCES:
            if pipeline == "mesh_forge" and dtype == np.uint8:
                continue  # meshing needs a segmentation
            for kind in ("truncated", "zero", "garbage"):
                if kind == "garbage" and encoding == "raw" and not compress:
                    continue  # raw bytes of the right length are not detectable
                for fill_missing in (False, True):
                    name = f"{pipeline}-{encoding}-{compress}-{kind}-{'fill_missing' if fill_missing else 'strict'}"
                    yield pytest.param(pipeline, (encoding, dtype, compress), kind, fill_missing, id=name)


@pytest.mark.parametrize("pipeline,source,kind,fill_missing", list(_pipeline_cases()))
def test_pipeline_fails_naming_the_damaged_chunk(tmp_path, pipeline, source, kind, fill_missing):
    encoding, dtype, compress = source
    data = image(dtype)
    layer = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=CHUNK, encoding=encoding, compress=compress)
    damage(chunk_file(layer), kind)
    dst = f"file://{tmp_path / 'dst'}"
    if kind == "zero" and not compress:  # the placeholder: missing, not corrupt
        if not fill_missing:
            with pytest.raises(MissingChunkError) as err:
                PIPELINES[pipeline](layer, dst, fill_missing)
            assert_named(err.value, layer, 0, FIRST)
        else:
            PIPELINES[pipeline](layer, dst, fill_missing)
        assert_all_readable(dst)
        assert_all_readable(layer, from_mip=1)
        return
    with pytest.raises(ChunkReadError) as err:
        PIPELINES[pipeline](layer, dst, fill_missing)
    assert_named(err.value, layer, 0, FIRST)
    assert_all_readable(dst)
    assert_all_readable(layer, from_mip=1)  # what a downsample or forge wrote next to the source


@pytest.mark.parametrize("pipeline", ["transfer_same_layout", "shard_transfer_same_chunks"])
def test_fast_copies_check_crcs_on_request(tmp_path, pipeline, monkeypatch):
    """A flipped bit inside a raw gzip chunk keeps its length: the O(1) check cannot see it, the
    reader's CRC can. IGNEOUS_VERIFY_PAYLOADS=crc makes the fast copies inflate every payload."""
    layer = make_layer(f"file://{tmp_path / 'src'}", image(), chunk_size=CHUNK)
    damage(chunk_file(layer), "bitflip")
    with pytest.raises(CorruptChunkError):  # every decoding reader sees it
        read_layer(layer)
    monkeypatch.setenv("IGNEOUS_VERIFY_PAYLOADS", "crc")
    dst = f"file://{tmp_path / 'dst'}"
    with pytest.raises(CorruptChunkError) as err:
        PIPELINES[pipeline](layer, dst, False)
    assert_named(err.value, layer, 0, FIRST)
    assert_all_readable(dst)


def test_rerun_after_repairing_the_source_writes_the_same_output(tmp_path):
    data = image()
    layer = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=CHUNK)
    path = chunk_file(layer)
    good = open(path, "rb").read()
    dst = f"file://{tmp_path / 'dst'}"
    damage(path, "truncated")
    with pytest.raises(ChunkReadError):
        _shard_same(layer, dst, False)
    with open(path, "wb") as f:
        f.write(good)
    _shard_same(layer, dst, False)
    assert_all_readable(dst)
    np.testing.assert_array_equal(read_layer(dst)[..., 0], data)


# -- damaged shards are never copied or read silently ------------------------------------------


@pytest.mark.parametrize("kind", ["truncated", "zero", "garbage", "index"])
@pytest.mark.parametrize("reader", ["shard_to_shard_copy", "shard_downsample", "read"])
def test_damaged_shard_fails_naming_it(tmp_path, kind, reader):
    data = image()
    src = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=CHUNK)
    sharded = f"file://{tmp_path / 'sharded'}"
    _shard_same(src, sharded, False)
    key = CloudVolume(sharded, progress=False).meta.key(0)
    [shard] = [n for n in os.listdir(os.path.join(tmp_path, "sharded", key)) if n.endswith(".shard")]
    path = os.path.join(tmp_path, "sharded", key, shard)
    if kind == "index":  # the fixed index points past the end of the file
        raw = bytearray(open(path, "rb").read())
        raw[8:16] = np.uint64(2**40).tobytes()
        open(path, "wb").write(bytes(raw))
    else:
        damage(path, kind)
    copy = f"file://{tmp_path / 'copy'}"
    with pytest.raises(ChunkReadError) as err:
        if reader == "shard_to_shard_copy":
            run(tc.create_image_shard_transfer_tasks(sharded, copy))
        elif reader == "shard_downsample":
            run(tc.create_image_shard_downsample_tasks(sharded, num_mips=1))
        else:
            read_layer(sharded)
    assert_named(err.value, sharded, 0, shard)
    assert_all_readable(copy)
    if reader == "shard_downsample":
        info = json.load(open(tmp_path / "sharded" / "info"))
        higher = [s["key"] for s in info["scales"][1:]]
        for k in higher:  # nothing was written above the damaged level
            assert not os.path.exists(tmp_path / "sharded" / k) or not os.listdir(tmp_path / "sharded" / k)


def test_shard_to_shard_copy_of_a_whole_shard_is_byte_identical(tmp_path):
    src = make_layer(f"file://{tmp_path / 'src'}", image(), chunk_size=CHUNK)
    a, b = f"file://{tmp_path / 'a'}", f"file://{tmp_path / 'b'}"
    _shard_same(src, a, False)
    run(tc.create_image_shard_transfer_tasks(a, b))
    key = CloudVolume(a, progress=False).meta.key(0)
    ta, tb = tree(tmp_path / "a" / key), tree(tmp_path / "b" / key)
    assert ta == tb and ta


# -- a disk that fills up ------------------------------------------------------------------------

FSIZE_LIMIT = 20_000  # bytes: chunk files are ~64 KiB, the info file ~1 KiB


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(tmp_path, request):
    """``(directory, fsize_limit)``: a 1 MiB tmpfs when we may mount one (root), else (and for
    the "rlimit" case) a directory plus a per-file size limit to set in the writing process."""
    directory = tmp_path / "small"
    directory.mkdir()
    if request.param == "tmpfs" and os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)], capture_output=True)
        if mounted.returncode == 0:
            try:
                yield directory, None
            finally:
                subprocess.run(["umount", "-l", str(directory)], capture_output=True)
            return
    yield directory, FSIZE_LIMIT


def _limited(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec if limit else None


def _xfer(src, dst, limit=None):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "igneous_cli", "image", "xfer", src, dst, "--chunk-size", "64,64,16", "--compress", "gzip"]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=_limited(limit))


def test_full_disk_leaves_nothing_unreadable_and_a_rerun_completes(tmp_path, small_disk):
    directory, limit = small_disk
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, size=(256, 256, 32), dtype=np.uint8)  # ~2 MiB, incompressible
    src = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=CHUNK)
    dst = f"file://{directory / 'dst'}"
    proc = _xfer(src, dst, limit)
    assert proc.returncode != 0, "the disk was meant to fill up"
    assert "Traceback" not in proc.stderr
    assert "No space left" in proc.stderr or "too large" in proc.stderr, proc.stderr[-2000:]
    for root, _, files in os.walk(directory):
        for name in files:  # never a 0-byte or truncated chunk under its final name
            assert not name.endswith(PARTIAL_SUFFIX)
            assert os.path.getsize(os.path.join(root, name)) > 0
    assert_all_readable(dst)
    if limit is None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(directory)], check=True)
    proc = _xfer(src, dst)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_all_readable(dst)
    np.testing.assert_array_equal(read_layer(dst)[..., 0], data)
    reference = f"file://{tmp_path / 'reference'}"
    assert _xfer(src, reference).returncode == 0
    key = CloudVolume(dst, progress=False).meta.key(0)
    assert tree(directory / "dst" / key) == tree(tmp_path / "reference" / key)


# -- SIGKILL in the middle of each kind of write ------------------------------------------------

_HANG_CHUNK_OR_INFO = """
import sys, time
import igneous
from igneous import atomic
ready = sys.argv[1]
original = atomic._write_all
def half_then_hang(fd, data):
    view = memoryview(data).cast("B")
    original(fd, view[: len(view) // 2])
    open(ready, "w").close()
    time.sleep(600)
atomic._write_all = half_then_hang
"""

_HANG_SHARD = """
import io, sys, time
import igneous
from igneous import shards
ready = sys.argv[1]
original = shards.ShardWriter.write
def half_then_hang(self, spool, group, codes, out):
    buf = io.BytesIO()
    original(self, spool, group, codes, buf)
    data = buf.getvalue()
    out.write(data[: len(data) // 2])
    out.flush()
    open(ready, "w").close()
    time.sleep(600)
shards.ShardWriter.write = half_then_hang
"""

ACTIONS = {
    "chunk": _HANG_CHUNK_OR_INFO
    + """
import numpy as np
from cloudvolume import CloudVolume
data = np.load(sys.argv[3])
CloudVolume(sys.argv[2], progress=False)[:, :, :] = data
""",
    "info": _HANG_CHUNK_OR_INFO
    + """
from cloudvolume import CloudVolume
vol = CloudVolume(sys.argv[2], progress=False)
vol.info["note"] = "x" * 100000
vol.commit_info()
""",
    "shard": _HANG_SHARD
    + """
from taskqueue import LocalTaskQueue
from igneous import task_creation as tc
LocalTaskQueue(parallel=1, progress=False).insert_all(
    tc.create_image_shard_transfer_tasks(sys.argv[3], sys.argv[2], chunk_size=(32, 32, 8)))
""",
}


def _kill_mid_write(tmp_path, kind, *args):
    ready = tmp_path / f"ready-{kind}"
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-c", ACTIONS[kind], str(ready), *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the write never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _partials(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, fs in os.walk(root) for n in fs
                  if n.endswith(PARTIAL_SUFFIX))


@pytest.mark.parametrize("kind", ["chunk", "info", "shard"])
def test_sigkill_mid_write_leaves_nothing_unreadable_and_the_rerun_cleans_up(tmp_path, kind):
    data = image()
    if kind == "shard":
        src = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=CHUNK)
        layer = f"file://{tmp_path / 'layer'}"
        _kill_mid_write(tmp_path, kind, layer, src)
    else:
        layer = make_layer(f"file://{tmp_path / 'layer'}", np.zeros(SHAPE, dtype=np.uint8), chunk_size=CHUNK)
        np.save(tmp_path / "data.npy", data[..., None])
        _kill_mid_write(tmp_path, kind, layer, str(tmp_path / "data.npy"))
    root = tmp_path / "layer"
    assert len(_partials(root)) == 1  # the killed write, under its temporary name only
    json.load(open(root / "info"))  # the info is whole (the old one, when that was the write)
    # nothing unreadable under a final name
    for d, _, files in os.walk(root):
        for n in files:
            if not n.endswith(PARTIAL_SUFFIX) and n not in ("info", "provenance"):
                assert os.path.getsize(os.path.join(d, n)) > 0
    # the rerun takes the leftover over and produces complete output
    if kind == "chunk":
        CloudVolume(layer, progress=False)[:, :, :] = data[..., None]
    elif kind == "info":
        vol = CloudVolume(layer, progress=False)
        vol.info["note"] = "x" * 100000
        vol.commit_info()
        assert json.load(open(root / "info"))["note"] == "x" * 100000
    else:
        _shard_same(src, layer, False)
    assert _partials(root) == []
    assert_all_readable(layer)
    if kind != "info":
        np.testing.assert_array_equal(read_layer(layer)[..., 0], data)


# -- the atomic write itself ---------------------------------------------------------------------


def test_concurrent_writer_of_the_same_file_uses_a_private_name(tmp_path):
    import fcntl

    final = str(tmp_path / "f")
    holder = os.open(final + PARTIAL_SUFFIX, os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a live writer of the same destination
    try:
        write_bytes(final, b"mine")
        assert open(final, "rb").read() == b"mine"
        assert os.path.exists(final + PARTIAL_SUFFIX)  # the other writer's file is untouched
        assert _partials(tmp_path) == ["f.partial"]
    finally:
        os.close(holder)


def test_another_destinations_temporary_file_is_never_touched(tmp_path):
    other = tmp_path / ("g" + PARTIAL_SUFFIX)
    other.write_bytes(b"someone else's")
    write_bytes(str(tmp_path / "f"), b"data")
    assert other.read_bytes() == b"someone else's"


def test_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    final = tmp_path / "f"
    final.write_bytes(b"old")

    def fail(fd):
        os.write(fd, b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(str(final), fail)
    assert final.read_bytes() == b"old" and _partials(tmp_path) == []


def test_cloudfiles_puts_are_atomic(tmp_path):
    from cloudfiles import CloudFiles
    from cloudfiles.interfaces import FileInterface

    assert FileInterface.put_file.__wrapped__  # installed by `import igneous`
    cf = CloudFiles(f"file://{tmp_path}")
    cf.put("a/b", b"x" * 1000, compress="gzip")
    cf.put_json("info", {"a": 1})
    assert cf.get("a/b") == b"x" * 1000 and cf.get_json("info") == {"a": 1}
    assert _partials(tmp_path) == []
    # local-to-local transfers (mesh file copies) go through the atomic copy too
    from cloudfiles import cloudfiles as cf_module

    from igneous.atomic import copy_file

    assert cf_module.shutil.copyfile is copy_file and cf_module.shutil.move is __import__("shutil").move
    cf.transfer_to(f"file://{tmp_path / 'copy'}", paths=["a/b", "info"])
    assert CloudFiles(f"file://{tmp_path / 'copy'}").get("a/b") == b"x" * 1000
    assert _partials(tmp_path) == []


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("shape,block", [((32, 32, 8, 1), (8, 8, 8)), ((33, 17, 5, 1), (8, 8, 8)), ((64, 64, 64, 1), (4, 4, 4))])
def test_cseg_bounds_check_accepts_every_whole_stream(shape, block, dtype):
    from cloudvolume import chunks

    from igneous.integrity import cseg_problem

    rng = np.random.default_rng(3)
    for labels in (1, 3, 300, 70000):
        img = rng.integers(0, labels, size=shape).astype(dtype)
        stream = chunks.encode(img, "compressed_segmentation", block_size=block)
        assert cseg_problem(stream, shape, dtype, block) is None
        # a truncation through the block data (what a full disk or a killed copy leaves)
        assert cseg_problem(stream[: (len(stream) // 8) * 4], shape, dtype, block) is not None


def test_shard_rerun_removes_dead_writers_private_leftovers(tmp_path):
    """Leftovers of an earlier version (``NAME.{pid}.partial``) and of a dead private writer on
    this host go when the shard is written again; a live writer's and another host's stay."""
    from igneous.atomic import _HOST

    src = make_layer(f"file://{tmp_path / 'src'}", image(), chunk_size=CHUNK)
    dst = f"file://{tmp_path / 'dst'}"
    _shard_same(src, dst, False)
    key = CloudVolume(dst, progress=False).meta.key(0)
    directory = tmp_path / "dst" / key
    [shard] = [n for n in os.listdir(directory) if n.endswith(".shard")]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = [f"{shard}.{dead_pid}.partial", f"{shard}.{_HOST}-{dead_pid}-0.partial"]
    kept = [f"{shard}.{_HOST}-{os.getpid()}-7.partial", f"{shard}.otherhost-{dead_pid}-0.partial"]
    for name in stale + kept:
        (directory / name).write_bytes(b"leftover")
    _shard_same(src, dst, False)
    assert sorted(n for n in os.listdir(directory) if n.endswith(PARTIAL_SUFFIX)) == sorted(kept)


def test_atomic_files_get_the_modes_open_would_give(tmp_path):
    old = os.umask(0o002)  # a group-writable shared filesystem
    try:
        write_bytes(str(tmp_path / "f"), b"x")
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "f").st_mode & 0o777) == 0o664


def test_cli_reports_a_damaged_chunk_in_one_line(tmp_path):
    layer = make_layer(f"file://{tmp_path / 'src'}", image(), chunk_size=CHUNK)
    damage(chunk_file(layer), "truncated")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "igneous_cli", "image", "xfer", layer, f"file://{tmp_path / 'dst'}",
         "--chunk-size", "64,64,16"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # a task failed (not a usage error)
    assert proc.stdout.strip() == ""  # no "Filename: N/A" or "File Read Error" half-messages
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("error: CorruptChunkError: ") and FIRST in line and "mip 0" in line, line
