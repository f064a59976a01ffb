"""DAEntrance: blob fees and quorum assignment, verified erasure commitments, expiry, administration."""

from __future__ import annotations

import ape
from da_contract_helpers import (
    BLOB_PRICE,
    SUBMIT_VERIFIED_SIG,
    random_commitment,
    register_epoch,
    rows_signed,
    sign_blob,
    submission,
    try_submit_verified,
)
from deaios.da import bls
from eth_utils import keccak

ZERO = "0x" + "00" * 20


def _roots(n: int, tag: bytes = b"r") -> list[bytes]:
    return [keccak(tag + bytes([i])) for i in range(n)]


# ---------------------------------------------------------------- 0G ABI


def test_0g_selectors_and_events(world):
    e = world.entrance
    fns = {m.selector for m in e.contract_type.abi if getattr(m, "type", "") == "function"}
    assert {"submitOriginalData(bytes32[])", SUBMIT_VERIFIED_SIG,
            "verifiedErasureCommitment(bytes32,uint256,uint256)", "commitmentExists(bytes32,uint256,uint256)",
            "sync()", "currentEpoch()", "blobPrice()", "epochWindowSize()"} <= fns
    events = {ev.selector for ev in e.contract_type.events}
    assert "DataUpload(address,bytes32,uint256,uint256,uint256)" in events
    assert "ErasureCommitmentVerified(bytes32,uint256,uint256)" in events


def test_initial_state(world, owner):
    e = world.entrance
    assert e.signers() == world.registry.address
    assert e.blobPrice() == BLOB_PRICE and e.epochWindowSize() == 300
    assert e.currentEpoch() == 0  # cached at deployment; sync() refreshes it
    e.sync(sender=owner)
    assert e.currentEpoch() == 1
    for role in (e.DEFAULT_ADMIN_ROLE(), e.PARAMS_ADMIN_ROLE(), e.PAUSER_ROLE()):
        assert e.hasRole(role, owner)


def test_constructor_validation(project, owner, world):
    with ape.reverts(world.entrance.ZeroAddress):
        project.DAEntrance.deploy(ZERO, 1, 1, owner.address, sender=owner)
    with ape.reverts(world.entrance.ZeroAddress):
        project.DAEntrance.deploy(world.registry.address, 1, 1, ZERO, sender=owner)
    with ape.reverts(world.entrance.InvalidEpochWindow):
        project.DAEntrance.deploy(world.registry.address, 1, 2**64 - 1, owner.address, sender=owner)


# ---------------------------------------------------------------- submitOriginalData


def test_submit_original_data_events_and_fees(world, alice):
    e = world.entrance
    roots = _roots(3)
    receipt = e.submitOriginalData(roots, sender=alice, value=3 * BLOB_PRICE)
    events = receipt.events.filter(e.DataUpload)
    assert [ev.dataRoot for ev in events] == roots
    for ev in events:
        assert (ev.sender, ev.epoch, ev.quorumId, ev.blobPrice) == (alice.address, 1, 0, BLOB_PRICE)
    assert e.epochFees(1) == 3 * BLOB_PRICE and e.currentEpoch() == 1
    assert e.balance == 3 * BLOB_PRICE


def test_submit_original_data_rejections(world, alice, owner):
    e = world.entrance
    with ape.reverts(e.NoDataRoots):
        e.submitOriginalData([], sender=alice)
    for paid in (0, 2 * BLOB_PRICE - 1, 2 * BLOB_PRICE + 1):
        with ape.reverts(e.FeeMismatch, expected=2 * BLOB_PRICE, paid=paid):
            e.submitOriginalData(_roots(2), sender=alice, value=paid)
    e.pause(sender=owner)
    with ape.reverts(e.EnforcedPause):
        e.submitOriginalData(_roots(1), sender=alice, value=BLOB_PRICE)
    e.unpause(sender=owner)
    e.submitOriginalData(_roots(1), sender=alice, value=BLOB_PRICE)


def test_no_signers_in_epoch(project, owner, alice, world):
    """A fresh deployment is in epoch 0, which has no quorum."""
    from da_contract_helpers import deploy_da_module

    d = deploy_da_module.deploy_da(owner, project, blob_price=0, epoch_blocks=10)
    e = project.DAEntrance.at(d["da_entrance"])
    with ape.reverts(e.NoDASigners, epoch=0):
        e.submitOriginalData(_roots(1), sender=alice)


