"""Image tasks (wire module ``igneous.tasks.image.image``, SPEC §3.1, §3.7).

Each task is thin: normalise arguments, read a box, call pure compute in
``igneous.ops``, write. Every task writes only chunks inside its own box, so running it
twice writes the same files (tasks are idempotent).
"""

from __future__ import annotations

import functools
import logging
from typing import Dict

import numpy as np
from cloudvolume.lib import Bbox, Vec

from igneous.ops.downsample import pyramid, resolve_method
from igneous.ops.quantize import quantize_affinities
from igneous.tasks.image.common import (
    chunks_inside,
    dest_volume,
    source_volume,
    task_box,
)

# Tasks defined in their own modules but registered under this wire module (SPEC §3.7): they are
# re-exported here so a message naming igneous.tasks.image.image finds them.
from igneous.tasks.image.contrast import CLAHETask  # noqa: F401
from igneous.tasks.image.io import UPLOAD_THREADS, downsample_and_upload, read_box, upload_all  # noqa: F401
from igneous.tasks.image.shards import ImageShardDownsampleTask, ImageShardTransferTask  # noqa: F401
from igneous.tasks.image.transcode import lossless_transcode, transcode_box
from igneous.tasks.image.voxels import CountVoxelsTask  # noqa: F401
from igneous.tasks.registry import queueable
from igneous.types import DownsampleMethods

__all__ = [
    "TransferTask",
    "DownsampleTask",
    "DeleteTask",
    "BlackoutTask",
    "TouchTask",
    "QuantizeTask",
    "ReorderTask",
    "downsample_and_upload",
    "downsample_method_to_fn",
    "ImageShardTransferTask",
    "ImageShardDownsampleTask",
]

log = logging.getLogger(__name__)
WIRE = "igneous.tasks.image.image"


def downsample_method_to_fn(method, sparse: bool, vol):
    """The pooling function for ``method`` on ``vol``'s data: ``fn(image, factor, num_mips)``
    returns ``num_mips`` levels (level 1 first).

    AUTO becomes average pooling for images, mode pooling for segmentations and striding
    otherwise; a method the layer's dtype cannot use (mode pooling of floats) is refused.
    Odd extents are handled as the pyramid tasks handle them (``igneous.ops.downsample``).
    """
    resolved = resolve_method(method, vol.layer_type, vol.dtype)
    return functools.partial(pyramid, method=resolved, sparse=bool(sparse))


@queueable(WIRE)
def TransferTask(
    src_path,
    dest_path,
    mip,
    shape,
    offset,
    translate=(0, 0, 0),
    fill_missing=False,
    skip_first=False,
    skip_downsamples=False,
    delete_black_uploads=False,
    background_color=0,
    sparse=False,
    axis="z",
    agglomerate=False,
    timestamp=None,
    compress="gzip",
    factor=None,
    max_mips=None,
    stop_layer=None,
    downsample_method=DownsampleMethods.AUTO,
    use_https_for_source=False,
    codec_threads=1,
):
    """Copy the dest box ``offset + shape`` (minus ``translate`` in the source) and build
    its downsamples. ``shape``/``offset`` are in dest voxels at ``mip``."""
    translate = Vec(*translate)
    src = source_volume(
        src_path, mip, fill_missing, agglomerate, timestamp, stop_layer, use_https_for_source, codec_threads
    )
    dest = dest_volume(dest_path, mip, compress, delete_black_uploads, background_color, codec_threads)
    dst_box = task_box(dest, mip, shape, offset)
    if dst_box.subvoxel():
        return
    src_box = dst_box - translate
    levels_wanted = 0 if skip_downsamples else max_mips

    copy_files = not skip_first and not translate.any() and not delete_black_uploads
    if copy_files and lossless_transcode(src, dest, mip):
        # JPEG ⇄ JPEG XL at quality 100 keeps the JPEG bitstream; the pyramid, if any, is
        # built from the decoded pixels as usual.
        transcode_box(src, dest, mip, src_box, fill_missing)
        if skip_downsamples or _top_mip(dest, mip):
            return
        skip_first = True
    elif copy_files and (skip_downsamples or _top_mip(dest, mip)) and _same_layout(src, dest, mip):
        copy_chunk_files(src, dest, src_box, mip, compress, fill_missing)
        return

    image = read_box(src, src_box, mip)
    downsample_and_upload(
        image,
        dst_box,
        dest,
        shape,
        mip=mip,
        axis=axis,
        skip_first=skip_first,
        sparse=sparse,
        factor=factor,
        max_mips=levels_wanted,
        method=downsample_method,
    )


