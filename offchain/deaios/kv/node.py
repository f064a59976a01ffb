"""The KV node process (`deaios kv node`): follows the log, fetches stream data, replays, serves kv_*.

Three loops share one process:

* log sync (deaios.storage.node.logsync.LogSync, the storage nodes' follower) records every Flow
  `Submit` event (sender, root, size, stream ids from the tags) in the log store, from a persisted
  cursor;
* the fetcher downloads the data of upcoming transactions of served streams from the storage nodes
  (deaios.storage.client.StorageClient: any k of n nodes, every segment verified against its root, the
  size taken from the Submit event) to a file, a few transactions ahead of replay, retrying until the data
  is there; replay parses it from a memory map of that file, never from a copy in memory;
* replay (deaios.kv.replay) applies transactions in tx-seq order in batches, one lmdb write transaction
  per batch on one writer thread, so that the event loop keeps serving reads while it runs. Like 0G's node
  it waits for the data of the next transaction it needs — but only until the data deadline (counted
  from when this node saw the transaction's Submit event; audit H7): then the transaction is recorded as
  DataUnavailable and replay goes on. Transactions over the maximum size are never fetched (DataTooLarge).

Without a chain (`--chain-rpc` not given) the node only serves an existing index (read-only snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from deaios import metrics
from deaios.jsonrpc import JsonRpcEndpoint
from deaios.kv import rpc
from deaios.kv.codec import ENTRY_SIZE, stream_ids_from_tags
from deaios.kv.replay import DATA_DEADLINE, MAX_TX_SIZE, NeedData, Replayer, StreamConfig
from deaios.kv.store import KvIndex, TxLog, TxRecord, wipe
from deaios.service_limits import OWN_LIMIT, SHUTDOWN_GRACE, Limits, guard
from deaios.storage.client import StorageClient, StorageClientError
from deaios.storage.node.logsync import ChainClient, LogSync, SubmitEvent
from deaios.storage.retrieval import RetrievalError

log = logging.getLogger(__name__)

LOOKAHEAD = 16  # transactions whose data is fetched ahead of replay
FETCH_CONCURRENCY = 4
PREFETCH_BYTES = 256 << 20
BATCH_TXS = 512  # transactions per lmdb write transaction
BATCH_BYTES = 64 << 20  # stream data per lmdb write transaction
MAX_RPC_BODY = 16 << 10  # every kv_* call is small (keys travel in base64: 16 KiB keys fit)
REPLAYED = metrics.counter("kv", "transactions_replayed_total", "KV transactions replayed, by outcome (commit or "
                           "rejected).", ["outcome"])
FETCHED = metrics.counter("kv", "fetched_bytes_total", "Stream data downloaded from the storage nodes.")


@dataclass
class KvNodeConfig:
    data_dir: Path
    host: str
    port: int
    chain_rpc: str | None = None  # None: serve the index as it is, follow nothing
    flow: str | None = None
    node_urls: list[str] = field(default_factory=list)
    start_block: int = 0
    streams: StreamConfig = field(default_factory=StreamConfig)
    rebuild: bool = False
    data_deadline: float = DATA_DEADLINE  # 0: wait for a transaction's data forever
    max_tx_size: int = MAX_TX_SIZE


class KvLogSync(LogSync):
    """LogSync recording every Submit event as a TxRecord (sender, root, size, stream ids) instead of
    a file; `new_txs` is set whenever a scan recorded some."""

    def __init__(self, txlog: TxLog, chain: ChainClient, flow: str, start_block: int) -> None:
        super().__init__(txlog, chain, flow, start_block)  # type: ignore[arg-type]  # TxLog has the cursor API
        self.txlog = txlog
        self.new_txs = asyncio.Event()
        self.known = 0  # txs recorded when new_txs was last set
        self.started = time.monotonic()
        self.seen_at: dict[int, float] = {}  # tx seq -> when this process saw its Submit event

    def first_seen(self, seq: int) -> float:
        """When this node saw transaction `seq` (the process start for transactions logged before it)."""
        return self.seen_at.get(seq, self.started)

    def on_submit(self, event: SubmitEvent) -> None:
        self.seen_at.setdefault(event.seq, time.monotonic())
        sender = bytes.fromhex(event.sender[2:]) if event.sender else bytes(20)
        self.txlog.add(TxRecord(event.seq, sender, event.data_root, event.length,
                                tuple(stream_ids_from_tags(event.tags))))

    async def step(self) -> None:
        await super().step()  # records are written with the cursor at the end of each scanned range
        if self.txlog.next_seq() > self.known:
            self.known = self.txlog.next_seq()
            self.new_txs.set()


class Fetcher:
    """Downloads transaction data from the storage nodes, ahead of replay, retrying until it is there.
    The data of a transaction is handed over as a read-only memory map of its downloaded file (the file
    itself is unlinked at once), zero-padded to whole 256-byte sectors as 0G reads it."""

    def __init__(self, session: aiohttp.ClientSession, node_urls: list[str], tmp_dir: Path) -> None:
        self.client = StorageClient(session, node_urls)
        self.tmp = tmp_dir
        self.tasks: dict[int, asyncio.Task[mmap.mmap]] = {}
        self.sizes: dict[int, int] = {}
        self.slots = asyncio.Semaphore(FETCH_CONCURRENCY)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)

    def want(self, tx: TxRecord, first: bool = False) -> None:
        """Start fetching `tx`'s data unless already under way (`first`: even past the memory budget)."""
        if tx.seq in self.tasks:
            return
        if not first and sum(self.sizes.values()) + tx.size > PREFETCH_BYTES:
            return
        self.sizes[tx.seq] = tx.size
        self.tasks[tx.seq] = asyncio.create_task(self._fetch(tx))

    def ready(self, seq: int) -> mmap.mmap | None:
        task = self.tasks.get(seq)
        return task.result() if task is not None and task.done() and not task.cancelled() else None

    async def wait(self, tx: TxRecord, timeout: float | None = None) -> mmap.mmap | None:
        """The data of `tx`, or None if it did not arrive within `timeout` seconds (None: no limit)."""
        self.want(tx, first=True)
        try:
            return await asyncio.wait_for(asyncio.shield(self.tasks[tx.seq]), timeout)
        except asyncio.TimeoutError:
            return None

    def drop_below(self, seq: int) -> None:
        for old in [s for s in self.tasks if s < seq]:
            task = self.tasks.pop(old)
            task.cancel()
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            self.sizes.pop(old, None)

    @staticmethod
    def _map(path: Path) -> mmap.mmap:
        with open(path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            if size % ENTRY_SIZE:
                f.truncate(size + ENTRY_SIZE - size % ENTRY_SIZE)  # zeros up to the sector boundary
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        path.unlink(missing_ok=True)  # the mapping keeps the bytes until it is closed
        return data

    async def _fetch(self, tx: TxRecord) -> mmap.mmap:
        root = "0x" + tx.root.hex()
        out = self.tmp / f"{tx.seq}.data"
        delay, since, warned = 0.05, time.monotonic(), False
        while True:
            try:
                async with self.slots:
                    await self.client.download(root, out, size=tx.size)
                data = await asyncio.to_thread(self._map, out)
                FETCHED.inc(len(data))
                return data
            except (StorageClientError, RetrievalError, OSError) as exc:
                if not warned and time.monotonic() - since > 30:
                    log.warning("data of tx %d (root %s) still unavailable after 30 s: %s", tx.seq, root, exc)
                    warned = True
                else:
                    log.debug("data of tx %d not available yet: %s", tx.seq, exc)
            except Exception as exc:  # unexpected: say so once with the traceback, then quietly retry
                if not warned:
                    log.exception("fetching tx %d failed (%s); retrying", tx.seq, exc)
                    warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()


class KvNode:
    """One KV node over a data directory (see the module docstring)."""

    def __init__(self, config: KvNodeConfig) -> None:
        self.config = config
        if config.rebuild:
            wipe(config.data_dir)
        self.txlog = TxLog(config.data_dir)
        self.index = KvIndex(config.data_dir)
        self._check_streams()
        self.replayer = Replayer(config.streams, config.max_tx_size)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kv-replay")
        self.sync: KvLogSync | None = None
        self.fetcher: Fetcher | None = None
        self.waiting_for: int | None = None

    def _check_streams(self) -> None:
        """0G: when the configured streams are not all in the index, replay from the start. (A node
        without a chain serves the index as it was replayed.)"""
        stored = self.index.config()
        if not self.config.chain_rpc:
            if stored is not None:
                self.config.streams = StreamConfig.from_json(stored)
            return
        wanted = self.config.streams
        if stored is not None and not wanted.covered_by(stored):
            log.warning("the index was replayed for streams %s; now serving %s: replaying from the start",
                        stored, wanted.describe())
            self.index.close()
            shutil.rmtree(self.index.path, ignore_errors=True)
            self.index = KvIndex(self.config.data_dir)
        self.index.set_config(wanted.to_json())

    # -- status ------------------------------------------------------------------------------------------
    def status(self) -> dict:
        return {"nextTxSeq": self.index.progress(), "logTxs": self.txlog.next_seq(),
                "logSyncHeight": self.sync.height if self.sync else None,
                "streams": self.config.streams.describe(), "waitingForData": self.waiting_for}

    def app(self) -> web.Application:
        application = web.Application(client_max_size=MAX_RPC_BODY)
        application.router.add_post("/", JsonRpcEndpoint(rpc.methods(self.index, self.config.streams, self.status),
                                                         max_body=MAX_RPC_BODY))
        metrics.instrument(application, "kv", gauges={
            "replay_next_tx_seq": ("Replay position: every transaction below it is replayed.", self.index.progress),
            "log_txs": ("Transactions of the log this node knows.", self.txlog.next_seq),
            "log_sync_height": ("Last block whose Submit events this node has recorded.",
                                lambda: self.sync.height if self.sync else -1)})
        return guard(application, Limits(bodies={("POST", "/"): OWN_LIMIT}))

    # -- replay --------------------------------------------------------------------------------------------
    def _apply(self, batch: list[tuple[TxRecord, mmap.mmap | None]], unavailable: int | None = None
               ) -> tuple[int, int | None]:
        """Apply a batch in one write transaction (on the writer thread): (next seq, seq needing data).
        `unavailable`: the seq whose data the node gave up waiting for."""
        need = None
        with self.index.writer() as w:
            for tx, data in batch:
                try:
                    result = self.replayer.apply(w, tx, data, unavailable=tx.seq == unavailable)
                except NeedData as exc:
                    need = exc.seq
                    break
                if result is not None:
                    log.info("tx %d: %s", tx.seq, result)
                    REPLAYED.labels("commit" if result == "Commit" else "rejected").inc()
            progress = w.progress()
        return progress, need

    async def replay_loop(self) -> None:
        assert self.sync is not None and self.fetcher is not None
        loop = asyncio.get_running_loop()
        progress = self.index.progress()
        while True:
            batch, size, seq = [], 0, progress
            while len(batch) < BATCH_TXS and size < BATCH_BYTES:
                tx = self.txlog.get(seq)
                if tx is None:
                    break
                data = None
                if self.replayer.fetchable(tx):
                    data = self.fetcher.ready(tx.seq)
                    size += len(data) if data is not None else 0
                batch.append((tx, data))
                seq += 1
            for ahead in range(progress, progress + LOOKAHEAD):
                tx = self.txlog.get(ahead)
                if tx is None:
                    break
                if self.replayer.fetchable(tx):
                    self.fetcher.want(tx)
            if not batch:
                self.sync.new_txs.clear()
                if self.txlog.get(progress) is None:  # checked after clear(): no wake-up is lost
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.sync.new_txs.wait(), 1.0)
                continue
            try:
                progress, need = await loop.run_in_executor(self.writer, self._apply, batch)
            except Exception:  # the write transaction was aborted: the index is unchanged
                log.exception("replay of txs %d..%d failed; retrying", batch[0][0].seq, batch[-1][0].seq)
                await asyncio.sleep(1.0)
                continue
            self.fetcher.drop_below(progress)
            if need is not None:
                tx = self.txlog.get(need)
                assert tx is not None
                self.waiting_for = need
                await self._wait_for_data(tx)
                self.waiting_for = None

    async def _wait_for_data(self, tx: TxRecord) -> None:
        """Wait for `tx`'s data until the data deadline; past it, record the transaction as DataUnavailable."""
        assert self.sync is not None and self.fetcher is not None
        deadline = self.config.data_deadline
        if not deadline:
            await self.fetcher.wait(tx)
            return
        left = self.sync.first_seen(tx.seq) + deadline - time.monotonic()
        if left > 0 and await self.fetcher.wait(tx, left) is not None:
            return
        log.warning("tx %d: its data (root 0x%s, %d bytes) did not arrive within %.0f s: recorded as "
                    "DataUnavailable", tx.seq, tx.root.hex(), tx.size, deadline)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.writer, self._apply, [(tx, None)], tx.seq)
        self.fetcher.drop_below(tx.seq + 1)

    # -- process -------------------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.host, self.config.port, shutdown_timeout=SHUTDOWN_GRACE).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            if self.config.chain_rpc:
                assert self.config.flow
                chain = ChainClient(self.config.chain_rpc, session)
                self.sync = KvLogSync(self.txlog, chain, self.config.flow, self.config.start_block)
                self.fetcher = Fetcher(session, self.config.node_urls, self.config.data_dir / "tmp")
                tasks = [asyncio.create_task(self.sync.run()), asyncio.create_task(self.replay_loop())]
            log.info("KV node listening on http://%s:%d (streams: %s; %s)", self.config.host, self.config.port,
                     self.config.streams.describe(),
                     f"following {self.config.flow} on {self.config.chain_rpc}" if self.config.chain_rpc
                     else "read-only: no chain")
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.fetcher:
                self.fetcher.close()
        self.writer.shutdown(wait=True)  # a batch in progress commits (or aborts) before the index closes
        await runner.cleanup()
        self.index.close()
        self.txlog.close()


def run(config: KvNodeConfig) -> None:
    """Run a KV node until SIGINT/SIGTERM."""
    asyncio.run(KvNode(config).serve())
