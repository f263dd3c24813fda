"""``igneous mesh spatial-index create|db`` (SPEC §1.4): (re)build the ``.spatial`` files of a
segmentation's meshes, and load them into a sqlite or MySQL database for fast lookups."""

from __future__ import annotations

import click

from igneous.progress import interactive
from igneous.task_creation.spatial_index import create_spatial_index_mesh_tasks, export_spatial_index_db
from igneous_cli.common import enqueue_tasks, get_parallel
from igneous_cli.params import CloudPath, Tuple3, fill_missing_option, mip_option, queue_option

__all__ = ["spatial_index"]


@click.group(name="spatial-index")
def spatial_index() -> None:
    """Spatial index of the meshes: which labels each task box holds, and where."""


@spatial_index.command()
@click.argument("path", type=CloudPath())
@queue_option
@click.option(
    "--shape",
    type=Tuple3(),
    default=(448, 448, 448),
    show_default=True,
    help="Indexing task size in voxels; must be the forge's --shape when meshes exist.",
)
@mip_option()
@fill_missing_option
@click.pass_context
def create(ctx, path, queue, shape, mip, fill_missing):
    """Write PATH's mesh .spatial files from the segmentation (one task per --shape box)."""
    tasks = create_spatial_index_mesh_tasks(path, shape=shape, mip=mip, fill_missing=fill_missing)
    enqueue_tasks(ctx, queue, tasks)


@spatial_index.command()
@click.argument("path", type=CloudPath())
@click.argument("database", type=str)
@click.option("--progress", is_flag=True, default=False, help="Show progress bars (always on a terminal).")
@click.option("--allow-missing", is_flag=True, default=False, help="Skip missing .spatial files instead of failing.")
@click.pass_context
def db(ctx, path, database, progress, allow_missing):
    """Load PATH's mesh spatial index into DATABASE: sqlite://FILE or mysql://USER:PW@HOST[:PORT]/DB.

    sqlite takes one writer and labels below 2^63; MySQL loads with -p threads and takes any label.
    """
    export_spatial_index_db(
        path, database, progress=progress or interactive(), allow_missing=allow_missing, parallel=get_parallel(ctx)
    )
    scheme = database.split("://", 1)[0] if "://" in database else "sqlite"
    click.echo(f"spatial index of {path} loaded into the {scheme} database", err=True)
