"""``igneous image contrast histogram|equalize|clahe`` and ``igneous image roi``."""

from __future__ import annotations

import sys

import click

import igneous.task_creation as tc
from igneous_cli.common import compute_bounds, enqueue_tasks, numberify
from igneous_cli.params import CloudPath, Tuple2, Tuple3, fill_missing_option, mip_option, queue_option, range_options
from igneous_cli.plan import dry_run_options

__all__ = ["contrast", "roi"]


@click.group()
def contrast() -> None:
    """Even out brightness: per-slice histograms, histogram stretch, CLAHE."""


def _bounds(path, mip, bounds_mip, xrange, yrange, zrange):
    bounds_mip = mip if bounds_mip is None else bounds_mip
    return compute_bounds(path, bounds_mip, xrange, yrange, zrange), bounds_mip


@contrast.command()
@click.argument("path", type=CloudPath())
@queue_option
@mip_option()
@click.option("--coverage", default=0.01, type=float, show_default=True, help="Fraction of each slice sampled (2048² patches).")
@range_options(bounds_mip=True)
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), help="Also draw per-z clip percentiles and median to this PNG.")
@click.option("--clip-fraction", default=0.01, type=float, show_default=True, help="Clip fraction drawn by --plot.")
@dry_run_options
@click.pass_context
def histogram(ctx, path, queue, mip, coverage, xrange, yrange, zrange, bounds_mip, plot_path, clip_fraction, dry_run):
    """Sample each z-slice's histogram into PATH/levels/MIP/Z (input of `equalize`)."""
    if dry_run:
        from igneous.plans.contrast import plan_luminance_levels

        bounds, bounds_mip = _bounds(path, mip, bounds_mip, xrange, yrange, zrange)
        return dry_run.show(plan_luminance_levels(path, coverage_factor=coverage, mip=mip, bounds=bounds,
                                                  bounds_mip=bounds_mip))  # fmt: skip
    if plot_path and queue is not None:
        raise click.UsageError("--plot draws the histograms once written; run it without --queue (or after the queue drains)")
    bounds, bounds_mip = _bounds(path, mip, bounds_mip, xrange, yrange, zrange)
    tasks = tc.create_luminance_levels_tasks(path, coverage_factor=coverage, mip=mip, bounds=bounds, bounds_mip=bounds_mip)
    enqueue_tasks(ctx, queue, tasks)
    if plot_path:
        from igneous.task_creation.contrast import levels_summary

        draw_levels(levels_summary(path, mip, clip_fraction=clip_fraction), plot_path, path, clip_fraction)
        click.echo(f"plot written to {plot_path}", err=True)


def draw_levels(summary: dict, plot_path: str, title: str, clip_fraction: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise click.UsageError("--plot needs matplotlib: pip install 'igneous[contrast]'") from None
    zs = sorted(summary)
    lower, median, upper = ([summary[z][i] for z in zs] for i in range(3))
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.fill_between(zs, lower, upper, color="tab:blue", alpha=0.2, label=f"{clip_fraction:g} … {1 - clip_fraction:g} clip")
    ax.plot(zs, lower, color="tab:blue", lw=1)
    ax.plot(zs, upper, color="tab:blue", lw=1)
    ax.plot(zs, median, color="tab:orange", lw=1.5, label="median")
    ax.set_xlabel("z")
    ax.set_ylabel("value")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(plot_path)
    plt.close(fig)


@contrast.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@click.option("--shape", type=Tuple3(), default="2048,2048,64", show_default=True, help="Task size in voxels.")
@click.option("--translate", type=Tuple3(), default="0,0,0", show_default=True, help="Shift (x,y,z voxels) SRC→DEST.")
@queue_option
@mip_option()
@click.option("--clip-fraction", default=0.01, type=float, show_default=True, help="Histogram fraction clipped at each end.")
@fill_missing_option
@click.option("--minval", default=None, type=str, help="Output value of the lower clip (default 0).")
@click.option("--maxval", default=None, type=str, help="Output value of the upper clip (default the dtype's max).")
@range_options(bounds_mip=True)
@dry_run_options
@click.pass_context
def equalize(ctx, src, dest, shape, translate, queue, mip, clip_fraction, fill_missing, minval, maxval, xrange, yrange,
             zrange, bounds_mip, dry_run):  # fmt: skip
    """Stretch each slice of SRC between its clip percentiles into DEST (run `histogram` first)."""
    bounds, bounds_mip = _bounds(src, mip, bounds_mip, xrange, yrange, zrange)
    kwargs = dict(shape=shape, mip=mip, clip_fraction=clip_fraction, fill_missing=fill_missing, translate=translate,
                  minval=numberify(minval), maxval=numberify(maxval), bounds=bounds, bounds_mip=bounds_mip)  # fmt: skip
    if dry_run:
        from igneous.plans.contrast import plan_equalize

        return dry_run.show(plan_equalize(src, dest, **kwargs))
    enqueue_tasks(ctx, queue, tc.create_contrast_normalization_tasks(src, dest, **kwargs))


@contrast.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@click.option("--shape", type=Tuple3(), default=None, help="Task shape (default 2048,2048,chunk z); tiles are shape/grid.")
@queue_option
@mip_option()
@fill_missing_option
@range_options(bounds_mip=True)
@click.option("--clip-limit", default=40.0, type=float, show_default=True, help="CLAHE clip threshold.")
@click.option("--tile-grid-size", type=Tuple2(), default="8,8", show_default=True, help="CLAHE tiles per task shape.")
@dry_run_options
@click.pass_context
def clahe(ctx, src, dest, shape, queue, mip, fill_missing, xrange, yrange, zrange, bounds_mip, clip_limit,
          tile_grid_size, dry_run):  # fmt: skip
    """OpenCV CLAHE of each slice of SRC into DEST, without seams between tasks."""
    bounds, bounds_mip = _bounds(src, mip, bounds_mip, xrange, yrange, zrange)
    kwargs = dict(shape=shape, mip=mip, fill_missing=fill_missing, bounds=bounds, bounds_mip=bounds_mip,
                  clip_limit=clip_limit, tile_grid_size=tile_grid_size)  # fmt: skip
    if dry_run:
        from igneous.plans.contrast import plan_clahe_run

        return dry_run.show(plan_clahe_run(src, dest, **kwargs))
    enqueue_tasks(ctx, queue, tc.create_clahe_tasks(src, dest, **kwargs))


@click.command()
@click.argument("src", type=CloudPath())
@click.option("--suppress-faint", default=0, type=int, show_default=True, help="Voxels <= this are background.")
@click.option("--dust", default=10, type=int, show_default=True, help="Ignore components smaller than N voxels.")
@click.option("--progress", is_flag=True, default=False, help="Show progress bars.")
@click.option("--max-axial-len", default=512, type=int, show_default=True, help="Pool in memory until XY <= N².")
@click.option("--z-step", default=None, type=int, help="z slab thickness per pass (lowest-mip voxels).")
def roi(src, suppress_faint, dust, progress, max_axial_len, z_step):
    """Find the tissue's bounding boxes at the lowest mip; write them to info scales[0].rois."""
    boxes = tc.compute_rois(src, progress=progress and sys.stderr.isatty(), suppress_faint_voxels=suppress_faint,
                            dust_threshold=dust, max_axial_length=max_axial_len, z_step=z_step)  # fmt: skip
    for box in boxes:
        click.echo(",".join(str(int(v)) for v in box.minpt.tolist() + (box.maxpt - 1).tolist()))
