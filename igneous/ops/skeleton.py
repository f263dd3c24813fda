"""Skeletons: pure compute over numpy arrays and osteoid ``Skeleton`` objects (no storage).

Seams. A forge task reads its box plus one voxel on the high sides, so two neighbouring tasks
both see the voxel plane they share. kimimaro's ``fix_borders`` puts one target per 2-D
connected component of every face of the cutout, at the maximum of that component's 2-D
distance transform, and traces every 3-D component through all of its face targets. Both
tasks compute those targets from the same plane, so their skeletons pass through the same
voxels there; :func:`place_vertices` turns voxel indices into nm with the same float64
arithmetic on both sides, so the seam vertices are bit-identical and :func:`merge_fragments`
joins them by merging identical vertices. Anything that edits voxels per task must therefore
give the same answer on both sides of a seam: masks are per label, and the local dust test
(:func:`seam_safe_dust`) never judges a component that reaches an interior face.

Sub-blocks. kimimaro's cost grows faster than the block size (a component's Dijkstra runs
over its whole bounding box, once per path): a task skeletonizes sub-blocks that share voxel
planes exactly like tasks do (:func:`skeletonize_blocks`).
"""

from __future__ import annotations

import logging
from typing import Dict, Iterable, Optional, Sequence

import cc3d
import fastremap
import numpy as np
from osteoid import Skeleton

__all__ = [
    "DEFAULT_TEASAR_PARAMS",
    "SKELETON_BLOCK",
    "interior_faces",
    "seam_safe_dust",
    "skeletonize_blocks",
    "place_vertices",
    "merge_fragments",
    "shared_faces_nm",
    "postprocess",
    "keep_attributes",
    "cross_sectional_areas",
    "terminal_branches",
    "seam_vertices",
    "prune_invalidated_branches",
    "prune_forced_stubs",
]

log = logging.getLogger(__name__)

# SPEC §2.3 create_skeletonizing_tasks default teasar_params; the CLI passes its own.
DEFAULT_TEASAR_PARAMS = {"scale": 10, "const": 10}
# Sub-block edge (voxels). Measured on the 512³ sample (default TEASAR parameters of the CLI):
# see docs/design-skeletons.md; 128³ blocks cost about 0.3× of one whole-volume call.
SKELETON_BLOCK = (128, 128, 128)


def interior_faces(read_min, read_max, bounds_min, bounds_max) -> list[tuple[int, int]]:
    """The faces ``(axis, 0=low | 1=high)`` of the read box that a neighbouring task shares."""
    faces = []
    for axis in range(3):
        if read_min[axis] > bounds_min[axis]:
            faces.append((axis, 0))
        if read_max[axis] < bounds_max[axis]:
            faces.append((axis, 1))
    return faces


def _face(arr: np.ndarray, axis: int, side: int) -> np.ndarray:
    index = [slice(None)] * 3
    index[axis] = 0 if side == 0 else -1
    return arr[tuple(index)]


def seam_safe_dust(labels: np.ndarray, threshold: int, faces: Iterable[tuple[int, int]]) -> np.ndarray:
    """``labels`` with the connected components (26-connected, as kimimaro sees them) of fewer
    than ``threshold`` voxels set to 0, except those touching an interior face.

    A component cut by a task seam has an unknown true size: dropping its piece on one side
    and not the other could split a skeleton. Only global counts can judge those.
    """
    if not threshold:
        return labels
    cc = cc3d.connected_components(labels, connectivity=26)
    ids, counts = fastremap.unique(cc, return_counts=True)
    small = ids[(counts < threshold) & (ids != 0)]
    if small.size == 0:
        return labels
    touching = [fastremap.unique(_face(cc, axis, side)) for axis, side in faces]
    if touching:
        small = np.setdiff1d(small, np.concatenate(touching))
    if small.size:
        dust = fastremap.mask_except(cc, small.tolist(), in_place=True) != 0
        labels = np.where(dust, 0, labels).astype(labels.dtype, copy=False)
    return np.asfortranarray(labels)


def _block_starts(shape: Sequence[int], block: Sequence[int]) -> list[range]:
    # the last voxel plane belongs to the previous block (shared), so a block starting there adds nothing
    return [range(0, max(int(n) - 1, 1), int(b)) for n, b in zip(shape, block)]


