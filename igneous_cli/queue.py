"""``igneous execute`` (run a queue's tasks) and ``igneous queue`` (inspect and manage queues)."""

from __future__ import annotations

import logging
import math
import sys
import time

import click

from igneous.queues import manage
from igneous.queues.worker import MIN_LEASE_SECONDS, WorkerOptions
from igneous.queues.worker import execute as run_workers
from igneous_cli.common import configure_logging, get_parallel, normalize_path

__all__ = ["execute", "queue", "natural_time_delta"]


@click.command()
@click.argument("queue")
@click.option(
    "--aws-region",
    default="us-east-1",
    envvar="SQS_REGION_NAME",
    show_default=True,
    help="AWS region of an SQS queue (env SQS_REGION_NAME).",
)
@click.option(
    "--lease-sec",
    default=600,
    type=click.IntRange(min=MIN_LEASE_SECONDS),
    envvar="LEASE_SECONDS",
    show_default=True,
    help=f"Seconds a task stays leased to this worker (env LEASE_SECONDS; at least {MIN_LEASE_SECONDS}); "
    "renewed while it runs.",
)
@click.option("--tally/--no-tally", default=True, show_default=True, help="Count completed tasks (fq:// only).")
@click.option(
    "--min-sec",
    default=-1,
    type=float,
    show_default=True,
    help="Run at least this many seconds, then stop after the current task. 0: one task. -1: forever.",
)
@click.option("-q", "--quiet", is_flag=True, default=False, help="No log line per task (failures are still shown).")
@click.option("-x", "--exit-on-empty", is_flag=True, default=False, help="Stop when the queue is empty.")
@click.option(
    "-n", "--num-tasks", default=-1, type=int, show_default=True, help="Stop after this many tasks. -1: no limit."
)
@click.option(
    "--max-attempts",
    default=5,
    type=click.IntRange(min=1),
    show_default=True,
    help="Leases a task gets (failures or dead workers) before it goes to the dead-letter place.",
)
@click.option(
    "--grace-sec",
    default=30.0,
    type=click.FloatRange(min=0),
    show_default=True,
    help="After SIGTERM/SIGINT, let the current task run this long, then release it and exit.",
)
@click.pass_context
def execute(
    ctx: click.Context,
    queue: str,
    aws_region: str,
    lease_sec: int,
    tally: bool,
    min_sec: float,
    quiet: bool,
    exit_on_empty: bool,
    num_tasks: int,
    max_attempts: int,
    grace_sec: float,
) -> None:
    """Run tasks from QUEUE (sqs://NAME, fq://PATH or a directory) with -p worker processes.

    A failing task is retried with a back-off; after --max-attempts it is dead-lettered
    with its error (see `igneous queue dead`); a message that names no known task is
    dead-lettered on its first lease. QUEUE must exist (a mistyped path is refused).
    Exit codes: 0 did what was asked (-x: the queue was drained; -n/--min-sec: the limit
    was reached) and nothing failed; 1 tasks failed; 2 bad options, or the queue is
    missing or unreachable; 3 a worker process died; 5 stopped by a signal (the current
    task was finished or released).
    """
    configure_logging(ctx, logging.WARNING if quiet else logging.INFO)
    opts = WorkerOptions(
        queue=normalize_path(queue),
        lease_seconds=lease_sec,
        tally=tally,
        min_sec=min_sec,
        quiet=quiet,
        exit_on_empty=exit_on_empty,
        num_tasks=num_tasks,
        aws_region=aws_region,
        max_attempts=max_attempts,
        grace_seconds=grace_sec,
        progress=sys.stderr.isatty() and not quiet,
    )
    code = run_workers(opts, parallel=get_parallel(ctx))
    ctx.exit(int(code))


@click.group()
def queue() -> None:
    """Inspect and manage task queues."""


