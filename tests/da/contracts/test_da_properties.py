"""Hypothesis properties of the DA contracts, and the rogue-key attack.

The property tests only make `eth_call`s (no state change), so the session-scoped worlds are shared
safely by all examples despite Hypothesis running them inside one test function. No signer set is
remembered by DAEntrance in these calls, so every example takes the full registry path.
"""

from __future__ import annotations

import ape
from da_contract_helpers import (
    DASigner,
    error_names,
    make_signer,
    random_commitment,
    rows_signed,
    sign_blob,
    submission,
    try_call,
    try_submit_verified,
)
from deaios.da import bls
from eth_utils import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

def subsets(n: int) -> st.SearchStrategy[int]:
    """Bitmasks over n members: uniform, or "all but a few" (so that both sides of 2/3 are drawn)."""
    full = (1 << n) - 1
    all_but = st.sets(st.integers(0, n - 1), max_size=max(1, n // 2)).map(
        lambda absent: full & ~sum(1 << i for i in absent))
    return st.one_of(st.integers(0, full), all_but, all_but)


MODES = ("genuine", "outsider_key", "wrong_blob", "missing_signature", "g2_missing_key", "g2_extra_key")


def _check(world, alice, subset_mask: int, mode: str, victim_index: int, root_seed: bytes):
    (q,) = world.quorums
    chosen = [m for i, m in enumerate(q.members) if subset_mask >> i & 1]
    root = keccak(root_seed)
    c = random_commitment(root)
    signers = [world.by_address(m) for m in chosen]
    sigs = sign_blob(signers, root, world.epoch, 0, c)
    kw: dict = {}
    forged = False
    if chosen and mode != "genuine":
        victim = chosen[victim_index % len(chosen)]
        if mode == "outsider_key":
            sigs[victim] = bls.BLSKey.generate(b"outsider").sign(bls.commit_digest(root, world.epoch, 0, c))
        elif mode == "wrong_blob":
            sigs[victim] = world.by_address(victim).key.sign(bls.commit_digest(keccak(root), world.epoch, 0, c))
        elif mode == "missing_signature":
            sigs[victim] = None
        elif mode == "g2_missing_key":
            kw["agg_pk_g2"] = bls.aggregate_g2(world.by_address(m).key.pk_g2 for m in chosen if m != victim)
        elif mode == "g2_extra_key":
            outsider = next(s for s in world.signers if s.address not in chosen) if len(chosen) < len(q.members) \
                else DASigner(None, bls.BLSKey.generate(b"extra"))
            kw["agg_pk_g2"] = bls.aggregate_g2([*(world.by_address(m).key.pk_g2 for m in chosen),
                                                outsider.key.pk_g2])
        forged = True
    agg_sig = bls.aggregate_g1(v for v in sigs.values() if v is not None)
    g2_override = kw.pop("agg_pk_g2", "none")
    sub = submission(world, root, 0, chosen, commitment=c)
    sub = sub[:6] + (agg_sig or (0, 0),)
    if g2_override != "none":
        sub = sub[:5] + ((bls.g2_eip197(g2_override) if g2_override else ([0, 0], [0, 0])),) + sub[6:]
    ok, err = try_submit_verified(world, [sub], alice.address)

    enough = 3 * rows_signed(q, chosen) >= 2 * q.rows
    event(f"{mode} enough={enough} accepted={ok}")
    if agg_sig is None:  # nobody signed: the signature is the point at infinity
        assert (ok, err) == (False, "PointNotOnCurve")
    elif not enough:
        assert (ok, err) == (False, "InsufficientSignedRows")
    elif forged:
        assert not ok and err in {"InvalidSignature", "AggregateKeyMismatch", "InvalidG2Point"}, err
    else:
        assert ok, err


@SETTINGS
@given(subset=subsets(7), mode=st.sampled_from(MODES), victim=st.integers(0, 11),
       seed=st.binary(min_size=4, max_size=4))
def test_accepted_iff_two_thirds_of_rows_and_all_genuine(world, alice, subset, mode, victim, seed):
    _check(world, alice, subset, mode, victim, seed)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subset=subsets(12), mode=st.sampled_from(MODES), victim=st.integers(0, 11),
       seed=st.binary(min_size=4, max_size=4))