def test_round_robin_quorums_and_sync(world_multi, alice, owner):
    w = world_multi
    e = w.entrance
    assigned = []
    for i in range(5):
        receipt = e.submitOriginalData(_roots(2, b"%d" % i), sender=alice, value=2 * BLOB_PRICE)
        ids = {ev.quorumId for ev in receipt.events.filter(e.DataUpload)}
        assert len(ids) == 1  # one quorum per call (0G)
        assigned.append(ids.pop())
    assert assigned == [1, 0, 1, 0, 1] and e.quorumIndex() == 1
    # signers register for epoch 2; once epochBlocks have passed, the next upload starts epoch 2
    for s in w.signers:
        register_epoch(w.registry, s)
    ape.chain.mine(1000)
    receipt = e.submitOriginalData(_roots(1, b"x"), sender=alice, value=BLOB_PRICE)
    assert receipt.events.filter(e.DataUpload)[0].epoch == 2
    assert e.currentEpoch() == 2 and w.registry.epochNumber() == 2


# ---------------------------------------------------------------- submitVerifiedCommitRoots


def test_verified_commitment_stored_and_event(world, alice):
    e = world.entrance
    (q,) = world.quorums
    root = keccak(b"blob")
    commitment = random_commitment(b"c")
    sub = submission(world, root, 0, q.members, commitment=commitment)
    assert not e.commitmentExists(root, 1, 0)
    with ape.reverts(e.CommitmentNotFound, dataRoot=root, epoch=1, quorumId=0):
        e.verifiedErasureCommitment(root, 1, 0)
    receipt = e.submitVerifiedCommitRoots([sub], sender=alice)
    ev = receipt.events.filter(e.ErasureCommitmentVerified)[0]
    assert (ev.dataRoot, ev.epoch, ev.quorumId) == (root, 1, 0)
    assert e.commitmentExists(root, 1, 0)
    assert tuple(e.verifiedErasureCommitment(root, 1, 0)) == commitment
    assert not e.commitmentExists(root, 1, 1) and not e.commitmentExists(root, 2, 0)
    # a second submission of the same blob is skipped (no event, no revert), as in 0G
    again = submission(world, root, 0, q.members, commitment=random_commitment(b"other"))
    receipt = e.submitVerifiedCommitRoots([again], sender=alice)
    assert not receipt.events.filter(e.ErasureCommitmentVerified)
    assert tuple(e.verifiedErasureCommitment(root, 1, 0)) == commitment


def test_commitments_with_either_y_parity_roundtrip(world, alice):
    e = world.entrance
    (q,) = world.quorums
    seen = set()
    for i in range(6):
        c = random_commitment(bytes([i]))
        seen.add(c[1] & 1)
        root = keccak(b"p%d" % i)
        e.submitVerifiedCommitRoots([submission(world, root, 0, q.members, commitment=c)], sender=alice)
        assert tuple(e.verifiedErasureCommitment(root, 1, 0)) == c
    assert seen == {0, 1}


def test_two_thirds_of_rows_rule(world, alice):
    """Accepted iff signed rows * 3 >= rows * 2 (0G: 2 * total <= 3 * hit), counted in rows, not signers."""
    (q,) = world.quorums  # 30 rows over 7 members in proportion to their votes; 20 needed
    sizes = {m: len(q.rows_of(m)) for m in q.members}
    by_size = sorted(q.members, key=lambda m: -sizes[m])
    below = []  # the largest members while they stay below 20 rows
    for m in by_size:
        if rows_signed(q, below + [m]) >= 20:
            break
        below.append(m)
    assert 2 * 30 > 3 * rows_signed(q, below)
    ok, err = try_submit_verified(world, [submission(world, keccak(b"a"), 0, below)], alice.address)
    assert (ok, err) == (False, "InsufficientSignedRows")
    enough = below + [m]  # one more member reaches 2/3
    assert 3 * rows_signed(q, enough) >= 2 * 30
    ok, err = try_submit_verified(world, [submission(world, keccak(b"a"), 0, enough)], alice.address)
    assert ok, err


def test_exactly_two_thirds_is_enough(project, owner, signer_pool, alice):
    from da_contract_helpers import build_world

    w = build_world(owner, project, [1, 1, 1], rows=3, signers=signer_pool[:3])
    (q,) = w.quorums
    ok, err = try_submit_verified(w, [submission(w, keccak(b"x"), 0, q.members[:2])], alice.address)
    assert ok, err
    ok, err = try_submit_verified(w, [submission(w, keccak(b"x"), 0, q.members[:1])], alice.address)
    assert (ok, err) == (False, "InsufficientSignedRows")


