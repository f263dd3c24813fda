"""Obsolete planners (SPEC §2.4, and the EyeWire hypersquare planners of §2.1).

Kept so that old scripts import and run. Each validates everything (files it will read
included) before it writes a destination ``info``, like every other planner.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from typing import Dict, List

import numpy as np
from cloudfiles import CloudFile, CloudFiles
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox, Vec

from igneous.errors import InvalidParameterError
from igneous.task_creation.common import GridTasks, record_provenance, task_kwargs
from igneous.tasks.image.obsolete import (
    HyperSquareConsensusTask,
    InferenceTask,
    MaskAffinitymapTask,
    WatershedRemapTask,
    load_consensus_map,
    load_remap,
)
from igneous.validate import plain, triple, whole
from igneous.volumes import check_encoding, clean_xfer_info, open_volume

__all__ = ["create_inference_tasks", "create_watershed_remap_tasks", "create_mask_affinity_map_tasks"]

log = logging.getLogger(__name__)


# -- helpers --------------------------------------------------------------------------------------


def _info(path: str):
    """The layer's info, or None where there is no layer yet."""
    return CloudFiles(path).get_json("info")


def _integer_segmentation(path: str, mip: int = 0) -> CloudVolume:
    vol = open_volume(path, mip)
    if not np.issubdtype(np.dtype(vol.dtype), np.integer):
        raise InvalidParameterError(f"{path} must hold integer labels; it is {vol.dtype}")
    return vol


def _grid(start, size, grid_size) -> tuple[Bbox, Vec]:
    start = triple(start, "output_block_start", minimum=None)
    size = triple(size, "output_block_size")
    grid = triple(grid_size, "grid_size")
    return Bbox(start, start + size * grid), size


def _check_aligned(vol: CloudVolume, mip: int, box: Bbox, what: str) -> None:
    """Writes must cover whole chunks: a box starts on the chunk grid and ends on it or at the layer's end."""
    bounds = vol.meta.bounds(mip)
    chunk = vol.meta.chunk_size(mip)
    rel_lo = box.minpt - bounds.minpt
    rel_hi = box.maxpt - bounds.minpt
    ends_ok = (rel_hi % chunk == 0) | (box.maxpt == bounds.maxpt)
    if np.any(rel_lo % chunk) or not np.all(ends_ok):
        raise InvalidParameterError(
            f"{what} {plain(box.to_list())} must start and end on the {plain(chunk)} chunk grid of the "
            f"destination (from {plain(bounds.minpt)}) or at its end {plain(bounds.maxpt)}"
        )


def _inside(vol: CloudVolume, mip: int, box: Bbox, what: str) -> None:
    bounds = vol.meta.bounds(mip)
    if np.any(box.minpt < bounds.minpt) or np.any(box.maxpt > bounds.maxpt):
        raise InvalidParameterError(f"{what} {plain(box.to_list())} lies outside the layer bounds {plain(bounds.to_list())}")


def _resolution_factor(fine: CloudVolume, fine_mip: int, coarse: CloudVolume, coarse_mip: int, what: str) -> Vec:
    ratio = np.asarray(coarse.meta.resolution(coarse_mip), float) / np.asarray(fine.meta.resolution(fine_mip), float)
    factor = np.rint(ratio).astype(int)
    if np.any(factor < 1) or not np.allclose(ratio, factor):
        raise InvalidParameterError(
            f"{what} resolution {plain(coarse.meta.resolution(coarse_mip))} must be a whole multiple of "
            f"{plain(fine.meta.resolution(fine_mip))}"
        )
    return Vec(*factor)


def _block_task(task_class, shape_name: str, offset_name: str, shape, offset, **kwargs):
    return task_class(**{shape_name: list(shape), offset_name: list(offset)}, **kwargs)


def _mask_task(shape, offset, **kwargs):
    lo = [int(v) for v in offset]
    return MaskAffinitymapTask(bounds=lo + [a + int(b) for a, b in zip(lo, shape)], **kwargs)


# -- inference ------------------------------------------------------------------------------------


