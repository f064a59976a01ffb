"""A DA node (`deaios da node`): registers as a signer, joins every epoch, verifies, stores, signs and serves
its columns of each blob of its quorums, and prunes blobs once their epoch has expired.

JSON-RPC (POST /, `deaios.jsonrpc`), binary data as 0x-hex:

* ``da_status()`` → ``{"address", "epoch", "socket", "ready", "registeredNext", "blobs"}`` (``ready``: registered
  with its current socket, through its first epoch registration round, and its KZG tables loaded)
* ``da_sign({"header", "epoch", "quorumId", "txHash", "columns": {"<c>": "0x…"}})`` → ``{"signer",
  "signature": [x, y]}``: the node checks that ``txHash`` emitted 0G's ``DataUpload`` for (data root, epoch,
  quorum), that the columns are exactly those of its rows (`deaios.da.encoding`), and every cell's KZG proof;
  then stores them and returns its BLS signature on (dataRoot, epoch, quorumId, erasureCommitment).
* ``da_retrieve("0x<dataRoot>", epoch, quorumId, [c, …])`` → ``{"header", "columns": {"<c>": "0x…"}}``
  (the requested columns it holds; column numbers are integers in 0..127, duplicates are read once).

A column's bytes are, for each ckzg blob in order, its 2048-byte cell then its 48-byte proof.

Bad input is an error object (-32602 for malformed params: integers are u64, never strings or floats),
bodies are limited per method (`BODY_LIMITS`, docs/limits.md) and requests served at once are bounded.

The node's BLS key is its own (audit, low): a random BN254 secret kept in DIR/bls.key (mode 0600), created
on first start and registered with its proof of possession; `--bls-secret` / $DEAIOS_DA_BLS_SECRET
override it. A node registered by an older deaios with the key derived from its Ethereum key keeps using
that one (written to bls.key the first time).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from deaios import metrics
from deaios.da import bls
from deaios.da.chain import DAChain, DAChainError
from deaios.da.encoding import (
    CELL_BYTES, CELLS, MAX_BLOBS, PROOF_BYTES, BlobHeader, Column, EncodingError, columns_of_rows, trusted_setup,
    verify_columns,
)
from deaios.jsonrpc import JsonRpcEndpoint, RpcError
from deaios.service_limits import OWN_LIMIT, SHUTDOWN_GRACE, Limits, guard

log = logging.getLogger(__name__)

#: Test aids: "withhold" answers no retrieval, "garbage" serves corrupted cells (signing stays honest).
FAULTS = ("none", "withhold", "garbage")
#: the largest da_sign: every column of a 32-blob blob as hex (one signer holding all 3072 rows)
MAX_SIGN_BODY = 2 * CELLS * MAX_BLOBS * (CELL_BYTES + PROOF_BYTES) + (1 << 20)
BODY_LIMITS = {"da_sign": MAX_SIGN_BODY}
MAX_BODY = 16 << 10  # da_status, da_retrieve
BLS_KEY_FILE = "bls.key"
MAX_U64 = (1 << 64) - 1
SIGNATURES = metrics.counter("da", "signatures_total", "Blobs this node verified, stored and signed.")
ROWS_SIGNED = metrics.counter("da", "rows_signed_total", "Quorum rows covered by this node's signatures.")
STORED = metrics.counter("da", "stored_bytes_total", "Bytes of cells and proofs this node stored.")
SERVED = metrics.counter("da", "served_bytes_total", "Bytes of cells and proofs this node served to retrievers.")


@dataclass
class NodeConfig:
    rpc: str
    entrance: str
    private_key: str
    bls_key: bls.BLSKey | None  # None: the node's own key in data_dir/bls.key (created on first start)
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    votes: int = 1
    poll_interval: float = 1.0
    fault: str = "none"
    public_host: str | None = None  # the host in the socket registered on chain (default: host)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _uint(value: object, what: str) -> int:
    """A JSON integer in [0, 2^64) (no strings, floats or booleans); RpcError -32602 otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
        raise RpcError(f"{what} must be an integer in [0, 2^64), got {str(value)[:40]}", -32602)
    return value


def _columns(value: object) -> list[int]:
    """A list of column numbers (0..127), deduplicated and sorted; RpcError -32602 otherwise."""
    if not isinstance(value, list):  # (its length is bounded by the body limit)
        raise RpcError("columns must be a list of column numbers", -32602)
    out = set()
    for c in value:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < CELLS:
            raise RpcError(f"column numbers are integers in 0..{CELLS - 1}, got {str(c)[:40]}", -32602)
        out.add(c)
    return sorted(out)