def _top_mip(vol, mip: int) -> bool:
    return mip + 1 >= len(vol.info["scales"])


def _same_layout(src, dest, mip: int) -> bool:
    """True when chunk files can be copied byte for byte (fast path)."""
    keys = ("chunk_sizes", "voxel_offset", "size", "encoding", "compressed_segmentation_block_size", "resolution")
    a, b = src.info["scales"][mip], dest.info["scales"][mip]
    return (
        all(a.get(k) == b.get(k) for k in keys)
        and src.dtype == dest.dtype
        and src.num_channels == dest.num_channels
        and not src.image.is_sharded(mip)
        and not dest.image.is_sharded(mip)
        and src.meta.path.format == dest.meta.path.format == "precomputed"
    )


# chunk files per request batch of the fast copy: bounded memory, few round trips
COPY_BATCH = 64


def copy_chunk_files(src, dest, box: Bbox, mip: int, compress, fill_missing: bool) -> None:
    """Fast path of a same-layout transfer: copy the chunk files of ``box`` without decoding.

    Replaces CloudVolume's ``transfer_to``, which copies bytes blindly (a damaged source chunk
    became a damaged destination chunk, and a missing one a 0-byte placeholder). Each file is
    proven whole first (``shards.payload_checker``) and a damaged one fails the task, named.
    ``compress``: None keeps each file's compression, otherwise the files are re-compressed
    (True = gzip, False = none). A missing chunk is an error without ``fill_missing`` and is
    written as background with it, as the decoding path would.
    """
    from cloudfiles import CloudFiles
    from cloudfiles.compression import decompress
    from cloudvolume.datasource.precomputed.common import content_type
    from cloudvolume.datasource.precomputed.image.common import chunknames
    from cloudvolume.lib import sip

    from igneous.integrity import CorruptChunkError, MissingChunkError, describe
    from igneous.tasks.image.shards import payload_checker

    target = "gzip" if compress is True else (compress or None) if compress is not None else "keep"
    check = payload_checker(src, mip)
    cf_src = CloudFiles(src.meta.cloudpath, progress=False)
    cf_dest = CloudFiles(dest.meta.cloudpath, progress=False)
    ctype = content_type(dest.meta.encoding(mip))
    names = chunknames(box, src.meta.bounds(mip), src.meta.key(mip), src.meta.chunk_size(mip))
    where = describe(src.meta.cloudpath, mip, "")
    for batch in sip(names, COPY_BATCH):
        as_is, recompress, missing = [], [], []
        for found in cf_src.get(batch, raw=True):
            name = where + found["path"]
            if found.get("error"):
                err = found["error"]
                raise CorruptChunkError(f"{name} cannot be read: {type(err).__name__}: {err}") from err
            content, compressed = found["content"], found.get("compress")
            if content is None or (len(content) == 0 and not compressed):
                if not fill_missing:
                    raise MissingChunkError(f"{name} is missing")
                missing.append(Bbox.from_filename(found["path"]))
                continue
            check(content, compressed, Bbox.from_filename(found["path"]), name)
            if target == "keep" or (compressed or None) == target:
                as_is.append({"path": found["path"], "content": content, "compress": compressed})
            else:
                plain = decompress(content, compressed, filename=name)
                recompress.append({"path": found["path"], "content": plain, "compress": target})
        if as_is:
            cf_dest.puts(as_is, raw=True, content_type=ctype, progress=False)
        if recompress:
            cf_dest.puts(recompress, content_type=ctype, progress=False)
        for chunk in missing:
            blank = np.full(
                tuple(chunk.size3()) + (dest.num_channels,), dest.background_color, dtype=dest.dtype, order="F"
            )
            dest.image.upload(blank, chunk.minpt, mip)


