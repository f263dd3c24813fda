"""``igneous image voxels count|sum``: global voxel counts of a segmentation (SPEC §1.4).

``count`` runs (or queues) one ``CountVoxelsTask`` per 512³ box; ``sum`` adds their results
into ``stats/voxel_counts.im``, which ``mesh forge --dust-global`` and ``skeleton forge
--dust-global`` read.
"""

from __future__ import annotations

import click

import igneous.task_creation as tc
from igneous.progress import interactive
from igneous.task_creation import plans
from igneous_cli.common import enqueue_tasks
from igneous_cli.params import CloudPath, fill_missing_option, mip_option, queue_option
from igneous_cli.plan import dry_run_options

__all__ = ["voxels"]


@click.group()
def voxels() -> None:
    """Count every label's voxels over the whole layer (count, then sum)."""


@voxels.command()
@click.argument("path", type=CloudPath())
@mip_option()
@queue_option
@fill_missing_option
@click.pass_context
@dry_run_options
def count(ctx, path, mip, queue, fill_missing, dry_run):
    """Count the voxels of each label in PATH, one task per 512³ box (then run `sum`)."""
    if dry_run:
        return dry_run.show(plans.plan_voxel_counting(path, mip, fill_missing=fill_missing))
    tasks = tc.create_voxel_counting_tasks(path, mip, fill_missing=fill_missing)
    enqueue_tasks(ctx, queue, tasks)


@voxels.command(name="sum")
@click.argument("path", type=CloudPath())
@mip_option()
@click.option(
    "--compress",
    default="zstd",
    type=str,
    show_default=True,
    help="Compression of voxel_counts.im: none, gzip, br or zstd.",
)
@click.option("-o", "--output", default=None, type=str, help="Also write the IntMap to this local file.")
def sum_(path, mip, compress, output):
    """Add up the counts written by `count` into PATH's stats/voxel_counts.im."""
    intmap = tc.accumulate_voxel_counts(
        path, mip, progress=interactive(), compress=compress, additional_output=output
    )
    click.echo(f"voxel counts of {len(intmap)} labels written to {path} (mip {mip})", err=True)
