"""Skeleton fixtures: a crop of the real sample segmentation (../shared/data), its whole-volume
kimimaro oracle, and forged layers, built once per session (kimimaro is the slow part)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from taskqueue import LocalTaskQueue

from tests.conftest import make_layer
from tests.mesh.conftest import sample_crop  # noqa: F401  (session fixture)

# Not chunk- or task-aligned: 128×128×64 voxels at (256, 256, 256) of the sample, stored at a
# non-zero voxel offset with the benchmark's anisotropic resolution; 80×80×48 tasks do not
# divide it (2×2×2 tasks, the last ones clipped).
CROP = ((256, 256, 256), (128, 128, 64))
VOXEL_OFFSET = (7, 11, 5)
RESOLUTION = (16, 16, 40)
CHUNK = (32, 32, 16)
SHAPE = (80, 80, 48)
# The CLI's TEASAR parameters (SPEC §1.4 skeleton forge defaults).
TEASAR = {
    "scale": 4,
    "const": 10,
    "pdrf_exponent": 4,
    "pdrf_scale": 100000,
    "soma_detection_threshold": 1100,
    "soma_acceptance_threshold": 3500,
    "soma_invalidation_scale": 1.0,
    "soma_invalidation_const": 300,
    "max_paths": None,
}
DUST_VOXELS = 1000
MIN_CABLE = 1000.0  # merge dust (nm), the CLI default


def run(tasks) -> None:
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


@pytest.fixture(scope="session")
def skel_crop(sample_crop):  # noqa: F811
    return sample_crop(*CROP).astype(np.uint64)


@pytest.fixture(scope="session")
def whole_volume(skel_crop):
    """kimimaro on the whole crop, vertices moved to the layer's nm at voxel centres."""
    import kimimaro

    skels = kimimaro.skeletonize(
        skel_crop, TEASAR, anisotropy=RESOLUTION, dust_threshold=DUST_VOXELS, progress=False,
        fix_branching=True, fix_borders=True, parallel=1,
    )  # fmt: skip
    res = np.asarray(RESOLUTION, dtype=np.float64)
    for skel in skels.values():
        skel.vertices = ((skel.vertices / res + np.asarray(VOXEL_OFFSET) + 0.5) * res).astype(np.float32)
    return skels


@pytest.fixture(scope="session")
def seg_layer(tmp_path_factory, skel_crop):
    """A pristine layer of the crop; copy it with ``fresh_layer`` before writing into it."""
    root = tmp_path_factory.mktemp("skeleton_layers")
    return make_layer(
        f"file://{root / 'seg'}", skel_crop, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def copy_layer(path: str, dest) -> str:
    shutil.copytree(path[len("file://") :], dest)
    return f"file://{dest}"


@pytest.fixture(scope="session")
def forged(tmp_path_factory, seg_layer):
    """``forged(sharded) -> layer path``: the crop forged once per session per kind (read-only)."""
    import igneous.task_creation as tc

    cache = {}

    def get(sharded: bool) -> str:
        if sharded not in cache:
            path = copy_layer(seg_layer, tmp_path_factory.mktemp("forged") / "seg")
            run(tc.create_skeletonizing_tasks(
                path, 0, shape=SHAPE, teasar_params=TEASAR, dust_threshold=DUST_VOXELS, sharded=sharded,
            ))  # fmt: skip
            cache[sharded] = path
        return cache[sharded]

    return get
