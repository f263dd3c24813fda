"""The command line, through click's CliRunner: options, parameter types, exit codes, output."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re

import click
import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume
from taskqueue import TaskQueue

import igneous
import igneous.task_creation as tc
import igneous_cli
from igneous.downsample_scales import downsample_shape_from_memory_target
from igneous.types import DownsampleMethods
from igneous_cli import main
from igneous_cli.cli import clamp_parallel
from igneous_cli.design import memory_used
from igneous_cli.humanbytes import format_bytes
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
from tests.conftest import read_layer, tree

CLI_DIR = pathlib.Path(igneous_cli.__file__).parent


def run(*args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def data_tree(root) -> dict:
    """Files under ``root`` except the cloud-files/cloud-volume caches the fixtures keep there."""
    return {k: v for k, v in tree(root).items() if not k.startswith(".cloud")}


def ramp(shape=(64, 64, 16), dtype=np.uint8):
    return (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)


@pytest.fixture
def img(layer):
    """A 64×64×16 uint8 layer in 32×32×8 chunks at voxel offset (10, 20, 3)."""
    return layer(ramp(), chunk_size=(32, 32, 8), voxel_offset=(10, 20, 3))


def scale_keys(path):
    return [s["key"] for s in CloudVolume(path).info["scales"]]


# ---------------------------------------------------------------- root group


def test_version():
    result = run("--version")
    assert igneous.__version__ in result.output


def test_license():
    text = run("license").output
    assert "GNU General Public License" in text
    assert "Igneous contributors" in text
    assert "https://www.gnu.org/licenses/gpl-3.0.txt" in text
    assert text == (CLI_DIR / "LICENSE").read_text()


def test_help_lists_the_command_tree():
    out = run("--help").output
    for name in ("execute", "license", "design", "queue", "image"):
        assert name in out
    assert {"downsample", "xfer", "rm", "reorder"} <= set(main.commands["image"].commands)
    assert {"bounds", "ds-memory", "ds-shape"} <= set(main.commands["design"].commands)
    assert "status" in main.commands["queue"].commands


@pytest.fixture
def probe(monkeypatch):
    """A throwaway subcommand that prints what the root group stored for -p."""

    @click.command()
    @click.pass_context
    def probe_cmd(ctx):
        click.echo(ctx.find_root().obj["parallel"])

    monkeypatch.setitem(main.commands, "probe", probe_cmd)


@pytest.mark.parametrize(
    "args,expected",
    [
        ([], 1),  # default
        (["-p", "1"], 1),
        (["-p", "0"], os.cpu_count()),  # 0 = every core
        (["--parallel", "999"], os.cpu_count()),  # clamped to cpu_count
        (["-p", "-4"], 1),  # clamped to 1
    ],
)
def test_parallel_is_clamped(probe, args, expected):
    assert run(*args, "probe").output.strip() == str(expected)


def test_clamp_parallel():
    cores = os.cpu_count()
    assert clamp_parallel(0) == cores
    assert clamp_parallel(cores + 5) == cores
    assert clamp_parallel(-1) == 1
    assert clamp_parallel(1) == 1


def test_parallel_must_be_an_integer():
    result = run("-p", "many", "license", code=2)
    assert "--parallel" in result.output


def test_exports():
    expected = {
        "main",
        "numberify",
        "normalize_path",
        "normalize_encoding",
        "compute_bounds",
        "enqueue_tasks",
        "ListN",
        "Tuple34",
        "Tuple3",
        "Tuple2",
        "EncodingType",
        "CompressType",
        "CloudPath",
        "DownsampleMethodType",
    }
    assert expected <= set(igneous_cli.__all__)
    for name in igneous_cli.__all__:
        assert hasattr(igneous_cli, name), name


def test_every_task_creation_function_the_cli_calls_exists():
    called = set()
    for module in CLI_DIR.glob("*.py"):
        called |= set(re.findall(r"\btc\.(\w+)", module.read_text()))
    assert called, "the CLI should call igneous.task_creation"
    missing = sorted(name for name in called if not hasattr(tc, name))
    assert not missing, missing


# ---------------------------------------------------------------- parameter types


@pytest.mark.parametrize(
    "ptype,value,expected",
    [
        (Tuple3(), "1,2,3", (1, 2, 3)),
        (Tuple3(), " 4, -5 ,6 ", (4, -5, 6)),  # spaces ignored; signs kept (translate may be negative)
        (Tuple3(), (7, 8, 9), (7, 8, 9)),  # defaults arrive as tuples
        (Tuple2(), "10,5", (10, 5)),
        (Tuple34(), "1,2,3", (1, 2, 3)),
        (Tuple34(), "1,2,3,4", (1, 2, 3, 4)),
        (ListN(), "3", (3,)),
        (ListN(), "1,2,3,4,5", (1, 2, 3, 4, 5)),
        (EncodingType(), "raw", "raw"),
        (EncodingType(), "cseg", "compressed_segmentation"),
        (EncodingType(), "ckl", "crackle"),
        (EncodingType(), "cpso", "compresso"),
        (EncodingType(), "jpegxl", "jxl"),
        (EncodingType(), "JPEG", "jpeg"),
        (EncodingType(), "auto", None),  # keep the existing encoding
        (CompressType(), "none", False),
        (CompressType(), "false", False),
        (CompressType(), "gzip", "gzip"),
        (CompressType(), "br", "br"),
        (CompressType(), "true", "gzip"),
        (DownsampleMethodType(), "auto", DownsampleMethods.AUTO),
        (DownsampleMethodType(), "avg", DownsampleMethods.AVERAGE_POOLING),
        (DownsampleMethodType(), "mode", DownsampleMethods.MODE_POOLING),
        (DownsampleMethodType(), "min", DownsampleMethods.MIN_POOLING),
        (DownsampleMethodType(), "max", DownsampleMethods.MAX_POOLING),
        (DownsampleMethodType(), "striding", DownsampleMethods.STRIDING),
        (DownsampleMethodType(), "2", DownsampleMethods.MODE_POOLING),  # wire value
        (CloudPath(), "gs://bucket/layer", "gs://bucket/layer"),
        (CloudPath(), "precomputed://gs://bucket/layer", "precomputed://gs://bucket/layer"),
        (CloudPath(), "file://./rel", "file://./rel"),  # explicit relative file:// stays relative
    ],
)
def test_param_types_accept(ptype, value, expected):
    assert ptype.convert(value, None, None) == expected


def test_cloud_path_makes_bare_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CloudPath().convert("layer", None, None) == f"file://{tmp_path}/layer"
    assert CloudPath().convert("./layer", None, None) == f"file://{tmp_path}/layer"
    assert CloudPath().convert(str(tmp_path / "abs"), None, None) == f"file://{tmp_path}/abs"


@pytest.mark.parametrize(
    "ptype,value",
    [
        (Tuple3(), "1,2"),
        (Tuple3(), "1,2,3,4"),
        (Tuple3(), "a,b,c"),
        (Tuple3(), "1.5,2,3"),
        (Tuple2(), "1"),
        (Tuple2(), "1,2,3"),
        (Tuple34(), "1,2"),
        (Tuple34(), "1,2,3,4,5"),
        (ListN(), ""),
        (ListN(), "1,x"),
        (EncodingType(), "webp"),
        (CompressType(), "lzma"),
        (DownsampleMethodType(), "median"),
        (DownsampleMethodType(), "9"),
        (CloudPath(), ""),
    ],
)
def test_param_types_refuse(ptype, value):
    with pytest.raises(click.BadParameter):
        ptype.convert(value, None, None)


@pytest.mark.parametrize(
    "ptype,good,bad",
    [
        (ListN(), "1,2,3", "1,two"),
        (Tuple34(), "1,2,3,4", "1,2"),
        (CompressType(), "none", "lzma"),
        (CloudPath(), "gs://a/b", ""),
    ],
)
def test_param_types_in_a_command_exit_2_naming_the_option(ptype, good, bad):
    """Types no command in this group uses yet, exercised through a command of their own."""

    @click.command()
    @click.option("--value", type=ptype)
    def cmd(value):
        click.echo(repr(value))

    assert CliRunner().invoke(cmd, ["--value", good]).exit_code == 0
    result = CliRunner().invoke(cmd, ["--value", bad])
    assert result.exit_code == 2
    assert "--value" in result.output


@pytest.mark.parametrize(
    "args,option",
    [
        (["image", "xfer", "{img}", "{dest}", "--shape", "1,2"], "--shape"),
        (["image", "xfer", "{img}", "{dest}", "--shape", "32,32,x"], "--shape"),
        (["image", "xfer", "{img}", "{dest}", "--translate", "1,2"], "--translate"),
        (["image", "xfer", "{img}", "{dest}", "--dest-voxel-offset", "1"], "--dest-voxel-offset"),
        (["image", "xfer", "{img}", "{dest}", "--xrange", "1,2,3"], "--xrange"),
        (["image", "xfer", "{img}", "{dest}", "--encoding", "webp"], "--encoding"),
        (["image", "xfer", "{img}", "{dest}", "--downsample-method", "median"], "--downsample-method"),
        (["image", "xfer", "{img}", "{dest}", "--memory", "lots"], "--memory"),
        (["image", "downsample", "{img}", "--chunk-size", "32,32"], "--chunk-size"),
        (["image", "downsample", "{img}", "--method", "median"], "--method"),
        (["image", "downsample", "{img}", "--encoding", "webp"], "--encoding"),
        (["image", "downsample", "{img}", "--yrange", "5"], "--yrange"),
        (["image", "downsample", "{img}", "--num-mips", "two"], "--num-mips"),
        (["image", "rm", "{img}", "--shape", "32,32"], "--shape"),
        (["image", "rm", "{img}", "--zrange", "a,b"], "--zrange"),
        (["image", "reorder", "{img}", "{dest}"], "--mapping-file"),  # required
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/nope.json"], "--mapping-file"),
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/bad.json"], "--mapping-file"),
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/list.json"], "--mapping-file"),
        (["design", "ds-shape", "{img}", "1,2"], "SHAPE"),
        (["design", "ds-shape", "{img}", "0,64,64"], "SHAPE"),
        (["design", "ds-shape", "{img}", "64,64,64", "--factor", "3,3,3"], "--factor"),
        (["design", "ds-memory", "{img}", "many"], "MEMORY_BYTES"),
        (["design", "ds-memory", "{img}", "1e9", "--factor", "2,2"], "--factor"),
        (["queue", "status", "{tmp}/q", "--eta", "soon"], "--eta"),
        (["execute", "{tmp}/q", "--lease-sec", "long"], "--lease-sec"),
    ],
)
def test_bad_option_syntax_is_a_usage_error(img, tmp_path, args, option):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    fill = {"img": img, "dest": f"file://{tmp_path / 'dest'}", "tmp": tmp_path}
    before = data_tree(tmp_path)
    result = run(*[a.format(**fill) for a in args], code=2)
    assert option in result.output
    assert "Traceback" not in result.output
    assert data_tree(tmp_path) == before


# ---------------------------------------------------------------- refusals write nothing


@pytest.mark.parametrize(
    "args,words",
    [
        (["image", "downsample", "{img}", "--encoding", "foo"], "encoding"),
        (["image", "downsample", "{img}", "--method", "bilinear"], "method"),
        (["image", "downsample", "{img}", "--compress", "lzma"], "compress"),
        (["image", "downsample", "{img}", "--mip", "4"], "mip"),
        (["image", "downsample", "{img}", "--sharded", "--chunk-size", "0,32,8"], "chunk_size"),
        (["image", "downsample", "{tmp}/missing"], "no precomputed layer"),
        (["image", "xfer", "{img}", "{dest}", "--compress", "lzma"], "compress"),
        (["image", "xfer", "{img}", "{dest}", "--sharded", "--compress", "br"], "sharded"),
        (["image", "xfer", "{img}", "{img}"], "onto itself"),
        (["image", "xfer", "{img}", "{dest}", "--translate", "1,0,0", "--dest-voxel-offset", "0,0,0"], "translate"),
        (["image", "xfer", "{img}", "{dest}", "--chunk-size", "0,32,8"], "chunk_size"),
        (["image", "rm", "{img}", "--num-mips", "-1"], "num_mips"),
        (["image", "rm", "{img}", "--shape", "48,32,8"], "split chunks"),
        (["image", "rm", "{img}", "--xrange", "10,20"], "not chunk-aligned"),
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/far.json"], "outside"),
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/dup.json"], "lost"),
        (["image", "reorder", "{img}", "{dest}", "--mapping-file", "{tmp}/ok.json", "--encoding", "zzz"], "encoding"),
        (["design", "bounds", "{tmp}/missing"], "no precomputed layer"),
        (["queue", "status", "mem://nope"], "queue"),
    ],
)
def test_refused_commands_write_nothing(img, tmp_path, args, words):
    (tmp_path / "far.json").write_text(json.dumps({"3": 500}))
    (tmp_path / "dup.json").write_text(json.dumps({"3": 4}))
    (tmp_path / "ok.json").write_text(json.dumps({"3": 4, "4": 3}))
    fill = {"img": img, "dest": f"file://{tmp_path / 'dest'}", "tmp": tmp_path}
    before = data_tree(tmp_path)
    result = run(*[a.format(**fill) for a in args], code=2)
    assert words in result.output.lower(), result.output
    assert "Traceback" not in result.output
    assert data_tree(tmp_path) == before


def test_library_refusal_is_one_line(img):
    result = run("image", "downsample", img, "--compress", "lzma", code=2)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")


# ---------------------------------------------------------------- design


def test_design_bounds(img, tmp_path):
    out = run("design", "bounds", img).output
    assert re.search(r"Bounds: Bbox\(\[10, 20, 3\],\s*\[74, 84, 19\]", out), out
    assert "Volume: 65536 voxels (64 x 64 x 16)" in out
    assert "Chunks: 8" in out
    assert "Max chunk size: 32 x 32 x 8" in out


def test_design_bounds_sees_missing_chunks(img, tmp_path):
    (tmp_path / "src" / "4_4_40" / "42-74_52-84_11-19.gz").unlink()
    out = run("design", "bounds", img).output
    assert "Chunks: 7" in out
    assert re.search(r"Bounds: Bbox\(\[10, 20, 3\],\s*\[74, 84, 19\]", out), out


def test_design_bounds_of_a_layer_without_chunks_is_refused(tmp_path):
    path = f"file://{tmp_path / 'empty'}"
    info = CloudVolume.create_new_info(
        1, "image", "uint8", "raw", [4, 4, 40], [0, 0, 0], [64, 64, 16], chunk_size=[32, 32, 8]
    )
    CloudVolume(path, info=info).commit_info()
    result = run("design", "bounds", path, code=2)
    assert "no chunk files" in result.output


@pytest.mark.parametrize("factor", [(2, 2, 1), (2, 2, 2)])
@pytest.mark.parametrize("memory", [10**6, 3.5e9])
def test_design_ds_memory_matches_the_library(img, factor, memory):
    fstr = ",".join(map(str, factor))
    out = run("design", "ds-memory", img, memory, "--factor", fstr).output.strip()
    expected = downsample_shape_from_memory_target(1, 32, 32, 8, factor, int(memory), 5)
    assert out == ",".join(str(int(v)) for v in expected)


def test_design_ds_memory_verbose(img):
    out = run("design", "ds-memory", img, "1e6", "--verbose").output
    lines = out.strip().splitlines()
    shape = [int(v) for v in lines[0].split(",")]
    assert "Downsamples:" in out
    assert f"Memory used: {format_bytes(memory_used(1, shape, (2, 2, 1)))}" in out
    assert memory_used(1, shape, (2, 2, 1)) <= 1e6


def test_design_ds_memory_budget_too_small_is_refused(img):
    result = run("design", "ds-memory", img, "10", code=2)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "dtype,shape,factor,expected",
    [
        (np.uint8, "64,64,16", "2,2,1", 65536 * 4 / 3),
        (np.uint8, "64,64,16", "2,2,2", 65536 * 8 / 7),
        (np.uint8, "64,64,16", "1,1,1", 65536),  # no pyramid: just the block
        (np.uint16, "1024,1024,64", "2,2,1", 2 * 1024 * 1024 * 64 * 4 / 3),
        (np.float32, "128,128,128", "1,2,2", 4 * 128**3 * 4 / 3),
    ],
)
def test_design_ds_shape(layer, dtype, shape, factor, expected):
    path = layer(ramp(dtype=dtype), chunk_size=(32, 32, 8))
    out = run("design", "ds-shape", path, shape, "--factor", factor).output.strip()
    assert out == format_bytes(expected)


# ---------------------------------------------------------------- humanbytes and helpers


@pytest.mark.parametrize(
    "num,kwargs,expected",
    [
        (0, {}, "0 bytes"),
        (1, {}, "1 byte"),
        (1023, {}, "1023 bytes"),
        (1024, {}, "1.0 KiB"),
        (1536, {}, "1.5 KiB"),
        (3.5e9, {}, "3.3 GiB"),
        (3.5e9, {"metric": True}, "3.5 GB"),
        (1000, {"metric": True}, "1.0 kB"),
        (5 * 1024**4, {"precision": 2}, "5.00 TiB"),
        (-2048, {}, "-2.0 KiB"),
    ],
)
def test_format_bytes(num, kwargs, expected):
    assert format_bytes(num, **kwargs) == expected


def test_numberify():
    assert igneous_cli.numberify("3") == 3
    assert igneous_cli.numberify("2.5") == 2.5
    assert igneous_cli.numberify("high") == "high"
    assert igneous_cli.numberify(None) is None


def test_normalize_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert igneous_cli.normalize_path("q") == f"fq://{tmp_path}/q"
    assert igneous_cli.normalize_path("sqs://name") == "sqs://name"


def test_compute_bounds(img):
    assert igneous_cli.compute_bounds(img, 0, None, None, None) is None
    box = igneous_cli.compute_bounds(img, 0, (40, 20), None, (5, 11))
    assert box.minpt.tolist() == [20, 20, 5]  # ranges sorted; y keeps the layer's bounds
    assert box.maxpt.tolist() == [40, 84, 11]


def test_natural_time_delta():
    assert natural_time_delta(0) == "0 seconds"
    assert natural_time_delta(61) == "1 minute, 1 second"
    assert natural_time_delta(3725) == "1 hour, 2 minutes, 5 seconds"
    assert natural_time_delta(2 * 86400) == "2 days"


# ---------------------------------------------------------------- queues


def touch_tasks(path, n):
    from igneous.tasks.image.image import TouchTask

    return [
        functools.partial(TouchTask, cloudpath=path, mip=0, shape=[32, 32, 8], offset=[10 + 32 * i, 20, 3])
        for i in range(n)
    ]


def test_queue_status(img, tmp_path):
    qpath = f"fq://{tmp_path / 'q'}"
    TaskQueue(qpath, progress=False).insert(touch_tasks(img, 3))
    out = run("queue", "status", qpath).output
    assert "Inserted: 3" in out
    assert "Enqueued: 3 (100.0% left)" in out
    assert "Completed: 0 (0.0%)" in out
    assert "Leased: 0 (0.0% of queue)" in out


def test_queue_status_of_a_bare_directory_and_eta(img, tmp_path):
    TaskQueue(f"fq://{tmp_path / 'q'}", progress=False).insert(touch_tasks(img, 2))
    out = run("queue", "status", tmp_path / "q", "--eta", "0.05").output
    assert "Inserted: 2" in out
    assert "Rate: 0.00 tasks/sec" in out
    assert "ETA:" in out


def test_execute_drains_a_queue(img, tmp_path):
    qpath = f"fq://{tmp_path / 'q'}"
    TaskQueue(qpath, progress=False).insert(touch_tasks(img, 2))
    run("execute", "-x", "-q", "--lease-sec", "30", qpath)
    out = run("queue", "status", qpath).output
    assert "Enqueued: 0" in out
    assert "Completed: 2" in out


def test_execute_exit_code_says_a_task_failed(tmp_path):
    qpath = f"fq://{tmp_path / 'q'}"
    TaskQueue(qpath, progress=False).insert(touch_tasks(f"file://{tmp_path / 'missing'}", 1))
    result = run("execute", "-x", "--lease-sec", "30", "--max-attempts", "2", qpath, code=1)
    assert "dead_lettered" in result.output


def test_execute_options_defaults():
    params = {p.name: p for p in main.commands["execute"].params}
    assert params["aws_region"].default == "us-east-1"
    assert params["lease_sec"].default == 600
    assert params["tally"].default is True
    assert params["min_sec"].default == -1
    assert params["num_tasks"].default == -1
    assert params["quiet"].default is False
    assert params["exit_on_empty"].default is False


# ---------------------------------------------------------------- image commands (smoke)


def test_image_downsample_adds_scales(img):
    # 64 voxels are two 32-chunks: one level fills a chunk; with 16-voxel chunks, two
    run("image", "downsample", img, "--num-mips", "2", "--chunk-size", "16,16,8")
    assert scale_keys(img) == ["4_4_40", "8_8_40", "16_16_40"]
    assert read_layer(img, mip=2).shape[:3] == (16, 16, 16)


def test_image_downsample_volumetric(img):
    run("image", "downsample", img, "--num-mips", "1", "--volumetric", "--chunk-size", "16,16,8")
    assert scale_keys(img) == ["4_4_40", "8_8_80"]


def test_image_downsample_through_a_queue(img, tmp_path):
    qdir = tmp_path / "q"
    run("image", "downsample", img, "--num-mips", "1", "--queue", qdir)
    assert "8_8_40" in scale_keys(img)
    status = run("queue", "status", qdir).output
    inserted = int(re.search(r"Inserted: (\d+)", status).group(1))
    assert inserted >= 1
    assert f"Enqueued: {inserted} (100.0% left)" in status
    assert not os.path.exists(tmp_path / "src" / "8_8_40")  # nothing ran yet
    run("execute", "-x", "-q", qdir)
    assert read_layer(img, mip=1).shape[:3] == (32, 32, 16)


def test_image_xfer_creates_dest_with_downsamples(img, tmp_path):
    dest = f"file://{tmp_path / 'dest'}"
    run("image", "xfer", img, dest, "--chunk-size", "16,16,8", "--max-mips", "1")
    keys = scale_keys(dest)
    assert keys[:2] == ["4_4_40", "8_8_40"]
    assert CloudVolume(dest).info["scales"][0]["chunk_sizes"] == [[16, 16, 8]]
    np.testing.assert_array_equal(read_layer(dest), read_layer(img))


def test_image_xfer_skip_downsample(img, tmp_path):
    dest = f"file://{tmp_path / 'dest'}"
    run("image", "xfer", img, dest, "--skip-downsample")
    assert scale_keys(dest) == ["4_4_40"]


def test_image_rm_within_ranges(img, tmp_path):
    before = sorted(os.listdir(tmp_path / "src" / "4_4_40"))
    assert len(before) == 8
    run("image", "rm", img, "--num-mips", "0", "--xrange", "10,42")
    after = sorted(os.listdir(tmp_path / "src" / "4_4_40"))
    assert after == [name for name in before if not name.startswith("10-42_")]


def test_image_reorder_swaps_slices(img, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"3": 4, "4": 3}))
    dest = f"file://{tmp_path / 'dest'}"
    run("image", "reorder", img, dest, "--mapping-file", mapping)
    src, out = read_layer(img), read_layer(dest)
    np.testing.assert_array_equal(out[:, :, 0], src[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], src[:, :, 0])
    np.testing.assert_array_equal(out[:, :, 2:], src[:, :, 2:])


def test_failing_task_in_process_is_one_error_line(tmp_path):
    path = f"file://{tmp_path / 'hollow'}"  # an info but no chunks: reading fails without --fill-missing
    info = CloudVolume.create_new_info(
        1, "image", "uint8", "raw", [4, 4, 40], [0, 0, 0], [64, 64, 16], chunk_size=[32, 32, 8]
    )
    CloudVolume(path, info=info).commit_info()
    result = CliRunner().invoke(main, ["image", "downsample", path, "--num-mips", "1"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert re.match(r"error: \w+: ", lines[0])
