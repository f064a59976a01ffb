"""Arbitrum Nitro certificates for deaios DA, and the proofs Nitro's one-step prover asks a DA provider for.

**Sequencer message.** Nitro posts ``header (40 bytes: 5 × uint64 BE) ‖ certificate`` to its inbox; the first byte
of the certificate says which DA provider reads it.

**deaios certificate** (Nitro's external-DA header 0x01, `DACertificateMessageHeaderFlag`; 8 + 48·n bytes)::

    0x01 ‖ 0x47 (provider: 0G DA) ‖ 0x01 (version) ‖ uint32 pieceSize ‖ uint8 n ‖ n × (dataRoot ‖ uint64 epoch ‖ uint64 quorumId)

A batch is cut into n ≤ 255 pieces of `pieceSize` bytes (the last one shorter, none empty), each dispersed as one
DA blob; the payload is the pieces in order. The certificate is **valid** iff it parses and every piece has a
verified commitment on chain (``DAEntrance.commitmentExists`` — the quorum's aggregate BLS signature over the
blob was checked on chain, so ≥ 2/3 of its rows store it) and every piece's length (bound by its dataRoot) is
`pieceSize`, except the last, which is 1…`pieceSize`.

**0G's Nitro fork** (read only): ``0x0c ‖ RLP([[dataRoot, epoch, quorumId], …])``, the pieces in order.

**Preimages** (what a validator's replay reads): keccak256(certificate) → payload, type 3 (DACertificate), as
Nitro's reference provider; for 0x0c certificates also sha256(piece) → piece, type 1 (Sha2_256), as 0G's fork.

**Read-preimage proof** (`read_preimage_proof`, for 0x01 certificates): the payload bytes [offset, offset+32),
proven against the certificate alone. For each piece the window touches: its blob header (length, KZG
commitments, which hash to its dataRoot) and, for each 31-byte field element the window touches, a KZG opening
(y, π) at the element's evaluation point z = ω^bitrev(e) — exactly the input of the EIP-4844 point-evaluation
precompile (0x0a). `verify_read_preimage_proof` checks it all and returns the bytes; an on-chain validator would
do the same with keccak and 0x0a. It proves *what the bytes are* given the certificate; that the certificate is
valid (the data is available) is the validity proof's claim, checked against `DAEntrance`.

Proof layout (version 1)::

    0x01 ‖ uint8 sections ‖ sections × ( uint8 piece ‖ uint64 length ‖ uint32 k ‖ k × 48-byte commitment ‖
                                          uint8 m ‖ m × (uint16 ckzgBlob ‖ uint16 element ‖ y (32) ‖ π (48)) )

**Validity proof** (`validity_proof`): ``valid (1 byte: 1 or 0) ‖ version 0x01``, as Nitro's reference provider:
the claim that every piece is verified on `DAEntrance` (which an on-chain validator on the same chain re-checks
with ``commitmentExists``). A malformed certificate is reported invalid, not as an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import rlp

from deaios._keccak import keccak256
from deaios.da.blobref import BlobRef

SEQUENCER_HEADER_BYTES = 40
DA_CERTIFICATE_HEADER = 0x01  # Nitro's DACertificateMessageHeaderFlag
ZG_FORK_HEADER = 0x0C  # 0G's Nitro fork (ZgDAMessageHeaderFlag)
PROVIDER_TYPE = 0x47  # 0G DA (the byte 0G's OP DA server uses too)
VERSION = 1
MAX_PIECES = 255
_ENTRY = 32 + 8 + 8
_FIXED = 8

# KZG evaluation points: the 4096th roots of unity of BLS12-381's scalar field in bit-reversed order (EIP-4844)
BLS_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
PRIMITIVE_ROOT = 7
ELEMENTS = 4096
ELEMENT_PAYLOAD = 31


class CertificateError(ValueError):
    """Not a certificate this provider can read (Nitro treats the batch as empty)."""


class ProofError(ValueError):
    """A read-preimage proof that does not verify."""


@dataclass(frozen=True)
class Certificate:
    """A batch as DA blobs: `refs` in payload order; `piece_size` = bytes per blob but the last (0x01 only)."""

    refs: tuple[BlobRef, ...]
    piece_size: int = 0
    header: int = DA_CERTIFICATE_HEADER

    def to_bytes(self) -> bytes:
        if self.header == ZG_FORK_HEADER:
            return bytes([ZG_FORK_HEADER]) + rlp.encode([[r.data_root, r.epoch, r.quorum_id] for r in self.refs])
        if not 1 <= len(self.refs) <= MAX_PIECES or not 0 < self.piece_size < 1 << 32:
            raise CertificateError(f"a certificate holds 1..{MAX_PIECES} pieces of 1..2^32-1 bytes")
        return bytes([DA_CERTIFICATE_HEADER, PROVIDER_TYPE, VERSION]) + self.piece_size.to_bytes(4, "big") \
            + bytes([len(self.refs)]) + b"".join(r.data_root + r.epoch.to_bytes(8, "big")
                                                  + r.quorum_id.to_bytes(8, "big") for r in self.refs)

    @property
    def hash(self) -> bytes:
        """keccak256(certificate): the key of the payload preimage."""
        return keccak256(self.to_bytes())

    @classmethod
    def parse(cls, raw: bytes) -> Certificate:
        if not raw:
            raise CertificateError("empty certificate")
        if raw[0] == ZG_FORK_HEADER:
            return cls._parse_zg(raw[1:])
        if raw[0] != DA_CERTIFICATE_HEADER:
            raise CertificateError(f"header byte 0x{raw[0]:02x}: this provider reads 0x01 and 0x0c certificates")
        if len(raw) < _FIXED or raw[1] != PROVIDER_TYPE or raw[2] != VERSION:
            raise CertificateError("not a deaios certificate (provider 0x47, version 1)")
        piece_size, n = int.from_bytes(raw[3:7], "big"), raw[7]
        if n == 0 or piece_size == 0 or len(raw) != _FIXED + n * _ENTRY:
            raise CertificateError(f"malformed certificate: {n} pieces of {piece_size} bytes in {len(raw)} bytes")
        refs = tuple(BlobRef(raw[o:o + 32], int.from_bytes(raw[o + 32:o + 40], "big"),
                             int.from_bytes(raw[o + 40:o + 48], "big"))
                     for o in range(_FIXED, len(raw), _ENTRY))
        return cls(refs, piece_size)

    @classmethod
    def _parse_zg(cls, body: bytes) -> Certificate:
        try:
            items = rlp.decode(body, strict=True)
            refs = tuple(BlobRef(bytes(root), _rlp_uint(epoch), _rlp_uint(quorum)) for root, epoch, quorum in items)
        except (rlp.exceptions.DecodingError, TypeError, ValueError) as exc:
            raise CertificateError(f"malformed 0G (0x0c) certificate: {exc}") from None
        if not refs or any(len(r.data_root) != 32 for r in refs):
            raise CertificateError("malformed 0G (0x0c) certificate: no pieces, or a data root not of 32 bytes")
        return cls(refs, 0, ZG_FORK_HEADER)

    def check_lengths(self, lengths: list[int]) -> None:
        """The pieces' real lengths must match the certificate (0x01: all pieceSize but the last)."""
        if any(n <= 0 for n in lengths):
            raise CertificateError("certificate validation failed: an empty piece")
        if self.header == DA_CERTIFICATE_HEADER and (any(n != self.piece_size for n in lengths[:-1])
                                                     or lengths[-1] > self.piece_size):
            raise CertificateError(f"certificate validation failed: piece lengths {lengths} do not match the "
                                   f"piece size {self.piece_size}")


