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
    # graphene (SPEC §2.2), EyeWire (§2.1), obsolete (§2.4)
    "create_graphene_meshing_tasks",
    "create_graphene_hybrid_mesh_manifest_tasks",
    "create_hypersquare_ingest_tasks",
    "create_hypersquare_consensus_tasks",
    "create_inference_tasks",
    "create_watershed_remap_tasks",
    "create_mask_affinity_map_tasks",
    # contrast and ROI (SPEC §2.1, issue 13)
    "create_luminance_levels_tasks",
    "create_contrast_normalization_tasks",
    "create_clahe_tasks",
    "compute_rois",
    # connected components (SPEC §2.1)
    "create_ccl_face_tasks",
    "create_ccl_equivalence_tasks",
    "create_ccl_relabel_tasks",
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
    "MultiResUnshardedMeshMergeTask",
    "MultiResShardedMeshMergeTask",
    "MultiResShardedFromUnshardedMeshMergeTask",
    "GrapheneMeshTask",
    "HyperSquareConsensusTask",
    "WatershedRemapTask",
    "MaskAffinitymapTask",
    "InferenceTask",
    "CLAHETask",
    "ContrastNormalizationTask",
    "LuminanceLevelsTask",
    "CCLFacesTask",
    "CCLEquivalancesTask",
    "RelabelCCLTask",
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


# -- SPEC §2 parameters and defaults of the creators added for issue 10 --------------------------

SPEC_SIGNATURES = {
    "create_image_shard_transfer_tasks": (
        "src_layer_path, dst_layer_path, mip=0, chunk_size=None, encoding=None, bounds=None, bounds_mip=0, "
        "fill_missing=False, translate=(0,0,0), dest_voxel_offset=None, agglomerate=False, timestamp=None, "
        "memory_target=3500000000, clean_info=False, encoding_level=None, truncate_scales=True, compress='auto', "
        "cutout=False, minishard_index_encoding='gzip', stop_layer=None, encoding_effort=None, "
        "use_https_for_source=False"
    ),
    "create_hypersquare_ingest_tasks": (
        "hypersquare_bucket_name, dataset_name, hypersquare_chunk_size, resolution, voxel_offset, volume_size, overlap"
    ),
    "create_hypersquare_consensus_tasks": "src_path, dest_path, volume_map_file, consensus_map_path",
    "create_graphene_meshing_tasks": (
        "cloudpath, timestamp, mip, simplification=True, max_simplification_error=40, mesh_dir=None, "
        "cdn_cache=False, object_ids=None, progress=False, fill_missing=False, sharding=None, "
        "draco_compression_level=1, bounds=None"
    ),
    "create_graphene_hybrid_mesh_manifest_tasks": "cloudpath, mip, mip_bits, x_bits, y_bits, z_bits",
    "create_inference_tasks": (
        "image_layer_path, convnet_path, mask_layer_path, output_layer_path, output_block_start, "
        "output_block_size, grid_size, patch_size, patch_overlap, cropping_margin_size, output_key='output', "
        "num_output_channels=3, image_mip=1, output_mip=1, mask_mip=3"
    ),
    "create_watershed_remap_tasks": "map_path, src_layer_path, dest_layer_path, shape=(2048,2048,64)",
    "create_mask_affinity_map_tasks": (
        "aff_input_layer_path, aff_output_layer_path, aff_mip, mask_layer_path, mask_mip, output_block_start, "
        "output_block_size, grid_size"
    ),
}


def _spec_params(text: str) -> list:
    """``"a, b=1, c=(0,0,0)"`` → [("a", EMPTY), ("b", 1), ("c", (0, 0, 0))]."""
    import ast

    tree = ast.parse(f"def f({text}): pass").body[0].args
    names = [a.arg for a in tree.args]
    defaults = [ast.literal_eval(d) for d in tree.defaults]
    empty = [inspect.Parameter.empty] * (len(names) - len(defaults))
    return list(zip(names, empty + defaults))


def _normal(value):
    if isinstance(value, (list, tuple)) or type(value).__name__ == "Vec":
        return tuple(int(v) if float(v).is_integer() else v for v in value)
    return value


