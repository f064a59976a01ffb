"""AlignmentSupervision against the real Flow, license, delegation and rewards contracts: node registry, the
challenge pool, epochs and seeds, the on-chain challenge (the same as the off-chain derivation), attestations
weighted by licenses (a storage pass carries the challenged chunk proven against the flow root, a fail carries
evidence of tries), weighted results, flagging and slashing, duty (checked attestations only) reported to the
rewards contract, stake unbonding after results, pause; gas figures (`-s` prints the "GAS" line)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervision_helpers import (
    DA, EMPTY_PROOF, ETHER, FAIL, INCONCLUSIVE, PASS, REWARD_PER_LICENSE, SEGMENT_SIZE, STORAGE,
    challenge_proof, deploy_world, end_epoch, evidence, fail_error, make_operator, next_epoch, operator_accounts,
    pass_error, random_file, revert_name, storage_proof, submit_file, travel_to,
)

from deaios.alignment.challenge import storage_challenge

EPOCH = 600
SPAN = EPOCH // 4  # the deployment's minFailSpan
SLASH_BPS = 1_000
N, K = 4, 2  # the erasure code: files with >= 3 full data segments enter the pool
SIZES = [5 * SEGMENT_SIZE + 1234, 3000, 4 * SEGMENT_SIZE]


@pytest.fixture(scope="module")
def world(accounts, project):
    return deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=SLASH_BPS)


@pytest.fixture(scope="module")
def ops(accounts, world):
    """Three operators running 1, 1 and 3 licenses (from the next epoch on)."""
    out = operator_accounts(accounts, 3)
    for account, licenses in zip(out, (1, 1, 3)):
        make_operator(world, account, licenses=licenses)
    return out


@pytest.fixture(scope="module")
def files(world):
    """Three submitted files: their events and bytes by tx seq."""
    datas = [random_file(size, seed) for seed, size in enumerate(SIZES)]
    events = [submit_file(world, data) for data in datas]
    return events, {e.seq: d for e, d in zip(events, datas)}


@pytest.fixture(scope="module")
def nodes(world, accounts, files):
    """Nodes 0, 1: storage (placements 0 and 1 of a 4-node code; node 0 run by accounts[5], who stakes 1 ether);
    node 2: DA. Files 0 and 2 are in the challenge pool."""
    sup = world.supervision
    sup.setErasureCode(N, K, sender=world.owner)
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, 0, sender=world.owner)
    sup.registerNode(STORAGE, "http://127.0.0.1:2", accounts[6].address, 1, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:3", accounts[7].address, 0, sender=world.owner)
    sup.stake(0, sender=accounts[5], value=ETHER)
    for seq in (0, 2):
        sup.registerChallengeFile(seq, sender=accounts[8])
    return [0, 1, 2]


@pytest.fixture
def epoch(world, nodes, ops):
    """A freshly opened epoch (the chain jumps to the start of the next one, plus the fail span so that fail
    evidence fits)."""
    return next_epoch(world, into=SPAN)


def proof_for(world, files, epoch, node_id, attempt=None):
    events, datas = files
    return challenge_proof(world, events, datas, epoch, node_id, attempt)


# -- registry, params, pool, epochs ------------------------------------------------------------------------


def test_deployment_and_node_registry(world, nodes, accounts):
    sup = world.supervision
    assert sup.epochSeconds() == EPOCH == world.delegation.epochSeconds()
    assert sup.genesis() == world.delegation.genesis()
    p = sup.params()
    assert (p.slashBps, p.minWeight, p.unbondingEpochs, p.minFailTries, p.minFailSpan) == (SLASH_BPS, 1, 2, 3, SPAN)
    assert (sup.codeN(), sup.codeK()) == (N, K)
    assert sup.nodeCount() == 3 and sup.activeNodeCount() == 3 and sup.activeStorageCount() == 2
    node = sup.getNode(1)
    assert (node.kind, node.active, node.flagged, node.operator, node.placement, node.url) == (
        STORAGE, True, False, accounts[6].address, 1, "http://127.0.0.1:2")
    assert sup.getNode(0).stake == ETHER
    assert revert_name(sup, "registerNode", STORAGE, "http://x", accounts[1].address, 0, sender=accounts[1]) \
        == "AccessControlUnauthorizedAccount"
    assert revert_name(sup, "registerNode", STORAGE, "h" * 257, accounts[1].address, 0, sender=world.owner) == "BadUrl"
    assert revert_name(sup, "registerNode", DA, "http://x", "0x" + "00" * 20, 0, sender=world.owner) == "ZeroAddress"
    assert revert_name(sup, "getNode", 9, sender=world.owner) == "UnknownNode"
    assert revert_name(sup, "setErasureCode", 4, 5, sender=world.owner) == "InvalidParams"
    sup.setNodeActive(2, False, sender=world.owner)
    assert sup.activeNodeCount() == 2 and sup.activeStorageCount() == 2
    sup.setNodeActive(0, False, sender=world.owner)
    assert sup.activeStorageCount() == 1
    sup.setNodeUrl(1, "http://127.0.0.1:9", sender=world.owner)
    assert sup.getNode(1).url == "http://127.0.0.1:9"
    for bad in ((10_001, 1, 0, 3, SPAN), (0, 0, 0, 3, SPAN), (0, 1, 0, 0, SPAN), (0, 1, 0, 3, EPOCH)):
        assert revert_name(sup, "setParams", bad, sender=world.owner) == "InvalidParams", bad


def test_challenge_pool(world, nodes, files, accounts):
    sup = world.supervision
    assert sup.challengeFileCount() == 2 and [sup.challengeFile(i) for i in range(2)] == [0, 2]
    assert sup.isChallengeFile(0) and not sup.isChallengeFile(1)
    assert revert_name(sup, "registerChallengeFile", 1, sender=accounts[8]) == "FileTooSmall"  # 3000 bytes
    assert revert_name(sup, "registerChallengeFile", 0, sender=accounts[8]) == "AlreadyChallengeFile"
    assert revert_name(sup, "registerChallengeFile", 9, sender=accounts[8]) == "UnknownSubmission"


def test_open_epoch_fixes_seed_and_pool_size_once(world, nodes, files):
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    epoch = sup.currentEpoch()
    assert sup.epochInfo(epoch).seed == b"\0" * 32
    assert sup.challengeOf(epoch, 0, 0)[0] is False  # not opened: no challenge
    tx = sup.openEpoch(sender=world.owner)
    (event,) = [e for e in tx.events if e.event_name == "EpochOpened"]
    assert event.epoch == epoch and event.files == 2
    info = sup.epochInfo(epoch)
    assert info.seed == event.seed != b"\0" * 32 and info.files == 2
    tx = sup.openEpoch(sender=world.owner)  # idempotent within the epoch
    assert not [e for e in tx.events if e.event_name == "EpochOpened"]
    assert sup.epochInfo(epoch).seed == info.seed


def test_on_chain_challenge_is_the_off_chain_derivation(world, epoch, files):
    sup = world.supervision
    events, _ = files
    info = sup.epochInfo(epoch)
    pool = [sup.challengeFile(i) for i in range(info.files)]
    for node_id, placement in ((0, 0), (1, 1)):
        for attempt in range(sup.MAX_ATTEMPTS() + 1):
            got = sup.challengeOf(epoch, node_id, attempt)
            mine = storage_challenge(bytes(info.seed), node_id, attempt, pool, info.files,
                                     {e.seq: e for e in events}, placement, N, K)
            assert (got[0], tuple(got[1:]) if got[0] else None) == \
                (mine is not None, (mine.tx_seq, mine.chunk_index, mine.position) if mine else None)
    assert sup.challengeOf(epoch, 2, 0)[0] is False  # a DA node has no storage challenge


# -- attestations ----------------------------------------------------------------------------------------------


def test_attestation_preconditions(world, nodes, ops, files, accounts):
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    epoch = sup.currentEpoch()
    assert pass_error(world, ops[0], epoch, 2) == "EpochNotOpened"
    sup.openEpoch(sender=ops[0])
    assert pass_error(world, ops[0], epoch + 1, 2) == "EpochNotCurrent"
    assert pass_error(world, accounts[1], epoch, 2) == "NotActiveOperator"
    assert pass_error(world, ops[0], epoch, 7) == "UnknownNode"
    # a license delegated now runs from the next epoch: its operator cannot attest yet
    (late,) = operator_accounts(accounts, 4)[3:]
    make_operator(world, late)
    assert pass_error(world, late, epoch, 2) == "NotActiveOperator"
    sup.attestPass(epoch, 2, EMPTY_PROOF, sender=ops[0])  # DA: no proof
    assert pass_error(world, ops[0], epoch, 2) == "AlreadyAttested"
    sup.setNodeActive(2, False, sender=world.owner)
    assert pass_error(world, ops[1], epoch, 2) == "NodeInactive"
    assert sup.tallyOf(epoch, 2).passes == 1


def test_storage_pass_must_prove_the_challenged_chunk(world, epoch, ops, files):
    sup = world.supervision
    events, datas = files
    attempt, chunk, siblings = good = proof_for(world, files, epoch, 0)
    ok, tx_seq, chunk_index, position = sup.challengeOf(epoch, 0, attempt)
    tampered = bytearray(chunk)
    tampered[7] ^= 1
    neighbour = storage_proof(events, next(e for e in events if e.seq == tx_seq), datas[tx_seq],
                              chunk_index ^ 1)[2:]  # the chunk next to the challenged one, correctly proven
    other = next(a for a in range(1, 9) if sup.challengeOf(epoch, 0, a)[0] and sup.challengeOf(epoch, 0, a)[3]
                 != position)
    cases = [
        ((attempt, bytes(tampered), siblings), "InvalidChunkProof"),
        ((attempt, *neighbour), "InvalidChunkProof"),  # a valid proof of another position
        ((other, chunk, siblings), "InvalidChunkProof"),  # another attempt's challenge
        ((attempt, chunk, siblings[:-1]),
         "PositionOutOfTree" if position >> (len(siblings) - 1) else "InvalidChunkProof"),
        ((attempt, chunk[:-1], siblings), "BadChunkLength"),
        ((sup.MAX_ATTEMPTS(), chunk, siblings), "NoChallenge"),
        ((attempt, chunk, siblings + [b"\1" * 32] * (65 - len(siblings))), "ProofTooLong"),
    ]
    assert [pass_error(world, ops[0], epoch, 0, proof) for proof, _ in cases] == [e for _, e in cases]
    assert pass_error(world, ops[0], epoch, 0, good) is None
    tx = sup.attestPass(epoch, 0, good, sender=ops[0])
    (event,) = [e for e in tx.events if e.event_name == "Attested"]
    assert (event.nodeId, event.operator, event.passed, event.weight) == (0, ops[0].address, True, 1)
    assert (event.txSeq, event.position) == (tx_seq, position)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempt=st.integers(0, 7), node_id=st.integers(0, 1), flip=st.integers(0, 255))
def test_any_challenge_proof_verifies_and_any_change_fails(world, epoch, ops, files, attempt, node_id, flip):
    if not world.supervision.challengeOf(epoch, node_id, attempt)[0]:
        return
    attempt, chunk, siblings = proof_for(world, files, epoch, node_id, attempt)
    assert pass_error(world, ops[0], epoch, node_id, (attempt, chunk, siblings)) is None
    bad = bytearray(chunk)
    bad[flip] ^= 0x80
    assert pass_error(world, ops[0], epoch, node_id, (attempt, bytes(bad), siblings)) == "InvalidChunkProof"


def test_fail_needs_evidence(world, nodes, ops):
    sup = world.supervision
    epoch = next_epoch(world, into=SPAN // 2)  # half the span into the epoch: a full span cannot fit yet
    assert fail_error(world, ops[0], epoch, 0, evidence(world)) == "InsufficientEvidence"
    travel_to(sup.epochStart(epoch) + SPAN)
    for bad in (evidence(world, tries=2), evidence(world, span=SPAN - 1), ([0, 5, 5, SPAN], b"\1" * 32),
                ([1, 5, SPAN], b"\1" * 32), ([], b"\1" * 32)):
        assert fail_error(world, ops[0], epoch, 0, bad) == "InsufficientEvidence", bad
    good = evidence(world, record=b"\7" * 32)
    tx = sup.attestFail(epoch, 0, good, sender=ops[0])
    (given_,) = [e for e in tx.events if e.event_name == "FailEvidenceGiven"]
    assert (list(given_.tries), bytes(given_.record)) == (good[0], b"\7" * 32)
    assert sup.tallyOf(epoch, 0).fails == 1


# -- results, flags, slashing, duty ------------------------------------------------------------------------------


def test_weighted_majority_flags_slashes_and_a_later_pass_clears(world, epoch, ops, files, accounts):
    sup = world.supervision
    # node 0: two 1-license operators fail it, the 3-license operator passes it: pass (3 > 2)
    sup.attestFail(epoch, 0, evidence(world), sender=ops[0])
    sup.attestFail(epoch, 0, evidence(world), sender=ops[1])
    sup.attestPass(epoch, 0, proof_for(world, files, epoch, 0), sender=ops[2])
    # node 1: 1 pass, 1 fail: a tie; node 2 (DA): the 3-license operator fails it
    sup.attestPass(epoch, 1, proof_for(world, files, epoch, 1), sender=ops[0])
    sup.attestFail(epoch, 1, evidence(world), sender=ops[1])
    sup.attestFail(epoch, 2, evidence(world), sender=ops[2])
    assert revert_name(sup, "finalize", epoch, [0, 1], sender=accounts[9]) == "EpochNotOver"
    end_epoch(world, epoch)
    tx = sup.finalize(epoch, [0, 1, 2], sender=accounts[9])  # anyone
    results = {e.nodeId: (e.result, e.passes, e.fails) for e in tx.events if e.event_name == "NodeResult"}
    assert results == {0: (PASS, 3, 2), 1: (INCONCLUSIVE, 1, 1), 2: (FAIL, 0, 3)}
    (flag,) = [e for e in tx.events if e.event_name == "NodeFlagged"]
    assert (flag.nodeId, flag.epoch, flag.slashed) == (2, epoch, 0)  # node 2 staked nothing
    tx = sup.finalize(epoch, [0], sender=accounts[9])  # already recorded: skipped, no event
    assert not [e for e in tx.events if e.event_name == "NodeResult"]

    # node 0 fails by weight in the next epoch: flagged and slashed; then a pass clears it
    nxt = next_epoch(world, into=SPAN)
    sup.attestFail(nxt, 0, evidence(world), sender=ops[2])
    end_epoch(world, nxt)
    tx = sup.finalize(nxt, [0], sender=accounts[9])
    (flag,) = [e for e in tx.events if e.event_name == "NodeFlagged"]
    assert flag.slashed == ETHER * SLASH_BPS // 10_000 and sup.slashedPool() == flag.slashed
    node = sup.getNode(0)
    assert node.flagged and node.failures == 1 and node.stake == ETHER - flag.slashed
    third = next_epoch(world)
    sup.attestPass(third, 0, proof_for(world, files, third, 0), sender=ops[0])
    end_epoch(world, third)
    tx = sup.finalize(third, [0], sender=accounts[9])
    assert [e.nodeId for e in tx.events if e.event_name == "NodeCleared"] == [0]
    assert not sup.getNode(0).flagged

    # the admin withdraws the slashed stake (pull); nobody else can
    assert revert_name(sup, "withdrawSlashed", accounts[9].address, 1, sender=accounts[9]) \
        == "AccessControlUnauthorizedAccount"
    assert revert_name(sup, "withdrawSlashed", accounts[8].address, flag.slashed + 1, sender=world.owner) \
        == "AmountTooLarge"
    before = accounts[8].balance
    sup.withdrawSlashed(accounts[8].address, flag.slashed, sender=world.owner)
    assert accounts[8].balance == before + flag.slashed and sup.slashedPool() == 0


def test_min_weight_and_batch_bound(world, epoch, ops, accounts):
    sup = world.supervision
    sup.setParams((SLASH_BPS, 2, 2, 3, SPAN), sender=world.owner)
    sup.attestFail(epoch, 2, evidence(world), sender=ops[0])  # weight 1 < 2
    end_epoch(world, epoch)
    sup.finalize(epoch, [2], sender=accounts[9])
    assert sup.tallyOf(epoch, 2).result == INCONCLUSIVE
    assert revert_name(sup, "finalize", epoch, [2] * 65, sender=accounts[9]) == "BatchTooLarge"


def test_duty_counts_checked_storage_attestations_only(world, epoch, ops, files):
    sup, rewards = world.supervision, world.rewards
    op = ops[2]  # 3 licenses
    sup.attestPass(epoch, 2, EMPTY_PROOF, sender=op)  # DA: a vote the chain cannot check, not paid
    sup.attestFail(epoch, 0, evidence(world), sender=op)
    assert not sup.dutyRecorded(epoch, op.address) and sup.checkedCount(epoch, op.address) == 1
    tx = sup.attestPass(epoch, 1, proof_for(world, files, epoch, 1), sender=op)
    assert [e.operator for e in tx.events if e.event_name == "OperatorDutyDone"] == [op.address]
    (recorded,) = [e for e in tx.events if e.event_name == "OperatedRecorded"]
    assert (recorded.epoch, recorded.operator, recorded.licenses, recorded.perLicense) == (
        epoch, op.address, 3, REWARD_PER_LICENSE)
    assert sup.dutyRecorded(epoch, op.address) and rewards.recorded(epoch, op.address)
    assert not sup.dutyRecorded(epoch, ops[1].address)


def test_stake_unbonding_waits_for_results(world, nodes, ops, accounts):
    sup = world.supervision
    node_op = accounts[6]
    assert revert_name(sup, "stake", 1, sender=accounts[5], value=1) == "NotNodeOperator"
    assert revert_name(sup, "stake", 1, sender=node_op) == "InvalidParams"
    sup.stake(1, sender=node_op, value=10**17)
    assert revert_name(sup, "withdrawStake", 1, node_op.address, sender=node_op) == "UnstakeNotRequested"
    epoch = next_epoch(world, into=SPAN)
    tx = sup.requestUnstake(1, sender=node_op)
    (event,) = [e for e in tx.events if e.event_name == "UnstakeRequested"]
    assert event.availableEpoch == epoch + 3  # unbonding 2 epochs after the current one
    sup.attestFail(epoch, 1, evidence(world), sender=ops[0])  # a result still to come
    assert revert_name(sup, "withdrawStake", 1, node_op.address, sender=node_op) == "StakeLocked"
    travel_to(sup.epochStart(event.availableEpoch))
    assert revert_name(sup, "withdrawStake", 1, node_op.address, sender=node_op) == "ResultsPending"
    sup.finalize(epoch, [1], sender=accounts[9])  # anyone: the failed epoch is slashed first
    assert sup.getNode(1).stake == 10**17 - 10**17 * SLASH_BPS // 10_000
    assert revert_name(sup, "withdrawStake", 1, accounts[5].address, sender=accounts[5]) == "NotNodeOperator"
    before = accounts[4].balance
    sup.withdrawStake(1, accounts[4].address, sender=node_op)
    assert accounts[4].balance == before + 10**17 * 9 // 10
    assert sup.getNode(1).stake == 0 and sup.getNode(1).unstakeEpoch == 0


def test_pause(world, epoch, ops, accounts):
    sup = world.supervision
    assert revert_name(sup, "pause", sender=accounts[9]) == "AccessControlUnauthorizedAccount"
    sup.pause(sender=world.owner)
    assert pass_error(world, ops[0], epoch, 2) == "EnforcedPause"
    assert revert_name(sup, "openEpoch", sender=ops[0]) == revert_name(sup, "finalize", 0, [], sender=ops[0]) \
        == "EnforcedPause"
    sup.unpause(sender=world.owner)
    sup.attestPass(epoch, 2, EMPTY_PROOF, sender=ops[0])


def test_gas(world, epoch, ops, files, accounts):
    sup = world.supervision
    big = proof_for(world, files, epoch, 0)
    figures = {
        f"attestPass storage ({len(big[2])}-sibling proof)": sup.attestPass(epoch, 0, big, sender=ops[0]).gas_used,
        "attestFail (3 tries)": sup.attestFail(epoch, 0, evidence(world), sender=ops[1]).gas_used,
        "attestPass DA": sup.attestPass(epoch, 2, EMPTY_PROOF, sender=ops[1]).gas_used,
        "attest completing duty (+ rewards.recordOperated)":
            sup.attestPass(epoch, 1, proof_for(world, files, epoch, 1), sender=ops[1]).gas_used,
    }
    sup.attestFail(epoch, 0, evidence(world), sender=ops[2])
    end_epoch(world, epoch)
    figures["finalize 3 nodes"] = sup.finalize(epoch, [0, 1, 2], sender=accounts[9]).gas_used
    print("GAS " + json.dumps(figures))
    assert all(gas < 350_000 for gas in figures.values())