@queue.command()
@click.argument("path")
@click.option(
    "--eta",
    default=0,
    type=float,
    show_default=True,
    help="Sample completions twice this many seconds apart and print the rate and time left.",
)
def status(path: str, eta: float) -> None:
    """Print inserted / enqueued / leased / completed / failing / dead-lettered counts of PATH."""
    path = normalize_path(path)
    first = manage.counts(path)
    inserted = first["inserted"]
    if _known(inserted):
        click.echo(f"Inserted: {inserted}")
    click.echo(f"Enqueued: {first['enqueued']} ({_percent(first['enqueued'], inserted)} left)")
    if _known(first["completed"]):
        click.echo(f"Completed: {first['completed']} ({_percent(first['completed'], inserted)})")
    click.echo(f"Leased: {first['leased']} ({_percent(first['leased'], first['enqueued'])} of queue)")
    if _known(first["failing"]):
        click.echo(f"Failing: {first['failing']} (last attempt failed; retried with back-off)")
    if _known(first["failed_attempts"]):
        click.echo(f"Failed attempts: {first['failed_attempts']}")
    if _known(first["dead_lettered"]):
        click.echo(f"Dead-lettered: {first['dead_lettered']} (see: igneous queue dead {path})")
    if eta <= 0:
        return
    time.sleep(eta)
    later = manage.counts(path)
    if _known(first["completed"]):
        rate = (later["completed"] - first["completed"]) / eta
    else:  # SQS keeps no completion count: the queue's shrinkage is the rate
        rate = (first["enqueued"] - later["enqueued"]) / eta
    click.echo(f"Rate: {rate:.2f} tasks/sec")
    if rate > 0:
        click.echo(f"ETA: {natural_time_delta(later['enqueued'] / rate)}")
    else:
        click.echo("ETA: unknown (no task completed while sampling)")


@queue.command()
@click.argument("queue_path", metavar="QUEUE")
@click.option("--aws-region", default="us-east-1", envvar="SQS_REGION_NAME", show_default=True, help="SQS region.")
@click.option("--rate", default=30.0, type=float, show_default=True, help="Seconds between checks.")
def wait(queue_path: str, aws_region: str, rate: float) -> None:
    """Block until QUEUE is empty (SQS: empty on consecutive reads)."""
    manage.wait_until_empty(normalize_path(queue_path), rate=rate, region_name=aws_region)


@queue.command()
@click.argument("path")
def release(path: str) -> None:
    """Make every leased task of PATH available again (fq://)."""
    manage.release_all(normalize_path(path))


@queue.command()
@click.argument("path")
def rezero(path: str) -> None:
    """Reset the inserted and completed counters of PATH."""
    manage.rezero(normalize_path(path))


@queue.command()
@click.argument("queuepath")
def purge(queuepath: str) -> None:
    """Delete every task in QUEUEPATH."""
    manage.purge(normalize_path(queuepath))


@queue.command()
@click.argument("src")
@click.argument("dest")
def cp(src: str, dest: str) -> None:
    """Copy every task of SRC (fq://) into DEST."""
    click.echo(f"copied {manage.copy_tasks(normalize_path(src), normalize_path(dest))} tasks")


@queue.command()
@click.argument("src")
@click.argument("dest")
def mv(src: str, dest: str) -> None:
    """Move every task of SRC into DEST (leases 10 at a time, inserts, deletes)."""
    click.echo(f"moved {manage.move_tasks(normalize_path(src), normalize_path(dest))} tasks")


@queue.command()
@click.argument("path")
@click.option("--requeue", is_flag=True, default=False, help="Put every dead-lettered task back in the queue.")
@click.option("--aws-region", default="us-east-1", envvar="SQS_REGION_NAME", show_default=True, help="SQS region.")
def dead(path: str, requeue: bool, aws_region: str) -> None:
    """List the dead-lettered tasks of PATH with their last errors (or --requeue them after a fix)."""
    path = normalize_path(path)
    if requeue:
        click.echo(f"requeued {manage.requeue_dead(path, aws_region)} tasks")
        return
    records = manage.dead_letters(path, aws_region)
    for rec in records:
        name = manage.task_name(rec.get("task"))
        click.echo(f"{rec['id']}  {name}  attempts={rec.get('attempts')}  error={rec.get('error')}")
    click.echo(f"{len(records)} dead-lettered task(s)")


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _percent(part, whole) -> str:
    if not _known(part) or not _known(whole) or whole <= 0:
        return "--%"
    return f"{part / whole * 100:.1f}%"


def natural_time_delta(seconds: float) -> str:
    """``3725`` → ``'1 hour, 2 minutes, 5 seconds'``."""
    seconds = int(round(max(0.0, seconds)))
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count or (name == "second" and not parts):
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return ", ".join(parts)
