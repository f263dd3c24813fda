"""Worker and queue commands against mistakes and poison messages (issue 9 items 6, 7, 8, 10, 12;
issue 10 item 3), on real fq:// queues and real `igneous execute` processes.

Each class of mistake is refused in one line with exit code 2, and where "nothing written" is
the promise the whole tree is compared before and after. A message no worker can run is
dead-lettered with its reason on its first lease and the worker goes on.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from taskqueue import TaskQueue

from igneous.queues import submit_tasks
from igneous.queues.backends import FileBackend
from igneous_cli import main
from tests.conftest import REPO, make_layer, tree
from tests.worker_tasks import count_tasks, executions


def run(*args, code=0, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output, output
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


def worker(qpath, *args, env=None, timeout=120):
    full_env = dict(os.environ, PYTHONPATH=REPO, IGNEOUS_TASK_MODULES="tests.worker_tasks", **(env or {}))
    cmd = [sys.executable, "-m", "igneous_cli", "execute", *args, qpath]
    return subprocess.run(cmd, env=full_env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


# -- item 6: poison messages are dead-lettered on their first lease --------------------------


def _put_raw(qdir, name: str, body: bytes) -> None:
    """A message file written by something other than task-queue (or damaged)."""
    ident = name
    with open(os.path.join(qdir, "queue", f"0--{ident}.json"), "wb") as f:
        f.write(body)
    with open(os.path.join(qdir, "movement", ident), "w") as f:
        f.write(f"0--{ident}.json\n")


@pytest.mark.parametrize(
    "kind",
    [
        "unregistered_function",  # FunctionTask raises a BaseException only when run
        "unregistered_class",
        "not_json",  # task-queue leases it, then json.loads fails
        "json_string",  # valid JSON, not a task
        "truncated_json",  # what a full disk used to leave
    ],
)
def test_poison_message_is_dead_lettered_on_first_lease_and_the_worker_goes_on(tmp_path, kind):
    logs = tmp_path / "logs"
    logs.mkdir()
    qdir = tmp_path / "q"
    qpath = f"fq://{qdir}"
    submit_tasks(count_tasks(logs, 3), queue=qpath)
    good = json.dumps({"payload": [["tests.worker_tasks", "CountTask"], [], {"log_dir": "x", "name": "y"}, -1]})
    bodies = {
        "unregistered_function": json.dumps(
            {"payload": [["igneous.tasks.nowhere", "NoSuchTask"], [], {}, -1], "id": "poison", "queueName": qpath}
        ).encode(),
        "unregistered_class": json.dumps({"payload": {"class": "NoSuchTask", "x": 1}, "id": "poison"}).encode(),
        "not_json": b"\x00\xffthis is not json",
        "json_string": b'"just a string"',
        "truncated_json": good[: len(good) // 2].encode(),
    }
    _put_raw(qdir, "poison", bodies[kind])
    proc = worker(qpath, "-x", "--lease-sec", "30", "--max-attempts", "5", timeout=120)
    assert proc.returncode == 1, proc.stderr  # something was dead-lettered
    assert "Traceback" not in proc.stderr
    assert executions(logs) == {f"t{i:05d}": 1 for i in range(3)}  # the others ran
    backend = FileBackend(str(qdir))
    [dead] = backend.dead_letters()
    assert dead["attempts"] == 1  # on the first lease, not after five
    assert dead["error"]
    assert TaskQueue(qpath, progress=False).enqueued == 0
    # `queue dead` lists it whatever it holds
    out = run("queue", "dead", qpath)
    assert "1 dead-lettered" in out and "attempts=1" in out
    # requeue puts back only what a worker could run; a non-task stays dead
    if kind.startswith("unregistered"):
        assert "requeued 1" in run("queue", "dead", qpath, "--requeue")
    else:
        assert "requeued 0" in run("queue", "dead", qpath, "--requeue")
        assert len(backend.dead_letters()) == 1


def test_queue_dead_lists_string_and_foreign_payloads(tmp_path):
    qdir = tmp_path / "q"
    submit_tasks(count_tasks(tmp_path, 1), queue=f"fq://{qdir}")
    os.makedirs(qdir / "dead", exist_ok=True)
    for i, task in enumerate(["a string payload", {"payload": "a string"}, {"body": "foreign"}, [1, 2]]):
        with open(qdir / "dead" / f"d{i}.json", "w") as f:
            json.dump({"task": task, "error": "x", "attempts": 1}, f)
    out = run("queue", "dead", f"fq://{qdir}")
    assert "4 dead-lettered" in out and out.count("  ?  ") == 4


# -- item 8: leases too short to be safe ---------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-10", "1"])
def test_lease_below_the_minimum_is_refused(tmp_path, value):
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(tmp_path, 1), queue=qpath)
    before = tree(tmp_path / "q")
    out = run("execute", "-x", "--lease-sec", value, qpath, code=2)
    assert "lease-sec" in one_line_error(out)
    assert tree(tmp_path / "q") == before
    out = run("execute", "-x", qpath, code=2, env={"LEASE_SECONDS": value})  # the environment too
    assert tree(tmp_path / "q") == before


def test_help_states_the_lease_minimum():
    out = run("execute", "--help")
    assert "at least 2" in out


# -- item 10 and 12: only insertion creates a queue; files and layers are not queues --------


READ_COMMANDS = [
    ("execute", "-x", "--lease-sec", "30"),
    ("execute", "--min-sec", "0"),
    ("queue", "status"),
    ("queue", "purge"),
    ("queue", "release"),
    ("queue", "rezero"),
    ("queue", "dead"),
    ("queue", "wait", "--rate", "0.1"),
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_mistyped_queue_is_refused_and_not_created(tmp_path, command):
    missing = tmp_path / "no-such-queue"
    out = run(*command, f"fq://{missing}", code=2)
    assert "no queue at" in one_line_error(out)
    assert not missing.exists()
    out = run(*command, str(missing), code=2)  # a bare path is a file queue too
    assert not missing.exists()


@pytest.mark.parametrize("command", READ_COMMANDS + [("queue", "cp"), ("queue", "mv")], ids=lambda c: " ".join(c[:2]))
def test_a_layer_or_a_file_is_not_a_queue(tmp_path, command):
    layer = make_layer(f"file://{tmp_path / 'layer'}", np.zeros((32, 32, 8), dtype=np.uint8))
    afile = tmp_path / "afile"
    afile.write_bytes(b"not a queue")
    before = tree(tmp_path)
    extra = [f"fq://{tmp_path / 'elsewhere'}"] if command[1] in ("cp", "mv") else []
    for target in (layer[len("file://") :], str(afile)):
        out = run(*command, target, *extra, code=2)
        line = one_line_error(out)
        assert "not a task queue" in line or "is a file" in line
    assert tree(tmp_path) == before


def test_insertion_refuses_a_file_or_a_layer_but_creates_a_new_queue(tmp_path):
    from igneous.errors import InvalidParameterError

    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    layer = make_layer(f"file://{tmp_path / 'layer'}", np.zeros((32, 32, 8), dtype=np.uint8))
    before = tree(tmp_path)
    for target in (str(afile), layer[len("file://") :]):
        with pytest.raises(InvalidParameterError):
            submit_tasks(count_tasks(tmp_path, 1), queue=target)
    assert tree(tmp_path) == before
    assert submit_tasks(count_tasks(tmp_path, 2), queue=str(tmp_path / "new")) == 2


def test_queue_commands_that_insert_may_create_the_destination(tmp_path):
    src = f"fq://{tmp_path / 'src'}"
    submit_tasks(count_tasks(tmp_path, 3), queue=src)
    assert "copied 3" in run("queue", "cp", src, f"fq://{tmp_path / 'new-cp'}")
    assert "moved 3" in run("queue", "mv", src, f"fq://{tmp_path / 'new-mv'}")


# -- issue 10 item 3: limits reached are success -------------------------------------------


def test_num_tasks_limit_exits_zero(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 5), queue=qpath)
    proc = worker(qpath, "-n", "3", "--lease-sec", "30")
    assert proc.returncode == 0, proc.stderr
    assert len(executions(logs)) == 3 and TaskQueue(qpath, progress=False).enqueued == 2


def test_min_sec_zero_runs_and_deletes_exactly_one_task(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 3), queue=qpath)
    proc = worker(qpath, "--min-sec", "0", "--lease-sec", "30")
    assert proc.returncode == 0, proc.stderr
    assert sum(executions(logs).values()) == 1
    tq = TaskQueue(qpath, progress=False)
    assert tq.enqueued == 2 and tq.leased == 0 and tq.completed == 1  # deleted, not left leased


def test_min_sec_zero_on_an_empty_queue_exits_at_once(tmp_path):
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks([], queue=qpath)
    t0 = time.time()
    proc = worker(qpath, "--min-sec", "0")
    assert proc.returncode == 0, proc.stderr
    assert time.time() - t0 < 30


def test_min_sec_limit_exits_zero(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks(count_tasks(logs, 50, seconds=0.2), queue=qpath)
    proc = worker(qpath, "--min-sec", "1", "--lease-sec", "30")
    assert proc.returncode == 0, proc.stderr
    assert 1 <= len(executions(logs)) < 50


def test_failures_still_exit_one_under_a_limit(tmp_path):
    from tests.worker_tasks import FailTask

    qpath = f"fq://{tmp_path / 'q'}"
    submit_tasks([functools.partial(FailTask, message="boom")], queue=qpath)
    proc = worker(qpath, "-n", "1", "--max-attempts", "1", "--lease-sec", "30")
    assert proc.returncode == 1, proc.stderr


# -- item 7 and 12: SQS without credentials or endpoint fails fast, in one line --------------


def _no_aws_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SQS_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PYTHONPATH=REPO, **extra)
    return env


@pytest.mark.parametrize(
    "command",
    [("execute", "-x"), ("queue", "status"), ("queue", "purge"), ("queue", "wait"), ("queue", "dead")],
    ids=lambda c: " ".join(c),
)
def test_sqs_unreachable_endpoint_fails_within_seconds(tmp_path, command):
    env = _no_aws_env(
        tmp_path,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
    )
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "igneous_cli", *command, "sqs://igneous-nowhere"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=90,
    )
    assert time.time() - t0 < 30, "must fail within seconds, not hang"
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot reach" in proc.stderr and "igneous-nowhere" in proc.stderr


@pytest.mark.parametrize("command", [("execute", "-x"), ("queue", "status")], ids=lambda c: " ".join(c))
def test_sqs_without_credentials_is_one_line(tmp_path, command):
    env = _no_aws_env(tmp_path, AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}", AWS_EC2_METADATA_DISABLED="true")
    proc = subprocess.run(
        [sys.executable, "-m", "igneous_cli", *command, "sqs://igneous-nowhere"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "credentials" in proc.stderr


def test_s3_layer_without_reachable_endpoint_is_one_line(tmp_path):
    env = _no_aws_env(
        tmp_path,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # no session token: cloud-files used to raise KeyError
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "igneous_cli", "image", "downsample", "s3://bucket/layer"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "KeyError" not in proc.stderr


def test_gs_layer_without_credentials_is_one_line(tmp_path):
    port = closed_port()  # keep google-auth's metadata-server probe on loopback
    env = _no_aws_env(tmp_path, GCE_METADATA_HOST=f"127.0.0.1:{port}", GCE_METADATA_IP=f"127.0.0.1:{port}")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "igneous_cli", "image", "downsample", "gs://bucket/layer"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Google Cloud credentials" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1