def _unhex(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise RpcError(f"{what} must be a 0x-hex string", -32602)
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise RpcError(f"{what} is not hex", -32602) from None


class BlobStore:
    """Columns on disk: DIR/blobs/<root>-<epoch>-<quorum>/{header.json, c<i>.bin}, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root / "blobs"
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, data_root: bytes, epoch: int, quorum_id: int) -> Path:
        return self.root / f"{data_root.hex()}-{epoch}-{quorum_id}"

    def put(self, header: BlobHeader, epoch: int, quorum_id: int, columns: list[Column]) -> None:
        final = self._dir(header.data_root, epoch, quorum_id)
        if final.exists():
            return
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        try:
            (tmp / "header.json").write_text(json.dumps(header.to_json()))
            for col in columns:
                with open(tmp / f"c{col.index}.bin", "wb") as fh:
                    fh.write(col.to_bytes())
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def get(self, data_root: bytes, epoch: int, quorum_id: int, indices: list[int]) \
            -> tuple[BlobHeader, list[Column]] | None:
        d = self._dir(data_root, epoch, quorum_id)
        try:
            header = BlobHeader.from_json(json.loads((d / "header.json").read_text()))
        except (OSError, ValueError):
            return None
        out = []
        for i in indices:
            try:
                out.append(Column.from_bytes(i, (d / f"c{i}.bin").read_bytes(), len(header.commitments)))
            except (OSError, EncodingError):
                continue
        return header, out

    def epochs(self) -> dict[int, list[Path]]:
        out: dict[int, list[Path]] = {}
        for d in self.root.iterdir():
            parts = d.name.split("-")
            if len(parts) == 3 and not d.name.startswith("."):
                out.setdefault(int(parts[1]), []).append(d)
        return out

    def count(self) -> int:
        return sum(len(v) for v in self.epochs().values())


def load_bls_key(data_dir: Path, chain: DAChain, address: str, eth_key: str) -> bls.BLSKey:
    """The node's BLS key from DIR/bls.key; created on first start: random, unless this signer is already
    registered on chain with the key older versions derived from its Ethereum key (then that one)."""
    path = data_dir / BLS_KEY_FILE
    try:
        return bls.BLSKey.from_secret(int(path.read_text().strip(), 16))
    except (OSError, ValueError):
        pass
    key = bls.BLSKey.generate()
    if chain.is_signer(address):
        legacy = bls.BLSKey.generate(b"da-node-bls" + bytes.fromhex(eth_key.removeprefix("0x")))
        if chain.signer_infos([address])[0].pk_g1 == legacy.pk_g1:
            key = legacy
        else:
            raise SystemExit(f"{address} is registered with a BLS key that is not in {path}: restore that file")
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(hex(key.sk) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


class DANode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.chain = DAChain(config.rpc, config.entrance, config.private_key, receipt_timeout=30)
        assert self.chain.account is not None
        self.address = self.chain.account.address
        self.key = config.bls_key or load_bls_key(config.data_dir, self.chain, self.address, config.private_key)
        self.store = BlobStore(config.data_dir)
        self.socket = ""
        self.ready = False  # registered (and socket current) and joined the next epoch
        self._registered_for: int | None = None  # the next epoch this node is known to be registered for
        self._pruned_at: int | None = None  # the epoch of the last pruning round

    # ------------------------------------------------------------ chain duties

    def ensure_registered(self, socket: str) -> None:
        if not self.chain.is_signer(self.address):
            stake = self.config.votes * self.chain.params()["tokensPerVote"]
            self.chain.register_signer(self.key, socket, stake)
            log.info("registered signer %s (socket %s, %d votes)", self.address, socket, self.config.votes)
        elif self.chain.signer_infos([self.address])[0].socket != socket:  # restarted on another port
            self.chain.update_socket(socket)
            log.info("updated signer %s's socket to %s", self.address, socket)

    def epoch_duties(self) -> None:
        """Register for the next epoch if not yet, and prune expired blobs. Both only change when the epoch
        does, so a round without a new epoch costs one call (`epochNumber`)."""
        epoch = self.chain.epoch_number()
        if self._registered_for != epoch + 1:
            if self.chain.registered_epoch(self.address, epoch + 1):
                self._registered_for = epoch + 1
            else:
                try:
                    self.chain.register_next_epoch(self.key)
                    self._registered_for = epoch + 1
                    log.info("registered for epoch %d", epoch + 1)
                except DAChainError as exc:  # e.g. the epoch changed meanwhile: retry next round
                    log.warning("epoch registration failed: %s", exc)
        if self._pruned_at == epoch:
            return
        for e, dirs in self.store.epochs().items():
            if self.chain.is_epoch_expired(e):
                for d in dirs:
                    shutil.rmtree(d, ignore_errors=True)
                log.info("pruned %d blobs of expired epoch %d", len(dirs), e)
        self._pruned_at = epoch

    # ------------------------------------------------------------ RPC

    def status(self) -> dict[str, Any]:
        epoch = self.chain.epoch_number()
        return {"address": self.address, "epoch": epoch, "socket": self.socket, "ready": self.ready,
                "registeredNext": self.chain.registered_epoch(self.address, epoch + 1),
                "blobs": self.store.count()}

    def sign(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise RpcError("da_sign takes one object", -32602)
        try:
            header = BlobHeader.from_json(request.get("header") or {})
            epoch, quorum_id = _uint(request.get("epoch"), "epoch"), _uint(request.get("quorumId"), "quorumId")
            tx_hash = str(request["txHash"])
            raw_columns = request["columns"]
            if not isinstance(raw_columns, dict):
                raise TypeError("columns must be an object")
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise RpcError(f"malformed da_sign request: {exc}", -32602) from None
        root = header.data_root
        try:
            uploads = self.chain.uploads_of_tx(tx_hash)
        except DAChainError as exc:
            raise RpcError(str(exc)) from None
        if not any(u.data_root == root and u.epoch == epoch and u.quorum_id == quorum_id for u in uploads):
            raise RpcError(f"transaction {tx_hash} did not upload blob 0x{root.hex()} to epoch {epoch} "
                           f"quorum {quorum_id}")
        try:
            quorum = self.chain.quorum(epoch, quorum_id)
        except DAChainError as exc:
            raise RpcError(str(exc)) from None
        rows = quorum.rows_of(self.address)
        if not rows:
            raise RpcError(f"{self.address} is not a member of epoch {epoch} quorum {quorum_id}")
        expected = columns_of_rows(rows, quorum.rows)
        try:
            raw_columns = {int(c): v for c, v in raw_columns.items() if str(c).isdigit()}
        except ValueError:
            raise RpcError("column numbers must be decimal integers", -32602) from None
        if sorted(raw_columns) != expected:
            raise RpcError(f"expected columns {expected[0]}..{expected[-1]} for rows {rows.start}..{rows.stop - 1}")
        k = len(header.commitments)
        try:
            columns = [Column.from_bytes(c, _unhex(raw_columns[c], f"column {c}"), k) for c in expected]
        except EncodingError as exc:
            raise RpcError(str(exc), -32602) from None
        if not verify_columns(header, columns):
            raise RpcError("cells do not match their KZG proofs and the blob's commitments")
        self.store.put(header, epoch, quorum_id, columns)
        sig = self.key.sign(bls.commit_digest(root, epoch, quorum_id, header.erasure_commitment))
        SIGNATURES.inc()
        ROWS_SIGNED.inc(len(rows))
        STORED.inc(sum(len(col.to_bytes()) for col in columns))
        return {"signer": self.address, "signature": [hex(sig[0]), hex(sig[1])]}

    def retrieve(self, data_root: object, epoch: object, quorum_id: object, indices: object) -> dict[str, Any]:
        root = _unhex(data_root, "dataRoot")
        if len(root) != 32:
            raise RpcError("dataRoot must be 32 bytes of 0x-hex", -32602)
        epoch, quorum_id, wanted = _uint(epoch, "epoch"), _uint(quorum_id, "quorumId"), _columns(indices)
        if self.config.fault == "withhold":
            raise RpcError("blob not available")
        found = self.store.get(root, epoch, quorum_id, wanted)
        if found is None:
            raise RpcError(f"blob 0x{root.hex()} of epoch {epoch} quorum {quorum_id} is not stored here")
        header, columns = found
        out = {}
        for col in columns:
            data = col.to_bytes()
            if self.config.fault == "garbage":
                data = bytes(b ^ 0x5A for b in data)
            out[str(col.index)] = _hex(data)
            SERVED.inc(len(data))
        return {"header": header.to_json(), "columns": out}

    def methods(self) -> dict[str, Any]:
        async def status() -> dict:
            return await asyncio.to_thread(self.status)

        async def sign(request: Any) -> dict:
            return await asyncio.to_thread(self.sign, request)

        async def retrieve(data_root: object, epoch: object, quorum_id: object, indices: object) -> dict:
            return await asyncio.to_thread(self.retrieve, data_root, epoch, quorum_id, indices)

        return {"da_status": status, "da_sign": sign, "da_retrieve": retrieve}


async def _duties_loop(node: DANode, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(node.epoch_duties)
        except Exception:  # keep serving whatever happens in one round
            log.exception("epoch duties failed")
        await asyncio.sleep(interval)


async def serve(config: NodeConfig, ready: Any = None) -> None:
    """Run one DA node until SIGINT/SIGTERM. `ready(info)` is called once it listens and is registered."""
    node = DANode(config)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/", JsonRpcEndpoint(node.methods(), max_body=MAX_BODY, body_limits=BODY_LIMITS))
    guard(app, Limits(bodies={("POST", "/"): OWN_LIMIT}, active=8))
    metrics.instrument(app, "da", gauges={"blobs_held": ("Blobs (epoch, quorum) whose rows this node keeps.",
                                                         node.store.count)})
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, shutdown_timeout=SHUTDOWN_GRACE)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    node.socket = f"{config.public_host or config.host}:{port}"
    await asyncio.to_thread(node.ensure_registered, node.socket)
    await asyncio.to_thread(node.epoch_duties)
    await asyncio.to_thread(trusted_setup)  # the KZG tables (~2 s): the first blob must not pay for them
    node.ready = True
    info = {"url": f"http://{node.socket}", "address": node.address, "pid": os.getpid()}
    log.info("DA node %s listening on %s", node.address, info["url"])
    if ready is not None:
        ready(info)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(_duties_loop(node, config.poll_interval))
    await stop.wait()
    task.cancel()
    await runner.cleanup()


def print_ready(info: dict) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
