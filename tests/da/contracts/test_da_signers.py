"""DASigners: registration with proof of possession, stake and votes, epochs, quorums, getAggPkG1."""

from __future__ import annotations

import ape
import pytest
from da_contract_helpers import (
    TOKENS_PER_VOTE,
    DASigner,
    build_world,
    epoch_signature,
    make_signer,
    register,
    register_epoch,
    twist_point_outside_subgroup,
)
from deaios.da import bls
from deaios.da.quorums import Registration, form_quorums
from eth_abi import encode
from eth_utils import keccak

ZERO = "0x" + "00" * 20


@pytest.fixture
def registry(world):
    return world.registry


@pytest.fixture(scope="session")
def newcomer() -> DASigner:
    """A signer not registered in any world."""
    return make_signer(100)


def _pop(signer: DASigner) -> tuple[int, int]:
    return signer.key.pop(signer.address, ape.chain.chain_id)


# ---------------------------------------------------------------- 0G ABI


def test_0g_selectors_and_events(registry):
    sigs = {
        "registerSigner((address,string,(uint256,uint256),(uint256[2],uint256[2])),(uint256,uint256))",
        "registerNextEpoch((uint256,uint256))",
        "getAggPkG1(uint256,uint256,bytes)",
        "getQuorum(uint256,uint256)",
        "getQuorumRow(uint256,uint256,uint32)",
        "getSigner(address[])",
        "quorumCount(uint256)",
        "epochNumber()",
        "isSigner(address)",
        "registeredEpoch(address,uint256)",
        "updateSocket(string)",
        "makeEpoch()",
        "params()",
    }
    abis = {m.selector for m in registry.contract_type.abi if getattr(m, "type", "") == "function"}
    assert sigs <= abis
    events = {e.selector for e in registry.contract_type.events}
    assert "NewSigner(address,(uint256,uint256),(uint256[2],uint256[2]))" in events
    assert "SocketUpdated(address,string)" in events


def test_params_and_initial_state(world, registry):
    p = registry.params()
    assert (p.tokensPerVote, p.maxVotesPerSigner, p.maxQuorums, p.encodedSlices) == (TOKENS_PER_VOTE, 1024, 10, 30)
    assert registry.epochNumber() == 1 and registry.quorumCount(0) == 0 and registry.quorumCount(1) == 1
    assert registry.popDigest(world.signers[0].address) == bls.pop_digest(world.signers[0].address,
                                                                          ape.chain.chain_id)
    assert registry.epochDigest(world.signers[0].address, 9) == bls.epoch_digest(world.signers[0].address, 9,
                                                                                 ape.chain.chain_id)


def test_set_params_validation(registry, owner, alice):
    good = (1, 2, 3, 4, 5)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.setParams(good, sender=alice)
    for bad in ((0, 2, 3, 4, 5), (1, 0, 3, 4, 5), (1, 2, 0, 4, 5), (1, 2, 3, 0, 5), (1, 2, 3, 4, 0),
                (1, 2, 3, 4, 65_536), (1, 2**64, 3, 4, 5)):
        with ape.reverts(registry.InvalidParams):
            registry.setParams(bad, sender=owner)
    receipt = registry.setParams(good, sender=owner)
    assert tuple(registry.params()) == good
    assert len(receipt.events.filter(registry.ParamsUpdated)) == 1


# ---------------------------------------------------------------- registerSigner


