"""`deaios kv …`: the KV node process and KV commands against a running stack.

STREAM is a 0x-prefixed 32-byte id. KEY and VALUE are UTF-8 text, or bytes as `0x…` hex. Output shows
bytes the same way: as text if they are UTF-8 and do not start with "0x", else as 0x-hex.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import click

from deaios.errors import UserError
from deaios.kv.replay import DATA_DEADLINE, MAX_TX_SIZE
from deaios.cli_context import client_context, client_options


def parse_stream(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if not value.startswith("0x") or len(raw) != 32:
        raise UserError(f"STREAM must be 0x followed by 64 hex digits, got {value!r}")
    return raw


def parse_bytes(value: str, what: str) -> bytes:
    """UTF-8 text, or 0x-hex."""
    if value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise UserError(f"{what} starts with 0x but is not hex: {value!r}") from None
    return value.encode()


def show_bytes(value: bytes) -> str:
    """Text if UTF-8 (and not itself looking like hex), else 0x-hex: what parse_bytes reads back."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()
    return "0x" + value.hex() if text.startswith("0x") else text


def _client_job(stack, job, key: str | None = None):  # job(client) -> coroutine; KvError -> exit 1 with its message
    import aiohttp

    from deaios.kv.client import Client, KvError
    from deaios.kv.launch import kv_of

    kv_of(stack)

    async def main():
        async with aiohttp.ClientSession() as session:
            return await job(Client.from_stack(stack, session, private_key=key))

    try:
        return asyncio.run(main())
    except KvError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def kv() -> None:
    """0G KV: key-value streams replayed from the storage log (node, put, get, ls, rebuild)."""


