"""`deaios inft …`: ERC-7857 agents from the command line. JSON lines on stdout.

The chain, storage nodes and contracts come from the stack (`--stack`, else $DEAIOS_STACK, else the last
`deaios up`); the INFT addresses from the stack's `inft_nft`/`inft_verifier` or `--deployment FILE` (written
by `ape run deploy_inft`). The Ethereum key is `--key` (or $DEAIOS_KEY, else the stack's dev key); the X25519
key `--x25519-key FILE` (default `$DEAIOS_HOME/inft/<address>.x25519`, created on first use). The oracle URL
is `--oracle` (or $DEAIOS_INFT_ORACLE, else the stack's `inft_oracle`).

    deaios inft keygen                                   # your X25519 public key (give it to senders)
    deaios inft mint agent.json --description "weights"   # encrypt, store, mint; {"tokenId", …}
    deaios inft access-proof 1 --key RECEIVER > ap.json   # run by the receiver
    deaios inft transfer 1 --to 0x… --access-proof ap.json
    deaios inft transfer 1 --to 0x… --receiver-key HEX    # local demo: receiver's key at hand
    deaios inft show 1 --decrypt -o out/                  # metadata, and the plaintext (files 0600) for the owner
    deaios inft oracle --key HEX --port 8600             # the re-encryption oracle (trusted party)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from deaios.errors import UserError


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj))


class Ctx:
    """What one command needs, resolved lazily (so `--help` does not touch the stack)."""

    def __init__(
        self,
        stack: str | None,
        deployment: Path | None,
        key: str | None,
        x25519: Path | None,
        oracle: str | None,
    ) -> None:
        self.stack_arg, self.deployment, self.x25519, self.oracle_arg = stack, deployment, x25519, oracle
        self.key = key or os.environ.get("DEAIOS_KEY")
        self._stack = None
        self.endpoints: tuple[str, list[str], str] | None = (
            None  # (rpc, storage node URLs, Flow) without a stack
        )

    @property
    def stack(self):
        from deaios.stack.config import load_stack

        if self._stack is None:
            self._stack = load_stack(self.stack_arg)
            self.key = self.key or self._stack.private_key
        return self._stack

    def chain(self, key: str | None = None):
        from deaios.inft.chain import InftAddresses, InftChain, InftChainError

        try:
            mapping = json.loads(self.deployment.read_text()) if self.deployment else self.stack.contracts
            return InftChain(self.storage().rpc, InftAddresses.from_mapping(mapping), key or self.key)
        except (OSError, ValueError, InftChainError) as exc:
            raise UserError(f"cannot find the INFT contracts: {exc}") from None

    def storage(self, key: str | None = None):
        from deaios.inft.flows import Storage

        if self.endpoints is not None:
            rpc, nodes, flow = self.endpoints
            return Storage(nodes, rpc, flow, key or self.key)
        stack = self.stack
        return Storage(stack.node_urls, stack.rpc, stack.flow, key or self.key)

    def x25519_keys(self, address: str, path: Path | None = None):
        from deaios.inft.crypto import default_key_path, load_or_create_keys
        from deaios.stack.config import deaios_home

        path = path or self.x25519 or default_key_path(deaios_home(), address)
        try:
            return load_or_create_keys(path), path
        except (OSError, ValueError) as exc:
            raise UserError(str(exc)) from None

    def oracle_url(self) -> str:
        url = self.oracle_arg or os.environ.get("DEAIOS_INFT_ORACLE") or self.stack.extra.get("inft_oracle")
        if isinstance(url, dict):
            url = url.get("url")
        if not url:
            raise UserError("no oracle: pass --oracle URL (or set $DEAIOS_INFT_ORACLE)")
        return str(url)


def run(job: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `job(session)` in a fresh event loop; chain/flow/storage errors become user errors (exit 2)."""
    import aiohttp

    from deaios.inft.chain import InftChainError
    from deaios.inft.flows import InftFlowError
    from deaios.storage.client import StorageClientError

    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await job(session)

    try:
        return asyncio.run(go())
    except (InftChainError, InftFlowError, StorageClientError, aiohttp.ClientError) as exc:
        raise UserError(str(exc)) from None