def test_forged_and_mismatched_signatures(world, alice):
    (q,) = world.quorums
    members = list(q.members)
    root = keccak(b"forge")
    c = random_commitment(b"forge")

    def attempt(**kw):
        return try_submit_verified(world, [submission(world, root, 0, members, commitment=c, **kw)], alice.address)

    sigs = sign_blob([world.by_address(m) for m in members], root, 1, 0, c)
    # one signer signs another blob / another epoch / another quorum / another commitment
    for wrong in (sign_blob([world.by_address(members[0])], keccak(b"x"), 1, 0, c),
                  sign_blob([world.by_address(members[0])], root, 2, 0, c),
                  sign_blob([world.by_address(members[0])], root, 1, 1, c),
                  sign_blob([world.by_address(members[0])], root, 1, 0, random_commitment(b"y"))):
        assert attempt(signatures={**sigs, **wrong}) == (False, "InvalidSignature")
    # a signature from a key that is not the signer's
    outsider = bls.BLSKey.generate(b"outsider").sign(bls.commit_digest(root, 1, 0, c))
    assert attempt(signatures={**sigs, members[0]: outsider}) == (False, "InvalidSignature")
    # aggPkG2 not the sum of the bitmap's signers' keys
    wrong_g2 = bls.aggregate_g2(world.by_address(m).key.pk_g2 for m in members[1:])
    assert attempt(agg_pk_g2=wrong_g2) == (False, "AggregateKeyMismatch")
    assert attempt(agg_pk_g2=bls.G2) == (False, "AggregateKeyMismatch")
    # the bitmap claims a signer whose signature is missing (keys from the bitmap, signature short)
    short = {m: sigs[m] for m in members}
    short[members[-1]] = None
    partial_sig = bls.aggregate_g1(v for v in short.values() if v is not None)
    sub = submission(world, root, 0, members, commitment=c)
    sub = sub[:6] + (partial_sig,)
    assert try_submit_verified(world, [sub], alice.address) == (False, "InvalidSignature")
    assert attempt() == (True, b"")


def test_invalid_points(world, alice):
    (q,) = world.quorums
    root = keccak(b"pts")
    good = submission(world, root, 0, q.members)
    cx, cy = good[3]
    for bad_c in ((cx, cy + 1), (0, 0), (cx + bls.P, cy)):
        sub = good[:3] + (bad_c,) + good[4:]
        assert try_submit_verified(world, [sub], alice.address) == (False, "PointNotOnCurve")
    sx, sy = good[6]
    sub = good[:6] + ((sx, (sy + 1) % bls.P),)
    assert try_submit_verified(world, [sub], alice.address) == (False, "PointNotOnCurve")
    from da_contract_helpers import twist_point_outside_subgroup

    for g2 in (twist_point_outside_subgroup(3), ((1, 2), (3, 4))):
        sub = good[:5] + (bls.g2_eip197(g2),) + good[6:]
        assert try_submit_verified(world, [sub], alice.address) == (False, "InvalidG2Point")


def test_unknown_epoch_quorum_and_bad_bitmaps(world, alice):
    (q,) = world.quorums
    root = keccak(b"unk")
    members = list(q.members)
    # every row but one of a member holding several (rows per member follow the epoch's seed, a block hash)
    split = next(q.row_range(i)[0] for i in range(len(q.members)) if len(q.row_range(i)) >= 2)
    cases = [
        (submission(world, root, 0, members, epoch=2), "UnknownEpoch"),
        (submission(world, root, 0, members, epoch=2**255), "UnknownEpoch"),
        (submission(world, root, 0, members, epoch=0), "UnknownQuorum"),
        (submission(world, root, 1, members), "UnknownQuorum"),
        (submission(world, root, 0, members, bitmap=b"\xff" * 3), "BadBitmapLength"),
        (submission(world, root, 0, members, bitmap=b"\xff" * 5), "BadBitmapLength"),
        (submission(world, root, 0, members, bitmap=b"\xff" * 4), "BitmapPaddingNotZero"),
        (submission(world, root, 0, members, bitmap=bls.quorum_bitmap(set(range(30)) - {split}, 30)),
         "InconsistentBitmap"),
    ]
    for sub, expected in cases:
        assert try_submit_verified(world, [sub], alice.address) == (False, expected), expected


def test_signer_set_is_remembered(world, alice):
    """The first blob of a signer set goes through the registry; later ones skip it."""
    e = world.entrance
    (q,) = world.quorums
    members = list(q.members)
    first = submission(world, keccak(b"s1"), 0, members)
    key = e.signerSetKey(1, 0, first[4], first[5])
    assert not e.verifiedSignerSet(key)
    receipt = e.submitVerifiedCommitRoots([first], sender=alice)
    assert receipt.events.filter(e.SignerSetVerified)[0].setKey == key
    assert e.verifiedSignerSet(key)
    second = submission(world, keccak(b"s2"), 0, members)
    receipt2 = e.submitVerifiedCommitRoots([second], sender=alice)
    assert not receipt2.events.filter(e.SignerSetVerified)
    assert receipt2.gas_used < receipt.gas_used - 30_000
    # a remembered set still needs a genuine signature
    forged = submission(world, keccak(b"s3"), 0, members,
                        signatures=sign_blob([world.by_address(m) for m in members], keccak(b"s4"), 1, 0,
                                             random_commitment(keccak(b"s3"))))
    assert try_submit_verified(world, [forged], alice.address) == (False, "InvalidSignature")


