"""`igneous mesh …`: forge, merge (legacy and multi-resolution), merge-sharded, xfer, rm, clean,
spatial-index. Commands live next to the group here or in sibling modules registered below."""

from __future__ import annotations

import click


@click.group()
def mesh() -> None:
    """Meshes: forge fragments from a segmentation, merge them for Neuroglancer, manage them."""
