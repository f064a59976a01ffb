"""AlignmentRewards: funding, per-epoch records (of the current epoch, with the licenses and commission its
operator had when the epoch began), owner / operator split, settlement on delegation changes and transfers
(including a license's share of the epoch it leaves in), pull claims, access control, gas."""

from __future__ import annotations

from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import (
    FUNDING,
    REWARD,
    TRANSFER_LOCK,
    buy,
    next_epoch,
    record,
    reverts,
    split,
    time_travel,
)


def claimed(tx, rew) -> int:
    return tx.events.filter(rew.RewardsClaimed)[0].amount


def test_record_and_claim(lic, dlg, rew, alice, op, supervisor):
    owner_share, commission = split(REWARD, 1000)
    tokens = buy(lic, alice, 3)
    dlg.delegateNfts(op, tokens, sender=alice)
    # delegations take effect at the next epoch: a record of this one pays nothing for them
    tx = record(rew, dlg, op, supervisor)
    assert tx.events.filter(rew.OperatedRecorded)[0].licenses == 0 and rew.pendingOf(tokens[0]) == 0
    epoch = next_epoch(dlg)
    tx = record(rew, dlg, op, supervisor)
    ev = tx.events.filter(rew.OperatedRecorded)[0]
    assert (ev.epoch, ev.operator, ev.licenses) == (epoch, op.address, 3)
    assert (ev.perLicense, ev.commissionBps) == (REWARD, 1000)
    assert rew.recorded(epoch, op) and rew.totalAllocated() == 3 * REWARD
    assert rew.ownerShareOf(epoch, op) == owner_share
    assert [rew.pendingOf(t) for t in tokens] == [owner_share] * 3
    assert rew.credited(op) == 3 * commission
    assert rew.claimable(alice, tokens) == 3 * owner_share
    before = alice.balance
    tx = rew.claim(tokens, sender=alice)
    assert claimed(tx, rew) == 3 * owner_share
    assert alice.balance == before + 3 * owner_share - tx.total_fees_paid
    # claiming twice pays nothing
    reverts(rew.claim, tokens, sender=alice, error="NothingToClaim", account=alice.address)
    assert claimed(rew.claim([], sender=op), rew) == 3 * commission
    assert rew.totalClaimed() == rew.totalAllocated() == 3 * REWARD


def test_record_once_per_epoch_and_operator_and_only_the_current(lic, dlg, rew, alice, op, ops, supervisor):
    dlg.delegateNfts(op, buy(lic, alice, 1), sender=alice)
    epoch = next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    reverts(rew.recordOperated, epoch, op, sender=supervisor, error="AlreadyRecorded", epoch=epoch,
            operator=op.address)
    reverts(rew.recordOperated, epoch + 1, op, sender=supervisor, error="EpochNotCurrent", epoch=epoch + 1,
            current=epoch)
    next_epoch(dlg)
    reverts(rew.recordOperated, epoch, op, sender=supervisor, error="EpochNotCurrent", epoch=epoch,
            current=epoch + 1)
    record(rew, dlg, op, supervisor)
    record(rew, dlg, ops[1], supervisor)  # runs nothing: records, pays nothing
    assert rew.totalAllocated() == 2 * REWARD


def test_only_supervision_records(rew, op, alice):
    reverts(
        rew.recordOperated,
        0,
        op,
        sender=alice,
        error="AccessControlUnauthorizedAccount",
        account=alice.address,
        neededRole=rew.SUPERVISION_ROLE(),
    )


def test_insufficient_funds(lic, dlg, rew, alice, op, supervisor, admin):
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, tokens, sender=alice)
    rew.setRewardPerLicense(FUNDING // 2 + 1, sender=admin)
    epoch = next_epoch(dlg)
    reverts(
        rew.recordOperated,
        epoch,
        op,
        sender=supervisor,
        error="InsufficientRewardFunds",
        needed=FUNDING + 2,
        available=FUNDING,
    )
    rew.fundRewards(sender=admin, value=2)
    record(rew, dlg, op, supervisor)
    assert rew.unallocated() == 0


def test_funding_rules(rew, admin, alice, accounts):
    reverts(rew.fundRewards, sender=admin, value=0, error="ZeroAmount")
    reverts(rew.fundRewards, sender=alice, value=1, error="AccessControlUnauthorizedAccount")
    tx = rew.fundRewards(sender=admin, value=5)
    assert tx.events.filter(rew.RewardsFunded)[0].amount == 5 and rew.totalFunded() == FUNDING + 5
    reverts(
        rew.withdrawUnallocated,
        admin,
        FUNDING + 6,
        sender=admin,
        error="InsufficientRewardFunds",
        needed=FUNDING + 6,
        available=FUNDING + 5,
    )
    reverts(rew.withdrawUnallocated, alice, 1, sender=alice, error="AccessControlUnauthorizedAccount")
    treasury = accounts[9]
    before = treasury.balance
    rew.withdrawUnallocated(treasury, FUNDING, sender=admin)
    assert treasury.balance == before + FUNDING and rew.unallocated() == 5


def test_undelegation_settles_first_and_keeps_the_epoch_share(lic, dlg, rew, alice, op, ops, supervisor):
    owner_share, _ = split(REWARD, 1000)
    (token,) = buy(lic, alice, 1)
    dlg.delegateNfts(op, [token], sender=alice)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    next_epoch(dlg)
    tx = dlg.undelegateNfts(op, [token], False, sender=alice)
    ev = tx.events.filter(rew.RewardSettled)[0]
    assert (ev.tokenId, ev.owner, ev.operator, ev.amount) == (token, alice.address, op.address, owner_share)
    assert rew.credited(alice) == owner_share and rew.pendingOf(token) == 0
    # it still runs with `op` in this epoch: the epoch's record, made later, pays alice (a trailing share)
    assert rew.trailingOf(token) == (alice.address, 0)
    dlg.delegateNfts(ops[1], [token], sender=alice)  # runs with ops[1] from the next epoch
    record(rew, dlg, op, supervisor)
    assert rew.trailingOf(token) == (alice.address, owner_share)
    record(rew, dlg, ops[1], supervisor)  # not this epoch's operator of the token: nothing for it
    assert rew.pendingOf(token) == 0
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)  # no longer its operator
    record(rew, dlg, ops[1], supervisor)  # commission 2000
    assert rew.pendingOf(token) == split(REWARD, 2000)[0]
    assert rew.claimable(alice, [token]) == 2 * owner_share + split(REWARD, 2000)[0]
    assert claimed(rew.claim([token], sender=alice), rew) == 2 * owner_share + split(REWARD, 2000)[0]


