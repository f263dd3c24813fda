"""The benchmark inputs: written once by the project's shared ``make_data.py``, cached, copied per run.

Every figure in the project's history is measured on the same synthetic layers, so the
cache is only reused when its ``manifest.json`` describes exactly the layers below;
otherwise the generator is run again. Stages never touch the cache: each run gets a
fresh copy of the layer it reads (downsampling writes new scales into its input).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

MAKE_DATA = "/work/shared/bench/make_data.py"

# What make_data.py writes with its defaults; a cache whose manifest differs is regenerated.
EXPECTED = {
    "img": {
        "size": [2048, 2048, 128],
        "chunk": [128, 128, 16],
        "encoding": "raw",
        "compress": "gzip",
        "dtype": "uint8",
    },
    "seg": {
        "size": [512, 512, 512],
        "chunk": [64, 64, 64],
        "encoding": "compressed_segmentation",
        "compress": "gzip",
        "dtype": "uint64",
    },
    "segsmall": {
        "size": [256, 256, 128],
        "chunk": [64, 64, 64],
        "encoding": "compressed_segmentation",
        "compress": "gzip",
        "dtype": "uint64",
    },
}


def read_manifest(data_dir: str) -> dict | None:
    try:
        with open(os.path.join(data_dir, "manifest.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def manifest_matches(data_dir: str) -> bool:
    """True when every expected layer is present and its manifest entry has the expected parameters."""
    manifest = read_manifest(data_dir)
    if manifest is None:
        return False
    for layer, want in EXPECTED.items():
        have = manifest.get(layer)
        if have is None or not os.path.exists(os.path.join(data_dir, layer, "info")):
            return False
        if any(have.get(key) != value for key, value in want.items()):
            return False
    return True


def ensure_data(data_dir: str, make_data: str = MAKE_DATA) -> dict:
    """The manifest of a usable cache in ``data_dir``, generating the layers first if needed."""
    if not manifest_matches(data_dir):
        print(f"generating benchmark inputs in {data_dir} with {make_data} (a minute or two)", flush=True)
        os.makedirs(data_dir, exist_ok=True)
        subprocess.run([sys.executable, make_data, "--out", data_dir], check=True)
        if not manifest_matches(data_dir):
            raise RuntimeError(f"{make_data} did not write the expected layers into {data_dir}")
    return read_manifest(data_dir)


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def fresh_copy(data_dir: str, layer: str, work_dir: str, name: str | None = None) -> str:
    """Copy ``data_dir/layer`` to ``work_dir/name`` (replacing any earlier copy); returns the copy's path."""
    dest = os.path.join(work_dir, name or layer)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(work_dir, exist_ok=True)
    shutil.copytree(os.path.join(data_dir, layer), dest)
    return dest