def test_new_creators_have_spec_parameters_and_defaults():
    for name, text in SPEC_SIGNATURES.items():
        params = inspect.signature(getattr(tc, name)).parameters
        got = [(p.name, _normal(p.default)) for p in params.values()]
        assert got == [(n, _normal(d)) for n, d in _spec_params(text)], name


def test_obsolete_and_graphene_submodules():
    import igneous.task_creation.obsolete as obsolete
    from igneous.task_creation.common import graphene_prefixes

    assert set(obsolete.__all__) == {
        "create_inference_tasks",
        "create_watershed_remap_tasks",
        "create_mask_affinity_map_tasks",
    }
    assert list(inspect.signature(graphene_prefixes).parameters) == ["mip", "mip_bits", "coord_bits", "prefix_length"]
    assert [p.default for p in inspect.signature(graphene_prefixes).parameters.values()] == [1, 8, (10, 10, 10), 6]


def test_task_signatures_match_spec():
    from igneous.tasks.image.image import downsample_method_to_fn

    expect = {
        igneous.HyperSquareConsensusTask: "src_path, dest_path, ew_volume_id, consensus_map_path, shape, offset",
        igneous.WatershedRemapTask: "map_path, src_path, dest_path, shape, offset",
        igneous.MaskAffinitymapTask: (
            "aff_input_layer_path, aff_output_layer_path, aff_mip, mask_layer_path, mask_mip, bounds"
        ),
        igneous.InferenceTask: (
            "image_layer_path, convnet_path, mask_layer_path, output_layer_path, output_offset, output_shape, "
            "patch_size, patch_overlap, cropping_margin_size, output_key='output', num_output_channels=3, "
            "image_mip=1, output_mip=1, mask_mip=3"
        ),
        igneous.MultiResUnshardedMeshMergeTask: (
            "cloudpath, prefix, cache_control=False, draco_compression_level=1, mesh_dir=None, num_lod=1, "
            "min_chunk_size=(512,512,512), progress=False"
        ),
        igneous.MultiResShardedMeshMergeTask: (
            "cloudpath, shard_no, draco_compression_level=1, mesh_dir=None, frag_path=None, cache=False, "
            "num_lod=1, spatial_index_db=None, min_chunk_size=(128,128,128), progress=False"
        ),
        igneous.MultiResShardedFromUnshardedMeshMergeTask: (
            "src, dest, shard_no, cache_control=False, draco_compression_level=1, mesh_dir=None, num_lod=1, "
            "progress=False, min_chunk_size=(512,512,512)"
        ),
        downsample_method_to_fn: "method, sparse, vol",
    }
    for fn, text in expect.items():
        params = inspect.signature(fn).parameters
        got = [(p.name, _normal(p.default)) for p in params.values()]
        assert got == [(n, _normal(d)) for n, d in _spec_params(text)], fn.__name__
    assert list(inspect.signature(igneous.GrapheneMeshTask).parameters) == ["cloudpath", "shape", "offset", "mip",
                                                                           "kwargs"]  # fmt: skip


def test_multires_helpers_signatures():
    from igneous.tasks.mesh import multires

    expect = {
        "generate_lods": (
            "label, mesh, mesh_shape, min_chunk_size, num_lods, decimation_factor=2, aggressiveness=7, "
            "progress=False, max_triangle_target_per_chunk=2000000"
        ),
        "determine_mesh_shape_from_lods": "lods",
        "retriangulate_mesh": "mesh, offset, scale",
        "create_octree_level_from_mesh": "mesh, chunk_shape, lod, num_lods, offset, grid_length",
        "process_mesh": "cv, label, mesh, num_lod, min_chunk_size=(512,512,512), draco_compression_level=7",
        "cmp_zorder": "lhs, rhs",
    }
    for name, text in expect.items():
        params = inspect.signature(getattr(multires, name)).parameters
        got = [(p.name, _normal(p.default)) for p in params.values()]
        assert got == [(n, _normal(d)) for n, d in _spec_params(text)], name


def test_igneous_cli_helpers_importable():
    import igneous_cli

    for name in ["main", "numberify", "normalize_path", "normalize_encoding", "compute_bounds", "enqueue_tasks",
                 "is_empty", "parallel_execute_helper", "execute_helper", "memory_used", "natural_time_delta",
                 "normalize_file_ext", "read_array_header", "is_port_in_use", "ListN", "Tuple34", "Tuple3",
                 "Tuple2", "EncodingType", "CompressType", "CloudPath", "DownsampleMethodType"]:  # fmt: skip
        assert hasattr(igneous_cli, name), name
        assert name in igneous_cli.__all__, name


