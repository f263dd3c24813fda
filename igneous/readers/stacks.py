"""Image stacks: a series of 2-D slices (a directory or glob) or one multi-page TIFF.

``discover_stack`` reads every slice's header (never its pixels) and refuses, naming the
file, a stack that cannot be ingested as one volume: unreadable files, slices of another
size, dtype or channel count, gaps or duplicates in a numbered series. ``read_box`` reads
the part of the stack one task owns.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from igneous.errors import InvalidParameterError
from igneous.readers.images import SliceHeader, TiffReader, image_format, probe_image, read_whole_image
from igneous.readers.storage import is_local, join, list_source

__all__ = ["ImageStack", "discover_stack", "check_numbering", "read_box", "PROBE_THREADS"]

log = logging.getLogger(__name__)

PROBE_THREADS = 16


@dataclass(frozen=True)
class ImageStack:
    """A stack of slices: ``names[z]`` under ``base`` (``kind='series'``), or the pages of
    ``names[0]`` (``kind='pages'``, ``header.page_offsets[z]`` per channel)."""

    base: str
    names: Tuple[str, ...]
    kind: str
    header: SliceHeader

    @property
    def shape(self) -> Tuple[int, int, int]:
        depth = self.header.depth if self.kind == "pages" else len(self.names)
        return (self.header.width, self.header.height, depth)

    @property
    def channels(self) -> int:
        return self.header.channels

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.header.dtype)

    def sources(self, z0: int, z1: int) -> List[list]:
        """What a task reading slices ``[z0, z1)`` (stack coordinates) opens: ``[name, pages]`` each."""
        if self.kind == "pages":
            return [[self.names[0], list(self.header.page_offsets[z])] for z in range(z0, z1)]
        return [[self.names[z], None] for z in range(z0, z1)]


def _describe_sources(src: str) -> Tuple[str, List[str], bool]:
    base, names, listed = list_source(src)
    images = [n for n in names if image_format(n)]
    if not images:
        raise InvalidParameterError(f"SRC {src} holds no TIFF, PNG or JPEG files")
    ignored = len(names) - len(images)
    if ignored:
        log.info("ignoring %d files under %s that are not images", ignored, src)
    return base, images, listed


def discover_stack(src: str, threads: int = PROBE_THREADS) -> ImageStack:
    """Describe and validate the stack at ``src`` (directory, glob, or one TIFF/PNG/JPEG file).

    Raises:
        InvalidParameterError: naming the first offending file.
    """
    base, names, _ = _describe_sources(src)
    if len(names) == 1 and image_format(names[0]) == "tiff":
        header = _probe(base, names[0], multipage=True)
        if header.depth > 1:  # one multi-page TIFF (alone in its folder, or matched alone by a glob)
            return ImageStack(base, (names[0],), "pages", header)
        return ImageStack(base, (names[0],), "series", header)
    check_numbering(names)
    headers = _probe_all(base, names, threads)
    first = headers[0]
    for name, header in zip(names, headers):
        if not header.same_kind(first):
            raise InvalidParameterError(
                f"slice {join(base, name)} is {header.describe()} but {join(base, names[0])} is {first.describe()}; "
                "every slice must match"
            )
    # A series is as cheap to read as its most expensive slice.
    worst = max(headers, key=lambda h: ("rows", "tiles", "strips", "whole").index(h.layout))
    return ImageStack(base, tuple(names), "series", worst)


def _probe(base: str, name: str, multipage: bool = False) -> SliceHeader:
    url = join(base, name)
    try:
        return probe_image(url, multipage=multipage)
    except InvalidParameterError:
        raise
    except Exception as err:  # the imaging libraries raise many types for a bad file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidParameterError(f"cannot read {url}: {reason}") from None


def _probe_all(base: str, names: Sequence[str], threads: int) -> List[SliceHeader]:
    workers = 1 if len(names) == 1 else (min(threads, 4) if is_local(base) else threads)
    if workers == 1:
        return [_probe(base, n) for n in names]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda n: _probe(base, n), names))


_TOKENS = re.compile(r"(\d+)")


def check_numbering(names: Sequence[str]) -> None:
    """Refuse gaps and duplicates in a numbered series.

    Names that differ in exactly one run of digits (``z0001.tif``, ``z0002.tif``, …) are
    a numbered series; their numbers must advance by one constant step. Names without
    such a pattern are only sorted naturally.
    """
    if len(names) < 2:
        return
    split = [_TOKENS.split(n) for n in names]
    if len({len(s) for s in split}) != 1:
        return
    varying = [i for i in range(len(split[0])) if len({s[i] for s in split}) > 1]
    if len(varying) != 1:
        return
    pos = varying[0]
    if not all(s[pos].isdigit() for s in split):
        return
    numbers = [int(s[pos]) for s in split]
    order = np.argsort(numbers, kind="stable")
    nums = [numbers[i] for i in order]
    for a, b in zip(order[:-1], order[1:]):
        if numbers[a] == numbers[b]:
            raise InvalidParameterError(f"slices {names[a]} and {names[b]} have the same number {numbers[a]}")
    diffs = np.diff(nums)
    step = int(diffs.min())
    for k, d in enumerate(diffs):
        if d != step:
            width = len(split[order[k]][pos])
            missing = split[order[k]][:]
            missing[pos] = str(nums[k] + step).zfill(width)
            raise InvalidParameterError(
                f"slice {''.join(missing)} is missing from the numbered series "
                f"(between {names[order[k]]} and {names[order[k + 1]]})"
            )


def read_box(
    base: str,
    sources: Sequence[Sequence],
    region: Tuple[int, int, int, int],
    channels: int,
    dtype,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Read ``region`` = (x0, x1, y0, y1) of each source slice into an (x, y, z, c) F-order array.

    ``sources`` are ``[name, page_offsets or None]`` per z (see ``ImageStack.sources``).
    """
    x0, x1, y0, y1 = region
    if out is None:
        out = np.empty((x1 - x0, y1 - y0, len(sources), channels), dtype=dtype, order="F")
    readers = {}
    try:
        for z, (name, pages) in enumerate(sources):
            url = join(base, name)
            fmt = image_format(name)
            if fmt == "tiff":
                reader = readers.get(name)
                if reader is None:
                    reader = readers[name] = TiffReader(url)
                if pages:
                    for c, offset in enumerate(pages):
                        part = reader.read(y0, y1, x0, x1, offset=offset, index=c)
                        _place(out, z, part, c if len(pages) > 1 else None)
                else:
                    _place(out, z, reader.read(y0, y1, x0, x1), None)
                if not pages:  # one slice per file: close it now
                    readers.pop(name).close()
            else:
                _place(out, z, read_whole_image(url)[y0:y1, x0:x1], None)
    finally:
        for reader in readers.values():
            reader.close()
    return out


def _place(out: np.ndarray, z: int, part: np.ndarray, channel: Optional[int]) -> None:
    """Store a (rows, columns, samples) region as x, y in ``out[:, :, z]``."""
    if channel is None:
        out[:, :, z, :] = part.transpose(1, 0, 2)
    else:
        out[:, :, z, channel] = part[:, :, 0].T
