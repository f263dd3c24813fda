"""Bad input is refused before anything is written: ValueError from Python, exit 2 from the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import igneous.task_creation as tc
from igneous.errors import InvalidParameterError
from igneous_cli import main
from tests.conftest import tree
from tests.integration.test_downsample import random_volume


@pytest.fixture
def img(layer):
    return layer(random_volume((64, 64, 16), np.uint8), chunk_size=(32, 32, 8))


def cases(img, tmp_path):
    dest = f"file://{tmp_path / 'dest'}"
    nowhere = f"file://{tmp_path / 'nope'}"
    return [
        # (api call, cli args, what the message must name)
        (lambda: tc.create_downsampling_tasks(nowhere), ["image", "downsample", nowhere], "no Precomputed layer"),
        (lambda: tc.create_transfer_tasks(nowhere, dest), ["image", "xfer", nowhere, dest], "no Precomputed layer"),
        (
            lambda: tc.create_downsampling_tasks(img, encoding="webp"),
            ["image", "downsample", img, "--encoding", "webp"],
            "encoding",
        ),
        (
            lambda: tc.create_downsampling_tasks(img, encoding="compressed_segmentation"),
            ["image", "downsample", img, "--encoding", "cseg"],
            "cannot store uint8",
        ),
        (
            lambda: tc.create_downsampling_tasks(img, method=9),
            ["image", "downsample", img, "--method", "median"],
            "method",
        ),
        (
            lambda: tc.create_downsampling_tasks(img, compress="lzma"),
            ["image", "downsample", img, "--compress", "lzma"],
            "compress",
        ),
        (lambda: tc.create_downsampling_tasks(img, factor=(1, 1, 1)), None, "does not downsample"),
        (
            lambda: tc.create_downsampling_tasks(img, num_mips=0),
            ["image", "downsample", img, "--num-mips", "0"],
            "num_mips",
        ),
        (
            lambda: tc.create_downsampling_tasks(img, memory_target=10),
            ["image", "downsample", img, "--memory", "10"],
            "memory",
        ),
        (
            lambda: tc.create_downsampling_tasks(img, bounds=[[500, 500, 0], [600, 600, 8]]),
            ["image", "downsample", img, "--xrange", "500,600", "--yrange", "500,600"],
            "outside the layer",
        ),
        (lambda: tc.create_downsampling_tasks(img, mip=3), ["image", "downsample", img, "--mip", "3"], "mip"),
        (
            lambda: tc.create_transfer_tasks(img, dest, chunk_size=(0, 32, 8)),
            ["image", "xfer", img, dest, "--chunk-size", "0,32,8"],
            "chunk_size",
        ),
        (
            lambda: tc.create_transfer_tasks(img, dest, shape=(48, 32, 8), chunk_size=(32, 32, 8)),
            ["image", "xfer", img, dest, "--shape", "48,32,8"],
            "multiple of the destination chunk",
        ),
        (lambda: tc.create_transfer_tasks(img, img), ["image", "xfer", img, img], "onto itself"),
        (
            lambda: tc.create_transfer_tasks(img, dest, shape=(32, 32, 8)),
            ["image", "xfer", img, dest, "--shape", "32,32,8"],
            "yields no downsample levels",
        ),
        (
            lambda: tc.create_transfer_tasks(img, dest, encoding_level="high", encoding="jpeg"),
            ["image", "xfer", img, dest, "--encoding", "jpeg", "--encoding-level", "high"],
            "encoding_level",
        ),
        (
            lambda: tc.create_transfer_tasks(img, dest, encoding="jpeg", encoding_level=101),
            ["image", "xfer", img, dest, "--encoding", "jpeg", "--encoding-level", "101"],
            "encoding_level",
        ),
        (None, ["image", "downsample", img, "--num-mips", "two"], "num-mips"),
        (None, ["image", "xfer", img, dest, "--chunk-size", "32,32"], "chunk-size"),
    ]


def test_api_refuses_before_writing(img, tmp_path):
    for api, _, words in cases(img, tmp_path):
        if api is None:
            continue
        before = tree(tmp_path)
        with pytest.raises(ValueError) as err:
            api()
        assert isinstance(err.value, InvalidParameterError)
        assert words in str(err.value), (words, str(err.value))
        assert "\n" not in str(err.value)
        assert tree(tmp_path) == before, words


def test_cli_refuses_with_exit_2(img, tmp_path):
    for _, cli, words in cases(img, tmp_path):
        if cli is None:
            continue
        before = tree(tmp_path)
        result = CliRunner().invoke(main, cli)
        assert result.exit_code == 2, (cli, result.output)
        assert words.lower() in result.output.lower(), (words, result.output)
        assert "Traceback" not in result.output
        assert tree(tmp_path) == before, cli
