"""``igneous view`` of layers in S3 (moto on loopback): read directly by Neuroglancer, or proxied
through the local server with ``--indirect``."""

from __future__ import annotations

import json
import os

import numpy as np
from click.testing import CliRunner

from igneous_cli import main
from tests.cli.test_view import View, state_of
from tests.conftest import make_layer


def test_s3_layer_is_read_directly_and_nothing_is_served(aws, s3_bucket):
    bucket = s3_bucket("igneous-view")
    make_layer(f"s3://{bucket}/em", np.zeros((32, 32, 8), dtype=np.uint8))
    result = CliRunner().invoke(main, ["view", "--no-browser", f"s3://{bucket}/em"])
    assert result.exit_code == 0, result.output
    state = state_of(result.output.strip().splitlines()[0])
    assert state["layers"][0]["source"] == f"precomputed://s3://{bucket}/em"


def test_indirect_serves_an_s3_layer_on_localhost(aws, s3_bucket):
    bucket = s3_bucket("igneous-view")
    data = (np.arange(32 * 32 * 8) % 200).astype(np.uint8).reshape((32, 32, 8))
    make_layer(f"s3://{bucket}/em", data, chunk_size=(32, 32, 8))
    v = View(f"s3://{bucket}/em", "--indirect", "--port", "0", env=dict(os.environ))
    try:
        base = v.source()
        assert base.startswith("http://localhost:")
        status, _, body = v.get(base + "/info")
        assert status == 200 and json.loads(body)["data_type"] == "uint8"
        status, _, raw = v.get(base + "/4_4_40/0-32_0-32_0-8")
        assert status == 200
        assert np.array_equal(np.frombuffer(raw, dtype=np.uint8).reshape((32, 32, 8), order="F"), data)
    finally:
        code, err = v.stop()
    assert code == 0, err
