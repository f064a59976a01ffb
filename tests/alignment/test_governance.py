"""AlignmentGovernor: license holders change real parameters (FixedPriceMarket's storage price, DAEntrance's
blob price, the reward per license) through proposals with quorum and timelock; every custom error."""

from __future__ import annotations

from typing import Any

import pytest
from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import (
    TIMELOCK,
    TRANSFER_LOCK,
    VOTING_PERIOD,
    buy,
    deploy,
    reverts,
    time_travel,
)
from deaios.deployment import load_script

AGAINST, FOR, ABSTAIN = 0, 1, 2
ACTIVE, DEFEATED, SUCCEEDED, EXECUTED, CANCELED, EXPIRED = range(6)


@pytest.fixture(scope="module")
def storage(admin, project) -> Any:
    record = load_script("deploy").deploy_storage(admin, project)
    return project.FixedPriceMarket.at(record["market"])


@pytest.fixture(scope="module")
def entrance(admin, project) -> Any:
    record = load_script("deploy_da").deploy_da(admin, project)
    return project.DAEntrance.at(record["da_entrance"])


@pytest.fixture(scope="module")
def deployment(admin, project, storage, entrance):  # noqa: F811  (overrides the helper's: with targets)
    return deploy(admin, project, storage_market=storage.address, da_entrance=entrance.address)


@pytest.fixture(scope="module")
def voters(lic, holders):
    """alice 4 licenses, bob 3, carol 1: 8 licenses, quorum 25 % = 2 votes."""
    return {h.address: buy(lic, h, n) for h, n in zip(holders[:3], (4, 3, 1))}


def propose(gov, target, data: bytes, proposer) -> int:
    tx = gov.propose(target, data, "test", sender=proposer)
    return tx.events.filter(gov.ProposalCreated)[0].proposalId


def set_price_call(contract, fn: str, value: int) -> bytes:
    return bytes.fromhex(getattr(contract, fn).as_transaction(value).data.hex().removeprefix("0x"))


def test_wiring(gov, storage, entrance, rew):
    sel = lambda c, fn: bytes(set_price_call(c, fn, 0)[:4])  # noqa: E731
    assert gov.isAllowed(storage, sel(storage, "setPricePerSector"))
    assert gov.isAllowed(entrance, sel(entrance, "setBlobPrice"))
    assert gov.isAllowed(rew, sel(rew, "setRewardPerLicense"))
    for c in (storage, entrance, rew):
        assert c.hasRole(c.PARAMS_ADMIN_ROLE(), gov.address)


def test_governance_changes_storage_price(gov, storage, lic, voters, alice, bob, carol):
    old = storage.pricePerSector()
    pid = propose(gov, storage, set_price_call(storage, "setPricePerSector", 12_345), alice)
    p = gov.getProposal(pid)
    assert (p.snapshotSupply, p.quorum, p.target) == (8, 2, storage.address)
    assert gov.state(pid) == ACTIVE
    tx = gov.castVote(pid, FOR, voters[alice.address], sender=alice)
    assert tx.events.filter(gov.VoteCast)[0].votes == 4
    gov.castVote(pid, AGAINST, voters[bob.address], sender=bob)
    gov.castVote(pid, ABSTAIN, voters[carol.address], sender=carol)
    # executing during the vote or the timelock is refused
    reverts(gov.execute, pid, sender=carol, error="TimelockNotElapsed", proposalId=pid, eta=p.eta)
    time_travel(VOTING_PERIOD + 1)
    assert gov.state(pid) == SUCCEEDED
    reverts(gov.castVote, pid, FOR, voters[carol.address], sender=carol, error="VotingClosed", proposalId=pid)
    reverts(gov.execute, pid, sender=carol, error="TimelockNotElapsed", proposalId=pid, eta=p.eta)
    assert storage.pricePerSector() == old
    time_travel(TIMELOCK)
    tx = gov.execute(pid, sender=carol)
    assert tx.events.filter(gov.ProposalExecuted)
    assert storage.pricePerSector() == 12_345 and gov.state(pid) == EXECUTED
    reverts(gov.execute, pid, sender=carol, error="ProposalNotPending", proposalId=pid)


