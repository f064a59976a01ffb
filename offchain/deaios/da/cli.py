"""`deaios da …`: a DA node, and the disperser / retriever clients.

Client commands find the chain and DAEntrance either from ``--rpc/--entrance/--key`` or from a stack
(``--stack PATH``, ``$DEAIOS_STACK`` or the last stack started): its ``rpc``, ``private_key`` and
``contracts.da_entrance``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

from deaios.errors import UserError


@click.group()
def da() -> None:
    """Data availability: DA nodes (signers), dispersal and retrieval of blobs."""


def _connection(stack_path: Path | None, rpc: str | None, entrance: str | None, key: str | None):
    from deaios.da.chain import DAChain

    if not (rpc and entrance):
        from deaios.stack.config import load_stack

        stack = load_stack(stack_path)
        rpc = rpc or stack.rpc
        entrance = entrance or stack.contracts.get("da_entrance") or stack.extra.get("da_entrance")
        key = key or stack.private_key
        if not entrance:
            raise UserError("the stack has no DA contracts (contracts.da_entrance); pass --entrance")
    if not (entrance.startswith("0x") and len(entrance) == 42):
        raise UserError(f"--entrance must be a 0x-prefixed 20-byte address, got {entrance!r}")
    return DAChain(rpc, entrance, key)


def _checked_stack_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """An explicit --stack must name a running stack (checked before the other arguments)."""
    if value is None:
        return None
    from deaios.stack.config import load_stack

    return load_stack(value).path


def _client_options(f):
    f = click.option("--key", default=None, help="Private key paying fees (default: the stack's dev key).")(f)
    f = click.option("--entrance", default=None, help="DAEntrance address (default: the stack's).")(f)
    f = click.option("--rpc", default=None, help="Chain JSON-RPC URL (default: the stack's).")(f)
    f = click.option("--stack", "stack_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
                     callback=_checked_stack_path,
                     help="The stack's stack.json (or its data dir).")(f)
    return f


@da.command("put")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--workers", type=click.IntRange(1), default=None, help="Encoding processes (default: all cores).")
@_client_options
def put(file: Path, workers: int | None, stack_path: Path | None, rpc: str | None, entrance: str | None,
        key: str | None) -> None:
    """Disperse FILE: encode, pay the blob fee, collect the quorum's signatures, verify on chain. Prints one
    JSON line, then the blob reference (0x<dataRoot>:<epoch>:<quorumId>) as the last line."""
    from deaios.da.chain import DAChainError
    from deaios.da.client import DAClient, DAClientError
    from deaios.da.encoding import MAX_DATA, Encoder

    if not file.is_file():
        raise UserError(f"{file}: no such file" if not file.exists() else f"{file}: not a regular file")
    data = file.read_bytes()
    if len(data) > MAX_DATA:
        raise UserError(f"{file}: {len(data)} bytes; a DA blob holds at most {MAX_DATA}")
    chain = _connection(stack_path, rpc, entrance, key)
    if chain.account is None:
        raise UserError("a private key is needed to pay the blob fee (--key)")
    with Encoder(workers) as encoder:
        try:
            result = asyncio.run(DAClient(chain, encoder).put(data))
        except (DAClientError, DAChainError, OSError) as exc:
            raise UserError(f"dispersal of {file} failed: {exc}") from None
    click.echo(json.dumps(result.to_json()))
    click.echo(str(result.ref))


@da.command("get")
@click.argument("ref")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the blob.")
@_client_options
def get(ref: str, out: Path, stack_path: Path | None, rpc: str | None, entrance: str | None,
        key: str | None) -> None:
    """Retrieve blob REF (0x<dataRoot>:<epoch>:<quorumId>) from the quorum's DA nodes, verifying every
    cell's KZG proof, and write it to OUT. Prints one JSON line."""
    import os
    import tempfile
    import time

    from deaios.da.chain import DAChainError
    from deaios.da.client import BlobRef, DAClient, DAClientError
    from deaios.da.encoding import Encoder

    try:
        blob_ref = BlobRef.parse(ref)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory")
    chain = _connection(stack_path, rpc, entrance, key)
    t0 = time.monotonic()
    try:
        data = asyncio.run(DAClient(chain, Encoder(1)).get(blob_ref))
    except (DAClientError, DAChainError) as exc:
        raise UserError(f"retrieval of {ref} failed: {exc}") from None
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, out)
    click.echo(json.dumps({"ref": str(blob_ref), "out": str(out), "length": len(data),
                           "seconds": round(time.monotonic() - t0, 3)}))