def test_every_spec_task_is_importable_from_igneous_and_igneous_tasks():
    """SPEC §3: every task (except ReorderTask) from both namespaces; the ones other branches
    build (CCL, skeletons) are checked once their modules exist."""
    import importlib.util

    spec_tasks = {
        "igneous.tasks.image.image": ["DeleteTask", "BlackoutTask", "TouchTask", "QuantizeTask", "TransferTask",
                                      "DownsampleTask", "ImageShardTransferTask", "ImageShardDownsampleTask",
                                      "CountVoxelsTask"],
        "igneous.tasks.image.obsolete": ["HyperSquareConsensusTask", "WatershedRemapTask", "MaskAffinitymapTask",
                                         "InferenceTask"],
        "igneous.tasks.mesh": ["MeshTask", "GrapheneMeshTask", "MeshManifestPrefixTask", "MeshManifestFilesystemTask",
                               "TransferMeshFilesTask", "DeleteMeshFilesTask", "MultiResUnshardedMeshMergeTask",
                               "MultiResShardedMeshMergeTask", "MultiResShardedFromUnshardedMeshMergeTask"],
        "igneous.tasks.spatial_index": ["SpatialIndexTask"],
        "igneous.tasks.image.ccl": ["CCLFacesTask", "CCLEquivalancesTask", "RelabelCCLTask"],
        "igneous.tasks.skeleton": ["SkeletonTask", "UnshardedSkeletonMergeTask", "ShardedSkeletonMergeTask",
                                   "ShardedFromUnshardedSkeletonMergeTask", "DeleteSkeletonFilesTask",
                                   "TransferSkeletonFilesTask"],
    }  # fmt: skip
    for module, names in spec_tasks.items():
        if importlib.util.find_spec(module) is None:
            continue
        for name in names:
            assert hasattr(igneous, name), name
            assert hasattr(igneous.tasks, name) and name in igneous.tasks.__all__, name
    assert "ReorderTask" not in igneous.tasks.__all__


# -- SPEC §2.1–2.4 verbatim: the 41 functions of igneous.task_creation ----------------------------

