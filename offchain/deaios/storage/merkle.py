"""0G's storage file format: chunks, segments, file root, submission nodes and merkle proofs.

This is the one implementation of the format in deaios; contracts' tests, storage nodes and clients all
import it. It is byte-identical to the official 0G SDK (checked against `@0gfoundation/0g-ts-sdk` by the
test suite):

* a file is cut into 256-byte chunks (the last one zero-padded); the chunk count is padded as the flow
  requires (`padded_chunks`) and the padded data is cut into segments of at most 1024 chunks;
* a chunk's leaf hash is keccak256(chunk); a parent is keccak256(left || right); in every tree an odd
  last node is promoted unchanged to the next level (not duplicated, not paired with zero);
* the file root is the tree over the segment roots, each segment root the tree over its chunk leaves;
* the submission splits the padded chunks into at most four power-of-two nodes, biggest first.

Chunk hashing runs in the C extension `deaios._keccak` (four Keccak states at once where AVX2 exists).
"""

from __future__ import annotations

import io
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from deaios._keccak import hash_leaves, hash_pairs, keccak256

__all__ = [
    "CHUNK_SIZE", "SEGMENT_CHUNKS", "SEGMENT_SIZE", "MAX_SUBMISSION_NODES", "EMPTY_CHUNK_HASH",
    "EmptyFileError", "Proof", "ProofError", "Submission", "SubmissionNode", "FileMerkleTree",
    "keccak256", "num_chunks", "num_segments", "padded_chunks", "node_heights", "tree_root", "tree_proof",
    "tree_levels", "range_siblings", "range_root",
]

CHUNK_SIZE = 256
SEGMENT_CHUNKS = 1024
SEGMENT_SIZE = CHUNK_SIZE * SEGMENT_CHUNKS
MAX_SUBMISSION_NODES = 4
EMPTY_CHUNK_HASH = keccak256(bytes(CHUNK_SIZE))
HASH_SIZE = 32

# Segments hashed per C call when streaming a file (16 MiB of data at a time), and hashing threads.
_BLOCK_SEGMENTS = 64
_WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class EmptyFileError(ValueError):
    """0G cannot store an empty file: it has no chunks, so no submission node and no root."""


class ProofError(ValueError):
    """A merkle proof is malformed or does not prove the claimed content at the claimed position."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def num_chunks(size: int) -> int:
    """Number of 256-byte chunks of a file of `size` bytes."""
    return _ceil_div(size, CHUNK_SIZE)


def padded_chunks(chunks: int) -> int:
    """The chunk count after the flow's padding: a multiple of nextPow2(chunks)/16 (or of 1 below 16)."""
    p2 = _next_pow2(chunks)
    if p2 == chunks:
        return chunks
    unit = p2 // 16 if p2 >= 16 else 1
    return _ceil_div(chunks, unit) * unit


def num_segments(size: int) -> int:
    """Number of segments of the padded file (the leaves of the file tree)."""
    return _ceil_div(padded_chunks(num_chunks(size)), SEGMENT_CHUNKS)


def node_heights(size: int) -> list[int]:
    """Heights of the submission nodes of a `size`-byte file: the minimal 0G split, biggest first."""
    chunks = num_chunks(size)
    if chunks == 0:
        raise EmptyFileError("an empty file has no 0G submission (0G rejects zero-length data)")
    remaining = padded_chunks(chunks)
    heights = []
    height = _next_pow2(chunks).bit_length() - 1
    while remaining:
        if remaining >= 1 << height:
            remaining -= 1 << height
            heights.append(height)
        height -= 1
    return heights


