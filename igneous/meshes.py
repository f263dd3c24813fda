"""Mesh format knowledge, in one place (SPEC §4.2; docs/design-meshing.md §2).

Every name a forge writes and a merge, xfer, rm or clean reads is built here, so the
producers and consumers cannot drift apart:

* ``{mesh_dir}/info`` (legacy): ``{"@type": "neuroglancer_legacy_mesh", "mip": m,
  "chunk_size": [task shape], "spatial_index": {"resolution": [nm], "chunk_size": [shape·res]}}``.
* Unsharded forge fragment ``{segid}:{lod}:{BBOX}``: BBOX = ``Bbox.to_filename()`` of the
  task box in voxels at the mesh mip, clipped to the layer, *without* the +1 overlap.
  Content: a Precomputed mesh (``uint32 nv``, ``float32[nv·3]`` xyz in absolute nm,
  ``uint32[3·nf]``), or a Draco mesh when forged with ``encoding='draco'``; stored with the
  forge's ``compress`` (gzip by default). Neighbouring fragments of one label meet exactly
  on the centre plane of the shared voxel layer, so concatenating a label's fragments and
  welding identical vertices gives a watertight mesh.
* Legacy manifest ``{segid}:{lod}``: uncompressed JSON ``{"fragments": [names, sorted]}``.
* Sharded forge fragments ``{BBOX}.frags`` under ``frag_path`` (or the layer) ``/{mesh_dir}/``:
  a MapBuffer ``{segid: precomputed mesh bytes}`` with brotli per entry, stored *without*
  transport compression (so merges can range-read single entries), content type
  ``application/x.mapbuffer``. An empty task writes an empty MapBuffer (16-byte header).
* Spatial index ``{BBOX_nm}.spatial`` (:func:`spatial_index_filename`): gzip JSON
  ``{"segid": [x0, y0, z0, x1, y1, z1]}`` in integer nm (floor of min, ceil of max of the
  label's fragment vertices). A forge task writes it **last**, even when ``{}``: its
  presence means "this box is finished".

Merges must look up labels ≥ 2^63 in an IntMap/MapBuffer with :func:`intmap_key`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths
from cloudvolume.lib import Bbox, Vec, getprecision

__all__ = [
    "LEGACY_MESH_TYPE",
    "MULTILOD_MESH_TYPE",
    "COMPRESSION_EXTENSIONS",
    "remove_other_variants",
    "default_mesh_dir",
    "resolve_mesh_dir",
    "legacy_mesh_info",
    "read_mesh_info",
    "write_mesh_info",
    "fragment_filename",
    "manifest_filename",
    "parse_fragment_name",
    "strip_compression_extension",
    "frags_filename",
    "spatial_index_filename",
    "box_from_spatial_filename",
    "frags_filename_from_spatial",
    "grid_boxes",
    "expected_spatial_names",
    "missing_spatial_boxes",
    "voxel_counts_filename",
    "load_voxel_counts",
    "intmap_key",
    "RangeBuffer",
    "mesh_files",
    "mesh_path",
]

LEGACY_MESH_TYPE = "neuroglancer_legacy_mesh"
MULTILOD_MESH_TYPE = "neuroglancer_multilod_draco"
COMPRESSION_EXTENSIONS = (".gz", ".br", ".zstd", ".bz2", ".xz")
FRAGMENT_RE = re.compile(r"^(\d+):(\d+):(.+)$")


def default_mesh_dir(mip: int, max_simplification_error) -> str:
    """``mesh_mip_{mip}_err_{err}``; an integral error prints as an int (40, not 40.0)."""
    err = max_simplification_error
    if isinstance(err, float) and err.is_integer():
        err = int(err)
    return f"mesh_mip_{mip}_err_{err}"


def resolve_mesh_dir(info: dict, mesh_dir: Optional[str] = None) -> Optional[str]:
    """The mesh directory a command acts on: the given one, else the layer info's ``mesh``."""
    if mesh_dir:
        return str(mesh_dir).strip("/")
    found = info.get("mesh")
    return str(found).strip("/") if found else None


def legacy_mesh_info(mip: int, shape: Sequence[int], resolution: Sequence[float], spatial_index: bool = True) -> dict:
    info = {"@type": LEGACY_MESH_TYPE, "mip": int(mip), "chunk_size": [int(s) for s in shape]}
    if spatial_index:
        info["spatial_index"] = {
            "resolution": [_plain_number(r) for r in resolution],
            "chunk_size": [_plain_number(s * r) for s, r in zip(shape, resolution)],
        }
    return info


def _plain_number(x):
    """JSON-ready number that keeps an int an int (the .spatial name precision depends on it)."""
    x = x.item() if isinstance(x, np.generic) else x
    return int(x) if isinstance(x, (int, np.integer)) else float(x)