def skeletonize_blocks(
    labels: np.ndarray,
    anisotropy: Sequence[float],
    teasar_params: dict,
    block: Optional[Sequence[int]] = None,
    fix_branching: bool = True,
    fix_borders: bool = True,
    fix_avocados: bool = False,
    parallel: int = 1,
    targets: Optional[Dict[int, list]] = None,
) -> Dict[int, Skeleton]:
    """Skeletonize a task's read box in sub-blocks of ``block`` voxels that share voxel planes.

    ``labels`` must already be masked and dusted (every non-zero component is skeletonized).
    ``targets`` are extra points to reach, ``{label: [(x, y, z) voxel in labels]}`` (synapses).

    Returns ``{label: Skeleton}`` with vertices at integer voxel indices of ``labels``
    (float32, exact) and kimimaro's ``radius`` in nm.
    """
    import kimimaro

    shape = np.asarray(labels.shape[:3], dtype=np.int64)
    block = np.asarray(SKELETON_BLOCK if block is None else block, dtype=np.int64)
    aniso = np.asarray(anisotropy, dtype=np.float32)
    pieces: Dict[int, list] = {}
    starts = _block_starts(shape, block)
    for z in starts[2]:
        for y in starts[1]:
            for x in starts[0]:
                lo = np.array([x, y, z])
                hi = np.minimum(lo + block, shape - 1) + 1  # +1: the shared voxel plane
                sub = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
                if not sub.any():
                    continue
                extra = _targets_in(targets, lo, hi)
                skels = kimimaro.skeletonize(
                    sub,
                    teasar_params,
                    anisotropy=aniso,
                    dust_threshold=0,
                    progress=False,
                    fix_branching=fix_branching,
                    fix_borders=fix_borders,
                    fix_avocados=fix_avocados,
                    parallel=max(1, int(parallel)),
                    extra_targets_after=extra,
                )
                faces = [(axis, float(lo[axis])) for axis in range(3) if lo[axis] > 0]
                faces += [(axis, float(hi[axis] - 1)) for axis in range(3) if hi[axis] < shape[axis]]
                for label, skel in skels.items():
                    skel.vertices = np.rint(skel.vertices / aniso).astype(np.float32) + lo.astype(np.float32)
                    skel.space = "voxel"
                    pieces.setdefault(int(label), []).append((skel, faces))
    out = {}
    for label in sorted(pieces):
        parts = pieces.pop(label)
        skel = parts[0][0] if len(parts) == 1 else merge_fragments([p for p, _ in parts], [f for _, f in parts])
        skel.id = label
        out[label] = skel
    return out


def _targets_in(targets: Optional[Dict[int, list]], lo: np.ndarray, hi: np.ndarray) -> list:
    if not targets:
        return []
    found = []
    for points in targets.values():
        for pt in points:
            p = np.asarray(pt, dtype=np.int64)
            if np.all(p >= lo) and np.all(p < hi):
                found.append(tuple(int(v) for v in p - lo))
    return found


def place_vertices(voxels: np.ndarray, origin_vox: Sequence[int], resolution: Sequence[float]) -> np.ndarray:
    """nm at voxel centres, ``(voxel + origin + 0.5)·res``, in float64 then float32: the same
    integer voxel gives the same float32 vertex in every task (seams match bit for bit)."""
    v = np.asarray(voxels, dtype=np.float64) + np.asarray(origin_vox, dtype=np.float64) + 0.5
    return (v * np.asarray(resolution, dtype=np.float64)).astype(np.float32)


def keep_attributes(skel: Skeleton, attributes: Sequence[dict]) -> Skeleton:
    """``skel`` carrying exactly ``attributes`` (missing ones are zeros), e.g. float32 only."""
    out = Skeleton(
        np.asarray(skel.vertices, dtype=np.float32),
        np.asarray(skel.edges, dtype=np.uint32),
        segid=skel.id,
        space=skel.space,
        extra_attributes=[dict(a) for a in attributes],
    )
    n = len(out.vertices)
    for attr in attributes:
        values = getattr(skel, attr["id"], None)
        if values is None or len(values) != n:
            values = np.zeros((n,), dtype=attr["data_type"])
        setattr(out, attr["id"], np.asarray(values, dtype=attr["data_type"]).reshape(n))
    return out


