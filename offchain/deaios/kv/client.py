"""`deaios.kv.Client`: write and read 0G KV streams from Python.

    async with aiohttp.ClientSession() as session:
        kv = Client.from_stack(load_stack(), session)
        models = stream_id("models")                       # any 32 bytes; here keccak256("models")
        outcome = await kv.put(models, "AI_100", json.dumps({"name": "x", "path": "log://…"}))
        assert outcome.ok                                  # "Commit", as replayed by the KV node
        entry = await kv.get(models, "AI_100")             # Entry(key, value, version) or None
        async for entry in kv.ls(models, prefix="AI_"): …

A write is one KV transaction: the stream data (deaios.kv.codec) uploaded as a log file whose tags
name its streams (Flow.submit paying the fee, then the erasure shares, deaios.storage.client), then
the KV node's replay result, waited for. `batch()` groups writes, deletes and access-control changes
into one transaction. Keys and values are bytes or str (UTF-8); stream ids and accounts bytes or 0x-hex.
"""

from __future__ import annotations

import asyncio
import contextlib
import base64
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from deaios.kv.codec import (
    MAX_QUERY_SIZE, MAX_VERSION, AccessControl, Op, Read, StreamData, Write,
)
from deaios.storage.merkle import keccak256

Bytes = bytes | str


class KvError(RuntimeError):
    """A KV call failed (the node answered with an error, could not be reached, or did not replay)."""


def stream_id(name: Bytes) -> bytes:
    """A stream id derived from a name: keccak256(name). (Any 32 bytes are a valid stream id.)"""
    return keccak256(name.encode() if isinstance(name, str) else name)


