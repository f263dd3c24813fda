"""``igneous image create SRC DEST`` and ``igneous design ingest SRC``: getting data in.

An array file (.npy, .h5/.hdf5, .nii/.nii.gz, .nrrd, .ckl) is written here and now; an image
stack (a directory or quoted glob of 2-D TIFF/PNG/JPEG slices, or a multi-page TIFF) is
planned into tasks run here (``-p N``) or queued (``--queue``).
"""

from __future__ import annotations

import click

import igneous.task_creation as tc
from igneous.readers.arrays import is_array_file
from igneous.task_creation.ingest import (
    create_image_from_array,
    create_image_stack_tasks,
    plan_array_ingest,
    plan_image_stack,
)
from igneous_cli.common import enqueue_tasks, numberify
from igneous_cli.humanbytes import format_bytes
from igneous_cli.params import CloudPath, CompressType, EncodingType, Tuple3, options, queue_option
from igneous_cli.plan import dry_run_options, format_report

__all__ = ["create", "design_ingest", "FloatTriple"]

MEMORY_TARGET = 3.5e9


class FloatTriple(click.ParamType):
    """x,y,z as three positive numbers (resolutions may be fractional nm)."""

    name = "x,y,z"

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            items = list(value)
        else:
            items = str(value).split(",")
        try:
            numbers = tuple(float(v) for v in items)
        except ValueError:
            self.fail(f"{value!r} is not three comma separated numbers (x,y,z)", param, ctx)
        if len(numbers) != 3:
            self.fail(f"{value!r} is not three comma separated numbers (x,y,z)", param, ctx)
        return tuple(int(v) if float(v).is_integer() else v for v in numbers)


layer_options = options(
    click.option("--resolution", type=FloatTriple(), default="1,1,1", show_default=True, help="nm per voxel."),
    click.option("--offset", type=Tuple3(), default="0,0,0", show_default=True, help="voxel_offset of the layer."),
    click.option("--seg", is_flag=True, default=False, help="Make a segmentation layer (integer labels)."),
    click.option(
        "--encoding",
        type=EncodingType(),
        default="raw",
        show_default=True,
        help="Chunk encoding (raw, png, jpeg, jxl, compressed_segmentation/cseg, compresso, crackle, fpzip, …).",
    ),
    click.option("--encoding-level", default=None, type=str, help="png level, jpeg/jxl quality, fpzip precision."),
    click.option("--encoding-effort", default=3, type=int, show_default=True, help="JPEG XL effort 1-10."),
    click.option("--compress", type=CompressType(), default="br", show_default=True, help="none, gzip, br or zstd."),
    click.option("--chunk-size", type=Tuple3(), default="128,128,64", show_default=True, help="Chunk size."),
    click.option(
        "--memory",
        default=MEMORY_TARGET,
        type=float,
        show_default=True,
        help="Peak bytes per task (stacks) or per written block (arrays).",
    ),
)


def _layer_kwargs(resolution, offset, seg, encoding, encoding_level, encoding_effort, compress, chunk_size, memory):
    return dict(
        resolution=resolution,
        voxel_offset=offset,
        chunk_size=chunk_size,
        layer_type="segmentation" if seg else "image",
        encoding=encoding or "raw",
        encoding_level=numberify(encoding_level),
        encoding_effort=encoding_effort,
        compress=compress,
        memory_target=memory,
    )


