"""AlignmentLicense: tiered sale, supply cap, per-wallet cap, transfer lock, pause, proceeds."""

from __future__ import annotations

from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import (
    MAX_SUPPLY,
    TIER_PRICES,
    TIER_UP_TO,
    TRANSFER_LOCK,
    WALLET_CAP,
    buy,
    cost,
    reverts,
    time_travel,
)


def test_deployment_parameters(lic, dlg, deployment):
    assert lic.maxSupply() == MAX_SUPPLY and lic.totalMinted() == 0
    assert lic.walletCap() == WALLET_CAP and lic.transferLockPeriod() == TRANSFER_LOCK
    assert [list(x) for x in lic.tiers()] == [list(TIER_UP_TO), list(TIER_PRICES)]
    assert lic.delegation() == dlg.address
    assert lic.currentPrice() == TIER_PRICES[0]


def test_tiered_price_across_tiers(lic, holders):
    alice, bob = holders[:2]
    assert lic.quote(7) == 5 * 100 + 2 * 200 == cost(1, 7)
    tx = lic.buy(7, sender=alice, value=cost(1, 7))
    ev = tx.events.filter(lic.LicensesPurchased)[0]
    assert (ev.buyer, ev.firstTokenId, ev.quantity, ev.paid) == (alice.address, 1, 7, 900)
    assert [lic.ownerOf(i) for i in range(1, 8)] == [alice.address] * 7
    assert lic.purchasedBy(alice) == 7 and lic.balance == 900
    assert lic.unlockAt(1) == tx.timestamp + TRANSFER_LOCK
    # the next buyer pays the second tier up to id 20, then the third
    assert lic.quote(14) == 13 * 200 + 500 == cost(8, 14)  # ids 8..20 in tier 2, 21 in tier 3
    buy(lic, bob, 12)
    assert lic.currentPrice() == 200 and lic.quote(3) == 200 + 500 + 500


def test_wrong_payment(lic, holders):
    reverts(lic.buy, 1, sender=holders[0], value=99, error="WrongPayment", sent=99, required=100)
    reverts(lic.buy, 1, sender=holders[0], value=101, error="WrongPayment", sent=101, required=100)
    reverts(lic.buy, 0, sender=holders[0], error="ZeroQuantity")
    reverts(lic.buy, 101, sender=holders[0], error="TooManyPerTx", quantity=101, max=100)


def test_wallet_cap(lic, holders):
    alice = holders[0]
    buy(lic, alice, WALLET_CAP - 2)
    for quantity, remaining in ((3, 2), (1, 0)):
        reverts(
            lic.buy,
            quantity,
            sender=alice,
            value=lic.quote(quantity),
            error="WalletCapExceeded",
            buyer=alice.address,
            requested=quantity,
            remaining=remaining,
        )
        if remaining:
            buy(lic, alice, remaining)


def test_supply_cap(lic, holders, admin):
    lic.setWalletCap(MAX_SUPPLY, sender=admin)
    buy(lic, holders[0], MAX_SUPPLY - 3)
    reverts(lic.buy, 4, sender=holders[1], value=10**18, error="SoldOut", requested=4, available=3)
    buy(lic, holders[1], 3)
    assert lic.totalMinted() == MAX_SUPPLY and lic.currentPrice() == 0
    reverts(lic.quote, 1, error="SoldOut", requested=1, available=0)


def test_transfer_lock(lic, holders):
    alice, bob = holders[:2]
    (token,) = buy(lic, alice, 1)
    unlock = lic.unlockAt(token)
    reverts(
        lic.transferFrom,
        alice,
        bob,
        token,
        sender=alice,
        error="TransferLocked",
        tokenId=token,
        unlockAt=unlock,
    )
    time_travel(TRANSFER_LOCK + 1)
    lic.transferFrom(alice, bob, token, sender=alice)
    assert lic.ownerOf(token) == bob.address


def test_lock_period_change_applies_to_later_sales(lic, holders, admin):
    alice, bob = holders[:2]
    (old,) = buy(lic, alice, 1)
    tx = lic.setTransferLockPeriod(0, sender=admin)
    assert tx.events.filter(lic.TransferLockPeriodUpdated)[0].newPeriod == 0
    (new,) = buy(lic, alice, 1)
    lic.transferFrom(alice, bob, new, sender=alice)
    reverts(lic.transferFrom, alice, bob, old, sender=alice, error="TransferLocked")


def test_pause_stops_sales_and_transfers(lic, holders, admin):
    alice, bob = holders[:2]
    lic.setTransferLockPeriod(0, sender=admin)
    (token,) = buy(lic, alice, 1)
    lic.pause(sender=admin)
    reverts(lic.buy, 1, sender=alice, value=lic.quote(1), error="EnforcedPause")
    reverts(lic.transferFrom, alice, bob, token, sender=alice, error="EnforcedPause")
    reverts(lic.unpause, sender=alice, error="AccessControlUnauthorizedAccount")
    lic.unpause(sender=admin)
    lic.transferFrom(alice, bob, token, sender=alice)


def test_admin_only_parameters(lic, holders, admin, dlg):
    alice = holders[0]
    for method, args in (
        (lic.setWalletCap, (1,)),
        (lic.setTransferLockPeriod, (1,)),
        (lic.setTiers, ([MAX_SUPPLY], [1])),
        (lic.pause, ()),
        (lic.withdrawProceeds, (alice, 0)),
        (lic.setDelegation, (alice,)),
    ):
        reverts(method, *args, sender=alice, error="AccessControlUnauthorizedAccount", account=alice)
    reverts(lic.setDelegation, alice, sender=admin, error="DelegationAlreadySet")


def test_set_tiers_validation(lic, admin):
    for up_to, prices in (
        ([], []),
        ([MAX_SUPPLY - 1], [1]),
        ([10, 10, MAX_SUPPLY], [1, 2, 3]),
        ([10, MAX_SUPPLY], [1]),
        ([10, MAX_SUPPLY], [1, 2**128]),
    ):
        reverts(lic.setTiers, up_to, prices, sender=admin, error="InvalidTiers")
    lic.setTiers([MAX_SUPPLY], [7], sender=admin)
    assert lic.quote(3) == 21


def test_withdraw_proceeds(lic, holders, admin, accounts):
    buy(lic, holders[0], 5)
    treasury = accounts[9]
    before = treasury.balance
    reverts(
        lic.withdrawProceeds,
        treasury,
        501,
        sender=admin,
        error="InsufficientProceeds",
        requested=501,
        available=500,
    )
    tx = lic.withdrawProceeds(treasury, 500, sender=admin)
    assert tx.events.filter(lic.ProceedsWithdrawn)[0].amount == 500
    assert treasury.balance == before + 500 and lic.balance == 0
