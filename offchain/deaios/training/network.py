"""A training process's connection to the deaios network: storage files, KV ledger, on a loop thread.

JAX training runs on the main thread; everything that talks to the network runs on one asyncio loop in a
background thread (`submit` returns a concurrent Future), so an exchange can be in flight while the next
round trains. Chain writes (the Flow submissions of files and of KV transactions) are serialised by one
lock, since they share the account's nonce; the uploads around them overlap. Every byte the process sends
over HTTP to the storage and KV nodes is counted (`wire`, by the `purpose` of the task that sent it), and
`link_mbps` simulates a slow link by adding bytes·8 / bandwidth seconds to each transfer of training payloads.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from deaios.kv.client import Batch, Client, TxOutcome
from deaios.stack.config import Stack
from deaios.storage.client import StorageClient

T = TypeVar("T")

#: what the current task's traffic is for ("exchange", "checkpoint", "ledger"): wire bytes are counted per purpose
purpose: contextvars.ContextVar[str] = contextvars.ContextVar("purpose", default="ledger")


class Network:
    def __init__(self, stack: Stack, private_key: str | None, link_mbps: float | None = None) -> None:
        from eth_account import Account

        self.stack, self.private_key, self.link_mbps = stack, private_key, link_mbps
        self.kv_address = Account.from_key(private_key).address if private_key else ""
        self.wire = collections.Counter[str]()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="deaios-train-net", daemon=True)
        self.thread.start()
        self.run(self._open())

    async def _open(self) -> None:
        trace = aiohttp.TraceConfig()

        async def on_chunk(session: object, ctx: object, params: aiohttp.TraceRequestChunkSentParams) -> None:
            self.wire[purpose.get()] += len(params.chunk)

        trace.on_request_chunk_sent.append(on_chunk)
        self.session = aiohttp.ClientSession(trace_configs=[trace])
        self.kv = Client.from_stack(self.stack, self.session, timeout=120.0)
        self.kv.private_key = self.private_key
        self.storage = StorageClient(self.session, self.stack.node_urls, self.stack.rpc, self.stack.flow,
                                     self.private_key)
        self.kv.submit_lock = self.storage.submit_lock = asyncio.Lock()  # one account, one nonce sequence

    @property
    def wire_sent(self) -> int:
        return sum(self.wire.values())

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        async def shut() -> None:
            await self.session.close()
        try:
            self.run(shut(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    def set_key(self, private_key: str) -> None:
        """Sign chain writes with `private_key` from now on."""
        from eth_account import Account

        self.private_key = self.kv.private_key = self.storage.private_key = private_key
        self.kv_address = Account.from_key(private_key).address

    async def link_delay(self, size: int) -> None:
        if self.link_mbps:
            await asyncio.sleep(size * 8 / (self.link_mbps * 1e6))

    # -- files ---------------------------------------------------------------------------------------------
    async def upload(self, data: bytes, simulate_link: bool = False) -> str:
        """Store `data` as a file in the log; its root (0x…)."""
        with tempfile.TemporaryDirectory(prefix="deaios-train-") as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            result = await self.storage.upload(path, on_stage=lambda message: None)
        if simulate_link:
            await self.link_delay(len(data))
        return result.root

    async def download(self, root: str, simulate_link: bool = False) -> bytes:
        """The file `root`, every segment verified against the root."""
        with tempfile.TemporaryDirectory(prefix="deaios-train-") as tmp:
            out = Path(tmp) / "blob"
            await self.storage.download(root, out)
            data = out.read_bytes()
        if simulate_link:
            await self.link_delay(len(data))
        return data

    # -- KV ------------------------------------------------------------------------------------------------
    async def commit(self, batch: Batch) -> TxOutcome:
        """Submit a KV transaction and wait for its replay result."""
        outcome = await batch.commit(wait=False)
        result = await self.kv.wait_result(outcome.seq)
        return TxOutcome(outcome.seq, outcome.root, outcome.tx_hash, result)