def test_register_signer_stores_details_and_stake(registry, newcomer):
    receipt = register(registry, newcomer, 5, socket="10.0.0.1:34000")
    assert registry.isSigner(newcomer.address)
    (detail,) = registry.getSigner([newcomer.address])
    assert detail.signer == newcomer.address and detail.socket == "10.0.0.1:34000"
    assert tuple(detail.pkG1) == newcomer.key.pk_g1
    assert bls.g2_from_signer_order(detail.pkG2.X, detail.pkG2.Y) == newcomer.key.pk_g2
    assert registry.stakeOf(newcomer.address) == 5 * TOKENS_PER_VOTE
    ev = receipt.events.filter(registry.NewSigner)[0]
    assert ev.signer == newcomer.address and tuple(ev.pkG1) == newcomer.key.pk_g1
    assert receipt.events.filter(registry.SocketUpdated)[0].socket == "10.0.0.1:34000"
    assert receipt.events.filter(registry.StakeAdded)[0].stake == 5 * TOKENS_PER_VOTE


def test_register_signer_rejections(registry, world, newcomer, alice):
    pop = _pop(newcomer)
    detail = newcomer.detail()
    with ape.reverts(registry.SenderNotSigner, sender=alice.address, signer=newcomer.address):
        registry.registerSigner(detail, pop, sender=alice)
    old = world.signers[0]
    with ape.reverts(registry.SignerExists, signer=old.address):
        registry.registerSigner(old.detail(), _pop(old), sender=old.account)
    # off-curve key / signature, the point at infinity, coordinates >= p
    x, y = newcomer.key.pk_g1
    for bad in ((x, y + 1), (0, 0), (x + bls.P, y)):
        with ape.reverts(registry.PointNotOnCurve):
            registry.registerSigner((detail[0], detail[1], bad, detail[3]), pop, sender=newcomer.account)
    with ape.reverts(registry.PointNotOnCurve):
        registry.registerSigner(detail, (pop[0], pop[1] + 1), sender=newcomer.account)
    with ape.reverts(registry.SignerNotFound, account=newcomer.address):
        registry.updateSocket("x", sender=newcomer.account)
    with ape.reverts(registry.SignerNotFound):
        registry.getSigner([newcomer.address])


def test_register_signer_rejects_bad_g2_keys(registry, newcomer):
    pop = _pop(newcomer)
    d = newcomer.detail()
    (xr, xi), (yr, yi) = newcomer.key.pk_g2
    off_twist = ([xr, xi], [yr, (yi + 1) % bls.P])
    outside = bls.g2_signer_order(twist_point_outside_subgroup())
    for bad in (off_twist, outside, ([0, 0], [0, 0]), ([xr + bls.P, xi], [yr, yi])):
        with ape.reverts(registry.InvalidG2Point):
            registry.registerSigner((d[0], d[1], d[2], bad), pop, sender=newcomer.account)


def test_wrong_proof_of_possession(registry, world, newcomer):
    d = newcomer.detail()
    other = bls.BLSKey.generate(b"other")
    wrong = [
        newcomer.key.sign(bls.pop_digest(newcomer.address, ape.chain.chain_id + 1)),  # another chain
        newcomer.key.sign(bls.pop_digest(world.signers[0].address, ape.chain.chain_id)),  # another address
        other.pop(newcomer.address, ape.chain.chain_id),  # another key
        newcomer.key.sign(bls.epoch_digest(newcomer.address, 1, ape.chain.chain_id)),  # another message
    ]
    for sig in wrong:
        with ape.reverts(registry.InvalidProofOfPossession, signer=newcomer.address):
            registry.registerSigner(d, sig, sender=newcomer.account)
    # G1 and G2 keys of different secrets: the PoP by either secret fails
    mixed = (d[0], d[1], other.pk_g1, d[3])
    for sig in (_pop(newcomer), other.pop(newcomer.address, ape.chain.chain_id)):
        with ape.reverts(registry.InvalidProofOfPossession):
            registry.registerSigner(mixed, sig, sender=newcomer.account)


def test_pubkey_cannot_be_registered_twice(registry, world, newcomer):
    victim = world.signers[0]
    # Even with a valid PoP for its own address (i.e. knowing the secret), a second account cannot
    # register an already registered G1 key.
    copy = DASigner(newcomer.account, victim.key)
    with ape.reverts(registry.PubkeyInUse, owner=victim.address):
        registry.registerSigner(copy.detail(), _pop(copy), sender=newcomer.account)


