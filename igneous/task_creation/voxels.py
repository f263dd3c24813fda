"""Planning global voxel counts: ``create_voxel_counting_tasks`` and ``accumulate_voxel_counts`` (SPEC §2.1).

Counting is two steps. ``create_voxel_counting_tasks`` tiles the layer into fixed 512³ boxes
whose ``CountVoxelsTask`` each write one small JSON of counts; ``accumulate_voxel_counts``
then sums all of them, synchronously, into one mapbuffer ``IntMap`` at
``{key}/stats/voxel_counts.im`` that ``dust_global`` meshing and skeletonizing read.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Optional

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from mapbuffer import IntMap

from igneous.errors import InvalidParameterError
from igneous.layerfiles import remove_other_variants
from igneous.ops.voxels import counts_from_json, merge_counts
from igneous.progress import progress_bar
from igneous.task_creation.common import GridTasks, record_provenance, task_kwargs
from igneous.tasks.image.common import task_box
from igneous.tasks.image.voxels import (
    INTMAP_CONTENT_TYPE,
    TASK_SHAPE,
    CountVoxelsTask,
    counts_filename,
    intmap_path,
)
from igneous.volumes import normalize_compress, open_volume

__all__ = ["create_voxel_counting_tasks", "accumulate_voxel_counts"]

log = logging.getLogger(__name__)

# Files summed per merge: bounds memory to a few batches of label lists.
MERGE_BATCH = 64


def _counting_volume(cloudpath: str, mip: int) -> CloudVolume:
    """The layer to count, refused unless it holds labels (one channel, integers)."""
    vol = open_volume(cloudpath, mip)
    if vol.layer_type != "segmentation":
        raise InvalidParameterError(
            f"voxel counts are per label, but {cloudpath} has layer type '{vol.layer_type}'; "
            f"count a segmentation layer (info type 'segmentation')"
        )
    if not np.issubdtype(vol.dtype, np.integer) or vol.num_channels != 1:
        raise InvalidParameterError(
            f"voxel counts need one channel of integer labels; {cloudpath} has "
            f"{vol.num_channels} channel(s) of {np.dtype(vol.dtype).name}"
        )
    return vol


def _grid(vol: CloudVolume, mip: int, make_task=None, finish=None) -> GridTasks:
    return GridTasks(vol.meta.bounds(mip), TASK_SHAPE, make_task, finish, clip=True)


def create_voxel_counting_tasks(
    cloudpath: str,
    mip: int,
    fill_missing: bool = False,
    agglomerate: bool = False,
    timestamp: Optional[int] = None,
):
    """Plan the counting of every label's voxels at ``mip``, in fixed 512³ tasks.

    Each ``CountVoxelsTask`` reads its box in chunk-aligned blocks (at most 32 MiB of uint64
    at a time) and writes ``{key}/stats/voxel_counts/{bbox}.json``. Run
    :func:`accumulate_voxel_counts` afterwards to build the global ``voxel_counts.im``.

    Args:
        cloudpath: a segmentation layer.
        mip: the level to count.
        fill_missing: count missing chunks as label 0 instead of failing.
        agglomerate, timestamp: graphene only (count root ids at ``timestamp``).

    Returns:
        A lazy, sized iterator of ``CountVoxelsTask``; provenance is recorded when it is exhausted.

    Raises:
        InvalidParameterError: no layer, a mip it lacks, or a layer that does not hold labels.
    """
    vol = _counting_volume(cloudpath, mip)
    kwargs = task_kwargs(
        cloudpath=cloudpath,
        mip=mip,
        fill_missing=bool(fill_missing),
        agglomerate=bool(agglomerate),
        timestamp=timestamp,
    )
    finish = functools.partial(record_provenance, cloudpath, "CountVoxelsTask", {**kwargs, "shape": list(TASK_SHAPE)})
    return _grid(vol, mip, functools.partial(CountVoxelsTask, **kwargs), finish)


def _expected_files(vol: CloudVolume, mip: int) -> list:
    """The count file of every box the counting grid has, in grid order."""
    names = []
    for cell in _grid(vol, mip, make_task=dict):  # each cell() is {"shape": …, "offset": …}
        box = task_box(vol, mip, **cell())
        names.append(counts_filename(vol, mip, box))
    return names


def _check_complete(vol: CloudVolume, mip: int, cf: CloudFiles, expected: list) -> None:
    present = set(cf.list(os.path.dirname(expected[0]) + "/"))
    if not present:
        raise InvalidParameterError(
            f"{vol.meta.cloudpath} has no voxel counts at mip {mip}; run `igneous image voxels count` first"
        )
    missing = [name for name in expected if name not in present]
    if missing:
        shown = ", ".join(os.path.basename(name) for name in missing[:5])
        raise InvalidParameterError(
            f"{len(missing)} of {len(expected)} voxel count files are missing at mip {mip} ({shown}"
            f"{', …' if len(missing) > 5 else ''}); run `igneous image voxels count` to completion first"
        )


def accumulate_voxel_counts(
    cloudpath: str,
    mip: int,
    progress: bool = True,
    compress=None,
    additional_output: Optional[str] = None,
) -> IntMap:
    """Sum every task's counts into the IntMap ``{key}/stats/voxel_counts.im`` (synchronous).

    Refuses, before writing, when counting has not finished: every box of the counting grid
    must have its file. The map holds ``label → voxels`` for every label, 0 included.

    Memory: the map is built from a Python dict (mapbuffer's constructor), fine up to
    ~10^7 labels.

    Args:
        cloudpath: the layer counted by ``create_voxel_counting_tasks``.
        mip: the level counted.
        progress: show a progress bar while reading count files.
        compress: transport compression of the .im file (None/gzip/br/zstd); readers
            decompress transparently (``load_voxel_counts``).
        additional_output: also write the uncompressed IntMap to this local file.

    Returns:
        The IntMap that was written.
    """
    vol = _counting_volume(cloudpath, mip)
    compress = normalize_compress(compress, "raw") if compress is not None else None
    cf = CloudFiles(vol.meta.cloudpath, progress=False)
    expected = _expected_files(vol, mip)
    _check_complete(vol, mip, cf, expected)

    total = (np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64))
    with progress_bar(total=len(expected), desc="Summing voxel counts", unit="file", enabled=progress) as pbar:
        for start in range(0, len(expected), MERGE_BATCH):
            batch = expected[start : start + MERGE_BATCH]
            results = cf.get_json(batch)
            for name, obj in zip(batch, results):
                if obj is None:  # deleted between the listing and now
                    raise InvalidParameterError(
                        f"voxel count file {name} disappeared while summing; run the count again"
                    )
            total = merge_counts([total] + [counts_from_json(obj) for obj in results])
            pbar.update(len(batch))

    labels, counts = total
    intmap = IntMap(dict(zip(labels.tolist(), counts.tolist())))
    data = intmap.tobytes()
    # on file:// an old .im.gz would shadow a new .im.zstd (CloudFiles reads the first variant)
    remove_other_variants(vol.meta.cloudpath, [intmap_path(vol, mip)], compress or None)
    cf.put(
        intmap_path(vol, mip),
        data,
        compress=compress or None,
        content_type=INTMAP_CONTENT_TYPE,
        cache_control="no-cache",
    )
    if additional_output:
        with open(additional_output, "wb") as f:
            f.write(data)
    log.info("wrote %d labels' voxel counts to %s", len(labels), intmap_path(vol, mip))
    return intmap
