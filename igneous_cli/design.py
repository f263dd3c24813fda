"""``igneous design``: arithmetic that helps choose task shapes and read what is on disk."""

from __future__ import annotations

import posixpath
from typing import Sequence

import click
import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.lib import Bbox, Vec

from igneous.downsample_scales import compute_factors, downsample_shape_from_memory_target, task_memory
from igneous.volumes import open_volume
from igneous_cli.humanbytes import format_bytes
from igneous_cli.params import ByteSize, CloudPath, Tuple3, memory_option, mip_option

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
@click.argument("memory_bytes", type=ByteSize())
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
            data_width, int(chunk.x), int(chunk.y), int(chunk.z), factor, memory_bytes, max_mips
        )
    except ValueError as err:
        raise click.UsageError(f"ds-memory: {err}") from None
    shape = Vec(*shape)
    click.echo(_xyz(shape, sep=","))
    if verbose:
        click.echo(f"Downsamples: {downsamples_in_shape(shape, chunk, factor, vol.meta.volume_size(mip))}")
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
    return float(task_memory(data_width, shape, factor))


def downsamples_in_shape(shape: Sequence[int], chunk: Sequence[int], factor: Sequence[int], volume=None) -> int:
    """Pyramid levels a task of ``shape`` writes (over ``volume``, default: an unbounded layer)."""
    if max(int(f) for f in factor) < 2:
        return 0
    volume = volume if volume is not None else [2**62] * 3
    return len(compute_factors(shape, factor, chunk, volume))


def _xyz(values: Sequence[int], sep: str = " x ") -> str:
    return sep.join(str(int(v)) for v in values)




@design.command("shard-xfer")
@click.argument("src", type=CloudPath())
@mip_option()
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of the sharded copy (default: SRC's).")
@click.option("--encoding", default=None, help="Encoding of the copy (default: SRC's).")
@click.option("--compress", default="gzip", show_default=True, help="Per-chunk storage inside shards: gzip or none.")
@memory_option(help="memory_target: bytes per task (e.g. 3.5e9, 2GB).")
def shard_xfer(src: str, mip: int, chunk_size, encoding, compress, memory: float) -> None:
    """Dry run of `image xfer --sharded`: shard geometry, tasks and memory; writes nothing."""
    from igneous.task_creation.plans import plan_image_shard_transfer
    from igneous.task_creation.shard_image import prepare_shard_transfer

    kwargs = dict(mip=mip, chunk_size=chunk_size, encoding=encoding, compress=compress, memory_target=memory)
    job = prepare_shard_transfer(src, src.rstrip("/") + "-design-dry-run", **kwargs)
    _print_plan(job)
    _print_priced(plan_image_shard_transfer, src, src.rstrip("/") + "-design-dry-run", **kwargs)


@design.command("shard-ds")
@click.argument("path", type=CloudPath())
@mip_option()
@click.option("--num-mips", type=int, default=None, help="Levels per pass (default: 3, fewer if memory requires).")
@click.option("--volumetric", is_flag=True, default=False, help="Factor 2,2,2 instead of 2,2,1.")
@click.option("--chunk-size", type=Tuple3(), default=None, help="Chunk size of the new scales (default: --mip's).")
@click.option("--encoding", default=None, help="Encoding of the new scales (default: --mip's).")
@memory_option(help="memory_target: bytes per task (e.g. 3.5e9, 2GB).")
def shard_ds(path: str, mip: int, num_mips, volumetric: bool, chunk_size, encoding, memory: float) -> None:
    """Dry run of `image downsample --sharded`: per-level shards, tasks and memory; writes nothing."""
    from igneous.task_creation.plans import plan_image_shard_downsample
    from igneous.task_creation.shard_image import prepare_shard_downsample

    kwargs = dict(
        mip=mip, num_mips=num_mips, factor=(2, 2, 2) if volumetric else (2, 2, 1), chunk_size=chunk_size,
        encoding=encoding, memory_target=memory,
    )  # fmt: skip
    job = prepare_shard_downsample(path, **kwargs)
    _print_plan(job)
    _print_priced(plan_image_shard_downsample, path, **kwargs)


def _print_plan(job) -> None:
    plan = job.plan
    vol = job.vol
    for level in plan.levels:
        spec = level.spec
        scale = vol.info["scales"][level.mip]
        click.echo(
            f"mip {level.mip}: size {_xyz(level.size)}, chunk {_xyz(level.chunk)}, grid {_xyz(level.grid)}, "
            f"encoding {scale['encoding']} (chunks stored {spec['data_encoding']})"
        )
        click.echo(
            f"  bits preshift {spec['preshift_bits']} minishard {spec['minishard_bits']} shard {spec['shard_bits']}; "
            f"shard {_xyz(level.shard_shape)} voxels = {_xyz(level.shard_chunks)} chunks, "
            f"{format_bytes(level.shard_bytes)} uncompressed; {level.num_shards} shard files"
        )
    click.echo(f"Task shape: {_xyz(plan.task_shape)} at mip {plan.levels[0].mip - (plan.kind == 'pyramid')}")
    click.echo(f"Tasks: {len(_grid(job))}")
    terms = ", ".join(f"{k} {format_bytes(v)}" for k, v in plan.memory.items())
    click.echo(f"Peak memory per task: {format_bytes(plan.peak_bytes)} ({terms})")
    if plan.peak_bytes > job.memory_target:
        click.echo(f"Above --memory {format_bytes(job.memory_target)}: runs anyway (see the warning for what fits)")


def _print_priced(planner, *args, **kwargs) -> None:
    """The same plan priced as ``--dry-run`` prints it (bytes, requests, CPU-hours)."""
    from igneous.plan import report
    from igneous_cli.plan import format_report

    click.echo(format_report(report(planner(*args, **kwargs))))


def _grid(job):
    from igneous.task_creation.common import GridTasks

    return GridTasks(job.bounds, job.plan.task_shape, lambda **kw: None)


def _register_ingest() -> None:
    from igneous_cli.ingest import design_ingest

    design.add_command(design_ingest)


_register_ingest()