@kv.command("node")
@click.option("--dir", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data directory (created if missing): the log and the replayed index.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--chain-rpc", help="Chain JSON-RPC URL. Without it the node only serves its index as it is.")
@click.option("--flow", help="Flow contract address (with --chain-rpc).")
@click.option("--nodes", "node_urls", default="", help="Comma-separated storage node URLs to read stream data from.")
@click.option("--start-block", default=0, show_default=True, type=click.IntRange(0),
              help="First block to scan for Submit events (the Flow deployment block).")
@click.option("--streams", default="all", show_default=True,
              help="Streams to serve: \"all\" (every stream seen in the log) or comma-separated 0x stream ids. "
                   "Serving a stream the index lacks replays the log from the start, as 0G does.")
@click.option("--rebuild", is_flag=True, help="Delete the log and index first: rebuild from the chain and storage.")
@click.option("--data-deadline", default=DATA_DEADLINE, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for a transaction's data (from when the node saw its Submit event) before "
                   "recording it as failed (DataUnavailable); 0 waits forever, as 0G does.")
@click.option("--max-tx-size", default=MAX_TX_SIZE, show_default=True, type=click.IntRange(1),
              help="Largest transaction (bytes) the node fetches; larger ones are recorded as DataTooLarge.")
@click.option("--log-level", default="INFO", show_default=True)
def node(data_dir: Path, host: str, port: int, chain_rpc: str | None, flow: str | None, node_urls: str,
         start_block: int, streams: str, rebuild: bool, data_deadline: float, max_tx_size: int,
         log_level: str) -> None:
    """Run a KV node (0G kv_* JSON-RPC) until SIGINT/SIGTERM."""
    import logging

    from deaios.kv.node import KvNodeConfig, run
    from deaios.kv.replay import StreamConfig

    urls = [u.strip() for u in node_urls.split(",") if u.strip()]
    if chain_rpc:
        if not flow or not flow.startswith("0x") or len(flow) != 42:
            raise UserError(f"--flow must be a 0x-prefixed 20-byte address, got {flow!r}")
        if not urls:
            raise UserError("--nodes must list the storage nodes to read stream data from")
    elif flow or urls or rebuild:
        raise UserError("--flow, --nodes and --rebuild need --chain-rpc (without it the node only serves its index)")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--nodes: {url!r} is not an http(s) URL")
    try:
        config = StreamConfig.parse(streams)
    except ValueError as exc:
        raise UserError(f"--streams: {exc}") from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s kv %(levelname)s %(name)s: %(message)s")
    run(KvNodeConfig(data_dir, host, port, chain_rpc, flow, urls, start_block, config, rebuild, data_deadline,
                     max_tx_size))


@kv.command("put")
@click.argument("stream")
@click.argument("key")
@click.argument("value")
@client_options(stack_arg="stack")
def put(stream: str, key: str, value: str, stack) -> None:
    """Write KEY = VALUE in STREAM (an empty VALUE deletes KEY) as one KV transaction, and wait until the
    KV node has replayed it; --key (else $DEAIOS_KEY, else the stack's dev key) signs and pays. Prints {"stream", "key", "txSeq", "root", "txHash", "result"}; exits 1 if
    the transaction was rejected (result other than "Commit")."""
    sid, k, v = parse_stream(stream), parse_bytes(key, "KEY"), parse_bytes(value, "VALUE")
    if not k:
        raise UserError("KEY must not be empty")
    outcome = _client_job(stack, lambda client: client.put(sid, k, v), client_context().key())
    click.echo(json.dumps({"stream": stream, "key": show_bytes(k), **outcome.to_json()}))
    if not outcome.ok:
        raise click.ClickException(f"tx {outcome.seq} was rejected: {outcome.result}")


@kv.command("get")
@click.argument("stream")
@click.argument("key")
@click.option("--version", type=click.IntRange(0), default=None, help="Read the value as of this tx seq.")
@client_options(stack_arg="stack")
def get(stream: str, key: str, version: int | None, stack) -> None:
    """Print the value of KEY in STREAM (with --json: {"key", "value", "version", "size"}); exit 1 if it has none
    (never written, or deleted)."""
    sid, k = parse_stream(stream), parse_bytes(key, "KEY")
    if not k:
        raise UserError("KEY must not be empty")
    entry = _client_job(stack, lambda client: client.get(sid, k, version))
    if entry is None:
        raise click.ClickException(f"{show_bytes(k)} has no value in stream {stream}")
    if client_context().as_json:
        click.echo(json.dumps({"key": show_bytes(k), "value": show_bytes(entry.value), "version": entry.version,
                               "size": len(entry.value)}))
    else:
        click.echo(show_bytes(entry.value))


@kv.command("ls")
@click.argument("stream")
@click.option("--prefix", default="", help="Only keys starting with this (text or 0x-hex).")
@client_options(stack_arg="stack")
def ls(stream: str, prefix: str, stack) -> None:
    """List the keys of STREAM in order, one JSON line each: {"key", "value", "version"}."""
    sid, start = parse_stream(stream), parse_bytes(prefix, "--prefix")

    async def job(client):
        count = 0
        async for entry in client.ls(sid, start):
            click.echo(json.dumps({"key": show_bytes(entry.key), "value": show_bytes(entry.value),
                                   "version": entry.version}))
            count += 1
        return count

    _client_job(stack, job)


@kv.command("rebuild")
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for the rebuilt index to catch up with the log.")
@client_options(stack_arg="stack")
def rebuild(timeout: float, stack) -> None:
    """Rebuild the stack's KV index from scratch: stop the KV node, delete its log and index, start it
    again and wait until it has replayed the whole log (from the chain and the storage nodes). Prints
    {"txs", "nextTxSeq", "seconds", "pid"}."""
    import aiohttp

    from deaios.jsonrpc import RpcCallError, rpc_call
    from deaios.kv import launch
    from deaios.kv.store import wipe
    from deaios.procs import rpc_call as sync_call

    kv_entry = launch.kv_of(stack)
    started = time.monotonic()
    try:
        head = int(sync_call(stack.rpc, "eth_blockNumber"), 16)
    except Exception as exc:
        raise UserError(f"the stack's chain ({stack.rpc}) is unreachable: {exc}") from None
    launch.stop(stack)
    wipe(Path(kv_entry["dir"]))
    proc = launch.relaunch(stack)

    async def caught_up(update) -> dict:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if proc.poll() is not None:
                    raise click.ClickException(f"the KV node exited (code {proc.returncode}); see {kv_entry.get('log')}")
                try:
                    status = await rpc_call(session, kv_entry["url"], "deaios_kvStatus", timeout=5)
                except RpcCallError:
                    status = None
                if status:
                    update(completed=status["nextTxSeq"], total=status["logTxs"])
                if status and (status["logSyncHeight"] or -1) >= head and status["nextTxSeq"] >= status["logTxs"]:
                    return status
                if time.monotonic() > deadline:
                    raise click.ClickException(f"the rebuilt index did not catch up within {timeout:.0f} s "
                                               f"(status: {status})")
                await asyncio.sleep(0.1)

    from deaios.progress import activity

    with activity("replaying the log into a new index", counted=True) as update:
        status = asyncio.run(caught_up(update))
    click.echo(json.dumps({"txs": status["logTxs"], "nextTxSeq": status["nextTxSeq"],
                           "seconds": round(time.monotonic() - started, 3), "pid": proc.pid}))