@click.command("create")
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@layer_options
@click.option("--h5-dataset", default="main", show_default=True, help="Dataset inside an .h5/.hdf5 file.")
@queue_option
@click.option(
    "--downsample", is_flag=True, default=False, help="Build the pyramid afterwards (as `image downsample`)."
)
@dry_run_options
@click.pass_context
def create(ctx, src, dest, resolution, offset, seg, encoding, encoding_level, encoding_effort, compress, chunk_size,
           memory, h5_dataset, queue, downsample, dry_run):  # fmt: skip
    """Create a new layer at DEST from SRC.

    SRC is an array file (.npy memory-mapped, .h5/.hdf5 with --h5-dataset, .nii/.nii.gz,
    .nrrd, .ckl), indexed x,y,z[,channel] and written here; or an image stack: a directory
    or quoted glob of 2-D TIFF/PNG/JPEG slices (natural order: z2 before z10), or one
    multi-page/tiled/OME-TIFF, planned into tasks that each own chunk-aligned boxes and
    stay within --memory. Preview a stack's plan with `igneous design ingest SRC`.
    """
    kwargs = _layer_kwargs(resolution, offset, seg, encoding, encoding_level, encoding_effort, compress, chunk_size,
                           memory)  # fmt: skip
    if downsample and queue is not None:
        raise click.UsageError(
            "--downsample needs the ingest finished first; with --queue, run `igneous image downsample DEST "
            "--queue …` once the queue has drained"
        )
    if dry_run:
        from igneous.plans.ingest import plan_image_create

        plan = plan_image_create(src, dest, h5_dataset=h5_dataset, **kwargs)
        if downsample:
            plan.notes.append("--downsample: price the pyramid with `igneous image downsample DEST --dry-run` after")
        return dry_run.show(plan)
    if is_array_file(src):
        if queue is not None:
            raise click.UsageError("--queue applies to image stacks; an array file is written by this command itself")
        create_image_from_array(src, dest, h5_dataset=h5_dataset, **kwargs)
    else:
        enqueue_tasks(ctx, queue, create_image_stack_tasks(src, dest, **kwargs))
    if downsample:
        enqueue_tasks(ctx, None, tc.create_downsampling_tasks(dest, memory_target=int(memory)))


@click.command("ingest")
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath(), required=False)
@layer_options
@click.option("--h5-dataset", default="main", show_default=True, help="Dataset inside an .h5/.hdf5 file.")
def design_ingest(src, dest, resolution, offset, seg, encoding, encoding_level, encoding_effort, compress, chunk_size,
                  memory, h5_dataset):  # fmt: skip
    """Preview `image create SRC [DEST]`: what is read, the task grid and memory. Writes nothing."""
    kwargs = _layer_kwargs(resolution, offset, seg, encoding, encoding_level, encoding_effort, compress, chunk_size,
                           memory)  # fmt: skip
    if is_array_file(src):
        plan = plan_array_ingest(src, dest, h5_dataset=h5_dataset, **kwargs)
        click.echo(f"Array: {src} shape (x,y,z,c) {plan.shape} {plan.dtype}")
        click.echo(f"Written in blocks of {plan.block} voxels by this process (synchronous)")
        return _print_priced(src, dest, h5_dataset, kwargs)
    plan = plan_image_stack(src, dest, **kwargs)
    s = plan.summary()
    click.echo(f"Source: {s['source']} ({s['kind']}, {s['slices']} slices of {s['slice']}, {s['format']})")
    click.echo(f"Read layout: {s['layout']}" + (f"; each slice decoded {s['decodes_per_slice']}x" if
                                               s["decodes_per_slice"] > 1 else ""))  # fmt: skip
    click.echo(f"Volume: {'x'.join(map(str, s['size']))} voxels, chunks {'x'.join(map(str, s['chunk_size']))}")
    click.echo(f"Task shape: {'x'.join(map(str, s['task_shape']))}")
    click.echo(f"Tasks: {s['tasks']}")
    click.echo(
        f"Peak memory per task: {format_bytes(s['memory_per_task'])} (--memory {format_bytes(s['memory_target'])})"
    )
    click.echo(f"Writes: {', '.join(s['files_written'])}")
    _print_priced(src, dest, h5_dataset, kwargs)


def _print_priced(src, dest, h5_dataset, kwargs) -> None:
    """The plan priced as ``image create --dry-run`` prints it (bytes, requests, CPU-hours)."""
    from igneous.plan import report
    from igneous.plans.ingest import plan_image_create

    click.echo(format_report(report(plan_image_create(src, dest, h5_dataset=h5_dataset, **kwargs))))
