"""Calibration of dry-run estimates: measured throughput per task kind, and the requests a task
makes besides its data. Each figure says where it comes from; re-measure and update them here.

Throughput is work per CPU-second of one core (the benchmarks run single-process, so CPU seconds
include the threads a stage starts for codecs). Figures from ``python benchmarks/run.py --data
/work/bench-data --repeat 1`` on 2026-12-04 at git 3fa3b4a (Linux x86_64, 2 vCPU shared with
other jobs; 1-minute load 1.7-6.6 during the run, so these are on the slow side of what a
dedicated core does).
"""

from __future__ import annotations

__all__ = [
    "THROUGHPUT",
    "TASK_REQUESTS",
    "PLAN_REQUESTS",
    "NEW_LAYER_PROBE",
    "SHARDED_READ",
    "MESH_MERGE_BYTES_RATIO",
    "MEASURED",
    "CCL_LINKS_PER_TABLE_BYTE",
]

MEASURED = {"date": "2026-12-04", "git": "3fa3b4a", "harness": "benchmarks/run.py --repeat 1", "cpus": 2}

# unit: what ``per_cpu_s`` counts; ``per_cpu_s``: units per CPU-second (execute phase only).
THROUGHPUT = {
    "downsample": {
        "unit": "voxels read",
        "per_cpu_s": 536_870_912 / 6.512,
        "source": "stage image_downsample: img 2048x2048x128 uint8 raw+gzip, 4 mips avg, 6.51 cpu-s",
    },
    "downsample_segmentation": {
        "unit": "voxels read",
        "per_cpu_s": 134_217_728 / 3.288,
        "source": "stage seg_downsample: seg 512^3 uint64 cseg+gzip, mode pooling, 3.29 cpu-s",
    },
    "transfer": {
        "unit": "voxels read",
        "per_cpu_s": 536_870_912 / 11.675,
        "source": "stage transfer: img rechunked 128x128x64, gzip, no downsamples, 11.67 cpu-s",
    },
    "shard_transfer": {
        "unit": "voxels read",
        "per_cpu_s": 536_870_912 / 12.128,
        "source": "stage image_shard_transfer: img into 1 GB shards (same chunk and rechunked), 12.13 cpu-s",
    },
    "shard_downsample": {
        "unit": "voxels read",
        "per_cpu_s": 536_870_912 / 5.831,
        "source": "stage image_shard_downsample: img, 3 sharded mips avg, 5.83 cpu-s",
    },
    "voxel_count": {
        "unit": "voxels read",
        "per_cpu_s": 134_217_728 / 1.626,
        "source": "stage voxel_counts: seg 512^3 uint64 cseg, count tasks, 1.63 cpu-s",
    },
    "mesh_forge": {
        "unit": "voxels read",
        "per_cpu_s": 8_388_608 / 45.289,
        "source": "stage mesh_forge_merge, forge phase: segsmall 256x256x128 real EM labels, 448^3 tasks, "
        "simplification 100 / 40 nm, 45.3 cpu-s",
    },
    "mesh_merge": {
        "unit": "labels",
        "per_cpu_s": 418 / 0.245,
        "source": "stage mesh_forge_merge, merge phase: 418 labels into legacy manifests, 0.245 cpu-s",
    },
    "mesh_merge_multires": {
        "unit": "labels",
        "per_cpu_s": 418 / 1.393,
        "source": "stage mesh_forge_sharded_multires, merge phase: 418 labels, num_lod 2, Draco, 1.39 cpu-s",
    },
}