def test_accepted_iff_two_thirds_3072_rows(world_3072, alice, subset, mode, victim, seed):
    _check(world_3072, alice, subset, mode, victim, seed)


@SETTINGS
@given(digest=st.binary(min_size=32, max_size=32))
def test_contract_hash_to_g1_equals_python(world, digest):
    assert tuple(world.entrance.hashToG1(digest)) == bls.hash_to_g1(digest)


# ---------------------------------------------------------------- rogue keys


def _precompile_call(to: str, data: bytes) -> bytes:
    return bytes(ape.chain.provider.web3.eth.call({"to": to, "data": data}))


def test_rogue_key_attack_is_rejected(world, alice):
    """An attacker announcing pk_rogue = x·G − pk_victim could sign alone for "victim + attacker"
    (aggregate key x·G). The proof of possession makes registering such a key impossible."""
    victim = world.signers[0]
    attacker = make_signer(300)
    x = 0xA77ACC
    rogue_g1 = bls.g1_add(bls.g1_mul(bls.G1, x), bls.g1_neg(victim.key.pk_g1))
    rogue_g2 = bls.g2_add(bls.g2_mul(bls.G2, x), bls.g2_mul(victim.key.pk_g2, bls.R - 1))
    assert rogue_g1 is not None and rogue_g2 is not None

    # Without PoP the attack would work: x·H(m) verifies against the aggregate (victim + rogue) keys
    # with the very pairing check the contracts use (run here on the chain's 0x08 precompile).
    digest = bls.commit_digest(keccak(b"rogue"), 1, 0, random_commitment(b"rogue"))
    forged = bls.g1_mul(bls.hash_to_g1(digest), x)
    agg1 = bls.g1_add(victim.key.pk_g1, rogue_g1)
    agg2 = bls.g2_add(victim.key.pk_g2, rogue_g2)
    assert bls.verify_with(_precompile_call, digest, forged, agg1, agg2)

    registry = world.registry
    detail = (attacker.address, "evil:1", rogue_g1, bls.g2_signer_order(rogue_g2))
    pop_digest = bls.pop_digest(attacker.address, ape.chain.chain_id)
    attempts = [
        bls.g1_mul(bls.hash_to_g1(pop_digest), x),  # what the attacker can compute
        victim.key.pop(victim.address, ape.chain.chain_id),  # replaying the victim's PoP
        bls.g1_add(bls.g1_mul(bls.hash_to_g1(pop_digest), x),
                   bls.g1_neg(victim.key.pop(victim.address, ape.chain.chain_id))),
    ]
    for pop in attempts:
        with ape.reverts(registry.InvalidProofOfPossession, signer=attacker.address):
            registry.registerSigner(detail, pop, sender=attacker.account, value=10**18)
    assert not registry.isSigner(attacker.address)


def test_member_cannot_sign_for_others(world, alice):
    """A registered member claiming other members' rows fails: the aggregate key comes from the
    registry, so its lone signature cannot match it."""
    (q,) = world.quorums
    me = world.by_address(q.members[-1])
    root = keccak(b"greedy")
    c = random_commitment(root)
    my_sig = sign_blob([me], root, 1, 0, c)[me.address]
    everyone = list(q.members)
    sub = submission(world, root, 0, everyone, commitment=c, agg_pk_g2=me.key.pk_g2)
    sub = sub[:6] + (my_sig,)
    assert try_submit_verified(world, [sub], alice.address) == (False, "AggregateKeyMismatch")
    honest_g2 = bls.aggregate_g2(world.by_address(m).key.pk_g2 for m in everyone)
    sub = submission(world, root, 0, everyone, commitment=c, agg_pk_g2=honest_g2)
    sub = sub[:6] + (my_sig,)
    assert try_submit_verified(world, [sub], alice.address) == (False, "InvalidSignature")


def test_error_names_cover_both_contracts(world):
    names = set(error_names(world.entrance, world.registry).values())
    assert {"InvalidSignature", "AggregateKeyMismatch", "InsufficientSignedRows", "UnknownEpoch", "UnknownQuorum",
            "BadBitmapLength", "PointNotOnCurve", "InvalidG2Point", "SignerExists",
            "InvalidProofOfPossession", "PubkeyInUse"} <= names
    ok, out = try_call(world.registry, keccak(text="epochNumber()")[:4], {})
    assert ok and int.from_bytes(out, "big") == 1
