"""CCL's task grid and intermediate files, in one place (SPEC §3.2, §4.5).

Every file lives under ``{key}/ccl/`` of the layer's mip:

| file | writer | content |
|---|---|---|
| ``faces/{gx}-{gy}-{gz}-{xy,xz,yz}.ckl`` | CCLFacesTask | the extended box's last slice on each axis, global uint64 labels, crackle + brotli (SPEC) |
| ``equivalences/{gx}-{gy}-{gz}.json`` | CCLEquivalancesTask | brotli JSON ``{label: parent}`` (SPEC) |
| ``relabel/{task_num}.json`` | create_relabeling | brotli JSON ``{label: final id}`` for every label of the task (SPEC) |
| ``max_label.json`` | create_relabeling | brotli JSON ``[N]``, written last (SPEC) |
| ``params.json`` | create_ccl_face_tasks | the options every step must share (ours) |
| ``labels/{gx}-{gy}-{gz}.npy`` | CCLFacesTask | the task's local labels (.npy of the narrowest uint, zstd), so later steps skip the read + CCL (ours) |
| ``leading/{gx}-{gy}-{gz}.npy`` | CCLFacesTask | the three leading slices of its labels and their count, for pass 2 (ours) |
| ``counts/{gx}-{gy}-{gz}.u64`` | CCLFacesTask with dust | owned voxels per local label, little-endian uint64, gzip (ours) |

A task is named by its offset; its grid point, number, label offset and boxes follow from
the layer bounds and the task shape (:class:`CCLGrid`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox

from igneous.ops.ccl import compute_label_offset, compute_task_number, labels_per_task

__all__ = [
    "FACES",
    "PARAMS_VERSION",
    "CCLGrid",
    "CCLParams",
    "ccl_prefix",
    "face_path",
    "equivalences_path",
    "relabel_path",
    "max_label_path",
    "params_path",
    "labels_path",
    "leading_path",
    "counts_path",
    "gridpoint_name",
]

FACES = ("xy", "xz", "yz")
PARAMS_VERSION = 1
# Which neighbour's trailing face a task reads for each of its leading faces.
NEIGHBOUR_STEP = {"yz": (1, 0, 0), "xz": (0, 1, 0), "xy": (0, 0, 1)}


def ccl_prefix(key: str) -> str:
    return f"{key}/ccl/"


def gridpoint_name(gridpoint: Sequence[int]) -> str:
    return "-".join(str(int(v)) for v in gridpoint)


def face_path(key: str, gridpoint: Sequence[int], face: str) -> str:
    return f"{key}/ccl/faces/{gridpoint_name(gridpoint)}-{face}.ckl"


def equivalences_path(key: str, gridpoint: Sequence[int]) -> str:
    return f"{key}/ccl/equivalences/{gridpoint_name(gridpoint)}.json"


def relabel_path(key: str, task_num: int) -> str:
    return f"{key}/ccl/relabel/{int(task_num)}.json"


def max_label_path(key: str) -> str:
    return f"{key}/ccl/max_label.json"


def params_path(key: str) -> str:
    return f"{key}/ccl/params.json"


def labels_path(key: str, gridpoint: Sequence[int]) -> str:
    return f"{key}/ccl/labels/{gridpoint_name(gridpoint)}.npy"


def leading_path(key: str, gridpoint: Sequence[int]) -> str:
    return f"{key}/ccl/leading/{gridpoint_name(gridpoint)}.npy"


def counts_path(key: str, gridpoint: Sequence[int]) -> str:
    return f"{key}/ccl/counts/{gridpoint_name(gridpoint)}.u64"


@dataclass(frozen=True)
class CCLGrid:
    """The task grid over a layer's bounds at one mip: cells of ``shape`` from ``minpt``."""

    minpt: Tuple[int, int, int]
    maxpt: Tuple[int, int, int]
    shape: Tuple[int, int, int]

    @classmethod
    def of(cls, vol: CloudVolume, mip: int, shape: Sequence[int]) -> CCLGrid:
        bounds = vol.meta.bounds(mip)
        return cls(
            tuple(int(v) for v in bounds.minpt), tuple(int(v) for v in bounds.maxpt), tuple(int(s) for s in shape)
        )

    @property
    def bounds(self) -> Bbox:
        return Bbox(self.minpt, self.maxpt)

    @property
    def grid_size(self) -> Tuple[int, int, int]:
        return tuple(int(math.ceil((hi - lo) / s)) for lo, hi, s in zip(self.minpt, self.maxpt, self.shape))

    @property
    def num_tasks(self) -> int:
        return math.prod(self.grid_size)

    @property
    def labels_per_task(self) -> int:
        return labels_per_task(self.shape)

    def gridpoint(self, offset: Sequence[int]) -> Tuple[int, int, int]:
        """The grid point of the task at ``offset``; refused unless it is a cell corner."""
        rel = [int(o) - lo for o, lo in zip(offset, self.minpt)]
        point = tuple(r // s for r, s in zip(rel, self.shape))
        if any(r % s for r, s in zip(rel, self.shape)) or any(not 0 <= p < g for p, g in zip(point, self.grid_size)):
            raise ValueError(
                f"offset {list(offset)} is not a corner of the {list(self.shape)} task grid over "
                f"{list(self.minpt)}-{list(self.maxpt)}"
            )
        return point

    def task_number(self, gridpoint: Sequence[int]) -> int:
        return compute_task_number(self.grid_size, gridpoint)

    def label_offset(self, gridpoint: Sequence[int]) -> int:
        return compute_label_offset(self.shape, self.grid_size, gridpoint)

    def own_box(self, gridpoint: Sequence[int]) -> Bbox:
        lo = np.array(self.minpt) + np.array(gridpoint) * np.array(self.shape)
        return Bbox(lo, np.minimum(lo + np.array(self.shape), self.maxpt))

    def extended_box(self, gridpoint: Sequence[int]) -> Bbox:
        """The task's box plus one voxel on each high side that has a neighbour."""
        lo = np.array(self.minpt) + np.array(gridpoint) * np.array(self.shape)
        return Bbox(lo, np.minimum(lo + np.array(self.shape) + 1, self.maxpt))

    def gridpoints(self) -> Iterator[Tuple[int, int, int]]:
        """Every grid point in task-number order (x fastest)."""
        gx, gy, gz = self.grid_size
        for z in range(gz):
            for y in range(gy):
                for x in range(gx):
                    yield (x, y, z)

    def neighbour(self, gridpoint: Sequence[int], face: str) -> Optional[Tuple[int, int, int]]:
        """The task whose trailing ``face`` is this task's leading one (None at the layer's low edge)."""
        point = tuple(int(p) - d for p, d in zip(gridpoint, NEIGHBOUR_STEP[face]))
        return point if min(point) >= 0 else None


def _number_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return float(a) == float(b)


@dataclass(frozen=True)
class CCLParams:
    """What every step of one CCL run must agree on: recorded by the faces step in ``params.json``."""

    shape: Tuple[int, int, int]
    connectivity: int = 6
    threshold_gte: Optional[float] = None
    threshold_lte: Optional[float] = None
    dust_threshold: int = 0

    def to_json(self) -> dict:
        return {
            "version": PARAMS_VERSION,
            "shape": list(self.shape),
            "connectivity": self.connectivity,
            "threshold_gte": self.threshold_gte,
            "threshold_lte": self.threshold_lte,
            "dust_threshold": self.dust_threshold,
        }

    @classmethod
    def from_json(cls, obj: dict) -> CCLParams:
        return cls(
            shape=tuple(int(s) for s in obj["shape"]),
            connectivity=int(obj.get("connectivity", 6)),
            threshold_gte=obj.get("threshold_gte"),
            threshold_lte=obj.get("threshold_lte"),
            dust_threshold=int(obj.get("dust_threshold", 0)),
        )

    def differences(self, other: CCLParams) -> list:
        """``name: ours vs theirs`` for each option that differs."""
        out = []
        if tuple(self.shape) != tuple(other.shape):
            out.append(f"shape {','.join(map(str, self.shape))} vs {','.join(map(str, other.shape))}")
        for name in ("connectivity", "dust_threshold"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name} {getattr(self, name)} vs {getattr(other, name)}")
        for name in ("threshold_gte", "threshold_lte"):
            if not _number_equal(getattr(self, name), getattr(other, name)):
                out.append(f"{name} {getattr(self, name)} vs {getattr(other, name)}")
        return out

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf8")
