"""``--dry-run`` for every command that plans tasks: one option set, one way to show a plan.

A command adopts it in a few lines::

    @image.command()
    ...
    @dry_run_options
    def mycommand(ctx, path, ..., dry_run: DryRun):
        if dry_run:
            return dry_run.show(plans.plan_mything(path, ...))   # an igneous.plan.Plan
        tasks = create_mything_tasks(path, ...)
        enqueue_tasks(ctx, queue, tasks)

``--json`` prints the plan as one JSON object; ``--workers`` adds wall time; the ``--price-*``
options add costs (none is assumed).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Optional

import click

from igneous.plan import Plan, Prices, report
from igneous_cli.humanbytes import format_bytes

__all__ = ["DryRun", "dry_run_options", "format_report", "DRY_RUN_PARAMS"]

PRICE_OPTIONS = (
    ("price_core_hour", "--price-core-hour", "Price of one core-hour (e.g. of your worker VMs)."),
    ("price_per_1k_put", "--price-per-1k-put", "Price of 1000 PUT requests (LIST too unless --price-per-1k-list)."),
    ("price_per_1k_get", "--price-per-1k-get", "Price of 1000 GET (and HEAD) requests."),
    ("price_per_1k_list", "--price-per-1k-list", "Price of 1000 LIST requests (default: the PUT price)."),
    ("price_per_gb_read", "--price-per-gb-read", "Price per GB read out of the store (egress)."),
    ("price_per_gb_month", "--price-per-gb-month", "Price of storing one GB for a month (what the run writes)."),
)

# The parameter names dry_run_options adds to a command (for tests that pin a command's options).
DRY_RUN_PARAMS = frozenset({"dry_run", "as_json", "workers", *(name for name, _, _ in PRICE_OPTIONS)})


@dataclass
class DryRun:
    """What ``--dry-run`` and its companions asked for; truthy when a dry run was asked."""

    run: bool = False
    as_json: bool = False
    workers: Optional[int] = None
    prices: Prices = field(default_factory=Prices)

    def __bool__(self) -> bool:
        return self.run

    def show(self, plan: Plan) -> None:
        """Print ``plan`` (a table, or one JSON object with ``--json``). Writes nothing."""
        data = report(plan, self.workers, self.prices)
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=False))
        else:
            click.echo(format_report(data))


def dry_run_options(fn):
    """Add --dry-run, --json, --workers and the --price-* options; the command gets ``dry_run: DryRun``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        prices = {name: kwargs.pop(name) for name, _, _ in PRICE_OPTIONS}
        dry = DryRun(
            run=kwargs.pop("dry_run"),
            as_json=kwargs.pop("as_json"),
            workers=kwargs.pop("workers"),
            prices=Prices(**{name[len("price_") :]: value for name, value in prices.items()}),
        )
        extras = [opt for name, opt, _ in PRICE_OPTIONS if prices[name] is not None]
        extras += ["--json"] if dry.as_json else []
        extras += ["--workers"] if dry.workers is not None else []
        if extras and not dry.run:
            raise click.UsageError(f"{', '.join(extras)} only apply with --dry-run")
        if dry.workers is not None and dry.workers < 1:
            raise click.BadParameter("must be >= 1", param_hint="'--workers'")
        for name, opt, _ in PRICE_OPTIONS:
            if prices[name] is not None and prices[name] < 0:
                raise click.BadParameter("must be >= 0", param_hint=f"'{opt}'")
        return fn(*args, dry_run=dry, **kwargs)

    options = [
        click.option(
            "--dry-run",
            is_flag=True,
            default=False,
            help="Print the plan (tasks, what is written, bytes, requests, CPU-hours) and write nothing.",
        ),
        click.option("--json", "as_json", is_flag=True, default=False, help="With --dry-run: one JSON object."),
        click.option("--workers", type=int, default=None, help="With --dry-run: estimate wall time on N workers."),
    ]
    options += [click.option(opt, name, type=float, default=None, help=text) for name, opt, text in PRICE_OPTIONS]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _n(value) -> str:
    return f"{int(value):,}"


def format_report(data: dict) -> str:
    """The report of ``igneous.plan.report`` as lines for a person."""
    shape = data.get("task_shape")
    lines = [
        f"Plan: {data['command']}: {_n(data['tasks'])} {data['task']} task(s)"
        + (f" of {'x'.join(str(v) for v in shape)} voxels" if shape else "")
    ]
    lines.append("Writes:")
    width = max([len(o["what"]) for o in data["outputs"]] + [5])
    for o in data["outputs"]:
        lines.append(f"  {o['what']:<{width}}  {_n(o['files']):>12} files  {format_bytes(o['bytes'], metric=True):>10}")
    lines.append(
        f"  {'total':<{width}}  {_n(data['files_written']):>12} files  "
        f"{format_bytes(data['bytes_written'], metric=True):>10}"
    )
    lines.append(f"Reads: {format_bytes(data['bytes_read'], metric=True)}")
    lines.append("Requests: " + "  ".join(f"{k} {_n(v)}" for k, v in data["requests"].items()))
    tp = data["throughput"]
    lines.append(
        f"CPU: {data['cpu_hours']:.4g} core-hours ({data['work']['amount']:,.0f} {data['work']['unit']} at "
        f"{tp['per_cpu_s']:,.0f} per CPU-second, measured {tp['date']} by {tp['harness']})"
    )
    if "wall_hours" in data:
        lines.append(f"Wall time: {_duration(data['wall_hours'] * 3600)} on {data['workers']} worker(s)")
    if "cost" in data:
        for item in data["cost"]["items"]:
            lines.append(
                f"Cost: {item['what']}: {item['quantity']:,.4g} {item['unit']} at {item['price']:g} = {item['cost']:,.4f}"
            )
        lines.append(f"Cost total: {data['cost']['total']:,.4f} (in the currency of the prices given)")
    else:
        lines.append("Cost: give --workers and --price-* options to estimate wall time and cost")
    if data.get("sample"):
        lines.append("Sampled: " + ", ".join(f"{k} {v}" for k, v in data["sample"].items()))
    for note in data.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append("Dry run: nothing was written.")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
