"""AlignmentSupervision against the real Flow, license, delegation and rewards contracts: node registry,
epochs and seeds, attestations (storage passes carry a chunk proven on chain against the flow root), majority
results, flagging and slashing, duty reported to the rewards contract, stake unbonding, pause; gas figures
(`-s` prints the "GAS" line)."""

from __future__ import annotations

import json

import ape
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervision_helpers import (
    DA, EMPTY_PROOF, ETHER, FAIL, INCONCLUSIVE, NONE, REWARD_PER_LICENSE, SEGMENT_SIZE, STORAGE, attest_error,
    revert_name,
    deploy_world, make_operator, operator_accounts, random_file, storage_proof, submit_file,
)

from deaios.storage.merkle import num_chunks, padded_chunks

EPOCH = 600
SLASH_BPS = 1_000
SIZES = [5 * SEGMENT_SIZE + 1234, 3000, 1]


@pytest.fixture(scope="module")
def world(accounts, project):
    return deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=SLASH_BPS)


@pytest.fixture(scope="module")
def ops(accounts, world):
    out = operator_accounts(accounts, 3)
    for account in out:
        make_operator(world, account)
    return out


@pytest.fixture(scope="module")
def files(world):
    """(data, event) of three submitted files, and every event (for flow proofs)."""
    datas = [random_file(size, seed) for seed, size in enumerate(SIZES)]
    events = [submit_file(world, data) for data in datas]
    return list(zip(datas, events)), events


