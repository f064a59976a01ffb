"""`deaios bench`: throughput benchmarks. Each area adds a subcommand; `deaios bench all` runs all of them.

Benchmarks print one JSON line per measured figure (name, value, unit, parameters) so that
docs/benchmarks.md can be regenerated from their output.
"""

from __future__ import annotations

import json
import platform
import os

import click


def machine() -> dict[str, object]:
    """A short description of the machine, recorded with every figure."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def emit(name: str, value: float, unit: str, **params: object) -> None:
    """Print one measured figure as a JSON line."""
    click.echo(json.dumps({"bench": name, "value": round(value, 3), "unit": unit, **params, "machine": machine()}))


@click.group()
def bench() -> None:
    """Run throughput benchmarks (results as JSON lines)."""


@bench.command("all")
@click.pass_context
def bench_all(ctx: click.Context) -> None:
    """Run every benchmark with its default parameters."""
    for name, command in sorted(bench.commands.items()):
        if name != "all":
            ctx.invoke(command)