def mesh_path(layer_path: str, mesh_dir: str) -> str:
    """The mesh directory as a cloudpath of its own."""
    return f"{layer_path.rstrip('/')}/{mesh_dir.strip('/')}"


def mesh_files(cloudpath: str) -> CloudFiles:
    """CloudFiles for many small mesh files: threads for remote stores; none for file://, where
    they only add a 0.1 s wait per batch (a forge task writes one batch)."""
    local = cloudpath.startswith("file://") or "://" not in cloudpath
    return CloudFiles(cloudpath, num_threads=0 if local else 20)


def read_mesh_info(layer_path: str, mesh_dir: str) -> Optional[dict]:
    """``{mesh_dir}/info`` as a dict, or None when it does not exist."""
    return CloudFiles(layer_path).get_json(f"{mesh_dir}/info")


def write_mesh_info(layer_path: str, mesh_dir: str, info: dict) -> None:
    CloudFiles(layer_path).put_json(f"{mesh_dir}/info", info, cache_control="no-cache")


def fragment_filename(segid: int, lod: int, box: Bbox) -> str:
    return f"{int(segid)}:{int(lod)}:{box.to_filename()}"


def manifest_filename(segid: int, lod: int = 0) -> str:
    return f"{int(segid)}:{int(lod)}"


def strip_compression_extension(name: str) -> str:
    """A file:// listing shows the stored name; drop one transport-compression extension."""
    for ext in COMPRESSION_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


_SUFFIX = {None: "", "gzip": ".gz", "br": ".br", "zstd": ".zstd", "bz2": ".bz2", "xz": ".xz"}


def remove_other_variants(cloudpath: str, names: Iterable[str], compress: Optional[str]) -> None:
    """On file:// CloudFiles stores ``name`` as ``name`` + its compression's extension and reads
    the first variant it finds: remove the variants a new write in ``compress`` would not
    replace (a re-forge with another ``compress``). Other stores keep one object per name."""
    where = cfpaths.extract(cloudpath)
    if where.protocol != "file":
        return
    keep = _SUFFIX.get(compress, "")
    for name in names:
        base = os.path.join(where.path, name)
        for ext in ("",) + COMPRESSION_EXTENSIONS:
            if ext != keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(base + ext)


def parse_fragment_name(name: str) -> Optional[tuple[int, int, str]]:
    """``'12:0:0-64_0-64_0-32'`` → ``(12, 0, '0-64_0-64_0-32')``; anything else → None."""
    m = FRAGMENT_RE.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3)


def frags_filename(box: Bbox) -> str:
    return f"{box.to_filename()}.frags"


def spatial_index_filename(box_vox: Bbox, resolution_json: Sequence) -> str:
    """CloudVolume's name for the index file of a voxel box (its precision rule, exactly).

    ``resolution_json`` must be the resolution as it reads back from the mesh info JSON:
    ``[8, 8, 40]`` gives ``1184-1312_…`` but ``[8.0, 8.0, 40.0]`` gives ``1184.0-1312.0_…``.
    """
    precision = max(getprecision(r) for r in resolution_json)
    res = Vec(*resolution_json, dtype=int if precision == 0 else float)
    minpt = Vec(*box_vox.minpt).astype(res.dtype) * res
    maxpt = Vec(*box_vox.maxpt).astype(res.dtype) * res
    return Bbox(minpt, maxpt).to_filename(precision) + ".spatial"


def box_from_spatial_filename(name: str, resolution_json: Sequence) -> Bbox:
    """The voxel box of a ``.spatial`` name (the inverse of :func:`spatial_index_filename`)."""
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".spatial"):
        base = base[: -len(".spatial")]
    nm = Bbox.from_filename(base, dtype=float)  # the default dtype=int truncates decimals
    res = np.asarray(resolution_json, dtype=float)
    return Bbox(np.rint(nm.minpt / res).astype(np.int64), np.rint(nm.maxpt / res).astype(np.int64))


def frags_filename_from_spatial(name: str, resolution_json: Sequence) -> str:
    return frags_filename(box_from_spatial_filename(name, resolution_json))


def grid_boxes(bounds: Bbox, shape: Sequence[int]) -> Iterator[Bbox]:
    """The forge grid: cells of ``shape`` from ``bounds.minpt``, x fastest, clipped to bounds."""
    shape = Vec(*shape)
    size = bounds.size3()
    counts = [int(math.ceil(s / sh)) for s, sh in zip(size, shape)]
    for z in range(counts[2]):
        for y in range(counts[1]):
            for x in range(counts[0]):
                lo = bounds.minpt + Vec(x, y, z) * shape
                yield Bbox(lo, Vec(*np.minimum(lo + shape, bounds.maxpt)))


