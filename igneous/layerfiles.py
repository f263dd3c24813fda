"""Files in a layer's sub-directories (meshes, skeletons): one home for what both read and write.

* Stored names and compression: on file:// CloudFiles stores ``name`` + its compression's
  extension (``.gz``, ``.br``, …) and listings show it; cloud stores keep the bare name.
* Prefix schemes that split a directory into tasks (merges, transfers, deletions).
* Byte-range reads of one stored file (MapBuffer/IntMap lookups without a whole download).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Iterable, Optional

from cloudfiles import CloudFiles
from cloudfiles import paths as cfpaths

__all__ = [
    "COMPRESSION_EXTENSIONS",
    "strip_compression_extension",
    "remove_other_variants",
    "subdir_path",
    "subdir_files",
    "read_sub_info",
    "write_sub_info",
    "legacy_merge_prefixes",
    "filename_prefixes",
    "short_exact_names",
    "RangeBuffer",
]

COMPRESSION_EXTENSIONS = (".gz", ".br", ".zstd", ".bz2", ".xz")
_SUFFIX = {None: "", "gzip": ".gz", "br": ".br", "zstd": ".zstd", "bz2": ".bz2", "xz": ".xz"}


def strip_compression_extension(name: str) -> str:
    """A file:// listing shows the stored name; drop one transport-compression extension."""
    for ext in COMPRESSION_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def remove_other_variants(cloudpath: str, names: Iterable[str], compress: Optional[str]) -> None:
    """On file:// CloudFiles stores ``name`` as ``name`` + its compression's extension and reads
    the first variant it finds: remove the variants a new write in ``compress`` would not
    replace (a re-run with another ``compress``). Other stores keep one object per name."""
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


def subdir_path(layer_path: str, subdir: str) -> str:
    """A layer's sub-directory (``mesh_dir``, ``skel_dir``) as a cloudpath of its own."""
    return f"{layer_path.rstrip('/')}/{subdir.strip('/')}"


def subdir_files(cloudpath: str) -> CloudFiles:
    """CloudFiles for many small files: threads for remote stores; none for file://, where
    they only add a 0.1 s wait per batch."""
    local = cloudpath.startswith("file://") or "://" not in cloudpath
    return CloudFiles(cloudpath, num_threads=0 if local else 20, progress=False)


def read_sub_info(layer_path: str, subdir: str) -> Optional[dict]:
    """``{subdir}/info`` (a mesh or skeleton info) as a dict, or None when it does not exist."""
    return CloudFiles(layer_path, progress=False).get_json(f"{subdir}/info")


def write_sub_info(layer_path: str, subdir: str, info: dict) -> None:
    """Write ``{subdir}/info`` uncompressed and uncached: readers must see a new one at once."""
    CloudFiles(layer_path, progress=False).put_json(f"{subdir}/info", info, cache_control="no-cache")


def legacy_merge_prefixes(magnitude: int) -> list[str]:
    """SPEC's merge prefixes: ``"1:"…"{10^(m−1)−1}:"`` then ``"10^(m−1)"…"10^m−1"``.

    Every label ≥ 1 falls under exactly one of them (short labels by ``"N:"``)."""
    magnitude = int(magnitude)
    short = [f"{i}:" for i in range(1, 10 ** (magnitude - 1))]
    return short + [str(i) for i in range(10 ** (magnitude - 1), 10**magnitude)]


def filename_prefixes(magnitude: int, hexadecimal: bool = False) -> list[str]:
    """Prefixes that together list every file of a sub-directory except ``info`` and the bare
    short names of :func:`short_exact_names` (xfer/rm).

    All ``magnitude``-character strings over 0-9 (+ a-f for hex shard names), the shorter
    strings followed by ``:``, ``.``, ``-`` or ``_`` (labels and fragments, ``.index``,
    ``.shard``/``.labels``, box names), and ``-`` for boxes at negative coordinates.
    """
    alphabet = "0123456789abcdef" if hexadecimal else "0123456789"
    magnitude = max(1, int(magnitude))
    out = ["".join(p) for p in itertools.product(alphabet, repeat=magnitude)]
    for n in range(1, magnitude):
        for p in itertools.product(alphabet, repeat=n):
            out += ["".join(p) + sep for sep in ":.-_"]
    return out + ["-"]


def short_exact_names(magnitude: int, hexadecimal: bool = False) -> list[str]:
    """Names shorter than ``magnitude`` characters with no separator (e.g. the final skeleton
    ``5`` of label 5): no prefix of :func:`filename_prefixes` lists them alone."""
    alphabet = "0123456789abcdef" if hexadecimal else "0123456789"
    return ["".join(p) for n in range(1, max(1, int(magnitude))) for p in itertools.product(alphabet, repeat=n)]


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
