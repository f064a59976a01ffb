"""BLS signatures over BN254 for deaios DA, bit-compatible with `contracts/da/libraries/BN254.sol` and 0G.

Keys: a secret scalar ``sk`` in [1, r); public keys ``sk*G1`` and ``sk*G2``; a signature on a 32-byte
digest is ``sk * hash_to_g1(digest)`` (G1). Signatures and G1 keys aggregate by addition, so an aggregate
signature of signers S verifies against sum(pk1 of S) and sum(pk2 of S).

Points are plain integer tuples, affine, with the point at infinity as ``None``:

* G1: ``(x, y)``
* G2: ``((x_re, x_im), (y_re, y_im))`` — the natural order. Two on-chain encodings exist (as in 0G):
  :func:`g2_eip197` (imaginary part first; the pairing precompile, ``CommitRootSubmission.aggPkG2``)
  and :func:`g2_signer_order` (real part first; ``IDASigners.SignerDetail.pkG2``).

Messages (0G's, byte for byte):

* proof of possession: ``keccak256(signer(20) ‖ uint256 chainId ‖ "0G_BN254_Pubkey_Registration")``
* epoch registration: ``keccak256(signer(20) ‖ uint64 epoch ‖ uint256 chainId)``
* blob: ``keccak256(dataRoot ‖ uint256 epoch ‖ uint256 quorumId ‖ uint256 C.x ‖ uint256 C.y)``

Arithmetic uses py_ecc's ``optimized_bn128`` (≈4 ms per G1 multiplication, ≈20 ms per G2 one);
:func:`verify` runs the pairing in Python (≈0.5 s); :func:`pairing_input` builds the same check for the
EVM's 0x08 precompile (an ``eth_call`` answers in milliseconds).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from py_ecc import optimized_bn128 as _bn
from py_ecc.fields import optimized_bn128_FQ as _FQ
from py_ecc.fields import optimized_bn128_FQ2 as _FQ2
from py_ecc.fields import optimized_bn128_FQ12 as _FQ12

from deaios._keccak import keccak256

P = _bn.field_modulus
R = _bn.curve_order
SQRT_EXP = (P + 1) // 4
POP_DOMAIN = b"0G_BN254_Pubkey_Registration"

G1Point = tuple[int, int]
G2Point = tuple[tuple[int, int], tuple[int, int]]

G1: G1Point = (1, 2)
G2: G2Point = (
    (10857046999023057135944570762232829481370756359578518086990519993285655852781,
     11559732032986387107991004021392285783925812861821192530917403151452391805634),
    (8495653923123431417604973247489272438418190587263600148770280649306958101930,
     4082367875863433681332203403145435568316851327593401208105741076214120093531),
)


class InvalidPoint(ValueError):
    """A point is not on its curve (or a coordinate is not below p)."""


# ---------------------------------------------------------------- conversions


def _to_g1(p: G1Point | None):
    if p is None:
        return _bn.Z1
    return (_FQ(p[0]), _FQ(p[1]), _FQ.one())


def _from_g1(q) -> G1Point | None:
    if _bn.is_inf(q):
        return None
    x, y = _bn.normalize(q)
    return (int(x), int(y))


def _to_g2(p: G2Point | None):
    if p is None:
        return _bn.Z2
    (xr, xi), (yr, yi) = p
    return (_FQ2([xr, xi]), _FQ2([yr, yi]), _FQ2.one())


def _from_g2(q) -> G2Point | None:
    if _bn.is_inf(q):
        return None
    x, y = _bn.normalize(q)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def is_on_curve_g1(p: G1Point | None) -> bool:
    """True for an affine point of y² = x³ + 3 with coordinates below p (not the point at infinity)."""
    if p is None:
        return False
    x, y = p
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - 3) % P == 0


def is_on_curve_g2(p: G2Point | None) -> bool:
    if p is None:
        return False
    if not all(0 <= c < P for pair in p for c in pair):
        return False
    return _bn.is_on_curve(_to_g2(p), _bn.b2)


def g1_add(*points: G1Point | None) -> G1Point | None:
    acc = _bn.Z1
    for p in points:
        acc = _bn.add(acc, _to_g1(p))
    return _from_g1(acc)


def g1_neg(p: G1Point | None) -> G1Point | None:
    return None if p is None else (p[0], (-p[1]) % P)


def g1_mul(p: G1Point | None, k: int) -> G1Point | None:
    return _from_g1(_bn.multiply(_to_g1(p), k % R))


def g2_add(*points: G2Point | None) -> G2Point | None:
    acc = _bn.Z2
    for p in points:
        acc = _bn.add(acc, _to_g2(p))
    return _from_g2(acc)


def g2_mul(p: G2Point | None, k: int) -> G2Point | None:
    return _from_g2(_bn.multiply(_to_g2(p), k % R))


def g2_neg(p: G2Point | None) -> G2Point | None:
    if p is None:
        return None
    (xr, xi), (yr, yi) = p
    return ((xr, xi), ((-yr) % P, (-yi) % P))


def g2_eip197(p: G2Point) -> tuple[list[int], list[int]]:
    """EIP-197 / Solidity ``G2Point`` order: ([x_im, x_re], [y_im, y_re])."""
    (xr, xi), (yr, yi) = p
    return ([xi, xr], [yi, yr])


def g2_signer_order(p: G2Point) -> tuple[list[int], list[int]]:
    """0G's ``SignerDetail.pkG2`` order: ([x_re, x_im], [y_re, y_im])."""
    (xr, xi), (yr, yi) = p
    return ([xr, xi], [yr, yi])