def create_inference_tasks(
    image_layer_path: str,
    convnet_path: str,
    mask_layer_path: str,
    output_layer_path: str,
    output_block_start,
    output_block_size,
    grid_size,
    patch_size,
    patch_overlap,
    cropping_margin_size,
    output_key: str = "output",
    num_output_channels: int = 3,
    image_mip: int = 1,
    output_mip: int = 1,
    mask_mip: int = 3,
):
    """ConvNet inference over a ``grid_size`` grid of output blocks (``InferenceTask``).

    The workers need the optional package chunkflow (not an Igneous dependency); planning
    does not. The output layer must exist (its dtype and channels are the network's output).
    """
    bounds, size = _grid(output_block_start, output_block_size, grid_size)
    for name, value in (("patch_size", patch_size), ("patch_overlap", patch_overlap)):
        triple(value, name, minimum=0 if name == "patch_overlap" else 1)
    triple(cropping_margin_size, "cropping_margin_size", minimum=0)
    whole(num_output_channels, "num_output_channels", 1)
    open_volume(image_layer_path, image_mip)
    out = open_volume(output_layer_path, output_mip)
    if out.num_channels != int(num_output_channels):
        raise InvalidParameterError(
            f"num_output_channels is {num_output_channels} but {output_layer_path} has {out.num_channels} channel(s)"
        )
    _inside(out, output_mip, bounds, "the output blocks")
    if mask_layer_path:
        open_volume(mask_layer_path, mask_mip)
    try:
        import chunkflow  # noqa: F401
    except ImportError:
        log.warning("chunkflow is not installed here; the workers that run InferenceTask need it")
    kwargs = task_kwargs(
        image_layer_path=image_layer_path, convnet_path=convnet_path, mask_layer_path=mask_layer_path,
        output_layer_path=output_layer_path, patch_size=patch_size, patch_overlap=patch_overlap,
        cropping_margin_size=cropping_margin_size, output_key=output_key,
        num_output_channels=int(num_output_channels), image_mip=int(image_mip), output_mip=int(output_mip),
        mask_mip=int(mask_mip),
    )  # fmt: skip
    make = functools.partial(_block_task, InferenceTask, "output_shape", "output_offset", **kwargs)
    finish = functools.partial(
        record_provenance, output_layer_path, "InferenceTask", {**kwargs, "bounds": bounds}, [image_layer_path]
    )
    return GridTasks(bounds, size, make, finish, instantiate=True)


# -- watershed remap ------------------------------------------------------------------------------


def create_watershed_remap_tasks(map_path: str, src_layer_path: str, dest_layer_path: str, shape=Vec(2048, 2048, 64)):
    """Relabel a segmentation through a ``.npy`` remap array (``new = remap[old]``) and downsample.

    ``map_path`` names a 1-D unsigned integer ``.npy`` array (read with ``allow_pickle=False``).
    The destination gets the source's scales with the remap's dtype (created if missing; an
    existing one must have the source's geometry). ``shape`` must tile the mip 0 chunks; each
    task writes as many downsamples as its shape covers in whole chunks.
    """
    shape = triple(shape, "shape")
    src = _integer_segmentation(src_layer_path, 0)
    try:
        remap = load_remap(map_path)
    except (OSError, ValueError) as err:
        raise InvalidParameterError(f"map_path: {err}") from None
    chunk = src.meta.chunk_size(0)
    if np.any((shape % chunk != 0) & (shape < src.meta.bounds(0).size3())):
        raise InvalidParameterError(
            f"shape {plain(shape)} must be a multiple of the chunk size {plain(chunk)} (or span the layer)"
        )
    dest = _remap_destination(src, dest_layer_path, remap.dtype)
    bounds = src.meta.bounds(0)
    dest.commit_info()
    kwargs = task_kwargs(map_path=map_path, src_path=src_layer_path, dest_path=dest_layer_path)
    finish = functools.partial(
        record_provenance, dest_layer_path, "WatershedRemapTask", {**kwargs, "shape": shape}, [src_layer_path]
    )
    return GridTasks(bounds, shape, functools.partial(WatershedRemapTask, **kwargs), finish, instantiate=True)


def _remap_destination(src: CloudVolume, dest_path: str, dtype) -> CloudVolume:
    dtype = np.dtype(dtype)
    existing = _info(dest_path)
    if existing is not None:
        dest = CloudVolume(dest_path, progress=False, cdn_cache=False)
        same = [dest.meta.bounds(0) == src.meta.bounds(0), np.allclose(dest.meta.resolution(0), src.meta.resolution(0))]
        if not all(same):
            raise InvalidParameterError(f"{dest_path} exists with another geometry than the source")
        if not np.issubdtype(np.dtype(dest.dtype), np.integer) or np.dtype(dest.dtype).itemsize < dtype.itemsize:
            raise InvalidParameterError(f"{dest_path} is {dest.dtype}, which cannot hold the remap's {dtype.name} ids")
        return dest
    info = clean_xfer_info(copy.deepcopy(src.info))
    info.update(data_type=dtype.name, type="segmentation", num_channels=1)
    for scale in info["scales"]:
        encoding = scale.get("encoding", "raw")
        try:
            check_encoding(encoding, dtype, 1, "segmentation")
        except InvalidParameterError:
            log.warning("encoding %s cannot store %s: %s is written raw", encoding, dtype.name, scale["key"])
            scale["encoding"] = "raw"
    return CloudVolume(dest_path, info=info, progress=False, cdn_cache=False)