def _rlp_uint(value: bytes) -> int:
    if not isinstance(value, bytes) or (value[:1] == b"\0"):
        raise ValueError("not a canonical RLP integer")
    return int.from_bytes(value, "big")


def split(message: bytes, piece_size: int) -> list[bytes]:
    return [message[i:i + piece_size] for i in range(0, len(message), piece_size)]


def stream_commitment(data: bytes, *fields: int) -> bytes:
    """Nitro's chunked-store `PayloadCommiter` "signature": keccak256(data ‖ uint64 BE fields…)."""
    return keccak256(data + b"".join(f.to_bytes(8, "big") for f in fields))


def sequencer_message(certificate: bytes, min_timestamp: int = 0, max_timestamp: int = 0, min_block: int = 0,
                      max_block: int = 0, after_delayed: int = 0) -> bytes:
    """What Nitro posts to its inbox: the 40-byte header then the certificate."""
    return b"".join(v.to_bytes(8, "big") for v in (min_timestamp, max_timestamp, min_block, max_block,
                                                   after_delayed)) + certificate


def certificate_of(sequencer_msg: bytes) -> bytes:
    if len(sequencer_msg) <= SEQUENCER_HEADER_BYTES:
        raise CertificateError(f"sequencer message of {len(sequencer_msg)} bytes: no certificate after the 40-byte "
                               "header")
    return sequencer_msg[SEQUENCER_HEADER_BYTES:]


