#!/usr/bin/env python
"""The README demo: a sample volume, its pyramid and a rechunked copy, through an fq:// queue.

Everything happens under --out (default ./demo-output): no cloud account needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
from cloudvolume import CloudVolume


def sample_image(shape=(512, 512, 64)) -> np.ndarray:
    """A smooth synthetic 'tissue' image: blobs on a gradient, uint8."""
    x, y, z = np.meshgrid(*(np.linspace(0, 1, s, dtype=np.float32) for s in shape), indexing="ij")
    img = 90 + 60 * np.sin(12 * x) * np.cos(9 * y) + 30 * np.sin(5 * z + 3 * x)
    return np.asfortranarray(np.clip(img, 0, 255).astype(np.uint8))


def igneous(*args: str) -> None:
    cmd = [sys.executable, "-m", "igneous_cli", *args]
    print("$ igneous " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo-output")
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src, dest, queue = f"file://{out}/image", f"file://{out}/image-rechunked", f"fq://{out}/queue"

    vol = CloudVolume.from_numpy(
        sample_image(),
        vol_path=src,
        resolution=(8, 8, 40),
        chunk_size=(64, 64, 16),
        layer_type="image",
        encoding="raw",
        compress="gzip",
        progress=False,
    )
    print(f"created {src}: {vol.shape[:3]} uint8, chunks {tuple(vol.chunk_size)}")

    igneous("image", "downsample", src, "--queue", queue, "--num-mips", "3")
    igneous("queue", "status", queue)
    igneous("-p", "2", "execute", "-x", "-q", queue)
    igneous("image", "xfer", src, dest, "--queue", queue, "--chunk-size", "128,128,32", "--max-mips", "2")
    igneous("-p", "2", "execute", "-x", "-q", queue)
    igneous("queue", "status", queue)

    for path in (src, dest):
        info = CloudVolume(path).info
        print(f"\n{path}")
        for scale in info["scales"]:
            print(f"  {scale['key']:>10}  size {scale['size']}  chunks {scale['chunk_sizes'][0]}  {scale['encoding']}")
    original = CloudVolume(src)[:, :, :]
    copy = CloudVolume(dest)[:, :, :]
    print(f"\nrechunked copy identical to the source: {bool(np.array_equal(original, copy))}")
    print("\nsee both in Neuroglancer (serves the layers on localhost until Ctrl-C and prints the URL):")
    print(f"  igneous view {src} {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