# -- affinity masking -----------------------------------------------------------------------------


def create_mask_affinity_map_tasks(
    aff_input_layer_path: str,
    aff_output_layer_path: str,
    aff_mip: int,
    mask_layer_path: str,
    mask_mip: int,
    output_block_start,
    output_block_size,
    grid_size,
):
    """Zero affinities where a mask is 0, over a ``grid_size`` grid of output blocks.

    The mask's resolution at ``mask_mip`` must be a whole multiple of the affinities' at
    ``aff_mip``; each mask voxel covers that many affinity voxels. The output layer is created
    as a copy of the input's info if missing. Blocks must lie on the output's chunk grid.
    """
    bounds, size = _grid(output_block_start, output_block_size, grid_size)
    src = open_volume(aff_input_layer_path, aff_mip)
    mask = open_volume(mask_layer_path, mask_mip)
    _resolution_factor(src, aff_mip, mask, mask_mip, "the mask")
    _inside(src, aff_mip, bounds, "the output blocks")
    if _info(aff_output_layer_path) is None:
        out = CloudVolume(aff_output_layer_path, info=copy.deepcopy(src.info), progress=False, cdn_cache=False)
        new = True
    else:
        out = open_volume(aff_output_layer_path, aff_mip)
        new = False
        if out.num_channels != src.num_channels or out.dtype != src.dtype:
            raise InvalidParameterError(
                f"{aff_output_layer_path} must match the input affinities ({src.dtype}, {src.num_channels} channels)"
            )
    for cell in _cells(bounds, size):
        _check_aligned(out, aff_mip, Bbox.clamp(cell, out.meta.bounds(aff_mip)), "output block")
    if new:
        out.commit_info()
    kwargs = task_kwargs(
        aff_input_layer_path=aff_input_layer_path, aff_output_layer_path=aff_output_layer_path,
        aff_mip=int(aff_mip), mask_layer_path=mask_layer_path, mask_mip=int(mask_mip),
    )  # fmt: skip
    finish = functools.partial(
        record_provenance, aff_output_layer_path, "MaskAffinitymapTask", {**kwargs, "bounds": bounds},
        [aff_input_layer_path, mask_layer_path],
    )  # fmt: skip
    return GridTasks(bounds, size, functools.partial(_mask_task, **kwargs), finish, instantiate=True)


def _cells(bounds: Bbox, size: Vec):
    """The grid's blocks (only their corners matter for alignment: the first and the last per axis)."""
    grid = bounds.size3() // size
    for corner in ((0, 0, 0), tuple(int(g) - 1 for g in grid)):
        lo = bounds.minpt + Vec(*corner) * size
        yield Bbox(lo, lo + size)


# -- EyeWire hypersquares -------------------------------------------------------------------------


def create_hypersquare_ingest_tasks(
    hypersquare_bucket_name, dataset_name, hypersquare_chunk_size, resolution, voxel_offset, volume_size, overlap
):
    """Obsolete: the EyeWire hypersquare ingest has not worked for years (its task no longer exists)."""
    raise InvalidParameterError(
        "create_hypersquare_ingest_tasks is obsolete: the EyeWire hypersquare ingest no longer exists; "
        "convert the data to Precomputed and use create_transfer_tasks"
    )


