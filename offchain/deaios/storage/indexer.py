"""The storage indexer: tells clients (the official SDK's `Indexer` included) which storage nodes are up
and which of them can serve a file.

JSON-RPC on POST / (same shapes as 0G's indexer):

- `indexer_getShardedNodes()` → `{"trusted": [ShardedNode…], "discovered": []}`, only the configured
  nodes that currently answer `zgs_getStatus`; ShardedNode = `{"url", "config": {"shardId", "numShard"},
  "latency": ms, "since": unix seconds the node has been up since}`.
- `indexer_getNodeLocations()` → `{url: {"city", "region", "country", "location", "timezone"}}` for the
  live nodes (all on this machine).
- `indexer_getFileLocations(root)` → ShardedNode list of the live nodes whose `zgs_getFileInfo(root, true)`
  says the file is finalized (every finalized node can serve the whole file: it rebuilds segments from the
  erasure shares of its peers); `[]` when none. One call must not turn into a call to every node: `FANOUT`
  nodes are asked first, the others only if one of those knows the file (a submitted root), a node that
  reported the file finalized is not asked again, and a root none of the first `FANOUT` knew is answered
  `[]` for `LOCATION_TTL` seconds without asking.

Node liveness is probed concurrently with a short timeout and cached for `PROBE_TTL` seconds. Bodies are
limited (16 KiB per call) and requests served at once are bounded (`deaios.service_limits`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from deaios import metrics
from deaios.jsonrpc import JsonRpcEndpoint, RpcError
from deaios.service_limits import OWN_LIMIT, SHUTDOWN_GRACE, Limits, guard, read_capped

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.0  # seconds per zgs_* probe
PROBE_TTL = 1.0  # seconds a liveness probe is reused
FANOUT = 3  # nodes asked about one root
LOCATION_TTL = 2.0  # seconds a file-location answer is reused
LOCATION_CACHE = 4096  # roots remembered
MAX_NODE_REPLY = 1 << 20
LOCAL_LOCATION = {"city": "localhost", "region": "local", "country": "local", "location": "0.0000,0.0000",
                  "timezone": "UTC"}


@dataclass
class _NodeState:
    url: str
    shard: dict
    latency: int = 0  # ms
    since: int = 0  # unix seconds the node has been answering since (0: down)


class Indexer:
    """Probes a fixed list of storage nodes and answers the indexer_* methods."""

    def __init__(self, node_urls: list[str], session: aiohttp.ClientSession, probe_timeout: float = PROBE_TIMEOUT,
                 probe_ttl: float = PROBE_TTL) -> None:
        self.nodes = [_NodeState(url.rstrip("/"), {"shardId": 0, "numShard": 1}) for url in node_urls]
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=probe_timeout)
        self.ttl = probe_ttl
        self._probed_at = float("-inf")
        self._live: list[_NodeState] = []
        self._probe_lock = asyncio.Lock()
        self._id = 0
        self._finalized: OrderedDict[str, set[str]] = OrderedDict()  # root -> nodes that reported it finalized
        self._unknown: OrderedDict[str, float] = OrderedDict()  # root -> when FANOUT nodes did not know it
        self._next = 0  # where the next fan-out starts (spreads the load over the nodes)

    async def _call(self, url: str, method: str, *params: object) -> object:
        """One JSON-RPC call to a node; raises on transport errors and JSON-RPC errors."""
        self._id += 1
        async with self.session.post(url, json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                                "params": list(params)}, timeout=self.timeout) as resp:
            body = json.loads(await read_capped(resp, MAX_NODE_REPLY))
        if not isinstance(body, dict) or "error" in body:
            raise RuntimeError(f"{method}: {body.get('error') if isinstance(body, dict) else body!r}")
        return body.get("result")

    async def _probe(self, node: _NodeState) -> bool:
        started = time.monotonic()
        try:
            status = await self._call(node.url, "zgs_getStatus")
            if not isinstance(status, dict):
                raise RuntimeError("zgs_getStatus: not an object")
        except Exception as exc:  # down, refusing, timing out or answering garbage: not live
            if node.since:
                log.info("node %s is down (%s)", node.url, exc or type(exc).__name__)
            node.since = 0
            return False
        node.latency = max(1, round((time.monotonic() - started) * 1000))
        if not node.since:
            node.since = int(time.time())
            log.info("node %s is up", node.url)
        return True

    async def live_nodes(self) -> list[_NodeState]:
        """The nodes that answered zgs_getStatus within the last PROBE_TTL seconds (in configured order)."""
        async with self._probe_lock:
            if time.monotonic() - self._probed_at >= self.ttl:
                up = await asyncio.gather(*(self._probe(node) for node in self.nodes))
                self._live = [node for node, ok in zip(self.nodes, up) if ok]
                self._probed_at = time.monotonic()
            return list(self._live)

    @staticmethod
    def _sharded(node: _NodeState) -> dict:
        return {"url": node.url, "config": dict(node.shard), "latency": node.latency, "since": node.since}

    # -- indexer_* -----------------------------------------------------------------------------------------
    async def get_sharded_nodes(self) -> dict:
        return {"trusted": [self._sharded(node) for node in await self.live_nodes()], "discovered": []}

    async def get_node_locations(self) -> dict:
        return {node.url: dict(LOCAL_LOCATION) for node in await self.live_nodes()}

    async def get_file_locations(self, root: object) -> list[dict]:
        if not isinstance(root, str) or len(root.removeprefix("0x")) != 64:
            raise RpcError(f"root must be a 0x-prefixed 32-byte hex string, got {str(root)[:80]!r}", -32602)
        try:
            bytes.fromhex(root.removeprefix("0x"))
        except ValueError:
            raise RpcError(f"root must be a 0x-prefixed 32-byte hex string, got {root[:80]!r}", -32602) from None
        root = "0x" + root.removeprefix("0x").lower()
        nodes = await self.live_nodes()
        unknown_at = self._unknown.get(root)
        if unknown_at is not None and time.monotonic() - unknown_at < LOCATION_TTL:
            return []
        finalized = self._finalized.setdefault(root, set())
        self._finalized.move_to_end(root)
        while len(self._finalized) > LOCATION_CACHE:
            self._finalized.popitem(last=False)
        start, self._next = self._next % max(len(nodes), 1), self._next + 1
        ask = [nodes[(start + i) % len(nodes)] for i in range(len(nodes))]
        ask = [node for node in ask if node.url not in finalized]
        first = await asyncio.gather(*(self._file_info(node, root) for node in ask[:FANOUT]))
        answers = list(zip(ask[:FANOUT], first))
        if any(isinstance(info, dict) for info in first):  # a real file: the other nodes may hold it too
            rest = await asyncio.gather(*(self._file_info(node, root) for node in ask[FANOUT:]))
            answers += list(zip(ask[FANOUT:], rest))
        elif not finalized:
            self._unknown[root] = time.monotonic()
            while len(self._unknown) > LOCATION_CACHE:
                self._unknown.popitem(last=False)
        finalized.update(node.url for node, info in answers if isinstance(info, dict) and info.get("finalized"))
        return [self._sharded(node) for node in nodes if node.url in finalized]

    async def _file_info(self, node: _NodeState, root: str) -> object:
        try:
            return await self._call(node.url, "zgs_getFileInfo", root, True)
        except Exception:
            return None

    def methods(self) -> dict:
        return {
            "indexer_getShardedNodes": self.get_sharded_nodes,
            "indexer_getNodeLocations": self.get_node_locations,
            "indexer_getFileLocations": self.get_file_locations,
        }


def build_app(indexer: Indexer) -> web.Application:
    app = web.Application()
    app.router.add_post("/", JsonRpcEndpoint(indexer.methods(), max_body=16 << 10))
    metrics.instrument(app, "indexer", gauges={
        "live_nodes": ("Storage nodes that answered the last liveness probe.", lambda: len(indexer._live))})
    return guard(app, Limits(bodies={("POST", "/"): OWN_LIMIT}))


async def serve(host: str, port: int, node_urls: list[str]) -> None:
    """Run the indexer until SIGINT/SIGTERM."""
    async with aiohttp.ClientSession() as session:
        indexer = Indexer(node_urls, session)
        runner = web.AppRunner(build_app(indexer), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_GRACE).start()
        log.info("indexer listening on http://%s:%d for %d storage nodes", host, port, len(node_urls))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()