@pytest.fixture(scope="module")
def nodes(world, accounts, files):
    """Node 0, 1: storage (node 0 run by accounts[5], who stakes 1 ether); node 2: DA."""
    sup = world.supervision
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, sender=world.owner)
    sup.registerNode(STORAGE, "http://127.0.0.1:2", accounts[6].address, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:3", accounts[7].address, sender=world.owner)
    sup.stake(0, sender=accounts[5], value=ETHER)
    return [0, 1, 2]


@pytest.fixture
def epoch(world, nodes, ops):
    """A freshly opened epoch (the chain jumps to the start of the next one)."""
    return open_next_epoch(world.supervision)


def travel_to(timestamp: int) -> None:
    from ape import chain

    if timestamp > chain.pending_timestamp:
        chain.pending_timestamp = timestamp
    chain.mine()


def open_next_epoch(sup) -> int:
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    sup.openEpoch(sender=ape.accounts.test_accounts[0])
    return sup.currentEpoch()


def end_epoch(sup, epoch: int) -> None:
    travel_to(sup.epochStart(epoch + 1))


def proof_of(files, index: int, chunk: int) -> tuple:
    (data, event), events = files[0][index], files[1]
    return storage_proof(events, event, data, chunk)


# -- registry, params, epochs --------------------------------------------------------------------------------


def test_deployment_and_node_registry(world, nodes, accounts):
    sup = world.supervision
    assert sup.epochSeconds() == EPOCH and sup.slashBps() == SLASH_BPS and sup.minAttestations() == 1
    assert sup.nodeCount() == 3 and sup.activeNodeCount() == 3
    node = sup.getNode(0)
    assert (node.kind, node.active, node.flagged, node.operator, node.stake, node.url) == (
        STORAGE, True, False, accounts[5].address, ETHER, "http://127.0.0.1:1")
    with ape.reverts(sup.AccessControlUnauthorizedAccount, account=accounts[1].address,
                     neededRole=sup.NODE_ADMIN_ROLE()):
        sup.registerNode(STORAGE, "http://x", accounts[1].address, sender=accounts[1])
    assert revert_name(sup, "registerNode", STORAGE, "h" * 257, accounts[1].address, sender=world.owner) == "BadUrl"
    assert revert_name(sup, "registerNode", STORAGE, "", accounts[1].address, sender=world.owner) == "BadUrl"
    assert revert_name(sup, "registerNode", DA, "http://x", "0x" + "00" * 20, sender=world.owner) == "ZeroAddress"
    assert revert_name(sup, "getNode", 9, sender=world.owner) == "UnknownNode"
    tx = sup.setNodeActive(2, False, sender=world.owner)
    assert [e.active for e in tx.events if e.event_name == "NodeActiveSet"] == [False]
    assert sup.activeNodeCount() == 2
    tx = sup.setNodeUrl(1, "http://127.0.0.1:9", sender=world.owner)
    assert sup.getNode(1).url == "http://127.0.0.1:9"
    assert revert_name(sup, "setParams", 10_001, 1, 0, sender=world.owner) == "InvalidParams"
    assert revert_name(sup, "setParams", 0, 0, 0, sender=world.owner) == "InvalidParams"


def test_open_epoch_fixes_seed_and_submissions_once(world, nodes, files):
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    epoch = sup.currentEpoch()
    assert sup.epochInfo(epoch).seed == b"\0" * 32
    tx = sup.openEpoch(sender=world.owner)
    (event,) = [e for e in tx.events if e.event_name == "EpochOpened"]
    assert event.epoch == epoch and event.submissions == len(SIZES)
    info = sup.epochInfo(epoch)
    assert info.seed == event.seed != b"\0" * 32
    tx = sup.openEpoch(sender=world.owner)  # idempotent within the epoch
    assert not [e for e in tx.events if e.event_name == "EpochOpened"]
    assert sup.epochInfo(epoch).seed == info.seed


# -- attestations ----------------------------------------------------------------------------------------------


def test_attestation_preconditions(world, nodes, ops, files, accounts):
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    epoch = sup.currentEpoch()
    with ape.reverts(sup.EpochNotOpened, epoch=epoch):
        sup.attest(epoch, 2, True, EMPTY_PROOF, sender=ops[0])
    sup.openEpoch(sender=ops[0])
    assert attest_error(world, ops[0], epoch + 1, 2, True, EMPTY_PROOF) == "EpochNotCurrent"
    assert attest_error(world, accounts[1], epoch, 2, True, EMPTY_PROOF) == "NotActiveOperator"
    assert attest_error(world, ops[0], epoch, 7, True, EMPTY_PROOF) == "UnknownNode"
    sup.attest(epoch, 2, True, EMPTY_PROOF, sender=ops[0])  # DA: no proof
    assert attest_error(world, ops[0], epoch, 2, False, EMPTY_PROOF) == "AlreadyAttested"
    sup.setNodeActive(2, False, sender=world.owner)
    assert attest_error(world, ops[1], epoch, 2, True, EMPTY_PROOF) == "NodeInactive"
    assert sup.tallyOf(epoch, 2).passes == 1


def test_storage_pass_is_verified_on_chain(world, epoch, ops, files):
    sup = world.supervision
    good = proof_of(files, 0, 1500)  # in segment 1 of a 6-segment file
    tx_seq, position, chunk, siblings = good
    tampered = bytearray(chunk)
    tampered[7] ^= 1
    cases = [
        ((tx_seq, position, bytes(tampered), siblings), "InvalidChunkProof"),
        ((tx_seq, position + 1, chunk, siblings), "InvalidChunkProof"),
        ((tx_seq, position, chunk, siblings[:-1]), "InvalidChunkProof"),
        ((tx_seq, position + (1 << len(siblings)), chunk, siblings), "PositionOutOfTree"),
        ((tx_seq, position, chunk, siblings[1:]), "InvalidChunkProof"),
        ((tx_seq, position, chunk[:-1], siblings), "BadChunkLength"),
        ((len(SIZES), position, chunk, siblings), "UnknownSubmission"),
        ((tx_seq, position, chunk, siblings + [b"\1" * 32] * (65 - len(siblings))), "ProofTooLong"),
    ]
    assert [attest_error(world, ops[0], epoch, 0, True, proof) for proof, _ in cases] == [e for _, e in cases]
    assert attest_error(world, ops[0], epoch, 0, True, good) is None
    with ape.reverts(sup.InvalidChunkProof, txSeq=tx_seq, position=position + 1):
        sup.attest(epoch, 0, True, cases[1][0], sender=ops[0])
    tx = sup.attest(epoch, 0, True, good, sender=ops[0])
    (event,) = [e for e in tx.events if e.event_name == "Attested"]
    assert (event.nodeId, event.operator, event.passed) == (0, ops[0].address, True)
    assert (event.txSeq, event.position) == (tx_seq, position)
    # a failure needs no proof; a file submitted after the epoch was opened cannot be used
    sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[1])
    late_data = random_file(5000, 99)
    late = submit_file(world, late_data)
    late_proof = storage_proof(files[1] + [late], late, late_data, 3)
    with ape.reverts(sup.UnknownSubmission, txSeq=late.seq):
        sup.attest(epoch, 0, True, late_proof, sender=ops[2])
    assert (sup.tallyOf(epoch, 0).passes, sup.tallyOf(epoch, 0).fails) == (1, 1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_index=st.integers(0, len(SIZES) - 1), where=st.floats(0, 1, exclude_max=True),
       flip=st.integers(0, 255))
