"""Property tests against the real contracts: a transfer without a valid proof always reverts. Random
corruptions of a valid proof set (one byte flipped, a field truncated, extended or replaced, entries swapped)
and random garbage proofs are all rejected; the uncorrupted proofs pass (eth_call, so nothing is consumed).
Also: the Python (EIP-712) digests equal the verifier's."""

from __future__ import annotations

import os

import pytest
from deaios.inft.proofs import access_digest, ownership_digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inft_helpers import ctx_for, h, proofs_for, revert_name

A, B = h("a"), h("b")
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# (part, field) of every bytes field: part 0 = access proof, 1 = ownership proof
BYTES_FIELDS = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6)]
BYTES32_FIELDS = [(0, 0), (1, 1), (1, 2)]


def mutate(value: bytes, how: str, position: int, noise: bytes) -> bytes:
    if how == "flip":
        if not value:
            return b"\x01"
        i = position % len(value)
        return value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :]
    if how == "truncate":
        return value[: position % max(len(value), 1)]
    if how == "extend":
        return value + (noise or b"\x00")
    return noise if noise != value else value + b"\x00"  # replace


@SETTINGS
@given(
    entry=st.integers(0, 1),
    field=st.sampled_from(BYTES_FIELDS),
    how=st.sampled_from(["flip", "truncate", "extend", "replace"]),
    position=st.integers(0, 200),
    noise=st.binary(max_size=96),
)
def test_corrupted_proofs_revert(nft, w3nft, alice, bob, token, entry, field, how, position, noise):
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], bob.private_key)
    fn = w3nft.functions.iTransferFrom
    assert revert_name(fn(alice.address, bob.address, token, proofs), alice.address) is None
    parts = [list(proofs[entry][0]), list(proofs[entry][1])]
    part, index = field
    value = parts[part][index]
    mutated = mutate(value, how, position, noise)
    if field in BYTES32_FIELDS:  # bytes32 fields keep their size
        mutated = (mutated + b"\x00" * 32)[:32]
        if mutated == value:
            mutated = bytes([value[0] ^ 0xFF]) + value[1:]
    parts[part][index] = mutated
    proofs[entry] = (tuple(parts[0]), tuple(parts[1]))
    assert revert_name(fn(alice.address, bob.address, token, proofs), alice.address) is not None


@pytest.mark.parametrize("case", ["swapped", "zkp"])
def test_misordered_or_other_type_proofs_revert(nft, w3nft, alice, bob, token, case):
    ctx = ctx_for(nft, token, alice, bob)
    if case == "swapped":
        proofs = proofs_for(ctx, [A, B], bob.private_key)[::-1]
    else:
        proofs = proofs_for(ctx, [A, B], bob.private_key, oracle_type=1)
    assert (
        revert_name(w3nft.functions.iTransferFrom(alice.address, bob.address, token, proofs), alice.address)
        is not None
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 80), min_size=8, max_size=8), count=st.integers(0, 3))
def test_garbage_proofs_revert(w3nft, alice, bob, token, sizes, count):
    def garbage() -> tuple:
        r = [os.urandom(n) for n in sizes]
        return (
            (os.urandom(32), r[0], r[1], r[2]),
            (0, os.urandom(32), os.urandom(32), r[3], r[4], r[5], r[6]),
        )

    proofs = [garbage() for _ in range(count)]
    assert (
        revert_name(w3nft.functions.iTransferFrom(alice.address, bob.address, token, proofs), alice.address)
        is not None
    )


def test_python_digests_match_the_verifier(nft, verifier, alice, bob):
    data, new, sealed, target, nonce = h("d"), h("n"), os.urandom(92), os.urandom(32), os.urandom(32)
    ctx = ctx_for(nft, 7, alice, bob)
    sol_ctx = (ctx.token, ctx.token_id, ctx.from_, ctx.to)
    assert bytes(verifier.accessDigest(sol_ctx, (data, target, nonce, b""))) == access_digest(ctx, data, target, nonce)
    assert bytes(verifier.ownershipDigest(sol_ctx, (0, data, new, sealed, target, nonce, b""))) == ownership_digest(
        ctx, data, new, sealed, target, nonce
    )
