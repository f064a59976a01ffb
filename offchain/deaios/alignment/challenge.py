"""Supervision challenges of storage nodes: which chunk an alignment operator asks a node for in an epoch,
and the proof of that chunk against the flow root that AlignmentSupervision checks on chain.

Derivation (every honest operator gets the same challenge; docs/alignment.md, "Supervision"):

* the epoch's `seed` and `submissions` (flow submissions when the epoch was opened) come from the contract;
* attempt a = 0, 1, … MAX_ATTEMPTS−1: h = keccak256(seed ‖ uint256 nodeId ‖ uint256 a), txSeq = h mod
  submissions. The attempt is used when the file is finalized on the network and the node keeps at least
  one whole chunk of it in a *data* share (shares are 1/k of a segment; share s of segment i is on node
  (i + s) mod n, shares ≥ k are parity and hold no chunk);
* the chunk: u = keccak256(h ‖ "chunk") mod T over the T chunks lying wholly inside the node's data shares
  of that file, in segment order.

DA nodes: the blobs whose commitment was verified (`ErasureCommitmentVerified`) up to the block that opened
the epoch, not expired, in a quorum the node (its signer address) belongs to, in event order; h = keccak256(seed
‖ uint256 nodeId ‖ "da"), blob = h mod count, row = keccak256(h ‖ "row") mod (the node's rows): the node must
serve that row's column with cells matching their KZG proofs and the blob's commitments.

Proof: a submission's nodes are complete, aligned subtrees of the flow tree, and 0G's file tree is the same
binary tree inside each of them. So the chunk's siblings are the first `height(node holding it)` siblings of
its file proof (`merkle.chunk_proof`), then the flow tree's siblings above that node (`FlowTree.siblings`,
over the submissions up to txSeq), and the path bits are the bits of its flow position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deaios._keccak import keccak256
from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.flow_tree import FlowTree
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_CHUNKS, FileMerkleTree, chunk_proof
from deaios.storage.node.logsync import SubmitEvent

MAX_ATTEMPTS = 8


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class Challenge:
    """Chunk `chunk_index` of the file of submission `tx_seq`, at flow `position`."""

    node_id: int
    tx_seq: int
    chunk_index: int
    position: int
    attempt: int

    @property
    def segment(self) -> int:
        return self.chunk_index // SEGMENT_CHUNKS


def candidate_seqs(seed: bytes, node_id: int, submissions: int,
                   eligible: Sequence[int] | None = None) -> list[tuple[int, bytes]]:
    """(txSeq, attempt hash) for each attempt, in order; empty when the flow had no submission. With
    `eligible` (the tx seqs below `submissions` whose files give the node a challengeable chunk, which every
    operator derives alike from the Submit events), attempts pick among those only."""
    pool: Sequence[int] = range(submissions) if eligible is None else [s for s in eligible if s < submissions]
    if not pool:
        return []
    out = []
    for attempt in range(MAX_ATTEMPTS):
        h = keccak256(seed + _u256(node_id) + _u256(attempt))
        out.append((pool[int.from_bytes(h, "big") % len(pool)], h))
    return out


def pick_da_blob(seed: bytes, node_id: int, blobs: int) -> tuple[int, bytes] | None:
    """(index among `blobs` candidate blobs, hash for the row) of a DA challenge; None without candidates."""
    if blobs <= 0:
        return None
    h = keccak256(seed + _u256(node_id) + b"da")
    return int.from_bytes(h, "big") % blobs, h


def pick_da_row(h: bytes, rows: range) -> int:
    """The challenged row among the node's `rows` of the blob's quorum."""
    return rows[int.from_bytes(keccak256(h + b"row"), "big") % len(rows)]


def data_share_chunks(code: ErasureCode, size: int, node_index: int) -> list[tuple[int, int, int]]:
    """(segment, first, end): the in-segment chunk ranges lying wholly inside data shares of node `node_index`."""
    out = []
    for segment, length in enumerate(segment_lengths(size)[:data_segments(size)]):
        number = code.share_of(segment, node_index)
        if number >= code.k:
            continue
        share = code.share_size(length)
        first = -(-number * share // CHUNK_SIZE)
        end = min((number + 1) * share // CHUNK_SIZE, length // CHUNK_SIZE)
        if end > first:
            out.append((segment, first, end))
    return out


def pick_chunk(h: bytes, code: ErasureCode, size: int, node_index: int) -> int | None:
    """The challenged chunk index (file-wide) for attempt hash `h`, or None if the node keeps no chunk."""
    ranges = data_share_chunks(code, size, node_index)
    total = sum(end - first for _, first, end in ranges)
    if total == 0:
        return None
    pick = int.from_bytes(keccak256(h + b"chunk"), "big") % total
    for segment, first, end in ranges:
        if pick < end - first:
            return segment * SEGMENT_CHUNKS + first + pick
        pick -= end - first
    raise AssertionError("unreachable")


def node_height(event: SubmitEvent, chunk_index: int) -> int:
    """Height of the submission node holding chunk `chunk_index` of the file."""
    offset = 0
    for _, height in event.nodes:
        offset += 1 << height
        if chunk_index < offset:
            return height
    raise IndexError(f"chunk {chunk_index} is beyond the submission ({offset} sectors)")


def flow_tree_at(events: Iterable[SubmitEvent], tx_seq: int) -> FlowTree:
    """The flow tree right after submission `tx_seq`, replayed from Submit events (any order, all of
    0..tx_seq present); each event's recorded start position is checked."""
    by_seq = {e.seq: e for e in events}
    tree = FlowTree()
    for seq in range(tx_seq + 1):
        event = by_seq.get(seq)
        if event is None:
            raise LookupError(f"Submit event of tx seq {seq} missing")
        placement = tree.append(event.nodes)
        if placement.start != event.start_pos:
            raise ValueError(f"flow model disagrees with the chain at tx seq {seq}")
    return tree


def chunk_siblings(event: SubmitEvent, chunk_index: int, segment: bytes, segment_roots: bytes,
                   flow: FlowTree) -> list[bytes]:
    """Siblings (bottom-up) of the chunk's path to the flow root of `flow`; `segment` is the chunk's segment
    (flow-padded) and `segment_roots` the file's segment roots."""
    height = node_height(event, chunk_index)
    proof = chunk_proof(segment, chunk_index, FileMerkleTree(event.length, segment_roots, b""))
    inner = list(proof.lemma[1:-1])
    if len(inner) < height:
        raise ValueError("file proof shorter than the submission node's height")
    return inner[:height] + flow.siblings(event.start_pos + chunk_index, height)


def root_of(chunk: bytes, position: int, siblings: Sequence[bytes]) -> bytes:
    """The root a chunk proof reaches: the same computation as ChunkProof.rootOf on chain."""
    node = keccak256(chunk)
    for level, sibling in enumerate(siblings):
        node = keccak256(node + sibling if (position >> level) & 1 == 0 else sibling + node)
    return node
