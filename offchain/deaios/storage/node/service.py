"""A storage node's behaviour, independent of HTTP: accepting segments, placing and serving erasure
shares, rebuilding segments for downloads, and repairing its own shares.

Life of a file on the network (see docs/storage.md):
1. log sync records the file (PENDING) when its Submit event appears on chain, with its submitter;
2. an uploader sends plain segments with merkle proofs to any node (the official SDK does this), or a
   deaios client — signing as the submitter — sends erasure shares straight to every node;
3. a node that holds every data segment in full (COMPLETE) encodes them and places share s of segment i
   on node (i + s) mod n (signing as a peer), then keeps only its own shares (FINALIZED);
4. a node receiving shares checks each data share's merkle proof at once and each parity share by
   decoding its segment from k other shares (`verify`); only when every share it holds is verified does
   the file turn FINALIZED there (deaios.storage.placement explains the rules);
5. a node that lacks shares of a file someone finalized (restarted with a lost or corrupt data dir, or
   down during the upload) rebuilds them from any k other nodes (repair loop).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import aiohttp

from deaios import metrics
from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.merkle import (
    CHUNK_SIZE, HASH_SIZE, SEGMENT_CHUNKS, Proof, ProofError, num_chunks, segment_root, tree_proof, tree_root,
)
from deaios.storage.node.store import (
    COMPLETE, FINALIZED, PENDING, SEGMENT, SHARE, FileRecord, NodeStore, StoreFull,
)
from deaios.storage.placement import (
    PlacementError, PlacementSigner, ShareSpan, check_data_share, encode_for_placement, placement_sizes,
    split_placement, token_signer,
)
from deaios.storage.retrieval import RetrievalError, SegmentFetcher, fetch_segment_roots
from deaios.storage.share_transport import MAX_PUT_SEGMENTS, ShareClient, TransportError, consecutive_runs

log = logging.getLogger(__name__)

ALREADY_FINALIZED = "already uploaded and finalized"
STREAM_TAG = bytes.fromhex("df2ff3bb0af36c6384e6206552a4ed807f6f6a26e7d0aa6bff772ddc9d4307aa")  # sha256("STREAM")
STORED = metrics.counter("storage", "stored_bytes_total", "Bytes written to this node's disk (full segments or "
                         "erasure shares).", ["kind"])
SERVED = metrics.counter("storage", "served_bytes_total", "Bytes this node served: shares to peers and clients, "
                         "file data to downloaders.", ["kind"])
REPAIRED = metrics.counter("storage", "shares_repaired_total", "Shares this node rebuilt from its peers' shares.")
BATCH = 16  # segments per share transfer
CACHE_SEGMENTS = 64
UPLOAD_GRACE = 5.0  # seconds after shares of a file last arrived before repair may rebuild its missing ones
VERIFY_DELAY = 0.3  # seconds after a file's last share arrived before it is verified (its peers get theirs)
VERIFY_IN_FLIGHT = 3  # runs of segments fetched and checked at once while verifying
PEER_REFRESH = 5.0  # seconds between re-reading the peers' placement addresses
COMPACT_WASTE = 0.25  # compact a pack once this fraction of it is dead bytes (and at least 1 MiB)
MAX_U64 = (1 << 64) - 1


class NodeError(Exception):
    """A request the node refuses; becomes a JSON-RPC error object (or an HTTP 4xx)."""

    def __init__(self, message: str, code: int = -32000, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def stream_ids(tags: bytes) -> list[str]:
    """KV stream ids carried in a submission's tags (sha256("STREAM") || id…), as 0G reports them."""
    if not tags.startswith(STREAM_TAG) or (len(tags) - len(STREAM_TAG)) % 32:
        return []
    body = tags[len(STREAM_TAG):]
    return ["0x" + body[i:i + 32].hex() for i in range(0, len(body), 32)]