def test_update_socket(registry, world):
    s = world.signers[1]
    receipt = registry.updateSocket("127.0.0.1:9999", sender=s.account)
    assert receipt.events.filter(registry.SocketUpdated)[0].socket == "127.0.0.1:9999"
    assert registry.getSigner([s.address])[0].socket == "127.0.0.1:9999"


# ---------------------------------------------------------------- stake and epoch registration


def test_register_next_epoch_votes_and_events(registry, newcomer):
    register(registry, newcomer, 3)
    assert not registry.registeredEpoch(newcomer.address, 2)
    receipt = register_epoch(registry, newcomer)
    ev = receipt.events.filter(registry.EpochRegistered)[0]
    assert (ev.signer, ev.epoch, ev.votes) == (newcomer.address, 2, 3)
    assert registry.registeredEpoch(newcomer.address, 2)
    signers, votes = registry.registrations(2)
    assert list(signers) == [newcomer.address] and list(votes) == [3]
    with ape.reverts(registry.AlreadyRegistered, signer=newcomer.address, epoch=2):
        register_epoch(registry, newcomer)


def test_votes_are_capped(project, owner, newcomer):
    w = build_world(owner, project, [5000], rows=8, max_votes=7, signers=[newcomer])
    _, votes = w.registry.registrations(1)
    assert list(votes) == [7]


def test_register_next_epoch_rejections(registry, world, newcomer):
    with ape.reverts(registry.SignerNotFound, account=newcomer.address):
        register_epoch(registry, newcomer)
    register(registry, newcomer, 0)
    with ape.reverts(registry.NotEligibleToVote, signer=newcomer.address, stake=0):
        register_epoch(registry, newcomer)
    registry.addStake(sender=newcomer.account, value=TOKENS_PER_VOTE - 1)
    with ape.reverts(registry.NotEligibleToVote):
        register_epoch(registry, newcomer)
    registry.addStake(sender=newcomer.account, value=1)
    for sig in (epoch_signature(newcomer, 1), epoch_signature(newcomer, 3),  # not the next epoch
                epoch_signature(world.signers[0], 2)):  # someone else's signature
        with ape.reverts(registry.InvalidEpochSignature, signer=newcomer.address, epoch=2):
            registry.registerNextEpoch(sig, sender=newcomer.account)
    sig = epoch_signature(newcomer, 2)
    with ape.reverts(registry.PointNotOnCurve):
        registry.registerNextEpoch((sig[0], sig[1] + 1), sender=newcomer.account)
    registry.registerNextEpoch(sig, sender=newcomer.account)
    with ape.reverts(registry.SignerNotFound):
        registry.addStake(sender=make_signer(101).account, value=1)


def test_stake_withdrawal_locked_while_registered(project, owner, signer_pool):
    w = build_world(owner, project, [2, 1], rows=8, epoch_blocks=16, signers=signer_pool[:2])
    registry = w.registry
    s = w.signers[0]  # registered for the current epoch 1 (the world's stake lock: 0 epochs after it)
    stake = registry.stakeOf(s.address)
    assert registry.stakeUnlockEpoch(s.address) == 2
    with ape.reverts(registry.StakeLocked, signer=s.address, untilEpoch=2):
        registry.withdrawStake(1, s.address, sender=s.account)
    ape.chain.mine(16)
    registry.makeEpoch(sender=owner)  # epoch 2: s registered for neither 2 nor 3
    assert registry.epochNumber() == 2
    with ape.reverts(registry.InsufficientStake, requested=stake + 1, stake=stake):
        registry.withdrawStake(stake + 1, s.address, sender=s.account)
    with ape.reverts(registry.ZeroAddress):
        registry.withdrawStake(1, ZERO, sender=s.account)
    register_epoch(registry, s)  # registered for epoch 3: locked again until epoch 4
    with ape.reverts(registry.StakeLocked, signer=s.address, untilEpoch=4):
        registry.withdrawStake(1, s.address, sender=s.account)
    ape.chain.mine(16)
    registry.makeEpoch(sender=owner)
    ape.chain.mine(16)
    registry.makeEpoch(sender=owner)  # epoch 4
    before = s.account.balance
    receipt = registry.withdrawStake(stake, owner.address, sender=s.account)
    assert registry.stakeOf(s.address) == 0
    ev = receipt.events.filter(registry.StakeWithdrawn)[0]
    assert (ev.signer, ev.to, ev.amount, ev.stake) == (s.address, owner.address, stake, 0)
    assert s.account.balance < before  # paid gas, the stake went to `to`


