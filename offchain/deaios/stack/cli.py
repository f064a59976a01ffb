"""`deaios up` and `deaios down`: start / stop a complete local network (see deaios.stack.launcher)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deaios.stack.config import ENV_STACK


@click.command("up")
@click.option("--nodes", default=10, show_default=True, type=click.IntRange(1, 256),
              help="Number of storage nodes.")
@click.option("--dir", "data_dir", default="deaios-data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Data directory: stack.json, logs/, nodes/<i>/, chain state. Re-using it restarts the same "
                   "network (same chain, contracts and stored files).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface every service listens on. Anything but loopback exposes Anvil's public dev keys "
                   "(every service's key, the funded accounts) to the network: a warning is printed.")
@click.option("--startup-timeout", default=120.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for each service to come up.")
@click.option("--kv-streams", default="all", show_default=True,
              help="Streams the KV node serves: \"all\" (every stream in the log) or comma-separated 0x stream ids.")
@click.option("--da-nodes", default=4, show_default=True, type=click.IntRange(0, 8),
              help="Number of DA nodes (signers, Anvil dev keys 2..); 0 = none.")
def up(nodes: int, data_dir: Path, host: str, startup_timeout: float, kv_streams: str, da_nodes: int) -> None:
    """Start Anvil, the storage contracts, NODES storage nodes, the indexer and the KV node; keep them running.

    Prints the stack (every endpoint, as written to DIR/stack.json) as one JSON line on stdout, then
    supervises until Ctrl-C, SIGTERM or `deaios down`. Client commands use this stack by default.
    """
    from deaios.errors import UserError
    from deaios.kv.replay import StreamConfig
    from deaios.stack.launcher import Launcher, LaunchOptions

    try:
        StreamConfig.parse(kv_streams)
    except ValueError as exc:
        raise UserError(f"--kv-streams: {exc}") from None
    code = Launcher(LaunchOptions(data_dir=data_dir, nodes=nodes, host=host, startup_timeout=startup_timeout,
                                  kv_streams=kv_streams, da_nodes=da_nodes)).run()
    sys.exit(code)


@click.command("down")
@click.option("--stack", "stack_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help=f"The stack's stack.json (or its data dir). Default: ${ENV_STACK}, else the last stack "
                   "started by `deaios up`.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for every process to exit.")
def down(stack_path: Path | None, timeout: float) -> None:
    """Stop a stack started by `deaios up` and wait until all of its processes are gone."""
    from deaios.stack.config import Stack, resolve_stack_path
    from deaios.stack.launcher import stop_stack

    stack = Stack.load(resolve_stack_path(stack_path))
    where = stack.dir or stack.path
    if stop_stack(stack, timeout=timeout, log=lambda msg: click.echo(msg, err=True)):
        click.echo(f"stopped the stack in {where}", err=True)
    else:
        click.echo(f"the stack in {where} was not running", err=True)
