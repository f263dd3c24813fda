"""Multi-resolution meshes (Neuroglancer ``neuroglancer_multilod_draco``), pure compute.

One label's fused LOD 0 mesh, in *model units* (voxels of the mesh mip, absolute), becomes
``(fragment data, manifest)`` bytes:

1. ``label_grid``: an integer octree grid around the label (design §3.7.1). Integer origin
   and chunk make every cell plane exact in float32.
2. ``chunk_by_centroid``: LOD 0 is the mesh cut on the finest grid. zmesh's ``chunk_mesh``
   cuts correctly but files slivers lying on a cell's high faces under the wrong cell, which
   leaves holes once quantized relative to that cell; we re-file every triangle by its
   centroid (zmesh ``chunk_mesh.hpp:249``).
3. ``build_lods``: LOD k+1 of each parent cell = its LOD k children welded and halved with
   ``simplify_pinned_border``. The open border (the cut on the parent's faces) never moves,
   so every LOD has the same polyline on each coarse plane and mixed LODs have no cracks.
   zmesh's ``preserve_border`` loses border vertices (``fqmr.hpp:387`` assigns the border flag
   instead of OR-ing it); one sentinel triangle per border vertex works around that.
4. ``quantize_fragment`` + ``encode_fragment``: vertices are pre-quantized to integers in
   ``[0, 2^vqb - 1]`` relative to their cell and Draco is told to quantize with exactly that
   range, which makes its quantizer the identity: vertices on cell faces decode exactly onto
   the face. A fragment with no faces left is 0 bytes and keeps its octree position.
5. ``Manifest``: the ``{segid}.index`` bytes; fragments of each LOD in Z-order.

Everything here is numpy in, bytes out: no storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import DracoPy
import numpy as np
import zmesh

from igneous.errors import InvalidParameterError

__all__ = [
    "Grid",
    "Manifest",
    "MAX_TRIANGLES_PER_PIECE",
    "weld",
    "boundary_vertices",
    "label_grid",
    "chunk_by_centroid",
    "snap_to_coarsest_lattice",
    "simplify_pinned_border",
    "build_lods",
    "quantize_fragment",
    "encode_fragment",
    "decode_fragment_lattice",
    "morton_codes",
    "morton_order",
    "encode_label",
    "decode_label",
    "check_vertex_quantization_bits",
    "surface_deviation",
]

Cell = Tuple[int, int, int]
Piece = Tuple[np.ndarray, np.ndarray]  # (vertices float32 (n,3), faces uint32 (m,3))

# SPEC's generate_lods cap: no single simplification call gets more triangles than this.
MAX_TRIANGLES_PER_PIECE = 2_000_000
SENTINEL_EPS = np.float32(1e-3)
# zmesh computes a cut point from each triangle's own edge direction, so the two triangles of a
# shared edge can get cut points a few float32 ulps apart. Vertices closer than this (voxels)
# are one vertex; it is far below the finest Draco quantum we write.
CUT_WELD_TOLERANCE = 1e-3
VERTEX_QUANTIZATION_BITS = (10, 16)


def check_vertex_quantization_bits(vqb) -> int:
    """Neuroglancer accepts 10 or 16 bits per vertex component."""
    if isinstance(vqb, bool) or vqb not in VERTEX_QUANTIZATION_BITS:
        raise InvalidParameterError(f"vertex_quantization_bits must be 10 or 16; got {vqb!r}")
    return int(vqb)


def _empty() -> Piece:
    return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)


def weld(vertices: np.ndarray, faces: np.ndarray) -> Piece:
    """Merge bit-identical vertices, drop degenerate faces and unused vertices."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32).reshape(-1, 3)
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) == 0 or len(vertices) == 0:
        return _empty()
    rows = vertices.view(np.dtype((np.void, 12))).reshape(-1)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    f = inverse[faces.astype(np.int64)]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[keep]
    if len(f) == 0:
        return _empty()
    used, f = np.unique(f.reshape(-1), return_inverse=True)
    return vertices[first[used]].copy(), f.reshape(-1, 3).astype(np.uint32)


