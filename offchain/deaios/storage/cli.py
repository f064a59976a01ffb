"""`deaios storage ...`: storage commands (file roots now; upload/download with the storage network)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deaios.errors import UserError
from deaios.cli_context import client_context, client_options


def parse_hex(value: str, what: str) -> bytes:
    """Bytes from `0x…` hex, or a UserError naming `what`."""
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise UserError(f"{what} must be hex (like 0x00ff), got {value!r}") from None


@click.group()
def storage() -> None:
    """0G storage: file roots, submissions (and, with a running stack, upload/download)."""


@storage.command("root")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tags", default="0x", show_default=True, help="Submission tags as hex.")
def root(files: tuple[Path, ...], tags: str) -> None:
    """Print the 0G file root and submission of each FILE, one JSON line per file."""
    from deaios.storage.merkle import EmptyFileError, FileMerkleTree

    tag_bytes = parse_hex(tags, "--tags")
    for path in files:
        try:
            tree = FileMerkleTree.from_path(path)
        except EmptyFileError as exc:
            raise UserError(f"{path}: {exc}") from None
        except IsADirectoryError:
            raise UserError(f"{path}: is a directory, not a file") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
        click.echo(json.dumps({
            "path": str(path),
            "size": tree.size,
            "root": "0x" + tree.root.hex(),
            "submission": tree.submission(tag_bytes).to_json(),
        }))


@storage.command("node")
@click.option("--dir", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data directory (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--chain-rpc", required=True, help="Ethereum JSON-RPC URL of the chain with the Flow contract.")
@click.option("--flow", required=True, help="Flow contract address.")
@click.option("--index", "node_index", required=True, type=click.IntRange(0), help="This node's index in --peers.")
@click.option("--peers", required=True, help="Comma-separated URLs of all storage nodes, this one included.")
@click.option("--start-block", default=0, show_default=True, type=click.IntRange(0),
              help="First block to scan for Submit events (the Flow deployment block).")
@click.option("--repair-interval", default=2.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between repair passes; 0 turns repair off (tests of supervision).")
@click.option("--log-level", default="INFO", show_default=True)
def node(data_dir: Path, host: str, port: int, chain_rpc: str, flow: str, node_index: int, peers: str,
         start_block: int, repair_interval: float, log_level: str) -> None:
    """Run a storage node (0G zgs_* JSON-RPC + deaios share API) until SIGINT/SIGTERM."""
    import asyncio
    import logging

    from deaios.storage.node.server import NodeConfig, serve

    urls = [u.strip() for u in peers.split(",") if u.strip()]
    if node_index >= len(urls):
        raise UserError(f"--index {node_index} is outside --peers (which lists {len(urls)} nodes)")
    if not flow.startswith("0x") or len(flow) != 42:
        raise UserError(f"--flow must be a 0x-prefixed 20-byte address, got {flow!r}")
    logging.basicConfig(level=log_level.upper(), format=f"%(asctime)s node{node_index} %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(NodeConfig(data_dir, host, port, chain_rpc, flow, node_index, urls, start_block,
                                 repair_interval)))


@storage.command("indexer")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--nodes", required=True, help="Comma-separated URLs of the storage nodes to index.")
@click.option("--log-level", default="INFO", show_default=True)
def indexer(host: str, port: int, nodes: str, log_level: str) -> None:
    """Run the storage indexer (0G indexer_* JSON-RPC) until SIGINT/SIGTERM."""
    import asyncio
    import logging

    from deaios.storage.indexer import serve

    urls = [u.strip() for u in nodes.split(",") if u.strip()]
    if not urls:
        raise UserError("--nodes lists no storage node URL")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--nodes: {url!r} is not an http(s) URL")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s indexer %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(host, port, urls))


def _run_with_progress(total: int, description: str, job):  # job(progress_callback) -> coroutine
    """Run an async client job under a rich progress bar (on stderr; stdout stays JSON)."""
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        return asyncio.run(job(lambda done: bar.advance(task, done), lambda msg: bar.console.print(msg)))


@storage.command("upload")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--tags", default="0x", show_default=True, help="Submission tags as hex.")
@client_options(stack_arg="stack")
def upload(file: Path, tags: str, stack) -> None:
    """Upload FILE to the stack's storage network: submit it to Flow (paying the fee) and spread its
    erasure shares over the storage nodes; --key (else $DEAIOS_KEY, else the stack's dev key) pays the fee.
    Re-running an interrupted upload resumes it. Prints
    {"root", "txSeq", "txHash", "size", "segments", "seconds"} as one JSON line."""
    import aiohttp

    from deaios.storage.client import StorageClient, StorageClientError
    from deaios.storage.flow_client import FlowError
    from deaios.storage.merkle import EmptyFileError

    tag_bytes = parse_hex(tags, "--tags")
    if not file.is_file():
        raise UserError(f"{file}: no such file" if not file.exists() else f"{file}: not a regular file")
    size = file.stat().st_size
    key = client_context().key()  # --key, $DEAIOS_KEY, else the stack's dev key: who pays the fee

    async def job(progress, stage):
        async with aiohttp.ClientSession() as session:
            client = StorageClient(session, stack.node_urls, stack.rpc, stack.flow, key)
            return await client.upload(file, tag_bytes, progress, stage)

    try:
        result = _run_with_progress(size, f"upload {file.name}", job)
    except (StorageClientError, FlowError, EmptyFileError, OSError) as exc:
        raise UserError(f"upload of {file} failed: {exc}") from None
    click.echo(json.dumps(result.to_json()))


@storage.command("download")
@click.argument("root")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the file.")
@client_options(stack_arg="stack")
def download(root: str, out: Path, stack) -> None:
    """Download the file with ROOT from the stack's storage nodes (any 70 % of them suffice), verifying
    every segment's merkle proof, and write it to OUT. Prints one JSON line."""
    import asyncio

    import aiohttp

    from deaios.storage.client import StorageClient, StorageClientError
    from deaios.storage.retrieval import RetrievalError

    parse_hex(root, "ROOT")
    if len(root.removeprefix("0x")) != 64:
        raise UserError(f"ROOT must be 0x followed by 64 hex digits, got {root!r}")
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory")

    async def size_of() -> int:
        async with aiohttp.ClientSession() as session:
            return await StorageClient(session, stack.node_urls).file_size(root)

    async def job(progress, stage):
        async with aiohttp.ClientSession() as session:
            return await StorageClient(session, stack.node_urls).download(root, out, progress)

    try:
        result = _run_with_progress(asyncio.run(size_of()), f"download {root[:10]}…", job)
    except (StorageClientError, RetrievalError, OSError) as exc:
        raise UserError(f"download of {root} failed: {exc}") from None
    click.echo(json.dumps(result.to_json()))