def g2_from_eip197(x: Iterable[int], y: Iterable[int]) -> G2Point:
    xi, xr = (int(v) for v in x)
    yi, yr = (int(v) for v in y)
    return ((xr, xi), (yr, yi))


def g2_from_signer_order(x: Iterable[int], y: Iterable[int]) -> G2Point:
    xr, xi = (int(v) for v in x)
    yr, yi = (int(v) for v in y)
    return ((xr, xi), (yr, yi))


# ---------------------------------------------------------------- hashing and messages


def hash_to_g1(digest: bytes) -> G1Point:
    """0G's try-and-increment: x = digest mod p; y = (x³+3)^((p+1)/4); x += 1 until y² = x³ + 3."""
    if len(digest) != 32:
        raise ValueError("hash_to_g1 takes a 32-byte digest")
    x = int.from_bytes(digest, "big") % P
    while True:
        beta = (x * x * x + 3) % P
        y = pow(beta, SQRT_EXP, P)
        if y * y % P == beta:
            return (x, y)
        x = (x + 1) % P


def _address_bytes(address: str | bytes) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x")) if isinstance(address, str) \
        else bytes(address)
    if len(raw) != 20:
        raise ValueError("an address has 20 bytes")
    return raw


def pop_digest(signer: str | bytes, chain_id: int) -> bytes:
    """The digest a signer signs as proof of possession (``DASigners.popDigest``)."""
    return keccak256(_address_bytes(signer) + chain_id.to_bytes(32, "big") + POP_DOMAIN)


def epoch_digest(signer: str | bytes, epoch: int, chain_id: int) -> bytes:
    """The digest a signer signs to register for ``epoch`` (``DASigners.epochDigest``)."""
    return keccak256(_address_bytes(signer) + epoch.to_bytes(8, "big") + chain_id.to_bytes(32, "big"))


def commit_digest(data_root: bytes, epoch: int, quorum_id: int, commitment: G1Point) -> bytes:
    """The digest the signers of a blob sign (``DAEntrance.commitDigest``)."""
    if len(data_root) != 32:
        raise ValueError("a data root has 32 bytes")
    return keccak256(data_root + b"".join(v.to_bytes(32, "big")
                                          for v in (epoch, quorum_id, commitment[0], commitment[1])))


# ---------------------------------------------------------------- keys and signatures


@dataclass(frozen=True)
class BLSKey:
    """A BN254 BLS key pair."""

    sk: int = field(repr=False)
    pk_g1: G1Point
    pk_g2: G2Point

    @classmethod
    def from_secret(cls, sk: int) -> BLSKey:
        if not 0 < sk < R:
            raise ValueError("a secret key is in [1, r)")
        return cls(sk, g1_mul(G1, sk), g2_mul(G2, sk))  # type: ignore[arg-type]

    @classmethod
    def generate(cls, seed: bytes | None = None) -> BLSKey:
        """A fresh key (from ``secrets``), or a deterministic one derived from ``seed``."""
        if seed is None:
            return cls.from_secret(secrets.randbelow(R - 1) + 1)
        return cls.from_secret(int.from_bytes(keccak256(b"deaios-da-bls" + seed), "big") % (R - 1) + 1)

    def sign(self, digest: bytes) -> G1Point:
        return sign(self.sk, digest)

    def pop(self, signer: str | bytes, chain_id: int) -> G1Point:
        """Proof of possession for registering as ``signer`` on ``chain_id``."""
        return sign(self.sk, pop_digest(signer, chain_id))