def test_any_chunk_proof_verifies_and_any_change_fails(world, epoch, ops, files, file_index, where, flip):
    sup = world.supervision
    data, _ = files[0][file_index]
    chunk_index = int(where * padded_chunks(num_chunks(len(data))))
    tx_seq, position, chunk, siblings = proof_of(files, file_index, chunk_index)
    assert attest_error(world, ops[0], epoch, 1, True, (tx_seq, position, chunk, siblings)) is None
    bad = bytearray(chunk)
    bad[flip] ^= 0x80
    assert attest_error(world, ops[0], epoch, 1, True, (tx_seq, position, bytes(bad), siblings)) == "InvalidChunkProof"


# -- results, flags, slashing, duty ------------------------------------------------------------------------------


def test_majority_flags_slashes_and_a_later_pass_clears(world, epoch, ops, files, accounts):
    sup = world.supervision
    good = proof_of(files, 0, 10)
    sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[0])
    sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[1])
    sup.attest(epoch, 0, True, good, sender=ops[2])
    sup.attest(epoch, 1, True, proof_of(files, 1, 2), sender=ops[0])
    sup.attest(epoch, 1, False, EMPTY_PROOF, sender=ops[1])  # a tie
    with ape.reverts(sup.EpochNotOver, epoch=epoch):
        sup.finalize(epoch, [0, 1], sender=accounts[9])
    end_epoch(sup, epoch)
    tx = sup.finalize(epoch, [0, 1, 2], sender=accounts[9])  # anyone; node 2 has no attestation: skipped
    results = {e.nodeId: (e.result, e.passes, e.fails) for e in tx.events if e.event_name == "NodeResult"}
    assert results == {0: (FAIL, 1, 2), 1: (INCONCLUSIVE, 1, 1)}
    (flag,) = [e for e in tx.events if e.event_name == "NodeFlagged"]
    assert (flag.nodeId, flag.epoch, flag.slashed) == (0, epoch, ETHER * SLASH_BPS // 10_000)
    node = sup.getNode(0)
    assert node.flagged and node.failures == 1 and node.stake == ETHER - flag.slashed
    assert sup.slashedPool() == flag.slashed
    tx = sup.finalize(epoch, [0], sender=accounts[9])  # already recorded: skipped, no event
    assert not [e for e in tx.events if e.event_name == "NodeResult"]
    assert sup.tallyOf(epoch, 2).result == NONE

    nxt = open_next_epoch(sup)
    sup.attest(nxt, 0, True, good, sender=ops[0])
    end_epoch(sup, nxt)
    tx = sup.finalize(nxt, [0], sender=accounts[9])
    assert [e.nodeId for e in tx.events if e.event_name == "NodeCleared"] == [0]
    assert not sup.getNode(0).flagged and sup.getNode(0).failures == 1

    # the admin withdraws the slashed stake (pull); nobody else can
    assert revert_name(sup, "withdrawSlashed", accounts[9].address, 1, sender=accounts[9]) \
        == "AccessControlUnauthorizedAccount"
    with ape.reverts(sup.AmountTooLarge, amount=flag.slashed + 1, available=flag.slashed):
        sup.withdrawSlashed(accounts[8].address, flag.slashed + 1, sender=world.owner)
    before = accounts[8].balance
    sup.withdrawSlashed(accounts[8].address, flag.slashed, sender=world.owner)
    assert accounts[8].balance == before + flag.slashed and sup.slashedPool() == 0


def test_min_attestations_and_batch_bound(world, epoch, ops, accounts):
    sup = world.supervision
    sup.setParams(SLASH_BPS, 2, 2, sender=world.owner)
    sup.attest(epoch, 2, False, EMPTY_PROOF, sender=ops[0])
    end_epoch(sup, epoch)
    sup.finalize(epoch, [2], sender=accounts[9])
    assert sup.tallyOf(epoch, 2).result == NONE  # one attestation is not enough
    assert revert_name(sup, "finalize", epoch, [2] * 65, sender=accounts[9]) == "BatchTooLarge"


def test_duty_is_reported_to_rewards_once_every_node_is_attested(world, epoch, ops, files):
    sup, rewards = world.supervision, world.rewards
    op = ops[0]
    sup.attest(epoch, 0, False, EMPTY_PROOF, sender=op)
    sup.attest(epoch, 1, True, proof_of(files, 0, 0), sender=op)
    assert not sup.dutyRecorded(epoch, op.address) and sup.attestationCount(epoch, op.address) == 2
    tx = sup.attest(epoch, 2, True, EMPTY_PROOF, sender=op)
    assert [e.operator for e in tx.events if e.event_name == "OperatorDutyDone"] == [op.address]
    (recorded,) = [e for e in tx.events if e.event_name == "OperatedRecorded"]
    assert recorded.epoch == epoch and recorded.operator == op.address and recorded.perLicense == REWARD_PER_LICENSE
    assert sup.dutyRecorded(epoch, op.address) and rewards.recorded(epoch, op.address)
    assert not sup.dutyRecorded(epoch, ops[1].address)


def test_stake_unbonding(world, nodes, accounts):
    sup = world.supervision
    node_op = accounts[6]
    with ape.reverts(sup.NotNodeOperator, nodeId=1, account=accounts[5].address):
        sup.stake(1, sender=accounts[5], value=1)
    assert revert_name(sup, "stake", 1, sender=node_op) == "InvalidParams"
    sup.stake(1, sender=node_op, value=10**17)
    assert revert_name(sup, "withdrawStake", 1, node_op.address, sender=node_op) == "UnstakeNotRequested"
    tx = sup.requestUnstake(1, sender=node_op)
    (event,) = [e for e in tx.events if e.event_name == "UnstakeRequested"]
    assert event.availableEpoch == sup.currentEpoch() + 3  # unbonding 2 epochs after the current one
    with ape.reverts(sup.StakeLocked, nodeId=1, untilEpoch=event.availableEpoch):
        sup.withdrawStake(1, node_op.address, sender=node_op)
    travel_to(sup.epochStart(event.availableEpoch))
    assert revert_name(sup, "withdrawStake", 1, accounts[5].address, sender=accounts[5]) == "NotNodeOperator"
    before = accounts[4].balance
    sup.withdrawStake(1, accounts[4].address, sender=node_op)
    assert accounts[4].balance == before + 10**17 and sup.getNode(1).stake == 0 and sup.getNode(1).unstakeEpoch == 0


def test_pause(world, epoch, ops, accounts):
    sup = world.supervision
    assert revert_name(sup, "pause", sender=accounts[9]) == "AccessControlUnauthorizedAccount"
    sup.pause(sender=world.owner)
    with ape.reverts(sup.EnforcedPause):
        sup.attest(epoch, 2, True, EMPTY_PROOF, sender=ops[0])
    assert revert_name(sup, "openEpoch", sender=ops[0]) == revert_name(sup, "finalize", 0, [], sender=ops[0]) \
        == "EnforcedPause"
    sup.unpause(sender=world.owner)
    sup.attest(epoch, 2, True, EMPTY_PROOF, sender=ops[0])


def test_gas(world, epoch, ops, files, accounts):
    sup = world.supervision
    big = proof_of(files, 0, 4000)
    figures = {
        f"attest storage pass ({len(big[3])}-sibling proof)": sup.attest(epoch, 0, True, big, sender=ops[0]).gas_used,
        "attest fail": sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[1]).gas_used,
        "attest DA pass": sup.attest(epoch, 2, True, EMPTY_PROOF, sender=ops[1]).gas_used,
        "attest completing duty (+ rewards.recordOperated)":
            sup.attest(epoch, 1, False, EMPTY_PROOF, sender=ops[1]).gas_used,
    }
    sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[2])
    end_epoch(sup, epoch)
    figures["finalize 3 nodes (1 flagged + slashed)"] = sup.finalize(epoch, [0, 1, 2], sender=accounts[9]).gas_used
    print("GAS " + json.dumps(figures))
    assert all(gas < 300_000 for gas in figures.values())
