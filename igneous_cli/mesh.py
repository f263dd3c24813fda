"""`igneous mesh …`: forge, merge (legacy and multi-resolution), merge-sharded, xfer, rm, clean,
spatial-index. Commands live next to the group here or in sibling modules registered below."""

from __future__ import annotations

import click

from igneous_cli.common import enqueue_tasks
from igneous_cli.params import CloudPath, ListN, Tuple3, fill_missing_option, mip_option, queue_option
from igneous_cli.plan import dry_run_options

MAGNITUDE_HELP = "Split the work into about 10^N filename-prefix tasks."


@click.group()
def mesh() -> None:
    """Meshes: forge fragments from a segmentation, merge them for Neuroglancer, manage them."""


@mesh.command()
@click.argument("path", type=CloudPath())
@queue_option
@mip_option(help="Mesh the segmentation at this level.")
@click.option(
    "--shape",
    type=Tuple3(),
    default="448,448,448",
    show_default=True,
    help="Task size in voxels. Keep it ≤ 1021,1021,509 (zmesh's fast 32-bit mesher).",
)
@click.option(
    "--simplify/--skip-simplify", default=True, show_default=True, help="Quadric simplification (factor 100)."
)
@click.option("--max-error", default=40, type=int, show_default=True, help="Largest simplification error (nm).")
@fill_missing_option
@click.option(
    "--fill-holes",
    default=0,
    type=int,
    show_default=True,
    help="Hole filling level 0-3 (4+ lowers the merge threshold; max 103).",
)
@click.option("--dust-threshold", default=None, type=int, help="Skip labels smaller than N voxels (default: none).")
@click.option(
    "--dust-global/--dust-local",
    default=False,
    show_default=True,
    help="Judge dust by stats/voxel_counts.im (igneous image voxels count/sum) instead of per cutout.",
)
@click.option(
    "--dir", "mesh_dir", default=None, help="Mesh directory (default info['mesh'] or mesh_mip_{mip}_err_{err})."
)
@click.option("--compress", default="gzip", show_default=True, help="Fragment compression: none, gzip or br.")
@click.option(
    "--spatial-index/--skip-spatial-index",
    default=True,
    show_default=True,
    help="Write .spatial index files (merges use them to check the forge finished).",
)
@click.option("--sharded", is_flag=True, default=False, help="Write one .frags MapBuffer per task (for merge-sharded).")
@click.option(
    "--closed-edge/--open-edge",
    default=True,
    show_default=True,
    help="Close meshes where they meet the dataset boundary.",
)
@click.option("--labels", type=ListN(), default=None, help="Only mesh these label ids.")
@click.option("--exclude-labels", type=ListN(), default=None, help="Never mesh these label ids.")
@click.pass_context
@dry_run_options
def forge(
    ctx, path, queue, mip, shape, simplify, max_error, fill_missing, fill_holes, dust_threshold, dust_global,
    mesh_dir, compress, spatial_index, sharded, closed_edge, labels, exclude_labels, dry_run,
):  # fmt: skip
    """(1) Forge mesh fragments from a segmentation, one task per --shape box."""
    import igneous.task_creation as tc
    from igneous.task_creation import plans

    tasks = (plans.plan_meshing if dry_run else tc.create_meshing_tasks)(
        path,
        mip=mip,
        shape=shape,
        simplification=simplify,
        max_simplification_error=max_error,
        mesh_dir=mesh_dir,
        cdn_cache=False,
        dust_threshold=dust_threshold,
        object_ids=list(labels) if labels else None,
        progress=False,
        fill_missing=fill_missing,
        encoding="precomputed",
        spatial_index=spatial_index,
        sharded=sharded,
        compress=compress,
        closed_dataset_edges=closed_edge,
        dust_global=dust_global,
        fill_holes=fill_holes,
        exclude_object_ids=list(exclude_labels or []),
    )
    return dry_run.show(tasks) if dry_run else enqueue_tasks(ctx, queue, tasks)


