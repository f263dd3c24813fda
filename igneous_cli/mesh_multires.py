"""`igneous mesh merge-sharded`: sharded multi-resolution meshes from a sharded forge."""

from __future__ import annotations

import click

from igneous_cli.common import enqueue_tasks
from igneous_cli.params import CloudPath, Tuple3, queue_option
from igneous_cli.plan import dry_run_options

__all__ = ["merge_sharded"]


@click.command("merge-sharded")
@click.argument("path", type=CloudPath())
@queue_option
@click.option("--nlod", default=1, type=int, show_default=True, help="Extra levels of detail (each halves the faces).")
@click.option(
    "--vqb",
    default=16,
    type=int,
    show_default=True,
    help="Vertex quantization bits, 10 or 16 (16 recommended: cracks between LODs stay below 1/65535 of a chunk).",
)
@click.option("--compress-level", default=7, type=int, show_default=True, help="Draco compression level (0-10).")
@click.option("--shard-index-bytes", default=2**13, type=int, show_default=True, help="Target shard index size.")
@click.option(
    "--minishard-index-bytes", default=2**15, type=int, show_default=True, help="Target minishard index size."
)
@click.option("--min-shards", default=1, type=int, show_default=True, help="At least this many shards.")
@click.option(
    "--max-labels-per-shard",
    default=1000,
    type=int,
    show_default=True,
    help="More shards so that a shard holds at most about N labels (a task holds its shard in memory).",
)
@click.option(
    "--minishard-index-encoding",
    default="gzip",
    type=click.Choice(["gzip", "raw"]),
    show_default=True,
    help="Minishard index encoding.",
)
@click.option(
    "--spatial-index-db",
    default=None,
    help="SQL database from `igneous mesh spatial-index db` (sqlite://… or mysql://…) to find labels faster.",
)
@click.option(
    "--min-chunk-size",
    type=Tuple3(),
    default="256,256,256",
    show_default=True,
    help="Smallest LOD 0 fragment (voxels).",
)
@click.option("--dir", "mesh_dir", default=None, help="Mesh directory (default: info['mesh']).")
@click.pass_context
@dry_run_options
def merge_sharded(
    ctx, path, queue, nlod, vqb, compress_level, shard_index_bytes, minishard_index_bytes, min_shards,
    max_labels_per_shard, minishard_index_encoding, spatial_index_db, min_chunk_size, mesh_dir, dry_run,
):  # fmt: skip
    """(2) Merge a sharded forge (`mesh forge --sharded`) into sharded multires meshes."""
    from igneous.task_creation.multires import create_sharded_multires_mesh_tasks
    from igneous.task_creation.plans import plan_sharded_multires_merge

    tasks = (plan_sharded_multires_merge if dry_run else create_sharded_multires_mesh_tasks)(
        path,
        shard_index_bytes=shard_index_bytes,
        minishard_index_bytes=minishard_index_bytes,
        min_shards=min_shards,
        num_lod=nlod,
        draco_compression_level=compress_level,
        vertex_quantization_bits=vqb,
        minishard_index_encoding=minishard_index_encoding,
        mesh_dir=mesh_dir,
        spatial_index_db=spatial_index_db,
        min_chunk_size=min_chunk_size,
        max_labels_per_shard=max_labels_per_shard,
        progress=False,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)