@queueable(WIRE)
def DownsampleTask(
    layer_path,
    mip,
    shape,
    offset,
    fill_missing=False,
    axis="z",
    sparse=False,
    delete_black_uploads=False,
    background_color=0,
    dest_path=None,
    compress="gzip",
    factor=None,
    max_mips=None,
    method=DownsampleMethods.AUTO,
    codec_threads=1,
):
    """Read the box at ``mip`` and write levels ``mip+1 …`` (to ``dest_path`` if given)."""
    TransferTask(
        src_path=layer_path,
        dest_path=dest_path or layer_path,
        mip=mip,
        shape=shape,
        offset=offset,
        fill_missing=fill_missing,
        skip_first=True,
        delete_black_uploads=delete_black_uploads,
        background_color=background_color,
        sparse=sparse,
        axis=axis,
        compress=compress,
        factor=factor,
        max_mips=max_mips,
        downsample_method=method,
        codec_threads=codec_threads,
    )


@queueable(WIRE)
def DeleteTask(layer_path, shape, offset, mip=0, num_mips=5):
    """Delete, at ``mip`` and up to ``num_mips`` levels above, the chunks wholly inside the box
    ``offset + shape`` (at ``mip``): never a chunk that also holds voxels outside it."""
    vol = dest_volume(layer_path, mip)
    box = task_box(vol, mip, shape, offset)
    top = min(len(vol.info["scales"]) - 1, mip + num_mips)
    for m in range(mip, top + 1):
        inside = chunks_inside(vol, mip, box, m)
        if inside is not None:
            vol.image.delete(inside, m)


@queueable(WIRE)
def BlackoutTask(cloudpath, mip, shape, offset, value=0, non_aligned_writes=False):
    """Fill the box with a constant ``value``."""
    vol = dest_volume(cloudpath, mip)
    vol.non_aligned_writes = non_aligned_writes
    box = task_box(vol, mip, shape, offset)
    if box.subvoxel():
        return
    img = np.full(tuple(box.size3()) + (vol.num_channels,), value, dtype=vol.dtype, order="F")
    vol.image.upload(img, box.minpt, mip)


@queueable(WIRE)
def TouchTask(cloudpath, mip, shape, offset):
    """Read the box; fails, naming the chunk, if any chunk is missing."""
    vol = source_volume(cloudpath, mip)
    box = task_box(vol, mip, shape, offset)
    if not box.subvoxel():
        vol.download(box, mip)


@queueable(WIRE)
def QuantizeTask(source_layer_path, dest_layer_path, shape, offset, mip, fill_missing=False):
    """Float affinities (channel 0) → uint8 ×255, with the dest's downsamples."""
    src = source_volume(source_layer_path, mip, fill_missing)
    dest = dest_volume(dest_layer_path, mip)
    box = task_box(dest, mip, shape, offset)
    if box.subvoxel():
        return
    image = quantize_affinities(src.download(box, mip))
    downsample_and_upload(image, box, dest, shape, mip=mip)


@queueable(WIRE)
def ReorderTask(
    src,
    dest,
    mip,
    mapping,
    shape,
    offset,
    fill_missing=False,
    delete_black_uploads=False,
    background_color=0,
    compress="br",
):
    """Write dest box ``offset + shape``: dest slice z comes from source slice ``old`` where
    ``mapping[old] == z`` (slices not in ``mapping`` keep their z)."""
    srcvol = source_volume(src, mip, fill_missing)
    destvol = dest_volume(dest, mip, compress, delete_black_uploads, background_color)
    box = task_box(destvol, mip, shape, offset)
    if box.subvoxel():
        return
    inverse: Dict[int, int] = {int(new): int(old) for old, new in mapping.items()}
    image = np.zeros(tuple(box.size3()) + (destvol.num_channels,), dtype=destvol.dtype, order="F")
    for i, z in enumerate(range(box.minpt.z, box.maxpt.z)):
        old = inverse.get(z, z)
        slab = Bbox((box.minpt.x, box.minpt.y, old), (box.maxpt.x, box.maxpt.y, old + 1))
        image[:, :, i : i + 1, :] = srcvol.download(slab, mip)
    destvol.image.upload(image, box.minpt, mip)

