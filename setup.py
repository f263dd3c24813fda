import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(HERE, name)) as f:
        return f.read()


def requirements():
    return [line.strip() for line in read("requirements.txt").splitlines() if line.strip() and not line.startswith("#")]


VERSION = re.search(r'__version__ = "([^"]+)"', read("igneous/__init__.py")).group(1)

setup(
    name="igneous",
    version=VERSION,
    description="Neuroglancer Precomputed pipeline: pyramids, transfers, meshes, skeletons, CCL, as queued tasks.",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.9",
    packages=find_packages(exclude=("tests", "tests.*", "benchmarks")),
    package_data={"igneous_cli": ["LICENSE"]},
    install_requires=requirements(),
    extras_require={
        "test": [
            "pytest>=7", "pytest-xdist", "hypothesis", "moto[server]>=5", "ruff", "mysql-connector-python",
            # image create / contrast / zarr ingest tests (issue 13)
            "tifffile", "Pillow", "h5py", "nibabel", "pynrrd", "opencv-python-headless", "matplotlib", "zarr",
            # numcodecs (under zarr) cannot parse zfpy's "1.0.1.post0" version and fails on import
            "zfpy<=1.0.1",
            "blosc",  # CloudVolume decodes zarr v2 blosc chunks with it
            "neuroglancer",  # browser tests (issue 14)
        ],
        "mysql": ["mysql-connector-python"],
        "nrrd": ["pynrrd"],
        "nii": ["nibabel"],
        # image create of stacks and arrays; contrast (CLAHE, histogram plots)
        "ingest": ["tifffile", "Pillow", "h5py", "blosc"],  # blosc: zarr v2 sources through CloudVolume
        "contrast": ["opencv-python-headless", "matplotlib"],
        "all": ["mysql-connector-python", "pynrrd", "nibabel", "tifffile", "Pillow", "h5py", "opencv-python-headless",
                "matplotlib"],
    },
    entry_points={"console_scripts": ["igneous=igneous_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
