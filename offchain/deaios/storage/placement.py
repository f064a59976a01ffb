"""Authenticated, verifiable share placement (audit C1): who may put shares on a storage node, and how a
node checks what it is given before it believes it.

**Who** — every `PUT /deaios/v1/roots|shares/<root>` carries the header `X-Deaios-Placement:
<expiry>.<0x signature>`, a secp256k1 signature of

    keccak256("deaios/storage/placement/v1" ‖ uint256 chainId ‖ address flow ‖ root ‖ uint32 node ‖ uint64 expiry)

by either a *submitter* of that root (the `sender` of one of its `Submit` events: the uploader paid for it)
or a *peer* (another storage node of the network, placing shares of a file it encoded; its address is what
its configured URL reports at `GET /deaios/v1/identity`). The token names the receiving node's index and
expires (`TOKEN_TTL`), so it cannot be replayed to another node or forever. Anyone else gets 401/403.

**What** — a node never takes shares on trust:
* a *data share* (share number s < k: bytes [s·⌈L/k⌉, (s+1)·⌈L/k⌉) of the segment, zero-padded) arrives with a
  proof: the bytes that complete its first and last 256-byte chunks, and the `merkle.range_siblings` of its
  chunk range inside the segment tree. The node hashes the chunks, rebuilds the segment root and compares
  it with the segment root it holds (itself checked against the file root): a forged data share is refused
  (400) before anything is stored;
* a *parity share* cannot be checked alone; it is stored unverified, and before the file turns FINALIZED
  the node rebuilds the segment from k other shares, checks it against its segment root, re-encodes its
  own share and compares (replacing it if it was wrong; `StorageService.verify`).
Shares are write-once (`NodeStore.write_many`): a second PUT of a stored share changes nothing.

The body of `PUT /shares/<root>?first=F&count=C` is, for each segment F..F+C−1 in order, the node's share
followed (data shares only) by its proof: prefix bytes ‖ suffix bytes ‖ sibling hashes, all of sizes that
follow from the file size (`placement_sizes`), so no lengths are sent.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError

from deaios.storage.erasure import ErasureCode, segment_lengths
from deaios.storage.merkle import (
    CHUNK_SIZE, HASH_SIZE, ProofError, keccak256, range_root, range_sibling_count, range_siblings, segment_leaves,
    tree_levels,
)

PLACEMENT_HEADER = "X-Deaios-Placement"
DOMAIN = b"deaios/storage/placement/v1"
TOKEN_TTL = 3600  # seconds a placement token is valid
NODE_KEY_FILE = "node.key"


class PlacementError(ValueError):
    """A placement token is missing, malformed, expired or signed by the wrong key."""


def placement_digest(chain_id: int, flow: str, root: bytes, node: int, expiry: int) -> bytes:
    return keccak256(DOMAIN + chain_id.to_bytes(32, "big") + bytes.fromhex(flow.removeprefix("0x"))
                     + root + node.to_bytes(4, "big") + expiry.to_bytes(8, "big"))


class PlacementSigner:
    """Signs placement tokens with one key (an uploader's account, or a storage node's own key)."""

    def __init__(self, private_key: str | bytes, chain_id: int, flow: str) -> None:
        raw = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
        self.key = keys.PrivateKey(raw)
        self.address = self.key.public_key.to_checksum_address()
        self.chain_id, self.flow = chain_id, flow
        self._tokens: dict[tuple[bytes, int], tuple[int, str]] = {}

    def token(self, root: bytes, node: int) -> str:
        """The header value authorizing placement of `root` on node `node` (reused until near expiry)."""
        now = int(time.time())
        cached = self._tokens.get((root, node))
        if cached is not None and cached[0] - now > TOKEN_TTL // 4:
            return cached[1]
        expiry = now + TOKEN_TTL
        signature = self.key.sign_msg_hash(placement_digest(self.chain_id, self.flow, root, node, expiry))
        value = f"{expiry}.0x{signature.to_bytes().hex()}"
        if len(self._tokens) > 4096:
            self._tokens.clear()
        self._tokens[(root, node)] = (expiry, value)
        return value

    def headers(self, root: bytes, node: int) -> dict[str, str]:
        return {PLACEMENT_HEADER: self.token(root, node)}


def token_signer(value: str | None, chain_id: int, flow: str, root: bytes, node: int) -> str:
    """The checksummed address that signed placement token `value` for (root, node); PlacementError if it
    is missing, malformed or expired."""
    if not value:
        raise PlacementError(f"missing {PLACEMENT_HEADER} header: placing shares needs the submitter's (or a "
                             "peer node's) signature")
    expiry_text, _, signature_hex = value.partition(".")
    try:
        expiry = int(expiry_text)
        signature = keys.Signature(bytes.fromhex(signature_hex.removeprefix("0x")))
    except (ValueError, BadSignature, ValidationError):
        raise PlacementError(f"malformed {PLACEMENT_HEADER} header") from None
    now = int(time.time())
    if not now <= expiry <= now + 2 * TOKEN_TTL:
        raise PlacementError(f"{PLACEMENT_HEADER} token expired (or expires too far ahead)")
    if not 0 <= expiry < 1 << 64:
        raise PlacementError(f"malformed {PLACEMENT_HEADER} header")
    try:
        public = signature.recover_public_key_from_msg_hash(placement_digest(chain_id, flow, root, node, expiry))
    except (BadSignature, ValidationError, ValueError):
        raise PlacementError(f"{PLACEMENT_HEADER} signature does not recover") from None
    return public.to_checksum_address()


def node_key(data_dir: Path) -> bytes:
    """A storage node's own secp256k1 key: DATA/node.key (created on first start, mode 0600). It signs the
    node's placements on peers and keys the MACs of its verified shares."""
    path = data_dir / NODE_KEY_FILE
    try:
        raw = bytes.fromhex(path.read_text().strip().removeprefix("0x"))
        if len(raw) == 32:
            return raw
    except (OSError, ValueError):
        pass
    raw = secrets.token_bytes(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("0x" + raw.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return raw


# -- data share proofs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShareSpan:
    """Where data share `number` of a segment of `length` bytes lies, and the sizes of its proof."""

    length: int  # the segment's (flow-padded) length
    size: int  # the share's size, ⌈length / k⌉
    start: int  # first segment byte it carries
    end: int  # one past the last (≤ length; the rest of the share is zero padding)
    first_chunk: int
    last_chunk: int  # inclusive; first_chunk > last_chunk when the share is all padding
    prefix: int  # bytes of the first chunk before `start`
    suffix: int  # bytes of the last chunk after `end`
    siblings: int

    @classmethod
    def of(cls, code: ErasureCode, length: int, number: int) -> "ShareSpan":
        size = code.share_size(length)
        start = min(number * size, length)
        end = min(start + size, length)
        if start >= end:
            return cls(length, size, start, start, 1, 0, 0, 0, 0)
        first, last = start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
        return cls(length, size, start, end, first, last, start - first * CHUNK_SIZE, (last + 1) * CHUNK_SIZE - end,
                   range_sibling_count(length // CHUNK_SIZE, first, last))

    @property
    def proof_size(self) -> int:
        return self.prefix + self.suffix + self.siblings * HASH_SIZE


def share_proof(segment: bytes, levels: list[bytes], span: ShareSpan) -> bytes:
    """The proof of one data share: prefix ‖ suffix ‖ siblings (`levels`: the segment's tree_levels)."""
    if span.first_chunk > span.last_chunk:
        return b""
    prefix = bytes(segment[span.first_chunk * CHUNK_SIZE:span.start])
    suffix = bytes(segment[span.end:(span.last_chunk + 1) * CHUNK_SIZE])
    return prefix + suffix + b"".join(range_siblings(levels, span.first_chunk, span.last_chunk))


def check_data_share(share: bytes, proof: bytes, segment_root: bytes, span: ShareSpan) -> bool:
    """Whether `share` is exactly the data share `span` describes of the segment with `segment_root`."""
    if len(share) != span.size or len(proof) != span.proof_size:
        return False
    used = span.end - span.start
    if any(share[used:]):  # padding past the segment's end must be zeros
        return False
    if span.first_chunk > span.last_chunk:
        return True
    chunks = proof[:span.prefix] + bytes(share[:used]) + proof[span.prefix:span.prefix + span.suffix]
    hashes = proof[span.prefix + span.suffix:]
    siblings = [hashes[i:i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
    try:
        return range_root(segment_leaves(chunks), span.first_chunk, span.length // CHUNK_SIZE, siblings) \
            == segment_root
    except ProofError:
        return False


def encode_for_placement(code: ErasureCode, segment: bytes) -> list[bytes]:
    """Every share of one segment as a placement body carries it: share number s → share (‖ proof if s < k)."""
    shares = code.encode(segment)
    levels = tree_levels(segment_leaves(segment))
    out = []
    for number, share in enumerate(shares):
        if number < code.k:
            out.append(bytes(share) + share_proof(segment, levels, ShareSpan.of(code, len(segment), number)))
        else:
            out.append(share)  # parity: checked by decoding on the node
    return out


def placement_sizes(code: ErasureCode, file_size: int, first: int, count: int, node: int) -> list[tuple[int, int]]:
    """(share size, proof size) of node `node`'s share of each segment first..first+count−1."""
    lengths = segment_lengths(file_size)
    out = []
    for i in range(first, first + count):
        number = code.share_of(i, node)
        if number < code.k:
            span = ShareSpan.of(code, lengths[i], number)
            out.append((span.size, span.proof_size))
        else:
            out.append((code.share_size(lengths[i]), 0))
    return out


def split_placement(body: bytes, sizes: list[tuple[int, int]]) -> list[tuple[bytes, bytes]]:
    """A PUT /shares body cut into (share, proof) pairs; ValueError if its length is wrong."""
    expected = sum(a + b for a, b in sizes)
    if len(body) != expected:
        raise ValueError(f"expected {expected} bytes of shares and proofs, got {len(body)}")
    out, pos = [], 0
    view = memoryview(body)
    for share_size, proof_size in sizes:
        out.append((view[pos:pos + share_size], bytes(view[pos + share_size:pos + share_size + proof_size])))
        pos += share_size + proof_size
    return out
