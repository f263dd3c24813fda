"""Meshing benchmark stages (issue 5): forge + legacy merge of ``segsmall``, forge of the 512³ ``seg``.

Children (run by ``stages.py`` in a fresh process): ``mesh_forge`` (plan + run the forge, then
optionally the legacy merge, at ``-p 1``) and ``mesh_floor`` (one zmesh call on the whole
volume: ``Mesher.mesh`` + ``get`` with the same simplification for every label; the
download is not timed). Parents (run by ``run.py``): each stage with its floor interleaved,
fastest reported, ratio = forge wall / floor wall.

After the clock each forge is checked: every label of the layer has a mesh (the union of
the ``.spatial`` files, and a manifest per label after a merge), and 5 sampled labels fuse
into closed meshes.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

MESH_FORGE = {"shape": [448, 448, 448], "max_simplification_error": 40, "simplification": True}
MESH_TARGETS = {
    "mesh_forge_merge": {"mvox_s_min": 0.5},  # segsmall, forge + legacy merge
    "mesh_forge_full": {"wall_s_max": 300.0},  # the 512³ sample, forge only
}


# -- children ----------------------------------------------------------------------------------


def _layer_labels(path: str) -> set:
    """Every non-zero label of the layer, streaming z-slabs one chunk thick."""
    import fastremap
    from cloudvolume import CloudVolume

    vol = CloudVolume(path, progress=False)
    bounds = vol.bounds
    step = int(vol.chunk_size[2])
    labels = set()
    for z in range(int(bounds.minpt[2]), int(bounds.maxpt[2]), step):
        slab = vol[:, :, z : min(z + step, int(bounds.maxpt[2]))]
        labels.update(int(x) for x in fastremap.unique(slab))
    labels.discard(0)
    return labels


def _check_forge(path: str, merged: bool) -> tuple[list, int, int]:
    from cloudfiles import CloudFiles
    from cloudvolume import CloudVolume

    from igneous import meshes
    from igneous.ops.mesh import decode_fragment, fuse

    vol = CloudVolume(path, progress=False)
    mesh_dir = vol.info["mesh"]
    info = CloudFiles(path).get_json(f"{mesh_dir}/info")
    cf = CloudFiles(f"{path}/{mesh_dir}")
    meshed = set()
    for content in cf.get_json(meshes.expected_spatial_names(vol.bounds, info)):
        meshed.update(int(k) for k in content)
    problems = []
    expected = _layer_labels(path)
    if meshed != expected:
        problems.append(f"{len(expected - meshed)} labels without a mesh, {len(meshed - expected)} unexpected")
    names = list(cf.list())
    if merged:
        manifests = {int(n.split(":")[0]) for n in names if len(n.split(":")) == 2}
        if manifests != expected:
            problems.append(f"{len(expected - manifests)} labels without a manifest")
    faces = _count_faces(cf, names)
    rng = np.random.default_rng(0)
    sample = rng.choice(sorted(expected), size=min(5, len(expected)), replace=False)
    for label in sample:
        frags = [n for n in names if n.startswith(f"{label}:0:")]
        v, f = fuse(decode_fragment(cf.get(n)) for n in frags)
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64), axis=1)
        _, counts = np.unique(e[:, 0] * (len(v) + 1) + e[:, 1], return_counts=True)
        if (counts == 1).any():
            problems.append(f"label {label} is not closed ({int((counts == 1).sum())} boundary edges)")
    return problems, len(expected), faces


def _count_faces(cf, names) -> int:
    """Triangles in every forged fragment (``segid:0:BBOX``): the output size the speed buys."""
    from igneous.ops.mesh import decode_fragment

    fragments = [n for n in names if n.count(":") == 2]
    return sum(len(decode_fragment(item["content"])[1]) for item in cf.get(fragments) if item["content"])


def forge(layer: str, shape, max_simplification_error, simplification: bool, merge: bool, profile=None) -> dict:
    """Forge (and optionally legacy-merge) ``layer`` in this process at -p 1."""
    from stages import Timer, max_rss_mb, profiled

    import igneous.task_creation as tc
    from igneous.queues import submit_tasks

    path = "file://" + layer
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan_forge"):
            tasks = tc.create_meshing_tasks(
                path, 0, shape=shape, simplification=simplification, max_simplification_error=max_simplification_error
            )
            ntasks = len(tasks)
        with timer.phase("forge"):
            submit_tasks(tasks, queue=None, parallel=1, progress=False)
        if merge:
            with timer.phase("merge"):
                submit_tasks(tc.create_mesh_manifest_tasks(path), queue=None, parallel=1, progress=False)
    wall, cpu = timer.total("wall_s"), timer.total("cpu_s")
    problems, nlabels, faces = _check_forge(path, merge)
    import json

    with open(os.path.join(layer, "info")) as f:
        size = json.load(f)["scales"][0]["size"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "phases": timer.phases,
        "tasks": ntasks,
        "task_shape": list(shape),
        "labels": nlabels,
        "faces": faces,
        "input_voxels": int(np.prod(size)),
        "rss_before_work_mb": rss_before,
        "problems": problems,
    }


def floor(layer: str, max_simplification_error, profile=None) -> dict:
    """One zmesh call on the whole volume with the forge's parameters (download not timed)."""
    import time

    import fastremap
    import zmesh
    from cloudvolume import CloudVolume
    from stages import cpu_seconds, max_rss_mb, profiled

    vol = CloudVolume("file://" + layer, progress=False)
    img, _ = vol.download(vol.bounds, renumber=True)  # the forge meshes renumbered labels too
    img = np.asfortranarray(img[..., 0])
    rss_before = max_rss_mb()
    wall, cpu = time.perf_counter(), cpu_seconds()
    with profiled(profile):
        mesher = zmesh.Mesher(tuple(float(r) for r in vol.resolution))
        mesher.mesh(img, close=True)
        t_mc = time.perf_counter() - wall
        faces = 0
        for label in mesher.ids():
            m = mesher.get(label, reduction_factor=100, max_error=max_simplification_error, voxel_centered=True)
            mesher.erase(label)
            faces += len(m.faces)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "marching_cubes_s": t_mc,
        "labels": int(len(fastremap.unique(img)) - 1),
        "faces": faces,
        "input_voxels": int(img.size),
        "rss_before_work_mb": rss_before,
    }


