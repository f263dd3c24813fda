"""`igneous skeleton …`: forge, merge, merge-sharded, xfer, rm, clean, convert, spatial-index
(SPEC §1.3/§1.4). Commands parse options and call ``igneous.task_creation.skeleton``."""

from __future__ import annotations

import os

import click

from igneous_cli.common import enqueue_tasks, get_parallel
from igneous_cli.params import CloudPath, ListN, Tuple3, fill_missing_option, mip_option, queue_option
from igneous_cli.plan import dry_run_options

__all__ = ["skeleton"]

MAGNITUDE_HELP = "Split the work into about 10^N filename-prefix tasks."


@click.group()
def skeleton() -> None:
    """Skeletons: forge fragments with kimimaro, merge them for Neuroglancer, manage them."""


@skeleton.command()
@click.argument("path", type=CloudPath())
@queue_option
@mip_option(help="Skeletonize the segmentation at this level.")
@click.option("--shape", type=Tuple3(), default="512,512,512", show_default=True, help="Task size in voxels.")
@fill_missing_option
@click.option(
    "--fix-branching/--no-fix-branching", default=True, show_default=True, help="Better forks (slower)."
)
@click.option(
    "--fix-borders/--no-fix-borders",
    default=True,
    show_default=True,
    help="Centre skeletons where they cross task faces (joins fragments of neighbouring tasks).",
)
@click.option("--fix-avocados", is_flag=True, default=False, help="Merge nucleus/soma split labels.")
@click.option("--fix-autapses", is_flag=True, default=False, help="(graphene only) Use L2 connectivity.")
@click.option(
    "--fill-holes", default=0, type=int, show_default=True, help="Hole filling level 0-3 (4+ lowers the merge threshold; max 103)."
)
@click.option("--dust-threshold", default=1000, type=int, show_default=True, help="Skip components < N voxels.")
@click.option(
    "--dust-global/--dust-local",
    default=False,
    show_default=True,
    help="Judge dust by stats/voxel_counts.im (igneous image voxels count/sum) instead of per cutout.",
)
@click.option(
    "--spatial-index/--skip-spatial-index",
    default=True,
    show_default=True,
    help="Write .spatial index files (merges use them to check the forge finished).",
)
@click.option("--scale", default=4.0, type=float, show_default=True, help="TEASAR invalidation scale.")
@click.option("--const", default=10.0, type=float, show_default=True, help="TEASAR invalidation const (nm).")
@click.option("--soma-detect", default=1100.0, type=float, show_default=True, help="Soma detection DBF threshold (nm).")
@click.option("--soma-accept", default=3500.0, type=float, show_default=True, help="Soma acceptance DBF threshold (nm).")
@click.option("--soma-scale", default=1.0, type=float, show_default=True, help="Soma invalidation scale.")
@click.option("--soma-const", default=300.0, type=float, show_default=True, help="Soma invalidation const (nm).")
@click.option("--max-paths", default=None, type=float, help="Abort a label after N paths.")
@click.option("--sharded", is_flag=True, default=False, help="Write one .frags MapBuffer per task (for merge-sharded).")
@click.option("--labels", type=ListN(), default=None, help="Only skeletonize these label ids.")
@click.option(
    "--cross-section",
    default=0,
    type=int,
    show_default=True,
    help="Add a cross_sectional_area attribute; the value is the normal smoothing window (0: off).",
)
@click.option(
    "--cross-section-label-repair-sec",
    default=0,
    type=int,
    show_default=True,
    help="Per-label seconds to recompute sections cut by the task box in a larger box (-1: no limit, 0: off).",
)
@click.option("--output", "-o", "frag_path", type=CloudPath(), default=None, help="Write .frags elsewhere (frag_path).")
@click.option("--timestamp", default=None, type=int, help="(graphene only) Proofreading timestamp.")
@click.option("--root-ids", "root_ids", type=CloudPath(), default=None, help="(graphene only) Materialized root-id layer.")
@click.option("--progress", is_flag=True, default=False, help="Show progress bars.")
@click.pass_context
@dry_run_options
def forge(
    ctx, path, queue, mip, shape, fill_missing, fix_branching, fix_borders, fix_avocados, fix_autapses, fill_holes,
    dust_threshold, dust_global, spatial_index, scale, const, soma_detect, soma_accept, soma_scale, soma_const,
    max_paths, sharded, labels, cross_section, cross_section_label_repair_sec, frag_path, timestamp, root_ids,
    progress, dry_run,
):  # fmt: skip
    """(1) Forge skeleton fragments from a segmentation, one task per --shape box."""
    import igneous.task_creation as tc
    from igneous.task_creation import plans

    teasar_params = {
        "scale": scale,
        "const": const,
        "pdrf_exponent": 4,
        "pdrf_scale": 100000,
        "soma_detection_threshold": soma_detect,
        "soma_acceptance_threshold": soma_accept,
        "soma_invalidation_scale": soma_scale,
        "soma_invalidation_const": soma_const,
        "max_paths": max_paths,
    }
    tasks = (plans.plan_skeletonizing if dry_run else tc.create_skeletonizing_tasks)(
        path,
        mip,
        shape=shape,
        teasar_params=teasar_params,
        object_ids=list(labels) if labels else None,
        fix_branching=fix_branching,
        fix_borders=fix_borders,
        fix_avocados=fix_avocados,
        fill_holes=fill_holes,
        dust_threshold=dust_threshold,
        progress=progress,
        parallel=1,
        fill_missing=fill_missing,
        sharded=sharded,
        frag_path=frag_path,
        spatial_index=spatial_index,
        dust_global=dust_global,
        fix_autapses=fix_autapses,
        cross_sectional_area=(cross_section > 0),
        cross_sectional_area_smoothing_window=max(1, cross_section),
        timestamp=timestamp,
        root_ids_cloudpath=root_ids,
        cross_sectional_area_repair_sec_per_label=cross_section_label_repair_sec,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


def _postprocess_options(f):
    f = click.option(
        "--tick-threshold", default=0.0, type=float, show_default=True, help="Prune branches shorter than this (nm)."
    )(f)
    f = click.option(
        "--max-cable-length", default=None, type=float, help="Skip postprocessing for skeletons longer than this (nm)."
    )(f)
    f = click.option(
        "--min-cable-length", default=1000.0, type=float, show_default=True, help="Drop skeletons shorter than this (nm)."
    )(f)
    return f


@skeleton.command()
@click.argument("path", type=CloudPath())
@queue_option
@_postprocess_options
@click.option("--delete-fragments", is_flag=True, default=False, help="Delete fragment files after upload.")
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.pass_context
@dry_run_options
def merge(ctx, path, queue, min_cable_length, max_cable_length, tick_threshold, delete_fragments, magnitude, dry_run):
    """(2) Merge forged fragments into one skeleton per label."""
    import igneous.task_creation as tc
    from igneous.task_creation import plans

    tasks = (plans.plan_unsharded_skeleton_merge if dry_run else tc.create_unsharded_skeleton_merge_tasks)(
        path,
        crop=0,
        magnitude=magnitude,
        dust_threshold=min_cable_length,
        max_cable_length=max_cable_length,
        tick_threshold=tick_threshold,
        delete_fragments=delete_fragments,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


@skeleton.command("merge-sharded")
@click.argument("path", type=CloudPath())
@queue_option
@_postprocess_options
@click.option("--shard-index-bytes", default=2**13, type=int, show_default=True, help="Target shard index size.")
@click.option(
    "--minishard-index-bytes", default=2**15, type=int, show_default=True, help="Target minishard index size."
)
@click.option(
    "--max-labels-per-shard",
    default=2000,
    type=int,
    show_default=True,
    help="More shards so that a shard holds at most about N labels (bounds a task's memory).",
)
@click.option("--min-shards", default=1, type=int, show_default=True, help="At least this many shards.")
@click.option(
    "--minishard-index-encoding", default="gzip", type=click.Choice(["gzip", "raw"]), show_default=True,
    help="Minishard index encoding.",
)  # fmt: skip
@click.option(
    "--data-encoding", default="gzip", type=click.Choice(["gzip", "raw"]), show_default=True,
    help="Shard payload encoding.",
)  # fmt: skip
@click.option(
    "--spatial-index-db",
    default=None,
    help="SQL database from `igneous skeleton spatial-index db` (sqlite://… or mysql://…) to find labels faster.",
)
@click.pass_context
@dry_run_options
def merge_sharded(
    ctx, path, queue, min_cable_length, max_cable_length, tick_threshold, shard_index_bytes, minishard_index_bytes,
    max_labels_per_shard, min_shards, minishard_index_encoding, data_encoding, spatial_index_db, dry_run,
):  # fmt: skip
    """(2) Merge a sharded forge (`skeleton forge --sharded`) into sharded skeletons."""
    import igneous.task_creation as tc
    from igneous.task_creation import plans

    tasks = (plans.plan_sharded_skeleton_merge if dry_run else tc.create_sharded_skeleton_merge_tasks)(
        path,
        dust_threshold=min_cable_length,
        tick_threshold=tick_threshold,
        shard_index_bytes=shard_index_bytes,
        minishard_index_bytes=minishard_index_bytes,
        min_shards=min_shards,
        minishard_index_encoding=minishard_index_encoding,
        data_encoding=data_encoding,
        max_cable_length=max_cable_length,
        spatial_index_db=spatial_index_db,
        max_labels_per_shard=max_labels_per_shard,
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


@skeleton.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@queue_option
@click.option("--sharded", is_flag=True, default=False, help="Convert finished unsharded skeletons into shards.")
@click.option("--dir", "skel_dir", default=None, help="Skeleton directory (default info['skeletons']).")
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.pass_context
def xfer(ctx, src, dest, queue, sharded, skel_dir, magnitude):
    """Copy skeletons to another layer (or repack finished unsharded skeletons as shards)."""
    import igneous.task_creation as tc

    if sharded:
        tasks = tc.create_sharded_skeletons_from_unsharded_tasks(src, dest, skel_dir=skel_dir)
    else:
        tasks = tc.create_xfer_skeleton_tasks(src, dest, skel_dir=skel_dir, magnitude=magnitude)
    enqueue_tasks(ctx, queue, tasks)


@skeleton.command()
@click.argument("path", type=CloudPath())
@queue_option
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.option("--dir", "skel_dir", default=None, help="Skeleton directory (default info['skeletons']).")
@click.pass_context
def rm(ctx, path, queue, magnitude, skel_dir):
    """Delete a skeleton directory (its info at once, the files by tasks)."""
    import igneous.task_creation as tc

    enqueue_tasks(ctx, queue, tc.create_skeleton_deletion_tasks(path, magnitude=magnitude, skel_dir=skel_dir))


@skeleton.command()
@click.argument("src", type=CloudPath())
def clean(src):
    """Delete forging intermediates that no finished skeleton needs (never .spatial or info)."""
    from igneous.task_creation.skeleton import clean_skeleton_intermediates

    deleted, kept = clean_skeleton_intermediates(src)
    click.echo(f"deleted {deleted} intermediate file(s)")
    if kept:
        click.echo(f"kept: {kept}", err=True)


@skeleton.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=click.Path(file_okay=False, writable=True))
@click.argument("labels", type=ListN(), required=False)
def convert(src, dest, labels):
    """Write skeletons as SWC files DEST/{label}.swc ('-' as DEST: stdout, '# FILENAME' headers).

    LABELS (n,n,…) defaults to every finished skeleton of SRC.
    """
    from igneous.task_creation.skeleton import swc_files

    for filename, text in swc_files(src, list(labels) if labels else None):
        if dest == "-":
            click.echo(f"# {filename}")
            click.echo(text, nl=not text.endswith("\n"))
        else:
            os.makedirs(dest, exist_ok=True)
            with open(os.path.join(dest, filename), "w", encoding="utf-8") as f:
                f.write(text)


@click.group(name="spatial-index")
def spatial_index() -> None:
    """Spatial index of the skeletons: which labels each task box holds, and where."""


@spatial_index.command()
@click.argument("path", type=CloudPath())
@queue_option
@click.option(
    "--shape",
    type=Tuple3(),
    default=(512, 512, 512),
    show_default=True,
    help="Indexing task size in voxels; must be the forge's --shape when skeletons exist.",
)
@mip_option()
@fill_missing_option
@click.pass_context
def create(ctx, path, queue, shape, mip, fill_missing):
    """Write PATH's skeleton .spatial files from the segmentation (one task per --shape box)."""
    import igneous.task_creation as tc

    tasks = tc.create_spatial_index_skeleton_tasks(path, shape=shape, mip=mip, fill_missing=fill_missing)
    enqueue_tasks(ctx, queue, tasks)


@spatial_index.command()
@click.argument("path", type=CloudPath())
@click.argument("database", type=str)
@click.option("--progress", is_flag=True, default=False, help="Show progress bars.")
@click.option("--allow-missing", is_flag=True, default=False, help="Skip missing .spatial files instead of failing.")
@click.pass_context
def db(ctx, path, database, progress, allow_missing):
    """Load PATH's skeleton spatial index into DATABASE: sqlite://FILE or mysql://USER:PW@HOST[:PORT]/DB."""
    from igneous.task_creation.spatial_index import export_spatial_index_db

    export_spatial_index_db(
        path, database, progress=progress, allow_missing=allow_missing, parallel=get_parallel(ctx), kind="skeleton"
    )
    scheme = database.split("://", 1)[0] if "://" in database else "sqlite"
    click.echo(f"skeleton spatial index of {path} loaded into the {scheme} database", err=True)


skeleton.add_command(spatial_index)