SPEC_2 = """
    create_downsampling_tasks(layer_path, mip=0, fill_missing=False, axis='z', num_mips=None, preserve_chunk_size=True, sparse=False, bounds=None, chunk_size=None, encoding=None, delete_black_uploads=False, background_color=0, dest_path=None, compress=None, factor=None, bounds_mip=0, memory_target=3500000000, encoding_level=None, encoding_effort=None, method=DownsampleMethods.AUTO, codec_threads=1)
    create_image_shard_downsample_tasks(cloudpath, mip=0, fill_missing=False, sparse=False, chunk_size=None, encoding=None, memory_target=3500000000, agglomerate=False, timestamp=None, factor=(2,2,1), bounds=None, bounds_mip=0, encoding_level=None, encoding_effort=None, method=DownsampleMethods.AUTO, num_mips=None, truncate_scales=True, codec_threads=1)
    create_transfer_tasks(src_layer_path, dest_layer_path, chunk_size=None, shape=None, fill_missing=False, translate=None, bounds=None, mip=0, preserve_chunk_size=True, encoding=None, skip_downsamples=False, delete_black_uploads=False, background_color=0, agglomerate=False, timestamp=None, compress='auto', factor=None, sparse=False, dest_voxel_offset=None, memory_target=3500000000, max_mips=5, clean_info=False, no_src_update=False, bounds_mip=0, encoding_level=None, truncate_scales=True, cutout=False, stop_layer=None, downsample_method=DownsampleMethods.AUTO, encoding_effort=None, use_https_for_source=False)
    create_image_shard_transfer_tasks(src_layer_path, dst_layer_path, mip=0, chunk_size=None, encoding=None, bounds=None, bounds_mip=0, fill_missing=False, translate=(0,0,0), dest_voxel_offset=None, agglomerate=False, timestamp=None, memory_target=3500000000, clean_info=False, encoding_level=None, truncate_scales=True, compress='auto', cutout=False, minishard_index_encoding='gzip', stop_layer=None, encoding_effort=None, use_https_for_source=False)
    create_deletion_tasks(layer_path, mip=0, num_mips=5, shape=None, bounds=None)
    create_blackout_tasks(cloudpath, bounds, mip=0, shape=(2048,2048,64), value=0, non_aligned_writes=False)
    create_touch_tasks(cloudpath, mip=0, shape=(2048,2048,64), bounds=None)
    create_quantized_affinity_info(src_layer, dest_layer, shape, mip, chunk_size, encoding)
    create_quantize_tasks(src_layer, dest_layer, shape, mip=0, fill_missing=False, chunk_size=(128,128,64), encoding='raw', bounds=None)
    create_hypersquare_ingest_tasks(hypersquare_bucket_name, dataset_name, hypersquare_chunk_size, resolution, voxel_offset, volume_size, overlap)
    create_hypersquare_consensus_tasks(src_path, dest_path, volume_map_file, consensus_map_path)
    create_luminance_levels_tasks(layer_path, levels_path=None, coverage_factor=0.01, shape=None, offset=None, mip=0, bounds_mip=0, bounds=None)
    create_contrast_normalization_tasks(src_path, dest_path, levels_path=None, shape=None, mip=0, clip_fraction=0.01, fill_missing=False, translate=(0,0,0), minval=None, maxval=None, bounds=None, bounds_mip=0)
    create_clahe_tasks(src, dest, shape=None, mip=0, fill_missing=False, bounds=None, bounds_mip=0, clip_limit=40.0, tile_grid_size=(8,8))
    create_ccl_face_tasks(cloudpath, mip, shape=(512,512,512), threshold_gte=None, threshold_lte=None, fill_missing=False, dust_threshold=0)
    create_ccl_equivalence_tasks(cloudpath, mip, shape=(512,512,512), threshold_gte=None, threshold_lte=None, fill_missing=False, dust_threshold=0)
    create_ccl_relabel_tasks(src_path, dest_path, mip, shape=(512,512,512), chunk_size=None, encoding=None, threshold_gte=None, threshold_lte=None, fill_missing=False, dust_threshold=0)
    create_voxel_counting_tasks(cloudpath, mip, fill_missing=False, agglomerate=False, timestamp=None)
    accumulate_voxel_counts(cloudpath, mip, progress=True, compress=None, additional_output=None)
    create_meshing_tasks(layer_path, mip, shape=(448,448,448), simplification=True, max_simplification_error=40.0, mesh_dir=None, cdn_cache=False, dust_threshold=None, object_ids=None, progress=False, fill_missing=False, encoding='precomputed', spatial_index=True, frag_path=None, sharded=False, compress='gzip', closed_dataset_edges=True, dust_global=False, fill_holes=0, dry_run=False, exclude_object_ids=[])
    create_mesh_manifest_tasks(layer_path, magnitude=3, mesh_dir=None)
    create_graphene_meshing_tasks(cloudpath, timestamp, mip, simplification=True, max_simplification_error=40, mesh_dir=None, cdn_cache=False, object_ids=None, progress=False, fill_missing=False, sharding=None, draco_compression_level=1, bounds=None)
    create_graphene_hybrid_mesh_manifest_tasks(cloudpath, mip, mip_bits, x_bits, y_bits, z_bits)
    create_spatial_index_mesh_tasks(cloudpath, shape=(448,448,448), mip=0, fill_missing=False, compress='gzip', mesh_dir=None)
    create_unsharded_multires_mesh_tasks(cloudpath, num_lod=0, magnitude=3, mesh_dir=None, vertex_quantization_bits=16, min_chunk_size=(256,256,256))
    create_sharded_multires_mesh_tasks(cloudpath, shard_index_bytes=8192, minishard_index_bytes=32768, min_shards=1, num_lod=0, draco_compression_level=7, vertex_quantization_bits=16, minishard_index_encoding='gzip', mesh_dir=None, spatial_index_db=None, frag_path=None, cache=False, min_chunk_size=(256,256,256), max_labels_per_shard=None, progress=True)
    create_sharded_multires_mesh_from_unsharded_tasks(src, dest, shard_index_bytes=8192, minishard_index_bytes=32768, min_shards=1, num_lod=0, draco_compression_level=1, vertex_quantization_bits=16, minishard_index_encoding='gzip', mesh_dir=None, mip=None)
    create_xfer_meshes_tasks(src, dest, mesh_dir=None, magnitude=2)
    create_mesh_deletion_tasks(layer_path, magnitude=3, mesh_dir=None)
    create_skeletonizing_tasks(cloudpath, mip, shape=Vec(512,512,512), teasar_params={'scale':10,'const':10}, info=None, object_ids=None, mask_ids=None, fix_branching=True, fix_borders=True, fix_avocados=False, fill_holes=0, dust_threshold=1000, progress=False, parallel=1, fill_missing=False, sharded=False, frag_path=None, spatial_index=True, synapses=None, num_synapses=None, dust_global=False, fix_autapses=False, cross_sectional_area=False, cross_sectional_area_smoothing_window=5, timestamp=None, root_ids_cloudpath=None, cross_sectional_area_repair_sec_per_label=0)
    create_unsharded_skeleton_merge_tasks(layer_path, crop=0, magnitude=3, dust_threshold=4000, max_cable_length=None, tick_threshold=6000, delete_fragments=False)
    create_sharded_skeleton_merge_tasks(layer_path, dust_threshold, tick_threshold, shard_index_bytes=8192, minishard_index_bytes=32768, min_shards=1, minishard_index_encoding='gzip', data_encoding='gzip', max_cable_length=None, frag_path=None, cache=False, spatial_index_db=None, max_labels_per_shard=None)
    create_flat_graphene_skeleton_merge_tasks(cloudpath, mip, crop=0, dust_threshold=4000, tick_threshold=6000, delete_fragments=False)
    create_skeleton_deletion_tasks(cloudpath, magnitude=2, skel_dir=None)
    create_xfer_skeleton_tasks(src, dest, skel_dir=None, magnitude=2)
    create_sharded_skeletons_from_unsharded_tasks(src, dest, shard_index_bytes=8192, minishard_index_bytes=32768, min_shards=1, minishard_index_encoding='gzip', data_encoding='gzip', skel_dir=None)
    create_spatial_index_skeleton_tasks(cloudpath, shape=(448,448,448), mip=0, fill_missing=False, compress='gzip', skel_dir=None)
    create_inference_tasks(image_layer_path, convnet_path, mask_layer_path, output_layer_path, output_block_start, output_block_size, grid_size, patch_size, patch_overlap, cropping_margin_size, output_key='output', num_output_channels=3, image_mip=1, output_mip=1, mask_mip=3)
    create_watershed_remap_tasks(map_path, src_layer_path, dest_layer_path, shape=Vec(2048,2048,64))
    create_mask_affinity_map_tasks(aff_input_layer_path, aff_output_layer_path, aff_mip, mask_layer_path, mask_mip, output_block_start, output_block_size, grid_size)
    compute_rois(cloudpath, progress=False, suppress_faint_voxels=0, dust_threshold=10, max_axial_length=512, z_step=None)
"""


