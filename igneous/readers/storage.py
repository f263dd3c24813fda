"""Where ingest sources live: local paths or any cloud-files URL (s3://, gs://, file://, mem://).

Local files are opened directly (the OS page cache does the rest). Remote files are read
through :class:`RangeFile`, a seekable file object that fetches aligned blocks with byte-range
requests, so a TIFF reader that seeks to one tile reads that tile and its directory, not
the whole object.
"""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import re
from collections import OrderedDict
from typing import List, Tuple

from cloudfiles import CloudFile, CloudFiles
from cloudfiles import paths as cfpaths

from igneous.errors import InvalidParameterError

__all__ = ["natural_key", "is_local", "local_path", "join", "open_binary", "read_bytes", "list_source", "RangeFile"]

WILDCARDS = re.compile(r"[*?\[]")


def natural_key(name: str) -> list:
    """Sort key that orders ``z2`` before ``z10`` (digit runs compare as numbers)."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok.lower()) for tok in re.split(r"(\d+)", name) if tok]


def normalize(url: str) -> str:
    return cfpaths.normalize(str(url))


def is_local(url: str) -> bool:
    return normalize(url).startswith("file://")


def local_path(url: str) -> str:
    return normalize(url)[len("file://") :]


def join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def open_binary(url: str, block_size: int = 1 << 20):
    """A seekable binary file object for ``url`` (local file, or range reads of a remote one)."""
    if is_local(url):
        return open(local_path(url), "rb")
    return RangeFile(url, block_size=block_size)


def read_bytes(url: str) -> bytes:
    """The whole file."""
    if is_local(url):
        with open(local_path(url), "rb") as f:
            return f.read()
    data = CloudFiles(cfpaths.dirname(normalize(url))).get(cfpaths.basename(normalize(url)), raw=True)
    if data is None:
        raise FileNotFoundError(url)
    return data


class RangeFile(io.RawIOBase):
    """Read-only, seekable view of a remote object through byte-range requests.

    Blocks of ``block_size`` bytes are fetched on demand and the last few are kept, so the
    many small reads of a TIFF directory cost one request, and reading a tile reads only
    the blocks it spans.
    """

    def __init__(self, url: str, block_size: int = 1 << 20, cache_blocks: int = 8):
        super().__init__()
        self.url = normalize(url)
        self._file = CloudFile(self.url)
        self._size = self._file.size()
        if self._size is None:
            raise FileNotFoundError(url)
        self._pos = 0
        self._block = int(block_size)
        self._cache: OrderedDict = OrderedDict()
        self._cache_blocks = cache_blocks
        self.name = self.url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def size(self) -> int:
        return self._size

    def _get_block(self, index: int) -> bytes:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        start = index * self._block
        end = min(self._size, start + self._block)
        data = self._file[start:end]
        self._cache[index] = data
        while len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        size = max(0, min(size, self._size - self._pos))
        if size == 0:
            return b""
        start, end = self._pos, self._pos + size
        if size > 2 * self._block:  # big reads (a tile, a strip) go straight through, uncached
            data = self._file[start:end]
        else:
            parts = []
            for index in range(start // self._block, (end - 1) // self._block + 1):
                block = self._get_block(index)
                lo = max(start - index * self._block, 0)
                hi = min(end - index * self._block, len(block))
                parts.append(block[lo:hi])
            data = b"".join(parts)
        self._pos = end
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def list_source(src: str) -> Tuple[str, List[str], bool]:
    """``(base_url, names, is_directory)`` for a directory, a glob, or one file.

    Names are relative to ``base_url`` and naturally sorted. A directory lists its files
    (not sub-directories); a glob (``*``, ``?``, ``[``) matches names in the last path part.
    """
    url = normalize(src)
    head, tail = url.rsplit("/", 1) if "/" in url[len("file://") :] or not is_local(url) else (url, "")
    if WILDCARDS.search(head[head.find("://") + 3 :]):
        raise InvalidParameterError(f"wildcards are allowed only in the last part of SRC; got {src}")
    if WILDCARDS.search(tail):
        names = _list_dir(head)
        names = [n for n in names if fnmatch.fnmatchcase(n, tail)]
        if not names:
            raise InvalidParameterError(f"no files match {src}")
        return head, sorted(names, key=natural_key), True
    if _is_dir(url):
        names = [n for n in _list_dir(url) if not n.startswith(".")]
        if not names:
            raise InvalidParameterError(f"directory {src} holds no files")
        return url.rstrip("/"), sorted(names, key=natural_key), True
    if not _exists(url):
        raise InvalidParameterError(f"SRC {src} does not exist")
    return head, [tail], False


def _is_dir(url: str) -> bool:
    if is_local(url):
        return os.path.isdir(local_path(url))
    return url.endswith("/") or bool(list(_list_dir(url))[:1]) and not _exists(url)


def _exists(url: str) -> bool:
    if is_local(url):
        return os.path.isfile(local_path(url))
    return CloudFile(url).exists()


def _list_dir(url: str) -> List[str]:
    if is_local(url):
        path = local_path(url)
        if not os.path.isdir(path):
            return []
        return [n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n))]
    names = CloudFiles(url.rstrip("/")).list(flat=True)
    return [posixpath.basename(n) for n in names if n and not n.endswith("/")]

