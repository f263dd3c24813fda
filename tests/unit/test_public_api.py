"""The public names users script against (SPEC §2, §2.5, §3). Changing them breaks users."""

from __future__ import annotations

import inspect

import igneous
import igneous.downsample_scales as dss
import igneous.task_creation as tc
import igneous.task_creation.common as common
import igneous.task_creation.image as tci
import igneous.tasks
from igneous.types import DownsampleMethods

TASK_CREATION = {
    "create_downsampling_tasks",
    "create_transfer_tasks",
    "create_deletion_tasks",
    "create_blackout_tasks",
    "create_touch_tasks",
    "create_quantized_affinity_info",
    "create_quantize_tasks",
    "create_reordering_tasks",
    "create_fixup_downsample_tasks",
    "create_image_shard_transfer_tasks",
    "create_image_shard_downsample_tasks",
    # meshes (SPEC §2.2)
    "create_meshing_tasks",
    "create_mesh_manifest_tasks",
    "create_spatial_index_mesh_tasks",
    "create_unsharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_tasks",
    "create_sharded_multires_mesh_from_unsharded_tasks",
    "create_xfer_meshes_tasks",
    "create_mesh_deletion_tasks",
    "create_voxel_counting_tasks",
    "accumulate_voxel_counts",
    # skeletons (SPEC §2.3)
    "create_skeletonizing_tasks",
    "create_unsharded_skeleton_merge_tasks",
    "create_sharded_skeleton_merge_tasks",
    "create_flat_graphene_skeleton_merge_tasks",
    "create_skeleton_deletion_tasks",
    "create_xfer_skeleton_tasks",
    "create_sharded_skeletons_from_unsharded_tasks",
    "create_spatial_index_skeleton_tasks",
}
TASKS = {
    "TransferTask",
    "DownsampleTask",
    "DeleteTask",
    "BlackoutTask",
    "TouchTask",
    "QuantizeTask",
    "downsample_and_upload",
    "ImageShardTransferTask",
    "ImageShardDownsampleTask",
    "CountVoxelsTask",
    "SpatialIndexTask",
    "MeshTask",
    "MeshManifestPrefixTask",
    "MeshManifestFilesystemTask",
    "TransferMeshFilesTask",
    "DeleteMeshFilesTask",
    # skeletons (SPEC §3.5)
    "SkeletonTask",
    "UnshardedSkeletonMergeTask",
    "ShardedSkeletonMergeTask",
    "ShardedFromUnshardedSkeletonMergeTask",
    "DeleteSkeletonFilesTask",
    "TransferSkeletonFilesTask",
}


def test_task_creation_exports_are_frozen():
    assert set(tc.__all__) == TASK_CREATION
    for name in TASK_CREATION:
        assert callable(getattr(tc, name))


def test_tasks_exports_are_frozen():
    assert set(igneous.tasks.__all__) == TASKS
    from igneous.tasks.image import ReorderTask  # importable only from igneous.tasks.image

    assert callable(ReorderTask)


def test_top_level_reexports():
    for name in TASKS | {
        "CloudVolume",
        "EmptyVolumeException",
        "LocalTaskQueue",
        "MockTaskQueue",
        "TaskQueue",
        "RegisteredTask",
        "__version__",
    }:
        assert hasattr(igneous, name), name


def test_downsample_methods_wire_values():
    assert {m.name: int(m) for m in DownsampleMethods} == {
        "AVERAGE_POOLING": 1,
        "MODE_POOLING": 2,
        "MIN_POOLING": 3,
        "MAX_POOLING": 4,
        "STRIDING": 5,
        "AUTO": 6,
    }