# Requests besides the data: each task opening its layers (info, provenance, mesh info …) and
# each planner reading and writing info and provenance. Counted in moto's request log on the
# cases of tests/services/test_dry_run_s3.py (which keeps the totals within 10% of real runs).
TASK_REQUESTS = {
    "DownsampleTask": {"GET": 4},
    "TransferTask": {"GET": 5},
    "TransferTask/copy": {"GET": 6},  # same layout: chunk files copied as they are
    "ImageShardTransferTask": {"GET": 5},
    "ImageShardDownsampleTask": {"GET": 4},
    "CountVoxelsTask": {"GET": 2},
    "MeshTask": {"GET": 4},
    "MeshManifestPrefixTask": {"GET": 1},
    "MeshManifestFilesystemTask": {},
    "MultiResUnshardedMeshMergeTask": {"GET": 2},
    "MultiResShardedMeshMergeTask": {"GET": 7},  # + reading its shard back to verify it
}
PLAN_REQUESTS = {
    "image downsample": {"GET": 2, "PUT": 2},
    "image xfer": {"GET": 2, "PUT": 2},  # + GET 1, PUT 1 when the source's provenance is updated
    "image xfer --sharded": {"GET": 3, "PUT": 2},
    "image downsample --sharded": {"GET": 3, "PUT": 2},
    "image voxels count": {"GET": 4, "PUT": 1},
    "mesh forge": {"GET": 7, "PUT": 3},
    "mesh merge": {"GET": 7, "PUT": 1},
    "mesh merge --nlod": {"GET": 7, "PUT": 2},
    "mesh merge-sharded": {"GET": 10, "PUT": 2},
}
# cloud-volume looks for zarr metadata before it concludes a path holds no layer yet.
NEW_LAYER_PROBE = {"GET": 3, "HEAD": 1}
# Reading a sharded scale: per task and z-slab of chunks, the shard and minishard indices;
# then byte ranges, adjacent chunks coalesced (measured: 8 ranges for 32 chunks).
SHARDED_READ = {"per_slab": 2, "per_chunk": 0.25}

# Bytes of merged multi-resolution meshes (Draco) per byte of forged fragments (sharded: the
# .frags MapBuffers; unsharded: the gzip'd Precomputed fragments). Measured with num_lod 0, 1 and
# 2 (the same bytes: no label spanned more than min_chunk_size 256^3, so no extra LOD was built)
# on benchmarks' segsmall (real EM labels, 128^3 forge tasks): sharded 0.32, unsharded 0.31;
# and on tests/integration/test_dry_run.py's Voronoi segmentation: sharded 0.39, unsharded 0.35.
# Labels larger than min_chunk_size get extra LODs, each up to a quarter of the one below.
MESH_MERGE_BYTES_RATIO = {"sharded": 0.36, "unsharded": 0.33}

# -- stages calibrated later (ingest, contrast, CCL): each entry's "measured" overrides MEASURED --

_CCL_RUN = {
    "date": "2026-12-04",
    "git": "1047ab1",
    "harness": "benchmarks/run.py --only ccl_auto --repeat 1",
    "cpus": 2,
    "load": "1-minute load 2.9-5.1 (shared machine): CPU-seconds, not wall, are used",
}
THROUGHPUT.update(
    {
        "ccl_faces": {
            "unit": "voxels read",
            "per_cpu_s": 134_217_728 / 2.155,
            "source": "stage ccl_auto_6, faces phase: seg 512^3 uint64, 256^3 tasks, 6-connected, 2.16 cpu-s",
            "measured": _CCL_RUN,
        },
        "ccl_faces_26": {
            "unit": "voxels read",
            "per_cpu_s": 134_217_728 / 2.791,
            "source": "stage ccl_auto_26, faces phase: seg 512^3 uint64, 256^3 tasks, 26-connected, 2.79 cpu-s",
            "measured": _CCL_RUN,
        },
        "ccl_links": {
            "unit": "voxels of the layer",
            "per_cpu_s": 134_217_728 / 0.242,
            "source": "stage ccl_auto_6, links phase: 8 tasks of 256^3 (seg 512^3), 0.242 cpu-s",
            "measured": _CCL_RUN,
        },
        "ccl_relabel": {
            "unit": "voxels written",
            "per_cpu_s": 134_217_728 / 2.929,
            "source": "stage ccl_auto_6, relabel phase: seg 512^3 into compresso, 256^3 tasks, 2.93 cpu-s",
            "measured": _CCL_RUN,
        },
        "ccl_auto": {
            "unit": "voxels of the layer",
            "per_cpu_s": 134_217_728 / 5.36,
            "source": "stage ccl_auto_6, all steps: seg 512^3 uint64, 256^3 tasks, compresso, 5.36 cpu-s",
            "measured": _CCL_RUN,
        },
    }
)

