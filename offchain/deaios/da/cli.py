"""`deaios da …`: the DA services (node, disperser, OP alt-DA server, Nitro DA provider) and the put/get clients.

Client commands find the chain and DAEntrance either from ``--rpc/--entrance/--key`` or from a stack
(``--stack PATH``, ``$DEAIOS_STACK`` or the last stack started): its ``rpc``, ``private_key`` and
``contracts.da_entrance``. `put`/`get` go through the stack's disperser (``da_disperser.grpc`` in stack.json, or
``--disperser HOST:PORT``) unless ``--direct``; the put path imports only grpc (no web3, no KZG), so it starts fast.
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


def _stack_disperser(stack_path: Path | None) -> str | None:
    """The stack's disperser target (host:port), if the stack runs one."""
    from deaios.stack.config import load_stack

    entry = load_stack(stack_path).extra.get("da_disperser")
    return entry.get("grpc") if isinstance(entry, dict) else None


def _disperser_target(stack_path: Path | None, disperser: str | None, rpc: str | None, entrance: str | None,
                      direct: bool) -> str | None:
    """Where put/get go: an explicit --disperser, else the stack's disperser (unless --direct or --rpc/--entrance
    name another chain), else None (in this process)."""
    if direct:
        return None
    if disperser:
        return disperser
    if rpc and entrance:
        return None
    return _stack_disperser(stack_path)


def _client_options(f):
    """The client options (`deaios.cli_context`: --stack, --key, --json) plus --rpc/--entrance; the function
    receives `stack_path`, `rpc`, `entrance` and `key` (--key, else $DEAIOS_KEY, else None: the stack's key). An
    explicit --stack must name a running stack (checked before the other arguments)."""
    import functools

    from deaios.cli_context import client_context, client_options

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        client = client_context()
        if client.stack_arg is not None:
            client.stack()
        kwargs.update(stack_path=client.stack_arg, key=client.explicit_key())
        return f(*args, **kwargs)

    wrapper = click.option("--entrance", default=None, help="DAEntrance address (default: the stack's).")(wrapper)
    wrapper = click.option("--rpc", default=None, help="Chain JSON-RPC URL (default: the stack's).")(wrapper)
    return client_options(wrapper)


def _disperser_options(f):
    f = click.option("--direct", is_flag=True,
                     help="Work in this process (encode, pay the fee, collect signatures / read the DA nodes) "
                          "instead of through the disperser.")(f)
    f = click.option("--disperser", default=None, metavar="HOST:PORT",
                     help="A disperser's gRPC address (default: the stack's).")(f)
    return f


@da.command("put")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--workers", type=click.IntRange(1), default=None,
              help="With --direct: encoding processes (default: all cores).")
@_disperser_options
@_client_options
def put(file: Path, workers: int | None, disperser: str | None, direct: bool, stack_path: Path | None,
        rpc: str | None, entrance: str | None, key: str | None) -> None:
    """Disperse FILE: encode, pay the blob fee, collect the quorum's signatures, verify on chain — through the
    stack's disperser (0G's gRPC API), or in this process with --direct. Prints one JSON line, then the blob
    reference (0x<dataRoot>:<epoch>:<quorumId>) as the last line."""
    import time

    from deaios.da.blobref import MAX_DATA

    if not file.is_file():
        raise UserError(f"{file}: no such file" if not file.exists() else f"{file}: not a regular file")
    data = file.read_bytes()
    if len(data) > MAX_DATA:
        raise UserError(f"{file}: {len(data)} bytes; a DA blob holds at most {MAX_DATA}")
    if not data:
        raise UserError(f"{file}: empty; a DA blob holds at least one byte")
    target = _disperser_target(stack_path, disperser, rpc, entrance, direct)
    if target is not None:
        from deaios.da.disperser_client import DisperserClient, DisperserClientError

        async def run():
            async with DisperserClient(target) as client:
                return await client.disperse(data)

        from deaios.progress import activity

        started = time.monotonic()
        try:
            with activity(f"dispersing {file.name} ({len(data)} bytes) through the disperser"):
                done = asyncio.run(run())
        except DisperserClientError as exc:
            raise UserError(f"dispersal of {file} failed: {exc}") from None
        ref = done.ref
        click.echo(json.dumps({"ref": str(ref), "dataRoot": "0x" + ref.data_root.hex(), "epoch": ref.epoch,
                               "quorumId": ref.quorum_id, "length": len(data), "disperser": target,
                               "requestId": done.request_id.decode(errors="replace"), "status": done.status,
                               "seconds": {"total": round(time.monotonic() - started, 3)}}))
        click.echo(str(ref))
        return
    from deaios.da.chain import DAChainError
    from deaios.da.client import DAClient, DAClientError
    from deaios.da.encoding import Encoder

    chain = _connection(stack_path, rpc, entrance, key)
    if chain.account is None:
        raise UserError("a private key is needed to pay the blob fee (--key)")
    from deaios.progress import activity

    with Encoder(workers) as encoder, activity(f"dispersing {file.name} ({len(data)} bytes): encode, pay, collect "
                                               "signatures, verify on chain"):
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
@_disperser_options
@_client_options
def get(ref: str, out: Path, disperser: str | None, direct: bool, stack_path: Path | None, rpc: str | None,
        entrance: str | None, key: str | None) -> None:
    """Retrieve blob REF (0x<dataRoot>:<epoch>:<quorumId>) and write it to OUT: through the stack's disperser
    (RetrieveBlob), or with --direct from the quorum's DA nodes in this process; either way every cell's KZG proof
    is checked. Prints one JSON line."""
    import os
    import tempfile
    import time

    from deaios.da.blobref import BlobRef

    try:
        blob_ref = BlobRef.parse(ref)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory")
    from deaios.progress import activity

    target = _disperser_target(stack_path, disperser, rpc, entrance, direct)
    t0 = time.monotonic()
    if target is not None:
        from deaios.da.disperser_client import DisperserClient, DisperserClientError

        async def run() -> bytes:
            async with DisperserClient(target) as client:
                return await client.retrieve(blob_ref)

        try:
            with activity(f"retrieving {ref[:12]}… through the disperser"):
                data = asyncio.run(run())
        except DisperserClientError as exc:
            raise UserError(f"retrieval of {ref} failed: {exc}") from None
    else:
        from deaios.da.chain import DAChainError
        from deaios.da.client import DAClient, DAClientError
        from deaios.da.encoding import Encoder

        chain = _connection(stack_path, rpc, entrance, key)
        try:
            with activity(f"retrieving {ref[:12]}… from the DA nodes (every cell's KZG proof checked)"):
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
@click.option("--public-host", default=None,
              help="Host name others reach this node at, registered on chain as its socket (default: --host).")