def merge_fragments(
    fragments: Sequence[Skeleton], shared_faces: Optional[Sequence[Sequence[tuple[int, float]]]] = None
) -> Skeleton:
    """One skeleton from a label's fragments (in a fixed order): concatenate, merge identical
    vertices (the seam vertices) and duplicate edges. A merged vertex keeps the attributes of its
    first occurrence.

    ``shared_faces[i]``: the planes ``(axis, coordinate)`` fragment ``i`` shares with its
    neighbours. Both neighbours may trace paths inside a shared plane (their forced targets lie
    there; on the whole volume there is no plane and no such path): edges inside a shared plane
    are kept only where the rest of the skeleton does not already connect their ends, so no
    connection is lost.
    """
    pairs = [(f, tuple(lf) if shared_faces else ()) for f, lf in zip(fragments, shared_faces or [()] * len(fragments))]
    pairs = [(f, lf) for f, lf in pairs if not f.empty()]
    if not pairs:
        return Skeleton()
    if len(pairs) == 1:
        return pairs[0][0].consolidate()
    first = pairs[0][0]
    attributes = [dict(a) for a in first.extra_attributes]
    vertices, edges, upper, values = [], [], [], {a["id"]: [] for a in attributes}
    offset = 0
    for skel, faces in pairs:
        v = np.asarray(skel.vertices, dtype=np.float32)
        e = np.asarray(skel.edges, dtype=np.int64)
        in_plane = np.zeros(len(e), dtype=bool)
        for axis, coord in faces:
            in_plane |= (v[e[:, 0], axis] == coord) & (v[e[:, 1], axis] == coord)
        vertices.append(v)
        edges.append(e + offset)
        upper.append(in_plane)
        for attr in attributes:
            values[attr["id"]].append(np.asarray(getattr(skel, attr["id"])).reshape(len(v), -1))
        offset += len(v)
    vertices = np.concatenate(vertices)
    unique, first_index, inverse = np.unique(vertices, axis=0, return_index=True, return_inverse=True)
    edges = inverse.reshape(-1)[np.concatenate(edges)]
    upper = np.concatenate(upper)
    edges.sort(axis=1)
    loops = edges[:, 0] == edges[:, 1]
    edges, upper = edges[~loops], upper[~loops]
    keep = _keep_connecting(edges, upper, len(unique))
    edges = np.unique(edges[keep], axis=0)
    used = np.zeros(len(unique), dtype=bool)
    used[edges.ravel()] = True
    remap = np.cumsum(used) - 1
    out = Skeleton(
        unique[used], remap[edges].astype(np.uint32), segid=first.id, space=first.space,
        extra_attributes=attributes,
    )  # fmt: skip
    for attr in attributes:
        arr = np.concatenate(values[attr["id"]])[first_index][used]
        setattr(out, attr["id"], arr.reshape(len(arr)) if arr.shape[1] == 1 else arr)
    return out


