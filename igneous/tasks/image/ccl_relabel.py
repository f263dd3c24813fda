"""CCL's synchronous steps: number the components (``create_relabeling``) and clean up (SPEC §3.2).

Memory grows with the labels that touch a task face, not with every label. Only linked
labels (those in an equivalences entry) go through the union-find; a task's other labels
are components of their own, numbered from the task's label count as the tasks are walked
in order. Dust, when asked for, is decided per component over the whole volume: the voxels
each label owns (``ccl/counts/``) are summed over the component's labels in every task.
"""

from __future__ import annotations

import logging
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from tqdm import tqdm

from igneous.errors import InvalidParameterError
from igneous.ops.ccl import CONNECTIVITIES, format_label_map, parse_label_map, task_relabeling, union_find
from igneous.tasks.image.ccl_layout import (
    CCLGrid,
    CCLParams,
    ccl_prefix,
    counts_path,
    equivalences_path,
    max_label_path,
    params_path,
    relabel_path,
)
from igneous.validate import int_vector
from igneous.volumes import open_volume

__all__ = [
    "create_relabeling",
    "clean_intermediate_files",
    "read_params",
    "recorded_params",
    "check_triple",
    "check_connectivity",
    "missing_files",
    "read_max_label",
    "check_relabeling",
]

log = logging.getLogger(__name__)

BATCH = 64  # files fetched at once
WRITE_BYTES = 32 * 2**20  # relabel JSON held before writing: a few tasks' tables, not every task's
# Brotli quality 3 writes a 5 MB table (262k labels) in 0.07 s; quality 5 takes 0.8 s and 11
# (the default) 8.6 s, for files 25 % smaller.
BROTLI_LEVEL = 3


def check_triple(value, name: str) -> Tuple[int, int, int]:
    """Three positive integers (a task shape)."""
    return int_vector(value, name, 3, 1)


def check_connectivity(connectivity) -> int:
    if isinstance(connectivity, bool) or connectivity not in CONNECTIVITIES:
        raise InvalidParameterError(f"connectivity must be 6, 18 or 26; got {connectivity!r}")
    return int(connectivity)


def read_params(cf: CloudFiles, key: str) -> Optional[CCLParams]:
    obj = cf.get_json(params_path(key))
    return None if obj is None else CCLParams.from_json(obj)


def recorded_params(vol: CloudVolume, mip: int, step: str) -> CCLParams:
    """The options the faces step recorded; refused when there was none."""
    params = read_params(CloudFiles(vol.meta.cloudpath, progress=False), vol.meta.key(mip))
    if params is None:
        raise InvalidParameterError(
            f"{vol.meta.cloudpath} has no CCL run at mip {mip} ({params_path(vol.meta.key(mip))} is missing); "
            f"run `igneous image ccl faces` before {step}"
        )
    return params


def missing_files(cf: CloudFiles, directory: str, expected: Sequence[str]) -> List[str]:
    present = set(cf.list(directory))
    return [name for name in expected if name not in present]


def _refuse_missing(missing: List[str], total: int, what: str, step: str) -> None:
    if missing:
        shown = ", ".join(name.rsplit("/", 1)[-1] for name in missing[:3])
        raise InvalidParameterError(
            f"{len(missing)} of {total} {what} are missing ({shown}{', …' if len(missing) > 3 else ''}); "
            f"run `igneous image ccl {step}` to completion first"
        )


def read_max_label(cf: CloudFiles, key: str) -> Optional[int]:
    obj = cf.get_json(max_label_path(key))
    if obj is None:
        return None
    return int(obj[0] if isinstance(obj, list) else obj)


def _batches(items: Sequence, size: int = BATCH) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _local(cf: CloudFiles) -> bool:
    # On a local disk one file at a time is faster: CloudFiles' thread pool polls with sleeps.
    return cf.protocol in ("file", "mem")


def _fetch(cf: CloudFiles, paths: Sequence[str]) -> List[bytes]:
    if _local(cf):
        results = {path: {"path": path, "content": cf.get(path), "error": None} for path in paths}
    else:
        results = {r["path"]: r for r in cf.get(list(paths))}
    out = []
    for path in paths:
        res = results.get(path)
        if res is None or res["error"] is not None or res["content"] is None:
            raise InvalidParameterError(f"{path} could not be read ({res and res['error']}); run the step again")
        out.append(res["content"])
    return out