_INGEST_RUN = {
    "date": "2026-12-04",
    "git": "c28855e",
    "harness": "benchmarks/run.py --only ingest_series ingest_array equalize clahe ccl_calc_memory --repeat 1",
    "cpus": 2,
    "load": "1-minute load 3.8-3.9 (shared machine): CPU-seconds, not wall, are used",
}
THROUGHPUT.update(
    {
        "ingest_stack": {
            "unit": "voxels written",
            "per_cpu_s": 536_870_912 / 8.859,
            "source": "stage ingest_series: 128 uncompressed TIFF slices 2048^2 uint8 -> chunks 128x128x64 raw+gzip, "
            "2 tasks, 8.86 cpu-s",
            "measured": _INGEST_RUN,
        },
        "ingest_array": {
            "unit": "voxels written",
            "per_cpu_s": 536_870_912 / 9.926,
            "source": "stage ingest_array: img as one 2048x2048x128 uint8 .npy -> chunks 128x128x64 raw+gzip, "
            "this process, 9.93 cpu-s",
            "measured": _INGEST_RUN,
        },
        "histogram": {
            "unit": "voxels decoded (whole chunks read by the patches)",
            "per_cpu_s": 128 * 256 * 262_144 / 33.072,
            "source": "stage equalize, its histogram input: img 2048^2 x 128 slices, chunks 128x128x16, coverage 0.01 "
            "(one 2048^2 patch per slice: 256 chunks each), 128 tasks, 33.1 cpu-s",
            "measured": _INGEST_RUN,
        },
        "equalize": {
            "unit": "voxels read",
            "per_cpu_s": 536_870_912 / 15.982,
            "source": "stage equalize: img 2048x2048x128 uint8, 2048x2048x64 tasks, 4 pyramid levels, gzip, 15.98 cpu-s",
            "measured": _INGEST_RUN,
        },
        "clahe": {
            "unit": "voxels read",
            "per_cpu_s": 536_870_912 / 13.276,
            "source": "stage clahe: img 2048x2048x128 uint8, whole-slice tasks, 256-px tiles, clip 40, 13.28 cpu-s",
            "measured": _INGEST_RUN,
        },
        "ccl_calc_labels": {
            "unit": "labels",
            "per_cpu_s": 16_776_451 / 6.338,
            "source": "stage ccl_calc_memory: lattice 512^3 of one-voxel components, 128^3 tasks (512 tasks), "
            "16.8 M labels, 6.34 cpu-s",
            "measured": _INGEST_RUN,
        },
    }
)

# Requests of the tasks and planners above, counted in moto's request log on the cases of
# tests/services/test_dry_run_s3_create_contrast_ccl.py (IGNEOUS_TEST_REQUEST_DETAIL=1): a task
# opens its layers (info and provenance of each), a planner reads them a few times and records
# provenance. CCL relabel's destination is looked up as a file, without cloud-volume's probe.
TASK_REQUESTS.update(
    {
        "ImageStackIngestTask": {"GET": 2},
        "create_image_from_array": {},
        "LuminanceLevelsTask": {"GET": 2},
        "ContrastNormalizationTask": {"GET": 4},  # + one levels file per slice of its box
        "CLAHETask": {"GET": 4},
        "CCLFacesTask": {"GET": 2},
        "CCLEquivalancesTask": {"GET": 2},  # + its leading file and its lower neighbours' faces
        "create_relabeling": {"GET": 3},  # info, provenance, params.json
        "RelabelCCLTask": {"GET": 4},  # + its labels file and relabel table
    }
)
PLAN_REQUESTS.update(
    {
        "image create": {"GET": 4, "PUT": 1},
        "image contrast histogram": {"GET": 4, "PUT": 1},
        "image contrast equalize": {"GET": 6, "PUT": 2, "LIST": 1},  # LIST: are the histograms there?
        "image contrast clahe": {"GET": 6, "PUT": 2},
        "image ccl faces": {"GET": 7, "PUT": 1},
        "image ccl links": {"GET": 9, "PUT": 1},
        "image ccl calc-labels": {},
        "image ccl relabel": {"GET": 14, "PUT": 1},
        # the steps' own planning, the provenance of three steps, and links checking the faces again
        "image ccl auto": {"GET": 41, "PUT": 3, "LIST": 1},
    }
)

