"""Off-chain model of the on-chain flow tree (`contracts/storage/FlowTree.sol`).

The flow is the append-only log of 256-byte sectors that the Flow contract maintains. Its merkle tree:

* leaf = keccak256(sector), parent = keccak256(left || right);
* position 0 is a placeholder whose leaf hash is 32 zero bytes, so a fresh flow has length 1;
* a submission's nodes (subtree roots of height h, covering 2^h sectors) are inserted biggest first,
  each at the next position aligned to 2^h; skipped positions are zero sectors;
* pad rule (0G): if the first node, so aligned, would start inside a 1024-sector segment and the
  submission would cross into the next segment, the submission starts at the next segment boundary;
* the root covers the smallest power of two >= length positions, empty positions being zero sectors
  (an empty subtree of height h has root ``zeros(h)``, ``zeros(0) = keccak256(256 zero bytes)``).

This model stores the inserted subtrees and computes the root recursively, a different algorithm
from the contract's frontier, so the two check each other (tests compare it with
``Flow.getFlowRootByTxSeq``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from deaios.storage.merkle import keccak256

SECTOR_SIZE = 256
SECTORS_PER_SEGMENT = 1024
SEGMENT_HEIGHT = 10
MAX_FLOW_LENGTH = 1 << 64
PLACEHOLDER_LEAF = bytes(32)


@lru_cache(maxsize=None)
def zeros(height: int) -> bytes:
    """Root of a subtree of 2^height zero sectors."""
    if height == 0:
        return keccak256(bytes(SECTOR_SIZE))
    below = zeros(height - 1)
    return keccak256(below + below)


def next_align(length: int, height: int) -> int:
    """Round ``length`` up to a multiple of 2^height."""
    size = 1 << height
    return -(-length // size) * size


def submission_start(length: int, heights: Sequence[int]) -> int:
    """Flow position where a submission with node ``heights`` starts if the flow has ``length`` sectors."""
    sectors = sum(1 << h for h in heights)
    start = next_align(length, heights[0])
    first_segment, last_segment = start // SECTORS_PER_SEGMENT, (start + sectors - 1) // SECTORS_PER_SEGMENT
    if start % SECTORS_PER_SEGMENT and first_segment != last_segment:
        start = next_align(start, SEGMENT_HEIGHT)
    return start


@dataclass(frozen=True)
class Placement:
    """Where a submission landed: its first sector, padding inserted before it, sectors it occupies."""

    start: int
    padding: int
    sectors: int
    before_length: int


@dataclass
class FlowTree:
    """The flow tree: ``length`` positions with inserted subtrees ``(start, height, root)``."""

    length: int = 1
    _starts: list[int] = field(default_factory=lambda: [0])
    _nodes: list[tuple[int, int, bytes]] = field(default_factory=lambda: [(0, 0, PLACEHOLDER_LEAF)])

    def insert_node(self, root: bytes, height: int) -> int:
        """Insert one subtree root at the next 2^height-aligned position; return that position."""
        if len(root) != 32:
            raise ValueError("node root must be 32 bytes")
        start = next_align(self.length, height)
        end = start + (1 << height)
        if end > MAX_FLOW_LENGTH:
            raise ValueError("flow tree full")
        self._starts.append(start)
        self._nodes.append((start, height, bytes(root)))
        self.length = end
        return start

    def append(self, nodes: Iterable[tuple[bytes, int]]) -> Placement:
        """Append a submission given as ``(root, height)`` pairs, biggest first (pad rule applied)."""
        pairs = [(bytes(r), int(h)) for r, h in nodes]
        if not pairs:
            raise ValueError("empty submission")
        heights = [h for _, h in pairs]
        before = self.length
        self.length = submission_start(before, heights)
        start = -1
        for root, height in pairs:
            position = self.insert_node(root, height)
            if start < 0:
                start = position
        return Placement(start=start, padding=start - before, sectors=self.length - start,
                         before_length=before)

    def append_submission(self, submission: object) -> Placement:
        """Append a ``deaios.storage.merkle.Submission`` (anything with ``.nodes`` of ``root``/``height``)."""
        nodes = submission.nodes  # type: ignore[attr-defined]
        return self.append((node.root, node.height) for node in nodes)

    @property
    def height(self) -> int:
        """Smallest h with 2^h >= length."""
        return (self.length - 1).bit_length()

    def root(self) -> bytes:
        """Merkle root over 2^height positions (empty ones are zero sectors)."""
        return self._subtree(self.height, 0)

    def siblings(self, position: int, from_height: int = 0) -> list[bytes]:
        """Bottom-up sibling roots from the aligned block of 2^from_height positions holding `position` to
        `root()`: with that block's root they prove it (sibling i is on the right when bit i of the position
        is 0). Used by alignment supervision to prove a chunk on chain (contracts/alignment/libraries/)."""
        if not 0 <= position < self.length:
            raise IndexError(f"position {position} outside the flow (length {self.length})")
        start, height, _ = self._nodes[bisect.bisect_right(self._starts, position) - 1]
        if position < start + (1 << height) and from_height < height:
            raise ValueError(f"position {position} lies in a node of height {height}: its siblings below that "
                             "height are not in the flow model (take them from the file's merkle tree)")
        return [self._subtree(h, ((position >> h) ^ 1) << h) for h in range(from_height, self.height)]

    def _subtree(self, height: int, start: int) -> bytes:
        """Root of the aligned block [start, start + 2^height)."""
        end = start + (1 << height)
        # Inserted nodes are aligned, never overlap and are sorted by start. A node either lies inside
        # the block, or is exactly the block, or does not meet it (a block is never inside a node: the
        # recursion stops at a node's own block).
        i = bisect.bisect_left(self._starts, start)
        if i == len(self._starts) or self._starts[i] >= end:
            return zeros(height)
        node_start, node_height, node_root = self._nodes[i]
        if node_start == start and node_height == height:
            return node_root
        half = height - 1
        left = self._subtree(half, start)
        right = self._subtree(half, start + (1 << half))
        return keccak256(left + right)
