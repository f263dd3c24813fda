"""What every command shares: the error policy, task submission, bounds from --x/y/zrange, logging.

Errors are handled here once. ``IgneousGroup`` (the root group's class) turns the library's
``InvalidParameterError`` into a one-line usage error (exit 2); ``enqueue_tasks`` turns a
task that fails while running in-process into one ``error: Type: message`` line (exit 1).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Iterable, Sequence

import click
from cloudvolume.lib import Bbox

from igneous.errors import InvalidParameterError
from igneous.queues import normalize_queue_path, submit_tasks
from igneous.remote import explain
from igneous.volumes import normalize_encoding, open_volume

__all__ = [
    "IgneousGroup",
    "TaskFailed",
    "numberify",
    "normalize_path",
    "normalize_encoding",
    "compute_bounds",
    "enqueue_tasks",
    "get_parallel",
    "configure_logging",
]

LOGGER = "igneous"


class IgneousGroup(click.Group):
    """The root group: refuses bad parameters found by the library as click usage errors, and
    turns an operating-system error while planning (an unwritable destination, a full disk
    before anything was queued) into one line instead of a traceback. Failures of tasks run
    in-process are reported by ``enqueue_tasks`` (exit 1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InvalidParameterError as err:
            raise click.UsageError(_one_line(err)) from None
        except click.ClickException:
            raise
        except Exception as err:  # missing or refused credentials, an unreachable endpoint, an OS error
            reason = explain(err)
            if reason is not None:
                raise click.UsageError(_one_line(reason)) from None
            if isinstance(err, OSError):
                raise click.UsageError(f"{type(err).__name__}: {_one_line(err)}") from None
            raise


class TaskFailed(click.ClickException):
    """A task raised while running in-process: one line on stderr, exit code 1."""

    exit_code = 1

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {_one_line(error)}")
        self.error = error

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


_NUMPY_SCALAR = re.compile(r"np\.(?:u?int\d+|float\d+|bool_?|str_)\(([^()]*)\)")


def _one_line(err: BaseException) -> str:
    """The message on one line, with numpy scalar reprs (``np.int64(64)``) shown as plain values."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines) if lines else type(err).__name__
    return _NUMPY_SCALAR.sub(r"\1", text)


def numberify(x):
    """``'3'`` → 3, ``'2.5'`` → 2.5; anything else is returned unchanged."""
    if not isinstance(x, str):
        return x
    try:
        return int(x)
    except ValueError:
        pass
    try:
        return float(x)
    except ValueError:
        return x


def normalize_path(queuepath: str) -> str:
    """A queue location: ``sqs://`` and ``fq://`` pass through, a bare path becomes ``fq://<abs path>``."""
    return normalize_queue_path(queuepath)


def get_parallel(ctx: click.Context) -> int:
    obj = ctx.find_root().obj or {}
    return int(obj.get("parallel", 1))


def enqueue_tasks(ctx: click.Context, queue: str | None, tasks: Iterable) -> int:
    """Run ``tasks`` here with ``-p`` processes, or insert them into ``queue``. The one way commands submit work."""
    if queue is not None:
        queue = normalize_path(queue)
    try:
        return submit_tasks(tasks, queue=queue, parallel=get_parallel(ctx), progress=sys.stderr.isatty())
    except InvalidParameterError:
        raise
    except Exception as err:  # a task failed: report it in one line, no traceback
        if explain(err) is not None:
            raise  # credentials or connection: the root group says it in one line, exit 2
        raise TaskFailed(err) from err


def compute_bounds(
    path: str,
    mip: int,
    xrange: Sequence[int] | None,
    yrange: Sequence[int] | None,
    zrange: Sequence[int] | None,
    to_mip: int | None = None,
    **volume_kwargs,
) -> Bbox | None:
    """The layer bounds at ``mip`` with the given axes replaced by ``[a, b)`` (each pair sorted).

    Returns None when no range is given (= the whole layer). ``to_mip`` re-expresses the box
    at another level for planners that take bounds at a fixed mip.
    """
    if xrange is None and yrange is None and zrange is None:
        return None
    vol = open_volume(path, mip, **volume_kwargs)
    bounds = vol.meta.bounds(mip).clone()
    for axis, rng in enumerate((xrange, yrange, zrange)):
        if rng is None:
            continue
        lo, hi = sorted(int(v) for v in rng)
        bounds.minpt[axis] = lo
        bounds.maxpt[axis] = hi
    if to_mip is not None and to_mip != mip:
        bounds = vol.bbox_to_mip(bounds, mip, to_mip)
    return bounds


def configure_logging(ctx: click.Context, level: int) -> None:
    """Show the library's log records at ``level`` and above on stderr until the command ends."""
    logger = logging.getLogger(LOGGER)
    root = ctx.find_root()
    if "igneous_cli.log_handler" not in root.meta:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        previous = logger.level
        logger.addHandler(handler)

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(previous)

        root.call_on_close(restore)
        root.meta["igneous_cli.log_handler"] = handler
    logger.setLevel(level)
