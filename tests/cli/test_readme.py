"""README's examples go through the real command line, so the documentation cannot drift from it.

Every ``igneous …`` line of README's bash blocks is parsed by the CLI exactly as a shell would
pass it (click's own type conversion and callbacks: byte sizes, paths, queues), with the
placeholder locations (``/data/em``, ``s3://bucket/…``, ``./queue``, ``sqs://…``) mapped into
a temporary folder. The first usage block is also run end to end on a small layer. And the
command table lists exactly the commands the CLI has.
"""

from __future__ import annotations

import os
import re
import shlex

import click
import numpy as np
import pytest
from click.testing import CliRunner
from cloudvolume import CloudVolume

from igneous_cli import main
from tests.conftest import REPO, make_layer

README = os.path.join(REPO, "README.md")


def readme() -> str:
    with open(README, encoding="utf-8") as f:
        return f.read()


def bash_blocks(text: str) -> list:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list:
    """The ``igneous …`` commands of a block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        for part in re.split(r"\s*(?:&&|;)\s*", line):
            part = part.strip()
            if part.startswith("igneous "):
                out.append(shlex.split(part, comments=True))
    return out


def localize(args: list, tmp) -> list:
    """Placeholder locations → the temporary folder (cloud URLs become local layers/queues)."""
    out = []
    for a in args:
        a = re.sub(r"^(?:s3|gs)://[^/]+/", f"file://{tmp}/", a)
        a = re.sub(r"^file:///data/", f"file://{tmp}/", a)
        a = re.sub(r"^/data/", f"{tmp}/", a)
        a = re.sub(r"^zarr://(?:s3|gs)://[^/]+/", f"zarr://file://{tmp}/", a)
        a = re.sub(r"^sqs://.*", f"{tmp}/sqs-queue", a)
        a = re.sub(r"^(?:sqlite|mysql)://.*", f"sqlite://{tmp}/index.db", a)
        a = re.sub(r"^\./", f"{tmp}/", a)
        if a.startswith("'") or "*" in a:
            a = a.strip("'")
        out.append(a)
    return out


def parse(args: list) -> None:
    """Resolve ``args`` down to the leaf command and convert every parameter, without running it."""
    ctx = main.make_context("igneous", list(args[1:]), resilient_parsing=False)
    cmd, rest = main, ctx.protected_args + ctx.args
    while isinstance(cmd, click.Group) and rest:
        name, sub, rest = cmd.resolve_command(ctx, rest)
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd, rest = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []


EXAMPLES = [args for block in bash_blocks(readme()) for args in commands(block)]


def test_readme_has_examples():
    assert len(EXAMPLES) > 30


@pytest.mark.parametrize("args", EXAMPLES, ids=[" ".join(a)[:80] for a in EXAMPLES])
def test_every_readme_example_parses(tmp_path, args):
    (tmp_path / "queue").mkdir()
    parse(localize(args, tmp_path))


def test_the_first_usage_block_runs(tmp_path):
    """The pyramid, the rechunked copy through a queue, its status and the memory design, on a
    small layer standing in for /data/em."""
    rng = np.random.default_rng(0)
    make_layer(f"file://{tmp_path / 'em'}", rng.integers(0, 255, (192, 160, 32), dtype=np.uint8),
               chunk_size=(32, 32, 16))  # fmt: skip
    block = next(b for b in bash_blocks(readme()) if "image downsample" in b and "execute" in b)
    ran = 0
    for args in commands(block):
        args = localize(args, tmp_path)
        if args[1:2] == ["view"]:
            continue
        result = CliRunner().invoke(main, args[1:], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        ran += 1
    assert ran >= 4
    assert len(CloudVolume(f"file://{tmp_path / 'em'}").info["scales"]) > 1


def cli_commands() -> set:
    found = set()

    def walk(cmd, prefix):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, prefix + [name])
        else:
            found.add(" ".join(prefix))

    walk(main, ["igneous"])
    return found


def test_the_command_table_lists_every_command():
    section = readme().split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(igneous [^`]+)`", section, flags=re.M))
    listed = {re.sub(r"\s+[A-Z\[].*$", "", c) for c in listed}  # drop argument placeholders
    assert listed == cli_commands()
