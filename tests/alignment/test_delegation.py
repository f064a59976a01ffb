"""AlignmentDelegation: operators, commissions, delegate / undelegate (0G's manager shape), caps and
transfers; the epoch clock (every change takes effect at the next epoch)."""

from __future__ import annotations

from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import (
    EPOCH,
    MAX_COMMISSION_BPS,
    MAX_PER_OPERATOR,
    TRANSFER_LOCK,
    ZERO_ADDRESS,
    buy,
    next_epoch,
    reverts,
    time_travel,
)


def test_register_operator(lic, dlg, holders, ops):
    alice, op = holders[0], ops[0]
    reverts(dlg.registerOperator, 100, sender=op, error="NoLicenseOwned", account=op.address)
    buy(lic, op, 1)
    reverts(
        dlg.registerOperator,
        MAX_COMMISSION_BPS + 1,
        sender=op,
        error="CommissionTooHigh",
        commissionBps=MAX_COMMISSION_BPS + 1,
        maxBps=MAX_COMMISSION_BPS,
    )
    tx = dlg.registerOperator(MAX_COMMISSION_BPS, sender=op)
    assert tx.events.filter(dlg.OperatorRegistered)[0].commissionBps == MAX_COMMISSION_BPS
    assert dlg.isRegistered(op) and not dlg.isActiveOperator(op)
    assert dlg.commissionBps(op) == MAX_COMMISSION_BPS and dlg.operatedCount(op) == 0
    reverts(dlg.registerOperator, 1, sender=op, error="AlreadyRegistered", operator=op.address)
    assert not dlg.isRegistered(alice)


def test_epoch_clock(dlg, deployment):
    assert dlg.epochSeconds() == EPOCH and dlg.genesis() == deployment["genesis"]
    epoch = dlg.currentEpoch()
    assert dlg.epochStart(epoch) <= dlg.epochStart(epoch) + EPOCH == dlg.epochStart(epoch + 1)
    assert next_epoch(dlg) == epoch + 1


def test_commission_update_and_bounds(dlg, op, alice, admin):
    reverts(dlg.setCommission, 1, sender=alice, error="OperatorNotRegistered", operator=alice.address)
    reverts(dlg.setCommission, MAX_COMMISSION_BPS + 1, sender=op, error="CommissionTooHigh")
    tx = dlg.setCommission(0, sender=op)
    ev = tx.events.filter(dlg.CommissionUpdated)[0]
    assert (ev.oldBps, ev.newBps) == (1000, 0)
    assert (dlg.commissionBps(op), dlg.nextCommissionBps(op)) == (1000, 0)  # owners have an epoch to react
    dlg.setCommission(200, sender=op)  # changed again in the same epoch: the last one applies
    next_epoch(dlg)
    assert dlg.commissionBps(op) == 200
    dlg.setMaxCommissionBps(10_000, sender=admin)
    dlg.setCommission(10_000, sender=op)
    reverts(dlg.setMaxCommissionBps, 10_001, sender=admin, error="InvalidParameter")
    reverts(dlg.setMaxCommissionBps, 1, sender=op, error="AccessControlUnauthorizedAccount")


def test_delegate_and_undelegate_by_owner(lic, dlg, rew, alice, op):
    tokens = buy(lic, alice, 3)
    tx = dlg.delegateNfts(op, tokens, sender=alice)
    assert len(tx.events.filter(dlg.Delegated)) == 3
    assert [dlg.operatorOf(t) for t in tokens] == [op.address] * 3
    # the operator runs them from the next epoch
    assert dlg.operatedCount(op) == 0 and not dlg.isActiveOperator(op) and dlg.nextOperatedCount(op) == 3
    next_epoch(dlg)
    assert dlg.operatedCount(op) == 3 and dlg.isActiveOperator(op) and dlg.totalDelegated() == 3
    assert list(dlg.getDelegatorInfo(alice, op)) == tokens
    # the owner keeps the token and its vote
    assert [lic.ownerOf(t) for t in tokens] == [alice.address] * 3
    tx = dlg.undelegateNfts(op, tokens[:2], False, sender=alice)
    evs = tx.events.filter(dlg.Undelegated)
    assert [(e.delegator, e.operator, e.tokenId, e.byTransfer) for e in evs] == [
        (alice.address, op.address, t, False) for t in tokens[:2]
    ]
    assert list(dlg.getDelegatorInfo(alice, op)) == tokens[2:]
    assert dlg.operatorOf(tokens[0]) == ZERO_ADDRESS and dlg.nextOperatedCount(op) == 1
    assert dlg.operatedCount(op) == 3  # it still runs them until the epoch ends
    next_epoch(dlg)
    assert dlg.operatedCount(op) == 1


def test_undelegate_by_operator(lic, dlg, alice, op):
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, tokens, sender=alice)
    dlg.undelegateNfts(alice, [tokens[1]], True, sender=op)
    assert dlg.operatorOf(tokens[1]) == ZERO_ADDRESS and dlg.nextOperatedCount(op) == 1


def test_undelegate_by_wrong_party(lic, dlg, holders, ops, operator_setup):
    alice, bob = holders[:2]
    op, op2 = ops[:2]
    (token,) = buy(lic, alice, 1)
    dlg.delegateNfts(op, [token], sender=alice)
    for sender, address, by_operator, delegator, operator in (
        (bob, op, False, bob, op),  # another owner claiming the delegation
        (alice, op2, False, alice, op2),  # the owner naming the wrong operator
        (op2, alice, True, alice, op2),  # another operator handing it back
        (op, bob, True, bob, op),  # the operator naming the wrong owner
    ):
        reverts(
            dlg.undelegateNfts,
            address,
            [token],
            by_operator,
            sender=sender,
            error="NotDelegated",
            tokenId=token,
            delegator=delegator.address,
            operator=operator.address,
        )
    reverts(dlg.undelegateNfts, op, [], False, sender=alice, error="EmptyTokenList")
    assert dlg.operatorOf(token) == op.address