def _hex32(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} must be 32 bytes of hex, got {text!r}")
    return raw


def _address(text: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise UserError(f"not an address: {text!r}")
    return to_checksum_address(text)


@click.group()
@click.option("--stack", default=None, metavar="PATH", help="The stack's stack.json (or its data dir).")
@click.option(
    "--deployment",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="deployments/<network>-inft.json (default: the stack's inft_* contracts).",
)
@click.option(
    "--key", default=None, help="Ethereum private key (default $DEAIOS_KEY, else the stack's dev key)."
)
@click.option(
    "--x25519-key",
    "x25519",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="X25519 key file (default $DEAIOS_HOME/inft/<address>.x25519, created when missing).",
)
@click.option("--oracle", default=None, help="Oracle URL (default $DEAIOS_INFT_ORACLE, else the stack's).")
@click.pass_context
def inft(ctx: click.Context, **options: Any) -> None:
    """ERC-7857 intelligent NFTs: encrypted agent metadata moved by a re-encryption oracle."""
    ctx.obj = Ctx(**options)  # stack, deployment, key, x25519, oracle


@inft.command()
@click.pass_obj
def keygen(c: Ctx) -> None:
    """Print (creating it if needed) your X25519 public key: senders seal data keys to it."""
    address = c.chain().address
    keys, path = c.x25519_keys(address)
    emit({"address": address, "x25519PublicKey": "0x" + keys.public.hex(), "keyFile": str(path)})


@inft.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--description", "descriptions", multiple=True, help="One per FILE (default: the file name).")
@click.option("--to", "to", default=None, help="Owner of the new token (default: you).")
@click.option("--to-x25519", default=None, help="The owner's X25519 public key (when --to is someone else).")
@click.pass_obj
def mint(
    c: Ctx, files: tuple[Path, ...], descriptions: tuple[str, ...], to: str | None, to_x25519: str | None
) -> None:
    """Encrypt FILES, store them in the storage network and mint a token carrying them."""
    from deaios.inft import flows

    if descriptions and len(descriptions) != len(files):
        raise UserError(f"{len(descriptions)} descriptions for {len(files)} files")
    chain = c.chain()
    to = _address(to) if to else chain.address
    if to_x25519:
        public = _hex32(to_x25519, "--to-x25519")
    elif to == chain.address:
        public = c.x25519_keys(to)[0].public
    else:
        raise UserError("--to someone else needs --to-x25519 (their `deaios inft keygen`)")
    items = [(d, f.read_bytes()) for d, f in zip(descriptions or [f.name for f in files], files)]
    emit(run(lambda s: flows.mint(s, chain, c.storage(), items, to, public)))


@inft.command("access-proof")
@click.argument("token_id", type=int)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_obj
def access_proof(c: Ctx, token_id: int, out: Path | None) -> None:
    """(Receiver) sign access proofs for TOKEN_ID's current data with your key and X25519 key."""
    from deaios.inft import flows

    chain = c.chain()
    keys, _ = c.x25519_keys(chain.address)
    proofs = run(lambda s: _sync(lambda: flows.access_proofs(chain, token_id, c.key, keys.public)))
    doc = {
        "receiver": chain.address,
        "x25519PublicKey": "0x" + keys.public.hex(),
        "tokenId": token_id,
        "from": run(lambda s: _sync(lambda: chain.owner_of(token_id))),
        "accessProofs": [p.to_json() for p in proofs],
    }
    if out:
        out.write_text(json.dumps(doc) + "\n")
    emit(doc)


async def _sync(fn: Callable[[], Any]) -> Any:
    return fn()


def _receiver_proofs(
    c: Ctx, chain: Any, token_id: int, proof_file: Path | None, receiver_key: str | None,
    receiver_x25519: Path | None,
) -> tuple[str, bytes, list[Any]]:
    """The receiver's address, X25519 public key and access proofs: from its `access-proof` file, or (local
    demo) signed here with its key."""
    from deaios.inft import flows
    from deaios.inft.proofs import AccessProof

    if proof_file:
        try:
            doc = json.loads(proof_file.read_text())
            proofs = [AccessProof.from_json(p) for p in doc["accessProofs"]]
            return (_address(doc["receiver"]), _hex32(doc["x25519PublicKey"], "x25519PublicKey"), proofs)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{proof_file}: not an access-proof file ({exc})") from None
    if receiver_key:
        receiver = c.chain(receiver_key).address
        public = c.x25519_keys(receiver, receiver_x25519)[0].public
        return receiver, public, flows.access_proofs(chain, token_id, receiver_key, public)
    raise UserError("give the receiver's --access-proof FILE (or, in a local demo, --receiver-key)")


def _owner_keys(c: Ctx, chain: Any, token_id: int) -> Any:
    """Your X25519 keys, after checking that you own `token_id`."""
    owner = run(lambda s: _sync(lambda: chain.owner_of(token_id)))
    if owner != chain.address:
        raise UserError(f"token {token_id} belongs to {owner}, not to you ({chain.address})")
    return c.x25519_keys(owner)[0]


def _move(
    c: Ctx,
    token_id: int,
    to: str | None,
    proof_file: Path | None,
    receiver_key: str | None,
    receiver_x25519: Path | None,
    clone: bool,
) -> None:
    from deaios.inft import flows

    chain = c.chain()
    keys = _owner_keys(c, chain, token_id)
    receiver, public, proofs = _receiver_proofs(c, chain, token_id, proof_file, receiver_key, receiver_x25519)
    if to and _address(to) != receiver:
        raise UserError(f"--to {to} but the access proofs are from {receiver}")
    emit(run(lambda s: flows.move(s, chain, c.oracle_url(), token_id, receiver, public, proofs, keys, clone)))


@inft.command()
@click.argument("token_id", type=int)
@click.option(
    "--access-proof",
    "proof_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The receiver's `deaios inft access-proof` output.",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_obj
def proofs(c: Ctx, token_id: int, proof_file: Path, out: Path | None) -> None:
    """(Owner) have the oracle re-encrypt TOKEN_ID for the receiver of an access-proof file and print the
    transfer-validity proofs (a JSON list, what `deaios market settle --proofs` takes) without transferring."""
    from deaios.inft import flows

    chain = c.chain()
    keys = _owner_keys(c, chain, token_id)
    receiver, public, access = _receiver_proofs(c, chain, token_id, proof_file, None, None)
    ownership = run(lambda s: flows.reencrypt(s, chain, c.oracle_url(), token_id, receiver, public, access, keys))
    doc = [{"accessProof": a.to_json(), "ownershipProof": o.to_json()} for a, o in zip(access, ownership)]
    if out:
        out.write_text(json.dumps(doc) + "\n")
    emit(doc)


def _move_command(name: str, clone: bool, doc: str) -> click.Command:
    """`deaios inft transfer` / `clone`: the same options, one flag apart."""

    def command(
        c: Ctx,
        token_id: int,
        to: str | None,
        proof_file: Path | None,
        receiver_key: str | None,
        receiver_x25519_key: Path | None,
    ) -> None:
        _move(c, token_id, to, proof_file, receiver_key, receiver_x25519_key, clone=clone)

    command.__doc__ = doc
    f: Any = click.pass_obj(command)
    for option in reversed(
        [
            click.argument("token_id", type=int),
            click.option("--to", default=None, help="Receiver address (checked against the access proofs)."),
            click.option(
                "--access-proof",
                "proof_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="The receiver's `deaios inft access-proof` output.",
            ),
            click.option("--receiver-key", default=None, help="Local demo: the receiver's Ethereum key."),
            click.option(
                "--receiver-x25519-key",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Local demo: the receiver's X25519 key file.",
            ),
        ]
    ):
        f = option(f)
    return inft.command(name)(f)


transfer = _move_command(
    "transfer", False, "Transfer TOKEN_ID with its data re-encrypted for the receiver (through the oracle)."
)
clone = _move_command(
    "clone",
    True,
    "Mint a copy of TOKEN_ID for the receiver, its data re-encrypted for them (you keep yours).",
)


@inft.command()
@click.argument("token_id", type=int)
@click.argument("user")
@click.option("--revoke", is_flag=True, help="Revoke instead of authorize.")
@click.pass_obj
def authorize(c: Ctx, token_id: int, user: str, revoke: bool) -> None:
    """Authorize USER to use TOKEN_ID (without seeing its data), or --revoke."""
    chain = c.chain()
    run(lambda s: _sync(lambda: chain.authorize(token_id, _address(user), revoke)))
    emit(
        {
            "tokenId": token_id,
            "authorizedUsers": run(
                lambda s: _sync(lambda: chain.call(chain.nft.functions.authorizedUsersOf(token_id)))
            ),
        }
    )


@inft.command()
@click.argument("token_id", type=int)
@click.option("--decrypt", is_flag=True, help="Also decrypt the data (you must be the owner).")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --decrypt: write entry i to OUT/<i>.bin (default: print UTF-8 text).",
)
@click.pass_obj
def show(c: Ctx, token_id: int, decrypt: bool, out: Path | None) -> None:
    """Print TOKEN_ID's owner, creator, data entries and authorized users (plaintext with --decrypt)."""
    from deaios.inft import flows

    chain = c.chain()
    info = run(lambda s: _sync(lambda: chain.token_info(token_id)))
    if decrypt:
        keys, _ = c.x25519_keys(chain.address)
        plain = run(lambda s: flows.read(s, chain, c.storage(), token_id, keys, owner=chain.address))
        if out:
            info["files"] = [str(_write_private(out / f"{i}.bin", data)) for i, data in enumerate(plain)]
        else:
            info["plaintext"] = [p.decode("utf-8", errors="replace") for p in plain]
    emit(info)


def _write_private(path: Path, data: bytes) -> Path:
    """Write decrypted data readable by its owner only (mode 0600, in a directory created 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: set it
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@inft.command()
@click.option("--stack", "stack_arg", default=None, metavar="PATH", help="Same as `deaios inft --stack`.")
@click.option(
    "--deployment",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Same as `deaios inft --deployment` (a deploy record with nft/verifier or inft_* keys).",
)
@click.option("--rpc", default=None, help="Without a stack: the chain's JSON-RPC URL (with --nodes, --flow).")
@click.option("--nodes", default=None, help="Without a stack: storage node URLs, comma-separated.")
@click.option("--flow", default=None, help="Without a stack: the Flow contract address.")
@click.option(
    "--key", "oracle_key", required=True, envvar="DEAIOS_INFT_ORACLE_KEY",
    help="The oracle's secp256k1 key (its address = oracleSigner). Also from $DEAIOS_INFT_ORACLE_KEY.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8600, show_default=True)
@click.pass_obj
def oracle(
    c: Ctx,
    stack_arg: str | None,
    deployment: Path | None,
    rpc: str | None,
    nodes: str | None,
    flow: str | None,
    oracle_key: str,
    host: str,
    port: int,
) -> None:
    """Run the re-encryption oracle (a trusted party: a TEE in production). GET /info: ready."""
    from aiohttp import web
    from web3 import Web3

    from deaios.inft.oracle import OracleService, make_app
    from deaios.service_limits import Limits, guard

    # bodies (docs/limits.md): a re-encryption request is a few sealed keys; a few requests at once
    ORACLE_LIMITS = Limits(bodies={("POST", "/reencrypt"): 64 << 10}, default_body=0, active=4, waiting=32)

    c.stack_arg = stack_arg or c.stack_arg
    c.deployment = deployment or c.deployment
    if rpc or nodes or flow:
        if not (rpc and nodes and flow):
            raise UserError("--rpc, --nodes and --flow go together (or use --stack)")
        c.endpoints = (rpc, [u for u in nodes.split(",") if u], _address(flow))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    chain = c.chain(oracle_key)  # the oracle checks owners, access proofs and data hashes on chain
    storage = c.storage(oracle_key)
    try:
        chain_id = int(Web3(Web3.HTTPProvider(storage.rpc)).eth.chain_id)
    except OSError as exc:
        raise UserError(f"cannot reach the chain at {storage.rpc}: {exc}") from None
    service = OracleService(oracle_key, storage, chain_id, chain)
    logging.getLogger(__name__).info(
        "INFT oracle %s on http://%s:%d (X25519 0x%s), NFT %s",
        service.signer,
        host,
        port,
        service.keys.public.hex(),
        chain.nft.address,
    )
    web.run_app(guard(make_app(service), ORACLE_LIMITS), host=host, port=port, print=None)
