"""Credentials and queue look-ups against a real moto server (issue 9 items 7 and 12).

Long-lived AWS keys (an access key id and secret, no session token) work for layers and
queues; a queue that does not exist is refused in one line within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, make_layer, read_layer


def igneous(*args, drop=(), timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = REPO
    return subprocess.run(
        [sys.executable, "-m", "igneous_cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_key_id_and_secret_without_session_token_work_for_s3_layers(aws, s3_bucket, tmp_path):
    data = np.random.default_rng(0).integers(0, 255, size=(64, 64, 16), dtype=np.uint8)
    src = make_layer(f"file://{tmp_path / 'src'}", data, chunk_size=(32, 32, 8))
    dest = f"s3://{s3_bucket()}/layer"
    proc = igneous("image", "xfer", src, dest, "--chunk-size", "32,32,8", drop=("AWS_SESSION_TOKEN",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "KeyError" not in proc.stderr
    np.testing.assert_array_equal(read_layer(dest)[..., 0], data)


@pytest.mark.parametrize("command", [("execute", "-x"), ("queue", "status"), ("queue", "purge")], ids=" ".join)
def test_missing_sqs_queue_is_refused_in_one_line(aws, command):
    t0 = time.time()
    proc = igneous(*command, "sqs://igneous-no-such-queue", timeout=120)
    assert time.time() - t0 < 30
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "no SQS queue named 'igneous-no-such-queue'" in proc.stderr


def test_key_id_and_secret_without_session_token_work_for_sqs(aws, sqs_queue):
    queue = sqs_queue()
    proc = igneous("queue", "status", queue, drop=("AWS_SESSION_TOKEN",), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Enqueued: 0" in proc.stdout