def test_transfer_settles_to_seller(lic, dlg, rew, holders, op, supervisor):
    alice, bob = holders[:2]
    owner_share, _ = split(REWARD, 1000)
    (token,) = buy(lic, alice, 1)
    dlg.delegateNfts(op, [token], sender=alice)
    time_travel(TRANSFER_LOCK + 1)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    next_epoch(dlg)
    lic.transferFrom(alice, bob, token, sender=alice)
    assert rew.credited(alice) == owner_share and rew.pendingOf(token) == 0
    dlg.delegateNfts(op, [token], sender=bob)  # from the next epoch
    record(rew, dlg, op, supervisor)  # this epoch: the seller ran it when it began
    # the buyer cannot claim the seller's reward, and earns only once its delegation runs
    reverts(rew.claim, [token], sender=bob, error="NothingToClaim", account=bob.address)
    assert rew.claimable(alice, [token]) == 2 * owner_share
    assert claimed(rew.claim([token], sender=alice), rew) == 2 * owner_share  # the seller's trailing share
    reverts(rew.claim, [token], sender=alice, error="NotLicenseOwner", tokenId=token, caller=alice.address)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    assert claimed(rew.claim([token], sender=bob), rew) == owner_share


def test_settle_credits_the_rightful_accounts(lic, dlg, rew, holders, op, supervisor):
    alice, bob = holders[:2]
    owner_share, _ = split(REWARD, 1000)
    tokens = buy(lic, alice, 2)
    dlg.delegateNfts(op, tokens, sender=alice)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    rew.settle(tokens, sender=bob)  # anyone: credits alice, pays nobody
    assert rew.credited(alice) == 2 * owner_share and rew.credited(bob) == 0
    assert [rew.pendingOf(t) for t in tokens] == [0, 0]


def test_self_operated_license_earns_all(dlg, rew, op, operator_setup, supervisor):
    own = operator_setup[op.address]
    dlg.delegateNfts(op, [own], sender=op)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    assert rew.claimable(op, [own]) == REWARD
    assert claimed(rew.claim([own], sender=op), rew) == REWARD


def test_commission_change_applies_from_the_next_epoch(lic, dlg, rew, alice, op, supervisor):
    (token,) = buy(lic, alice, 1)
    dlg.delegateNfts(op, [token], sender=alice)
    next_epoch(dlg)
    dlg.setCommission(5000, sender=op)
    assert (dlg.commissionBps(op), dlg.nextCommissionBps(op)) == (1000, 5000)
    record(rew, dlg, op, supervisor)  # still 10 % in this epoch
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)
    assert rew.pendingOf(token) == split(REWARD, 1000)[0] + split(REWARD, 5000)[0]
    assert rew.credited(op) == split(REWARD, 1000)[1] + split(REWARD, 5000)[1]


def test_only_delegation_calls_hook(rew, alice):
    reverts(
        rew.onOperatorChange,
        1,
        alice,
        alice,
        alice,
        sender=alice,
        error="NotDelegationContract",
        caller=alice.address,
    )


def test_gas(lic, dlg, rew, holders, op, supervisor, admin):
    """Recording is O(1) however many licenses an operator runs; claiming is O(tokens listed)."""
    dlg.setMaxLicensesPerOperator(64, sender=admin)
    lic.setWalletCap(100, sender=admin)
    alice, bob = holders[:2]
    small = buy(lic, alice, 1)
    dlg.delegateNfts(op, small, sender=alice)
    next_epoch(dlg)
    record(rew, dlg, op, supervisor)  # first record: zero-to-nonzero slots
    next_epoch(dlg)
    gas_1 = record(rew, dlg, op, supervisor).gas_used
    many = buy(lic, bob, 30)
    tx = dlg.delegateNfts(op, many, sender=bob)
    per_delegation = tx.gas_used // len(many)
    next_epoch(dlg)
    gas_31 = record(rew, dlg, op, supervisor).gas_used
    assert abs(gas_31 - gas_1) < 2_000
    claim_1 = rew.claim(small, sender=alice).gas_used
    claim_30 = rew.claim(many, sender=bob).gas_used
    undelegate = dlg.undelegateNfts(op, many[:1], False, sender=bob).gas_used
    print(f"\ngas: recordOperated {gas_31}, delegate {per_delegation}/license, claim 1 license {claim_1}, "
          f"30 licenses {claim_30}, undelegate 1 {undelegate}")
    assert gas_31 < 110_000 and per_delegation < 150_000 and claim_30 < 30 * 20_000 + 60_000