def _weld_cut(vertices: np.ndarray, faces: np.ndarray, tolerance: float, planes: np.ndarray) -> Piece:
    """Weld a cut soup: identical vertices, then cut points closer than ``tolerance``.

    zmesh computes a cut point once per triangle, so the two triangles of an edge can get
    points a few ulps apart (and not always snapped onto the plane). Vertices closer than
    ``tolerance`` (Chebyshev, transitively) become one; the merged vertex keeps every plane
    coordinate (a multiple of ``planes``) of its members, so vertices shared between cells
    stay on the plane they share; otherwise quantizing them relative to each cell would put
    them in different places.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    rows = np.ascontiguousarray(vertices, dtype=np.float32).view(np.dtype((np.void, 12))).reshape(-1)
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    vertices = vertices[first]
    faces = inverse.reshape(-1)[faces]
    pairs = cKDTree(vertices).query_pairs(tolerance, p=np.inf, output_type="ndarray")
    if len(pairs) == 0:
        return vertices, faces
    n = len(vertices)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    ncomp, comp = connected_components(graph, directed=False)
    rep = np.full(ncomp, n, np.int64)
    np.minimum.at(rep, comp, np.arange(n))
    target = rep[comp]
    merged = vertices.copy()
    on_plane = np.mod(vertices, planes) == 0
    for axis in range(3):
        members = np.flatnonzero(on_plane[:, axis])
        merged[target[members], axis] = vertices[members, axis]
    return merged, target[faces]


def boundary_vertices(faces: np.ndarray) -> np.ndarray:
    """Vertices of the edges used by exactly one face (the open border), sorted."""
    if len(faces) == 0:
        return np.zeros(0, np.int64)
    f = np.asarray(faces, dtype=np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    keys = edges[:, 0] * (int(f.max()) + 1) + edges[:, 1]
    uniq, counts = np.unique(keys, return_counts=True)
    once = uniq[counts == 1]
    n = int(f.max()) + 1
    return np.unique(np.concatenate([once // n, once % n]))


@dataclass(frozen=True)
class Grid:
    """A label's octree: LOD k has cells of ``chunk · 2^k`` from ``origin`` (integer voxels)."""

    origin: Tuple[int, int, int]
    chunk: Tuple[int, int, int]
    num_lods: int

    def cells_per_axis(self, lod: int) -> int:
        return 2 ** (self.num_lods - 1 - lod)

    def cell_size(self, lod: int) -> np.ndarray:
        return np.asarray(self.chunk, dtype=np.float64) * 2**lod

    def cell_lo(self, lod: int, cell: Cell) -> np.ndarray:
        return np.asarray(self.origin, np.float64) + np.asarray(cell, np.float64) * self.cell_size(lod)


def label_grid(vertices: np.ndarray, min_chunk_size: Sequence[int], num_lod: int) -> Grid:
    """The octree grid of one label (model units).

    ``num_lod`` counts the *extra* simplified levels; a label smaller than ``min_chunk_size``
    gets only LOD 0, and the finest cell is never smaller than ``min_chunk_size`` on the
    label's largest axis (relative to the chunk).
    """
    if num_lod < 0:
        raise ValueError(f"num_lod must be >= 0; got {num_lod}")
    v = np.asarray(vertices, dtype=np.float64)
    lo = np.floor(v.min(axis=0)).astype(np.int64)
    span = np.maximum(np.ceil(v.max(axis=0)).astype(np.int64) - lo, 1)
    ratio = float(np.max(span / np.maximum(np.asarray(min_chunk_size, np.float64), 1)))
    extra = max(0, int(math.floor(math.log2(ratio)))) if ratio >= 1 else 0
    num_lods = 1 + min(int(num_lod), extra)
    chunk = -(-span // 2 ** (num_lods - 1))
    return Grid(tuple(int(x) for x in lo), tuple(int(x) for x in chunk), num_lods)


def _group_faces(vertices: np.ndarray, faces: np.ndarray, cells: np.ndarray) -> Dict[Cell, Piece]:
    """Split a soup by a per-face cell index; each group welded."""
    out: Dict[Cell, Piece] = {}
    if len(faces) == 0:
        return out
    order = np.lexsort((cells[:, 2], cells[:, 1], cells[:, 0]))
    cells = cells[order]
    faces = faces[order]
    change = np.flatnonzero(np.any(np.diff(cells, axis=0) != 0, axis=1)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(faces)]])
    for s, e in zip(starts, ends):
        v, f = weld(vertices, faces[s:e])
        if len(f):
            out[tuple(int(c) for c in cells[s])] = (v, f)
    return out


