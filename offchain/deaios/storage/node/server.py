"""The storage node process: 0G's `zgs_*` JSON-RPC (what the official SDK calls) and the deaios share API
over one aiohttp server, plus the log-sync and repair loops.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from deaios import metrics
from deaios.jsonrpc import JsonRpcEndpoint, RpcError
from deaios.service_limits import OWN_LIMIT, SHUTDOWN_GRACE, Limits, guard
from deaios.storage.erasure import ErasureCode
from deaios.storage.merkle import HASH_SIZE, SEGMENT_SIZE, keccak256
from deaios.storage.node.logsync import ChainClient, ChainError, LogSync
from deaios.storage.node.service import ALREADY_FINALIZED, NodeError, StorageService, parse_root, parse_uint
from deaios.storage.node.store import NodeStore, StoreFull
from deaios.storage.placement import PLACEMENT_HEADER, node_key
from deaios.storage.share_transport import MAX_GET_SEGMENTS, MAX_PUT_SEGMENTS, PREFIX, pack_optional

log = logging.getLogger(__name__)

# Body limits (docs/limits.md). A segment travels as ≈ 350 KB of base64 JSON with its proof.
SEGMENT_JSON = 360 << 10
UPLOAD_SEGMENTS = 32  # segments per zgs_uploadSegments call (the SDK sends fewer)
RPC_BODY_LIMITS = {
    "zgs_uploadSegment": 2 * SEGMENT_JSON,
    "zgs_uploadSegmentByTxSeq": 2 * SEGMENT_JSON,
    "zgs_uploadSegments": UPLOAD_SEGMENTS * SEGMENT_JSON,
    "zgs_uploadSegmentsByTxSeq": UPLOAD_SEGMENTS * SEGMENT_JSON,
}
MAX_RPC_BODY = 16 << 10  # every other zgs_* call
MAX_ROOTS_BODY = 16 << 20  # segment roots of files up to 128 GiB
MAX_SHARE_BODY = MAX_PUT_SEGMENTS * (SEGMENT_SIZE + 2048)  # shares + proofs (k = 1 is the worst case)
# The official SDK sends every segment of a file (up to a 4 GiB fragment: 16,384 segments) at once, each in
# its own request: that many may wait for one of the 32 slots before the node answers 429.
SDK_FRAGMENT_SEGMENTS = (4 << 30) // SEGMENT_SIZE
SHARE_LIMITS = Limits(bodies={("PUT", PREFIX + "/roots/{root}"): MAX_ROOTS_BODY,
                              ("PUT", PREFIX + "/shares/{root}"): MAX_SHARE_BODY,
                              ("POST", "/"): OWN_LIMIT}, waiting=SDK_FRAGMENT_SEGMENTS)
P2P_PROTOCOL_VERSION = {"major": 0, "minor": 4, "build": 0}


@dataclass
class NodeConfig:
    data_dir: Path
    host: str
    port: int
    chain_rpc: str
    flow: str
    index: int
    peers: list[str]  # URLs of all storage nodes, this one included at `index`
    start_block: int = 0
    repair_interval: float = 2.0  # 0: no repair loop (a wiped node stays wiped)
    idle_sync_interval: float = 1.0  # log-sync poll interval once no file arrived for a while (LogSync)


#: HTTP status of a write refused for lack of disk space (RFC 4918 "Insufficient Storage")
INSUFFICIENT_STORAGE = 507


def _translate(exc: Exception) -> RpcError | None:
    if isinstance(exc, NodeError):
        data = ALREADY_FINALIZED if str(exc) == ALREADY_FINALIZED else None
        return RpcError(str(exc), exc.code, data)
    if isinstance(exc, StoreFull):
        return RpcError(f"storage node: {exc}", -32000)
    return None


def rpc_methods(service: StorageService, sync: LogSync) -> dict:
    """The zgs_* methods, named and shaped as 0G's storage node serves them."""

    def seq_root(seq: object) -> bytes:
        root = service.store.root_by_seq(parse_uint(seq, "txSeq"))
        if root is None:
            raise NodeError(f"no submission with tx seq {seq}", -32602)
        return root

    def segments_list(segments: object) -> list:
        if not isinstance(segments, list) or not segments:
            raise NodeError("segments must be a non-empty list", -32602)
        return segments

    def upload_many(segments: object, tx_seq: int | None = None) -> None:
        for segment in segments_list(segments):
            service.upload_segment(segment, tx_seq)

    def status() -> dict:
        return {
            "connectedPeers": len(service.peers),
            "logSyncHeight": max(sync.height, 0),
            "logSyncBlock": sync.block_hash,
            "nextTxSeq": service.store.next_tx_seq(),
            "networkIdentity": {"chainId": service.chain_id, "flowAddress": service.flow,
                                "p2pProtocolVersion": P2P_PROTOCOL_VERSION},
        }

    async def download(root: object, start: object, end: object) -> str:
        data = await service.read_chunks(parse_root(root), parse_uint(start, "startIndex"), parse_uint(end, "endIndex"))
        return base64.b64encode(data).decode()

    return {
        "zgs_getStatus": status,
        "zgs_getShardConfig": lambda: {"shardId": 0, "numShard": 1},
        "zgs_uploadSegment": lambda segment: service.upload_segment(segment),
        "zgs_uploadSegments": lambda segments: upload_many(segments),
        "zgs_uploadSegmentByTxSeq": lambda segment, seq: service.upload_segment(segment, parse_uint(seq, "txSeq")),
        "zgs_uploadSegmentsByTxSeq": lambda segments, seq: upload_many(segments, parse_uint(seq, "txSeq")),
        "zgs_downloadSegment": download,
        "zgs_downloadSegmentByTxSeq": lambda seq, start, end: download("0x" + seq_root(seq).hex(), start, end),
        "zgs_downloadSegmentWithProof": lambda root, index: service.segment_with_proof(
            parse_root(root), parse_uint(index, "index")),
        "zgs_downloadSegmentWithProofByTxSeq": lambda seq, index: service.segment_with_proof(
            seq_root(seq), parse_uint(index, "index")),
        "zgs_getFileInfo": lambda root, need_available=False: service.file_info(parse_root(root)),
        "deaios_peers": lambda: {"index": service.index, "peers": list(service.shares.urls)},
        "deaios_challenge": lambda seq, chunk: service.challenge(seq_root(seq), parse_uint(chunk, "chunkIndex")),
        "zgs_getFileInfoByTxSeq": lambda seq: (
            service.file_info(root, parse_uint(seq, "txSeq")) if (root := service.store.root_by_seq(
                parse_uint(seq, "txSeq"))) else None),
    }