def test_spec_helpers_importable_with_signatures():
    expect = {
        dss.downsample_shape_from_memory_target: ["data_width", "cx", "cy", "cz", "factor", "byte_target", "max_mips"],
        dss.create_downsample_scales: [
            "layer_path",
            "mip",
            "ds_shape",
            "axis",
            "preserve_chunk_size",
            "chunk_size",
            "encoding",
            "factor",
            "max_mips",
        ],
        dss.compute_factors: ["ds_shape", "factor", "chunk_size", "volume_size"],
        common.get_bounds: ["vol", "bounds", "mip", "bounds_mip", "chunk_size"],
        common.num_tasks: ["bounds", "shape"],
        common.set_encoding: ["cv", "mip", "encoding", "encoding_level", "encoding_effort"],
        tci.num_mips_from_memory_target: ["memory_target", "dtype", "chunk_size", "num_channels", "factor"],
        tci.create_reordering_tasks: [
            "src",
            "dest",
            "mip",
            "sequence",
            "fill_missing",
            "compress",
            "delete_black_uploads",
            "background_color",
            "encoding",
            "encoding_level",
            "encoding_effort",
        ],
        tci.create_fixup_downsample_tasks: ["layer_path", "points", "shape", "mip", "axis"],
    }
    for fn, params in expect.items():
        assert list(inspect.signature(fn).parameters) == params, fn.__name__


def test_creator_signatures_match_spec_defaults():
    sig = inspect.signature(tc.create_downsampling_tasks)
    assert [p for p in sig.parameters] == [
        "layer_path",
        "mip",
        "fill_missing",
        "axis",
        "num_mips",
        "preserve_chunk_size",
        "sparse",
        "bounds",
        "chunk_size",
        "encoding",
        "delete_black_uploads",
        "background_color",
        "dest_path",
        "compress",
        "factor",
        "bounds_mip",
        "memory_target",
        "encoding_level",
        "encoding_effort",
        "method",
        "codec_threads",
    ]
    assert sig.parameters["memory_target"].default == 3_500_000_000
    sig = inspect.signature(tc.create_transfer_tasks)
    assert sig.parameters["compress"].default == "auto" and sig.parameters["max_mips"].default == 5
    assert len(sig.parameters) == 31


def test_wire_keys_registered():
    from taskqueue.queueablefns import REGISTRY

    for name in [
        "BlackoutTask",
        "CountVoxelsTask",
        "DeleteTask",
        "DownsampleTask",
        "QuantizeTask",
        "ReorderTask",
        "TouchTask",
        "TransferTask",
    ]:
        assert ("igneous.tasks.image.image", name) in REGISTRY, name


def test_mesh_wire_keys_registered():
    from taskqueue.queueablefns import REGISTRY
    from taskqueue.registered_task import REGISTRY as CLASSES

    assert "MeshTask" in CLASSES
    for name in ["MeshManifestPrefixTask", "MeshManifestFilesystemTask", "TransferMeshFilesTask", "DeleteMeshFilesTask"]:
        assert ("igneous.tasks.mesh.mesh", name) in REGISTRY, name


def test_mesh_creator_signatures_match_spec():
    sig = inspect.signature(tc.create_meshing_tasks)
    assert list(sig.parameters) == [
        "layer_path", "mip", "shape", "simplification", "max_simplification_error", "mesh_dir", "cdn_cache",
        "dust_threshold", "object_ids", "progress", "fill_missing", "encoding", "spatial_index", "frag_path",
        "sharded", "compress", "closed_dataset_edges", "dust_global", "fill_holes", "dry_run", "exclude_object_ids",
    ]  # fmt: skip
    assert sig.parameters["shape"].default == (448, 448, 448)
    assert sig.parameters["max_simplification_error"].default == 40.0
    assert list(inspect.signature(tc.create_mesh_manifest_tasks).parameters) == ["layer_path", "magnitude", "mesh_dir"]
    assert inspect.signature(tc.create_xfer_meshes_tasks).parameters["magnitude"].default == 2
    assert inspect.signature(tc.create_mesh_deletion_tasks).parameters["magnitude"].default == 3
    from igneous.task_creation.mesh import configure_multires_info  # SPEC §2.5: submodule only

    assert "configure_multires_info" not in tc.__all__ and callable(configure_multires_info)


