"""2-D image files: what a slice holds (its header) and how to read part of it.

TIFF (tifffile) is read by segments: of a tiled page only the tiles a region touches are
read and decoded, of a stripped page only its strips (or, uncompressed, only its rows).
PNG and JPEG (Pillow) have no such index, so a slice is decoded whole. Every reader
returns ``(rows, columns, channels)`` arrays in the file's dtype (1-bit images as uint8
0/1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np

from igneous.errors import InvalidParameterError
from igneous.readers.storage import open_binary

__all__ = [
    "IMAGE_EXTENSIONS",
    "SliceHeader",
    "image_format",
    "probe_image",
    "TiffReader",
    "read_whole_image",
    "missing_extra",
]

TIFF_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf8")
PNG_EXTENSIONS = (".png",)
JPEG_EXTENSIONS = (".jpg", ".jpeg")
IMAGE_EXTENSIONS = TIFF_EXTENSIONS + PNG_EXTENSIONS + JPEG_EXTENSIONS
PLANE_AXES = ("Y", "X", "S")


def missing_extra(module: str, extra: str) -> InvalidParameterError:
    return InvalidParameterError(f"reading this input needs {module}: pip install 'igneous[{extra}]'")


def _tifffile():
    try:
        import tifffile
    except ImportError:
        raise missing_extra("tifffile", "ingest") from None
    return tifffile


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise missing_extra("Pillow", "ingest") from None
    Image.MAX_IMAGE_PIXELS = None  # microscopy slices are legitimately huge
    return Image


def image_format(name: str) -> Optional[str]:
    low = name.lower()
    if low.endswith(TIFF_EXTENSIONS):
        return "tiff"
    if low.endswith(PNG_EXTENSIONS):
        return "png"
    if low.endswith(JPEG_EXTENSIONS):
        return "jpeg"
    return None


@dataclass(frozen=True)
class SliceHeader:
    """What one image file holds, learnt from its header alone.

    ``layout`` says what reading part of a page costs: ``tiles`` (only the tiles touched),
    ``rows`` (only the rows, uncompressed strips), ``strips`` (whole strips of
    ``segment[0]`` rows), ``whole`` (the whole page is decoded).
    ``page_offsets`` are the TIFF directory offsets of each plane (z, channel) of a
    multi-page file, so a task can go straight to its pages.
    """

    format: str
    width: int
    height: int
    channels: int
    dtype: str
    layout: str
    segment: Tuple[int, int]
    depth: int = 1
    page_offsets: Tuple[Tuple[int, ...], ...] = field(default=(), repr=False)

    def slice_bytes(self) -> int:
        return self.width * self.height * self.channels * np.dtype(self.dtype).itemsize

    def same_kind(self, other: SliceHeader) -> bool:
        return (self.width, self.height, self.channels, self.dtype) == (
            other.width,
            other.height,
            other.channels,
            other.dtype,
        )

    def describe(self) -> str:
        return f"{self.width}x{self.height} pixels, {self.channels} channel(s) of {self.dtype}"


def probe_image(url: str, multipage: bool = False) -> SliceHeader:
    """The header of one image file. ``multipage``: a TIFF may hold a whole stack."""
    fmt = image_format(url)
    if fmt == "tiff":
        return _probe_tiff(url, multipage)
    if fmt in ("png", "jpeg"):
        return _probe_pillow(url, fmt)
    raise InvalidParameterError(f"{url}: not a TIFF, PNG or JPEG file (by its extension)")


# -- TIFF -----------------------------------------------------------------------------------


def _page_dtype(page) -> np.dtype:
    dtype = np.dtype(page.dtype)
    return np.dtype(np.uint8) if dtype == np.bool_ else dtype


def _page_layout(page) -> Tuple[str, Tuple[int, int]]:
    if page.is_tiled:
        return "tiles", (int(page.tilelength), int(page.tilewidth))
    if page.compression == 1 and page.bitspersample % 8 == 0 and page.predictor == 1:
        return "rows", (1, int(page.imagewidth))
    rows = int(page.rowsperstrip) if page.rowsperstrip else int(page.imagelength)
    rows = min(rows, int(page.imagelength))
    if rows >= page.imagelength:
        return "whole", (int(page.imagelength), int(page.imagewidth))
    return "strips", (rows, int(page.imagewidth))


def _probe_tiff(url: str, multipage: bool) -> SliceHeader:
    tifffile = _tifffile()
    with open_binary(url) as fh, tifffile.TiffFile(fh) as tif:
        series = tif.series[0]
        axes = series.axes
        shape = dict(zip(axes, series.shape))
        page = series.keyframe
        if page.imagedepth > 1:
            raise InvalidParameterError(f"{url}: volumetric TIFF tiles (ImageDepth > 1) are not supported")
        stack_axes = [a for a in axes if a not in PLANE_AXES]
        sizes = [int(shape[a]) for a in stack_axes]
        channel_pages = int(shape.get("C", 1)) if "C" in stack_axes else 1
        zaxes = [a for a in stack_axes if a != "C" and shape[a] > 1]
        if len(zaxes) > 1:
            raise InvalidParameterError(
                f"{url}: TIFF series with axes {axes} {tuple(series.shape)} has more than one stack axis "
                f"({', '.join(zaxes)}); only Z (and C) can vary"
            )
        depth = int(shape[zaxes[0]]) if zaxes else 1
        if depth > 1 and not multipage:
            raise InvalidParameterError(f"{url} is a multi-page TIFF ({depth} pages); a series needs 2-D slices")
        samples = int(page.samplesperpixel) if "S" in axes or page.planarconfig == 2 else 1
        if samples > 1 and channel_pages > 1:
            raise InvalidParameterError(f"{url}: TIFF with both samples per pixel and channel pages is not supported")
        offsets: Tuple[Tuple[int, ...], ...] = ()
        if multipage and depth * channel_pages > 1:
            pages = series.pages
            if len(pages) != int(np.prod(sizes)):
                raise InvalidParameterError(
                    f"{url}: the TIFF stores its {int(np.prod(sizes))} planes in {len(pages)} pages "
                    "(a contiguous ImageJ/shaped layout); re-save it with one page per plane"
                )
            index = np.arange(len(pages)).reshape(sizes)
            zpos = stack_axes.index(zaxes[0]) if zaxes else None
            cpos = stack_axes.index("C") if "C" in stack_axes else None
            rows = []
            for z in range(depth):
                row = []
                for c in range(channel_pages):
                    key = [0] * len(sizes)
                    if zpos is not None:
                        key[zpos] = z
                    if cpos is not None:
                        key[cpos] = c
                    page_k = pages[int(index[tuple(key)])]
                    if page_k is None:
                        raise InvalidParameterError(f"{url}: page for z={z} c={c} is missing")
                    row.append(int(page_k.offset))
                rows.append(tuple(row))
            offsets = tuple(rows)
        layout, segment = _page_layout(page)
        return SliceHeader(
            format="tiff",
            width=int(page.imagewidth),
            height=int(page.imagelength),
            channels=max(samples, channel_pages),
            dtype=_page_dtype(page).name,
            layout=layout,
            segment=segment,
            depth=depth,
            page_offsets=offsets,
        )


class TiffReader:
    """Reads regions of the pages of one TIFF file; open once per task, read many pages.

    ``offsets`` (the page's directory offset) lets a task jump to page 5000 of a stack
    without walking the 4999 directories before it.
    """

    def __init__(self, url: str):
        self.url = url
        self._fh = open_binary(url)
        self._tif = _tifffile().TiffFile(self._fh)

    def close(self) -> None:
        self._tif.close()
        self._fh.close()

    def __enter__(self) -> TiffReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def page(self, offset: Optional[int] = None, index: int = 0):
        if offset is None:
            return self._tif.pages[0]
        tifffile = _tifffile()
        self._tif.filehandle.seek(offset)
        return tifffile.TiffPage(self._tif, index=index)

    def read(self, y0: int, y1: int, x0: int, x1: int, offset: Optional[int] = None, index: int = 0) -> np.ndarray:
        """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of a page as ``(rows, columns, samples)``."""
        page = self.page(offset, index)
        layout, segment = _page_layout(page)
        samples = int(page.samplesperpixel)
        out = np.empty((y1 - y0, x1 - x0, samples), dtype=_page_dtype(page))
        if layout == "rows":
            self._read_rows(page, out, y0, y1, x0, x1)
        else:
            self._read_segments(page, out, y0, y1, x0, x1, layout, segment)
        return out

    def _read_rows(self, page, out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
        """Uncompressed strips: read just the bytes of the wanted rows."""
        fh = self._tif.filehandle
        width = int(page.imagewidth)
        dtype = np.dtype(page.dtype).newbyteorder(self._tif.byteorder)
        separate = page.planarconfig == 2
        samples = int(page.samplesperpixel)
        contig = 1 if separate else samples
        rowbytes = width * contig * dtype.itemsize
        rps = int(page.rowsperstrip) if page.rowsperstrip else int(page.imagelength)
        strips_per_plane = int(math.ceil(page.imagelength / rps))
        for plane in range(samples if separate else 1):
            y = y0
            while y < y1:
                strip = y // rps
                stop = min(y1, (strip + 1) * rps)
                start_byte = page.dataoffsets[plane * strips_per_plane + strip] + (y - strip * rps) * rowbytes
                fh.seek(start_byte)
                data = fh.read((stop - y) * rowbytes)
                rows = np.frombuffer(data, dtype=dtype).reshape(stop - y, width, contig)
                if separate:
                    out[y - y0 : stop - y0, :, plane] = rows[:, x0:x1, 0]
                else:
                    out[y - y0 : stop - y0] = rows[:, x0:x1]
                y = stop

    def _read_segments(self, page, out: np.ndarray, y0, y1, x0, x1, layout: str, segment) -> None:
        """Tiles or strips: decode only the segments the region touches."""
        fh = self._tif.filehandle
        decode = page.decode
        seg_h, seg_w = segment
        nty = int(math.ceil(page.imagelength / seg_h))
        ntx = int(math.ceil(page.imagewidth / seg_w)) if layout == "tiles" else 1
        if layout != "tiles":
            seg_w = int(page.imagewidth)
        per_plane = nty * ntx
        planes = int(page.samplesperpixel) if page.planarconfig == 2 else 1
        jpegtables = getattr(page, "jpegtables", None)
        for plane in range(planes):
            for ty in range(y0 // seg_h, (y1 - 1) // seg_h + 1):
                for tx in range(x0 // seg_w, (x1 - 1) // seg_w + 1):
                    index = plane * per_plane + ty * ntx + tx
                    offset, count = page.dataoffsets[index], page.databytecounts[index]
                    data = None
                    if count:
                        fh.seek(offset)
                        data = fh.read(count)
                    seg, _, shape = decode(data, index, jpegtables=jpegtables)
                    sy, sx = ty * seg_h, tx * seg_w
                    lo_y, hi_y = max(y0, sy), min(y1, sy + seg_h, int(page.imagelength))
                    lo_x, hi_x = max(x0, sx), min(x1, sx + seg_w, int(page.imagewidth))
                    dest = out[lo_y - y0 : hi_y - y0, lo_x - x0 : hi_x - x0]
                    if seg is None:  # an empty segment: TIFF says it is all zeros
                        if planes > 1:
                            dest[..., plane] = 0
                        else:
                            dest[...] = 0
                        continue
                    seg = seg.reshape(shape)[0]  # (rows, columns, contig samples)
                    part = seg[lo_y - sy : hi_y - sy, lo_x - sx : hi_x - sx]
                    if planes > 1:
                        dest[..., plane] = part[..., 0]
                    else:
                        dest[...] = part


# -- PNG / JPEG -----------------------------------------------------------------------------

PILLOW_MODES = {"1": "uint8", "L": "uint8", "LA": "uint8", "RGB": "uint8", "RGBA": "uint8", "I;16": "uint16",
                "I;16B": "uint16", "I;16L": "uint16", "F": "float32", "I": "int32"}  # fmt: skip


def _probe_pillow(url: str, fmt: str) -> SliceHeader:
    Image = _pillow()
    with open_binary(url) as fh, Image.open(fh) as img:
        mode = img.mode
        if mode not in PILLOW_MODES:
            raise InvalidParameterError(f"{url}: image mode {mode} is not supported (use grayscale or RGB)")
        width, height = img.size
        channels = len(img.getbands())
        return SliceHeader(
            format=fmt,
            width=int(width),
            height=int(height),
            channels=channels,
            dtype=PILLOW_MODES[mode],
            layout="whole",
            segment=(int(height), int(width)),
        )


def read_whole_image(url: str) -> np.ndarray:
    """A whole PNG/JPEG as ``(rows, columns, channels)``."""
    Image = _pillow()
    with open_binary(url) as fh, Image.open(fh) as img:
        arr = np.asarray(img)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    dtype = PILLOW_MODES.get(img.mode)
    if dtype is not None and arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    return arr


def crop(arr: np.ndarray, region: Sequence[int]) -> np.ndarray:
    y0, y1, x0, x1 = region
    return arr[y0:y1, x0:x1]
