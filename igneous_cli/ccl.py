"""``igneous image ccl``: connected components over a whole layer (SPEC §1.4).

faces → links → calc-labels → relabel → clean, or ``auto`` for all of them. Each command
parses its options and calls the library; ``auto --queue`` drains the queue itself after
each step and stops, naming the step, when one did not finish.
"""

from __future__ import annotations

import click

import igneous.plans.ccl as plans
import igneous.task_creation as tc
from igneous.progress import interactive
from igneous.queues.steps import StepIncomplete, run_step
from igneous.task_creation.ccl import plan_ccl, plan_ccl_relabel, unfinished_tasks
from igneous.tasks.image.ccl import clean_intermediate_files, create_relabeling
from igneous_cli.common import enqueue_tasks, get_parallel, numberify
from igneous_cli.params import CloudPath, EncodingType, Tuple3, fill_missing_option, options, queue_option
from igneous_cli.plan import dry_run_options

__all__ = ["ccl"]

DEFAULT_SHAPE = "512,512,512"


def shape_option(required_default: bool = False):
    return click.option(
        "--shape",
        type=Tuple3(),
        default=DEFAULT_SHAPE,
        show_default=True,
        help="Task shape in voxels; every step of a run must use the same one.",
    )


def mip_option(required: bool = False):
    return click.option(
        "--mip", default=0, type=int, show_default=True, required=required, help="Pyramid level to label."
    )


connectivity_option = click.option(
    "--connectivity",
    default=6,
    type=int,
    show_default=True,
    help="6 (faces), 18 (+edges) or 26 (+corners); the same across task seams.",
)

threshold_options = options(
    click.option(
        "--threshold-gte", default=None, type=str, help="Foreground: value >= this (int or float). Needed for floats."
    ),
    click.option("--threshold-lte", default=None, type=str, help="Foreground: value <= this (int or float)."),
)

dust_option = click.option(
    "--dust",
    default=0,
    type=int,
    show_default=True,
    help="Drop components of fewer voxels, counted over the whole volume.",
)


def run_options(fn):
    """What faces, links and relabel share (and must share with each other)."""
    return options(shape_option(), mip_option(), queue_option, threshold_options, fill_missing_option, dust_option,
                   connectivity_option)(fn)  # fmt: skip


def _common(threshold_gte, threshold_lte, fill_missing, dust, connectivity) -> dict:
    return dict(
        threshold_gte=numberify(threshold_gte),
        threshold_lte=numberify(threshold_lte),
        fill_missing=fill_missing,
        dust_threshold=dust,
        connectivity=connectivity,
    )


@click.group()
def ccl() -> None:
    """Connected components over a whole layer: faces → links → calc-labels → relabel → clean (or auto)."""


@ccl.command()
@click.argument("src", type=CloudPath())
@run_options
@dry_run_options
@click.pass_context
def faces(ctx, src, shape, mip, queue, threshold_gte, threshold_lte, fill_missing, dust, connectivity, dry_run):
    """Pass 1: label each task box of SRC and write the faces it shares with its neighbours."""
    kwargs = _common(threshold_gte, threshold_lte, fill_missing, dust, connectivity)
    if dry_run:
        return dry_run.show(plans.plan_ccl_faces(src, mip, shape, **kwargs))
    enqueue_tasks(ctx, queue, tc.create_ccl_face_tasks(src, mip, shape, **kwargs))


@ccl.command()
@click.argument("src", type=CloudPath())
@run_options
@dry_run_options
@click.pass_context
def links(ctx, src, shape, mip, queue, threshold_gte, threshold_lte, fill_missing, dust, connectivity, dry_run):
    """Pass 2: link each task's labels to its neighbours' (needs every face of pass 1)."""
    kwargs = _common(threshold_gte, threshold_lte, fill_missing, dust, connectivity)
    if dry_run:
        return dry_run.show(plans.plan_ccl_links(src, mip, shape, **kwargs))
    enqueue_tasks(ctx, queue, tc.create_ccl_equivalence_tasks(src, mip, shape, **kwargs))