@da.command("node")
@click.option("--rpc", required=True, help="Chain JSON-RPC URL.")
@click.option("--entrance", required=True, help="DAEntrance address.")
@click.option("--key", required=True, envvar="DEAIOS_DA_NODE_KEY",
              help="The node's Ethereum private key (its signer address; pays registration). "
                   "Also from $DEAIOS_DA_NODE_KEY.")
@click.option("--bls-secret", default=None, envvar="DEAIOS_DA_BLS_SECRET",
              help="BN254 secret key (hex). Default: the node's own key in DIR/bls.key (random, created on first "
                   "start).")
@click.option("--dir", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the node keeps its columns.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: a free port.")
@click.option("--votes", default=1, show_default=True, type=click.IntRange(1), help="Votes to stake for.")
@click.option("--poll-interval", default=1.0, show_default=True, type=float,
              help="Seconds between epoch registration / pruning rounds.")
@click.option("--fault", type=click.Choice(["none", "withhold", "garbage"]), default="none", show_default=True,
              help="Test aid: withhold retrievals or serve corrupted cells.")
@click.option("--log-level", default="INFO", show_default=True)
def node(rpc: str, entrance: str, key: str, bls_secret: str | None, data_dir: Path, host: str, port: int,
         votes: int, poll_interval: float, fault: str, log_level: str) -> None:
    """Run a DA node until SIGINT/SIGTERM: register (proof of possession, stake), join every epoch, verify,
    store and sign the columns of its rows, serve them, prune expired blobs. Prints {"url", "address", "pid"}
    as one JSON line once it is registered and listening."""
    from deaios.da import bls
    from deaios.da.node import NodeConfig, print_ready, serve

    if not (entrance.startswith("0x") and len(entrance) == 42):
        raise UserError(f"--entrance must be a 0x-prefixed 20-byte address, got {entrance!r}")
    try:
        if len(bytes.fromhex(key.removeprefix("0x"))) != 32:
            raise ValueError("an Ethereum key is 32 bytes of hex")
        bls_key = bls.BLSKey.from_secret(int(bls_secret.removeprefix("0x"), 16)) if bls_secret else None
    except ValueError as exc:
        raise UserError(f"bad key: {exc}") from None
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s da-node %(levelname)s %(name)s: %(message)s")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(rpc, entrance, key, bls_key, data_dir, host, port, votes, poll_interval, fault)
    asyncio.run(serve(config, print_ready))


@da.command("altda-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3100, show_default=True, type=click.IntRange(0, 65535), help="0: a free port.")
@click.option("--dir", "data_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where keccak commitments are indexed (default: STACK_DIR/altda).")
@click.option("--da-layer-byte", default="0x30", show_default=True,
              help="The DA layer byte of generic commitments (0x00-0x7e).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Encoding processes (default: all cores).")
@_client_options
def altda_server(host: str, port: int, data_dir: Path | None, da_layer_byte: str, workers: int | None,
                 stack_path: Path | None, rpc: str | None, entrance: str | None, key: str | None) -> None:
    """OP Stack alt-DA server backed by deaios DA: PUT /put (body: preimage) → generic commitment
    0x01‖da_layer‖dataRoot‖epoch‖quorumId; PUT /put/0x00<keccak> (precomputed keccak commitments);
    GET /get/0x<commitment> → preimage. Prints {"url"} once listening; runs until SIGINT/SIGTERM."""
    import signal

    from deaios.da.altda import AltDAServer, serve
    from deaios.da.client import DAClient
    from deaios.da.encoding import Encoder

    try:
        layer = int(da_layer_byte, 16 if da_layer_byte.lower().startswith("0x") else 10)
        if not 0 <= layer < 127:
            raise ValueError("out of range")
    except ValueError:
        raise UserError(f"--da-layer-byte must be a byte in [0, 127) (OP's spec), got {da_layer_byte!r}") from None
    chain = _connection(stack_path, rpc, entrance, key)
    if chain.account is None:
        raise UserError("a private key is needed to pay blob fees (--key)")
    if data_dir is None:
        if stack_path is None and rpc and entrance:
            raise UserError("--dir is needed without a stack")
        from deaios.stack.config import load_stack

        data_dir = Path(load_stack(stack_path).dir) / "altda"
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s altda %(levelname)s: %(message)s")

    async def main() -> None:
        with Encoder(workers) as encoder:
            await asyncio.to_thread(encoder.warm_up)
            task = asyncio.create_task(serve(AltDAServer(DAClient(chain, encoder), data_dir, layer), host, port,
                                             lambda url: click.echo(json.dumps({"url": url}))))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, task.cancel)
            try:
                await task
            except asyncio.CancelledError:
                pass

    asyncio.run(main())