def test_batch_all_or_nothing(world, alice):
    e = world.entrance
    (q,) = world.quorums
    good = [submission(world, keccak(b"b%d" % i), 0, q.members) for i in range(3)]
    bad = submission(world, keccak(b"bad"), 0, q.members[:1])
    assert try_submit_verified(world, good + [bad], alice.address) == (False, "InsufficientSignedRows")
    receipt = e.submitVerifiedCommitRoots(good, sender=alice)
    assert len(receipt.events.filter(e.ErasureCommitmentVerified)) == 3


def test_expiry_window(world, alice, owner):
    e = world.entrance
    r = world.registry
    (q,) = world.quorums
    e.setEpochWindowSize(1, sender=owner)
    root = keccak(b"exp")
    sub = submission(world, root, 0, q.members)
    for epoch_now in (2, 3):  # epoch 1 data is served while epochNumber <= 1 + 1 + 1
        r.forceMakeEpoch(sender=owner)
        assert r.epochNumber() == epoch_now and not e.isEpochExpired(1)
        assert try_submit_verified(world, [sub], alice.address)[0]
    r.forceMakeEpoch(sender=owner)  # epoch 4: 1 + 1 + 1 < 4
    assert e.isEpochExpired(1) and not e.isEpochExpired(2) and not e.isEpochExpired(10)
    assert try_submit_verified(world, [sub], alice.address) == (False, "EpochExpired")


def test_pause_blocks_commitments(world, alice, owner):
    e = world.entrance
    (q,) = world.quorums
    with ape.reverts(e.AccessControlUnauthorizedAccount):
        e.pause(sender=alice)
    e.pause(sender=owner)
    assert try_submit_verified(world, [submission(world, keccak(b"p"), 0, q.members)], alice.address) \
        == (False, "EnforcedPause")


def test_digest_and_hash_views_match_python(world):
    e = world.entrance
    c = random_commitment(b"v")
    assert e.commitDigest(b"\x01" * 32, 3, 4, c) == bls.commit_digest(b"\x01" * 32, 3, 4, c)
    for d in (bytes(32), b"\xff" * 32, keccak(b"h")):
        assert tuple(e.hashToG1(d)) == bls.hash_to_g1(d)


# ---------------------------------------------------------------- administration


def test_params_admin(world, owner, alice):
    e = world.entrance
    with ape.reverts(e.AccessControlUnauthorizedAccount):
        e.setBlobPrice(5, sender=alice)
    receipt = e.setBlobPrice(5, sender=owner)
    ev = receipt.events.filter(e.BlobPriceUpdated)[0]
    assert (ev.oldPrice, ev.newPrice) == (BLOB_PRICE, 5) and e.blobPrice() == 5
    with ape.reverts(e.InvalidEpochWindow):
        e.setEpochWindowSize(2**64 - 1, sender=owner)
    receipt = e.setEpochWindowSize(7, sender=owner)
    assert receipt.events.filter(e.EpochWindowSizeUpdated)[0].newSize == 7 and e.epochWindowSize() == 7


def test_withdraw_fees(world, owner, alice):
    e = world.entrance
    e.submitOriginalData(_roots(4), sender=alice, value=4 * BLOB_PRICE)
    with ape.reverts(e.AccessControlUnauthorizedAccount):
        e.withdrawFees(alice.address, 1, sender=alice)
    with ape.reverts(e.InsufficientBalance, requested=4 * BLOB_PRICE + 1, available=4 * BLOB_PRICE):
        e.withdrawFees(alice.address, 4 * BLOB_PRICE + 1, sender=owner)
    with ape.reverts(e.ZeroAddress):
        e.withdrawFees(ZERO, 1, sender=owner)
    before = alice.balance
    receipt = e.withdrawFees(alice.address, 3 * BLOB_PRICE, sender=owner)
    assert alice.balance == before + 3 * BLOB_PRICE and e.totalWithdrawn() == 3 * BLOB_PRICE
    assert receipt.events.filter(e.FeesWithdrawn)[0].amount == 3 * BLOB_PRICE