def _spec_table() -> dict:
    import re

    table = {}
    for line in SPEC_2.strip().splitlines():
        name, params = re.match(r"\s*(\w+)\((.*)\)\s*$", line).groups()
        params = re.sub(r"Vec\(([^)]*)\)", r"(\1)", params).replace("DownsampleMethods.AUTO", "6")
        table[name] = _spec_params(params)
    return table


def test_spec_lists_41_functions():
    assert len(_spec_table()) == 41


def test_every_spec_2_function_present_has_spec_parameters_and_defaults():
    """Functions other branches are still building (skeletons, CCL, contrast, ROIs) are checked
    once ``igneous.task_creation`` exports them; every one that is exported must match. Extra
    keyword parameters after SPEC's are extensions (e.g. ``min_chunk_size`` of the multires
    creators) and must have defaults."""
    for name, params in _spec_table().items():
        if name not in tc.__all__:
            continue
        got = [(p.name, _normal(p.default)) for p in inspect.signature(getattr(tc, name)).parameters.values()]
        want = [(n, _normal(d)) for n, d in params]
        # SPEC's parameters in SPEC's order; our additions may only follow, with defaults
        assert got[: len(want)] == want, name
        assert all(d is not inspect.Parameter.empty for _, d in got[len(want) :]), name
