"""Real AWS services on loopback: a moto server (SQS + S3) for the whole session (DESIGN §4).

``moto_server`` starts ``moto_server -H 127.0.0.1 -p <free port>`` once per session and stops it
at the end. ``aws`` points every client of a test at it through the standard environment
(``AWS_ENDPOINT_URL`` and dummy credentials, which spawned workers inherit), with a temporary
``HOME`` so no real ``~/.aws`` or ``~/.cloudvolume/secrets`` is read. cloud-files, cloud-volume
and task-queue all build boto3 clients without an explicit endpoint for ``s3://`` and
``sqs://``, and boto3 (≥ 1.28) takes the endpoint from ``AWS_ENDPOINT_URL``.

When moto cannot start, tests that need it skip on a developer machine and fail under CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from typing import Optional

import pytest

REGION = "us-east-1"
START_TIMEOUT = 30.0


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str):
    """A needed component is missing: fail under CI (DESIGN §4), skip elsewhere."""
    if ci():
        pytest.fail(f"{reason} (CI is set: a missing component is a failure)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_moto(log_path, executable: Optional[str] = None, timeout: float = START_TIMEOUT, attempts: int = 3):
    """Start moto_server on a free loopback port: ``(process, endpoint_url)``.

    Calls ``missing`` (fail under CI, skip otherwise) when the executable is absent or the
    server does not come up. A port taken between choosing and binding it is retried.
    """
    exe = executable or shutil.which("moto_server")
    if exe is None or shutil.which(exe) is None:
        missing("moto_server is not installed (pip install 'moto[server]')")
    for _ in range(attempts):
        port = free_port()
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    [exe, "-H", "127.0.0.1", "-p", str(port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            except OSError as err:
                missing(f"moto_server could not be started: {err}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _listening(port):
                return proc, f"http://127.0.0.1:{port}"
            time.sleep(0.1)
        stop(proc)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-2000:]
    missing(f"moto_server did not start listening on 127.0.0.1 within {timeout:.0f} s:\n{tail}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def moto_launcher():
    """``start_moto`` itself, for the test that proves a failed start fails under CI."""
    return start_moto


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """The endpoint URL of a moto server (SQS + S3) on 127.0.0.1, for the whole session."""
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    proc, url = start_moto(log_path)
    yield url
    stop(proc)


@pytest.fixture
def aws(moto_server, tmp_path, monkeypatch):
    """This test's AWS clients (and the workers it spawns) talk to the moto server."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",  # cloud-files reads it whenever it reads the key from the env
        "AWS_DEFAULT_REGION": REGION,
        "SQS_REGION_NAME": REGION,
        "HOME": str(home),  # no real ~/.aws, ~/.cloudvolume/secrets or ~/.cloudfiles/secrets
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "SQS_ENDPOINT_URL", "SQS_URL"):
        monkeypatch.delenv(name, raising=False)
    # Libraries already imported in this process resolved their secrets folders from the real
    # HOME at import time: point them at the empty temporary ones and drop cached credentials.
    import cloudfiles.secrets as cf_secrets
    import cloudvolume.secrets as cv_secrets
    import taskqueue.secrets as tq_secrets

    for module, names in (
        (cf_secrets, ("CLOUD_VOLUME_SECRETS_DIR", "CLOUD_FILES_SECRETS_DIR")),
        (cv_secrets, ("CLOUD_VOLUME_DIR", "HOME")),
        (tq_secrets, ("CLOUD_VOLUME_DIR", "CLOUD_FILES_DIR")),
    ):
        for name in names:
            monkeypatch.setattr(module, name, str(home / "no-secrets"))
        monkeypatch.setattr(module, "AWS_CREDENTIALS_CACHE", defaultdict(dict))
    return moto_server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def boto(aws):
    """boto3 clients on the moto server: ``boto.s3``, ``boto.sqs``."""
    import boto3

    class Clients:
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)

    return Clients