@click.option("--votes", default=1, show_default=True, type=click.IntRange(1), help="Votes to stake for.")
@click.option("--poll-interval", default=1.0, show_default=True, type=float,
              help="Seconds between epoch registration / pruning rounds.")
@click.option("--fault", type=click.Choice(["none", "withhold", "garbage"]), default="none", show_default=True,
              help="Test aid: withhold retrievals or serve corrupted cells.")
@click.option("--log-level", default="INFO", show_default=True)
def node(rpc: str, entrance: str, key: str, bls_secret: str | None, data_dir: Path, host: str, port: int,
         public_host: str | None, votes: int, poll_interval: float, fault: str, log_level: str) -> None:
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
    config = NodeConfig(rpc, entrance, key, bls_key, data_dir, host, port, votes, poll_interval, fault, public_host)
    asyncio.run(serve(config, print_ready))


@da.command("disperser")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=51001, show_default=True, type=click.IntRange(0, 65535),
              help="gRPC port (0G's default; 0: a free port).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Encoding processes (default: all cores).")
@click.option("--finality-depth", type=click.IntRange(0), default=None,
              help="Blocks after its confirmation before a blob is FINALIZED (default: the chain's `finalized` "
                   "block; 0 for a local chain that never reorganises).")
@click.option("--metrics-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="HTTP port of its Prometheus /metrics (0: a free port).")
@click.option("--log-level", default="INFO", show_default=True)
@_client_options
def disperser_command(host: str, port: int, workers: int | None, finality_depth: int | None, metrics_port: int,
                      log_level: str, stack_path: Path | None, rpc: str | None, entrance: str | None,
                      key: str | None) -> None:
    """Run the disperser until SIGINT/SIGTERM: 0G's disperser gRPC API (DisperseBlob, GetBlobStatus,
    RetrieveBlob) with a warm encoder. It pays blob fees with --key (or $DEAIOS_DISPERSER_KEY, else $DEAIOS_KEY, else
    the stack's key). Prints {"grpc", "address", "pid", "metrics"} as one JSON line once its encoder is warm and it listens."""
    import os

    from deaios import metrics
    from deaios.da.client import DAClient
    from deaios.da.disperser import Disperser, print_ready, serve
    from deaios.da.encoding import Encoder
    from deaios.da.serving import until_signal

    from deaios.cli_context import client_context

    own = client_context().key_arg or os.environ.get("DEAIOS_DISPERSER_KEY")  # before $DEAIOS_KEY
    chain = _connection(stack_path, rpc, entrance, own or key)
    if chain.account is None:
        raise UserError("a private key is needed to pay blob fees (--key or $DEAIOS_DISPERSER_KEY)")
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s da-disperser %(levelname)s %(name)s: %(message)s")
    address = chain.account.address

    async def main() -> None:
        with Encoder(workers) as encoder:
            await asyncio.to_thread(encoder.warm_up)
            disperser = Disperser(DAClient(chain, encoder), finality_depth)
            metrics_url = f"http://{host}:{metrics.serve_http(host, metrics_port, 'disperser')}"
            await serve(disperser, host, port, lambda target: print_ready(target, address, metrics_url))

    asyncio.run(until_signal(main()))


def _rollup_backend(stack_path: Path | None, rpc: str | None, entrance: str | None, key: str | None,
                    disperser: str | None, direct: bool, workers: int | None):
    """What the OP / Nitro servers write with (the disperser, or an in-process DAClient) and read with (a DAClient
    on the chain, no key: the DA nodes directly). Returns (disperse, close, retriever)."""
    from deaios.da.client import DAClient
    from deaios.da.dispersal import in_process, via_disperser
    from deaios.da.encoding import Encoder

    chain = _connection(stack_path, rpc, entrance, key)
    target = _disperser_target(stack_path, disperser, rpc, entrance, direct)
    if target is None and not direct:
        raise UserError("no disperser: pass --disperser HOST:PORT, or --direct to disperse in this process")
    retriever = DAClient(chain, Encoder(1))
    if target is not None:
        disperse, close = via_disperser(target)
        return disperse, close, retriever
    if chain.account is None:
        raise UserError("--direct needs a private key to pay blob fees (--key)")
    writer = DAClient(chain, Encoder(workers))

    async def close() -> None:
        writer.encoder.close()

    return in_process(writer), close, retriever


def _stack_dir(stack_path: Path | None, data_dir: Path | None, name: str) -> Path:
    if data_dir is None:
        from deaios.stack.config import load_stack

        data_dir = Path(load_stack(stack_path).dir) / name
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


@da.command("altda-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3100, show_default=True, type=click.IntRange(0, 65535), help="0: a free port.")
@click.option("--dir", "data_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where keccak commitments are indexed (default: STACK_DIR/altda).")
@click.option("--workers", type=click.IntRange(1), default=None, help="With --direct: encoding processes.")
@_disperser_options
@_client_options
def altda_server(host: str, port: int, data_dir: Path | None, workers: int | None, disperser: str | None,
                 direct: bool, stack_path: Path | None, rpc: str | None, entrance: str | None,
                 key: str | None) -> None:
    """OP Stack alt-DA server backed by deaios DA: POST /put (body: preimage) → 0G's generic commitment
    0x01‖0x47‖epoch(LE)‖quorumId(LE)‖dataRoot; POST /put/0x00<keccak> (keccak commitments); GET
    /get/0x<commitment> → preimage, read from the DA nodes. Prints {"url"} once listening; runs until
    SIGINT/SIGTERM."""
    from deaios.da.altda import AltDAServer
    from deaios.da.serving import serve_app, until_signal

    if data_dir is None and stack_path is None and rpc and entrance:
        raise UserError("--dir is needed without a stack")
    data_dir = _stack_dir(stack_path, data_dir, "altda")
    disperse, close, retriever = _rollup_backend(stack_path, rpc, entrance, key, disperser, direct, workers)
    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s altda %(levelname)s: %(message)s")

    async def main() -> None:
        try:
            await serve_app(AltDAServer(disperse, retriever, data_dir).app(), host, port,
                            lambda url: click.echo(json.dumps({"url": url})), "alt-DA server")
        finally:
            await close()

    asyncio.run(until_signal(main()))


@da.command("nitro-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9880, show_default=True, type=click.IntRange(0, 65535),
              help="Nitro's default DA provider port (0: a free port).")
@click.option("--max-blob-size", type=click.IntRange(1), default=None,
              help="Bytes per DA blob: larger batches are split (default: a whole DA blob, 32,505,852).")
@click.option("--max-message-size", type=click.IntRange(1), default=None,
              help="The largest batch accepted (daprovider_getMaxMessageSize; default: two blobs).")
@click.option("--cert-format", type=click.Choice(["0x01", "0x0c"]), default="0x01", show_default=True,
              help="Certificates written: Nitro's external-DA 0x01, or 0G's Nitro fork's 0x0c (both are read).")
@click.option("--fallback/--no-fallback", default=False, show_default=True,
              help="When the DA cannot take a batch (too few signers, disperser down), ask Nitro to fall back to "
                   "its next writer.")
@click.option("--workers", type=click.IntRange(1), default=None, help="With --direct: encoding processes.")
@_disperser_options
@_client_options
def nitro_server(host: str, port: int, max_blob_size: int | None, max_message_size: int | None, cert_format: str,
                 fallback: bool, workers: int | None, disperser: str | None, direct: bool,
                 stack_path: Path | None, rpc: str | None, entrance: str | None, key: str | None) -> None:
    """Arbitrum Nitro DA provider backed by deaios DA: Nitro's daprovider_* JSON-RPC (store, chunked store,
    recoverPayload, collectPreimages, proofs). Prints {"url"} once listening; runs until SIGINT/SIGTERM."""
    from deaios.da.encoding import MAX_DATA
    from deaios.da.nitro import NitroProvider
    from deaios.da.serving import serve_app, until_signal

    piece = max_blob_size or MAX_DATA
    if piece > MAX_DATA:
        raise UserError(f"--max-blob-size: at most {MAX_DATA} bytes (one DA blob)")
    disperse, close, retriever = _rollup_backend(stack_path, rpc, entrance, key, disperser, direct, workers)
    try:
        provider = NitroProvider(disperse, retriever, piece, max_message_size, fallback, int(cert_format, 16))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s nitro-da %(levelname)s: %(message)s")

    async def main() -> None:
        try:
            await serve_app(provider.app(), host, port, lambda url: click.echo(json.dumps({"url": url})),
                            "Nitro DA provider")
        finally:
            await close()

    asyncio.run(until_signal(main()))