class StorageService:
    """One storage node: index `index` among `len(urls)` nodes sharing an erasure code."""

    def __init__(self, store: NodeStore, code: ErasureCode, index: int, urls: list[str],
                 session: aiohttp.ClientSession, chain_id: int, flow: str, key: bytes | None = None) -> None:
        self.store = store
        self.code = code
        self.index = index
        self.shares = ShareClient(session, urls)
        self.peers = [n for n in range(len(urls)) if n != index]
        self.chain_id = chain_id
        self.flow = flow
        self.signer = PlacementSigner(key or bytes(31) + b"\x01", chain_id, flow)  # tests without a key dir
        self._peer_addresses: dict[int, str] = {}
        self._peers_read_at = float("-inf")
        self._verifying: set[bytes] = set()
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._cache: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._healthy: set[bytes] = set()  # finalized files whose shares were all present at last check
        self._receiving: dict[bytes, float] = {}  # root -> when shares of it last arrived (upload in progress)
        store.on_forget = self._healthy.discard
        self.on_unknown: Callable[[], None] = lambda: None  # a file was asked for that is not recorded (log sync's wake)

    def _lock(self, root: bytes) -> asyncio.Lock:
        return self._locks.setdefault(root, asyncio.Lock())

    def record(self, root: bytes) -> FileRecord:
        record = self.store.get(root)
        if record is None:
            self.on_unknown()
            raise NodeError(f"file 0x{root.hex()} not found: not submitted to the Flow contract (or not synced yet)",
                            status=404)
        return record

    # -- placement authorization ------------------------------------------------------------------------
    def identity(self) -> dict:
        return {"address": self.signer.address, "index": self.index}

    async def _refresh_peers(self) -> None:
        if time.monotonic() - self._peers_read_at < PEER_REFRESH:
            return
        self._peers_read_at = time.monotonic()

        async def one(peer: int) -> None:
            try:
                address = await self.shares.identity(peer)
            except TransportError:
                return
            if address is not None:
                self._peer_addresses[peer] = address.lower()

        await asyncio.gather(*(one(peer) for peer in self.peers))

    async def authorize(self, root: bytes, token: str | None) -> FileRecord:
        """The file's record if `token` authorizes placing it here: signed by one of its submitters or by
        a peer node; NodeError 401/403 otherwise."""
        record = self.record(root)
        try:
            signer = token_signer(token, self.chain_id, self.flow, root, self.index).lower()
        except PlacementError as exc:
            raise NodeError(str(exc), status=401) from None
        if signer in record.senders or signer in self._peer_addresses.values():
            return record
        await self._refresh_peers()  # a peer restarted with a new key, or not asked yet
        if signer in self._peer_addresses.values():
            return record
        raise NodeError(f"{signer} may not place shares of 0x{root.hex()}: it is neither a submitter of the file "
                        "nor a storage node of this network", status=403)

    # -- file info (zgs_getFileInfo) ---------------------------------------------------------------------
    def file_info(self, root: bytes, seq: int | None = None) -> dict | None:
        record = self.store.get(root)
        if record is None:
            self.on_unknown()
            return None
        finalized = record.state == FINALIZED
        return {
            "tx": {
                "streamIds": stream_ids(bytes.fromhex(record.tags[2:])),
                "data": [],
                "dataMerkleRoot": record.root,
                "merkleNodes": record.merkle_nodes,
                "startEntryIndex": record.start_entry,
                "size": record.size,
                "seq": record.seqs[0] if seq is None else seq,
            },
            "finalized": finalized,
            "isCached": False,
            "uploadedSegNum": data_segments(record.size) if finalized else record.received,
            "pruned": False,
        }

    # -- plain segment upload (zgs_uploadSegment*) -------------------------------------------------------
    def upload_segment(self, segment: object, tx_seq: int | None = None) -> None:
        if not isinstance(segment, dict):
            raise NodeError("segment must be an object {root, data, index, proof, fileSize}", -32602)
        root = parse_root(segment.get("root"))
        if tx_seq is not None and self.store.root_by_seq(tx_seq) != root:
            raise NodeError(f"tx seq {tx_seq} is not a submission of root 0x{root.hex()}", -32602)
        record = self.record(root)
        if record.state in (COMPLETE, FINALIZED):
            raise NodeError(ALREADY_FINALIZED, -32602)
        index = parse_uint(segment.get("index"), "index")
        if segment.get("fileSize") != record.size:
            raise NodeError(f"fileSize {segment.get('fileSize')!r} does not match the submitted size {record.size}",
                            -32602)
        n_data = data_segments(record.size)
        if index >= n_data:
            raise NodeError(f"segment index {index} out of range (file has {n_data} data segments)", -32602)
        try:
            data = base64.b64decode(str(segment.get("data")), validate=True)
        except (binascii.Error, ValueError):
            raise NodeError("segment data is not valid base64", -32602) from None
        padded_length = segment_lengths(record.size)[index]
        trimmed_length = min(SEGMENT_CHUNKS, num_chunks(record.size) - index * SEGMENT_CHUNKS) * CHUNK_SIZE
        if len(data) not in (trimmed_length, padded_length):
            raise NodeError(f"segment {index} must be {trimmed_length} bytes, got {len(data)}", -32602)
        data = data.ljust(padded_length, b"\0")
        try:
            proof = Proof.from_json(segment.get("proof"))
            proof.verify(root, segment_root(data), index, len(segment_lengths(record.size)))
        except ProofError as exc:
            raise NodeError(f"invalid merkle proof for segment {index}: {exc}", -32602) from None
        self.store.write(root, index, SEGMENT, data)
        STORED.labels("segment").inc(len(data))
        received = self.store.count(root, SEGMENT)
        if received >= n_data:
            self.store.update(root, received=received, state=COMPLETE)
            self._spawn(self.finalize(root))
        else:
            self.store.update(root, received=received)

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- encoding and placement ------------------------------------------------------------------------
    async def finalize(self, root: bytes) -> bool:
        """Encode a file this node holds in full and place every node's share.

        The file is FINALIZED once at least k nodes (this one included) confirmed their shares, so an
        upload completes while up to n − k nodes are down. Nodes that could not be reached are listed in
        the record (`unplaced`) and retried by the repair loop (they also repair themselves when back);
        the full segments are kept until every node has its shares."""
        async with self._lock(root):
            record = self.store.get(root)
            if record is None or record.state not in (COMPLETE, FINALIZED):
                return False
            targets = self.peers if record.state == COMPLETE else record.extra.get("unplaced", [])
            if record.state == FINALIZED and not targets:
                return True
            lengths = segment_lengths(record.size)
            n_data = data_segments(record.size)
            roots = self.store.segment_roots(root)
            if roots is None:
                roots = b"".join(await asyncio.to_thread(self._segment_roots, root, lengths, n_data))
                if tree_root(roots) != root:
                    log.error("stored segments of 0x%s do not hash to the root; dropping them", root.hex())
                    self.store.drop_segments(root, range(n_data))
                    self.store.update(root, state=PENDING, received=0)
                    return False
                self.store.write_segment_roots(root, roots)

            async def wanted_by(peer: int) -> list[int] | None:
                try:
                    await self.shares.put_roots(peer, root, roots, self.signer.headers(root, peer))
                    return await self.shares.missing(peer, root, n_data)
                except TransportError as exc:
                    log.info("placing 0x%s: %s (will retry)", root.hex()[:12], exc)
                    return None

            todo: dict[int, set[int]] = {self.index: set(self._missing_local(record))}
            for peer, missing in zip(targets, await asyncio.gather(*(wanted_by(p) for p in targets))):
                if missing is not None:
                    todo[peer] = set(missing)
            failed = {peer for peer in targets if peer not in todo}
            segments = sorted(set().union(*todo.values()))
            for batch in consecutive_runs(segments, BATCH):
                encoded = await asyncio.to_thread(self._encode, root, batch)
                if encoded is None:  # a full segment was lost or corrupted since it was received
                    if record.state == COMPLETE:
                        self.store.update(root, state=PENDING, received=self.store.count(root, SEGMENT))
                    return False

                async def place(node: int, run: list[int]) -> None:
                    shares = [encoded[i][self.code.share_of(i, node)] for i in run]
                    if node == self.index:  # cut from segments whose proofs were checked: verified
                        own = [(i, share[:self.code.share_size(lengths[i])]) for i, share in zip(run, shares)]
                        await asyncio.to_thread(self.store.write_many, root, SHARE, own, True)
                        STORED.labels("share").inc(sum(len(share) for _, share in own))
                        return
                    try:
                        await self.shares.put_shares(node, root, run[0], shares, self.signer.headers(root, node))
                    except TransportError as exc:
                        log.info("placing 0x%s on node %d: %s (will retry)", root.hex()[:12], node, exc)
                        failed.add(node)

                await asyncio.gather(*(place(node, run) for node, wanted in todo.items() if node not in failed
                                       for run in consecutive_runs([i for i in batch if i in wanted], BATCH)))
            placed = self.code.n - len(failed) if record.state == COMPLETE else self.code.n
            if placed < self.code.k:
                return False
            extra = {**record.extra, "unplaced": sorted(failed)}
            self.store.update(root, state=FINALIZED, received=n_data, extra=extra)
            if not failed:
                self.store.drop_segments(root, range(n_data))
            log.info("finalized 0x%s: %d segments as %d-of-%d shares%s", root.hex(), n_data, self.code.k,
                     self.code.n, f", nodes {sorted(failed)} still to place" if failed else "")
            return True

    def _segment_roots(self, root: bytes, lengths: list[int], n_data: int) -> list[bytes]:
        out = []
        for i, length in enumerate(lengths):
            data = self.store.read(root, i, SEGMENT) if i < n_data else bytes(length)
            out.append(segment_root(data) if data is not None else b"")
        return out

    def _encode(self, root: bytes, batch: list[int]) -> dict[int, list[bytes]] | None:
        """Every share of the batch's segments as placed: data shares with their merkle proofs."""
        encoded = {}
        for i in batch:
            data = self.store.read(root, i, SEGMENT)
            if data is None:  # lost or corrupt since it was received
                return None
            encoded[i] = encode_for_placement(self.code, data)
        return encoded

    def _missing_local(self, record: FileRecord) -> list[int]:
        root = bytes.fromhex(record.root[2:])
        return self.store.missing(root, SHARE, range(data_segments(record.size)))

    # -- the share API (used by peers and by deaios clients) --------------------------------------------
    def get_roots(self, root: bytes) -> bytes:
        roots = self.store.segment_roots(root)
        if roots is None:
            self.on_unknown()
            raise NodeError(f"segment roots of 0x{root.hex()} unknown here", status=404)
        return roots

    def get_shares(self, root: bytes, first: int, count: int, data_only: bool) -> list[bytes | None]:
        record = self.record(root)
        n_data = data_segments(record.size)
        if first + count > len(segment_lengths(record.size)) or count > 4 * BATCH * 16:
            raise NodeError("segment range out of bounds")
        out: list[bytes | None] = []
        for i in range(first, first + count):
            number = self.code.share_of(i, self.index)
            if i >= n_data or (data_only and number >= self.code.k):
                out.append(None)
                continue
            share = self.store.read(root, i, SHARE)
            if share is None and record.state == COMPLETE:  # not placed yet: cut it from the full segment
                data = self.store.read(root, i, SEGMENT)
                share = self.code.encode(data, [number])[0] if data is not None else None
            out.append(share)
        SERVED.labels("share").inc(sum(len(share) for share in out if share is not None))
        return out

    async def put_roots(self, root: bytes, roots: bytes, token: str | None) -> None:
        record = await self.authorize(root, token)
        if len(roots) != len(segment_lengths(record.size)) * HASH_SIZE or tree_root(roots) != root:
            raise NodeError("segment roots do not match the file root and size")
        if self.store.segment_roots(root) is None:
            self.store.write_segment_roots(root, roots)

    async def put_shares(self, root: bytes, first: int, count: int, body: bytes, token: str | None) -> int:
        """Store this node's shares of segments first..first+count−1 (write-once; data shares only with a
        valid proof); returns how many were new. Once every share is here, verification is scheduled."""
        record = await self.authorize(root, token)
        roots = self.store.segment_roots(root)
        if roots is None:
            raise NodeError("send the segment roots before the shares", status=409)
        n_data = data_segments(record.size)
        if not 1 <= count <= MAX_PUT_SEGMENTS or first + count > n_data:
            raise NodeError(f"segments {first}..{first + count - 1} out of range (file has {n_data}; at most "
                            f"{MAX_PUT_SEGMENTS} per request)")
        try:
            pieces = split_placement(body, placement_sizes(self.code, record.size, first, count, self.index))
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        new = await asyncio.to_thread(self._store_placed, root, record, roots, first, pieces)
        if new:
            self._receiving[root] = time.monotonic()
        if record.state == PENDING and not self._missing_local(record):
            self._spawn(self._verify_soon(root))
        return new

    def _store_placed(self, root: bytes, record: FileRecord, roots: bytes, first: int,
                      pieces: list[tuple[bytes, bytes]]) -> int:
        lengths = segment_lengths(record.size)
        wanted = set(self.store.missing(root, SHARE, range(first, first + len(pieces))))
        data, parity = [], []
        for i, (share, proof) in enumerate(pieces, start=first):
            if i not in wanted:
                continue  # write-once: a stored share is never replaced by a PUT
            number = self.code.share_of(i, self.index)
            if number < self.code.k:
                span = ShareSpan.of(self.code, lengths[i], number)
                if not check_data_share(share, proof, roots[i * HASH_SIZE:(i + 1) * HASH_SIZE], span):
                    raise NodeError(f"data share of segment {i} does not match its merkle proof: refused "
                                    "(nothing of this request was stored)")
                data.append((i, bytes(share)))
            else:
                parity.append((i, bytes(share)))
        written = self.store.write_many(root, SHARE, data, verified=True) \
            + self.store.write_many(root, SHARE, parity, verified=False)
        STORED.labels("share").inc(sum(len(share) for _, share in data + parity))
        return written

    def missing(self, root: bytes) -> list[int]:
        record = self.record(root)
        if self.store.segment_roots(root) is None:
            return list(range(data_segments(record.size)))
        return self._missing_local(record)

    # -- reading segments (downloads) -------------------------------------------------------------------
    async def read_segment(self, root: bytes, index: int) -> bytes:
        """Segment `index` of a file (flow-padded length), rebuilt from shares when not held in full."""
        record = self.record(root)
        lengths = segment_lengths(record.size)
        if index >= data_segments(record.size):
            return bytes(lengths[index])
        key = (root, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        data = self.store.read(root, index, SEGMENT)
        if data is None:
            roots = self.store.segment_roots(root)
            if roots is None:
                raise NodeError(f"file 0x{root.hex()} is not finalized: its data is not available yet")
            fetcher = SegmentFetcher(self.shares, self.code, root, roots, record.size, self.index,
                                     lambda i: self.store.read(root, i, SHARE))
            first = index - index % 8
            try:
                batch = await fetcher.fetch(first, 8)
            except RetrievalError as exc:
                raise NodeError(str(exc)) from None
            for offset, segment in enumerate(batch):
                self._cache_put((root, first + offset), segment)
            data = batch[index - first]
        return data

    def _cache_put(self, key: tuple[bytes, int], data: bytes) -> None:
        self._cache[key] = data
        while len(self._cache) > CACHE_SEGMENTS:
            self._cache.popitem(last=False)

    def _cache_drop(self, root: bytes) -> None:
        for key in [k for k in self._cache if k[0] == root]:
            del self._cache[key]

    async def read_chunks(self, root: bytes, start: int, end: int) -> bytes:
        record = self.record(root)
        chunks = num_chunks(record.size)
        if not 0 <= start < end <= chunks or end - start > SEGMENT_CHUNKS:
            raise NodeError(f"invalid chunk range [{start}, {end}) for a file of {chunks} chunks", -32602)
        out = bytearray()
        for index in range(start // SEGMENT_CHUNKS, (end - 1) // SEGMENT_CHUNKS + 1):
            segment = await self.read_segment(root, index)
            base = index * SEGMENT_CHUNKS
            lo, hi = max(start, base) - base, min(end, base + SEGMENT_CHUNKS) - base
            out += segment[lo * CHUNK_SIZE:hi * CHUNK_SIZE]
        SERVED.labels("data").inc(len(out))
        return bytes(out)

    async def segment_with_proof(self, root: bytes, index: int) -> dict:
        record = self.record(root)
        n_data = data_segments(record.size)
        if index >= n_data:
            raise NodeError(f"segment index {index} out of range (file has {n_data} data segments)", -32602)
        data = await self.read_segment(root, index)
        roots = self.store.segment_roots(root)
        if roots is None:
            roots = b"".join(self._segment_roots(root, segment_lengths(record.size), n_data))
        trimmed = min(SEGMENT_CHUNKS, num_chunks(record.size) - index * SEGMENT_CHUNKS) * CHUNK_SIZE
        SERVED.labels("data").inc(trimmed)
        return {"root": record.root, "data": base64.b64encode(data[:trimmed]).decode(), "index": index,
                "proof": tree_proof(roots, index).to_json(), "fileSize": record.size}

    # -- supervision (deaios_challenge) ------------------------------------------------------------------
    def challenge(self, root: bytes, chunk_index: int) -> dict:
        """Answer an alignment operator's challenge from this node's own data only (never from peers): the
        256 bytes of chunk `chunk_index` (file-wide), which must lie inside a data share this node keeps, and
        the merkle proof of its segment against the file root, from the segment roots this node keeps. A
        node that lost its data cannot answer. The siblings inside the segment are hashes of data other
        nodes keep: the challenger computes them (docs/alignment.md, "Supervision")."""
        record = self.record(root)
        segment, offset = divmod(chunk_index, SEGMENT_CHUNKS)
        if segment >= data_segments(record.size):
            raise NodeError(f"chunk {chunk_index} is beyond the data of 0x{root.hex()}", -32602)
        number = self.code.share_of(segment, self.index)
        size = self.code.share_size(segment_lengths(record.size)[segment])
        start = offset * CHUNK_SIZE - number * size
        if number >= self.code.k or start < 0 or start + CHUNK_SIZE > size:
            raise NodeError(f"chunk {chunk_index} is not inside a data share of node {self.index}", -32602)
        share = self.store.read(root, segment, SHARE)
        roots = self.store.segment_roots(root)
        if share is None or roots is None:
            raise NodeError(f"chunk {chunk_index} of 0x{root.hex()} is not held here", status=404)
        return {"root": record.root, "chunkIndex": chunk_index,
                "chunk": "0x" + bytes(share[start:start + CHUNK_SIZE]).hex(),
                "segmentProof": tree_proof(roots, segment).to_json()}

    # -- verification ------------------------------------------------------------------------------------
    async def _verify_soon(self, root: bytes) -> None:
        await asyncio.sleep(VERIFY_DELAY)
        try:
            await self.verify(root)
        except (TransportError, RetrievalError, NodeError, StoreFull) as exc:
            log.info("verification of 0x%s postponed: %s", root.hex()[:12], exc)

    async def verify(self, root: bytes) -> int:
        """Check every unverified share this node holds of `root` by decoding: rebuild its segment from k
        other shares (checked against the segment root), re-encode this node's share and compare; a wrong
        one is replaced by the right one. Once every share is here and verified, a PENDING file turns
        FINALIZED. Returns how many shares were wrong. RetrievalError if some segment cannot be rebuilt
        yet (its other shares have not arrived): the repair loop tries again."""
        if root in self._verifying:
            return 0
        self._verifying.add(root)
        try:
            async with self._lock(root):
                record = self.record(root)
                roots = self.store.segment_roots(root)
                if roots is None or record.state == COMPLETE:
                    return 0
                n_data = data_segments(record.size)
                todo = await asyncio.to_thread(self.store.unverified, root, SHARE, range(n_data))
                fetcher = SegmentFetcher(self.shares, self.code, root, roots, record.size, self.index,
                                         lambda i: self.store.read(root, i, SHARE))
                slots = asyncio.Semaphore(VERIFY_IN_FLIGHT)

                async def check(run: list[int]) -> int:
                    async with slots:
                        segments = await fetcher.fetch(run[0], len(run))
                        return await asyncio.to_thread(self._settle_shares, root, run, segments)

                wrong = sum(await asyncio.gather(*(check(run) for run in consecutive_runs(todo, BATCH))))
                if record.state == PENDING and not self._missing_local(record) \
                        and not self.store.unverified(root, SHARE, range(n_data)):
                    self.store.update(root, state=FINALIZED)
                    self.store.drop_segments(root, range(n_data))
                    self._cache_drop(root)
                    self._receiving.pop(root, None)
                    log.info("verified and finalized 0x%s (%d wrong shares replaced)", root.hex(), wrong)
                return wrong
        finally:
            self._verifying.discard(root)

    def _settle_shares(self, root: bytes, run: list[int], segments: list[bytes]) -> int:
        wrong = 0
        for i, segment in zip(run, segments):
            expected = bytes(self.code.encode(segment, [self.code.share_of(i, self.index)])[0])
            stored = self.store.read(root, i, SHARE)
            if stored == expected:
                self.store.mark_verified(root, i, SHARE, expected)
            else:
                log.warning("share of segment %d of 0x%s was %s: replaced by the one decoded from its peers",
                            i, root.hex()[:12], "unreadable" if stored is None else "wrong")
                self.store.replace(root, i, SHARE, expected)
                wrong += 1
        return wrong

    # -- repair ------------------------------------------------------------------------------------------
    async def repair_once(self) -> int:
        """One pass over every known file; returns how many shares were rebuilt."""
        rebuilt = 0
        for record in self.store.records():
            root = bytes.fromhex(record.root[2:])
            if root in self._healthy:
                continue
            if time.monotonic() - self._receiving.get(root, -UPLOAD_GRACE) < UPLOAD_GRACE:
                if record.state == PENDING and not self._missing_local(record):
                    await self._verify_quietly(root)
                continue  # an uploader (or a peer placing shares) is still sending them: no need to rebuild
            try:
                if record.state == COMPLETE or record.extra.get("unplaced"):
                    await self.finalize(root)
                elif self._missing_local(record):
                    rebuilt += await self.repair(root)
                elif self.store.unverified(root, SHARE, range(data_segments(record.size))) \
                        or record.state == PENDING:
                    await self.verify(root)
                else:
                    self._healthy.add(root)
            except (TransportError, RetrievalError, NodeError, StoreFull) as exc:
                log.info("repair of 0x%s postponed: %s", root.hex()[:12], exc)
        try:
            await asyncio.to_thread(self.compact_packs)
        except StoreFull as exc:
            log.info("compaction postponed: %s", exc)
        return rebuilt

    async def _verify_quietly(self, root: bytes) -> None:
        try:
            await self.verify(root)
        except (TransportError, RetrievalError, NodeError, StoreFull) as exc:
            log.debug("verification of 0x%s postponed: %s", root.hex()[:12], exc)

    def compact_packs(self) -> int:
        """Compact the share packs whose dead bytes (replaced or forgotten shares) passed COMPACT_WASTE."""
        reclaimed = 0
        for (root, kind), dead in list(self.store.dead_bytes.items()):
            if kind != SHARE or dead < 1 << 20:
                continue
            size, live = self.store.wasted(root, kind)
            if size - live >= max(1 << 20, COMPACT_WASTE * size):
                reclaimed += self.store.compact(root, kind)
                log.info("compacted the share pack of 0x%s: %d bytes reclaimed", root.hex()[:12], size - live)
            else:
                self.store.dead_bytes[(root, kind)] = size - live
        return reclaimed

    async def repair(self, root: bytes) -> int:
        """Rebuild this node's missing shares of a file that the network finalized."""
        async with self._lock(root):
            record = self.store.get(root)
            if record is None or record.state == COMPLETE:
                return 0
            roots = self.store.segment_roots(root)
            if roots is None:
                roots = await fetch_segment_roots(self.shares, root, self.peers, len(segment_lengths(record.size)))
                if roots is None:
                    return 0  # nobody has finalized it (yet)
                self.store.write_segment_roots(root, roots)
            missing = self._missing_local(record)
            fetcher = SegmentFetcher(self.shares, self.code, root, roots, record.size)
            fetcher.down.add(self.index)
            for run in consecutive_runs(missing, BATCH):
                segments = await fetcher.fetch(run[0], len(run))  # each checked against its segment root
                shares = [(i, bytes(self.code.encode(data, [self.code.share_of(i, self.index)])[0]))
                          for i, data in zip(run, segments)]
                await asyncio.to_thread(self.store.write_many, root, SHARE, shares, True)
                STORED.labels("share").inc(sum(len(share) for _, share in shares))
                REPAIRED.inc(len(shares))
            if missing:
                log.info("repaired %d shares of 0x%s", len(missing), root.hex())
            if self.store.unverified(root, SHARE, range(data_segments(record.size))):
                return len(missing)  # shares received earlier still wait for their verification
            self.store.update(root, state=FINALIZED)
            self.store.drop_segments(root, range(data_segments(record.size)))
            return len(missing)

    def scrub(self) -> int:
        """Re-read every stored share and check it against the node's MAC of it (verified shares) or its
        crc32 (shares still to verify, which the repair loop then checks by decoding); corrupt or vanished
        ones are dropped so repair rebuilds them."""
        dropped = 0
        for record in self.store.records():
            root = bytes.fromhex(record.root[2:])
            for i in range(data_segments(record.size)):
                if self.store.has(root, i, SHARE) and self.store.read(root, i, SHARE, check_mac=True) is None:
                    dropped += 1
        if dropped:
            log.warning("scrub: %d corrupt or missing shares will be repaired", dropped)
        return dropped


def parse_root(value: object) -> bytes:
    if not isinstance(value, str):
        raise NodeError("root must be a 0x-prefixed 32-byte hex string", -32602)
    try:
        root = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        root = b""
    if len(root) != 32:
        raise NodeError(f"root must be a 0x-prefixed 32-byte hex string, got {value[:80]!r}", -32602)
    return root


def parse_uint(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
        raise NodeError(f"{name} must be a non-negative integer below 2^64, got {str(value)[:80]}", -32602)
    return value