def share_routes(service: StorageService) -> list[web.RouteDef]:
    """The binary share API (deaios.storage.share_transport documents it)."""

    def guarded(handler):  # NodeError -> HTTP 4xx, a full disk -> 507, with a JSON error body
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request, parse_root(request.match_info["root"]))
            except NodeError as exc:
                return web.json_response({"error": str(exc)}, status=exc.status)
            except StoreFull as exc:
                log.warning("refused a write: %s", exc)
                return web.json_response({"error": f"storage node {service.index}: {exc}"},
                                         status=INSUFFICIENT_STORAGE)
        return wrapper

    def int_query(request: web.Request, name: str) -> int:
        text = request.query.get(name, "")
        if not text.isdigit() or len(text) > 19:
            raise NodeError(f"query parameter {name} must be a non-negative integer below 10^19")
        return int(text)

    async def get_roots(request: web.Request, root: bytes) -> web.Response:
        return web.Response(body=service.get_roots(root), content_type="application/octet-stream")

    async def put_roots(request: web.Request, root: bytes) -> web.Response:
        token = request.headers.get(PLACEMENT_HEADER)
        await service.authorize(root, token)  # before reading the body
        roots = await request.read()
        if len(roots) % HASH_SIZE:
            raise NodeError("segment roots must be 32 bytes each")
        await service.put_roots(root, roots, token)
        return web.Response(status=204)

    async def get_shares(request: web.Request, root: bytes) -> web.Response:
        count = int_query(request, "count")
        if count > MAX_GET_SEGMENTS:
            raise NodeError(f"at most {MAX_GET_SEGMENTS} segments per request")
        shares = await asyncio.to_thread(service.get_shares, root, int_query(request, "first"), count,
                                         request.query.get("kind") == "data")
        return web.Response(body=pack_optional(shares), content_type="application/octet-stream")

    async def put_shares(request: web.Request, root: bytes) -> web.Response:
        token = request.headers.get(PLACEMENT_HEADER)
        first, count = int_query(request, "first"), int_query(request, "count")
        await service.authorize(root, token)  # before reading the body
        await service.put_shares(root, first, count, await request.read(), token)
        return web.Response(status=204)

    async def missing(request: web.Request, root: bytes) -> web.Response:
        return web.json_response(service.missing(root))

    async def identity(request: web.Request) -> web.Response:
        return web.json_response(service.identity())

    return [
        web.get(PREFIX + "/roots/{root}", guarded(get_roots)),
        web.put(PREFIX + "/roots/{root}", guarded(put_roots)),
        web.get(PREFIX + "/shares/{root}", guarded(get_shares)),
        web.put(PREFIX + "/shares/{root}", guarded(put_shares)),
        web.get(PREFIX + "/missing/{root}", guarded(missing)),
        web.get(PREFIX + "/identity", identity),
    ]