def test_governance_changes_blob_price_and_reward(gov, entrance, rew, voters, alice, bob):
    pid_blob = propose(gov, entrance, set_price_call(entrance, "setBlobPrice", 777), bob)
    pid_reward = propose(gov, rew, set_price_call(rew, "setRewardPerLicense", 31), bob)
    for pid in (pid_blob, pid_reward):
        gov.castVote(pid, FOR, voters[bob.address], sender=bob)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    gov.execute(pid_blob, sender=alice)
    gov.execute(pid_reward, sender=alice)
    assert entrance.blobPrice() == 777 and rew.rewardPerLicense() == 31


def test_vote_once_per_license(gov, storage, lic, voters, alice, bob):
    time_travel(TRANSFER_LOCK + 1)
    pid = propose(gov, storage, set_price_call(storage, "setPricePerSector", 1), alice)
    tokens = voters[alice.address]
    gov.castVote(pid, FOR, tokens[:2], sender=alice)
    reverts(
        gov.castVote,
        pid,
        AGAINST,
        tokens[1:],
        sender=alice,
        error="AlreadyVoted",
        proposalId=pid,
        tokenId=tokens[1],
    )
    # a license passed to somebody else cannot vote again on the same proposal
    lic.transferFrom(alice, bob, tokens[0], sender=alice)
    reverts(
        gov.castVote,
        pid,
        AGAINST,
        [tokens[0]],
        sender=bob,
        error="AlreadyVoted",
        proposalId=pid,
        tokenId=tokens[0],
    )
    assert gov.hasVoted(pid, tokens[0]) and not gov.hasVoted(pid, tokens[2])
    p = gov.getProposal(pid)
    assert (p.forVotes, p.againstVotes) == (2, 0)


def test_voting_rules(gov, storage, lic, dlg, voters, alice, bob, carol, ops, admin):
    pid = propose(gov, storage, set_price_call(storage, "setPricePerSector", 1), alice)
    reverts(
        gov.castVote,
        pid,
        FOR,
        voters[alice.address][:1],
        sender=bob,
        error="NotLicenseOwner",
        tokenId=voters[alice.address][0],
        caller=bob.address,
    )
    reverts(gov.castVote, pid, 3, voters[bob.address], sender=bob, error="InvalidVoteType", support=3)
    reverts(gov.castVote, pid, FOR, [], sender=bob, error="EmptyTokenList")
    reverts(gov.castVote, 99, FOR, voters[bob.address], sender=bob, error="UnknownProposal", proposalId=99)
    # licenses sold after the proposal do not vote on it
    late = buy(lic, carol, 1)
    reverts(
        gov.castVote,
        pid,
        FOR,
        late,
        sender=carol,
        error="LicenseNotEligible",
        proposalId=pid,
        tokenId=late[0],
    )
    # a delegated license still votes for its owner
    op = ops[0]
    buy(lic, op, 1)
    dlg.registerOperator(0, sender=op)
    dlg.delegateNfts(op, voters[carol.address], sender=carol)
    reverts(gov.castVote, pid, FOR, voters[carol.address], sender=op, error="NotLicenseOwner")
    gov.castVote(pid, FOR, voters[carol.address], sender=carol)
    assert gov.getProposal(pid).forVotes == 1


def test_execute_without_quorum(gov, storage, voters, alice, carol):
    pid = propose(gov, storage, set_price_call(storage, "setPricePerSector", 1), carol)
    gov.castVote(pid, FOR, voters[carol.address], sender=carol)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    assert gov.state(pid) == DEFEATED
    reverts(gov.execute, pid, sender=alice, error="QuorumNotReached", proposalId=pid, votes=1, quorum=2)


def test_execute_defeated(gov, storage, voters, alice, bob):
    pid = propose(gov, storage, set_price_call(storage, "setPricePerSector", 1), bob)
    gov.castVote(pid, FOR, voters[bob.address], sender=bob)
    gov.castVote(pid, AGAINST, voters[alice.address], sender=alice)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    reverts(
        gov.execute,
        pid,
        sender=alice,
        error="ProposalDefeated",
        proposalId=pid,
        forVotes=3,
        againstVotes=4,
    )