def sign(sk: int, digest: bytes) -> G1Point:
    return g1_mul(hash_to_g1(digest), sk)  # type: ignore[return-value]


def aggregate_g1(points: Iterable[G1Point]) -> G1Point | None:
    return g1_add(*points)


def aggregate_g2(points: Iterable[G2Point]) -> G2Point | None:
    return g2_add(*points)


def gamma(h: G1Point, sig: G1Point, pk1: G1Point, pk2: G2Point) -> int:
    """The verifier's random-looking combiner, as ``BN254.verifyBLS`` computes it."""
    (x0, x1), (y0, y1) = g2_eip197(pk2)
    words = (sig[0], sig[1], pk1[0], pk1[1], x0, x1, y0, y1, h[0], h[1])
    return int.from_bytes(keccak256(b"".join(v.to_bytes(32, "big") for v in words)), "big") % R


def _check_terms(digest: bytes, sig: G1Point, pk1: G1Point, pk2: G2Point):
    """(a1, b1, a2, b2) with e(a1, b1) * e(a2, b2) == 1 iff the signature and keys are consistent."""
    for p in (sig, pk1):
        if not is_on_curve_g1(p):
            raise InvalidPoint(f"G1 point not on the curve: {p}")
    if not is_on_curve_g2(pk2):
        raise InvalidPoint("G2 point not on the twist")
    h = hash_to_g1(digest)
    g = gamma(h, sig, pk1, pk2)
    a1 = g1_add(sig, g1_mul(pk1, g))
    a2 = g1_add(h, g1_mul(G1, g))
    return a1, g2_neg(G2), a2, pk2


def verify(digest: bytes, sig: G1Point, pk1: G1Point, pk2: G2Point) -> bool:
    """The contract's check in Python: sig = sk·H(digest), pk1 = sk·G1, pk2 = sk·G2 for one sk."""
    try:
        a1, b1, a2, b2 = _check_terms(digest, sig, pk1, pk2)
    except InvalidPoint:
        return False
    f = _FQ12.one()
    for a, b in ((a1, b1), (a2, b2)):
        if a is None or b is None:
            continue
        f = f * _bn.pairing(_to_g2(b), _to_g1(a), final_exponentiate=False)
    return _bn.final_exponentiate(f) == _FQ12.one()


def pairing_input(digest: bytes, sig: G1Point, pk1: G1Point, pk2: G2Point) -> bytes:
    """Input of the 0x08 precompile for the same check (answers 1 iff :func:`verify` would be True)."""
    a1, b1, a2, b2 = _check_terms(digest, sig, pk1, pk2)
    out = b""
    for a, b in ((a1, b1), (a2, b2)):
        ax, ay = a if a is not None else (0, 0)
        (bx0, bx1), (by0, by1) = g2_eip197(b)
        out += b"".join(v.to_bytes(32, "big") for v in (ax, ay, bx0, bx1, by0, by1))
    return out


PAIRING_PRECOMPILE = "0x" + "00" * 19 + "08"


def verify_with(eth_call: Callable[[str, bytes], bytes], digest: bytes, sig: G1Point, pk1: G1Point,
                pk2: G2Point) -> bool:
    """:func:`verify` through a chain's pairing precompile; ``eth_call(to, data)`` returns the output."""
    try:
        data = pairing_input(digest, sig, pk1, pk2)
    except InvalidPoint:
        return False
    try:
        out = eth_call(PAIRING_PRECOMPILE, data)
    except Exception:  # noqa: BLE001 - a precompile rejecting its input is a failed check
        return False
    return len(out) == 32 and int.from_bytes(out, "big") == 1


# ---------------------------------------------------------------- quorum bitmaps


def quorum_bitmap(rows: Iterable[int], total: int) -> bytes:
    """0G's quorum bitmap: bit i = byte[i // 8] & (1 << (i % 8)); ceil(total / 8) bytes."""
    out = bytearray((total + 7) // 8)
    for i in rows:
        if not 0 <= i < total:
            raise ValueError(f"row {i} outside [0, {total})")
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def bitmap_rows(bitmap: bytes, total: int) -> list[int]:
    return [i for i in range(total) if bitmap[i // 8] >> (i % 8) & 1]
