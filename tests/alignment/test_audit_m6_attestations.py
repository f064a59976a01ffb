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
    DA, EMPTY_PROOF, ETHER, STORAGE, deploy_world, end_epoch, make_operator, next_epoch, operator_accounts,
    random_file, revert_name, set_code, storage_proof, submit_file,
)

EPOCH = 600


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
    set_code(world, 4, 2)
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, 0, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:2", accounts[6].address, 0, sender=world.owner)
    sup.registerChallengeFile(event.seq, sender=accounts[5])
    sup.stake(0, sender=accounts[5], value=ETHER)
    return ops, data, event


@pytest.fixture
def epoch(world, setup):
    return next_epoch(world, setup[0][0], into=world.supervision.params().minFailSpan)


def test_storage_pass_must_prove_the_challenged_chunk(world, setup, epoch):
    ops, data, event = setup
    sup = world.supervision
    challenged = {sup.challengeOf(epoch, 0, a)[2] for a in range(sup.MAX_ATTEMPTS()) if sup.challengeOf(epoch, 0, a)[0]}
    # a chunk the operator picked itself (not derived from the epoch's seed), correctly proven to the flow root
    mine = next(c for c in range(5 * 1024) if c not in challenged)
    _, _, chunk, siblings = storage_proof([event], event, data, mine)
    for attempt in range(sup.MAX_ATTEMPTS()):
        assert revert_name(sup, "attestPass", epoch, 0, (attempt, chunk, siblings), sender=ops[0]) is not None


def test_fail_without_evidence_flags_nobody(world, setup, epoch):
    ops, _, _ = setup
    sup = world.supervision
    no_evidence = ([], b"\0" * 32)
    if revert_name(sup, "attestFail", epoch, 0, no_evidence, sender=ops[0]) is None:
        sup.attestFail(epoch, 0, no_evidence, sender=ops[0])
    end_epoch(world, epoch)
    sup.finalize(epoch, [0], sender=ops[0])
    assert not sup.getNode(0).flagged and sup.getNode(0).stake == ETHER


def test_unchecked_attestations_are_not_paid(world, setup, epoch):
    ops, _, _ = setup
    sup = world.supervision
    lazy = ops[1]
    # no node was contacted: a DA pass (no proof exists) and a storage fail (no evidence)
    if revert_name(sup, "attestPass", epoch, 1, EMPTY_PROOF, sender=lazy) is None:
        sup.attestPass(epoch, 1, EMPTY_PROOF, sender=lazy)
    if revert_name(sup, "attestFail", epoch, 0, ([], b"\0" * 32), sender=lazy) is None:
        sup.attestFail(epoch, 0, ([], b"\0" * 32), sender=lazy)
    assert not world.rewards.recorded(epoch, lazy.address)
