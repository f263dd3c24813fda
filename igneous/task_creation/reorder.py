"""Planning z-slice reordering: each slice lands at its new z."""

from __future__ import annotations

import copy
import functools
from typing import Dict, Mapping, Sequence, Union

from cloudvolume import CloudVolume
from cloudvolume.lib import Vec

from igneous.errors import InvalidParameterError
from igneous.task_creation.common import FinelyDividedTaskIterator, get_bounds, record_provenance, task_kwargs
from igneous.task_creation.transfer import check_distinct_layers
from igneous.tasks.image.image import ReorderTask
from igneous.volumes import (
    clean_xfer_info,
    open_volume,
    output_encoding,
    set_encoding,
    truncate_scales,
)

__all__ = ["compute_reorder_mapping", "create_reordering_tasks"]


def compute_reorder_mapping(sequence: Union[Sequence[int], Mapping], zstart: int, zend: int) -> Dict[int, int]:
    """The complete ``{old_z: new_z}`` permutation of ``[zstart, zend)``.

    ``sequence`` is either a mapping ``{old_z: new_z}`` (slices it does not name keep their
    z) or a list of old z in their new order, placed from ``zstart``. A mapping that would
    drop, duplicate or move a slice outside the layer is refused.
    """
    if isinstance(sequence, Mapping):
        try:
            moves = {int(old): int(new) for old, new in sequence.items()}
        except (TypeError, ValueError):
            raise InvalidParameterError("the reorder mapping must be {old_z: new_z} with integer z values") from None
    else:
        moves = {int(old): zstart + i for i, old in enumerate(sequence)}
    outside = sorted(z for pair in moves.items() for z in pair if not zstart <= z < zend)
    if outside:
        raise InvalidParameterError(
            f"reorder mapping names z={outside[0]}, outside the layer's z range [{zstart}, {zend})"
        )
    mapping = {z: z for z in range(zstart, zend)}
    mapping.update(moves)
    targets = list(mapping.values())
    if len(set(targets)) != len(targets):
        seen, dup = set(), None
        for t in targets:
            if t in seen:
                dup = t
                break
            seen.add(t)
        sources = sorted(old for old, new in mapping.items() if new == dup)
        raise InvalidParameterError(
            f"reorder mapping sends slices {sources} to z={dup}: a slice would be lost (make it a permutation)"
        )
    return mapping


class ReorderTasks(FinelyDividedTaskIterator):
    """Tasks over destination boxes; each carries only the part of the mapping it needs."""

    def __init__(self, bounds, shape, mapping: Dict[int, int], kwargs: dict, finish):
        super().__init__(bounds, shape)
        self.inverse = {new: old for old, new in mapping.items()}
        self.kwargs = kwargs
        self.finish = finish

    def task(self, shape, offset):
        zs = range(int(offset.z), int(offset.z + shape.z))
        part = {str(self.inverse[z]): z for z in zs if z in self.inverse and self.inverse[z] != z}
        return functools.partial(ReorderTask, mapping=part, shape=shape.tolist(), offset=offset.tolist(), **self.kwargs)

    def on_finish(self):
        if self.start == 0:
            self.finish()


def create_reordering_tasks(
    src: str,
    dest: str,
    mip: int,
    sequence,
    fill_missing: bool = False,
    compress="br",
    delete_black_uploads: bool = False,
    background_color: int = 0,
    encoding=None,
    encoding_level=None,
    encoding_effort=None,
):
    """Plan writing ``src`` at ``mip`` to ``dest`` with z slices permuted by ``sequence``."""
    check_distinct_layers(src, dest)
    vol = open_volume(src, mip)
    bounds = vol.meta.bounds(mip)
    mapping = compute_reorder_mapping(sequence, int(bounds.minpt.z), int(bounds.maxpt.z))
    encoding, compress = output_encoding(vol, mip, encoding, compress)

    info = clean_xfer_info(copy.deepcopy(vol.info))
    truncate_scales(info, mip)
    destvol = CloudVolume(dest, info=info, progress=False, cdn_cache=False)
    set_encoding(destvol, mip, encoding, encoding_level, encoding_effort)
    chunk = vol.meta.chunk_size(mip)
    shape = Vec(chunk.x * max(1, 1024 // chunk.x), chunk.y * max(1, 1024 // chunk.y), chunk.z)
    task_bounds = get_bounds(vol, None, mip, 0)
    destvol.commit_info()
    kwargs = task_kwargs(
        src=src,
        dest=dest,
        mip=mip,
        fill_missing=bool(fill_missing),
        delete_black_uploads=bool(delete_black_uploads),
        background_color=background_color,
        compress=compress,
    )
    moved = {old: new for old, new in mapping.items() if old != new}
    finish = functools.partial(record_provenance, dest, "ReorderTask", {**kwargs, "mapping": moved}, [src])
    return ReorderTasks(task_bounds, shape, mapping, kwargs, finish)