def tree_root(level: bytes) -> bytes:
    """Root of 0G's tree over concatenated 32-byte hashes (an odd last node is promoted unchanged)."""
    if not level:
        raise ValueError("a tree needs at least one leaf")
    while len(level) > HASH_SIZE:
        odd = (len(level) // HASH_SIZE) % 2
        paired = hash_pairs(level[: len(level) - HASH_SIZE * odd])
        level = paired + level[len(level) - HASH_SIZE:] if odd else paired
    return level


def tree_levels(leaves: bytes) -> list[bytes]:
    """Every level of 0G's tree over `leaves`, leaves first, root last."""
    return _tree_levels(leaves)


def range_siblings(levels: list[bytes], lo: int, hi: int) -> list[bytes]:
    """The hashes that, with leaves lo..hi (inclusive) of the tree `levels`, rebuild its root: per level,
    the left neighbour of the range if it starts on a right child, then the right neighbour if it ends on a
    left child that has one (an odd last node is promoted, so it needs none). See `range_root`."""
    out = []
    for level in levels[:-1]:
        n = len(level) // HASH_SIZE
        if lo % 2:
            out.append(level[(lo - 1) * HASH_SIZE:lo * HASH_SIZE])
        if hi % 2 == 0 and hi + 1 < n:
            out.append(level[(hi + 1) * HASH_SIZE:(hi + 2) * HASH_SIZE])
        lo, hi = lo // 2, hi // 2
    return out


def range_sibling_count(leaves: int, lo: int, hi: int) -> int:
    """How many hashes `range_siblings` returns for leaves lo..hi of a tree of `leaves` leaves."""
    count, n = 0, leaves
    while n > 1:
        count += (lo % 2) + (hi % 2 == 0 and hi + 1 < n)
        lo, hi, n = lo // 2, hi // 2, (n + 1) // 2
    return count


def range_root(leaves: bytes, lo: int, total: int, siblings: list[bytes]) -> bytes:
    """The root of a tree of `total` leaves rebuilt from its consecutive leaves starting at `lo` and the
    `range_siblings` of that range; ProofError if the siblings do not fit the range."""
    level, hi, n = leaves, lo + len(leaves) // HASH_SIZE - 1, total
    if not leaves or len(leaves) % HASH_SIZE or not 0 <= lo <= hi < total:
        raise ProofError("leaf range outside the tree")
    rest = iter(siblings)
    try:
        while n > 1:
            if lo % 2:
                level, lo = next(rest) + level, lo - 1
            if hi % 2 == 0 and hi + 1 < n:
                level, hi = level + next(rest), hi + 1
            odd = (len(level) // HASH_SIZE) % 2  # then hi is the promoted last node of the level
            paired = hash_pairs(level[:len(level) - HASH_SIZE * odd])
            level = paired + level[len(level) - HASH_SIZE:] if odd else paired
            lo, hi, n = lo // 2, hi // 2, (n + 1) // 2
    except StopIteration:
        raise ProofError("too few sibling hashes") from None
    if next(rest, None) is not None:
        raise ProofError("too many sibling hashes")
    return level


def _tree_levels(leaves: bytes) -> list[bytes]:
    levels = [leaves]
    while len(levels[-1]) > HASH_SIZE:
        level = levels[-1]
        odd = (len(level) // HASH_SIZE) % 2
        paired = hash_pairs(level[: len(level) - HASH_SIZE * odd])
        levels.append(paired + level[len(level) - HASH_SIZE:] if odd else paired)
    return levels


@dataclass(frozen=True)
class Proof:
    """0G's merkle proof: lemma = [leaf, siblings bottom-up…, root]; path[i] is True when the node at
    level i is a left child. A single-leaf tree has lemma [root] and an empty path."""

    lemma: tuple[bytes, ...]
    path: tuple[bool, ...]

    def to_json(self) -> dict[str, list]:
        return {"lemma": ["0x" + h.hex() for h in self.lemma], "path": list(self.path)}

    @classmethod
    def from_json(cls, obj: object) -> "Proof":
        """Parse the JSON form (as the SDK sends it); raises ProofError on any malformation."""
        try:
            lemma = tuple(bytes.fromhex(str(h).removeprefix("0x")) for h in obj["lemma"])  # type: ignore[index]
            path = obj["path"]  # type: ignore[index]
        except (TypeError, KeyError, ValueError) as exc:
            raise ProofError(f"malformed proof: {exc}") from None
        if not isinstance(path, list) or not all(isinstance(p, bool) for p in path):
            raise ProofError("malformed proof: path must be a list of booleans")
        if any(len(h) != HASH_SIZE for h in lemma):
            raise ProofError("malformed proof: every lemma entry must be 32 bytes")
        return cls(lemma, tuple(path))

    @property
    def root(self) -> bytes:
        return self.lemma[-1]

    def position(self, num_leaves: int) -> int:
        """The leaf index this proof's path designates in a tree of `num_leaves` leaves."""
        position = 0
        for is_left in reversed(self.path):
            left_leaves = _next_pow2(num_leaves) // 2
            if is_left:
                num_leaves = left_leaves
            else:
                position += left_leaves
                num_leaves -= left_leaves
        return position

    def verify(self, root: bytes, leaf: bytes, position: int, num_leaves: int) -> None:
        """Check that `leaf` (a hash) sits at `position` of the `num_leaves`-leaf tree with `root`."""
        if len(self.lemma) != (len(self.path) + 2 if self.path else 1):
            raise ProofError("malformed proof: lemma must hold the leaf, one sibling per path step and the root")
        if self.lemma[0] != leaf:
            raise ProofError("proof content mismatch")
        if self.lemma[-1] != root:
            raise ProofError("proof root mismatch")
        if not 0 <= position < num_leaves or self.position(num_leaves) != position:
            raise ProofError("proof position mismatch")
        node = leaf
        for sibling, is_left in zip(self.lemma[1:-1], self.path):
            node = keccak256(node + sibling if is_left else sibling + node)
        if node != root:
            raise ProofError("proof does not hash to the root")


def tree_proof(leaves: bytes, index: int) -> Proof:
    """Proof of leaf `index` in 0G's tree over concatenated 32-byte `leaves`."""
    count = len(leaves) // HASH_SIZE
    if not 0 <= index < count:
        raise IndexError(f"leaf {index} out of range (tree has {count})")
    levels = _tree_levels(leaves)
    if count == 1:
        return Proof((levels[-1],), ())
    lemma = [leaves[index * HASH_SIZE:(index + 1) * HASH_SIZE]]
    path = []
    for level in levels[:-1]:
        width = len(level) // HASH_SIZE
        if not (index == width - 1 and width % 2 == 1):  # a promoted node has no sibling at this level
            sibling = index ^ 1
            lemma.append(level[sibling * HASH_SIZE:(sibling + 1) * HASH_SIZE])
            path.append(index % 2 == 0)
        index //= 2
    lemma.append(levels[-1])
    return Proof(tuple(lemma), tuple(path))


@dataclass(frozen=True)
class SubmissionNode:
    """One node of a 0G submission: the root of 2**height consecutive chunks."""

    root: bytes
    height: int


@dataclass(frozen=True)
class Submission:
    """A 0G `SubmissionData` (length in bytes, opaque tags, nodes) as `Flow.submit` takes it."""

    length: int
    tags: bytes
    nodes: tuple[SubmissionNode, ...]

    @property
    def sectors(self) -> int:
        """Flow sectors (256-byte entries) the submission occupies: the fee is charged on these."""
        return sum(1 << node.height for node in self.nodes)

    @property
    def identity(self) -> bytes:
        """The `identity` of the on-chain Submit event: keccak256 of the concatenated node roots."""
        return keccak256(b"".join(node.root for node in self.nodes))

    @property
    def data_root(self) -> bytes:
        """The file root, folded from the nodes as storage nodes do (equals FileMerkleTree.root)."""
        root = self.nodes[-1].root
        for node in reversed(self.nodes[:-1]):
            root = keccak256(node.root + root)
        return root

    def as_abi(self, submitter: str) -> tuple:
        """The `Submission{SubmissionData data; address submitter}` tuple for a contract call."""
        return ((self.length, self.tags, [(n.root, n.height) for n in self.nodes]), submitter)

    def to_json(self) -> dict[str, object]:
        return {
            "length": self.length,
            "tags": "0x" + self.tags.hex(),
            "nodes": [{"root": "0x" + n.root.hex(), "height": n.height} for n in self.nodes],
        }


@dataclass
class FileMerkleTree:
    """The merkle tree of one file: segment roots, file root and the chunk leaves of the last segment.

    Build it with `from_bytes` or `from_path` (which streams the file in 16 MiB blocks)."""

    size: int
    segment_roots: bytes  # concatenated 32-byte roots, one per padded segment
    last_segment_leaves: bytes  # chunk leaves of the last segment (submission nodes below a segment)
    root: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.root = tree_root(self.segment_roots)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> "FileMerkleTree":
        return cls.from_stream(io.BytesIO(data), len(data))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], workers: int | None = None) -> "FileMerkleTree":
        with open(path, "rb") as f:
            return cls.from_stream(f, os.fstat(f.fileno()).st_size, workers)

    @classmethod
    def from_stream(cls, stream: BinaryIO, size: int, workers: int | None = None) -> "FileMerkleTree":
        """Hash `size` bytes read from `stream` (zero-padded to the flow's padded size), on `workers`
        threads (default: one per core, at most 4)."""
        workers = workers or _WORKERS
        chunks = num_chunks(size)
        if chunks == 0:
            raise EmptyFileError("an empty file has no 0G merkle root (0G rejects zero-length data)")
        padded_size = padded_chunks(chunks) * CHUNK_SIZE
        blocks = _padded_blocks(stream, size, padded_size)
        if padded_size <= SEGMENT_SIZE * _BLOCK_SEGMENTS or workers == 1:
            results = [_hash_block(block) for block in blocks]
        else:  # the C hashing releases the GIL: hash blocks on every core while the next one is read
            with ThreadPoolExecutor(workers) as pool:
                pending: deque[Future] = deque()
                results = []
                for block in blocks:
                    pending.append(pool.submit(_hash_block, block))
                    if len(pending) > workers:
                        results.append(pending.popleft().result())
                results.extend(f.result() for f in pending)
        return cls(size, b"".join(r[0] for r in results), results[-1][1])

    # -- derived values -----------------------------------------------------------------------------
    @property
    def num_segments(self) -> int:
        return len(self.segment_roots) // HASH_SIZE

    @property
    def padded_size(self) -> int:
        return padded_chunks(num_chunks(self.size)) * CHUNK_SIZE

    def segment_root(self, index: int) -> bytes:
        if not 0 <= index < self.num_segments:
            raise IndexError(f"segment {index} out of range (file has {self.num_segments})")
        return self.segment_roots[index * HASH_SIZE:(index + 1) * HASH_SIZE]

    def segment_proof(self, index: int) -> Proof:
        """Proof of segment `index` against the file root (what `zgs_uploadSegment` carries)."""
        return tree_proof(self.segment_roots, index)

    def submission(self, tags: bytes = b"") -> Submission:
        """The file's `SubmissionData`: its length, `tags` and the minimal power-of-two node split."""
        nodes = []
        offset = 0  # in chunks
        for height in node_heights(self.size):
            count = 1 << height
            if count >= SEGMENT_CHUNKS:
                first = offset // SEGMENT_CHUNKS
                root = tree_root(self.segment_roots[first * HASH_SIZE:(first + count // SEGMENT_CHUNKS) * HASH_SIZE])
            else:  # a node smaller than a segment lies inside the last segment
                start = offset % SEGMENT_CHUNKS
                root = tree_root(self.last_segment_leaves[start * HASH_SIZE:(start + count) * HASH_SIZE])
            nodes.append(SubmissionNode(root, height))
            offset += count
        return Submission(self.size, bytes(tags), tuple(nodes))


def segment_leaves(segment: bytes) -> bytes:
    """Chunk leaf hashes of one segment's data (zero-padded to whole chunks)."""
    if len(segment) % CHUNK_SIZE:
        segment = bytes(segment) + bytes(CHUNK_SIZE - len(segment) % CHUNK_SIZE)
    return hash_leaves(segment, CHUNK_SIZE)


def segment_root(segment: bytes) -> bytes:
    """Root of one segment's data, as the file tree uses it."""
    return tree_root(segment_leaves(segment))


def chunk_proof(segment: bytes, chunk_index: int, tree: FileMerkleTree) -> Proof:
    """Proof of chunk `chunk_index` (file-wide) against the file root: the proof inside its segment,
    then the segment's proof in the file tree. `segment` is that segment's (padded) data."""
    seg_index, in_segment = divmod(chunk_index, SEGMENT_CHUNKS)
    inner = tree_proof(segment_leaves(segment), in_segment)
    outer = tree.segment_proof(seg_index)
    if not outer.path:  # a one-segment file: the segment root is the file root
        return inner
    return Proof(inner.lemma[:-1] + outer.lemma[1:], inner.path + outer.path)


def _hash_block(block: bytes) -> tuple[bytes, bytes]:
    """Segment roots of one block of padded data, and the chunk leaves of its last segment."""
    roots = []
    leaves = b""
    full = len(block) // SEGMENT_SIZE * SEGMENT_SIZE
    if full:  # whole segments: reduce all of them level by level, ten C calls per block
        level = hash_leaves(block[:full], CHUNK_SIZE)
        leaves = level[-SEGMENT_CHUNKS * HASH_SIZE:]
        for _ in range(10):
            level = hash_pairs(level)
        roots.append(level)
    if full < len(block):  # the short last segment
        leaves = hash_leaves(block[full:], CHUNK_SIZE)
        roots.append(tree_root(leaves))
    return b"".join(roots), leaves


def _padded_blocks(stream: BinaryIO, size: int, padded_size: int) -> Iterator[bytes]:
    """Yield the file's bytes zero-padded to `padded_size`, in blocks of _BLOCK_SEGMENTS segments."""
    block_size = SEGMENT_SIZE * _BLOCK_SEGMENTS
    offset = 0
    while offset < padded_size:
        want = min(block_size, padded_size - offset)
        data = stream.read(min(want, max(size - offset, 0))) if offset < size else b""
        if offset + len(data) < min(size, offset + want):
            raise ValueError(f"file shrank while reading: expected {size} bytes")
        if len(data) < want:
            data += bytes(want - len(data))
        offset += want
        yield data
