"""``igneous image``: pyramids, transfers, deletion and reordering of image/segmentation layers.

Each command parses its options, calls one ``igneous.task_creation`` planner and hands
the tasks to ``enqueue_tasks`` (run here, or insert into --queue).
"""

from __future__ import annotations

import json

import click

import igneous.task_creation as tc
from igneous.task_creation import plans
from igneous_cli.common import compute_bounds, enqueue_tasks, numberify
from igneous_cli.params import (
    CloudPath,
    DownsampleMethodType,
    Tuple3,
    background_options,
    encoding_options,
    fill_missing_option,
    memory_option,
    mip_option,
    queue_option,
    range_options,
)
from igneous_cli.plan import dry_run_options

__all__ = ["image"]

METHOD_HELP = "Downsample pooling: auto|avg|mode|min|max|striding (auto: avg for images, mode for segmentation)."


def pyramid_factor(volumetric: bool) -> tuple:
    return (2, 2, 2) if volumetric else (2, 2, 1)


def refuse_with_sharded(**given) -> None:
    """Options that mean nothing for sharded output are refused rather than ignored."""
    for name, value in given.items():
        if value:
            raise click.UsageError(f"--{name.replace('_', '-')} does not apply with --sharded; drop it")


@click.group()
def image() -> None:
    """Pyramids, transfers, deletion and reordering of image and segmentation layers."""


