"""Supervision challenges of storage nodes: which chunk an alignment operator asks a node for in an epoch, and
the proof of that chunk against the flow root that AlignmentSupervision checks on chain.

Derivation (contracts/alignment/libraries/ChallengeMath.sol computes the same on chain, and the contract refuses a
pass for any other chunk; docs/alignment.md, "Supervision"):

* the epoch's `seed` and challenge pool size (`files`: the pool's length when the epoch was opened) come from the
  contract; the pool holds flow tx seqs of files big enough that every node keeps a data share of one of their
  full data segments (`eligible`, checked by `registerChallengeFile`);
* attempt a = 0 … MAX_ATTEMPTS−1: h = keccak256(seed ‖ uint256 nodeId ‖ uint256 a), the file is pool[h mod files].
  An honest operator takes the first attempt whose file is finalized on the network;
* the chunk (`pick_chunk`): over the file's F full data segments, the node (placement index `node`) holds data
  share s of segment j iff j ≡ node − s (mod n); for s = 0 … k−1 these are c_s segments r_s, r_s + n, … (r_s =
  (node − s) mod n); u = keccak256(h ‖ "segment") mod Σ c_s picks (s, t) in that order, segment j = r_s + t·n;
  then v = keccak256(h ‖ "chunk") mod (the chunks wholly inside share s, bytes [s·sz, (s+1)·sz) of the segment,
  sz = ⌈262144 / k⌉), from the first of them.

Why data shares: a node keeps only 1/k of each segment (zfec, systematic: share s of segment i on node
(i + s) mod n), so a chunk it can produce from its own data must be inside one of its data shares.

DA nodes: the blobs whose commitment was verified (`ErasureCommitmentVerified`) up to the block that opened
the epoch, not expired, in a quorum the node (its signer address) belongs to, in event order; h = keccak256(seed
‖ uint256 nodeId ‖ "da"), blob = h mod count, row = keccak256(h ‖ "row") mod (the node's rows): the node must
serve that row's column with cells matching their KZG proofs and the blob's commitments (checked off chain).

Proof: a submission's nodes are complete, aligned subtrees of the flow tree, and 0G's file tree is the same
binary tree inside each of them. So the chunk's siblings are the first `height(node holding it)` siblings of
its file proof (`merkle.chunk_proof`), then the flow tree's siblings above that node (`FlowTree.siblings`,
over the submissions up to txSeq), and the path bits are the bits of its flow position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deaios._keccak import keccak256
from deaios.storage.flow_tree import FlowTree
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_CHUNKS, FileMerkleTree, chunk_proof, num_chunks
from deaios.storage.node.logsync import SubmitEvent

MAX_ATTEMPTS = 8  # AlignmentSupervision.MAX_ATTEMPTS


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class Challenge:
    """Chunk `chunk_index` of the file of submission `tx_seq`, at flow `position`; the `attempt` that gave it."""

    node_id: int
    tx_seq: int
    chunk_index: int
    position: int
    attempt: int

    @property
    def segment(self) -> int:
        return self.chunk_index // SEGMENT_CHUNKS


def attempt_hash(seed: bytes, node_id: int, attempt: int) -> bytes:
    """h = keccak256(seed ‖ uint256 nodeId ‖ uint256 attempt)."""
    return keccak256(seed + _u256(node_id) + _u256(attempt))


def full_data_segments(size: int, sectors: int) -> int:
    """Full (1024-chunk) data segments of a `size`-byte file occupying `sectors` flow sectors."""
    return min(-(-num_chunks(size) // SEGMENT_CHUNKS), sectors // SEGMENT_CHUNKS)


def eligible(size: int, sectors: int, n: int, k: int) -> bool:
    """Whether every one of n nodes keeps a data share of a full data segment of the file (the challenge pool's
    rule: at least n − k + 1 full data segments)."""
    return n > 0 and full_data_segments(size, sectors) >= n - k + 1


def _segments_of_share(full: int, node: int, n: int, share: int) -> int:
    r = (node - share) % n
    return (full - 1 - r) // n + 1 if r < full else 0


def pick_chunk(h: bytes, full: int, node: int, n: int, k: int) -> int | None:
    """The challenged chunk (file-wide index) for attempt hash `h`, or None if the node keeps no whole chunk of a
    full data segment of the file."""
    counts = [_segments_of_share(full, node, n, s) for s in range(k)]
    total = sum(counts)
    if total == 0:
        return None
    u = int.from_bytes(keccak256(h + b"segment"), "big") % total
    share = 0
    while u >= counts[share]:
        u -= counts[share]
        share += 1
    segment = (node - share) % n + u * n
    size = -(-SEGMENT_CHUNKS * CHUNK_SIZE // k)
    first = -(-share * size // CHUNK_SIZE)
    end = min((share + 1) * size // CHUNK_SIZE, SEGMENT_CHUNKS)
    if end <= first:
        return None
    v = int.from_bytes(keccak256(h + b"chunk"), "big") % (end - first)
    return segment * SEGMENT_CHUNKS + first + v


def storage_challenge(seed: bytes, node_id: int, attempt: int, pool: Sequence[int], files: int,
                      events: Mapping[int, SubmitEvent], placement: int, n: int, k: int) -> Challenge | None:
    """The challenge of storage node `node_id` for `attempt` (AlignmentSupervision.challengeOf): `pool` is the
    challenge pool (tx seqs), `files` its size when the epoch was opened, `events` the Submit events by tx seq."""
    if files == 0 or attempt >= MAX_ATTEMPTS or n == 0:
        return None
    h = attempt_hash(seed, node_id, attempt)
    tx_seq = pool[int.from_bytes(h, "big") % files]
    event = events.get(tx_seq)
    if event is None:
        return None
    chunk = pick_chunk(h, full_data_segments(event.length, event.sectors), placement, n, k)
    if chunk is None:
        return None
    return Challenge(node_id, tx_seq, chunk, event.start_pos + chunk, attempt)


def pick_da_blob(seed: bytes, node_id: int, blobs: int) -> tuple[int, bytes] | None:
    """(index among `blobs` candidate blobs, hash for the row) of a DA challenge; None without candidates."""
    if blobs <= 0:
        return None
    h = keccak256(seed + _u256(node_id) + b"da")
    return int.from_bytes(h, "big") % blobs, h


def pick_da_row(h: bytes, rows: range) -> int:
    """The challenged row among the node's `rows` of the blob's quorum."""
    return rows[int.from_bytes(keccak256(h + b"row"), "big") % len(rows)]


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
