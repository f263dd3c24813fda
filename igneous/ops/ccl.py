"""Connected components across task seams: the pure numpy parts (SPEC §3.2 helpers).

A CCL task labels its box plus one voxel on the high side of each axis (its *extended*
box), so every pair of neighbouring voxels — across a face, an edge or a corner of the
task grid — lies together in the extended box of the task that owns the lower corner of
the pair. The slices a task shares with a neighbour are labelled by both: where both
labels are non-zero they name the same voxel, hence the same component, and the union of
those label pairs over all seams is exactly the whole-volume partition for 6-, 18- and
26-connectivity (a label reaches the owner of an edge or corner voxel through a chain of
face neighbours, one axis at a time). Labels are made unique across tasks by a per-task
offset of ``task_number · (sx+1)(sy+1)(sz+1)``.

Functions here take and return arrays: no storage, no queue.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence, Tuple

import cc3d
import fastremap
import numpy as np

__all__ = [
    "CONNECTIVITIES",
    "AXES",
    "DisjointSet",
    "compute_task_number",
    "compute_label_offset",
    "labels_per_task",
    "task_of_label",
    "threshold_image",
    "blackout_non_face_rails",
    "connected_components",
    "owned_counts",
    "trailing_face",
    "leading_face",
    "with_offset",
    "face_pairs",
    "union_find",
    "equivalence_entries",
    "task_relabeling",
    "parse_label_map",
    "format_label_map",
    "smallest_uint",
]

CONNECTIVITIES = (6, 18, 26)
# Face names of SPEC §4.5: the plane each face lies in, and the axis it is normal to.
AXES = {"yz": 0, "xz": 1, "xy": 2}


def compute_task_number(grid_size: Sequence[int], gridpoint: Sequence[int]) -> int:
    """Task number of ``gridpoint`` in a grid of ``grid_size`` cells, x fastest: ``x + gx·(y + gy·z)``."""
    gx, gy = int(grid_size[0]), int(grid_size[1])
    x, y, z = (int(v) for v in gridpoint)
    return x + gx * (y + gy * z)


def labels_per_task(shape: Sequence[int]) -> int:
    """How many labels a task may use: the voxels of its extended box, ``(sx+1)(sy+1)(sz+1)``."""
    return math.prod(int(s) + 1 for s in shape)


def compute_label_offset(shape: Sequence[int], grid_size: Sequence[int], gridpoint: Sequence[int]) -> int:
    """What a task adds to its local labels 1…N so no two tasks share a label."""
    return compute_task_number(grid_size, gridpoint) * labels_per_task(shape)


def task_of_label(labels, shape: Sequence[int]):
    """The task number that produced each (global, non-zero) label.

    A task's labels are ``offset + 1 … offset + N`` with ``N ≤ (sx+1)(sy+1)(sz+1)``, so the
    bucket is ``(label - 1) // V``; ``label // V`` would misfile a task whose extended box is
    all distinct single-voxel labels.
    """
    per_task = np.uint64(labels_per_task(shape))
    return (np.asarray(labels, dtype=np.uint64) - np.uint64(1)) // per_task


def threshold_image(image: np.ndarray, threshold_lte=None, threshold_gte=None) -> np.ndarray:
    """Foreground mask ``threshold_gte <= image <= threshold_lte`` (either bound may be None).

    NaN voxels of a float image are background. With no bound at all the image is returned
    unchanged (its labels are the components' values).
    """
    if threshold_lte is None and threshold_gte is None:
        return image
    mask = None
    if threshold_gte is not None:
        mask = image >= threshold_gte
    if threshold_lte is not None:
        below = image <= threshold_lte
        if mask is None:
            mask = below
        else:
            mask &= below
    return mask


def blackout_non_face_rails(labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Zero the voxels of an extended box that lie in the overlap of two or three axes (in place).

    ``shape`` is the task's own box; the extended box is one voxel longer on each axis that
    has a neighbour. With 6-connectivity those edge "rails" (and the far corner) are never
    needed: every face-adjacent pair crosses one seam only. They must stay for 18 and 26.
    """
    sx, sy, sz = (int(s) for s in shape)
    labels[sx:, sy:, :] = 0
    labels[sx:, :, sz:] = 0
    labels[:, sy:, sz:] = 0
    return labels


def connected_components(image: np.ndarray, connectivity: int, own_shape: Sequence[int]) -> Tuple[np.ndarray, int]:
    """Label the extended box ``image`` (3-D; binary or labels): ``(labels, N)``, labels 1…N.

    With 6-connectivity the non-face rails are blacked out first (as the reference does,
    so its workers' labels equal ours). Labels are uint32 unless the box could need more.
    The input may be modified.
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of 6, 18, 26; got {connectivity!r}")
    if connectivity == 6:
        blackout_non_face_rails(image, own_shape)
    out_dtype = np.uint32 if image.size < 2**32 - 1 else np.uint64
    labels, n = cc3d.connected_components(image, connectivity=connectivity, return_N=True, out_dtype=out_dtype)
    return labels, int(n)


def owned_counts(labels: np.ndarray, own_shape: Sequence[int], n: int) -> np.ndarray:
    """Voxels of each label 0…n inside the task's own box (the overlap belongs to neighbours).

    Counted over the whole contiguous extended box (fast) minus the overlap slices.
    """
    counts = np.zeros(n + 1, dtype=np.uint64)
    uniq, cnt = fastremap.unique(labels, return_counts=True)
    counts[uniq.astype(np.int64)] += cnt.astype(np.uint64)
    sx, sy, sz = (int(s) for s in own_shape)
    for part in (labels[sx:, :, :], labels[:sx, sy:, :], labels[:sx, :sy, sz:]):
        if part.size:
            uniq, cnt = fastremap.unique(np.asfortranarray(part), return_counts=True)
            counts[uniq.astype(np.int64)] -= cnt.astype(np.uint64)
    counts[0] = 0
    return counts


def _slice(labels: np.ndarray, face: str, index: int) -> np.ndarray:
    # a view, not np.take: take() along an axis of a big Fortran-ordered box walks all of it
    where = [slice(None)] * 3
    where[AXES[face]] = index
    return labels[tuple(where)]


def trailing_face(labels: np.ndarray, face: str) -> np.ndarray:
    """The extended box's last slice normal to ``face``'s axis (shared with the next task), a view."""
    return _slice(labels, face, -1)


def leading_face(labels: np.ndarray, face: str) -> np.ndarray:
    """The extended box's first slice normal to ``face``'s axis (shared with the previous task), a view."""
    return _slice(labels, face, 0)


def with_offset(labels: np.ndarray, offset: int) -> np.ndarray:
    """Local labels as global uint64 labels (0 stays 0)."""
    out = labels.astype(np.uint64)
    out[out > 0] += np.uint64(offset)
    return out


def face_pairs(mine: np.ndarray, theirs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Distinct ``(mine, theirs)`` global label pairs where both name a voxel of the same slice.

    A voxel black in one and not the other can only be a blacked-out rail; it carries no link.
    """
    mine = np.asarray(mine, dtype=np.uint64).reshape(-1, order="F")
    theirs = np.asarray(theirs, dtype=np.uint64).reshape(-1, order="F")
    if mine.shape != theirs.shape:
        raise ValueError(f"face sizes differ: {mine.size} voxels against {theirs.size}")
    both = (mine > 0) & (theirs > 0)
    if not both.any():
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty
    mine, theirs = mine[both], theirs[both]
    # one sortable key per pair: each side's labels renumbered to their rank on the face
    ua, ia = np.unique(mine, return_inverse=True)
    ub, ib = np.unique(theirs, return_inverse=True)
    keys = np.unique(ia.astype(np.uint64) * np.uint64(ub.size) + ib.astype(np.uint64))
    return ua[keys // np.uint64(ub.size)], ub[keys % np.uint64(ub.size)]


def union_find(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph whose edges are ``(a[i], b[i])`` (vectorised union-find).

    Returns ``(labels, root)``: every label that appears, sorted, and the index (into
    ``labels``) of its component's smallest label. Memory is a few arrays of the edge count.
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    labels = np.unique(np.concatenate([a, b]))
    u = np.searchsorted(labels, a)
    v = np.searchsorted(labels, b)
    parent = np.arange(labels.size, dtype=np.int64)
    while True:
        # shortcut to the roots, then hook the larger root of every edge under the smaller
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return labels, parent
        lo = np.minimum(pu[differ], pv[differ])
        hi = np.maximum(pu[differ], pv[differ])
        np.minimum.at(parent, hi, lo)


class DisjointSet:
    """A small dictionary union-find over labels (SPEC §3.2 helper), smallest label as root.

    ``data`` maps each label to its parent, the ``{label: parent}`` an equivalences file holds.
    """

    def __init__(self):
        self.data: Dict[int, int] = {}

    def makeset(self, x: int) -> int:
        self.data.setdefault(int(x), int(x))
        return int(x)

    def find(self, x: int) -> Optional[int]:
        x = int(x)
        if x not in self.data:
            return None
        root = x
        while self.data[root] != root:
            root = self.data[root]
        while self.data[x] != root:  # path compression
            self.data[x], x = root, self.data[x]
        return root

    def union(self, x: int, y: int) -> int:
        rx = self.find(self.makeset(x))
        ry = self.find(self.makeset(y))
        lo, hi = min(rx, ry), max(rx, ry)
        self.data[hi] = lo
        return lo

    def __len__(self) -> int:
        return len(self.data)


def equivalence_entries(a: np.ndarray, b: np.ndarray, max_label: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """The ``{label: root}`` entries of one task's equivalences file, as two arrays.

    Every label of a link maps to its component's smallest label; ``max_label`` (the task's
    largest label, if it has any) maps to itself so the file also says how many labels the
    task made. Interior labels need no entry: they are their own components.
    """
    keys, vals = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    if len(a):
        labels, root = union_find(a, b)
        keys, vals = labels, labels[root]
    if max_label is not None and max_label > 0 and not np.isin(np.uint64(max_label), keys):
        keys = np.append(keys, np.uint64(max_label))
        vals = np.append(vals, np.uint64(max_label))
    return keys, vals


def task_relabeling(
    n: int,
    offset: int,
    face_labels: np.ndarray,
    face_index: np.ndarray,
    face_root: np.ndarray,
    root_ids: np.ndarray,
    next_id: int,
    counts: Optional[np.ndarray] = None,
    alive: Optional[np.ndarray] = None,
    dust_threshold: int = 0,
) -> Tuple[np.ndarray, int]:
    """Final ids of one task's labels 0…n, in label order: ``(new, next_id)``.

    Tasks are visited in task-number order; each hands out ids from ``next_id``.

    Args:
        n: labels the task made.
        offset: its label offset.
        face_labels: its global labels that were linked across a seam (sorted).
        face_index: their positions in the global sorted list of linked labels.
        face_root: for each, the position of its component's smallest label. A component
            whose smallest label is in this task gets its id here; the others already got
            theirs from an earlier task.
        root_ids: id of each component, indexed by root position (0 = none yet or dusted);
            updated in place for the components this task opens.
        next_id: the first unused id.
        counts: owned voxels of each local label 0…n (with dust).
        alive: per root position, whether the component survives dust (its voxels summed
            over every task); None keeps all.
        dust_threshold: interior labels with fewer owned voxels become 0.

    Interior labels and the components opened here take consecutive ids in label order.
    """
    new = np.zeros(n + 1, dtype=np.uint64)
    keep = np.ones(n + 1, dtype=bool)
    keep[0] = False
    if dust_threshold and counts is not None:
        keep &= counts[: n + 1] >= dust_threshold
    local = (np.asarray(face_labels, dtype=np.uint64) - np.uint64(offset)).astype(np.int64)
    is_root = face_root == face_index
    opened = is_root if alive is None else is_root & alive[face_root]
    keep[local] = opened
    ids = np.cumsum(keep, dtype=np.uint64)
    new[keep] = ids[keep] + np.uint64(next_id - 1)
    next_id += int(ids[-1])
    root_ids[face_root[opened]] = new[local[opened]]
    joined = ~is_root
    new[local[joined]] = root_ids[face_root[joined]]
    return new, next_id


def parse_label_map(data: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """``{"label": label, …}`` JSON (an equivalences or relabel file) as ``(keys, values)`` uint64.

    Parsed as numbers only — never evaluated — and without building a dict: files of
    millions of labels cost a few arrays, not a Python object per label.
    """
    if isinstance(data, str):
        data = data.encode("utf8")
    text = bytes(data).translate(_JSON_PUNCTUATION)
    if text.translate(None, _DIGITS_AND_SPACE):
        raise ValueError("a label map holds only {\"label\": label} pairs of unsigned integers")
    numbers = np.fromstring(text.decode("ascii"), dtype=np.uint64, sep=" ") if text.strip() else np.zeros(0, np.uint64)
    if numbers.size % 2:
        raise ValueError("a label map must hold label: label pairs")
    return numbers[0::2].copy(), numbers[1::2].copy()


_JSON_PUNCTUATION = bytes.maketrans(b'{}":,', b"     ")
_DIGITS_AND_SPACE = b"0123456789 \t\r\n"


def format_label_map(keys: Iterable[int], values: Iterable[int]) -> bytes:
    """``{"label": label, …}`` JSON for uint64 keys and values (keys as strings, like JSON wants)."""
    import orjson

    keys = np.asarray(keys, dtype=np.uint64).tolist()
    values = np.asarray(values, dtype=np.uint64).tolist()
    return orjson.dumps(dict(zip(keys, values)), option=orjson.OPT_NON_STR_KEYS)


def smallest_uint(max_value: int, at_least=np.uint8) -> np.dtype:
    """The narrowest unsigned dtype (no narrower than ``at_least``) that holds ``max_value``."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if np.dtype(dtype).itemsize >= np.dtype(at_least).itemsize and max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"{max_value} labels do not fit in uint64")
