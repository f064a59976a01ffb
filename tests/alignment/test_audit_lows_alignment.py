"""Audit lows of the alignment contracts, each performed as an attack:

* L-commission: an operator raises its commission just before the attestation that records its epoch, and
  takes the owners' share of that epoch at the new rate (owners had no time to react);
* L-unstake: a node that knows it failed withdraws its stake before anyone finalizes the epoch: no slash;
* L-governor: a passed proposal stays executable forever, and the timelock can be set to 0.
"""

from __future__ import annotations

from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import REWARD, TIMELOCK, VOTING_PERIOD, buy, split, time_travel
from supervision_helpers import (
    ETHER, STORAGE, deploy_world, end_epoch, evidence, make_operator, next_epoch, operator_accounts,
)
from deaios.testing import revert_name as would_revert

YEAR = 365 * 24 * 3600


def test_commission_raised_in_an_epoch_applies_from_the_next(lic, dlg, rew, alice, op, supervisor, admin):
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, tokens, sender=alice)  # op's commission: 1000 bps
    time_travel(dlg.epochSeconds())  # the delegation is in effect
    dlg.setCommission(5_000, sender=op)  # the maximum, right before the record
    rew.recordOperated(dlg.currentEpoch(), op, sender=supervisor)
    owner_share, _ = split(REWARD, 1000)
    got = rew.claimable(alice, tokens)
    print(f"\nL-commission: owner got {got} for 2 licenses, expected {2 * owner_share} at the announced 10 %")
    assert got == 2 * owner_share


def test_failed_node_cannot_withdraw_before_its_result(accounts, project):
    world = deploy_world(accounts, project, epoch_seconds=600, slash_bps=5_000, unbonding_epochs=0)
    sup = world.supervision
    (op,) = operator_accounts(accounts, 1)
    make_operator(world, op)
    node_op = accounts[5]
    sup.registerNode(STORAGE, "http://127.0.0.1:1", node_op.address, 0, sender=world.owner)
    sup.stake(0, sender=node_op, value=ETHER)

    epoch = next_epoch(world, op, into=sup.params().minFailSpan)
    sup.requestUnstake(0, sender=node_op)  # the node sees it cannot answer, and asks for its stake back
    sup.attestFail(epoch, 0, evidence(world), sender=op)
    end_epoch(world, epoch)
    before = node_op.balance
    if would_revert(sup, "withdrawStake", 0, node_op.address, sender=node_op) is None:
        sup.withdrawStake(0, node_op.address, sender=node_op)  # before anyone finalizes `epoch`
    sup.finalize(epoch, [0], sender=op)
    recovered = node_op.balance - before
    print(f"\nL-unstake: the failed node took back {recovered / ETHER:.2f} ETH of its 1 ETH stake")
    assert sup.getNode(0).flagged and recovered <= ETHER // 2


def test_proposals_expire_and_the_timelock_is_not_zero(lic, gov, rew, alice, admin):
    tokens = buy(lic, alice, 4)
    call = bytes.fromhex(rew.setRewardPerLicense.as_transaction(1).data.hex().removeprefix("0x"))
    pid = gov.propose(rew, call, "cheap rewards", sender=alice).events.filter(gov.ProposalCreated)[0].proposalId
    gov.castVote(pid, 1, tokens, sender=alice)
    time_travel(VOTING_PERIOD + TIMELOCK + YEAR)  # forgotten for a year
    stale = would_revert(gov, "execute", pid, sender=alice)
    zero_timelock = would_revert(gov, "setVotingParams", VOTING_PERIOD, 0, 2_500, 1, sender=admin)
    print(f"\nL-governor: a year-old proposal executes: {stale is None}; timelock 0 accepted: {zero_timelock is None}")
    assert stale is not None
    assert zero_timelock is not None