def snap_to_coarsest_lattice(vertices: np.ndarray, grid: Grid, vqb: int) -> np.ndarray:
    """Vertices on a cell plane of LOD 0, with their other coordinates snapped to the lattice
    of the coarsest LOD (``cell_size(top) / (2^vqb - 1)`` from the grid origin).

    Each LOD quantizes relative to its own cells, so a border vertex shared by a fine and a
    coarse fragment would round to a different point in each: mixed LODs would meet one fine
    quantum apart (a quarter voxel at 10 bits in 256³ cells). A coordinate on the coarsest
    lattice is a whole number of quanta at every LOD, so every LOD decodes it to the same
    place and mixed LODs meet exactly. The plane coordinate itself is already exact.
    """
    v = np.asarray(vertices, np.float64)
    rel = v - np.asarray(grid.origin, np.float64)
    size = grid.cell_size(0)
    unit = grid.cell_size(grid.num_lods - 1) / float(2**vqb - 1)
    # a cut point a few ulps off its plane is on it (it can be used by triangles filed on
    # either side): put it exactly there, where both sides quantize it to their face
    plane = np.round(rel / size) * size
    on = np.abs(rel - plane) <= CUT_WELD_TOLERANCE
    rel = np.where(on, plane, rel)
    move = on.any(axis=1)[:, None] & ~on
    # never across a plane: the vertex stays in its LOD 0 cell (it would leave the fragments
    # that hold it), on the nearest lattice point inside the cell
    lo = np.floor(rel / size) * size
    snapped = np.rint(rel / unit) * unit
    snapped = np.where(snapped < lo, np.ceil(lo / unit) * unit, snapped)
    snapped = np.where(snapped > lo + size, np.floor((lo + size) / unit) * unit, snapped)
    rel = np.where(move, snapped, rel)
    return (rel + np.asarray(grid.origin, np.float64)).astype(np.float32)


def chunk_by_centroid(
    vertices: np.ndarray, faces: np.ndarray, grid: Grid, lod: int = 0, vqb=None
) -> Dict[Cell, Piece]:
    """Cut a mesh on the grid of ``lod`` and file each triangle under its centroid's cell.

    Every returned piece is welded and lies inside its cell (cut vertices are snapped onto
    the planes by zmesh, within 1e-5). With ``vqb``, vertices on the planes are moved onto the
    coarsest LOD's quantization lattice (:func:`snap_to_coarsest_lattice`).
    """
    n = grid.cells_per_axis(lod)
    size = grid.cell_size(lod)
    origin = np.asarray(grid.origin, np.float64)
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    if n == 1:
        v, f = weld(vertices, faces)
        return {(0, 0, 0): (v, f)} if len(f) else {}
    # zmesh sizes its grid twice (float64 in Python, float32 in C++) from the largest vertex.
    # An unused vertex exactly on the far corner makes both agree on n cells per axis, so no
    # piece is dropped or read out of range.
    corner = (origin + size * n).astype(np.float32)[None, :]
    mesh = zmesh.Mesh(np.concatenate([vertices, corner]), faces, None, id=1)
    pieces = zmesh.chunk_mesh(mesh, tuple(float(s) for s in size), grid_origin=tuple(float(o) for o in origin))
    if not pieces:
        return {}
    verts, fcs, offset = [], [], 0
    for p in pieces.values():
        verts.append(p.vertices)
        fcs.append(p.faces.astype(np.int64) + offset)
        offset += len(p.vertices)
    V, F = _weld_cut(np.concatenate(verts), np.concatenate(fcs), CUT_WELD_TOLERANCE, size.astype(np.float32))
    if vqb is not None and grid.num_lods > 1:
        V = snap_to_coarsest_lattice(V, grid, vqb)
    centroid = V[F].astype(np.float64).mean(axis=1)
    cells = np.clip(np.floor((centroid - origin) / size).astype(np.int64), 0, n - 1)
    return _group_faces(V, F, cells)