def build_app(service: StorageService, sync: LogSync) -> web.Application:
    app = web.Application(client_max_size=MAX_SHARE_BODY)
    app.router.add_post("/", JsonRpcEndpoint(rpc_methods(service, sync), _translate, MAX_RPC_BODY, RPC_BODY_LIMITS))
    app.router.add_routes(share_routes(service))
    metrics.instrument(app, "storage", gauges={
        "log_sync_height": ("Last block whose Submit events this node has recorded.", lambda: sync.height),
        "next_tx_seq": ("Submissions this node knows (the next tx seq).", service.store.next_tx_seq)})
    return guard(app, SHARE_LIMITS)


async def _chain_id(chain: ChainClient) -> int:
    for attempt in range(100):
        try:
            return int(await chain.call("eth_chainId"), 16)  # type: ignore[arg-type]
        except ChainError:
            await asyncio.sleep(0.1 * min(attempt + 1, 10))
    raise SystemExit(f"chain RPC {chain.url} unreachable")


async def _repair_loop(service: StorageService, interval: float) -> None:
    try:
        await asyncio.to_thread(service.scrub)
    except StoreFull as exc:  # the reads still fail their checks, so repair finds those shares again
        log.warning("scrub: %s", exc)
    while True:
        try:
            await service.repair_once()
        except Exception:  # keep the node serving whatever happens in one pass
            log.exception("repair pass failed")
        await asyncio.sleep(interval)


async def serve(config: NodeConfig) -> None:
    """Run one storage node until SIGINT/SIGTERM."""
    key = node_key(config.data_dir)
    store = NodeStore(config.data_dir, mac_key=keccak256(b"deaios/storage/share-mac" + key))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        chain = ChainClient(config.chain_rpc, session)
        chain_id = await _chain_id(chain)
        code = ErasureCode.for_nodes(len(config.peers))
        service = StorageService(store, code, config.index, config.peers, session, chain_id, config.flow, key)
        sync = LogSync(store, chain, config.flow, config.start_block, idle_interval=config.idle_sync_interval)
        service.on_unknown = sync.wake
        runner = web.AppRunner(build_app(service, sync), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port, shutdown_timeout=SHUTDOWN_GRACE).start()
        log.info("storage node %d listening on http://%s:%d (k=%d, n=%d, placement key %s)", config.index,
                 config.host, config.port, code.k, code.n, service.signer.address)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(sync.run())]
        if config.repair_interval > 0:
            tasks.append(asyncio.create_task(_repair_loop(service, config.repair_interval)))
        await stop.wait()
        for task in tasks:
            task.cancel()
        await runner.cleanup()
    store.close()
