"""The deaios storage client: upload a file to the network (submit + erasure shares) and download it.

Upload: hash the file (deaios.storage.merkle), submit it to the Flow contract unless some node already
knows the root (a re-run resumes), wait until the nodes have synced the submission, send every node its
segment roots and then only the shares it reports missing (so an interrupted upload resumes where it
stopped). Encoding happens here, so each node receives 1/k of the data instead of the whole file. Every
placement is signed with the submitting account's key, and every data share travels with its merkle
proof (deaios.storage.placement): nodes take shares only from a submitter of the file (or a peer node),
check data shares at once and parity shares by decoding before they report the file finalized.

Download: read the file info and segment roots from any live node, rebuild segments from any k shares
per segment (data shares first: no decoding), verify each segment's merkle proof against the root, and
write the file atomically. The file size is the one the caller knows from the chain, or else the one at
least k nodes agree on (one node cannot truncate or extend a download).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from deaios.jsonrpc import RpcCallError, rpc_call
from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import SEGMENT_SIZE, FileMerkleTree
from deaios.storage.placement import PlacementSigner, encode_for_placement
from deaios.storage.retrieval import SegmentFetcher, fetch_segment_roots
from deaios.storage.share_transport import PlacementRefused, ShareClient, TransportError, consecutive_runs

log = logging.getLogger(__name__)

BATCH_SEGMENTS = 32  # 8 MiB of file per encode/send step
IN_FLIGHT = 3  # batches encoded or transferred concurrently
SYNC_TIMEOUT = 60.0

Progress = Callable[[int], None]  # bytes done since the last call


class StorageClientError(RuntimeError):
    """An upload or download could not complete; the message says why."""


@dataclass
class UploadResult:
    root: str
    tx_seq: int
    tx_hash: str | None  # None when the submission already existed (resumed or already stored)
    size: int
    segments: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {"root": self.root, "txSeq": self.tx_seq, "txHash": self.tx_hash, "size": self.size,
                "segments": self.segments, "seconds": round(self.seconds, 3)}


@dataclass
class DownloadResult:
    root: str
    size: int
    path: str
    segments: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {"root": self.root, "size": self.size, "path": self.path, "segments": self.segments,
                "seconds": round(self.seconds, 3)}


class StorageClient:
    """Talks to one deaios storage network: its chain (for submissions) and its storage nodes."""

    def __init__(self, session: aiohttp.ClientSession, node_urls: list[str], rpc: str | None = None,
                 flow: str | None = None, private_key: str | None = None, batch_segments: int = BATCH_SEGMENTS,
                 in_flight: int = IN_FLIGHT) -> None:
        self.session = session
        self.batch_segments = batch_segments
        self.in_flight = in_flight
        self.urls = node_urls
        self.code = ErasureCode.for_nodes(len(node_urls))
        self.shares = ShareClient(session, node_urls)
        self.rpc, self.flow, self.private_key = rpc, flow, private_key
        #: held around each Flow submission: a process whose tasks share an account sets one lock for all
        #: of them, since a submission takes the account's next nonce (the uploads themselves overlap)
        self.submit_lock: asyncio.Lock | None = None

    async def _file_infos(self, root: str) -> list[dict | None | Exception]:
        async def one(url: str) -> dict | None | Exception:
            try:
                return await rpc_call(self.session, url, "zgs_getFileInfo", root, False, timeout=5)
            except RpcCallError as exc:
                return exc
        return list(await asyncio.gather(*(one(url) for url in self.urls)))

    async def file_size(self, root: str) -> int:
        """The size of file `root` as at least k storage nodes report it."""
        return self._agreed_size(root, await self._file_infos(root))

    def _agreed_size(self, root: str, infos: list[dict | None | Exception]) -> int:
        sizes: Counter[int] = Counter()
        for info in infos:
            try:
                size = info["tx"]["size"] if isinstance(info, dict) else None
            except (KeyError, TypeError):
                continue
            if isinstance(size, int) and not isinstance(size, bool) and size > 0:
                sizes[size] += 1
        if not sizes:
            if all(isinstance(i, Exception) for i in infos):
                raise StorageClientError("no storage node is reachable")
            raise StorageClientError(f"file {root} is unknown to every reachable storage node")
        size, votes = sizes.most_common(1)[0]
        if votes < min(self.code.k, len(self.urls)):
            if len(sizes) == 1:
                raise StorageClientError(f"only {votes} reachable storage nodes know {root}; {self.code.k} are "
                                         "needed to read it")
            raise StorageClientError(f"the storage nodes do not agree on the size of {root} ({dict(sizes)}); "
                                     f"{self.code.k} must")
        return size

    async def _signer(self) -> PlacementSigner:
        """The submitting account's placement signer (chain id and Flow address from a node's status)."""
        if not self.private_key:
            raise StorageClientError("placing shares needs the key of the account that submitted the file")
        for url in self.urls:
            try:
                status = await rpc_call(self.session, url, "zgs_getStatus", timeout=5)
                identity = status["networkIdentity"]
                return PlacementSigner(self.private_key, int(identity["chainId"]), self.flow or identity["flowAddress"])
            except (RpcCallError, KeyError, TypeError, ValueError):
                continue
        raise StorageClientError("no storage node is reachable")

    # -- upload -------------------------------------------------------------------------------------------
    async def upload(self, path: str | os.PathLike[str], tags: bytes = b"", progress: Progress | None = None,
                     on_stage: Callable[[str], None] | None = None) -> UploadResult:
        stage = on_stage or (lambda message: log.info("%s", message))
        started = time.perf_counter()
        tree = await asyncio.to_thread(FileMerkleTree.from_path, path)
        root = "0x" + tree.root.hex()
        stage(f"root {root} ({tree.size} bytes, {tree.num_segments} segments)")
        infos = await self._file_infos(root)
        known = [i for i in infos if isinstance(i, dict)]
        tx_hash = None
        if known:
            tx_seq = known[0]["tx"]["seq"]
            stage(f"already submitted as tx seq {tx_seq}: resuming")
        else:
            tx_hash, tx_seq = await self._submit(tree, tags, stage)
        live = await self._wait_synced(root)
        if len(live) < self.code.n:
            down = sorted(set(range(self.code.n)) - set(live))
            if len(live) < self.code.k:
                raise StorageClientError(f"only {len(live)} storage nodes reachable, {self.code.k} needed")
            stage(f"nodes {down} unreachable: they will repair their shares when back")
        failed: dict[int, str] = {}  # node -> why it holds no (or not all) shares of this upload
        missing = await self._missing(live, tree, failed)
        todo = sorted({i for m in missing.values() for i in (m or [])})
        signer = None
        if todo:  # (a file already stored in full needs no key: e.g. the same bytes written again)
            signer = await self._signer()
            needy = [node for node, lacks in missing.items() if lacks]
            try:
                await self._put_roots(needy, tree, signer, failed, wait=False)
            except PlacementRefused:
                # another account submitted the same bytes and has not placed every share yet: this account
                # submits them too (a node takes shares from any submitter of the root) and places them
                tx_hash, tx_seq = await self._submit(tree, tags, stage)
                await self._put_roots(needy, tree, signer, failed, wait=True)
            for node in failed:
                missing.pop(node, None)
            if needy and all(node in failed for node in needy):
                raise StorageClientError(f"{'; '.join(failed.values())} (the shares of a file are placed by an "
                                         "account that submitted it)")
            missing.update(await self._missing([n for n in needy if n in missing], tree, failed))
            todo = sorted({i for m in missing.values() for i in (m or [])})
        lengths = segment_lengths(tree.size)
        if progress:
            progress(sum(min(lengths[i], tree.size - i * SEGMENT_SIZE) for i in range(data_segments(tree.size))
                         if i not in todo))
        if signer is not None:
            failed.update(await self._send_shares(Path(path), tree, todo, missing, progress, signer))
            await self._check_durable(root, tree, failed, stage)
        return UploadResult(root, tx_seq, tx_hash, tree.size, tree.num_segments, time.perf_counter() - started)

    async def _submit(self, tree: FileMerkleTree, tags: bytes, stage: Callable[[str], None]) -> tuple[str, int]:
        """Submit the file to the Flow contract with this client's key: (tx hash, tx seq)."""
        if not (self.rpc and self.flow and self.private_key):
            raise StorageClientError("uploading a new file needs the chain RPC, Flow address and a key")
        flow = FlowClient(self.rpc, self.flow, self.private_key)
        async with self.submit_lock or contextlib.nullcontext():
            result = await asyncio.to_thread(flow.submit, tree.submission(tags))
        stage(f"submitted tx {result.tx_hash} (tx seq {result.event.seq}, fee {result.fee} wei)")
        return result.tx_hash, result.event.seq

    async def _put_roots(self, nodes: list[int], tree: FileMerkleTree, signer: PlacementSigner,
                         failed: dict[int, str], wait: bool) -> None:
        """Give `nodes` the file's segment roots. A node that refuses for another reason (a full disk, …) is
        noted in `failed` and left out. A node that refuses this signer raises PlacementRefused; with `wait`
        (just after this account's own submission) it is asked again until it has seen that submission."""
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            results = await asyncio.gather(*(self.shares.put_roots(node, tree.root, tree.segment_roots,
                                                                   signer.headers(tree.root, node)) for node in nodes),
                                           return_exceptions=True)
            refused = []
            for node, result in zip(nodes, results):
                if isinstance(result, PlacementRefused):
                    refused.append((node, result))
                elif isinstance(result, TransportError):
                    failed[node] = str(result)
                elif isinstance(result, BaseException):
                    raise result
            if not refused:
                return
            if not wait:
                raise refused[0][1]
            if time.monotonic() > deadline:
                raise StorageClientError(f"{refused[0][1]} ({SYNC_TIMEOUT:.0f} s after this account's submission)")
            nodes = [node for node, _ in refused]
            await asyncio.sleep(0.1)

    async def _missing(self, nodes: list[int], tree: FileMerkleTree,
                       failed: dict[int, str]) -> dict[int, list[int] | None]:
        """Which data segments each node still lacks its share of (nodes that do not answer are left out and
        noted in `failed`)."""
        found = await asyncio.gather(*(self.shares.missing(node, tree.root, tree.num_segments) for node in nodes),
                                     return_exceptions=True)
        out: dict[int, list[int] | None] = {}
        for node, result in zip(nodes, found):
            if isinstance(result, TransportError):
                failed[node] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                out[node] = result
        return out

    async def _check_durable(self, root: str, tree: FileMerkleTree, failed: dict[int, str],
                             stage: Callable[[str], None]) -> None:
        """An upload is acknowledged only when every segment's share is held by at least k nodes (any k rebuild
        it); the other nodes rebuild theirs from those (repair). Otherwise StorageClientError: nothing was lost,
        and running the upload again resumes it."""
        held = [0] * tree.num_segments
        lacking: dict[int, int] = {}
        status = await self._missing(list(range(self.code.n)), tree, failed)
        for node, missing in status.items():
            if missing is None:
                continue
            gaps = set(missing)
            for i in range(tree.num_segments):
                held[i] += i not in gaps
            if gaps:
                lacking[node] = len(gaps)
        lacking.update({node: tree.num_segments for node in range(self.code.n) if node not in status})
        reasons = "; ".join(failed[n] for n in sorted(failed)) or "no reason given"
        weakest = min(held) if held else self.code.n
        if weakest < self.code.k:
            raise StorageClientError(f"upload of {root} incomplete: some segment is held by only {weakest} storage "
                                     f"nodes, {self.code.k} are needed ({reasons}); run the upload again to resume "
                                     "(it will not pay twice)")
        if lacking:
            stage(f"nodes {sorted(lacking)} lack some shares ({reasons}): they rebuild them from the other nodes "
                  "once they can")

    async def _wait_synced(self, root: str) -> list[int]:
        """Nodes that know the submission (polling until every reachable node does)."""
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            infos = await self._file_infos(root)
            reachable = [n for n, i in enumerate(infos) if not isinstance(i, Exception)]
            synced = [n for n, i in enumerate(infos) if isinstance(i, dict)]
            if reachable and synced == reachable:
                return synced
            if time.monotonic() > deadline:
                raise StorageClientError(f"storage nodes did not see the submission of {root} within "
                                         f"{SYNC_TIMEOUT:.0f} s (synced: {synced}, reachable: {reachable})")
            await asyncio.sleep(0.1)

    async def _send_shares(self, path: Path, tree: FileMerkleTree, todo: list[int],
                           missing: dict[int, list[int] | None], progress: Progress | None,
                           signer: PlacementSigner) -> dict[int, str]:
        """Send each node its missing shares; the nodes that refused some (or went away), with the first reason."""
        wanted = {node: set(m or []) for node, m in missing.items()}
        refused: dict[int, str] = {}
        lengths = segment_lengths(tree.size)
        batches = [todo[i:i + self.batch_segments] for i in range(0, len(todo), self.batch_segments)]
        semaphore = asyncio.Semaphore(self.in_flight)

        def encode(batch: list[int]) -> dict[int, list[bytes]]:
            out = {}
            with open(path, "rb") as f:
                for i in batch:
                    f.seek(i * SEGMENT_SIZE)
                    out[i] = encode_for_placement(self.code, f.read(lengths[i]).ljust(lengths[i], b"\0"))
            return out

        async def run(batch: list[int]) -> None:
            async with semaphore:
                encoded = await asyncio.to_thread(encode, batch)
                sends, targets = [], []
                for node, need in wanted.items():
                    if node in refused:
                        continue  # it refused (full disk) or went away: it rebuilds its shares later
                    segs = [i for i in batch if i in need]
                    for part in consecutive_runs(segs):
                        shares = [encoded[i][self.code.share_of(i, node)] for i in part]
                        sends.append(self.shares.put_shares(node, tree.root, part[0], shares,
                                                            signer.headers(tree.root, node)))
                        targets.append(node)
                results = await asyncio.gather(*sends, return_exceptions=True)
                for node, result in zip(targets, results):
                    if isinstance(result, TransportError):  # reported once, at the end (_check_durable)
                        log.info("%s", result)
                        refused.setdefault(node, str(result))
                    elif isinstance(result, Exception):
                        raise result
                if progress:
                    progress(sum(min(lengths[i], tree.size - i * SEGMENT_SIZE) for i in batch))

        await asyncio.gather(*(run(batch) for batch in batches))
        return refused

    # -- download -----------------------------------------------------------------------------------------
    async def download(self, root: str, out: str | os.PathLike[str], progress: Progress | None = None,
                       size: int | None = None) -> DownloadResult:
        """Download file `root` to `out`. `size`: the file's size from the chain (its Submit event), if the
        caller knows it; otherwise the size k nodes agree on."""
        started = time.perf_counter()
        root_bytes = _parse_root(root)
        infos = await self._file_infos(root)
        if size is None:
            size = self._agreed_size(root, infos)
        live = [n for n, i in enumerate(infos) if isinstance(i, dict)]
        if not live:
            raise StorageClientError(f"file {root} is unknown to the storage nodes")
        roots = await fetch_segment_roots(self.shares, root_bytes, live, len(segment_lengths(size)))
        if roots is None:
            raise StorageClientError(f"file {root} is not available yet (no node has its segment roots: "
                                     "upload incomplete)")
        fetcher = SegmentFetcher(self.shares, self.code, root_bytes, roots, size)
        fetcher.down.update(set(range(self.code.n)) - set(live))
        n_data = data_segments(size)
        target = Path(out)
        tmp = target.with_name(f".{target.name}.part")
        batches = list(range(0, n_data, self.batch_segments))
        results: dict[int, asyncio.Task] = {}
        with open(tmp, "wb") as f:
            for pos, first in enumerate(batches):
                for ahead in batches[pos:pos + self.in_flight]:
                    if ahead not in results:
                        results[ahead] = asyncio.create_task(fetcher.fetch(ahead, self.batch_segments))
                segments = await results.pop(first)
                pieces = [data[:max(0, min(len(data), size - index * SEGMENT_SIZE))]
                          for index, data in enumerate(segments, start=first) if index < n_data]
                await asyncio.to_thread(f.writelines, pieces)  # keeps the event loop free for transfers
                if progress:
                    progress(sum(len(piece) for piece in pieces))
        os.replace(tmp, target)
        return DownloadResult(root, size, str(target), n_data, time.perf_counter() - started)


def _parse_root(root: str) -> bytes:
    try:
        value = bytes.fromhex(root.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise StorageClientError(f"root must be 0x followed by 64 hex digits, got {root!r}")
    return value