@pytest.fixture
def sqs_queue(boto):
    """Factory: create a fresh SQS queue on moto, return its ``sqs://name``."""

    def create(prefix: str = "igneous-test") -> str:
        name = unique(prefix)
        boto.sqs.create_queue(QueueName=name)
        return f"sqs://{name}"

    return create


@pytest.fixture
def s3_bucket(boto):
    """Factory: create a fresh S3 bucket on moto, return its name.

    Tests never share a bucket, so nothing has to be deleted (moto's deletes are not
    thread-safe; if a test must delete, it deletes one object at a time)."""

    def create(prefix: str = "igneous-test") -> str:
        name = unique(prefix)
        boto.s3.create_bucket(Bucket=name)
        return name

    return create


# -- MariaDB, for spatial indices exported to mysql:// (DESIGN §4) ------------------------------

MARIADB_USER = "igneous"
MARIADB_PASSWORD = "igneous-test"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")  # mariadbd is in sbin


def _executable(name: str) -> Optional[str]:
    found = shutil.which(name)
    if found:
        return found
    for folder in SBIN_DIRS:
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    return None


def _tail(path, size: int = 2000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-size:]
    except OSError:
        return ""


def start_mariadb(root, timeout: float = START_TIMEOUT, attempts: int = 3):
    """Start a throwaway ``mariadbd`` on 127.0.0.1 with its data under ``root``: ``(process, base URL)``.

    The base URL is ``mysql://USER:PW@127.0.0.1:PORT`` for a user allowed to create databases
    (CloudVolume's ``to_sql`` creates its own). Calls ``missing`` when the server or the
    driver is absent or the server does not come up.
    """
    import getpass
    import tempfile

    server, install = _executable("mariadbd"), _executable("mariadb-install-db")
    if server is None or install is None:
        missing("mariadb-server is not installed (apt-get install mariadb-server)")
    try:
        import mysql.connector
    except ImportError:
        missing("mysql-connector-python is not installed (pip install 'igneous[mysql]')")

    root = str(root)
    # A unix socket path must stay under ~100 bytes; pytest's tmp dirs can be longer.
    sock_dir = root if len(root) < 80 else tempfile.mkdtemp(prefix="igneous-mariadb-")
    sock = os.path.join(sock_dir, "mysqld.sock")
    datadir, log = os.path.join(root, "data"), os.path.join(root, "mariadbd.log")
    user = getpass.getuser()
    proc = subprocess.run(
        [install, "--no-defaults", f"--datadir={datadir}", f"--user={user}",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        missing(f"mariadb-install-db failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")

    for _ in range(attempts):
        port = free_port()
        server_proc = subprocess.Popen(
            [server, "--no-defaults", f"--user={user}", f"--datadir={datadir}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={os.path.join(root, 'mariadbd.pid')}",
             f"--log-error={log}", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
             "--innodb-flush-log-at-trx-commit=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server_proc.poll() is None:
            if os.path.exists(sock) and _listening(port):
                break
            time.sleep(0.1)
        if server_proc.poll() is None and _listening(port):
            break
        stop(server_proc)
    else:
        missing(f"mariadbd did not start listening on 127.0.0.1 within {timeout:.0f} s:\n{_tail(log)}")

    try:
        conn = mysql.connector.connect(unix_socket=sock, user="root", password="")
        cur = conn.cursor()
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"CREATE USER '{MARIADB_USER}'@'{host}' IDENTIFIED BY '{MARIADB_PASSWORD}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_USER}'@'{host}'")
        conn.commit()
        conn.close()
    except Exception as err:
        stop(server_proc)
        missing(f"could not create the test user in mariadbd: {err}\n{_tail(log)}")
    return server_proc, f"mysql://{MARIADB_USER}:{MARIADB_PASSWORD}@127.0.0.1:{port}"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """Base URL ``mysql://user:pw@127.0.0.1:PORT`` of a real mariadbd for the whole session."""
    proc, url = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield url
    stop(proc)


@pytest.fixture
def mysql_db(mariadb):
    """A fresh database URL on the session's MariaDB (CloudVolume creates the database itself)."""
    return f"{mariadb}/si_{uuid.uuid4().hex[:12]}"