@image.command()
@click.argument("path", type=CloudPath())
@queue_option
@mip_option(help="Build the pyramid above this level.")
@fill_missing_option
@click.option(
    "--num-mips", default=None, type=int, help="Levels to add (default: as many as --memory allows; sharded: 3)."
)
@encoding_options
@click.option("--sparse", is_flag=True, default=False, help="Ignore background voxels in avg/mode pooling.")
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of the new scales (default: --mip's).")
@click.option(
    "--compress",
    default=None,
    type=str,
    help="none, gzip, br or zstd (default by encoding; always off for jpeg/jxl/png/fpzip/zfpc).",
)
@click.option("--volumetric", is_flag=True, default=False, help="Downsample by 2,2,2 instead of 2,2,1.")
@background_options
@click.option("--sharded", is_flag=True, default=False, help="Write sharded scales.")
@memory_option(help="Bytes of memory per task (e.g. 3.5e9, 2GB): sets the task size.")
@click.option("--method", type=DownsampleMethodType(), default="auto", show_default=True, help=METHOD_HELP)
@range_options()
@click.option(
    "--codec-threads",
    default=1,
    type=int,
    show_default=True,
    help="Threads for the crackle/jxl codecs (0 = all cores).",
)
@click.pass_context
@dry_run_options
def downsample(
    ctx,
    path,
    queue,
    mip,
    fill_missing,
    num_mips,
    encoding,
    encoding_level,
    encoding_effort,
    sparse,
    chunk_size,
    compress,
    volumetric,
    delete_bg,
    bg_color,
    sharded,
    memory,
    method,
    xrange,
    yrange,
    zrange,
    codec_threads,
    dry_run,
):
    """Add pyramid levels above --mip to the layer at PATH."""
    bounds = compute_bounds(path, mip, xrange, yrange, zrange)
    if sharded:
        refuse_with_sharded(compress=compress, delete_bg=delete_bg, bg_color=bg_color)
        planner = plans.plan_image_shard_downsample if dry_run else tc.create_image_shard_downsample_tasks
        tasks = planner(
            path,
            mip=mip,
            fill_missing=fill_missing,
            sparse=sparse,
            chunk_size=chunk_size,
            encoding=encoding,
            memory_target=memory,
            factor=pyramid_factor(volumetric),
            bounds=bounds,
            bounds_mip=mip,
            encoding_level=numberify(encoding_level),
            encoding_effort=encoding_effort,
            method=method,
            num_mips=num_mips,
            codec_threads=codec_threads,
        )
        return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)
    planner = plans.plan_downsampling if dry_run else tc.create_downsampling_tasks
    tasks = planner(
        path,
        mip=mip,
        fill_missing=fill_missing,
        num_mips=num_mips,
        sparse=sparse,
        bounds=bounds,
        chunk_size=chunk_size,
        encoding=encoding,
        delete_black_uploads=delete_bg,
        background_color=bg_color,
        compress=compress,
        factor=pyramid_factor(volumetric),
        bounds_mip=mip,
        memory_target=memory,
        encoding_level=numberify(encoding_level),
        encoding_effort=encoding_effort,
        method=method,
        codec_threads=codec_threads,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


@image.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@queue_option
@mip_option(help="Level of SRC to copy.")
@click.option(
    "--translate",
    type=Tuple3(),
    default=(0, 0, 0),
    show_default=True,
    help="Shift (x,y,z voxels at --mip) from SRC to DEST.",
)
@click.option(
    "--downsample/--skip-downsample",
    default=True,
    show_default=True,
    help="Build downsamples of DEST from each transferred block.",
)
@fill_missing_option
@memory_option(help="Bytes of memory per task (e.g. 3.5e9, 2GB): sets the task shape (ignored with --shape).")
@click.option("--max-mips", default=5, type=int, show_default=True, help="Cap on generated downsamples.")
@encoding_options
@click.option("--sparse", is_flag=True, default=False, help="Ignore background voxels in avg/mode pooling.")
@click.option(
    "--shape",
    type=Tuple3(),
    default=None,
    help="Task shape in voxels, a multiple of the chunk size (overrides --memory).",
)
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of DEST (default: SRC's).")
@click.option(
    "--compress",
    default="gzip",
    type=str,
    show_default=True,
    help="none, gzip, br or zstd (always off for jpeg/jxl/png).",
)
@click.option("--volumetric", is_flag=True, default=False, help="Downsample by 2,2,2 instead of 2,2,1.")
@background_options
@click.option("--sharded", is_flag=True, default=False, help="Write a sharded DEST (no downsamples).")
@click.option("--dest-voxel-offset", type=Tuple3(), default=None, help="voxel_offset of a new DEST.")
@click.option(
    "--clean-info",
    is_flag=True,
    default=False,
    help="Drop the 'mesh', 'meshing' and 'skeletons' keys from DEST's info.",
)
@click.option("--no-src-update", is_flag=True, default=False, help="Do not record this transfer in SRC's provenance.")
@click.option(
    "--truncate-scales/--no-truncate-scales", default=True, show_default=True, help="Drop DEST's scales above --mip."
)
@range_options(bounds_mip=True)
@click.option("--cutout", is_flag=True, default=False, help="Make DEST's bounds the selected ranges.")
@click.option("--downsample-method", type=DownsampleMethodType(), default="auto", show_default=True, help=METHOD_HELP)
@click.option("--use-https-src", is_flag=True, default=False, help="Read SRC anonymously over https.")
@click.pass_context
@dry_run_options
def xfer(
    ctx,
    src,
    dest,
    queue,
    mip,
    translate,
    downsample,
    fill_missing,
    memory,
    max_mips,
    encoding,
    encoding_level,
    encoding_effort,
    sparse,
    shape,
    chunk_size,
    compress,
    volumetric,
    delete_bg,
    bg_color,
    sharded,
    dest_voxel_offset,
    clean_info,
    no_src_update,
    truncate_scales,
    xrange,
    yrange,
    zrange,
    bounds_mip,
    cutout,
    downsample_method,
    use_https_src,
    dry_run,
):
    """Copy SRC to DEST: rechunk, re-encode, translate or crop, with downsamples."""
    bounds_mip = mip if bounds_mip is None else bounds_mip
    bounds = compute_bounds(src, bounds_mip, xrange, yrange, zrange, use_https=use_https_src)
    if sharded:
        refuse_with_sharded(shape=shape, sparse=sparse, volumetric=volumetric, delete_bg=delete_bg, bg_color=bg_color)
        planner = plans.plan_image_shard_transfer if dry_run else tc.create_image_shard_transfer_tasks
        tasks = planner(
            src,
            dest,
            mip=mip,
            chunk_size=chunk_size,
            encoding=encoding,
            bounds=bounds,
            bounds_mip=bounds_mip,
            fill_missing=fill_missing,
            translate=translate,
            dest_voxel_offset=dest_voxel_offset,
            memory_target=memory,
            clean_info=clean_info,
            encoding_level=numberify(encoding_level),
            truncate_scales=truncate_scales,
            compress=compress,
            cutout=cutout,
            encoding_effort=encoding_effort,
            use_https_for_source=use_https_src,
        )
        return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)
    planner = plans.plan_transfer if dry_run else tc.create_transfer_tasks
    tasks = planner(
        src,
        dest,
        chunk_size=chunk_size,
        shape=shape,
        fill_missing=fill_missing,
        translate=translate,
        bounds=bounds,
        mip=mip,
        encoding=encoding,
        skip_downsamples=not downsample,
        delete_black_uploads=delete_bg,
        background_color=bg_color,
        compress=compress,
        factor=pyramid_factor(volumetric),
        sparse=sparse,
        dest_voxel_offset=dest_voxel_offset,
        memory_target=memory,
        max_mips=max_mips,
        clean_info=clean_info,
        no_src_update=no_src_update,
        bounds_mip=bounds_mip,
        encoding_level=numberify(encoding_level),
        truncate_scales=truncate_scales,
        cutout=cutout,
        downsample_method=downsample_method,
        encoding_effort=encoding_effort,
        use_https_for_source=use_https_src,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


@image.command()
@click.argument("path", type=CloudPath())
@queue_option
@mip_option(help="Lowest level to delete.")
@click.option(
    "--num-mips",
    default=5,
    type=int,
    show_default=True,
    help="Also delete this many levels above --mip (mip … mip+N inclusive).",
)
@click.option(
    "--shape",
    type=Tuple3(),
    default=None,
    help="Task shape in voxels (default: the smallest that never splits a chunk of the levels deleted).",
)
@range_options()
@click.option("--dry-run", is_flag=True, default=False, help="List the chunk files that would be deleted; delete nothing.")
@click.pass_context
def rm(ctx, path, queue, mip, num_mips, shape, xrange, yrange, zrange, dry_run):
    """Delete the chunks of PATH at --mip and the --num-mips levels above it.

    Ranges (in --mip voxels) must be whole chunks at --mip; anything else is refused with the
    aligned ranges just inside and just covering it. At each higher level only the chunks
    wholly inside the region are deleted, never one that also holds data outside it.
    """
    from igneous.task_creation.deletion import deletion_filenames, plan_deletion

    # The deletion planner reads bounds at mip 0; the ranges are given at --mip.
    bounds = compute_bounds(path, mip, xrange, yrange, zrange, to_mip=0)
    plan, _ = plan_deletion(path, mip=mip, num_mips=num_mips, shape=shape, bounds=bounds)
    verb = "would delete" if dry_run else "deleting"
    for level, key, box, files in plan.levels:
        where = "nothing wholly inside the region" if box is None else f"{box.minpt.tolist()}–{box.maxpt.tolist()}"
        click.echo(f"mip {level} ({key}): {verb} {files} chunk file(s): {where}", err=True)
    click.echo(f"total: {plan.files} chunk file(s)", err=True)
    if dry_run:
        for name in deletion_filenames(path, plan):
            click.echo(name)
        return
    tasks = tc.create_deletion_tasks(path, mip=mip, num_mips=num_mips, shape=shape, bounds=bounds)
    enqueue_tasks(ctx, queue, tasks)


@image.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@queue_option
@mip_option()
@fill_missing_option
@encoding_options
@click.option("--compress", default="br", type=str, show_default=True, help="none, gzip, br or zstd.")
@background_options
@click.option(
    "--mapping-file",
    required=True,
    type=str,
    help='JSON file {"old_z": new_z, ...}; slices it does not name keep their z.',
)
@click.pass_context
def reorder(
    ctx,
    src,
    dest,
    queue,
    mip,
    fill_missing,
    encoding,
    encoding_level,
    encoding_effort,
    compress,
    delete_bg,
    bg_color,
    mapping_file,
):
    """Copy SRC to DEST with its z slices moved as --mapping-file says."""
    sequence = read_mapping(mapping_file)
    tasks = tc.create_reordering_tasks(
        src,
        dest,
        mip,
        sequence,
        fill_missing=fill_missing,
        compress=compress,
        delete_black_uploads=delete_bg,
        background_color=bg_color,
        encoding=encoding,
        encoding_level=numberify(encoding_level),
        encoding_effort=encoding_effort,
    )
    enqueue_tasks(ctx, queue, tasks)


def read_mapping(path: str) -> dict:
    """The ``{old_z: new_z}`` JSON object in ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
    except OSError as err:
        raise click.BadParameter(f"cannot read {path}: {err.strerror}", param_hint="'--mapping-file'") from None
    except ValueError as err:
        raise click.BadParameter(f"{path} is not JSON: {err}", param_hint="'--mapping-file'") from None
    if not isinstance(mapping, dict):
        raise click.BadParameter(f"{path} must hold a JSON object {{old_z: new_z}}", param_hint="'--mapping-file'")
    return mapping


from igneous_cli import voxels  # noqa: E402

image.add_command(voxels.voxels)

from igneous_cli import ingest  # noqa: E402  (issue 13: getting data in)

image.add_command(ingest.create)

from igneous_cli import contrast as _contrast  # noqa: E402  (issue 13: contrast and ROI)

image.add_command(_contrast.contrast)
image.add_command(_contrast.roi)
from igneous_cli import ccl  # noqa: E402

image.add_command(ccl.ccl)
