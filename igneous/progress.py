"""Progress of synchronous in-process steps: one tqdm bar with an ETA, shown on a terminal.

A library step that loops over known work (files to sum, rows to load) takes ``progress`` and
wraps its loop in ``progress_bar``; the command line passes ``progress=interactive()``, so a
person at a terminal sees the bar and logs and pipes stay clean. A known ``total`` is what
gives the bar its ETA.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional

from tqdm import tqdm

__all__ = ["progress_bar", "interactive"]


def interactive() -> bool:
    """True when stderr (where bars go) is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


def progress_bar(
    iterable: Optional[Iterable] = None,
    *,
    total: Optional[int] = None,
    desc: Optional[str] = None,
    unit: str = "it",
    enabled: Optional[bool] = None,
    file=None,
) -> tqdm:
    """A tqdm bar (elapsed<ETA, rate) for a step of ``total`` units; ``enabled=None`` means
    "when stderr is a terminal"."""
    show = interactive() if enabled is None else bool(enabled)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not show, file=file, dynamic_ncols=True)