@mesh.command()
@click.argument("path", type=CloudPath())
@queue_option
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.option(
    "--nlod",
    default=0,
    type=int,
    show_default=True,
    help="0: legacy JSON manifests; >0: unsharded multires with this many extra LODs.",
)
@click.option(
    "--vqb",
    default=16,
    type=int,
    show_default=True,
    help="(multires) vertex quantization bits, 10 or 16 (16 recommended).",
)
@click.option(
    "--min-chunk-size",
    type=Tuple3(),
    default="256,256,256",
    show_default=True,
    help="(multires) smallest LOD 0 fragment (voxels).",
)
@click.option("--dir", "mesh_dir", default=None, help="Mesh directory (default info['mesh']).")
@click.pass_context
@dry_run_options
def merge(ctx, path, queue, magnitude, nlod, vqb, min_chunk_size, mesh_dir, dry_run):
    """(2) Merge forged fragments into meshes Neuroglancer can load (legacy or multires)."""
    if nlod < 0:
        raise click.BadParameter("must be >= 0", param_hint="--nlod")
    if dry_run:
        from igneous.task_creation import plans

        if nlod == 0:
            return dry_run.show(plans.plan_mesh_manifest(path, magnitude=magnitude, mesh_dir=mesh_dir))
        return dry_run.show(
            plans.plan_unsharded_multires_merge(
                path, num_lod=nlod, magnitude=magnitude, mesh_dir=mesh_dir, vertex_quantization_bits=vqb,
                min_chunk_size=min_chunk_size,
            )
        )  # fmt: skip
    if nlod == 0:
        import igneous.task_creation as tc

        tasks = tc.create_mesh_manifest_tasks(path, magnitude=magnitude, mesh_dir=mesh_dir)
    else:
        from igneous.task_creation.multires import create_unsharded_multires_mesh_tasks

        tasks = create_unsharded_multires_mesh_tasks(
            path,
            num_lod=nlod,
            magnitude=magnitude,
            mesh_dir=mesh_dir,
            vertex_quantization_bits=vqb,
            min_chunk_size=min_chunk_size,
        )
    enqueue_tasks(ctx, queue, tasks)


@mesh.command()
@click.argument("src", type=CloudPath())
@click.argument("dest", type=CloudPath())
@queue_option
@click.option("--sharded", is_flag=True, default=False, help="Convert an unsharded mesh into sharded multires.")
@click.option("--dir", "mesh_dir", default=None, help="Mesh directory (default info['mesh']).")
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.option("--mip", default=None, type=int, help="Mesh mip, when the mesh info does not say.")
@click.option("--nlod", default=0, type=int, show_default=True, help="(sharded) extra levels of detail.")
@click.pass_context
def xfer(ctx, src, dest, queue, sharded, mesh_dir, magnitude, mip, nlod):
    """Copy meshes to another layer (or convert them to sharded multires)."""
    if sharded:
        from igneous.task_creation.multires import create_sharded_multires_mesh_from_unsharded_tasks

        tasks = create_sharded_multires_mesh_from_unsharded_tasks(src, dest, num_lod=nlod, mesh_dir=mesh_dir, mip=mip)
    else:
        import igneous.task_creation as tc

        tasks = tc.create_xfer_meshes_tasks(src, dest, mesh_dir=mesh_dir, magnitude=magnitude)
    enqueue_tasks(ctx, queue, tasks)


@mesh.command()
@click.argument("path", type=CloudPath())
@queue_option
@click.option("--magnitude", default=2, type=int, show_default=True, help=MAGNITUDE_HELP)
@click.option("--dir", "mesh_dir", default=None, help="Mesh directory (default info['mesh']).")
@click.pass_context
def rm(ctx, path, queue, magnitude, mesh_dir):
    """Delete a mesh directory (its info at once, the files by tasks)."""
    import igneous.task_creation as tc

    enqueue_tasks(ctx, queue, tc.create_mesh_deletion_tasks(path, magnitude=magnitude, mesh_dir=mesh_dir))


@mesh.command()
@click.argument("src", type=CloudPath())
@click.option("--dir", "mesh_dir", default=None, help="Mesh directory (default info['mesh']).")
def clean(src, mesh_dir):
    """Delete forging intermediates that no finished mesh needs (never .spatial or info)."""
    from igneous.task_creation.mesh import clean_mesh_intermediates

    deleted, kept = clean_mesh_intermediates(src, mesh_dir=mesh_dir)
    click.echo(f"deleted {deleted} intermediate file(s)")
    if kept:
        click.echo(f"kept: {kept}", err=True)


# Other meshing modules register their commands below (merge-sharded, spatial-index).
from igneous_cli import mesh_spatial  # noqa: E402

mesh.add_command(mesh_spatial.spatial_index)

from igneous_cli import mesh_multires  # noqa: E402

mesh.add_command(mesh_multires.merge_sharded)