def create_hypersquare_consensus_tasks(src_path: str, dest_path: str, volume_map_file: str, consensus_map_path: str):
    """Write EyeWire consensus cells as 32-bit labels, one ``HyperSquareConsensusTask`` per volume.

    Args:
        src_path: the watershed segmentation the EyeWire volumes were traced on.
        dest_path: where the consensus goes (mip 0). Created if missing as a uint32
            segmentation with the source's mip 0 geometry; an existing one must be uint32/uint64.
        volume_map_file: JSON (local file or cloud path) ``{"x0-x1_y0-y1_z0-z1": ew_volume_id}``:
            each EyeWire volume's box in mip 0 voxels (``Bbox.to_filename`` form). Boxes are
            clipped to the layer, must not overlap, and must lie on the chunk grid (two tasks
            never write one chunk).
        consensus_map_path: JSON ``{"<ew_volume_id>": {"<cell_id>": [segid, ...]}}``; see
            ``igneous.tasks.image.obsolete.parse_consensus_map``.

    Returns:
        A list of tasks (provenance is recorded now).
    """
    src = _integer_segmentation(src_path, 0)
    try:
        consensus = load_consensus_map(consensus_map_path)
    except (OSError, ValueError) as err:
        raise InvalidParameterError(f"consensus_map_path: {err}") from None
    volumes = _read_volume_map(volume_map_file)
    dest, new = _consensus_destination(src, dest_path)
    layer = dest.meta.bounds(0)
    boxes: List[tuple[int, Bbox]] = []
    for box, volume_id in volumes:
        clipped = Bbox.clamp(box, layer)
        if clipped.subvoxel():
            raise InvalidParameterError(f"volume {volume_id}: box {plain(box.to_list())} lies outside the layer")
        _check_aligned(dest, 0, clipped, f"volume {volume_id}'s box")
        for other_id, other in boxes:
            if not Bbox.intersection(clipped, other).subvoxel():
                raise InvalidParameterError(f"volumes {other_id} and {volume_id} overlap; each voxel needs one owner")
        boxes.append((volume_id, clipped))
    missing = sorted(v for v, _ in boxes if v not in consensus)
    if missing:
        log.warning("%d volume(s) have no consensus and will be written as zeros (e.g. %s)", len(missing), missing[0])
    if new:
        dest.commit_info()
    tasks = [
        HyperSquareConsensusTask(
            src_path=src_path, dest_path=dest_path, ew_volume_id=volume_id, consensus_map_path=consensus_map_path,
            shape=[int(v) for v in box.size3()], offset=[int(v) for v in box.minpt],
        )  # fmt: skip
        for volume_id, box in boxes
    ]
    record_provenance(
        dest_path, "HyperSquareConsensusTask",
        {"src_path": src_path, "volume_map_file": volume_map_file, "consensus_map_path": consensus_map_path},
        [src_path],
    )  # fmt: skip
    return tasks


def _read_volume_map(volume_map_file: str) -> List[tuple[Bbox, int]]:
    try:
        raw = CloudFile(volume_map_file).get()
    except Exception as err:
        raise InvalidParameterError(f"volume_map_file: cannot read {volume_map_file} ({err})") from None
    if raw is None:
        raise InvalidParameterError(f"volume_map_file: {volume_map_file} does not exist")
    try:
        mapping: Dict = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidParameterError(f"volume_map_file: {volume_map_file} is not JSON ({err})") from None
    if not isinstance(mapping, dict) or not mapping:
        raise InvalidParameterError('volume_map_file must be a non-empty JSON object {"x0-x1_y0-y1_z0-z1": volume_id}')
    out = []
    for name, volume_id in mapping.items():
        try:
            box = Bbox.from_filename(name)
        except Exception:
            raise InvalidParameterError(f"volume_map_file: {name!r} is not a box name like 0-64_0-64_0-16") from None
        if isinstance(volume_id, bool) or not isinstance(volume_id, (int, str)) or not str(volume_id).isdigit():
            raise InvalidParameterError(f"volume_map_file: volume id of {name} must be an integer; got {volume_id!r}")
        out.append((box, int(volume_id)))
    return out


def _consensus_destination(src: CloudVolume, dest_path: str) -> tuple[CloudVolume, bool]:
    if _info(dest_path) is not None:
        dest = open_volume(dest_path, 0)
        if np.dtype(dest.dtype) not in (np.dtype(np.uint32), np.dtype(np.uint64)):
            raise InvalidParameterError(f"{dest_path} is {dest.dtype}; consensus cell ids need uint32 or uint64")
        return dest, False
    info = clean_xfer_info(copy.deepcopy(src.info))
    info.update(data_type="uint32", type="segmentation", num_channels=1)
    info["scales"] = info["scales"][:1]
    if info["scales"][0].get("encoding") not in ("raw", "compressed_segmentation", "compresso", "crackle"):
        info["scales"][0]["encoding"] = "raw"
    return CloudVolume(dest_path, info=info, progress=False, cdn_cache=False), True