def test_contrast_and_roi_signatures_match_spec():
    """SPEC §2.1 / §3.1 parameter order and defaults (issue 13)."""
    from taskqueue.queueablefns import REGISTRY
    from taskqueue.registered_task import REGISTRY as CLASSES

    assert list(inspect.signature(tc.create_luminance_levels_tasks).parameters) == [
        "layer_path", "levels_path", "coverage_factor", "shape", "offset", "mip", "bounds_mip", "bounds",
    ]  # fmt: skip
    assert list(inspect.signature(tc.create_contrast_normalization_tasks).parameters) == [
        "src_path", "dest_path", "levels_path", "shape", "mip", "clip_fraction", "fill_missing", "translate",
        "minval", "maxval", "bounds", "bounds_mip",
    ]  # fmt: skip
    sig = inspect.signature(tc.create_clahe_tasks)
    assert list(sig.parameters) == [
        "src", "dest", "shape", "mip", "fill_missing", "bounds", "bounds_mip", "clip_limit", "tile_grid_size",
    ]  # fmt: skip
    assert sig.parameters["clip_limit"].default == 40.0 and tuple(sig.parameters["tile_grid_size"].default) == (8, 8)
    sig = inspect.signature(tc.compute_rois)
    assert list(sig.parameters) == [
        "cloudpath", "progress", "suppress_faint_voxels", "dust_threshold", "max_axial_length", "z_step",
    ]  # fmt: skip
    assert ("igneous.tasks.image.image", "CLAHETask") in REGISTRY
    assert ("igneous.tasks.image.ingest", "ImageStackIngestTask") in REGISTRY
    assert {"LuminanceLevelsTask", "ContrastNormalizationTask"} <= set(CLASSES)
    assert list(inspect.signature(igneous.tasks.CLAHETask).parameters) == [
        "src", "dest", "mip", "fill_missing", "shape", "offset", "clip_limit", "tile_grid_size",
    ]  # fmt: skip
def test_ccl_wire_keys_helpers_and_signatures():
    from taskqueue.queueablefns import REGISTRY

    import igneous.tasks.image.ccl as ccl

    for name in ["CCLFacesTask", "CCLEquivalancesTask", "RelabelCCLTask"]:
        assert ("igneous.tasks.image.ccl", name) in REGISTRY, name
    for name in ["create_relabeling", "clean_intermediate_files", "DisjointSet", "compute_task_number",
                 "compute_label_offset", "threshold_image", "blackout_non_face_rails"]:  # fmt: skip
        assert callable(getattr(ccl, name)), name
    common = ["threshold_gte", "threshold_lte", "fill_missing", "dust_threshold", "connectivity"]
    assert list(inspect.signature(ccl.CCLFacesTask).parameters) == ["cloudpath", "mip", "shape", "offset", *common]
    assert list(inspect.signature(ccl.CCLEquivalancesTask).parameters) == ["cloudpath", "mip", "shape", "offset",
                                                                          *common]  # fmt: skip
    assert list(inspect.signature(ccl.RelabelCCLTask).parameters) == ["src_path", "dest_path", "mip", "shape",
                                                                     "offset", *common]  # fmt: skip
    assert list(inspect.signature(tc.create_ccl_face_tasks).parameters) == ["cloudpath", "mip", "shape", *common]
    assert list(inspect.signature(tc.create_ccl_relabel_tasks).parameters) == [
        "src_path", "dest_path", "mip", "shape", "chunk_size", "encoding", *common,
    ]  # fmt: skip
    assert inspect.signature(tc.create_ccl_face_tasks).parameters["shape"].default == (512, 512, 512)
    assert list(inspect.signature(ccl.create_relabeling).parameters)[:3] == ["cloudpath", "mip", "shape"]
    assert list(inspect.signature(ccl.clean_intermediate_files).parameters) == ["src", "mip"]
    assert list(inspect.signature(ccl.threshold_image).parameters) == ["image", "threshold_lte", "threshold_gte"]
    assert list(inspect.signature(ccl.compute_task_number).parameters) == ["grid_size", "gridpoint"]
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