def test_stake_lock_outlasts_the_signatures_of_an_epoch(project, owner, signer_pool):
    """With the deployment default (the DA window + 1 epochs), a signer stays slashable while commitments of
    its last epoch can still be recorded."""
    w = build_world(owner, project, [2], rows=8, epoch_window=3, stake_lock_epochs=None, signers=signer_pool[:1])
    s = w.signers[0]
    assert w.registry.stakeLockEpochs() == 4 and w.registry.stakeUnlockEpoch(s.address) == 6
    for _ in range(4):
        w.registry.forceMakeEpoch(sender=owner)
    assert w.registry.epochNumber() == 5 and not w.entrance.isEpochExpired(1)
    with ape.reverts(w.registry.StakeLocked, signer=s.address, untilEpoch=6):
        w.registry.withdrawStake(1, s.address, sender=s.account)
    w.registry.forceMakeEpoch(sender=owner)
    assert w.entrance.isEpochExpired(1)
    w.registry.withdrawStake(1, s.address, sender=s.account)
    assert w.registry.stakeOf(s.address) == 2 * TOKENS_PER_VOTE - 1


def test_registration_closes_before_the_epoch_can_end(project, owner, signer_pool, newcomer):
    w = build_world(owner, project, [1], rows=8, epoch_blocks=16, signers=signer_pool[:1])
    registry = w.registry
    register(registry, newcomer, 1)
    closes = registry.registrationClosesAt()
    assert closes == registry.epochStartBlock() + 16 - 16 // 8
    ape.chain.mine(closes - ape.chain.blocks.head.number - 1)  # the next transaction lands in `closes`
    with ape.reverts(registry.RegistrationClosed, epoch=2, closedAt=closes):
        register_epoch(registry, newcomer)
    ape.chain.mine(16)
    receipt = registry.makeEpoch(sender=owner)
    seeded = receipt.events.filter(registry.EpochSeeded)[0]
    # the seed: the hash of the first block after registration closed, unknown to every registrant
    closed_hash = bytes(ape.chain.blocks[closes].hash)
    expected = keccak(encode(["bytes32", "uint256", "address"], [closed_hash, 2, registry.address]))
    assert bytes(seeded.seed) == expected == bytes(registry.epochSeed(2))
    register_epoch(registry, newcomer)  # open again for epoch 3


def test_full_epoch_keeps_the_most_votes(project, owner, signer_pool):
    w = build_world(owner, project, [3, 1, 2], rows=12, max_signers=3, signers=signer_pool[:3])
    registry = w.registry
    small, mid, big = (make_signer(110 + i) for i in range(3))
    for s, votes in ((small, 1), (mid, 2), (big, 5)):
        register(registry, s, votes)
    for s in w.signers:
        register_epoch(registry, s)
    with ape.reverts(registry.EpochFull, epoch=2, lowestVotes=1):
        register_epoch(registry, small)  # as few votes as the lowest: the earlier one stays
    receipt = register_epoch(registry, mid)  # takes the 1-vote signer's place
    assert [(e.signer, e.votes) for e in receipt.events.filter(registry.RegistrationRemoved)] == \
        [(w.signers[1].address, 1)]
    receipt = register_epoch(registry, big)  # takes the lowest remaining (2 votes, the earlier of equals)
    assert [e.signer for e in receipt.events.filter(registry.RegistrationRemoved)] == [w.signers[2].address]
    signers, votes = registry.registrations(2)
    assert sorted(zip(signers, votes)) == sorted([(w.signers[0].address, 3), (mid.address, 2), (big.address, 5)])
    assert not registry.registeredEpoch(w.signers[1].address, 2)


