"""deaios.da.bls (BN254 BLS in Python) and deaios.da.quorums (the quorum model), without a chain."""

from __future__ import annotations

import random

import pytest
from deaios.da import bls
from deaios.da.quorums import Registration, form_quorums, order_key
from hypothesis import given, settings
from hypothesis import strategies as st


def test_constants_and_generators():
    assert bls.P == 21888242871839275222246405745257275088696311157297823662689037894645226208583
    assert bls.R == 21888242871839275222246405745257275088548364400416034343698204186575808495617
    assert bls.SQRT_EXP == 0xc19139cb84c680a6e14116da060561765e05aa45a1c72a34f082305b61f3f52
    assert bls.is_on_curve_g1(bls.G1) and bls.is_on_curve_g2(bls.G2)
    assert bls.g1_mul(bls.G1, bls.R) is None and bls.g2_mul(bls.G2, bls.R) is None


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_hash_to_g1_is_try_and_increment(digest):
    x, y = bls.hash_to_g1(digest)
    assert bls.is_on_curve_g1((x, y))
    x0 = int.from_bytes(digest, "big") % bls.P
    assert (x - x0) % bls.P < 64  # the first abscissa at or after digest mod p
    for k in range((x - x0) % bls.P):  # every skipped x has no square root of x^3 + 3
        beta = ((x0 + k) ** 3 + 3) % bls.P
        assert pow(beta, (bls.P - 1) // 2, bls.P) != 1
    assert y == pow((x ** 3 + 3) % bls.P, bls.SQRT_EXP, bls.P)  # no sign normalization (0G)


def test_hash_to_g1_known_vector():
    # digest 0: x = 0 -> 3 is not a square; x = 1 -> 4, whose root 4^((p+1)/4) is 2: the generator.
    assert bls.hash_to_g1(bytes(32)) == bls.G1
    with pytest.raises(ValueError):
        bls.hash_to_g1(b"short")


def test_sign_verify_aggregate():
    keys = [bls.BLSKey.generate(b"k%d" % i) for i in range(3)]
    digest = bls.commit_digest(b"\x07" * 32, 4, 1, bls.hash_to_g1(b"\x01" * 32))
    sigs = [k.sign(digest) for k in keys]
    assert bls.verify(digest, sigs[0], keys[0].pk_g1, keys[0].pk_g2)
    agg_sig = bls.aggregate_g1(sigs)
    agg1 = bls.aggregate_g1(k.pk_g1 for k in keys)
    agg2 = bls.aggregate_g2(k.pk_g2 for k in keys)
    assert bls.verify(digest, agg_sig, agg1, agg2)
    assert not bls.verify(digest, agg_sig, agg1, bls.aggregate_g2(k.pk_g2 for k in keys[:2]))  # key mismatch
    assert not bls.verify(digest, bls.aggregate_g1(sigs[:2]), agg1, agg2)  # a missing signature
    other = bls.commit_digest(b"\x08" * 32, 4, 1, bls.hash_to_g1(b"\x01" * 32))
    assert not bls.verify(other, agg_sig, agg1, agg2)  # another message
    assert not bls.verify(digest, (1, 3), agg1, agg2)  # off the curve


def test_keys_are_deterministic_from_seed_and_random_otherwise():
    assert bls.BLSKey.generate(b"x") == bls.BLSKey.generate(b"x")
    assert bls.BLSKey.generate() != bls.BLSKey.generate()
    with pytest.raises(ValueError):
        bls.BLSKey.from_secret(0)
    with pytest.raises(ValueError):
        bls.BLSKey.from_secret(bls.R)


def test_messages_are_0g_layouts():
    signer = "0x" + "ab" * 20
    assert bls.pop_digest(signer, 16602) == bls.keccak256(
        bytes.fromhex("ab" * 20) + (16602).to_bytes(32, "big") + b"0G_BN254_Pubkey_Registration")
    assert bls.epoch_digest(signer, 7, 31337) == bls.keccak256(
        bytes.fromhex("ab" * 20) + (7).to_bytes(8, "big") + (31337).to_bytes(32, "big"))
    c = bls.hash_to_g1(b"\x02" * 32)
    assert bls.commit_digest(b"\x01" * 32, 2, 3, c) == bls.keccak256(
        b"\x01" * 32 + b"".join(v.to_bytes(32, "big") for v in (2, 3, c[0], c[1])))


def test_g2_encodings_roundtrip():
    pk2 = bls.BLSKey.generate(b"g2").pk_g2
    x, y = bls.g2_eip197(pk2)
    assert bls.g2_from_eip197(x, y) == pk2 and x == [pk2[0][1], pk2[0][0]]
    x, y = bls.g2_signer_order(pk2)
    assert bls.g2_from_signer_order(x, y) == pk2 and x == [pk2[0][0], pk2[0][1]]


def test_quorum_bitmap_is_lsb_first():
    assert bls.quorum_bitmap([0, 9, 15], 16) == bytes([0b00000001, 0b10000010])
    assert bls.quorum_bitmap([], 9) == bytes(2)
    assert bls.bitmap_rows(bls.quorum_bitmap([3, 4, 8], 9), 9) == [3, 4, 8]
    with pytest.raises(ValueError):
        bls.quorum_bitmap([9], 9)


# ---------------------------------------------------------------- quorum model


def _regs(votes: list[int], rng: random.Random) -> list[Registration]:
    return [Registration("0x%040x" % rng.getrandbits(160), v) for v in votes]


@settings(max_examples=80, deadline=None)
@given(votes=st.lists(st.integers(1, 40), min_size=1, max_size=20), rows=st.integers(1, 64),
       max_quorums=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_form_quorums_shape(votes, rows, max_quorums, seed):
    rng = random.Random(seed)
    regs = _regs(votes, rng)
    quorums = form_quorums(regs, rows, max_quorums, rng.randbytes(32))
    total = sum(votes)
    assert len(quorums) == min(-(-total // rows), max_quorums)
    by_signer = {r.signer: r.votes for r in regs}
    for q in quorums:
        assert q == quorums[0]  # every quorum of an epoch has the same members
        assert q.rows == rows
        assert list(q.ends) == sorted(set(q.ends)) and q.ends[0] > 0  # every member holds >= 1 row
        assert len(set(q.members)) == len(q.members)
        assert len(q.row_owners()) == rows
        for i, member in enumerate(q.members):
            assert q.rows_of(member) == q.row_range(i)
            assert all(q.owner(r) == member for r in q.row_range(i))
            # rows follow stake: the quota rounded down or up
            held = len(q.row_range(i))
            assert by_signer[member] * rows // total <= held <= -(-by_signer[member] * rows // total)
        for signer, v in by_signer.items():
            if signer not in q.members:
                assert v * rows < total  # only a quota below one row may round to nothing


def test_form_quorums_orders_by_seed():
    regs = _regs([1, 1, 1], random.Random(3))
    seeds = [bytes([i]) * 32 for i in range(8)]
    orders = {form_quorums(regs, 3, 10, seed)[0].members for seed in seeds}
    for seed in seeds:
        (q,) = form_quorums(regs, 3, 10, seed)
        assert list(q.members) == [r.signer for r in sorted(regs, key=lambda r: order_key(seed, r.signer))]
    assert len(orders) > 1  # the seed, not the keys, decides the order
    assert form_quorums([], 3, 10, seeds[0]) == []