def simplify_pinned_border(vertices: np.ndarray, faces: np.ndarray, target: int) -> Piece:
    """Simplify toward ``target`` faces (zmesh fqmr) without moving any open-border vertex.

    One sentinel triangle per border vertex (two new vertices at the end) makes fqmr's last
    border scan of that vertex see it on a border; pinned vertices never collapse. The
    sentinels are the last ``2k`` vertices of the result and are dropped with their faces.
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    if len(faces) <= target:
        return vertices, faces
    border = boundary_vertices(faces)
    n, k = len(vertices), len(border)
    if k == 0:
        out = zmesh.simplify_fqmr(zmesh.Mesh(vertices, faces, None, id=1), int(target), preserve_border=True)
        return weld(out.vertices, out.faces)
    bv = vertices[border]
    V = np.concatenate([vertices, bv + np.float32([SENTINEL_EPS, 0, 0]), bv + np.float32([0, SENTINEL_EPS, 0])])
    ar = np.arange(k, dtype=np.int64)
    F = np.concatenate([faces.astype(np.int64), np.stack([border, n + ar, n + k + ar], axis=1)])
    out = zmesh.simplify_fqmr(
        zmesh.Mesh(V.astype(np.float32), F.astype(np.uint32), None, id=1), int(target) + k, preserve_border=True
    )
    nv = len(out.vertices) - 2 * k
    keep = np.all(out.faces < nv, axis=1)
    return weld(out.vertices[:nv], out.faces[keep])


def _closest_point_distance(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Distance from each point to its own triangle ``tri[i]`` (Ericson, Real-Time Collision
    Detection §5.1.5), vectorized."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp, cp = points - b, points - c
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v = np.where(denom != 0, vb / denom, 0.0)
        w = np.where(denom != 0, vc / denom, 0.0)
        closest = a + ab * v[:, None] + ac * w[:, None]  # interior
        # vertex regions
        closest = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, closest)
        closest = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, closest)
        closest = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, closest)
        # edge regions
        t = np.where(d1 - d3 != 0, d1 / (d1 - d3), 0.0)
        closest = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[:, None], a + ab * t[:, None], closest)
        t = np.where(d2 - d6 != 0, d2 / (d2 - d6), 0.0)
        closest = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[:, None], a + ac * t[:, None], closest)
        e = (d4 - d3) + (d5 - d6)
        t = np.where(e != 0, (d4 - d3) / e, 0.0)
        closest = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[:, None], b + (c - b) * t[:, None], closest)
    return np.linalg.norm(points - closest, axis=1)


def surface_deviation(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, candidates: int = 16) -> np.ndarray:
    """An upper bound on each point's distance to the surface ``(vertices, faces)``.

    Exact distances to the ``candidates`` triangles with the nearest centroids; the minimum
    over a subset of triangles can only overestimate, so a bound that passes is a real bound.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    if len(points) == 0:
        return np.zeros(0)
    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    k = min(candidates, len(tri))
    _, idx = cKDTree(tri.mean(axis=1)).query(points, k=k)
    idx = idx.reshape(len(points), k)
    best = np.full(len(points), np.inf)
    for j in range(k):
        best = np.minimum(best, _closest_point_distance(points, tri[idx[:, j]]))
    return best


