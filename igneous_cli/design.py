"""``igneous design``: arithmetic that helps choose task shapes and read what is on disk."""

from __future__ import annotations

import functools
import operator
import posixpath
from typing import Sequence

import click
import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.lib import Bbox, Vec

from igneous.downsample_scales import downsample_shape_from_memory_target
from igneous.volumes import open_volume
from igneous_cli.humanbytes import format_bytes
from igneous_cli.params import CloudPath, Tuple3, mip_option

__all__ = ["design", "memory_used", "downsamples_in_shape", "PYRAMID_FACTORS"]

PYRAMID_FACTORS = ((1, 1, 1), (2, 2, 1), (2, 1, 2), (1, 2, 2), (2, 2, 2))

factor_option = click.option(
    "--factor", type=Tuple3(), default="2,2,1", show_default=True, help="Downsample factor per pyramid level."
)


@click.group()
def design() -> None:
    """Plan task shapes and memory use; measure what a layer holds."""


@design.command()
@click.argument("path", type=CloudPath())
@mip_option()
def bounds(path: str, mip: int) -> None:
    """Bounds of the chunk files actually present at --mip (not what the info claims)."""
    vol = open_volume(path, mip)
    key = vol.meta.key(mip)
    boxes = []
    for name in CloudFiles(vol.meta.cloudpath).list(prefix=key + "/"):
        try:
            boxes.append(Bbox.from_filename(posixpath.basename(name)))
        except ValueError:  # info, provenance, shard files: not named by a box
            continue
    if not boxes:
        raise click.UsageError(f"no chunk files named x0-x1_y0-y1_z0-z1 under {key}/ (empty or sharded scale?)")
    minpt = Vec(*np.min([b.minpt for b in boxes], axis=0))
    maxpt = Vec(*np.max([b.maxpt for b in boxes], axis=0))
    union = Bbox(minpt, maxpt)
    largest = Vec(*np.max([b.size3() for b in boxes], axis=0))
    click.echo(f"Bounds: {union}")
    click.echo(f"Volume: {int(np.prod(union.size3(), dtype=np.int64))} voxels ({_xyz(union.size3())})")
    click.echo(f"Chunks: {len(boxes)}")
    click.echo(f"Max chunk size: {_xyz(largest)}")


@design.command("ds-memory")
@click.argument("path", type=CloudPath())
@click.argument("memory_bytes", type=float)
@mip_option()
@factor_option
@click.option("--verbose", is_flag=True, default=False, help="Also print the downsamples and memory used.")
@click.option("--max-mips", default=5, type=int, show_default=True, help="Cap on downsamples.")
def ds_memory(path: str, memory_bytes: float, mip: int, factor: Sequence[int], verbose: bool, max_mips: int) -> None:
    """Largest task shape whose downsampling fits MEMORY_BYTES (e.g. 3.5e9); pass it to --shape."""
    vol = open_volume(path, mip)
    data_width = np.dtype(vol.dtype).itemsize * vol.num_channels
    chunk = vol.meta.chunk_size(mip)
    try:
        shape = downsample_shape_from_memory_target(
            data_width, int(chunk.x), int(chunk.y), int(chunk.z), factor, int(memory_bytes), max_mips
        )
    except ValueError as err:
        raise click.UsageError(f"ds-memory: {err}") from None
    shape = Vec(*shape)
    click.echo(_xyz(shape, sep=","))
    if verbose:
        click.echo(f"Downsamples: {downsamples_in_shape(shape, chunk, factor)}")
        click.echo(f"Memory used: {format_bytes(memory_used(data_width, shape, factor))}")


@design.command("ds-shape")
@click.argument("path", type=CloudPath())
@click.argument("shape", type=Tuple3())
@mip_option()
@factor_option
def ds_shape(path: str, shape: Sequence[int], mip: int, factor: Sequence[int]) -> None:
    """Memory a downsampling task of SHAPE (x,y,z) needs, including its pyramid."""
    if any(s <= 0 for s in shape):
        raise click.BadParameter(f"{_xyz(shape, sep=',')} must be three positive integers", param_hint="SHAPE")
    if tuple(factor) not in PYRAMID_FACTORS:
        allowed = " / ".join(",".join(map(str, f)) for f in PYRAMID_FACTORS)
        raise click.BadParameter(f"{_xyz(factor, sep=',')} is not one of {allowed}", param_hint="'--factor'")
    vol = open_volume(path, mip)
    data_width = np.dtype(vol.dtype).itemsize * vol.num_channels
    click.echo(format_bytes(memory_used(data_width, shape, factor)))


def memory_used(data_width: int, shape: Sequence[int], factor: Sequence[int]) -> float:
    """Bytes for a block of ``shape`` plus its whole pyramid: x·y·z·width·f/(f−1), f = product of factor."""
    memory = data_width * functools.reduce(operator.mul, (int(s) for s in shape), 1)
    f = functools.reduce(operator.mul, (int(v) for v in factor), 1)
    return float(memory) if f == 1 else memory * f / (f - 1)


def downsamples_in_shape(shape: Sequence[int], chunk: Sequence[int], factor: Sequence[int]) -> int:
    """Pyramid levels a block of ``shape`` yields before a downsampled axis falls below one chunk."""
    levels = []
    for s, c, f in zip(shape, chunk, factor):
        if int(f) > 1:
            n, size = 0, int(s)
            while size // int(f) >= int(c) and size % int(f) == 0:
                size //= int(f)
                n += 1
            levels.append(n)
    return min(levels) if levels else 0


def _xyz(values: Sequence[int], sep: str = " x ") -> str:
    return sep.join(str(int(v)) for v in values)
