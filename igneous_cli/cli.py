"""The ``igneous`` root group. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import logging
import os

import click

import igneous
from igneous_cli import design, image, mesh, queue, skeleton
from igneous_cli import view as view_cmd
from igneous_cli.common import IgneousGroup, configure_logging

__all__ = ["main", "clamp_parallel"]

LICENSE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "LICENSE")


def clamp_parallel(parallel: int) -> int:
    """``-p``: 0 means every core; anything else is clamped to [1, cpu_count]."""
    cores = os.cpu_count() or 1
    if parallel == 0:
        return cores
    return max(1, min(int(parallel), cores))


@click.group(name="igneous", cls=IgneousGroup)
@click.option(
    "-p",
    "--parallel",
    default=1,
    type=int,
    show_default=True,
    help="Processes for running, inserting or executing tasks. 0 means all cores.",
)
@click.version_option(version=igneous.__version__, prog_name="igneous", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context, parallel: int) -> None:
    """Build pyramids, copies, meshes and skeletons of Neuroglancer Precomputed volumes as queued tasks.

    Without --queue a command runs its tasks here; with --queue it inserts them for
    `igneous execute` workers to run anywhere.
    """
    ctx.ensure_object(dict)
    ctx.obj["parallel"] = clamp_parallel(parallel)
    configure_logging(ctx, logging.WARNING)


@main.command(name="license")
def license_cmd() -> None:
    """Print the license of this software."""
    with open(LICENSE_PATH, encoding="utf-8") as f:
        click.echo(f.read(), nl=False)


main.add_command(queue.execute)
main.add_command(design.design)
main.add_command(queue.queue)
main.add_command(image.image)
main.add_command(mesh.mesh)
main.add_command(view_cmd.view)
main.add_command(skeleton.skeleton)
