"""`deaios bench`: throughput benchmarks. Each area registers its benchmarks in BENCHMARKS;
`deaios bench all` runs all of them with their default parameters.

Benchmarks print one JSON line per measured figure (name, value, unit, parameters, machine) so that
docs/benchmarks.md can be regenerated from their output.
"""

from __future__ import annotations

import json
import os
import platform

import click

from deaios.cli import LazyGroup

# benchmark name -> "module:click command"
BENCHMARKS: dict[str, str] = {
    "merkle": "deaios.storage.bench:merkle",
    "storage": "deaios.storage.bench:storage",
    "kv": "deaios.kv.bench:kv",
    "da": "deaios.da.bench:da",
    "train": "deaios.training.bench:train",
}


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


@click.group(cls=LazyGroup, lazy_commands={**BENCHMARKS, "all": "deaios.bench:bench_all"})
def bench() -> None:
    """Run throughput benchmarks (results as JSON lines)."""


@click.command("all")
@click.pass_context
def bench_all(ctx: click.Context) -> None:
    """Run every benchmark with its default parameters."""
    for name in sorted(BENCHMARKS):
        command = bench.get_command(ctx, name)
        assert command is not None
        ctx.invoke(command)
