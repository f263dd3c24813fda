"""Parameter types and the options several commands share, each written once.

A malformed value (``--shape 1,2``, ``--encoding foo``) fails in the type's ``convert``,
so click reports it as a usage error (exit code 2) naming the option.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import click

from igneous.errors import InvalidParameterError
from igneous.queues.submit import check_queue_for_insertion
from igneous.types import DownsampleMethods
from igneous.volumes import normalize_encoding, normalize_layer_path

__all__ = [
    "ListN",
    "Tuple34",
    "Tuple3",
    "Tuple2",
    "EncodingType",
    "CompressType",
    "CloudPath",
    "DownsampleMethodType",
    "ByteSize",
    "memory_option",
    "options",
    "queue_option",
    "mip_option",
    "fill_missing_option",
    "encoding_options",
    "background_options",
    "range_options",
    "ENCODING_HELP",
]

ENCODING_HELP = (
    "Chunk encoding. raw, png; images: jpeg, jxl (jpegxl); segmentation: compressed_segmentation (cseg), "
    "compresso (cpso), crackle (ckl); floats: fpzip, kempressed, zfpc. auto keeps the existing encoding."
)
METHOD_CHOICES = {
    "auto": DownsampleMethods.AUTO,
    "avg": DownsampleMethods.AVERAGE_POOLING,
    "mode": DownsampleMethods.MODE_POOLING,
    "min": DownsampleMethods.MIN_POOLING,
    "max": DownsampleMethods.MAX_POOLING,
    "striding": DownsampleMethods.STRIDING,
}


class IntList(click.ParamType):
    """Comma separated integers; ``lengths`` lists the counts accepted (empty = any count ≥ 1)."""

    name = "n,n,..."
    lengths: Sequence[int] = ()

    def convert(self, value, param, ctx):
        if value is None:
            return None
        items = list(value) if isinstance(value, (tuple, list)) else str(value).split(",")
        try:
            numbers = tuple(_strict_int(item) for item in items)
        except ValueError:
            self.fail(f"{value!r} is not {self.expected()}", param, ctx)
        if not numbers or (self.lengths and len(numbers) not in self.lengths):
            self.fail(f"{value!r} is not {self.expected()}", param, ctx)
        return numbers

    def expected(self) -> str:
        if not self.lengths:
            return "a comma separated list of integers (n,n,...)"
        counts = " or ".join(str(n) for n in self.lengths)
        return f"{counts} comma separated integers ({self.name})"


def _strict_int(item) -> int:
    if isinstance(item, bool):
        raise ValueError(item)
    if isinstance(item, int):
        return item
    return int(str(item).strip())


class ListN(IntList):
    name = "n,n,..."


class Tuple34(IntList):
    name = "x,y,z[,c]"
    lengths = (3, 4)


class Tuple3(IntList):
    name = "x,y,z"
    lengths = (3,)


class Tuple2(IntList):
    name = "a,b"
    lengths = (2,)


class EncodingType(click.ParamType):
    """An encoding name or alias (cseg, ckl, cpso, jpegxl); ``auto`` ⇒ None (keep the existing one)."""

    name = "ENC"

    def convert(self, value, param, ctx):
        try:
            return normalize_encoding(value)
        except InvalidParameterError as err:
            self.fail(str(err), param, ctx)


class CompressType(click.ParamType):
    """none/false ⇒ False (no compression); true ⇒ gzip; gzip, br, zstd as given."""

    name = "COMP"
    choices = ("gzip", "br", "zstd")

    def convert(self, value, param, ctx):
        if value is None or value is False:
            return value
        text = str(value).strip().lower()
        if text in ("none", "false", "0", ""):
            return False
        if text == "true":
            return "gzip"
        if text not in self.choices:
            self.fail(f"{value!r} is not one of none, {', '.join(self.choices)}", param, ctx)
        return text


class CloudPath(click.ParamType):
    """A layer location: bare local paths become absolute ``file://``; ``file://./x`` stays relative;
    an unknown scheme (``s4://``) or a queue URL is refused rather than taken as a relative path."""

    name = "PATH"

    def convert(self, value, param, ctx):
        try:
            return normalize_layer_path(str(value))
        except InvalidParameterError as err:
            self.fail(str(err), param, ctx)


class ByteSize(click.ParamType):
    """A number of bytes: ``3500000000``, ``2e9``, ``2GB``, ``1.5 GiB``, ``512MiB``, ``64k``.

    Decimal units (k, M, G, T with or without B) are powers of 1000, binary ones (KiB, MiB,
    GiB, TiB) powers of 1024. Every byte option uses this one type.
    """

    name = "BYTES"
    UNITS = {
        "": 1, "b": 1,
        "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
        "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    }
    _PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)

    def __init__(self, minimum: int = 1):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number of bytes", param, ctx)
        if isinstance(value, (int, float)):
            number, unit = float(value), ""
        else:
            match = self._PATTERN.match(str(value))
            if not match or match.group(2).lower() not in self.UNITS:
                self.fail(f"{value!r} is not a number of bytes (e.g. 3500000000, 3.5e9, 2GB, 512MiB)", param, ctx)
            number, unit = float(match.group(1)), match.group(2).lower()
        total = number * self.UNITS[unit]
        if not math.isfinite(total) or total > 2**63:
            self.fail(f"{value!r} is too large", param, ctx)
        total = int(round(total))
        if total < self.minimum:
            self.fail(f"{value!r} must be at least {self.minimum} bytes", param, ctx)
        return total


class DownsampleMethodType(click.ParamType):
    """auto|avg|mode|min|max|striding (or the DownsampleMethods number) ⇒ ``DownsampleMethods``."""

    name = "METHOD"

    def convert(self, value, param, ctx):
        if isinstance(value, DownsampleMethods):
            return value
        text = str(value).strip().lower()
        if text in METHOD_CHOICES:
            return METHOD_CHOICES[text]
        if text.isdigit() and int(text) in {int(m) for m in DownsampleMethods}:
            return DownsampleMethods(int(text))
        self.fail(f"{value!r} is not one of {'|'.join(METHOD_CHOICES)}", param, ctx)


def options(*decorators: Callable) -> Callable:
    """Apply click decorators so they appear in ``--help`` in the order listed."""

    def apply(fn):
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


def _insertable_queue(ctx, param, value):
    """Check --queue while parsing, before the command plans (and writes) anything."""
    if value is None:
        return None
    try:
        return check_queue_for_insertion(value)
    except InvalidParameterError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


queue_option = click.option(
    "--queue",
    default=None,
    type=str,
    callback=_insertable_queue,
    help="Insert tasks into this queue (sqs://NAME, fq://PATH or a directory) instead of running them here.",
)


def memory_option(help: str = "Bytes of memory per task (e.g. 3.5e9, 2GB, 512MiB).", default=int(3.5e9)) -> Callable:
    return click.option("--memory", default=default, type=ByteSize(), show_default=True, help=help)


def mip_option(help: str = "Pyramid level to read/work on.", default: int | None = 0) -> Callable:
    return click.option("--mip", default=default, type=int, show_default=True, help=help)


fill_missing_option = click.option(
    "--fill-missing", is_flag=True, default=False, help="Treat missing chunks as background (zeros) instead of failing."
)

encoding_options = options(
    click.option("--encoding", type=EncodingType(), default="auto", show_default=True, help=ENCODING_HELP),
    click.option(
        "--encoding-level",
        default=None,
        type=str,
        help="Quality/level for the encoding: png level 0-9, jpeg/jxl quality 0-100, fpzip precision.",
    ),
    click.option("--encoding-effort", default=3, type=int, show_default=True, help="JPEG XL effort 1-10."),
)

background_options = options(
    click.option(
        "--delete-bg",
        is_flag=True,
        default=False,
        help="Delete chunks that are entirely background instead of writing them.",
    ),
    click.option("--bg-color", default=0, type=int, show_default=True, help="Background value for --delete-bg."),
)


def range_options(bounds_mip: bool = False) -> Callable:
    """--xrange/--yrange/--zrange (and --bounds-mip): restrict work to part of the layer."""
    where = "--bounds-mip" if bounds_mip else "--mip"
    decorators = [
        click.option(
            f"--{axis}range",
            type=Tuple2(),
            default=None,
            help=f"Restrict {axis} to [a, b) in {where} voxels (default: the whole layer).",
        )
        for axis in "xyz"
    ]
    if bounds_mip:
        decorators.append(
            click.option(
                "--bounds-mip", type=int, default=None, help="Mip the ranges are expressed in (default: --mip)."
            )
        )
    return options(*decorators)
