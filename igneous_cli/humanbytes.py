"""Byte counts for people: ``format_bytes(3.5e9) == '3.3 GiB'``."""

from __future__ import annotations

__all__ = ["format_bytes"]

BINARY_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
METRIC_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def format_bytes(num: float, metric: bool = False, precision: int = 1) -> str:
    """``num`` bytes as e.g. ``'1.5 MiB'`` (powers of 1024) or, with ``metric``, ``'1.6 MB'`` (powers of 1000).

    Counts below one kilo-unit are printed exactly: ``'1 byte'``, ``'512 bytes'``.
    """
    base = 1000.0 if metric else 1024.0
    units = METRIC_UNITS if metric else BINARY_UNITS
    sign = "-" if num < 0 else ""
    value = abs(num)
    if value < base:
        count = int(value) if float(value).is_integer() else round(value, precision)
        return f"{sign}{count} {'byte' if count == 1 else 'bytes'}"
    exponent = 0
    while value >= base and exponent < len(units) - 1:
        value /= base
        exponent += 1
    return f"{sign}{value:.{precision}f} {units[exponent]}"