def preimages(cert: Certificate, raw_cert: bytes, pieces: list[bytes]) -> dict[int, dict[bytes, bytes]]:
    """Nitro's PreimagesMap (type → hash → preimage) for a recovered batch."""
    out: dict[int, dict[bytes, bytes]] = {3: {keccak256(raw_cert): b"".join(pieces)}}
    if cert.header == ZG_FORK_HEADER:
        out[1] = {hashlib.sha256(p).digest(): p for p in pieces}
    return out


# -- read-preimage proofs -----------------------------------------------------------------------------------
@cache
def evaluation_points() -> tuple[bytes, ...]:
    """z of field element e of a ckzg blob (32 bytes BE): the roots of unity in bit-reversed order."""
    omega = pow(PRIMITIVE_ROOT, (BLS_MODULUS - 1) // ELEMENTS, BLS_MODULUS)
    bits = ELEMENTS.bit_length() - 1
    return tuple(pow(omega, int(f"{e:0{bits}b}"[::-1], 2), BLS_MODULUS).to_bytes(32, "big") for e in range(ELEMENTS))


def _touched(offset: int, length: int, piece_size: int, pieces: int, last_len: int | None) \
        -> list[tuple[int, int, int]]:
    """(piece, start, end) byte ranges inside pieces of the window [offset, offset+length)."""
    out = []
    pos, end = offset, offset + length
    while pos < end:
        piece, inner = divmod(pos, piece_size)
        if piece >= pieces:
            break
        stop = min(end - piece * piece_size, piece_size)
        if piece == pieces - 1 and last_len is not None:
            stop = min(stop, last_len)
            if inner >= stop:
                break
        out.append((piece, inner, stop))
        pos = piece * piece_size + piece_size
    return out


def read_preimage_proof(cert: Certificate, offset: int, pieces: list[bytes]) -> bytes:
    """The proof of payload bytes [offset, offset+32) (see the module docstring); `pieces` = the batch's blobs."""
    import ckzg

    from deaios.da.encoding import BLOB_PAYLOAD, pack, trusted_setup

    if cert.header != DA_CERTIFICATE_HEADER:
        raise CertificateError("proofs are made for 0x01 certificates only (0G's 0x0c format has no proofs)")
    ts = trusted_setup()
    points = evaluation_points()
    ranges: dict[int, tuple[int, int] | None] = {
        piece: (start, stop) for piece, start, stop in _touched(offset, 32, cert.piece_size, len(cert.refs),
                                                                len(pieces[-1]))}
    last = len(cert.refs) - 1
    if offset + 32 > cert.piece_size * last:
        ranges.setdefault(last, None)  # the verifier must learn where the payload ends
    sections = []
    for piece, window in sorted(ranges.items()):
        data = pieces[piece]
        blobs = pack(data)
        commitments = [bytes(ckzg.blob_to_kzg_commitment(b, ts)) for b in blobs]
        openings = []
        if window is not None:
            start, stop = window
            for e_global in range(start // ELEMENT_PAYLOAD, (stop - 1) // ELEMENT_PAYLOAD + 1):
                j, e = divmod(e_global, BLOB_PAYLOAD // ELEMENT_PAYLOAD)
                proof, y = ckzg.compute_kzg_proof(blobs[j], points[e], ts)
                openings.append(j.to_bytes(2, "big") + e.to_bytes(2, "big") + bytes(y) + bytes(proof))
        sections.append(bytes([piece]) + len(data).to_bytes(8, "big") + len(blobs).to_bytes(4, "big")
                        + b"".join(commitments) + bytes([len(openings)]) + b"".join(openings))
    return bytes([VERSION, len(sections)]) + b"".join(sections)


def verify_read_preimage_proof(cert: Certificate, offset: int, proof: bytes) -> bytes:
    """Check a read-preimage proof against the certificate; returns payload bytes [offset, offset+32) (fewer at
    the end of the payload). Raises ProofError."""
    import ckzg

    from deaios.da.encoding import BLOB_PAYLOAD, DOMAIN, blobs_needed, trusted_setup

    if cert.header != DA_CERTIFICATE_HEADER:
        raise ProofError("proofs are made for 0x01 certificates only")
    ts = trusted_setup()
    points = evaluation_points()
    try:
        if proof[0] != VERSION:
            raise ProofError(f"proof version {proof[0]}")
        pos, sections, proven = 2, [], {}
        for _ in range(proof[1]):
            piece = proof[pos]
            length = int.from_bytes(proof[pos + 1:pos + 9], "big")
            k = int.from_bytes(proof[pos + 9:pos + 13], "big")
            pos += 13
            commitments = [proof[pos + 48 * i:pos + 48 * (i + 1)] for i in range(k)]
            pos += 48 * k
            if piece >= len(cert.refs) or k != blobs_needed(length) or any(len(c) != 48 for c in commitments):
                raise ProofError("malformed proof section")
            root = keccak256(DOMAIN + length.to_bytes(8, "big") + k.to_bytes(4, "big") + b"".join(commitments))
            if root != cert.refs[piece].data_root:
                raise ProofError(f"piece {piece}: the header does not hash to the certificate's data root")
            if length > cert.piece_size or (piece < len(cert.refs) - 1 and length != cert.piece_size):
                raise ProofError(f"piece {piece}: length {length} does not match the piece size {cert.piece_size}")
            for _ in range(proof[pos]):
                o = pos + 1
                j, e = int.from_bytes(proof[o:o + 2], "big"), int.from_bytes(proof[o + 2:o + 4], "big")
                y, pi = proof[o + 4:o + 36], proof[o + 36:o + 84]
                if j >= k or e >= ELEMENTS or len(pi) != 48 or y[0] != 0:
                    raise ProofError("malformed opening")
                if not ckzg.verify_kzg_proof(commitments[j], points[e], y, pi, ts):
                    raise ProofError(f"piece {piece}, ckzg blob {j}, element {e}: the KZG opening does not verify")
                proven[(piece, j * (BLOB_PAYLOAD // ELEMENT_PAYLOAD) + e)] = y[1:]
                pos += 84
            pos += 1
            sections.append((piece, length))
    except (IndexError, ValueError) as exc:
        if isinstance(exc, ProofError):
            raise
        raise ProofError(f"malformed proof: {exc}") from None
    if pos != len(proof):
        raise ProofError("trailing bytes in the proof")
    last_len = dict(sections).get(len(cert.refs) - 1)
    if last_len is None and offset + 32 > cert.piece_size * (len(cert.refs) - 1):
        # the window reaches the last piece: its length (where the payload ends) must be proven
        raise ProofError("the proof lacks the last piece's header")
    out = bytearray()
    for piece, start, stop in _touched(offset, 32, cert.piece_size, len(cert.refs), last_len):
        for i in range(start, stop):
            element = proven.get((piece, i // ELEMENT_PAYLOAD))
            if element is None:
                raise ProofError(f"no opening for payload byte {piece * cert.piece_size + i}")
            out.append(element[i % ELEMENT_PAYLOAD])
    return bytes(out)