def test_equivocation_is_slashed(world, registry, owner, alice):
    s = world.signers[2]
    root = keccak(b"blob")
    c1, c2 = bls.hash_to_g1(keccak(b"c1")), bls.hash_to_g1(keccak(b"c2"))
    sig = lambda c: s.key.sign(bls.commit_digest(root, 1, 0, c))  # noqa: E731
    stake = registry.stakeOf(s.address)
    register_epoch(registry, s)  # also registered for the next epoch
    with ape.reverts(registry.NotEquivocation):
        registry.slashEquivocation(s.address, root, 1, 0, c1, sig(c1), c1, sig(c1), sender=alice)
    other = world.signers[3]
    with ape.reverts(registry.InvalidEvidence, signer=s.address):  # one signature is another signer's
        registry.slashEquivocation(s.address, root, 1, 0, c1, sig(c1), c2,
                                   other.key.sign(bls.commit_digest(root, 1, 0, c2)), sender=alice)
    with ape.reverts(registry.InvalidEvidence, signer=s.address):  # signed for another blob
        registry.slashEquivocation(s.address, root, 1, 0, c1, sig(c1), c2,
                                   s.key.sign(bls.commit_digest(keccak(root), 1, 0, c2)), sender=alice)
    receipt = registry.slashEquivocation(s.address, root, 1, 0, c1, sig(c1), c2, sig(c2), sender=alice)
    ev = receipt.events.filter(registry.SignerSlashed)[0]
    assert (ev.signer, ev.amount, ev.reporter) == (s.address, stake, alice.address)
    assert registry.stakeOf(s.address) == 0 and registry.slashedPool() == stake
    assert not registry.registeredEpoch(s.address, 2)  # dropped from the next epoch
    with ape.reverts(registry.NothingToSlash, signer=s.address):
        registry.slashEquivocation(s.address, root, 1, 0, c1, sig(c1), c2, sig(c2), sender=alice)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.withdrawSlashed(alice.address, 1, sender=alice)
    before = owner.balance
    receipt = registry.withdrawSlashed(alice.address, stake, sender=owner)
    assert registry.slashedPool() == 0 and receipt.events.filter(registry.SlashedWithdrawn)[0].amount == stake
    assert owner.balance < before  # the admin paid gas; the slashed stake went to `to`, not to the signer


# ---------------------------------------------------------------- epochs and quorums


def test_make_epoch_waits_for_epoch_blocks(registry, world, owner, alice):
    start = registry.epochStartBlock()
    registry.makeEpoch(sender=alice)  # too early: nothing happens
    assert registry.epochNumber() == 1
    ape.chain.mine(1000 - (ape.chain.blocks.head.number - start) - 2)
    registry.makeEpoch(sender=alice)
    assert registry.epochNumber() == 1
    receipt = registry.makeEpoch(sender=alice)  # the block epochStart + 1000
    ev = receipt.events.filter(registry.NewEpoch)[0]
    assert (ev.epoch, ev.quorums) == (2, 0)  # nobody registered for epoch 2
    assert registry.epochNumber() == 2 and registry.epochStartBlock() == receipt.block_number
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.forceMakeEpoch(sender=alice)
    registry.forceMakeEpoch(sender=owner)
    assert registry.epochNumber() == 3


