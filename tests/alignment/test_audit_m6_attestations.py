"""Audit M6: supervision attestations prove little and are paid anyway.

* a storage "pass" carries a chunk proven against the flow root, but any chunk of any file will do: the chain
  does not check that it is the chunk the epoch's seed challenges from that node;
* a "fail" carries nothing: one operator's word flags (and slashes) a node;
* an operator that checked nothing (DA "pass" and storage "fail", neither checkable on chain) is paid the
  epoch's reward like one that did the work.
"""

from __future__ import annotations

import pytest
from supervision_helpers import (
    DA, EMPTY_PROOF, ETHER, STORAGE, deploy_world, make_operator, operator_accounts, random_file, revert_name,
    storage_proof, submit_file,
)

EPOCH = 600


def travel_to(timestamp: int) -> None:
    from ape import chain

    if timestamp > chain.pending_timestamp:
        chain.pending_timestamp = timestamp
    chain.mine()


@pytest.fixture(scope="module")
def world(accounts, project):
    return deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=1_000)


@pytest.fixture(scope="module")
def setup(world, accounts):
    ops = operator_accounts(accounts, 2)
    for op in ops:
        make_operator(world, op)
    data = random_file(5 * 256 * 1024 + 77, 11)
    event = submit_file(world, data)
    sup = world.supervision
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:2", accounts[6].address, sender=world.owner)
    sup.stake(0, sender=accounts[5], value=ETHER)
    return ops, data, event


@pytest.fixture
def epoch(world, setup):
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    sup.openEpoch(sender=setup[0][0])
    return sup.currentEpoch()


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="exploit M6: a pass may prove any chunk, not the challenged one")
def test_storage_pass_must_prove_the_challenged_chunk(world, setup, epoch):
    ops, data, event = setup
    # a chunk the operator picked itself (the first one of the file), not derived from the epoch's seed
    picked = storage_proof([event], event, data, 0)
    assert revert_name(world.supervision, "attest", epoch, 0, True, picked, sender=ops[0]) is not None


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="exploit M6: a fail needs no evidence and one operator flags a node")
def test_fail_without_evidence_flags_nobody(world, setup, epoch):
    ops, _, _ = setup
    sup = world.supervision
    if revert_name(sup, "attest", epoch, 0, False, EMPTY_PROOF, sender=ops[0]) is None:
        sup.attest(epoch, 0, False, EMPTY_PROOF, sender=ops[0])
    travel_to(sup.epochStart(epoch + 1))
    sup.finalize(epoch, [0], sender=ops[0])
    assert not sup.getNode(0).flagged and sup.getNode(0).stake == ETHER


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="exploit M6: attestations the chain cannot check are paid")
def test_unchecked_attestations_are_not_paid(world, setup, epoch):
    ops, _, _ = setup
    sup = world.supervision
    lazy = ops[1]
    # no node was contacted: a DA pass (no proof exists) and a storage fail (no evidence)
    for node_id, passed in ((1, True), (0, False)):
        if revert_name(sup, "attest", epoch, node_id, passed, EMPTY_PROOF, sender=lazy) is None:
            sup.attest(epoch, node_id, passed, EMPTY_PROOF, sender=lazy)
    assert not world.rewards.recorded(epoch, lazy.address)
