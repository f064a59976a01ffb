"""Erasure coding of segments across storage nodes (Reed–Solomon via zfec) and share placement.

With N storage nodes, every segment is cut into k = N − ceil(0.3·N) data blocks and expanded to n = N
shares (k data shares, N − k parity shares); any k shares rebuild the segment, so any 30 % of the nodes
may be down. Storage overhead is n/k (10 nodes: k = 7, 1.43×). Share s of segment i is kept by node
(i + s) mod n, so data shares (the fast path: no decoding) rotate over all nodes. See docs/storage.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import zfec

from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_CHUNKS, num_chunks, padded_chunks

TOLERATED_DOWN_FRACTION = 0.3


@dataclass(frozen=True)
class ErasureCode:
    """A (k, n) Reed–Solomon code over segments and the placement of its shares on n nodes."""

    k: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n <= 256:
            raise ValueError(f"need 1 <= k <= n <= 256, got k={self.k} n={self.n}")

    @classmethod
    def for_nodes(cls, nodes: int, tolerate: float = TOLERATED_DOWN_FRACTION) -> "ErasureCode":
        """The code that survives any `tolerate` fraction of `nodes` being down."""
        if nodes < 1:
            raise ValueError("need at least one storage node")
        return cls(max(1, nodes - math.ceil(tolerate * nodes)), nodes)

    @property
    def overhead(self) -> float:
        return self.n / self.k

    def share_size(self, segment_length: int) -> int:
        return -(-segment_length // self.k)

    def encode(self, segment: bytes, shares: list[int] | None = None) -> list[bytes]:
        """The shares (all n, or the listed share numbers) of one segment's padded data.

        Data shares are zero-copy views (memoryview) into `segment` where no padding is needed; treat
        them as read-only bytes-like objects."""
        size = self.share_size(len(segment))
        view = memoryview(segment)
        blocks = [view[i * size:(i + 1) * size] for i in range(self.k)]
        blocks = [b if len(b) == size else bytes(b).ljust(size, b"\0") for b in blocks]
        if shares is not None and all(s < self.k for s in shares):  # data shares are slices: no coding
            return [blocks[s] for s in shares]
        encoder = zfec.Encoder(self.k, self.n)
        return list(encoder.encode(blocks, shares) if shares is not None else encoder.encode(blocks))

    def decode(self, shares: Mapping[int, bytes], segment_length: int) -> bytes:
        """Rebuild a segment of `segment_length` bytes from any k of its shares {share number: bytes}."""
        if len(shares) < self.k:
            raise ValueError(f"need {self.k} shares to decode, have {len(shares)}")
        size = self.share_size(segment_length)
        numbers = sorted(shares)[: self.k]
        if any(len(shares[s]) != size for s in numbers):
            raise ValueError("a share has the wrong size")
        if numbers == list(range(self.k)):
            blocks = [shares[s] for s in numbers]
        else:
            blocks = zfec.Decoder(self.k, self.n).decode([shares[s] for s in numbers], numbers)
        parts, left = [], segment_length  # the padding is cut off the blocks, so the join is the only copy
        for block in blocks:
            if left <= 0:
                break
            parts.append(block if len(block) <= left else memoryview(block)[:left])
            left -= len(block)
        return b"".join(parts)

    # -- placement ----------------------------------------------------------------------------------
    def holder(self, segment: int, share: int) -> int:
        """Index of the node that keeps share `share` of segment `segment`."""
        return (segment + share) % self.n

    def share_of(self, segment: int, node: int) -> int:
        """The share number node `node` keeps of segment `segment`."""
        return (node - segment) % self.n


def segment_lengths(file_size: int) -> list[int]:
    """Byte length of every flow-padded segment of a file (the last one may be short)."""
    full, rest = divmod(padded_chunks(num_chunks(file_size)), SEGMENT_CHUNKS)  # (called per request: no loop)
    return [SEGMENT_CHUNKS * CHUNK_SIZE] * full + ([rest * CHUNK_SIZE] if rest else [])


def data_segments(file_size: int) -> int:
    """Segments that hold file bytes; the ones after them (if any) are pure flow padding (zeros)."""
    return -(-num_chunks(file_size) // SEGMENT_CHUNKS)
