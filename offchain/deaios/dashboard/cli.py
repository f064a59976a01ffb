"""`deaios dashboard serve` (the process `deaios up` starts) and `deaios status` (the same picture in the
terminal)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deaios.cli_context import client_context, client_options


@click.group()
def dashboard() -> None:
    """The stack's web dashboard (`deaios up` starts it; its URL is in stack.json under "dashboard")."""


@dashboard.command("serve")
@click.option("--stack-file", "stack_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The stack.json to show (it may not exist yet, or be a stopped stack's: the page shows what it "
                   "can). Unlike a client's --stack, it is not resolved or checked for a running launcher.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.2, 3600),
              help="Seconds between snapshots (the page refreshes as often).")
@click.option("--launcher-pid", type=int, default=None,
              help="Show the stack only once stack.json is the one this launcher wrote (set by `deaios up`).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def serve(stack_path: Path, host: str, port: int, interval: float, launcher_pid: int | None, log_level: str) -> None:
    """Serve the dashboard of a stack until SIGINT/SIGTERM."""
    import asyncio
    import logging

    from deaios.dashboard.server import Dashboard, serve as run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s dashboard %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(Dashboard(stack_path.resolve(), interval, launcher_pid), host, port))


@click.command("status")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Newest entries to show per list (files, blobs, settlements, …).")
@client_options(stack_arg="stack")
def status(limit: int, stack) -> None:
    """Every process of the stack (up/down, latency, version) and what the network holds: the chain, files and
    their replication, KV streams, DA blobs, compute services and settlements, INFTs, market listings,
    alignment epochs and flagged nodes. With --json: the snapshot as one JSON object instead of tables."""
    from deaios.dashboard.snapshot import Collector
    from deaios.dashboard.status import render

    collector = Collector(stack.path, limit=limit)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()
    if client_context().as_json:
        click.echo(json.dumps(snapshot, default=str))
    else:
        render(snapshot)
