"""Obsolete image tasks (SPEC §3.3), kept so old scripts and queued messages still run.

All four are ``RegisteredTask`` classes: a queue message names them by class name.

* ``WatershedRemapTask``: relabel a box through a ``.npy`` remap array, then downsample.
* ``MaskAffinitymapTask``: zero the affinities outside a (coarser) mask.
* ``HyperSquareConsensusTask``: EyeWire consensus → 32-bit cell ids for one EyeWire volume.
* ``InferenceTask``: ConvNet inference through the optional package chunkflow.

Files read from storage are parsed as data only: ``.npy`` with ``allow_pickle=False`` and
JSON; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import io
import logging
from typing import Dict, List

import numpy as np
from cloudfiles import CloudFile
from cloudvolume.lib import Bbox, Vec
from taskqueue import RegisteredTask

from igneous.ops import obsolete as ops
from igneous.tasks.image.common import dest_volume, source_volume, task_box
from igneous.tasks.image.io import downsample_and_upload, read_box

__all__ = [
    "WatershedRemapTask",
    "MaskAffinitymapTask",
    "HyperSquareConsensusTask",
    "InferenceTask",
    "load_remap",
    "load_consensus_map",
    "parse_consensus_map",
    "mask_box",
]

log = logging.getLogger(__name__)

MAX_CELL_ID = 2**32 - 1


def _read(path: str) -> bytes:
    data = CloudFile(path).get()
    if data is None:
        raise FileNotFoundError(f"{path} does not exist")
    return data


# A worker runs many remap tasks with the same (often large) array: keep the last one.
_REMAP_CACHE: Dict[str, np.ndarray] = {}


def load_remap(map_path: str, cache: bool = False) -> np.ndarray:
    """The remap array stored as ``.npy`` at ``map_path`` (any cloud path or local file).

    Loaded with ``allow_pickle=False``: an object array (which would need unpickling) is
    refused, as is anything but a 1-D array of unsigned integers. With ``cache`` the last
    array loaded is kept for the next call with the same path.
    """
    if cache and map_path in _REMAP_CACHE:
        return _REMAP_CACHE[map_path]
    remap = _load_remap(map_path)
    if cache:
        _REMAP_CACHE.clear()
        _REMAP_CACHE[map_path] = remap
    return remap


def _load_remap(map_path: str) -> np.ndarray:
    try:
        remap = np.load(io.BytesIO(_read(map_path)), allow_pickle=False)
    except ValueError as err:  # pickled object arrays, or not an .npy file at all
        raise ValueError(f"{map_path} is not a plain .npy array ({err})") from None
    if not isinstance(remap, np.ndarray):
        raise ValueError(f"{map_path} holds an .npz archive; a watershed remap is one .npy array")
    ops.check_remap_array(remap)
    return remap


def parse_consensus_map(consensus) -> Dict[int, Dict[int, List[int]]]:
    """Check and normalise a consensus map: ``{volume_id: {cell_id: [segid, …]}}``.

    The JSON form is ``{"<ew_volume_id>": {"<cell_id>": [segid, …], …}, …}``: for each
    EyeWire volume, the watershed segments that the consensus assigned to each cell. Cell ids
    are written as 32-bit labels, so they must lie in [1, 2^32 - 1]; segment ids are
    positive integers and a segment belongs to at most one cell of a volume.
    """
    if not isinstance(consensus, dict):
        raise ValueError("a consensus map must be a JSON object {volume_id: {cell_id: [segid, ...]}}")
    out: Dict[int, Dict[int, List[int]]] = {}
    for volume_id, cells in consensus.items():
        vid = _integer(volume_id, "volume id", 0)
        if not isinstance(cells, dict):
            raise ValueError(f"volume {volume_id}: expected {{cell_id: [segid, ...]}}; got {type(cells).__name__}")
        seen: Dict[int, int] = {}
        out[vid] = {}
        for cell_id, segids in cells.items():
            cid = _integer(cell_id, f"volume {volume_id}: cell id", 1, MAX_CELL_ID)
            if not isinstance(segids, list):
                raise ValueError(f"volume {volume_id}, cell {cell_id}: expected a list of segment ids")
            ids = [_integer(s, f"volume {volume_id}, cell {cell_id}: segment id", 1, 2**64 - 1) for s in segids]
            for s in ids:
                if seen.setdefault(s, cid) != cid:
                    raise ValueError(f"volume {volume_id}: segment {s} is assigned to cells {seen[s]} and {cid}")
            out[vid][cid] = ids
    return out


def _integer(value, what: str, lo: int, hi: int = 2**64 - 1) -> int:
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not lo <= number <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}]; got {value!r}")
    return number


def load_consensus_map(consensus_map_path: str) -> Dict[int, Dict[int, List[int]]]:
    """Read and check the consensus map JSON at ``consensus_map_path`` (see ``parse_consensus_map``)."""
    import json

    try:
        consensus = json.loads(_read(consensus_map_path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{consensus_map_path} is not JSON ({err})") from None
    return parse_consensus_map(consensus)


def mask_box(aff_box: Bbox, factor) -> tuple[Bbox, Vec]:
    """The mask voxels covering ``aff_box`` when a mask voxel spans ``factor`` affinity voxels,
    and where ``aff_box`` starts inside that (upsampled) mask box."""
    factor = Vec(*factor)
    lo = aff_box.minpt // factor
    hi = -(-aff_box.maxpt // factor)
    return Bbox(lo, hi), aff_box.minpt - lo * factor


class WatershedRemapTask(RegisteredTask):
    """Relabel the box ``offset + shape`` (mip 0) of ``src_path`` through the remap array at
    ``map_path`` (``new = remap[old]``) and write it, with as many downsamples as the box
    tiles, to ``dest_path``."""

    def __init__(self, map_path, src_path, dest_path, shape, offset):
        super().__init__(map_path, src_path, dest_path, shape, offset)
        self.shape = [int(v) for v in shape]
        self.offset = [int(v) for v in offset]

    def execute(self) -> None:
        remap = load_remap(self.map_path, cache=True)
        src = source_volume(self.src_path, 0)
        dest = dest_volume(self.dest_path, 0)
        box = task_box(dest, 0, self.shape, self.offset)
        if box.subvoxel():
            return
        image = ops.apply_remap(read_box(src, box, 0), remap).astype(dest.dtype, copy=False)
        downsample_and_upload(image, box, dest, self.shape, mip=0)


class MaskAffinitymapTask(RegisteredTask):
    """Copy the affinities of ``bounds`` (voxels at ``aff_mip``) to the output layer with every
    channel set to 0 where the mask (``mask_layer_path`` at ``mask_mip``, a whole multiple of
    the affinity resolution) is 0. Mask voxels outside the mask layer count as 0."""

    def __init__(self, aff_input_layer_path, aff_output_layer_path, aff_mip, mask_layer_path, mask_mip, bounds):
        super().__init__(aff_input_layer_path, aff_output_layer_path, aff_mip, mask_layer_path, mask_mip, bounds)
        self.bounds = [int(v) for v in Bbox.create(_as_bbox(bounds)).to_list()]

    def execute(self) -> None:
        src = source_volume(self.aff_input_layer_path, self.aff_mip)
        dest = dest_volume(self.aff_output_layer_path, self.aff_mip)
        mask_vol = source_volume(self.mask_layer_path, self.mask_mip)
        box = Bbox.clamp(Bbox(self.bounds[:3], self.bounds[3:]), dest.meta.bounds(self.aff_mip))
        if box.subvoxel():
            return
        ratio = np.asarray(mask_vol.meta.resolution(self.mask_mip)) / np.asarray(src.meta.resolution(self.aff_mip))
        factor = Vec(*np.rint(ratio).astype(int))
        if np.any(factor < 1) or not np.allclose(ratio, factor):
            raise ValueError(f"the mask resolution must be a whole multiple of the affinity resolution; ratio {ratio}")
        mbox, start = mask_box(box, factor)
        mask = read_box(mask_vol, mbox, self.mask_mip)[..., 0]
        mask = ops.upsample_mask(mask, factor, box.size3(), start)
        affinities = read_box(src, box, self.aff_mip)
        dest.image.upload(ops.mask_affinities(affinities, mask), box.minpt, self.aff_mip)


def _as_bbox(bounds):
    if isinstance(bounds, dict):  # Bbox.serialize() form
        return Bbox(bounds["minpt"], bounds["maxpt"])
    if isinstance(bounds, (list, tuple)) and len(bounds) == 6:
        return Bbox(bounds[:3], bounds[3:])
    return bounds


class HyperSquareConsensusTask(RegisteredTask):
    """Write the EyeWire consensus of volume ``ew_volume_id`` into the box ``offset + shape``
    (mip 0): each segment of ``src_path`` that the consensus map assigns to a cell becomes that
    cell's id, every other voxel 0. A volume absent from the map is written as zeros.

    The map format is described in ``parse_consensus_map``.
    """

    def __init__(self, src_path, dest_path, ew_volume_id, consensus_map_path, shape, offset):
        super().__init__(src_path, dest_path, ew_volume_id, consensus_map_path, shape, offset)
        self.ew_volume_id = int(ew_volume_id)
        self.shape = [int(v) for v in shape]
        self.offset = [int(v) for v in offset]

    def execute(self) -> None:
        consensus = load_consensus_map(self.consensus_map_path)
        cells = consensus.get(self.ew_volume_id, {})
        if not cells:
            log.warning("EyeWire volume %s has no consensus: its box is written as zeros", self.ew_volume_id)
        src = source_volume(self.src_path, 0)
        dest = dest_volume(self.dest_path, 0)
        box = task_box(dest, 0, self.shape, self.offset)
        if box.subvoxel():
            return
        image = ops.consensus_relabel(read_box(src, box, 0)[..., 0], cells, dest.dtype)
        dest.image.upload(image[..., np.newaxis], box.minpt, 0)


class InferenceTask(RegisteredTask):
    """ConvNet inference of one output block with chunkflow (an optional dependency).

    Reads the image at ``image_mip`` around the output block (plus ``cropping_margin_size``),
    skips the block when the mask at ``mask_mip`` is empty there, runs chunkflow's patch-wise
    ``Inferencer`` and writes the cropped ``num_output_channels`` result at ``output_mip``.
    """

    def __init__(
        self,
        image_layer_path,
        convnet_path,
        mask_layer_path,
        output_layer_path,
        output_offset,
        output_shape,
        patch_size,
        patch_overlap,
        cropping_margin_size,
        output_key="output",
        num_output_channels=3,
        image_mip=1,
        output_mip=1,
        mask_mip=3,
    ):
        super().__init__(
            image_layer_path, convnet_path, mask_layer_path, output_layer_path, output_offset, output_shape,
            patch_size, patch_overlap, cropping_margin_size, output_key, num_output_channels, image_mip,
            output_mip, mask_mip,
        )  # fmt: skip
        for name in ("output_offset", "output_shape", "patch_size", "patch_overlap", "cropping_margin_size"):
            setattr(self, name, [int(v) for v in getattr(self, name)])

    def execute(self) -> None:
        chunkflow = require_chunkflow()
        box = Bbox(self.output_offset, Vec(*self.output_offset) + Vec(*self.output_shape))
        if self.mask_layer_path and self._masked_out(box):
            log.info("InferenceTask %s: the mask is empty here; nothing to infer", box)
            return
        margin = Vec(*self.cropping_margin_size)
        image_vol = source_volume(self.image_layer_path, self.image_mip, fill_missing=True)
        read = Bbox(box.minpt - margin, box.maxpt + margin)
        image = read_box(image_vol, read, self.image_mip)[..., 0]
        output = _chunkflow_inference(chunkflow, image, self)
        out = np.transpose(output, (3, 2, 1, 0))  # chunkflow is c,z,y,x
        if tuple(out.shape[:3]) != tuple(box.size3()):  # the margin was not cropped by chunkflow
            m = margin
            out = out[m.x : out.shape[0] - m.x, m.y : out.shape[1] - m.y, m.z : out.shape[2] - m.z]
        dest = dest_volume(self.output_layer_path, self.output_mip)
        dest.image.upload(np.asfortranarray(out.astype(dest.dtype, copy=False)), box.minpt, self.output_mip)

    def _masked_out(self, box: Bbox) -> bool:
        mask_vol = source_volume(self.mask_layer_path, self.mask_mip, fill_missing=True)
        output_vol = source_volume(self.output_layer_path, self.output_mip)
        ratio = np.asarray(mask_vol.meta.resolution(self.mask_mip)) / np.asarray(
            output_vol.meta.resolution(self.output_mip)
        )
        mbox, _ = mask_box(box, np.maximum(1, np.rint(ratio).astype(int)))
        return not np.any(read_box(mask_vol, mbox, self.mask_mip))


def require_chunkflow():
    """The chunkflow module, or one clear error line if it is not installed."""
    try:
        import chunkflow  # noqa: F401
        from chunkflow.flow.divid_conquer import inferencer
    except ImportError:
        raise RuntimeError(
            "InferenceTask needs the optional package chunkflow, which is not installed (pip install chunkflow)"
        ) from None
    return inferencer


def _chunkflow_inference(inferencer_module, image: np.ndarray, task: InferenceTask) -> np.ndarray:
    from chunkflow.chunk import Chunk

    zyx = lambda v: tuple(int(x) for x in reversed(list(v)))  # noqa: E731
    engine = inferencer_module.Inferencer(
        convnet_model=task.convnet_path,
        convnet_weight_path=None,
        input_patch_size=zyx(task.patch_size),
        num_output_channels=int(task.num_output_channels),
        output_patch_overlap=zyx(task.patch_overlap),
        output_crop_margin=zyx(task.cropping_margin_size),
        framework="universal",
    )
    chunk = Chunk(np.ascontiguousarray(np.transpose(image, (2, 1, 0))))
    result = engine(chunk)
    return np.asarray(getattr(result, "array", result))