def expected_spatial_names(bounds: Bbox, mesh_info: dict) -> list[str]:
    """Every ``.spatial`` name a complete forge of ``bounds`` (voxels, mesh mip) has written."""
    si = mesh_info["spatial_index"]
    res = si["resolution"]
    shape = np.rint(np.asarray(si["chunk_size"], dtype=float) / np.asarray(res, dtype=float)).astype(int)
    return [spatial_index_filename(box, res) for box in grid_boxes(bounds, shape)]


def missing_spatial_boxes(layer_path: str, mesh_dir: str, bounds: Bbox, mesh_info: dict) -> tuple[list[str], int]:
    """``(missing .spatial names, number expected)`` for a forge of ``bounds``."""
    names = expected_spatial_names(bounds, mesh_info)
    cf = CloudFiles(layer_path)
    found = cf.exists([f"{mesh_dir}/{n}" for n in names])
    missing = [n for n in names if not found[f"{mesh_dir}/{n}"]]
    return missing, len(names)


def voxel_counts_filename(scale_key: str) -> str:
    """Where ``accumulate_voxel_counts`` puts the global counts of a scale (SPEC §4.5)."""
    return f"{scale_key}/stats/voxel_counts.im"


def load_voxel_counts(layer_path: str, scale_key: str):
    """The global voxel counts as a mapbuffer ``IntMap``, or None when they were never summed.

    CloudFiles strips any transport compression, so every protocol and compression works.
    """
    from mapbuffer import IntMap

    data = CloudFiles(layer_path).get(voxel_counts_filename(scale_key))
    if data is None:
        return None
    return IntMap(data)


def intmap_key(label: int) -> int:
    """The key to look a label up with in an IntMap/MapBuffer.

    mapbuffer's binary search takes a C ``ssize_t``: labels ≥ 2^63 must be passed as their
    int64 two's-complement view or the lookup raises OverflowError.
    """
    label = int(label)
    return label - 2**64 if label >= 2**63 else label


class RangeBuffer:
    """Byte-range ``__getitem__`` over one stored file, so a MapBuffer/IntMap reads only the
    header, index and entries it needs (the file must be stored without transport compression)."""

    def __init__(self, cloudpath: str, path: str, size: Optional[int] = None):
        self.cf = CloudFiles(cloudpath)
        self.path = path
        self._size = size

    def __len__(self) -> int:
        if self._size is None:
            self._size = int(self.cf.size(self.path))
        return self._size

    def __getitem__(self, slc):
        if isinstance(slc, int):
            idx = slc + len(self) if slc < 0 else slc
            return self[idx : idx + 1][0]
        start, stop, step = slc.indices(len(self))
        if step != 1:
            raise ValueError("RangeBuffer supports contiguous slices only")
        if stop <= start:
            return b""
        return self.cf.get([{"path": self.path, "start": start, "end": stop}])[0]["content"]


def legacy_merge_prefixes(magnitude: int) -> list[str]:
    """SPEC's legacy-merge prefixes: ``"1:"…"{10^(m−1)−1}:"`` then ``"10^(m−1)"…"10^m−1"``.

    Every label ≥ 1 falls under exactly one of them (short labels by ``"N:"``)."""
    magnitude = int(magnitude)
    short = [f"{i}:" for i in range(1, 10 ** (magnitude - 1))]
    return short + [str(i) for i in range(10 ** (magnitude - 1), 10**magnitude)]


def filename_prefixes(magnitude: int, hexadecimal: bool = False) -> list[str]:
    """Prefixes that together list every file of a mesh directory except ``info`` and the
    bare short names of :func:`short_exact_names` (xfer/rm).

    All ``magnitude``-character strings over 0-9 (+ a-f for hex shard names), the shorter
    strings followed by ``:``, ``.``, ``-`` or ``_`` (labels and manifests, ``.index``,
    ``.shard``/``.labels``, box names), and ``-`` for boxes at negative coordinates.
    """
    import itertools

    alphabet = "0123456789abcdef" if hexadecimal else "0123456789"
    magnitude = max(1, int(magnitude))
    out = ["".join(p) for p in itertools.product(alphabet, repeat=magnitude)]
    for n in range(1, magnitude):
        for p in itertools.product(alphabet, repeat=n):
            out += ["".join(p) + sep for sep in ":.-_"]
    return out + ["-"]


def short_exact_names(magnitude: int, hexadecimal: bool = False) -> list[str]:
    """Names shorter than ``magnitude`` characters with no separator (e.g. the multires data
    file ``5`` of label 5): no prefix of :func:`filename_prefixes` lists them alone."""
    import itertools

    alphabet = "0123456789abcdef" if hexadecimal else "0123456789"
    return ["".join(p) for n in range(1, max(1, int(magnitude))) for p in itertools.product(alphabet, repeat=n)]