# ``ccl auto`` prices the links before the faces exist: bytes of equivalences files per byte of
# relabel tables (which list every label). Measured 0.60 on benchmarks' seg (real EM labels,
# 256^3 tasks) and 1.44 on tests' Voronoi segmentation (64x64x32 tasks, most labels on a face);
# the ratio falls as tasks grow. Equivalences are well under 1% of the bytes of a run.
CCL_LINKS_PER_TABLE_BYTE = 1.0

# -- skeletons ------------------------------------------------------------------------------------

_SKELETON_RUN = {
    "date": "2026-12-04",
    "git": "2622586",
    "harness": "benchmarks/run.py --only skeleton_forge_merge --repeat 1 (forge); a script timing each merge "
    "(time.process_time) after forging segsmall at 128^3 unsharded and --sharded",
    "cpus": 2,
    "load": "1-minute load 1.0-3.2 (shared machine): CPU-seconds, not wall, are used",
}
THROUGHPUT.update(
    {
        "skeleton_forge": {
            "unit": "voxels read",
            "per_cpu_s": 8_388_608 / 17.740,
            "source": "stage skeleton_forge_merge, forge phase: segsmall 256x256x128 real EM labels, 128^3 tasks, "
            "CLI TEASAR defaults (scale 4, const 10), dust 1000 voxels, 17.74 cpu-s",
            "measured": _SKELETON_RUN,
        },
        "skeleton_merge": {
            "unit": "labels",
            "per_cpu_s": 306 / 1.813,
            "source": "segsmall forged unsharded at 128^3 (306 labels), merged into 99 prefix tasks (magnitude 2), "
            "min cable 1000 nm, planning included, 1.81 cpu-s (the script also re-measured the forge: 17.41 cpu-s)",
            "measured": _SKELETON_RUN,
        },
        "skeleton_merge_sharded": {
            "unit": "labels",
            "per_cpu_s": 306 / 1.319,
            "source": "segsmall forged --sharded at 128^3 (306 labels), merged into 1 shard (max 2000 labels per "
            "shard), min cable 1000 nm, planning included, 1.32 cpu-s",
            "measured": _SKELETON_RUN,
        },
    }
)

# Requests of the skeleton tasks and planners, counted in moto's request log on the cases of
# tests/services/test_dry_run_s3_skeleton.py (IGNEOUS_TEST_REQUEST_DETAIL=1): a task opens the
# layer (info, provenance) and the skeleton info; the forge's planner also looks for
# stats/voxel_counts.im; the unsharded merge's planner lists the directory once (pickles).
TASK_REQUESTS.update(
    {
        "SkeletonTask": {"GET": 3},
        "UnshardedSkeletonMergeTask": {"GET": 2},  # + LIST of its prefix, its fragments, each skeleton read back
        "ShardedSkeletonMergeTask": {"GET": 8},  # infos, its .labels, and reading its shard back to verify it
    }
)
PLAN_REQUESTS.update(
    {
        "skeleton forge": {"GET": 9, "PUT": 3},
        "skeleton merge": {"GET": 7, "PUT": 1, "LIST": 1},
        "skeleton merge-sharded": {"GET": 6, "PUT": 2},
    }
)