def create_relabeling(
    cloudpath: str,
    mip: int,
    shape: Sequence[int],
    progress: bool = False,
    connectivity: Optional[int] = None,
) -> int:
    """Join every task's links and give each component a final id 1…N (synchronous).

    Writes ``ccl/relabel/{task_num}.json`` (every label of the task → its id, 0 for dust)
    and then ``ccl/max_label.json`` = ``[N]``. Ids are consecutive; tasks are numbered in
    grid order and, inside a task, components take ids in the order of their first voxel in
    that task's box, so ids are *not* cc3d's whole-volume order unless there is one task.

    Memory: a few uint64 arrays per linked (face) label plus one task's label table at a
    time; labels that never touch a face cost nothing here.

    Args:
        cloudpath, mip: the layer the faces and links steps ran on.
        shape: their task shape (refused if it differs).
        progress: show progress bars.
        connectivity: checked against the recorded run when given.

    Returns:
        N, the number of components after dust.
    """
    vol, params, grid = check_relabeling(cloudpath, mip, shape, connectivity)
    key = vol.meta.key(mip)
    cf = CloudFiles(vol.meta.cloudpath, progress=False)
    points = list(grid.gridpoints())
    eq_paths = [equivalences_path(key, p) for p in points]
    dust = int(params.dust_threshold)

    per_task = np.uint64(grid.labels_per_task)
    n_labels, a, b = _read_links(cf, eq_paths, grid, progress)
    labels, root = _components(a, b)
    del a, b
    alive = _surviving(cf, key, grid, points, labels, root, dust, progress) if dust else None

    root_ids = np.zeros(labels.size, dtype=np.uint64)
    next_id = 1
    writes: list = []
    with tqdm(total=len(points), desc="Numbering components", disable=not progress) as pbar:
        for batch in _batches(list(enumerate(points))):
            counts = _read_counts(cf, key, [p for _, p in batch]) if dust else [None] * len(batch)
            for (task_num, point), task_counts in zip(batch, counts):
                if task_counts is not None and task_counts.size != n_labels[task_num] + 1:
                    raise InvalidParameterError(
                        f"{counts_path(key, point)} counts {task_counts.size - 1} labels, the links say "
                        f"{n_labels[task_num]}: the files are from different runs; clean ccl/ and start over"
                    )
                offset = np.uint64(task_num) * per_task
                lo, hi = np.searchsorted(labels, [offset + np.uint64(1), offset + per_task + np.uint64(1)])
                index = np.arange(lo, hi, dtype=np.int64)
                new, next_id = task_relabeling(
                    int(n_labels[task_num]), int(offset), labels[lo:hi], index, root[lo:hi], root_ids, next_id,
                    counts=task_counts, alive=alive, dust_threshold=dust,
                )  # fmt: skip
                keys = np.arange(1, new.size, dtype=np.uint64) + offset
                writes.append((relabel_path(key, task_num), format_label_map(keys, new[1:])))
                if sum(len(data) for _, data in writes) >= WRITE_BYTES:
                    _write(cf, writes)
            _write(cf, writes)
            pbar.update(len(batch))
    max_label = next_id - 1
    cf.put_json(max_label_path(key), [max_label], compress="br")
    log.info("%d components over %d tasks (%d linked labels)", max_label, len(points), labels.size)
    return max_label