def test_spatial_index_wire_key_and_signature():
    from taskqueue.queueablefns import REGISTRY

    from igneous.task_creation.spatial_index import create_spatial_index_mesh_tasks

    assert ("igneous.tasks.spatial_index", "SpatialIndexTask") in REGISTRY
    assert list(inspect.signature(igneous.tasks.SpatialIndexTask).parameters) == [
        "cloudpath", "shape", "offset", "subdir", "precision", "mip", "fill_missing", "compress",
    ]  # fmt: skip
    sig = inspect.signature(create_spatial_index_mesh_tasks)
    assert list(sig.parameters) == ["cloudpath", "shape", "mip", "fill_missing", "compress", "mesh_dir"]
    assert sig.parameters["shape"].default == (448, 448, 448) and sig.parameters["compress"].default == "gzip"
    sig = inspect.signature(tc.create_voxel_counting_tasks)
    assert list(sig.parameters) == ["cloudpath", "mip", "fill_missing", "agglomerate", "timestamp"]
    sig = inspect.signature(tc.accumulate_voxel_counts)
    assert list(sig.parameters) == ["cloudpath", "mip", "progress", "compress", "additional_output"]
    assert sig.parameters["progress"].default is True and sig.parameters["compress"].default is None


def test_skeleton_signatures_and_wire_keys():
    from taskqueue.queueablefns import REGISTRY as FUNCTIONS
    from taskqueue.registered_task import REGISTRY as CLASSES

    from igneous.task_creation.skeleton import bounds_from_mesh, synapses_in_space

    sig = inspect.signature(tc.create_skeletonizing_tasks)
    assert list(sig.parameters) == [
        "cloudpath", "mip", "shape", "teasar_params", "info", "object_ids", "mask_ids", "fix_branching",
        "fix_borders", "fix_avocados", "fill_holes", "dust_threshold", "progress", "parallel", "fill_missing",
        "sharded", "frag_path", "spatial_index", "synapses", "num_synapses", "dust_global", "fix_autapses",
        "cross_sectional_area", "cross_sectional_area_smoothing_window", "timestamp", "root_ids_cloudpath",
        "cross_sectional_area_repair_sec_per_label",
    ]  # fmt: skip
    assert list(sig.parameters["shape"].default) == [512, 512, 512]
    assert sig.parameters["teasar_params"].default == {"scale": 10, "const": 10}
    assert sig.parameters["cross_sectional_area_smoothing_window"].default == 5
    assert list(inspect.signature(tc.create_unsharded_skeleton_merge_tasks).parameters) == [
        "layer_path", "crop", "magnitude", "dust_threshold", "max_cable_length", "tick_threshold", "delete_fragments",
    ]  # fmt: skip
    assert list(inspect.signature(tc.create_sharded_skeleton_merge_tasks).parameters) == [
        "layer_path", "dust_threshold", "tick_threshold", "shard_index_bytes", "minishard_index_bytes", "min_shards",
        "minishard_index_encoding", "data_encoding", "max_cable_length", "frag_path", "cache", "spatial_index_db",
        "max_labels_per_shard",
    ]  # fmt: skip
    assert inspect.signature(tc.create_skeleton_deletion_tasks).parameters["magnitude"].default == 2
    assert inspect.signature(tc.create_spatial_index_skeleton_tasks).parameters["shape"].default == (448, 448, 448)
    assert list(inspect.signature(bounds_from_mesh).parameters) == ["vol", "shape", "labels"]
    assert list(inspect.signature(synapses_in_space).parameters) == ["synapse_itr", "N"]
    assert len(inspect.signature(igneous.tasks.SkeletonTask).parameters) == 33
    for name in ("SkeletonTask", "UnshardedSkeletonMergeTask", "ShardedSkeletonMergeTask"):
        assert name in CLASSES
    for name in ("ShardedFromUnshardedSkeletonMergeTask", "DeleteSkeletonFilesTask", "TransferSkeletonFilesTask"):
        assert ("igneous.tasks.skeleton", name) in FUNCTIONS