def test_disallowed_target(gov, storage, lic, voters, alice, admin):
    # not on the allowlist: another function of an allowed target, an unknown target, short calldata
    reverts(
        gov.propose,
        storage,
        set_price_call(storage, "setReward", admin.address),
        "x",
        sender=alice,
        error="TargetNotAllowed",
    )
    reverts(
        gov.propose,
        lic,
        set_price_call(lic, "setWalletCap", 1),
        "x",
        sender=alice,
        error="TargetNotAllowed",
    )
    reverts(
        gov.propose,
        storage,
        b"\x01\x02",
        "x",
        sender=alice,
        error="TargetNotAllowed",
        target=storage.address,
        selector=b"\x00" * 4,
    )
    # taken off the allowlist after the vote: execution is refused
    data = set_price_call(storage, "setPricePerSector", 5)
    pid = propose(gov, storage, data, alice)
    gov.castVote(pid, FOR, voters[alice.address], sender=alice)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    gov.setAllowed(storage, data[:4], False, sender=admin)
    reverts(
        gov.execute,
        pid,
        sender=alice,
        error="TargetNotAllowed",
        target=storage.address,
        selector=data[:4],
    )
    reverts(gov.setAllowed, storage, data[:4], True, sender=alice, error="AccessControlUnauthorizedAccount")


def test_failing_call_reverts_execution(gov, storage, voters, alice, admin):
    """Allowlisted but the governor lacks the role it needs: the execution reverts, the proposal stays."""
    data = set_price_call(storage, "setReward", alice.address)  # DEFAULT_ADMIN_ROLE only
    gov.setAllowed(storage, data[:4], True, sender=admin)
    pid = propose(gov, storage, data, alice)
    gov.castVote(pid, FOR, voters[alice.address], sender=alice)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    reverts(gov.execute, pid, sender=alice, error="ExecutionFailed")
    assert gov.state(pid) == SUCCEEDED


def test_proposal_threshold_and_cancel(gov, storage, voters, alice, bob, admin, accounts):
    data = set_price_call(storage, "setPricePerSector", 1)
    nobody = accounts[9]
    reverts(
        gov.propose,
        storage,
        data,
        "x",
        sender=nobody,
        error="BelowProposalThreshold",
        proposer=nobody.address,
        licenses=0,
        threshold=1,
    )
    pid = propose(gov, storage, data, alice)
    reverts(gov.cancel, pid, sender=bob, error="AccessControlUnauthorizedAccount")
    gov.cancel(pid, sender=alice)
    assert gov.state(pid) == CANCELED
    reverts(gov.castVote, pid, FOR, voters[bob.address], sender=bob, error="VotingClosed")
    reverts(gov.cancel, pid, sender=admin, error="ProposalNotPending")
    pid2 = propose(gov, storage, data, alice)
    gov.cancel(pid2, sender=admin)


def test_voting_params(gov, admin, alice):
    reverts(gov.setVotingParams, 0, 60, 1, 1, sender=admin, error="InvalidParameter")
    reverts(gov.setVotingParams, 1, 60, 10_001, 1, sender=admin, error="InvalidParameter")
    reverts(gov.setVotingParams, 1, 60, 1, 1, sender=alice, error="AccessControlUnauthorizedAccount")
    reverts(gov.setVotingParams, 10, 59, 1, 1, sender=admin, error="InvalidParameter")  # below the minimum timelock
    gov.setVotingParams(10, 60, 10_000, 2, sender=admin)
    assert (gov.votingPeriod(), gov.timelockDelay()) == (10, 60)
    assert (gov.quorumBps(), gov.proposalThreshold()) == (10_000, 2)


def test_deploy_hands_over_roles(admin, project, accounts):
    """A separate admin gets every role and the deployer keeps none; a target the deployer cannot grant on
    is reported under pending_grants (still allowlisted)."""
    new_admin = accounts[8]
    market_record = load_script("deploy").deploy_storage(admin, project, admin=accounts[7].address)
    d = deploy(admin, project, admin=new_admin.address, storage_market=market_record["market"])
    market = project.FixedPriceMarket.at(market_record["market"])
    gov = project.AlignmentGovernor.at(d["governor"])
    (pending,) = d["pending_grants"]
    assert (pending["contract"], pending["account"]) == (market.address, gov.address)
    assert bytes.fromhex(pending["role"][2:]) == market.PARAMS_ADMIN_ROLE()
    assert not market.hasRole(market.PARAMS_ADMIN_ROLE(), gov.address)
    selector = set_price_call(market, "setPricePerSector", 0)[:4]
    assert gov.isAllowed(market, selector)
    for name in ("license", "delegation", "rewards", "governor"):
        c = getattr(project, "Alignment" + name.capitalize()).at(d[name])
        for role in (c.DEFAULT_ADMIN_ROLE(), c.PARAMS_ADMIN_ROLE()):
            assert c.hasRole(role, new_admin) and not c.hasRole(role, admin)