def test_delegate_errors(lic, dlg, holders, ops, operator_setup):
    alice, bob = holders[:2]
    op, op2 = ops[:2]
    tokens = buy(lic, alice, 2)
    reverts(dlg.delegateNfts, bob, tokens, sender=alice, error="OperatorNotRegistered", operator=bob.address)
    reverts(dlg.delegateNfts, op, [], sender=alice, error="EmptyTokenList")
    reverts(
        dlg.delegateNfts,
        op,
        tokens,
        sender=bob,
        error="NotLicenseOwner",
        tokenId=tokens[0],
        caller=bob.address,
    )
    dlg.delegateNfts(op, [tokens[0]], sender=alice)
    # a license runs under one operator at a time
    reverts(
        dlg.delegateNfts,
        op2,
        tokens,
        sender=alice,
        error="AlreadyDelegated",
        tokenId=tokens[0],
        operator=op.address,
    )
    reverts(dlg.delegateNfts, op, tokens, sender=alice, error="AlreadyDelegated")


def test_operator_cap(lic, dlg, holders, op, admin):
    alice, bob = holders[:2]
    tokens = buy(lic, alice, MAX_PER_OPERATOR)
    dlg.delegateNfts(op, tokens[:-1], sender=alice)
    more = buy(lic, bob, 2)
    reverts(
        dlg.delegateNfts,
        op,
        more,
        sender=bob,
        error="OperatorCapExceeded",
        operator=op.address,
        requested=2,
        remaining=1,
    )
    dlg.delegateNfts(op, more[:1], sender=bob)
    assert dlg.nextOperatedCount(op) == MAX_PER_OPERATOR
    reverts(
        dlg.delegateNfts,
        op,
        [tokens[-1]],
        sender=alice,
        error="OperatorCapExceeded",
        operator=op.address,
        requested=1,
        remaining=0,
    )
    dlg.setMaxLicensesPerOperator(MAX_PER_OPERATOR + 1, sender=admin)
    dlg.delegateNfts(op, [tokens[-1]], sender=alice)
    reverts(dlg.setMaxLicensesPerOperator, 0, sender=admin, error="InvalidParameter")


def test_self_operation(dlg, op, operator_setup):
    own = operator_setup[op.address]
    dlg.delegateNfts(op, [own], sender=op)
    next_epoch(dlg)
    assert dlg.operatorOf(own) == op.address and dlg.operatedCount(op) == 1 and dlg.isActiveOperator(op)


def test_transfer_clears_delegation(lic, dlg, holders, op, admin):
    alice, bob = holders[:2]
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, tokens, sender=alice)
    time_travel(TRANSFER_LOCK + 1)
    tx = lic.transferFrom(alice, bob, tokens[0], sender=alice)
    ev = tx.events.filter(dlg.Undelegated)[0]
    assert (ev.delegator, ev.operator, ev.tokenId) == (alice.address, op.address, tokens[0]) and ev.byTransfer
    assert dlg.operatorOf(tokens[0]) == ZERO_ADDRESS and dlg.nextOperatedCount(op) == 1
    assert list(dlg.getDelegatorInfo(alice, op)) == [tokens[1]]
    # the new owner may delegate it again
    dlg.delegateNfts(op, [tokens[0]], sender=bob)
    assert list(dlg.getDelegatorInfo(bob, op)) == [tokens[0]]


def test_only_license_calls_hook(dlg, alice):
    reverts(
        dlg.onLicenseTransfer,
        1,
        alice,
        alice,
        sender=alice,
        error="NotLicenseContract",
        caller=alice.address,
    )


def test_deregister(lic, dlg, alice, op):
    (token,) = buy(lic, alice, 1)
    dlg.delegateNfts(op, [token], sender=alice)
    reverts(dlg.deregisterOperator, sender=op, error="OperatorHasLicenses", operator=op.address, count=1)
    next_epoch(dlg)
    dlg.undelegateNfts(alice, [token], True, sender=op)
    # it still runs the license in this epoch (its record may still pay it)
    reverts(dlg.deregisterOperator, sender=op, error="OperatorHasLicenses", operator=op.address, count=1)
    next_epoch(dlg)
    dlg.deregisterOperator(sender=op)
    assert not dlg.isRegistered(op) and dlg.commissionBps(op) == 0
    reverts(dlg.deregisterOperator, sender=op, error="OperatorNotRegistered")


def test_pause_blocks_delegation_not_exit(lic, dlg, alice, op, admin):
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, [tokens[0]], sender=alice)
    dlg.pause(sender=admin)
    reverts(dlg.delegateNfts, op, [tokens[1]], sender=alice, error="EnforcedPause")
    dlg.undelegateNfts(op, [tokens[0]], False, sender=alice)
    dlg.unpause(sender=admin)


def test_rewards_set_once(dlg, admin, alice):
    reverts(dlg.setRewards, alice, sender=admin, error="RewardsAlreadySet")


def test_delegation_needs_rewards(project, lic, admin, ops, operator_setup):
    op = ops[0]
    fresh = project.AlignmentDelegation.deploy(lic.address, admin, 5, 100, EPOCH, sender=admin)
    fresh.registerOperator(0, sender=op)
    reverts(fresh.delegateNfts, op, [operator_setup[op.address]], sender=op, error="RewardsNotSet")
