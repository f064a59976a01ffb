"""Rebuilding segments from erasure shares spread over storage nodes, with merkle verification.

Used by storage nodes (to answer `zgs_downloadSegment` for a file they hold only a share of, and to repair
their own shares) and by the deaios client (downloads). For a range of segments it first asks every
reachable node for its *data* shares only (together they are exactly the file, no decoding needed); for
segments still short of k shares it asks for all shares and decodes. Each rebuilt segment must hash to
its segment root, and the segment roots must hash to the file root; a wrong share is found by trying
other k-subsets.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.merkle import HASH_SIZE, segment_root, tree_root
from deaios.storage.share_transport import ShareClient, TransportError, share_sizes

log = logging.getLogger(__name__)

MAX_SUBSETS = 256  # k-subsets tried per segment before giving up on corrupt shares


class RetrievalError(RuntimeError):
    """Not enough valid shares are reachable to rebuild a segment."""


LocalShares = Callable[[int], bytes | None]  # segment index -> this node's share (or None)


class SegmentFetcher:
    """Rebuilds verified segments of one file from the nodes of a ShareClient."""

    def __init__(self, client: ShareClient, code: ErasureCode, root: bytes, segment_roots: bytes, size: int,
                 local_node: int | None = None, local: LocalShares | None = None) -> None:
        self.client = client
        self.code = code
        self.root = root
        self.roots = segment_roots
        # checked against the file root once, so that a segment verifies by its own root alone
        self._roots_ok = bool(segment_roots) and len(segment_roots) % HASH_SIZE == 0 \
            and tree_root(segment_roots) == root
        self.size = size
        self.lengths = segment_lengths(size)
        self.data_segments = data_segments(size)
        self.local_node = local_node
        self.local = local
        self.down: set[int] = set()  # nodes that failed during this fetcher's life

    def verify(self, index: int, data: bytes) -> bool:
        """Does `data` hash, through its merkle proof, to the file root at segment `index`?

        Equivalent to building segment `index`'s proof from the segment roots and checking it, since
        the segment roots were checked to hash to the file root: the proof holds exactly when the
        segment's root is the index-th segment root (and this costs O(1) hashes per segment instead of
        rebuilding the tree over all segment roots for each one)."""
        if not self._roots_ok or not 0 <= index < len(self.roots) // HASH_SIZE:
            return False
        return segment_root(data) == self.roots[index * HASH_SIZE:(index + 1) * HASH_SIZE]

    async def _collect(self, first: int, count: int, data_only: bool,
                       found: list[dict[int, bytes]], nodes: list[int]) -> None:
        sizes = share_sizes(self.code, self.size, first, count)

        async def one(node: int) -> None:
            if node == self.local_node and self.local is not None:
                shares = [self.local(first + i) for i in range(count)]
            else:
                try:
                    shares = await self.client.get_shares(node, self.root, first, sizes, data_only)
                except TransportError as exc:
                    log.debug("share fetch failed: %s", exc)
                    self.down.add(node)
                    return
            for i, share in enumerate(shares):
                number = self.code.share_of(first + i, node)
                if share is not None and (not data_only or number < self.code.k):
                    found[i][number] = share

        await asyncio.gather(*(one(node) for node in nodes))

    async def fetch(self, first: int, count: int) -> list[bytes]:
        """Segments first..first+count-1 (flow-padded length), each verified against the file root."""
        count = max(0, min(count, len(self.lengths) - first))
        found: list[dict[int, bytes]] = [{} for _ in range(count)]
        live = [n for n in range(self.code.n) if n not in self.down]
        await self._collect(first, count, True, found, live)
        out: list[bytes | None] = await asyncio.to_thread(  # hashing and decoding release the GIL
            lambda: [bytes(self.lengths[first + i]) if first + i >= self.data_segments  # pure flow padding
                     else self._decode(first + i, found[i]) for i in range(count)])
        retry = [i for i in range(count) if out[i] is None]
        if retry:
            lo, hi = retry[0], retry[-1] + 1
            more: list[dict[int, bytes]] = [{} for _ in range(hi - lo)]
            live = [n for n in range(self.code.n) if n not in self.down]
            await self._collect(first + lo, hi - lo, False, more, live)
            for i in retry:
                out[i] = await asyncio.to_thread(self._decode, first + i, {**found[i], **more[i - lo]})
                if out[i] is None:
                    raise RetrievalError(
                        f"segment {first + i} of 0x{self.root.hex()}: fewer than {self.code.k} valid shares "
                        f"reachable ({len(more[i - lo])} found)")
        return out  # type: ignore[return-value]

    def _decode(self, index: int, shares: dict[int, bytes]) -> bytes | None:
        if len(shares) < self.code.k:
            return None
        length = self.lengths[index]
        numbers = sorted(shares)
        for subset in itertools.islice(itertools.combinations(numbers, self.code.k), MAX_SUBSETS):
            data = self.code.decode({s: shares[s] for s in subset}, length)
            if self.verify(index, data):
                return data
            log.warning("segment %d of 0x%s: shares %s do not verify", index, self.root.hex(), subset)
        return None


async def fetch_segment_roots(client: ShareClient, root: bytes, nodes: list[int],
                              segments: int | None = None) -> bytes | None:
    """The segment roots of `root` from the first node that has valid ones (`segments`: how many there
    are, if known, so that no node can make us read more)."""
    for node in nodes:
        try:
            roots = await client.get_roots(node, root, segments)
        except TransportError:
            continue
        if roots and len(roots) % HASH_SIZE == 0 and tree_root(roots) == root:
            return roots
    return None