# -- parents -----------------------------------------------------------------------------------


def _mesh_stage(runner, name: str, layer_dir: str, repeat: int, merge: bool, profile: bool) -> dict:
    from datasets import fresh_copy
    from run import fastest, mvox

    runs, floors = [], []
    work = os.path.join(runner.work_dir, name)
    spec = dict(MESH_FORGE, merge=merge)
    for i in range(1, repeat + 1):
        src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
        runs.append(runner.child("mesh_forge", {"layer": src, **spec}, f"{name}-{i}"))
        floors.append(
            runner.child(
                "mesh_floor",
                {"layer": src, "max_simplification_error": MESH_FORGE["max_simplification_error"]},
                f"{name}-floor-{i}",
            )
        )
        shutil.rmtree(work, ignore_errors=True)
    best, floor_best = fastest(runs), fastest(floors)
    result = {
        "params": {"layer": os.path.basename(layer_dir), **spec, "parallel": 1, "queue": None},
        "runs": runs,
        "best": best,
        "mesh_floor": {"runs": floors, "best": floor_best},
        "mvox_s": mvox(best),
        "floor_mvox_s": mvox(floor_best),
        "ratio_to_floor": best["wall_s"] / floor_best["wall_s"] if best and floor_best else None,
        "cpu_ratio_to_floor": best["cpu_s"] / floor_best["wall_s"] if best and floor_best else None,
        "faces_to_floor": best["faces"] / floor_best["faces"] if best and floor_best else None,
    }
    if profile and best:
        src = fresh_copy(os.path.dirname(layer_dir), os.path.basename(layer_dir), work, "input")
        prof = os.path.join(runner.out_dir, f"profile_{name}.prof")
        runner.child("mesh_forge", {"layer": src, **spec}, f"{name}-profile", profile=prof)
        shutil.rmtree(work, ignore_errors=True)
        result["profile"] = os.path.relpath(prof, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    targets = MESH_TARGETS[name]
    checks = {}
    if best and "mvox_s_min" in targets:
        checks["mvox_s"] = result["mvox_s"] >= targets["mvox_s_min"]
    if best and "wall_s_max" in targets:
        checks["wall_s"] = best["wall_s"] <= targets["wall_s_max"]
    result.update(targets=targets, checks=checks)
    floor_wall = f"{floor_best['wall_s']:.2f} s" if floor_best else "-"
    if best:
        print(
            f"  {name}: {best['wall_s']:.2f} s ({result['mvox_s']:.2f} Mvox/s, {best['tasks']} tasks, "
            f"{best['labels']} labels, {best['faces']:,} faces), peak RSS {best['peak_rss_mb']:.0f} MB; "
            f"floor {floor_wall}; ratio {result['ratio_to_floor'] or float('nan'):.2f}; "
            f"faces/floor {result['faces_to_floor'] or float('nan'):.2f}; checks {checks}",
            flush=True,
        )
    return result


def mesh_forge_merge(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """Forge + legacy merge of segsmall (256×256×128, 418 labels): target ≥ 0.5 Mvox/s."""
    print(f"mesh_forge_merge: segsmall, {MESH_FORGE}, legacy merge", flush=True)
    return _mesh_stage(runner, "mesh_forge_merge", os.path.join(data_dir, "segsmall"), repeat, True, profile)


def mesh_forge_full(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """Forge of the full 512³ sample: target < 300 s."""
    print(f"mesh_forge_full: seg 512³, {MESH_FORGE}, forge only", flush=True)
    return _mesh_stage(runner, "mesh_forge_full", os.path.join(data_dir, "seg"), repeat, False, profile)


CHILD_STAGES = {"mesh_forge": forge, "mesh_floor": floor}
PARENT_STAGES = {"mesh_forge_merge": mesh_forge_merge, "mesh_forge_full": mesh_forge_full}


# -- sharded multires (helper H2) --------------------------------------------------------------

MULTIRES_MERGE = {"num_lod": 2}  # CLI defaults otherwise: vqb 16, Draco level 7, min chunk 256³
MESH_TARGETS["mesh_forge_sharded_multires"] = {"mvox_s_min": 0.4}  # segsmall, forge + merge-sharded


def _check_sharded_multires(path: str) -> tuple[list, int]:
    """Every label of the layer is in exactly one ``.labels`` list and has a mesh; 5 sampled
    labels are closed at LOD 0 and readable at their coarsest LOD."""
    from cloudfiles import CloudFiles
    from cloudvolume import CloudVolume

    vol = CloudVolume(path, progress=False)
    mesh_dir = vol.info["mesh"]
    cf = CloudFiles(f"{path}/{mesh_dir}")
    listed = []
    for name in cf.list():
        if name.endswith(".labels"):
            listed += cf.get_json(name)
    expected = _layer_labels(path)
    problems = []
    if sorted(listed) != sorted(expected):
        problems.append(f"{len(expected - set(listed))} labels in no shard, {len(set(listed) - expected)} unexpected")
    rng = np.random.default_rng(0)
    for label in rng.choice(sorted(expected), size=min(5, len(expected)), replace=False):
        label = int(label)
        mesh = vol.mesh.get(label, lod=0)[label]
        vol.mesh.get(label, lod=-1)
        v, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
        f = inverse.reshape(-1)[mesh.faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64), axis=1)
        _, counts = np.unique(e[:, 0] * (len(v) + 1) + e[:, 1], return_counts=True)
        if (counts == 1).any():
            problems.append(f"label {label} LOD 0 is not closed ({int((counts == 1).sum())} boundary edges)")
    return problems, len(expected)


def forge_sharded_multires(layer: str, shape, max_simplification_error, simplification: bool, num_lod: int,
                           profile=None) -> dict:  # fmt: skip
    """Sharded forge + sharded multires merge of ``layer`` in this process at -p 1."""
    import json

    from stages import Timer, max_rss_mb, profiled

    import igneous.task_creation as tc
    from igneous.queues import submit_tasks
    from igneous.task_creation.multires import create_sharded_multires_mesh_tasks

    path = "file://" + layer
    rss_before = max_rss_mb()
    timer = Timer()
    with profiled(profile):
        with timer.phase("plan_forge"):
            tasks = tc.create_meshing_tasks(
                path, 0, shape=shape, simplification=simplification,
                max_simplification_error=max_simplification_error, sharded=True,
            )  # fmt: skip
            ntasks = len(tasks)
        with timer.phase("forge"):
            submit_tasks(tasks, queue=None, parallel=1, progress=False)
        with timer.phase("plan_merge"):
            merges = create_sharded_multires_mesh_tasks(path, num_lod=num_lod, max_labels_per_shard=1000, progress=False)
        with timer.phase("merge"):
            submit_tasks(merges, queue=None, parallel=1, progress=False)
    problems, nlabels = _check_sharded_multires(path)
    with open(os.path.join(layer, "info")) as f:
        size = json.load(f)["scales"][0]["size"]
    return {
        "wall_s": timer.total("wall_s"),
        "cpu_s": timer.total("cpu_s"),
        "phases": timer.phases,
        "tasks": ntasks,
        "shards": len(merges),
        "task_shape": list(shape),
        "labels": nlabels,
        "input_voxels": int(np.prod(size)),
        "rss_before_work_mb": rss_before,
        "problems": problems,
    }


def mesh_forge_sharded_multires(runner, data_dir: str, repeat: int, profile: bool) -> dict:
    """Forge + sharded multires merge (num_lod 2) of segsmall: target ≥ 0.4 Mvox/s."""
    from datasets import fresh_copy
    from run import fastest, mvox

    name = "mesh_forge_sharded_multires"
    spec = {**MESH_FORGE, **MULTIRES_MERGE}
    print(f"{name}: segsmall, {spec}, sharded forge + merge-sharded", flush=True)
    work = os.path.join(runner.work_dir, name)
    runs, floors = [], []
    for i in range(1, repeat + 1):
        src = fresh_copy(data_dir, "segsmall", work, "input")
        runs.append(runner.child("mesh_forge_multires", {"layer": src, **spec}, f"{name}-{i}"))
        floors.append(
            runner.child(
                "mesh_floor",
                {"layer": src, "max_simplification_error": MESH_FORGE["max_simplification_error"]},
                f"{name}-floor-{i}",
            )
        )
        shutil.rmtree(work, ignore_errors=True)
    best, floor_best = fastest(runs), fastest(floors)
    result = {
        "params": {"layer": "segsmall", **spec, "parallel": 1, "queue": None},
        "runs": runs,
        "best": best,
        "mesh_floor": {"runs": floors, "best": floor_best},
        "mvox_s": mvox(best),
        "floor_mvox_s": mvox(floor_best),
        "ratio_to_floor": best["wall_s"] / floor_best["wall_s"] if best and floor_best else None,
    }
    if profile and best:
        src = fresh_copy(data_dir, "segsmall", work, "input")
        prof = os.path.join(runner.out_dir, f"profile_{name}.prof")
        runner.child("mesh_forge_multires", {"layer": src, **spec}, f"{name}-profile", profile=prof)
        shutil.rmtree(work, ignore_errors=True)
        result["profile"] = os.path.relpath(prof, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    targets = MESH_TARGETS[name]
    checks = {"mvox_s": result["mvox_s"] >= targets["mvox_s_min"]} if best else {}
    result.update(targets=targets, checks=checks)
    if best:
        print(
            f"  {name}: {best['wall_s']:.2f} s ({result['mvox_s']:.2f} Mvox/s, {best['tasks']} tasks, "
            f"{best['shards']} shards, {best['labels']} labels), peak RSS {best['peak_rss_mb']:.0f} MB; "
            f"floor {floor_best['wall_s']:.2f} s; ratio {result['ratio_to_floor'] or float('nan'):.2f}; "
            f"checks {checks}",
            flush=True,
        )
    return result


CHILD_STAGES["mesh_forge_multires"] = forge_sharded_multires
PARENT_STAGES["mesh_forge_sharded_multires"] = mesh_forge_sharded_multires
