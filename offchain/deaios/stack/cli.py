"""`deaios up` and `deaios down`: start / stop a complete local network, or the off-chain services against an
existing chain (see deaios.stack.launcher)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deaios.cli_context import client_options


@click.command("up")
@click.option("--nodes", default=10, show_default=True, type=click.IntRange(1, 256),
              help="Number of storage nodes.")
@click.option("--dir", "data_dir", default="deaios-data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Data directory: stack.json, logs/, nodes/<i>/, chain state. Re-using it restarts the same "
                   "network (same chain, contracts and stored files).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface every service listens on (0.0.0.0: all, for nodes on other machines). On a local "
                   "stack anything but loopback exposes Anvil's public dev keys to the network: a warning is printed.")
@click.option("--advertise", default=None, metavar="HOST",
              help="Host name other machines reach this stack's services at: in stack.json and registered on chain "
                   "(default: --host, or this machine's address when --host is 0.0.0.0).")
@click.option("--startup-timeout", default=120.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for each service to come up.")
@click.option("--kv-streams", default="all", show_default=True,
              help="Streams the KV node serves: \"all\" (every stream in the log) or comma-separated 0x stream ids.")
@click.option("--da-nodes", default=None, type=click.IntRange(0, 64),
              help="Number of DA nodes (signers); 0 = none. Default: 4 (Anvil dev keys 2..); with --chain, one per "
                   "da_nodes key.")
@click.option("--chain", "chain_rpc", default=None, metavar="RPC_URL",
              help="Run against this existing chain (with --deployment): no Anvil, no deployment.")
@click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --chain: the deployment record (`ape run deploy --all-areas` wrote it).")
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --chain: JSON {role: key} for admin, user, compute_provider, inft_oracle, da_nodes [list] "
                   "(also $DEAIOS_KEY_<ROLE>); docs/deploy.md.")
@click.option("--key", default=None, help="With --chain: the user key (stack.json private_key, for client commands).")
@click.option("--join", default=None, metavar="NODE_URL",
              help="With --chain: use the storage network of the storage node at NODE_URL instead of starting one.")
@click.option("--block-time", default=2, show_default=True, type=click.IntRange(0, 3600),
              help="Local chain: seconds of idleness after which an empty block is mined, so block timestamps "
                   "follow the wall clock (time locks expire on an idle stack); transactions are mined at once "
                   "either way; 0 = blocks only for transactions (clients and services then judge time-gated "
                   "steps by the next block's time: deaios.chain_time).")
def up(nodes: int, data_dir: Path, host: str, advertise: str | None, startup_timeout: float, kv_streams: str,
       da_nodes: int | None, chain_rpc: str | None, deployment: Path | None, keys_file: Path | None,
       key: str | None, join: str | None, block_time: int) -> None:
    """Start a complete network and keep it running: Anvil, every area's contracts, NODES storage nodes, the
    indexer, the KV node, DA nodes, a compute provider and the INFT oracle. With --chain and --deployment: only the
    off-chain services, against contracts already deployed on that chain, signing with the operator's keys.

    Prints the stack (every endpoint, as written to DIR/stack.json) as one JSON line on stdout, then
    supervises until Ctrl-C, SIGTERM or `deaios down`. Client commands use this stack by default.
    """
    from deaios.errors import UserError
    from deaios.kv.replay import StreamConfig
    from deaios.stack.keys import ServiceKeys
    from deaios.stack.launcher import Launcher, LaunchOptions

    try:
        StreamConfig.parse(kv_streams)
    except ValueError as exc:
        raise UserError(f"--kv-streams: {exc}") from None
    if bool(chain_rpc) != bool(deployment):
        raise UserError("--chain and --deployment go together")
    if not chain_rpc and (keys_file or key or join):
        raise UserError("--keys, --key and --join are for --chain (a local stack uses Anvil's dev keys)")
    keys = ServiceKeys.load(keys_file, user=key) if chain_rpc else None
    code = Launcher(LaunchOptions(data_dir=data_dir, nodes=nodes, host=host, startup_timeout=startup_timeout,
                                  kv_streams=kv_streams, da_nodes=da_nodes, chain=chain_rpc, deployment=deployment,
                                  keys=keys, advertise=advertise, join=join, block_time=block_time)).run()
    sys.exit(code)


@click.command("down")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for every process to exit.")
@client_options(stack_arg="stack", require_running=False)
def down(timeout: float, stack) -> None:
    """Stop a stack started by `deaios up` and wait until all of its processes are gone."""
    from deaios.stack.launcher import stop_stack

    where = stack.dir or stack.path
    if stop_stack(stack, timeout=timeout, log=lambda msg: click.echo(msg, err=True)):
        click.echo(f"stopped the stack in {where}", err=True)
    else:
        click.echo(f"the stack in {where} was not running", err=True)