def test_quorum_layout_matches_model(world, registry):
    (q,) = world.quorums
    members, ends, apk = registry.getQuorumMembers(1, 0)
    assert list(members) == list(q.members) and list(ends) == list(q.ends)
    assert tuple(apk) == bls.aggregate_g1(world.by_address(m).key.pk_g1 for m in q.members)
    assert registry.quorumRows(1, 0) == 30
    rows = registry.getQuorum(1, 0)
    assert list(rows) == q.row_owners()
    for r in (0, 4, 5, 17, 29):
        assert registry.getQuorumRow(1, 0, r) == q.owner(r)
    with ape.reverts(registry.RowOutOfRange, row=30, rows=30):
        registry.getQuorumRow(1, 0, 30)
    with ape.reverts(registry.UnknownQuorum, epoch=1, quorumId=1):
        registry.getQuorum(1, 1)
    with ape.reverts(registry.UnknownEpoch, epoch=2, currentEpoch=1):
        registry.getQuorumMembers(2, 0)
    with ape.reverts(registry.UnknownQuorum, epoch=0, quorumId=0):
        registry.quorumRows(0, 0)


def test_quorums_when_votes_exceed_rows(world_multi):
    w = world_multi  # votes 3, 5, 4, 2 = 14 votes, 8 rows: 2 quorums, both the same stake-proportional sample
    assert w.registry.quorumCount(1) == 2 and len(w.quorums) == 2
    assert w.quorums[0] == w.quorums[1]
    rows = {m: len(w.quorums[0].rows_of(m)) for m in w.quorums[0].members}
    for s, v in zip(w.signers, w.votes):
        assert v * 8 // 14 <= rows.get(s.address, 0) <= -(-v * 8 // 14)
    for qid, q in enumerate(w.quorums):
        members, ends, _ = w.registry.getQuorumMembers(1, qid)
        assert list(members) == list(q.members) and list(ends) == list(q.ends)
        assert list(w.registry.getQuorum(1, qid)) == q.row_owners()


@pytest.mark.parametrize("votes,rows,max_quorums", [
    ([1], 5, 10),                  # one signer holds every row
    ([4, 4], 4, 10),               # two exact quorums
    ([3, 3, 3], 4, 2),             # 9 votes: 3 quorums, cut to 2 by maxQuorums
    ([9, 1, 2, 7, 3, 3, 1], 6, 10),  # 26 votes: 5 quorums of 6 rows, each signer its share
])
def test_make_epoch_matches_model(project, owner, signer_pool, votes, rows, max_quorums):
    w = build_world(owner, project, votes, rows=rows, max_quorums=max_quorums,
                    signers=signer_pool[:len(votes)])
    assert w.registry.quorumCount(1) == len(w.quorums)
    for qid, q in enumerate(w.quorums):
        members, ends, _ = w.registry.getQuorumMembers(1, qid)
        assert (tuple(members), tuple(ends)) == (q.members, q.ends)


def test_many_members_pack_over_several_words(project, owner, signer_pool):
    """16 members: the row ends spill into a second packed storage word."""
    w = build_world(owner, project, [1] * 16, rows=40, signers=signer_pool[:16])
    (q,) = w.quorums
    members, ends, _ = w.registry.getQuorumMembers(1, 0)
    assert (tuple(members), tuple(ends)) == (q.members, q.ends)
    for r in range(40):
        assert w.registry.getQuorumRow(1, 0, r) == q.owner(r)
    last = q.members[-1]
    total = _agg(w.registry, 1, 0, [r for m in q.members if m != last for r in q.rows_of(m)], 40)
    assert total[1:] == (40, 40 - len(q.rows_of(last)))