def check_relabeling(cloudpath: str, mip: int, shape: Sequence[int], connectivity: Optional[int] = None):
    """Refuse calc-labels before it reads anything: other options than the faces step's, or a
    links (or dust counts) file missing. Returns ``(volume, recorded params, task grid)``."""
    vol = open_volume(cloudpath, mip)
    shape = check_triple(shape, "shape")
    params = recorded_params(vol, mip, "calc-labels")
    if tuple(params.shape) != shape:
        raise InvalidParameterError(
            f"shape {','.join(map(str, shape))} differs from the faces step's "
            f"{','.join(map(str, params.shape))}; calc-labels must use the same task shape"
        )
    if connectivity is not None and check_connectivity(connectivity) != params.connectivity:
        raise InvalidParameterError(
            f"connectivity {connectivity} differs from the faces step's {params.connectivity}"
        )
    key = vol.meta.key(mip)
    grid = CCLGrid.of(vol, mip, shape)
    cf = CloudFiles(vol.meta.cloudpath, progress=False)
    points = list(grid.gridpoints())
    eq_paths = [equivalences_path(key, p) for p in points]
    _refuse_missing(missing_files(cf, f"{key}/ccl/equivalences/", eq_paths), len(points), "equivalence files", "links")
    if params.dust_threshold:
        count_paths = [counts_path(key, p) for p in points]
        _refuse_missing(missing_files(cf, f"{key}/ccl/counts/", count_paths), len(points), "voxel count files", "faces")
    return vol, params, grid


def _write(cf: CloudFiles, writes: list) -> None:
    """Write and forget the relabel tables held so far."""
    if _local(cf):
        for path, data in writes:
            cf.put(path, data, compress="br", compression_level=BROTLI_LEVEL, content_type="application/json")
    elif writes:
        cf.puts(writes, compress="br", compression_level=BROTLI_LEVEL, content_type="application/json")
    writes.clear()


def _read_links(cf: CloudFiles, eq_paths: List[str], grid: CCLGrid, progress: bool):
    """Every task's label count and the linked pairs ``label → parent`` of all equivalences files."""
    per_task = np.uint64(grid.labels_per_task)
    n_labels = np.zeros(len(eq_paths), dtype=np.int64)
    a_parts, b_parts = [], []
    with tqdm(total=len(eq_paths), desc="Reading links", disable=not progress) as pbar:
        for start, batch in zip(range(0, len(eq_paths), BATCH), _batches(eq_paths)):
            for task_num, data in enumerate(_fetch(cf, batch), start=start):
                keys, vals = parse_label_map(data)
                if keys.size:
                    offset = np.uint64(task_num) * per_task
                    own = keys[(keys > offset) & (keys <= offset + per_task)]
                    n_labels[task_num] = int(own.max() - offset) if own.size else 0
                linked = keys != vals
                a_parts.append(keys[linked])
                b_parts.append(vals[linked])
            pbar.update(len(batch))
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.uint64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.uint64)
    return n_labels, a, b


def _components(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    if a.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return union_find(a, b)


def _read_counts(cf: CloudFiles, key: str, points) -> List[np.ndarray]:
    return [np.frombuffer(data, dtype="<u8") for data in _fetch(cf, [counts_path(key, p) for p in points])]


def _surviving(cf, key, grid: CCLGrid, points, labels, root, dust: int, progress: bool) -> np.ndarray:
    """Per root position: does the component own at least ``dust`` voxels over all tasks?"""
    per_task = np.uint64(grid.labels_per_task)
    total = np.zeros(labels.size, dtype=np.uint64)
    with tqdm(total=len(points), desc="Summing component sizes", disable=not progress) as pbar:
        for start, batch in zip(range(0, len(points), BATCH), _batches(points)):
            for task_num, counts in enumerate(_read_counts(cf, key, batch), start=start):
                offset = np.uint64(task_num) * per_task
                lo, hi = np.searchsorted(labels, [offset + np.uint64(1), offset + per_task + np.uint64(1)])
                if hi > lo:
                    local = (labels[lo:hi] - offset).astype(np.int64)
                    if local.max() >= counts.size:
                        raise InvalidParameterError(
                            f"{counts_path(key, points[task_num])} has {counts.size - 1} labels but the links name "
                            f"label {int(local.max())}: the files are from different runs; clean ccl/ and start over"
                        )
                    np.add.at(total, root[lo:hi], counts[local])
            pbar.update(len(batch))
    return total >= np.uint64(dust)


def clean_intermediate_files(src: str, mip: int) -> int:
    """Delete everything under ``{key}/ccl/`` (SPEC §4.5 files and ours); returns how many files."""
    vol = open_volume(src, mip)
    cf = CloudFiles(vol.meta.cloudpath, progress=False)
    names = list(cf.list(ccl_prefix(vol.meta.key(mip))))
    cf.delete(names)
    log.info("deleted %d CCL intermediate files of %s mip %d", len(names), src, mip)
    return len(names)