@ccl.command(name="calc-labels")
@click.argument("src", type=CloudPath())
@mip_option(required=True)
@shape_option()
@click.option("--connectivity", default=None, type=int, help="Checked against the faces step's (default: its own).")
@dry_run_options
def calc_labels(src, mip, shape, connectivity, dry_run):
    """Pass 3 (here, synchronous): number the components 1…N from every task's links."""
    if dry_run:
        return dry_run.show(plans.plan_ccl_calc_labels(src, mip, shape, connectivity=connectivity))
    n = create_relabeling(src, mip, shape, progress=interactive(), connectivity=connectivity)
    click.echo(f"{n} connected components", err=True)


@ccl.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@run_options
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of DEST (default: SRC's at --mip).")
@click.option("--encoding", type=EncodingType(), default="compresso", show_default=True, help="Encoding of DEST.")
@dry_run_options
@click.pass_context
def relabel(ctx, src, dest, shape, mip, queue, threshold_gte, threshold_lte, fill_missing, dust, connectivity,
            chunk_size, encoding, dry_run):  # fmt: skip
    """Pass 4: write each task box with its final ids to the new layer DEST."""
    kwargs = _common(threshold_gte, threshold_lte, fill_missing, dust, connectivity)
    if dry_run:
        plan = plans.plan_ccl_relabel_run(src, dest, mip, shape, chunk_size=chunk_size, encoding=encoding, **kwargs)
        return dry_run.show(plan)
    tasks = tc.create_ccl_relabel_tasks(src, dest, mip, shape, chunk_size=chunk_size, encoding=encoding, **kwargs)
    enqueue_tasks(ctx, queue, tasks)


@ccl.command()
@click.argument("src", type=CloudPath())
@mip_option(required=True)
def clean(src, mip):
    """Delete SRC's ccl/ intermediate files at --mip."""
    n = clean_intermediate_files(src, mip)
    click.echo(f"deleted {n} files", err=True)


@ccl.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@shape_option()
@mip_option()
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of DEST (default: SRC's at --mip).")
@click.option("--encoding", type=str, default="compresso", show_default=True, help="Encoding of DEST.")
@queue_option
@click.option("--clean/--no-clean", default=True, show_default=True, help="Delete the ccl/ intermediates at the end.")
@threshold_options
@fill_missing_option
@dust_option
@connectivity_option
@click.option(
    "--max-attempts",
    default=5,
    type=click.IntRange(min=1),
    show_default=True,
    help="With --queue: leases a task gets before it is dead-lettered and the step fails.",
)
@dry_run_options
@click.pass_context
def auto(ctx, src, dest, shape, mip, chunk_size, encoding, queue, clean, threshold_gte, threshold_lte, fill_missing,
         dust, connectivity, max_attempts, dry_run):  # fmt: skip
    """All passes in order. With --queue, this process drains the queue after each step (-p workers)."""
    kwargs = _common(threshold_gte, threshold_lte, fill_missing, dust, connectivity)
    if dry_run:
        return dry_run.show(plans.plan_ccl_auto(src, dest, mip, shape, chunk_size, encoding, clean=clean, **kwargs))
    run = dict(kwargs)
    run.pop("fill_missing")
    # Everything that can be refused is refused before the first file is written.
    plan_ccl_relabel(src, dest, mip, shape, chunk_size, encoding, require_labels=False, **run)
    plan = plan_ccl(src, mip, shape, **run)
    step = dict(queue=queue, parallel=get_parallel(ctx), progress=interactive(), max_attempts=max_attempts)
    try:
        run_step("faces", tc.create_ccl_face_tasks(src, mip, shape, **kwargs),
                 unfinished=lambda: unfinished_tasks(plan, "faces"), **step)  # fmt: skip
        run_step("links", tc.create_ccl_equivalence_tasks(src, mip, shape, **kwargs),
                 unfinished=lambda: unfinished_tasks(plan, "links"), **step)  # fmt: skip
        n = create_relabeling(src, mip, shape, progress=step["progress"])
        tasks = tc.create_ccl_relabel_tasks(src, dest, mip, shape, chunk_size=chunk_size, encoding=encoding, **kwargs)
        run_step("relabel", tasks, **step)
    except StepIncomplete as err:
        raise StepFailed(err) from err
    if clean:
        clean_intermediate_files(src, mip)
    click.echo(f"{n} connected components written to {dest}", err=True)


class StepFailed(click.ClickException):
    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: ccl auto: {self.format_message()}", file=file, err=True)

    def __init__(self, err: StepIncomplete):
        super().__init__(str(err).splitlines()[0] if str(err) else "a step did not complete")