def test_registrations_do_not_carry_over(world, registry, owner):
    registry.forceMakeEpoch(sender=owner)
    assert registry.epochNumber() == 2 and registry.quorumCount(2) == 0
    s = world.signers[0]
    register_epoch(registry, s)
    registry.forceMakeEpoch(sender=owner)
    members, ends, _ = registry.getQuorumMembers(3, 0)
    assert list(members) == [s.address] and list(ends) == [30]
    # epoch 1's quorum is unchanged
    assert list(registry.getQuorumMembers(1, 0)[0]) == list(world.quorums[0].members)
    regs = [Registration(s.address, 1)]
    assert form_quorums(regs, 30, 10, bytes(registry.epochSeed(3)))[0].members == (s.address,)


# ---------------------------------------------------------------- getAggPkG1


def _agg(registry, epoch, qid, rows, total):
    apk, t, hit = registry.getAggPkG1(epoch, qid, bls.quorum_bitmap(rows, total))
    return (None if tuple(apk) == (0, 0) else tuple(apk)), t, hit


def test_get_agg_pk_g1_subsets(world, registry):
    (q,) = world.quorums
    keys = {s.address: s.key for s in world.signers}
    for chosen in ([], q.members[:1], q.members[1:4], q.members[::2], list(q.members)):
        rows = [r for m in chosen for r in q.rows_of(m)]
        apk, total, hit = _agg(registry, 1, 0, rows, 30)
        assert total == 30 and hit == len(rows)
        assert apk == bls.aggregate_g1(keys[m].pk_g1 for m in chosen)


def test_get_agg_pk_g1_rejects_bad_bitmaps(world, registry):
    (q,) = world.quorums
    full = bls.quorum_bitmap(range(30), 30)
    with ape.reverts(registry.BadBitmapLength, expected=4, actual=3):
        registry.getAggPkG1(1, 0, full[:3])
    with ape.reverts(registry.BadBitmapLength, expected=4, actual=5):
        registry.getAggPkG1(1, 0, full + b"\x00")
    with ape.reverts(registry.BitmapPaddingNotZero):
        registry.getAggPkG1(1, 0, full[:3] + bytes([full[3] | 0x80]))
    # one row of a member holding several (the rows per member follow the epoch's seed, a block hash)
    member = next(i for i in range(len(q.members)) if len(q.row_range(i)) >= 2)
    rows = q.row_range(member)
    partial = bls.quorum_bitmap([rows[0]], 30)
    with ape.reverts(registry.InconsistentBitmap, member=member, rowStart=rows.start, rowEnd=rows.stop):
        registry.getAggPkG1(1, 0, partial)
    with ape.reverts(registry.UnknownEpoch, epoch=5, currentEpoch=1):
        registry.getAggPkG1(5, 0, full)
    with ape.reverts(registry.UnknownQuorum, epoch=1, quorumId=1):
        registry.getAggPkG1(1, 1, full)
    with ape.reverts(registry.UnknownQuorum, epoch=0, quorumId=0):
        registry.getAggPkG1(0, 0, full)


def test_get_agg_pk_g1_3072_rows(world_3072):
    w = world_3072
    (q,) = w.quorums
    assert q.rows == 3072 and len(q.members) == 12
    full = bls.quorum_bitmap(range(3072), 3072)
    apk, total, hit = w.registry.getAggPkG1(1, 0, full)
    assert (total, hit) == (3072, 3072)
    assert tuple(apk) == tuple(w.registry.getQuorumMembers(1, 0)[2])
    absent = set(q.members[3:7])
    apk, total, hit = _agg(w.registry, 1, 0, [r for m in q.members if m not in absent for r in q.rows_of(m)],
                           3072)
    assert hit == 3072 - 4 * 256
    assert apk == bls.aggregate_g1(w.by_address(m).key.pk_g1 for m in q.members if m not in absent)
    # member boundaries fall inside bytes and across 256-row words: a single flipped row is caught
    for r in (255, 256, 1000, 3071):
        bitmap = bytearray(full)
        bitmap[r // 8] &= ~(1 << (r % 8)) & 0xFF
        with ape.reverts(w.registry.InconsistentBitmap):
            w.registry.getAggPkG1(1, 0, bytes(bitmap))