def _all_within(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, bound: float, candidates: int = 16
) -> bool:
    """Whether every point lies within ``bound`` of the surface (exact distances to the
    triangles with the nearest centroids; points already close are not looked at again)."""
    from scipy.spatial import cKDTree

    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    k = min(candidates, len(tri))
    _, idx = cKDTree(tri.mean(axis=1)).query(points, k=k)
    idx = idx.reshape(len(points), k)
    todo = np.arange(len(points))
    for j in range(k):
        d = _closest_point_distance(points[todo], tri[idx[todo, j]])
        todo = todo[d > bound]
        if len(todo) == 0:
            return True
    return False


def _simplify_within(v: np.ndarray, f: np.ndarray, max_error, scale: np.ndarray) -> Piece:
    """Halve the faces of a parent piece, keeping every vertex within ``max_error`` (physical
    units, model units × ``scale``) of the piece it was simplified from; a piece that cannot be
    simplified that closely is kept as it is."""
    target = min(max(4, len(f) // 2), MAX_TRIANGLES_PER_PIECE)
    if max_error is None:
        return simplify_pinned_border(v, f, target)
    for _ in range(3):
        sv, sf = simplify_pinned_border(v, f, target)
        if len(sf) == 0 or _all_within(sv.astype(np.float64) * scale, v * scale, f, max_error):
            return sv, sf
        target = (target + len(f)) // 2  # less reduction, less error
    return v, f


def build_lods(
    vertices: np.ndarray, faces: np.ndarray, grid: Grid, max_error=None, scale=(1.0, 1.0, 1.0), vqb=None
) -> List[Dict[Cell, Piece]]:
    """Pieces per LOD: LOD 0 cut by centroid, LOD k+1 per parent from its LOD k children.

    With ``max_error`` (physical units; model units × ``scale``), every vertex of LOD k+1
    lies within ``max_error`` of LOD k's surface. With ``vqb``, the pinned border vertices sit
    on the coarsest LOD's quantization lattice, so mixed LODs meet exactly once quantized.
    """
    scale = np.asarray(scale, np.float64)
    lods = [chunk_by_centroid(vertices, faces, grid, 0, vqb=vqb)]
    for _ in range(1, grid.num_lods):
        children: Dict[Cell, List[Piece]] = {}
        for cell, piece in lods[-1].items():
            children.setdefault(tuple(c // 2 for c in cell), []).append(piece)
        level: Dict[Cell, Piece] = {}
        for parent, kids in children.items():
            offsets = np.cumsum([0] + [len(v) for v, _ in kids])
            v, f = weld(
                np.concatenate([v for v, _ in kids]),
                np.concatenate([f.astype(np.int64) + o for (_, f), o in zip(kids, offsets)]),
            )
            level[parent] = _simplify_within(v, f, max_error, scale) if len(f) else (v, f)
        lods.append(level)
    return lods


def quantize_fragment(vertices: np.ndarray, faces: np.ndarray, cell_lo, cell_size, vqb: int) -> Piece:
    """Integers in ``[0, 2^vqb - 1]`` relative to the cell, welded on the lattice."""
    Q = float(2**vqb - 1)
    v = np.asarray(vertices, np.float64)
    q = np.clip(np.rint((v - np.asarray(cell_lo)) / np.asarray(cell_size) * Q), 0, Q).astype(np.float32)
    return weld(q, faces)


def encode_fragment(q: np.ndarray, faces: np.ndarray, vqb: int, compression_level: int) -> bytes:
    """Draco bytes whose decoded positions equal ``q`` exactly; b"" for a fragment without faces."""
    if len(faces) == 0:
        return b""
    Q = 2**vqb - 1
    try:
        return bytes(
            DracoPy.encode(
                q,
                faces,
                quantization_bits=vqb,
                compression_level=int(compression_level),
                quantization_range=Q,
                quantization_origin=(0, 0, 0),
            )
        )
    except DracoPy.EncodingFailedException:  # all faces degenerate for Draco: an empty node
        return b""


def decode_fragment_lattice(data: bytes) -> Piece:
    """Decode a fragment to its integer stored-model positions (tests and verification)."""
    if not data:
        return _empty()
    m = DracoPy.decode(data)
    return np.asarray(m.points, np.float32).reshape(-1, 3), np.asarray(m.faces, np.uint32).reshape(-1, 3)


def morton_codes(positions: np.ndarray) -> np.ndarray:
    """Z-order codes with x in bit 0, then y, then z (Neuroglancer's fragment order)."""
    pos = np.asarray(positions, dtype=np.uint64).reshape(-1, 3)
    code = np.zeros(len(pos), np.uint64)
    for bit in range(21):
        for axis in range(3):
            code |= ((pos[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return code


def morton_order(positions: np.ndarray) -> np.ndarray:
    """Indices that sort ``positions`` in Z-order (children of a node become contiguous)."""
    return np.argsort(morton_codes(positions), kind="stable")


@dataclass
class Manifest:
    """``{segid}.index``: the multilod manifest (little endian, Neuroglancer meshes.md)."""

    chunk_shape: Tuple[float, float, float]
    grid_origin: Tuple[float, float, float]
    num_lods: int
    lod_scales: List[float]
    vertex_offsets: List[Tuple[float, float, float]]
    fragment_positions: List[np.ndarray] = field(default_factory=list)  # per lod (n, 3) uint32
    fragment_sizes: List[np.ndarray] = field(default_factory=list)  # per lod (n,) uint32

    def to_bytes(self) -> bytes:
        parts = [
            np.asarray(self.chunk_shape, "<f4").tobytes(),
            np.asarray(self.grid_origin, "<f4").tobytes(),
            np.uint32(self.num_lods).astype("<u4").tobytes(),
            np.asarray(self.lod_scales, "<f4").tobytes(),
            np.asarray(self.vertex_offsets, "<f4").reshape(self.num_lods, 3).tobytes(order="C"),
            np.asarray([len(s) for s in self.fragment_sizes], "<u4").tobytes(),
        ]
        for pos, sizes in zip(self.fragment_positions, self.fragment_sizes):
            parts.append(np.asarray(pos, "<u4").reshape(-1, 3).tobytes(order="F"))
            parts.append(np.asarray(sizes, "<u4").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse; raises ValueError if the bytes are not exactly one manifest."""
        if len(data) < 28:
            raise ValueError(f"a multilod manifest has at least 28 bytes; got {len(data)}")
        num_lods = int(np.frombuffer(data, "<u4", 1, 24)[0])
        head = 28 + num_lods * (4 + 12 + 4)
        if num_lods < 1 or len(data) < head:
            raise ValueError(f"manifest declares {num_lods} LODs but has {len(data)} bytes")
        chunk = np.frombuffer(data, "<f4", 3, 0)
        origin = np.frombuffer(data, "<f4", 3, 12)
        scales = np.frombuffer(data, "<f4", num_lods, 28)
        offs = np.frombuffer(data, "<f4", 3 * num_lods, 28 + 4 * num_lods).reshape(num_lods, 3)
        counts = np.frombuffer(data, "<u4", num_lods, 28 + 16 * num_lods)
        pos, sizes, at = [], [], head
        for n in counts.tolist():
            if at + 16 * n > len(data):
                raise ValueError("manifest is truncated")
            pos.append(np.frombuffer(data, "<u4", 3 * n, at).reshape(n, 3, order="F"))
            sizes.append(np.frombuffer(data, "<u4", n, at + 12 * n))
            at += 16 * n
        if at != len(data):
            raise ValueError(f"manifest has {len(data) - at} trailing bytes")
        return cls(
            tuple(chunk.tolist()),
            tuple(origin.tolist()),
            num_lods,
            scales.tolist(),
            [tuple(r) for r in offs.tolist()],
            pos,
            sizes,
        )

    @property
    def data_size(self) -> int:
        """Bytes of fragment data this manifest describes (all LODs)."""
        return int(sum(int(np.sum(s, dtype=np.uint64)) for s in self.fragment_sizes))


def _empty_manifest() -> Manifest:
    return Manifest(
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        1,
        [1.0],
        [(0.0, 0.0, 0.0)],
        [np.zeros((0, 3), np.uint32)],
        [np.zeros(0, np.uint32)],
    )


def encode_label(
    vertices: np.ndarray,
    faces: np.ndarray,
    min_chunk_size: Sequence[int],
    num_lod: int,
    vertex_quantization_bits: int = 16,
    compression_level: int = 7,
    max_error=None,
    resolution=(1.0, 1.0, 1.0),
) -> Tuple[bytes, bytes]:
    """One label's multires mesh: ``(fragment data, manifest)``.

    ``max_error`` (nm, with ``resolution`` the nm per model unit) bounds how far each LOD's
    vertices may move from the LOD it was simplified from; None does not check.

    ``vertices`` are in model units (voxels of the mesh mip, absolute: nm / resolution) and
    are welded here. The data file holds every fragment, LOD 0 first, each LOD in Z-order; the
    manifest says where. An empty mesh gives a one-LOD manifest with no fragments.
    """
    vqb = check_vertex_quantization_bits(vertex_quantization_bits)
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) == 0:
        return b"", _empty_manifest().to_bytes()
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    grid = label_grid(vertices[np.unique(faces)], min_chunk_size, num_lod)
    # Work relative to the (integer) grid origin: float32 keeps ~7 digits, and absolute voxel
    # coordinates would spend them on the offset instead of on the cut and quantization.
    local, faces = weld((vertices - np.asarray(grid.origin, np.float64)).astype(np.float32), faces)
    if len(faces) == 0:
        return b"", _empty_manifest().to_bytes()
    lgrid = Grid((0, 0, 0), grid.chunk, grid.num_lods)
    lods = build_lods(local, faces, lgrid, max_error, resolution, vqb=vqb)
    # every parent of a node must exist as a node (Neuroglancer walks the octree top down)
    for lod in range(1, grid.num_lods):
        for cell in list(lods[lod - 1]):
            lods[lod].setdefault(tuple(c // 2 for c in cell), _empty())
    chunks, positions, sizes = [], [], []
    for lod, pieces in enumerate(lods):
        cells = np.asarray(sorted(pieces), dtype=np.uint32).reshape(-1, 3)
        cells = cells[morton_order(cells)]
        size = grid.cell_size(lod)
        lod_sizes = []
        for cell in cells:
            v, f = pieces[tuple(int(c) for c in cell)]
            q, qf = quantize_fragment(v, f, lgrid.cell_lo(lod, cell), size, vqb) if len(f) else _empty()
            blob = encode_fragment(q, qf, vqb, compression_level)
            chunks.append(blob)
            lod_sizes.append(len(blob))
        positions.append(cells)
        sizes.append(np.asarray(lod_sizes, np.uint32))
    manifest = Manifest(
        chunk_shape=tuple(float(c) for c in grid.chunk),
        grid_origin=tuple(float(o) for o in grid.origin),
        num_lods=grid.num_lods,
        lod_scales=[float(2**k) for k in range(grid.num_lods)],
        vertex_offsets=[(0.0, 0.0, 0.0)] * grid.num_lods,
        fragment_positions=positions,
        fragment_sizes=sizes,
    )
    return b"".join(chunks), manifest.to_bytes()


def decode_label(data: bytes, manifest: bytes, vertex_quantization_bits: int, lod: int) -> List[Piece]:
    """Fragments of one LOD in model units (the inverse of ``encode_label``, for checks)."""
    m = Manifest.from_bytes(manifest)
    Q = float(2**vertex_quantization_bits - 1)
    start = sum(int(np.sum(s, dtype=np.uint64)) for s in m.fragment_sizes[:lod])
    out = []
    size = np.asarray(m.chunk_shape, np.float64) * 2**lod
    for pos, n in zip(m.fragment_positions[lod], m.fragment_sizes[lod].tolist()):
        q, f = decode_fragment_lattice(data[start : start + n])
        start += n
        if len(f):
            v = np.asarray(m.grid_origin, np.float64) + size * (pos.astype(np.float64) + q.astype(np.float64) / Q)
            out.append((v, f))
    return out
