"""SQS and S3 for real (a moto server on loopback, DESIGN §4) with real `igneous execute` processes.

* an ``s3://`` layer downsampled through an ``sqs://`` queue by two workers equals the same
  downsample run locally on a ``file://`` copy, and tinybrain;
* the fq:// fault tests (tests/integration/test_worker_faults.py) on SQS: dead letters with their
  errors, a task longer than its lease runs once, SIGKILL and SIGTERM lose nothing, ``-x`` exits
  promptly once the queue is drained and not while a task is in flight;
* the moto fixture fails, not skips, under CI when the server cannot start.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous.queues import submit_tasks
from igneous.queues.backends import DEAD_LETTER_SUFFIX, SqsBackend, open_backend
from igneous_cli import main
from tests.conftest import REPO, make_layer, read_layer
from tests.oracles import tinybrain_pyramid
from tests.worker_tasks import FailTask, count_tasks, executions


def worker(queue: str, *args: str, parallel: int = 1) -> subprocess.Popen:
    """``igneous execute`` in its own process; it inherits the moto environment."""
    env = dict(os.environ, PYTHONPATH=REPO, IGNEOUS_TASK_MODULES="tests.worker_tasks")
    cmd = [sys.executable, "-m", "igneous_cli", "-p", str(parallel), "execute", *args, queue]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def queue_name(queue: str) -> str:
    return queue[len("sqs://") :]


def attributes(boto, queue: str) -> dict:
    url = boto.sqs.get_queue_url(QueueName=queue_name(queue))["QueueUrl"]
    attrs = boto.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attrs["ApproximateNumberOfMessages"]),
        "leased": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
    }


def wait_for_lease(boto, queue: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if attributes(boto, queue)["leased"] >= 1:
            return
        time.sleep(0.05)
    raise AssertionError("no task was leased")


def finish(proc: subprocess.Popen, timeout: float = 120):
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker did not finish in {timeout} s:\n{err[-3000:]}") from None


# -- an s3:// pyramid through sqs:// -------------------------------------------------------


def s3_keys(boto, bucket: str, prefix: str) -> set:
    keys, token = set(), None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        resp = boto.s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", **kwargs)
        keys.update(obj["Key"][len(prefix) + 1 :] for obj in resp.get("Contents", []))
        if not resp.get("IsTruncated"):
            return keys
        token = resp["NextContinuationToken"]


def file_keys(root) -> set:
    out = set()
    for dirpath, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            out.add(rel[: -len(".gz")] if rel.endswith(".gz") else rel)  # cloud-files' file:// gzip suffix
    return out


def test_s3_layer_downsampled_through_sqs_by_two_workers_equals_local_run(aws, boto, s3_bucket, sqs_queue, tmp_path):
    rng = np.random.default_rng(7)
    whole = np.asfortranarray(rng.integers(0, 255, size=(256, 256, 16), dtype=np.uint8))
    bucket = s3_bucket()
    cloud = make_layer(f"s3://{bucket}/img", whole, chunk_size=(32, 32, 8))
    local = make_layer(f"file://{tmp_path / 'img'}", whole, chunk_size=(32, 32, 8))
    np.testing.assert_array_equal(read_layer(cloud)[..., 0], whole)  # really on moto's S3

    queue = sqs_queue()
    # a memory target that fits 128×128×8 tasks with their two levels (4/3 of 128 KiB)
    memory = 200_000
    inserted = submit_tasks(tc.create_downsampling_tasks(cloud, num_mips=2, memory_target=memory), queue=queue,
                            progress=False)
    assert inserted == 8  # 256×256×16 in tasks of 128×128×8
    assert attributes(boto, queue)["visible"] == inserted
    submit_tasks(tc.create_downsampling_tasks(local, num_mips=2, memory_target=memory), progress=False)  # same plan

    procs = [worker(queue, "-x", "--lease-sec", "10") for _ in range(2)]
    errs = []
    for proc in procs:
        _, err = finish(proc)
        assert proc.returncode == 0, err[-3000:]
        errs.append(err)
    ran = sum(err.count("outcome=ok") for err in errs)
    assert ran >= inserted  # more only if moto's racy delete let a finished task reappear
    assert attributes(boto, queue) == {"visible": 0, "leased": 0, "delayed": 0}

    assert CloudVolume(cloud).info == CloudVolume(local).info
    assert s3_keys(boto, bucket, "img") == file_keys(tmp_path / "img")  # the same chunks, no more
    expected = tinybrain_pyramid(whole, (2, 2, 1), 2, "avg")
    for mip, exp in enumerate(expected, start=1):
        got = read_layer(cloud, mip=mip)
        np.testing.assert_array_equal(got, read_layer(local, mip=mip), err_msg=f"mip {mip} vs local")
        np.testing.assert_array_equal(got, exp, err_msg=f"mip {mip} vs tinybrain")


# -- faults on SQS -------------------------------------------------------------------------


def dead_letter_bodies(boto, queue: str) -> list:
    """Read the dead-letter queue with plain boto3 (then make the messages visible again)."""
    url = boto.sqs.get_queue_url(QueueName=queue_name(queue) + DEAD_LETTER_SUFFIX)["QueueUrl"]
    resp = boto.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    msgs = resp.get("Messages", [])
    for m in msgs:
        boto.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in msgs]


def test_always_failing_task_is_dead_lettered_and_the_rest_complete(aws, boto, sqs_queue, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    tasks = count_tasks(logs, 20) + [functools.partial(FailTask, message="bad input in block 7")]
    assert submit_tasks(tasks, queue=queue, progress=False) == 21
    # and a message some other program put there: no task at all
    boto.sqs.send_message(QueueUrl=boto.sqs.get_queue_url(QueueName=queue_name(queue))["QueueUrl"], MessageBody="hi")
    proc = worker(queue, "-x", "--lease-sec", "10", "--max-attempts", "3")
    _, err = finish(proc)
    assert proc.returncode == 1, err  # tasks failed
    assert executions(logs) == {f"t{i:05d}": 1 for i in range(20)}
    assert err.count("outcome=ok") == 20
    # the task fails twice, then is dead-lettered; the foreign message is dead-lettered on its first lease
    assert err.count("outcome=failed") == 2 and err.count("outcome=dead_lettered") == 2
    assert attributes(boto, queue) == {"visible": 0, "leased": 0, "delayed": 0}

    # the dead letters, as any SQS client sees them in <name>-dead-letter
    bodies = dead_letter_bodies(boto, queue)
    [failing] = [b for b in bodies if "payload" in b["task"]]
    assert failing["attempts"] == 3 and "RuntimeError: bad input in block 7" in failing["error"]
    assert failing["task"]["payload"][0] == ["tests.worker_tasks", "FailTask"]
    [foreign] = [b for b in bodies if "payload" not in b["task"]]
    assert foreign["attempts"] == 1 and foreign["task"] == {"body": "hi"}

    # ... as the operator sees them
    status = CliRunner().invoke(main, ["queue", "status", queue], catch_exceptions=False)
    assert status.exit_code == 0 and "Dead-lettered: 2" in status.output, status.output
    listed = CliRunner().invoke(main, ["queue", "dead", queue], catch_exceptions=False)
    assert "FailTask  attempts=3  error=RuntimeError: bad input in block 7" in listed.output, listed.output
    assert "2 dead-lettered task(s)" in listed.output

    # ... as igneous lists them, then puts them back after a fix
    backend = open_backend(queue)
    assert isinstance(backend, SqsBackend)
    assert backend.counts()["dead_lettered"] == 2
    dead = backend.dead_letters()
    assert sorted(d["attempts"] for d in dead) == [1, 3]
    assert any("bad input in block 7" in d["error"] for d in dead)
    assert backend.requeue_dead() == 2  # listing must not hide the dead letters from a requeue
    assert backend.dead_letters() == [] and backend.counts()["dead_lettered"] == 0
    url = boto.sqs.get_queue_url(QueueName=queue_name(queue))["QueueUrl"]
    back = boto.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    bodies = {m["Body"] for m in back}
    assert "hi" in bodies  # the foreign message exactly as it was
    [task] = bodies - {"hi"}
    assert json.loads(task)["payload"][0] == ["tests.worker_tasks", "FailTask"]


def test_task_three_times_its_lease_runs_exactly_once(aws, boto, sqs_queue, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    submit_tasks(count_tasks(logs, 1, seconds=6), queue=queue, progress=False)
    first = worker(queue, "-x", "--lease-sec", "2")
    wait_for_lease(boto, queue)
    second = worker(queue, "-x", "--lease-sec", "2")  # would take the task if its lease lapsed
    while not executions(logs) and first.poll() is None:
        time.sleep(0.05)
    # -x: the second worker must not leave while the task is in flight (the queue is not drained)
    assert second.poll() is None
    for proc in (first, second):
        _, err = finish(proc)
        assert proc.returncode == 0, err
    assert executions(logs) == {"t00000": 1}
    assert attributes(boto, queue) == {"visible": 0, "leased": 0, "delayed": 0}


def test_sigkilled_worker_task_is_rerun_after_its_lease(aws, boto, sqs_queue, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    submit_tasks(count_tasks(logs, 1, seconds=2), queue=queue, progress=False)
    doomed = worker(queue, "--lease-sec", "2")
    wait_for_lease(boto, queue)
    survivor = worker(queue, "-x", "--lease-sec", "2")
    doomed.kill()  # SIGKILL mid-task: no chance to release
    finish(doomed)
    assert executions(logs) == {}
    _, err = finish(survivor)
    assert survivor.returncode == 0, err
    assert executions(logs) == {"t00000": 1}
    assert "attempt=2" in err and "outcome=ok" in err
    assert attributes(boto, queue) == {"visible": 0, "leased": 0, "delayed": 0}


def test_sigterm_during_a_task_finishes_it(aws, boto, sqs_queue, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    submit_tasks(count_tasks(logs, 3, seconds=2), queue=queue, progress=False)
    proc = worker(queue, "--lease-sec", "30")
    wait_for_lease(boto, queue)
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc, timeout=60)
    assert proc.returncode == 5, err  # stopped by signal
    done = executions(logs)
    left = attributes(boto, queue)
    assert left["leased"] == 0 and len(done) + left["visible"] == 3  # finished or released: never lost
    assert len(done) >= 1 and set(done.values()) == {1}


def test_sigterm_past_the_grace_period_releases_the_task(aws, boto, sqs_queue, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    submit_tasks(count_tasks(logs, 1, seconds=60), queue=queue, progress=False)
    proc = worker(queue, "--lease-sec", "300", "--grace-sec", "1")
    wait_for_lease(boto, queue)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc, timeout=60)
    assert time.monotonic() - t0 < 20  # bounded, not the task's 60 s
    assert proc.returncode == 5, err
    assert attributes(boto, queue) == {"visible": 1, "leased": 0, "delayed": 0}  # released right away
    assert executions(logs) == {}


def test_exit_on_empty_is_prompt_once_drained(aws, boto, sqs_queue, tmp_path):
    """``-x`` on SQS neither stops early nor waits long; also measures the per-task overhead."""
    logs = tmp_path / "logs"
    logs.mkdir()
    queue = sqs_queue()
    n = 100
    submit_tasks(count_tasks(logs, n), queue=queue, progress=False)
    t0 = time.monotonic()
    proc = worker(queue, "-x", "--lease-sec", "10")
    idle = worker(sqs_queue(), "-x", "--lease-sec", "10")  # an empty queue from the start
    _, idle_err = finish(idle)
    assert idle.returncode == 0, idle_err
    assert time.monotonic() - t0 < 30
    _, err = finish(proc)
    total = time.monotonic() - t0
    assert proc.returncode == 0, err[-3000:]
    assert executions(logs) == {f"t{i:05d}": 1 for i in range(n)}
    assert attributes(boto, queue) == {"visible": 0, "leased": 0, "delayed": 0}
    # one parseable line per task: name, seconds, outcome
    assert len(re.findall(r"task=CountTask id=\S+ attempt=1 seconds=[0-9.]+ outcome=ok\b", err)) == n
    stamps = sorted(os.path.getmtime(logs / name) for name in os.listdir(logs))
    linger = time.time() - stamps[-1]
    assert linger < 30, f"-x took {linger:.1f} s to notice the drained queue"
    rate = (n - 1) / max(stamps[-1] - stamps[0], 1e-6)
    print(
        f"\nSQS (moto), one worker: {rate:.0f} trivial tasks/s (lease+execute+delete);"
        f" -x exit {linger:.1f} s after the last task; {total:.1f} s in all"
    )


def test_sqs_endpoint_url_alone_reaches_the_queue(aws, boto, sqs_queue, monkeypatch):
    """SPEC §1.1: SQS_ENDPOINT_URL points igneous's SQS client at an endpoint by itself."""
    queue = sqs_queue()
    submit_tasks(count_tasks("/nonexistent", 1), queue=queue, progress=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("SQS_ENDPOINT_URL", aws)
    backend = open_backend(queue)
    assert backend.api.qurl.startswith(aws)
    lease = backend.lease(10)
    assert lease is not None and lease.attempts == 1 and lease.name == "CountTask"
    backend.delete(lease)
    assert backend.counts()["enqueued"] == 0


# -- the fixture itself ------------------------------------------------------------------------


@pytest.mark.parametrize("executable", ["/nonexistent/moto_server", "false"])
def test_moto_that_cannot_start_fails_under_ci(moto_launcher, tmp_path, monkeypatch, executable):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        moto_launcher(tmp_path / "log", executable=executable, timeout=5, attempts=1)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        moto_launcher(tmp_path / "log", executable=executable, timeout=5, attempts=1)
