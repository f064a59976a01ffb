"""Log sync: follow the Flow contract's `Submit` events and record each file in the node's store.

The follower polls `eth_getLogs` from its persisted cursor (block number + block hash) to the chain head.
If the block at the cursor no longer has the recorded hash (a reorg), it steps back `REORG_DEPTH` blocks
and rescans; recording a submission is idempotent by tx seq, so a rescan never duplicates anything.

It polls every `interval` seconds while files arrive. With an `idle_interval`, it slows to that pace once
`IDLE_AFTER` seconds passed without a new file or a `wake()`; the node calls `wake()` when someone asks for a
file it has not recorded (an uploader waiting for the node to see its submission), which also starts a step at
once, so an idle node costs the chain and the CPU a few requests a second less without making uploads wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp
from eth_abi import decode as abi_decode

from deaios.jsonrpc import RpcCallError, rpc_call
from deaios.storage.merkle import keccak256
from deaios.storage.node.store import FileRecord, NodeStore

log = logging.getLogger(__name__)

SUBMIT_TOPIC = "0x" + keccak256(
    b"Submit(address,bytes32,uint256,uint256,uint256,(uint256,bytes,(bytes32,uint256)[]))").hex()
SUBMIT_DATA_TYPES = ["uint256", "uint256", "uint256", "(uint256,bytes,(bytes32,uint256)[])"]
REORG_DEPTH = 12
MAX_RANGE = 2000  # blocks per eth_getLogs call
MAX_CHAIN_REPLY = 256 << 20  # bytes of one chain reply (a range of Submit logs)
MAX_BACKOFF = 2.0  # seconds between log-sync steps at most while they fail
IDLE_AFTER = 10.0  # seconds without a new file or a wake() after which the idle interval applies


class ChainError(RuntimeError):
    """The chain RPC answered with an error or could not be reached."""


@dataclass(frozen=True)
class SubmitEvent:
    seq: int
    start_pos: int
    sectors: int
    length: int
    tags: bytes
    nodes: tuple[tuple[bytes, int], ...]  # (root, height)
    block: int
    sender: str = ""  # the indexed `sender` (the submission's submitter), when the log entry has topics

    @property
    def data_root(self) -> bytes:
        """The file root folded from the node roots, as the uploader computed it."""
        root = self.nodes[-1][0]
        for node_root, _ in reversed(self.nodes[:-1]):
            root = keccak256(node_root + root)
        return root

    def record(self) -> FileRecord:
        return FileRecord(
            root="0x" + self.data_root.hex(), size=self.length, seqs=[self.seq], start_entry=self.start_pos,
            merkle_nodes=[[height + 1, "0x" + root.hex()] for root, height in self.nodes],
            tags="0x" + self.tags.hex(), senders=[self.sender.lower()] if self.sender else [])


def decode_submit(log_entry: dict) -> SubmitEvent:
    seq, start_pos, sectors, (length, tags, nodes) = abi_decode(
        SUBMIT_DATA_TYPES, bytes.fromhex(log_entry["data"][2:]))
    topics = log_entry.get("topics") or []
    sender = "0x" + topics[1][-40:].lower() if len(topics) > 1 else ""
    return SubmitEvent(seq, start_pos, sectors, length, tags, tuple((bytes(r), h) for r, h in nodes),
                       int(log_entry["blockNumber"], 16), sender)


class ChainClient:
    """The few Ethereum JSON-RPC calls log sync needs, over one aiohttp session."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def call(self, method: str, *params: object) -> object:
        try:
            return await rpc_call(self.session, self.url, method, *params, timeout=60, max_reply=MAX_CHAIN_REPLY)
        except RpcCallError as exc:
            raise ChainError(str(exc)) from exc

    async def block(self, number: int) -> dict | None:
        return await self.call("eth_getBlockByNumber", hex(number), False)  # type: ignore[return-value]


class LogSync:
    """Follows Submit events of one Flow contract into a NodeStore."""

    def __init__(self, store: NodeStore, chain: ChainClient, flow: str, start_block: int = 0,
                 interval: float = 0.1, idle_interval: float | None = None) -> None:
        self.store = store
        self.chain = chain
        self.flow = flow
        self.start_block = start_block
        self.interval = interval
        self.idle_interval = idle_interval  # None: always `interval`
        self.active_at = time.monotonic()
        self._woken = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # run()'s loop
        self.height = -1  # last fully processed block
        self.block_hash = "0x" + "00" * 32
        self.new_files: asyncio.Queue[bytes] = asyncio.Queue()

    def wake(self) -> None:
        """Someone waits for a file not recorded yet: step now and poll at the full rate again. Safe to call
        from a worker thread (the node reads shares in threads)."""
        self.active_at = time.monotonic()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._woken.set)

    def _pause(self) -> float:
        if self.idle_interval is None or time.monotonic() - self.active_at < IDLE_AFTER:
            return self.interval
        return max(self.interval, self.idle_interval)

    async def run(self) -> None:
        """Step forever. A failing step (the chain unreachable or restarting, the disk full) is retried with
        a growing pause (up to MAX_BACKOFF s), logged when it starts failing and when it recovers."""
        self._loop = asyncio.get_running_loop()
        failing: str | None = None
        pause = self.interval
        while True:
            self._woken.clear()
            try:
                await self.step()
            except Exception as exc:  # noqa: BLE001  (whatever it is, the next step may succeed)
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ChainError) else str(exc)
                if failing is None:
                    log.warning("log sync: %s (retrying)", reason)
                failing = reason
                pause = min(MAX_BACKOFF, max(pause * 2, self.interval))
            else:
                if failing is not None:
                    log.info("log sync resumed at block %d", self.height)
                failing = None
                pause = self._pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), pause)

    async def step(self) -> None:
        head = int(await self.chain.call("eth_blockNumber"), 16)  # type: ignore[arg-type]
        cursor = self.store.cursor()
        if cursor is not None and cursor["block"] == head and self.height == head:
            return  # nothing new (a reorg to the same height is caught once the head moves on)
        start = self.start_block
        if cursor is not None:
            block = await self.chain.block(cursor["block"])
            if block is None or block["hash"] != cursor["hash"]:
                log.warning("reorg at block %s: rescanning", cursor["block"])
                start = max(self.start_block, cursor["block"] - REORG_DEPTH)
            else:
                start = cursor["block"] + 1
                self.height, self.block_hash = cursor["block"], cursor["hash"]
        while start <= head:
            end = min(head, start + MAX_RANGE - 1)
            logs = await self.chain.call("eth_getLogs", {
                "address": self.flow, "topics": [SUBMIT_TOPIC], "fromBlock": hex(start), "toBlock": hex(end)})
            end_block = await self.chain.block(end)
            if end_block is None:
                return
            for entry in sorted(logs, key=lambda e: (int(e["blockNumber"], 16), int(e["logIndex"], 16))):  # type: ignore[union-attr]
                if entry.get("removed"):
                    continue
                self.on_submit(decode_submit(entry))
            cursor = {"block": end, "hash": end_block["hash"]}
            self.store.set_cursor(cursor)
            self.height, self.block_hash = end, end_block["hash"]
            start = end + 1

    def on_submit(self, event: SubmitEvent) -> None:
        """Record one Submit event (idempotent by tx seq: a rescan may deliver it again). Other
        followers of the log (the KV node) override this."""
        before = self.store.get(event.data_root)
        record = self.store.record_submission(event.seq, event.record())
        if before is None:
            log.info("new file root=%s seq=%d size=%d", record.root, event.seq, event.length)
            self.active_at = time.monotonic()
            self.new_files.put_nowait(event.data_root)