def as_bytes(value: Bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def as_fixed(value: Bytes, size: int, what: str) -> bytes:
    """`size` bytes from bytes or 0x-hex; ValueError otherwise."""
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raw = b""
        if not value.startswith("0x") or len(raw) != size:
            raise ValueError(f"{what} must be 0x followed by {2 * size} hex digits, got {value!r}")
        return raw
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return bytes(value)


@dataclass(frozen=True)
class Entry:
    key: bytes
    value: bytes
    version: int  # the tx seq that wrote it

    def text(self) -> str:
        return self.value.decode()


@dataclass(frozen=True)
class TxOutcome:
    """A KV transaction in the log and what replay made of it."""

    seq: int
    root: str
    tx_hash: str | None
    result: str  # "Commit", or why it was rejected (0G's transaction result)

    @property
    def ok(self) -> bool:
        return self.result == "Commit"

    def to_json(self) -> dict[str, object]:
        return {"txSeq": self.seq, "root": self.root, "txHash": self.tx_hash, "result": self.result}


@dataclass
class Batch:
    """The content of one KV transaction; `await batch.commit()` submits it."""

    client: "Client"
    data: StreamData = field(default_factory=StreamData)

    def set(self, stream: Bytes, key: Bytes, value: Bytes) -> "Batch":
        self.data.writes.append(Write(as_fixed(stream, 32, "stream id"), as_bytes(key), as_bytes(value)))
        return self

    def delete(self, stream: Bytes, key: Bytes) -> "Batch":
        return self.set(stream, key, b"")

    def read(self, stream: Bytes, key: Bytes) -> "Batch":
        """Fail the transaction (VersionConfliction) if `key` was written after the batch's version."""
        self.data.reads.append(Read(as_fixed(stream, 32, "stream id"), as_bytes(key)))
        return self

    def control(self, op: Op, stream: Bytes, key: Bytes | None = None, account: Bytes | None = None) -> "Batch":
        """Append an access-control op (the fields it takes: deaios.kv.codec.OP_FIELDS)."""
        self.data.controls.append(AccessControl(
            op, as_fixed(stream, 32, "stream id"), None if key is None else as_bytes(key),
            None if account is None else as_fixed(account, 20, "account")))
        return self

    def grant_writer(self, stream: Bytes, account: Bytes) -> "Batch":
        return self.control(Op.GRANT_WRITER_ROLE, stream, account=account)

    def revoke_writer(self, stream: Bytes, account: Bytes) -> "Batch":
        return self.control(Op.REVOKE_WRITER_ROLE, stream, account=account)

    def grant_admin(self, stream: Bytes, account: Bytes) -> "Batch":
        return self.control(Op.GRANT_ADMIN_ROLE, stream, account=account)

    def set_special_key(self, stream: Bytes, key: Bytes, special: bool = True) -> "Batch":
        return self.control(Op.SET_KEY_TO_SPECIAL if special else Op.SET_KEY_TO_NORMAL, stream, key=key)

    def grant_special_writer(self, stream: Bytes, key: Bytes, account: Bytes) -> "Batch":
        return self.control(Op.GRANT_SPECIAL_WRITER_ROLE, stream, key=key, account=account)

    async def commit(self, wait: bool = True) -> TxOutcome:
        return await self.client.submit(self.data, wait=wait)


class Client:
    """A KV node (reads) plus the storage network and chain (writes) of one stack."""

    def __init__(self, session: aiohttp.ClientSession, kv_url: str, node_urls: list[str] | None = None,
                 rpc: str | None = None, flow: str | None = None, private_key: str | None = None,
                 timeout: float = 60.0) -> None:
        self.session = session
        self.url = kv_url
        self.node_urls = node_urls or []
        self.rpc, self.flow, self.private_key = rpc, flow, private_key
        self.timeout = timeout
        self._id = 0
        self.submit_lock: asyncio.Lock | None = None  # see StorageClient.submit_lock

    @classmethod
    def from_stack(cls, stack: object, session: aiohttp.ClientSession, **kwargs: object) -> "Client":
        """The client of a running stack (a deaios.stack.config.Stack whose stack.json lists a KV node); it signs
        with `private_key=` when given, else the stack's key."""
        kv = stack.extra.get("kv") if hasattr(stack, "extra") else None  # type: ignore[attr-defined]
        if not isinstance(kv, dict) or not kv.get("url"):
            raise KvError("this stack has no KV node (stack.json has no \"kv\" entry); start it with a deaios "
                          "that includes the KV layer")
        key = kwargs.pop("private_key", None) or stack.private_key  # type: ignore[attr-defined]
        return cls(session, kv["url"], stack.node_urls, stack.rpc, stack.flow, key,  # type: ignore[attr-defined]
                   **kwargs)  # type: ignore[arg-type]

    # -- JSON-RPC ------------------------------------------------------------------------------------------
    async def call(self, method: str, *params: object) -> object:
        """One JSON-RPC call to the KV node; KvError with the node's message (and reason) on failure."""
        self._id += 1
        try:
            async with self.session.post(self.url, json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                                         "params": list(params)},
                                         timeout=aiohttp.ClientTimeout(total=30)) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            raise KvError(f"KV node {self.url} unreachable ({method}): {exc or type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise KvError(f"{method}: malformed reply from {self.url}")
        error = body.get("error")
        if error:
            reason = f" ({error['data']})" if error.get("data") else ""
            raise KvError(f"{method}: {error.get('message')}{reason}")
        return body.get("result")

    async def status(self) -> dict:
        return await self.call("deaios_kvStatus")  # type: ignore[return-value]

    async def snapshot(self) -> int | None:
        """The latest replayed version (None before any transaction): reads at it are consistent."""
        progress = (await self.status())["nextTxSeq"]
        return progress - 1 if progress else None

    # -- reads ----------------------------------------------------------------------------------------------
    async def get(self, stream: Bytes, key: Bytes, version: int | None = None) -> Entry | None:
        """The key's value (at `version`, default the latest), or None if it has none (never written or
        deleted). Values over 256 KiB are read in pieces of one version."""
        sid, k = "0x" + as_fixed(stream, 32, "stream id").hex(), as_bytes(key)
        params = [] if version is None else [version]
        seg = await self.call("kv_getValue", sid, _b64(k), 0, MAX_QUERY_SIZE, *params)
        assert isinstance(seg, dict)
        if not seg["size"]:
            return None
        return Entry(k, await self._rest(sid, k, seg), seg["version"])

    async def _rest(self, sid: str, key: bytes, seg: dict) -> bytes:
        data = base64.b64decode(seg["data"])
        while len(data) < seg["size"]:
            more = await self.call("kv_getValue", sid, _b64(key), len(data), MAX_QUERY_SIZE, seg["version"])
            assert isinstance(more, dict)
            data += base64.b64decode(more["data"])
        return data

    async def ls(self, stream: Bytes, prefix: Bytes = b"", version: int | None = None) -> AsyncIterator[Entry]:
        """The stream's keys starting with `prefix`, in key order, at one version (default: the latest
        replayed when the listing starts)."""
        sid, start = "0x" + as_fixed(stream, 32, "stream id").hex(), as_bytes(prefix)
        if version is None:
            version = await self.snapshot()
            if version is None:
                return
        if start:
            seg = await self.call("kv_getNext", sid, _b64(start), 0, MAX_QUERY_SIZE, True, version)
        else:
            seg = await self.call("kv_getFirst", sid, 0, MAX_QUERY_SIZE, version)
        while isinstance(seg, dict):
            key = base64.b64decode(seg["key"])
            if not key.startswith(start):
                return
            yield Entry(key, await self._rest(sid, key, seg), seg["version"])
            seg = await self.call("kv_getNext", sid, _b64(key), 0, MAX_QUERY_SIZE, False, version)

    async def tx_result(self, seq: int) -> str | None:
        return await self.call("kv_getTransactionResult", seq)  # type: ignore[return-value]

    async def wait_result(self, seq: int, timeout: float | None = None) -> str:
        """Wait until the KV node has replayed transaction `seq`; its result.

        The timeout counts time without progress: it starts again whenever the node replays a transaction
        or starts waiting for the data of an earlier one (a writer that died between its Flow submission
        and its upload), so a wait outlasts the node's own data deadline, after which the node records that
        transaction as DataUnavailable and goes on."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay = 0.02
        seen: tuple[int, int | None] | None = None
        while True:
            result = await self.tx_result(seq)
            if result is not None:
                return result
            status = await self.status()
            if status["nextTxSeq"] > seq:  # replayed since: with a result, or skipped (no served stream)
                result = await self.tx_result(seq)
                if result is not None:
                    return result
                raise KvError(f"tx {seq} is not a KV transaction of a stream the KV node serves "
                              f"(it serves {status['streams']})")
            progress = (status["nextTxSeq"], status.get("waitingForData"))
            if progress != seen:  # the node moved on, or started waiting for a transaction's data
                seen, deadline = progress, time.monotonic() + limit
            elif time.monotonic() > deadline:
                waiting = f", waiting for the data of tx {status['waitingForData']}" \
                    if status.get("waitingForData") is not None else ""
                raise KvError(f"the KV node has not replayed tx {seq} yet (it is at tx {status['nextTxSeq']}"
                              f"{waiting})")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    # -- writes ---------------------------------------------------------------------------------------------
    def batch(self, version: int = MAX_VERSION) -> Batch:
        """An empty transaction built on `version` (default: the latest state, never conflicts)."""
        return Batch(self, StreamData(version=version))

    async def put(self, stream: Bytes, key: Bytes, value: Bytes) -> TxOutcome:
        return await self.batch().set(stream, key, value).commit()

    async def delete(self, stream: Bytes, key: Bytes) -> TxOutcome:
        return await self.batch().delete(stream, key).commit()

    async def submit(self, data: StreamData, wait: bool = True) -> TxOutcome:
        """Put one KV transaction in the log; with `wait`, also wait for the KV node's result."""
        from deaios.storage.client import StorageClient, StorageClientError
        from deaios.storage.flow_client import FlowClient, FlowError
        from deaios.storage.merkle import FileMerkleTree

        if not (self.rpc and self.flow and self.private_key and self.node_urls):
            raise KvError("writing needs the chain RPC, the Flow address, a private key and the storage nodes")
        if not data.stream_ids():
            raise KvError("a KV transaction must write or control at least one stream")
        encoded, tags = data.encode(), data.tags()
        with tempfile.TemporaryDirectory(prefix="deaios-kv-") as tmp:
            path = Path(tmp) / "stream.data"
            path.write_bytes(encoded)
            try:
                storage = StorageClient(self.session, self.node_urls, self.rpc, self.flow, self.private_key)
                storage.submit_lock = self.submit_lock
                uploaded = await storage.upload(path, tags, on_stage=lambda message: None)
                seq, tx_hash = uploaded.tx_seq, uploaded.tx_hash
                if tx_hash is None:  # the same bytes are in the log already: this write is a new transaction
                    flow = FlowClient(self.rpc, self.flow, self.private_key)
                    submission = FileMerkleTree.from_bytes(encoded).submission(tags)
                    async with self.submit_lock or contextlib.nullcontext():
                        result = await asyncio.to_thread(flow.submit, submission)
                    seq, tx_hash = result.event.seq, result.tx_hash
            except (StorageClientError, FlowError, OSError) as exc:
                raise KvError(f"submitting the KV transaction failed: {exc}") from exc
        result_text = await self.wait_result(seq) if wait else ""
        return TxOutcome(seq, uploaded.root, tx_hash, result_text)

    # -- access control -------------------------------------------------------------------------------------
    async def is_admin(self, account: Bytes, stream: Bytes) -> bool:
        return bool(await self.call("kv_IsAdmin", _hex(account, 20), _hex(stream, 32)))

    async def is_writer(self, account: Bytes, stream: Bytes) -> bool:
        return bool(await self.call("kv_isWriterOfStream", _hex(account, 20), _hex(stream, 32)))

    async def may_write(self, account: Bytes, stream: Bytes, key: Bytes) -> bool:
        return bool(await self.call("kv_hasWritePermission", _hex(account, 20), _hex(stream, 32),
                                    _b64(as_bytes(key))))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hex(value: Bytes, size: int) -> str:
    return "0x" + as_fixed(value, size, "account" if size == 20 else "stream id").hex()


__all__ = ["Batch", "Client", "Entry", "KvError", "TxOutcome", "stream_id"]