def _keep_connecting(edges: np.ndarray, optional: np.ndarray, n: int) -> np.ndarray:
    """Every required edge, and the optional ones (in order) that join what the kept edges
    leave apart (Kruskal without weights): the same connectivity with the fewest optional edges."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = ~optional
    required = edges[keep]
    graph = coo_matrix((np.ones(len(required)), (required[:, 0], required[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    parent = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for i in np.flatnonzero(optional).tolist():
        a, b = find(int(comp[edges[i, 0]])), find(int(comp[edges[i, 1]]))
        if a != b:
            parent[a] = b
            keep[i] = True
    return keep


def postprocess(
    skel: Skeleton,
    dust_threshold: float,
    tick_threshold: float,
    max_cable_length: Optional[float] = None,
) -> Skeleton:
    """kimimaro's postprocess (drop components shorter than ``dust_threshold`` nm, break loops,
    join close components, prune ticks shorter than ``tick_threshold`` nm), skipped for
    skeletons longer than ``max_cable_length`` nm (it is quadratic in their terminals)."""
    import kimimaro

    if skel.empty():
        return skel
    if max_cable_length is not None and skel.cable_length() > max_cable_length:
        return skel
    label = skel.id
    attributes = skel.extra_attributes
    out = kimimaro.postprocess(
        skel, dust_threshold=float(dust_threshold or 0), tick_threshold=float(tick_threshold or 0)
    )
    out.id = label
    return keep_attributes(out, attributes) if not out.empty() else out


def cross_sectional_areas(
    labels: np.ndarray,
    skeletons: Dict[int, Skeleton],
    anisotropy: Sequence[float],
    smoothing_window: int,
    repair_contacts: bool = False,
) -> Dict[int, Skeleton]:
    """kimimaro's cross-sectional area of every skeleton vertex (voxel-space skeletons of
    ``labels``): adds ``cross_sectional_area`` (nm²) and ``cross_sectional_area_contacts``
    (non-zero where the section touched the cutout, i.e. may be underestimated)."""
    import kimimaro

    if not skeletons:
        return skeletons
    aniso = np.asarray(anisotropy, dtype=np.float32)
    physical = {}
    for label, skel in skeletons.items():
        s = skel.clone()
        s.vertices = s.vertices * aniso
        s.space = "physical"
        physical[label] = s
    kimimaro.cross_sectional_area(
        labels,
        physical,
        anisotropy=aniso,
        smoothing_window=max(1, int(smoothing_window)),
        progress=False,
        repair_contacts=repair_contacts,
    )
    for label, s in physical.items():
        skel = skeletons[label]
        for name in ("cross_sectional_area", "cross_sectional_area_contacts"):
            attr = next(a for a in s.extra_attributes if a["id"] == name)
            if not any(a["id"] == name for a in skel.extra_attributes):
                skel.extra_attributes = list(skel.extra_attributes) + [dict(attr)]
            setattr(skel, name, getattr(s, name))
    return skeletons


def terminal_branches(edges: np.ndarray, n: int) -> list[tuple[list[int], int]]:
    """``[(branch vertices from the terminal inward, attachment vertex)]`` for every terminal
    branch of a graph with ``n`` vertices; the attachment is the first vertex of degree ≠ 2
    (-1 when the branch is a whole path with two ends)."""
    if len(edges) == 0:
        return []
    degree = np.bincount(edges.ravel(), minlength=n)
    order = np.argsort(edges.ravel() // 1, kind="stable")
    flat = np.concatenate([edges[:, 1], edges[:, 0]])
    src = np.concatenate([edges[:, 0], edges[:, 1]])
    order = np.argsort(src, kind="stable")
    neighbours = flat[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
    out = []
    for t in np.flatnonzero(degree == 1).tolist():
        branch, prev, cur = [t], -1, t
        while True:
            nbrs = neighbours[starts[cur] : starts[cur + 1]]
            nxt = [int(v) for v in nbrs if v != prev]
            if not nxt:
                out.append((branch, -1))
                break
            prev, cur = cur, nxt[0]
            if degree[cur] != 2:
                out.append((branch, cur if degree[cur] > 2 else -1))
                break
            branch.append(cur)
    return out


def prune_invalidated_branches(
    skel: Skeleton,
    scale: float,
    const: float,
    seams: np.ndarray,
    max_rounds: int = 4,
) -> Skeleton:
    """Remove terminal branches that TEASAR would not have traced on the whole volume.

    Task (and sub-block) faces force a path to the centre of every 2-D section of a label
    (``fix_borders``), so a label that grazes a face gets a short stub on each side of it. On
    the whole volume the main path's invalidation ball (``scale·radius + const`` around each
    of its vertices) covers such a stub's end, and TEASAR never traces it. This applies the
    same rule after the merge: a terminal branch whose end lies inside the ball of a vertex
    outside every terminal branch is removed, if the branch holds a forced seam vertex
    (``seams``: bool per vertex); repeated while such branches disappear. Branches without a
    seam vertex are TEASAR's own and are kept, as are ends on the dataset faces (whole-volume
    kimimaro forces those too), and the longest path of each component (TEASAR's first path,
    root to farthest point, is never invalidated).
    """
    from scipy.spatial import cKDTree

    for _ in range(max_rounds):
        n = len(skel.vertices)
        branches = [(b, a) for b, a in terminal_branches(skel.edges, n) if a >= 0]
        if not branches:
            break
        trunk = longest_paths(skel.vertices, skel.edges)
        in_branch = np.zeros(n, dtype=bool)
        for b, _a in branches:
            in_branch[b] = True
        core = np.flatnonzero(~in_branch)
        if core.size == 0:
            break
        radii = np.asarray(skel.radius, dtype=np.float64).reshape(n)[core]
        reach = float(scale) * np.maximum(radii, 0) + float(const)
        tree = cKDTree(skel.vertices[core])
        doomed = []
        for b, _a in branches:
            t = b[0]
            if not seams[b].any() or trunk[b].any():
                continue
            near = tree.query_ball_point(skel.vertices[t], float(reach.max()))
            if not near:
                continue
            near = np.asarray(near)
            dist = np.linalg.norm(skel.vertices[core[near]] - skel.vertices[t], axis=1)
            if np.any(dist <= reach[near]):
                doomed.extend(b)
        if not doomed:
            break
        mask = np.ones(n, dtype=bool)
        mask[doomed] = False
        skel = _keep_vertices(skel, mask)
        seams = seams[mask]
    return skel


def seam_vertices(
    vertices_nm: np.ndarray, resolution: Sequence[float], origin: Sequence[int], task: Sequence[int],
    block: Sequence[int], bounds_min: Sequence[int], bounds_max: Sequence[int],
) -> np.ndarray:
    """Which vertices lie on a task or sub-block face inside the dataset (forced targets).

    Vertices sit at voxel centres ``(i + 0.5)·res``; face planes are at ``origin + k·task`` and,
    inside each task, at multiples of ``block`` from the task's origin.
    """
    vox = np.rint(np.asarray(vertices_nm, dtype=np.float64) / np.asarray(resolution, dtype=np.float64) - 0.5)
    vox = vox.astype(np.int64)
    rel = (vox - np.asarray(origin, dtype=np.int64)) % np.asarray(task, dtype=np.int64)
    on_plane = (rel % np.asarray(block, dtype=np.int64)) == 0
    inside = (vox > np.asarray(bounds_min, dtype=np.int64)) & (vox < np.asarray(bounds_max, dtype=np.int64) - 1)
    return np.any(on_plane & inside, axis=1)


def longest_paths(vertices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bool per vertex: on the longest shortest path (two Dijkstra sweeps) of its component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    n = len(vertices)
    out = np.zeros(n, dtype=bool)
    if n == 0 or len(edges) == 0:
        return out
    e = np.asarray(edges, dtype=np.int64)
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1) + 1e-9
    graph = coo_matrix((np.concatenate([w, w]), (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))),
                       shape=(n, n)).tocsr()  # fmt: skip
    ncomp, comp = connected_components(graph, directed=False)
    order = np.argsort(comp, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(comp, minlength=ncomp))])
    for c in range(ncomp):
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) < 2:
            continue
        sub = graph[members][:, members]
        d0 = dijkstra(sub, indices=0, directed=False)
        u = int(np.argmax(d0))
        du, pred = dijkstra(sub, indices=u, directed=False, return_predecessors=True)
        v = int(np.argmax(du))
        while v >= 0:
            out[members[v]] = True
            v = int(pred[v]) if v != u else -1
    return out


def _keep_vertices(skel: Skeleton, mask: np.ndarray) -> Skeleton:
    """``skel`` restricted to the vertices where ``mask`` is True (edges between them kept)."""
    remap = np.full(len(mask), -1, dtype=np.int64)
    remap[mask] = np.arange(int(mask.sum()))
    edges = remap[skel.edges]
    edges = edges[np.all(edges >= 0, axis=1)].astype(np.uint32)
    out = Skeleton(
        skel.vertices[mask], edges, segid=skel.id, space=skel.space,
        extra_attributes=[dict(a) for a in skel.extra_attributes],
    )  # fmt: skip
    for attr in skel.extra_attributes:
        values = getattr(skel, attr["id"], None)
        if values is not None:
            setattr(out, attr["id"], np.asarray(values)[mask])
    return out


def prune_forced_stubs(
    skel: Skeleton, forge: Optional[dict], resolution: Sequence[float], bounds_min: Sequence[int],
    bounds_max: Sequence[int], single_task: bool = False,
) -> Skeleton:
    """:func:`prune_invalidated_branches` for a merged skeleton of a forge described by
    ``forge`` (``igneous.skeletons.forge_params``; None or without ``fix_borders``: unchanged).
    ``single_task``: only sub-block faces are seams (the task covers the layer)."""
    if skel.empty() or not forge or not forge.get("fix_borders"):
        return skel
    task = np.asarray(forge["shape"], dtype=np.int64)
    block = np.minimum(np.asarray(forge["block"], dtype=np.int64), task)
    if single_task:
        task = np.asarray(bounds_max, dtype=np.int64) - np.asarray(bounds_min, dtype=np.int64) + 1
    seams = seam_vertices(skel.vertices, resolution, bounds_min, task, block, bounds_min, bounds_max)
    if not seams.any():
        return skel
    return prune_invalidated_branches(skel, forge["scale"], forge["const"], seams)


def shared_faces_nm(
    read_min: Sequence[int], read_max: Sequence[int], bounds_min: Sequence[int], bounds_max: Sequence[int],
    resolution: Sequence[float],
) -> list[tuple[int, float]]:
    """The voxel planes a fragment read from ``[read_min, read_max)`` shares with neighbouring
    tasks (its first plane when it has a lower neighbour, its last when it has an upper one), as
    the float32 nm coordinate its vertices on them have (``place_vertices``)."""
    faces = []
    for axis in range(3):
        planes = []
        if int(read_min[axis]) > int(bounds_min[axis]):
            planes.append(int(read_min[axis]))
        if int(read_max[axis]) < int(bounds_max[axis]):
            planes.append(int(read_max[axis]) - 1)
        for plane in planes:
            faces.append((axis, float(np.float32((plane + 0.5) * float(resolution[axis])))))
    return faces
