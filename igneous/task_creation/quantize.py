"""Planning affinity quantization (float affinities → uint8 image)."""

from __future__ import annotations

import copy
import functools

from cloudvolume import CloudVolume

from igneous.errors import InvalidParameterError
from igneous.scales import add_pyramid
from igneous.task_creation.common import GridTasks, as_triple, get_bounds, record_provenance, task_kwargs
from igneous.tasks.image.image import QuantizeTask
from igneous.volumes import normalize_encoding, open_volume, set_encoding, truncate_scales

__all__ = ["create_quantized_affinity_info", "create_quantize_tasks"]


def create_quantized_affinity_info(src_layer: str, dest_layer: str, shape, mip: int, chunk_size, encoding) -> dict:
    """Info for the quantized layer: 1-channel uint8 image, scales up to ``mip``, new chunk/encoding."""
    vol = open_volume(src_layer, mip)
    info = copy.deepcopy(vol.info)
    truncate_scales(info, mip)
    info.update(data_type="uint8", type="image", num_channels=1)
    for scale in info["scales"]:
        scale["chunk_sizes"] = [list(as_triple(chunk_size, "chunk_size"))]
        scale["encoding"] = normalize_encoding(encoding) or "raw"
    return info


def create_quantize_tasks(
    src_layer: str,
    dest_layer: str,
    shape,
    mip: int = 0,
    fill_missing: bool = False,
    chunk_size=(128, 128, 64),
    encoding: str = "raw",
    bounds=None,
):
    """Plan quantizing channel 0 of float affinities to uint8 (×255), with 2×2×1 downsamples
    as many levels as ``shape`` allows."""
    vol = open_volume(src_layer, mip)
    if vol.dtype not in ("float32", "float64"):
        raise InvalidParameterError(f"quantize expects float affinities; {src_layer} is {vol.dtype}")
    shape = as_triple(shape, "shape")
    chunk = as_triple(chunk_size, "chunk_size")
    if any(shape % chunk):
        raise InvalidParameterError(f"shape {tuple(shape)} must be a multiple of chunk_size {tuple(chunk)}")
    info = create_quantized_affinity_info(src_layer, dest_layer, shape, mip, chunk, encoding)
    dest = CloudVolume(dest_layer, info=info, progress=False, cdn_cache=False)
    set_encoding(dest, mip, encoding)
    levels = 0
    while shape.x % (chunk.x * 2 ** (levels + 1)) == 0 and shape.y % (chunk.y * 2 ** (levels + 1)) == 0:
        levels += 1
    if levels:
        add_pyramid(dest, mip, [(2, 2, 1)] * levels, chunk, encoding)
    task_bounds = get_bounds(vol, bounds, mip, 0, chunk_size=shape)
    dest.commit_info()
    kwargs = task_kwargs(
        source_layer_path=src_layer, dest_layer_path=dest_layer, mip=mip, fill_missing=bool(fill_missing)
    )
    finish = functools.partial(
        record_provenance, dest_layer, "QuantizeTask", {**kwargs, "bounds": task_bounds}, [src_layer]
    )
    return GridTasks(task_bounds, shape, functools.partial(QuantizeTask, **kwargs), finish)
