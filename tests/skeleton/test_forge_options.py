"""Forge options beyond the defaults: labels kept or masked, global dust, hole filling, cross
sections (with and without the repair pass), synapse targets, no spatial index; the graphene
flat merge's planning; the pure plan step writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from cloudvolume import CloudVolume

import igneous.task_creation as tc
from igneous import skeletons as fmt
from igneous.errors import InvalidParameterError
from igneous.task_creation.skeleton import finished_labels, plan_skeletonizing_tasks
from tests.conftest import make_layer, tree
from tests.skeleton.conftest import CHUNK, RESOLUTION, VOXEL_OFFSET, run

SHAPE = (40, 40, 32)


@pytest.fixture(scope="module")
def small(skel_crop):
    return np.asfortranarray(skel_crop[:64, :64, :48])


@pytest.fixture
def layer(tmp_path, small):
    return make_layer(
        f"file://{tmp_path / 'seg'}", small, resolution=RESOLUTION, voxel_offset=VOXEL_OFFSET, chunk_size=CHUNK
    )


def forge_and_merge(layer: str, **kwargs) -> list[int]:
    kwargs.setdefault("dust_threshold", 200)
    run(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, **kwargs))
    run(tc.create_unsharded_skeleton_merge_tasks(layer, magnitude=1, dust_threshold=300, tick_threshold=0))
    return finished_labels(layer)


def big_labels(small, n: int) -> list[int]:
    labels, counts = np.unique(small, return_counts=True)
    order = np.argsort(-counts)
    return [int(x) for x in labels[order] if x != 0][:n]


def test_object_ids_and_mask_ids(layer, small):
    keep = big_labels(small, 3)
    assert set(forge_and_merge(layer, object_ids=keep)) == set(keep)


def test_mask_ids(layer, small):
    drop = big_labels(small, 2)
    done = forge_and_merge(layer, mask_ids=drop)
    assert len(done) >= 5 and not set(drop) & set(done)


def test_dust_global_uses_voxel_counts(layer, small):
    from click.testing import CliRunner

    from igneous_cli import main

    for cmd in (["image", "voxels", "count", layer], ["image", "voxels", "sum", layer]):
        assert CliRunner().invoke(main, cmd).exit_code == 0
    labels, counts = np.unique(small, return_counts=True)
    done = forge_and_merge(layer, dust_global=True, dust_threshold=20000)
    assert done and set(done) <= {int(x) for x, c in zip(labels, counts) if c >= 20000}


def test_fill_holes_and_no_spatial_index(layer):
    run(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, fill_holes=1, spatial_index=False))
    info = fmt.read_skeleton_info(layer, "skeletons_mip_0")
    assert "spatial_index" not in info
    names = tree(layer[len("file://") :] + "/skeletons_mip_0")
    assert names and not [n for n in names if ".spatial" in n]


def test_cross_sectional_area_with_repair(layer):
    done = forge_and_merge(layer, cross_sectional_area=True, cross_sectional_area_smoothing_window=5,
                           cross_sectional_area_repair_sec_per_label=-1)  # fmt: skip
    info = fmt.read_skeleton_info(layer, "skeletons_mip_0")
    assert [a["id"] for a in info["vertex_attributes"]] == ["radius", "cross_sectional_area"]
    skels = CloudVolume(layer).skeleton.get(done)
    areas = np.concatenate([s.cross_sectional_area for s in skels])
    assert len(areas) and np.mean(areas > 0) > 0.9
    # a section's area is at least that of the disc its radius implies on a plane (anisotropy aside)
    radii = np.concatenate([s.radius for s in skels])
    assert np.median(areas / (np.pi * radii**2)) > 0.5


def test_synapse_targets_are_reached(layer, small):
    label = big_labels(small, 1)[0]
    xs, ys, zs = np.nonzero(small == label)
    pick = len(xs) // 3
    voxel = np.array([xs[pick], ys[pick], zs[pick]]) + np.asarray(VOXEL_OFFSET)
    centroid = tuple(float(v) for v in (voxel + 0.5) * np.asarray(RESOLUTION))
    done = forge_and_merge(layer, synapses=[(centroid, label, 3)], object_ids=[label])
    assert done == [label]
    skel = CloudVolume(layer).skeleton.get(label)
    nearest = np.min(np.linalg.norm(skel.vertices - np.asarray(centroid), axis=1))
    assert nearest <= 2 * np.linalg.norm(RESOLUTION)


def test_plan_writes_nothing_and_graphene_merge_planning(layer, tmp_path):
    before = tree(tmp_path)
    plan = plan_skeletonizing_tasks(layer, 0, shape=SHAPE)
    assert plan.num_tasks == 8 and plan.shape == SHAPE and plan.skel_dir == "skeletons_mip_0"
    assert plan.writes() == ["info", "skeletons_mip_0/info"]
    assert tree(tmp_path) == before
    with pytest.raises(InvalidParameterError, match="graphene"):
        tc.create_flat_graphene_skeleton_merge_tasks(layer, 2)
    from igneous.task_creation.skeleton import plan_flat_graphene_merge_prefixes

    prefixes = plan_flat_graphene_merge_prefixes(2, 8, (3, 3, 3), prefix_length=5)
    assert prefixes == sorted(set(prefixes)) and all(len(p) == 5 for p in prefixes)


def test_few_labels_on_a_meshed_layer_forge_only_the_boxes_around_their_meshes(layer, small):
    """SPEC: with ≤ 4 object_ids and meshes, the forge's bounds shrink to the meshes' boxes; the
    merge then checks only those boxes."""
    from igneous.task_creation.skeleton import bounds_from_mesh

    run(tc.create_meshing_tasks(layer, 0, shape=(64, 64, 48)))
    inside = []  # labels whose voxels all lie in the first task box, minus the mesh's reach
    for candidate, count in zip(*np.unique(small, return_counts=True)):
        xs, ys, zs = np.nonzero(small == candidate)
        if candidate and count > 200 and xs.max() < 38 and ys.max() < 38 and zs.max() < 30:
            inside.append((int(count), int(candidate)))
    label = max(inside)[1]
    vol = CloudVolume(layer, mip=0)
    box = bounds_from_mesh(vol, SHAPE, [label])
    xs, ys, zs = np.nonzero(small == label)
    lo = np.array([xs.min(), ys.min(), zs.min()]) + np.asarray(VOXEL_OFFSET)
    hi = np.array([xs.max(), ys.max(), zs.max()]) + np.asarray(VOXEL_OFFSET) + 1
    assert np.all(np.asarray(box.minpt) <= lo) and np.all(np.asarray(box.maxpt) >= hi)
    plan = plan_skeletonizing_tasks(layer, 0, shape=SHAPE, object_ids=[label])
    assert plan.bounds == box and plan.num_tasks == 1
    assert forge_and_merge(layer, object_ids=[label]) == [label]


def test_sharded_forge_with_frag_path(layer, tmp_path):
    """.frags written elsewhere (frag_path) are found by the sharded merge given the same path."""
    frags = f"file://{tmp_path / 'frags'}"
    run(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, dust_threshold=200, sharded=True, frag_path=frags))
    assert len(list((tmp_path / "frags" / "skeletons_mip_0").glob("*.frags"))) == 8
    assert not list((tmp_path / "seg" / "skeletons_mip_0").glob("*.frags"))
    with pytest.raises(InvalidParameterError, match="frags"):
        tc.create_sharded_skeleton_merge_tasks(layer, 300, 0)
    run(tc.create_sharded_skeleton_merge_tasks(layer, 300, 0, frag_path=frags))
    labels = finished_labels(layer)
    assert len(labels) >= 5 and len(CloudVolume(layer).skeleton.get(labels)) == len(labels)


def test_a_merge_that_cannot_finish_a_label_names_it_and_writes_no_shard(layer, tmp_path):
    from igneous.errors import IncompleteSkeletonError

    run(tc.create_skeletonizing_tasks(layer, 0, shape=SHAPE, dust_threshold=200, sharded=True))
    tasks = tc.create_sharded_skeleton_merge_tasks(layer, 300, 0, max_labels_per_shard=1000)
    for name in (tmp_path / "seg" / "skeletons_mip_0").glob("*.frags"):
        name.unlink()  # lost after planning
    with pytest.raises(IncompleteSkeletonError, match=r"label \d+: .*\.frags is missing"):
        run(tasks)
    assert not list((tmp_path / "seg" / "skeletons_mip_0").glob("*.shard"))
