"""ComputeLedger: deposits, withdrawals, sub-accounts, the refund lock, signer acknowledgement, roles,
parameters."""

from __future__ import annotations

import ape
from compute_helpers import (
    LOCK_TIME,
    MIN_DEPOSIT,
    MIN_TRANSFER,
    OTHER_SIGNER,
    TEE_SIGNER,
    ZERO_ADDRESS,
    deploy,
    time_travel,
)


def account(ledger, user, provider):
    info = ledger.getAccount(user.address, provider.address)
    return {
        "balance": info.balance,
        "pending": info.pendingRefund,
        "unlockAt": info.refundUnlockAt,
        "nonce": info.nonce,
        "charged": info.charged,
        "signer": info.teeSigner,
    }


def available(ledger, user) -> int:
    return ledger.getLedger(user.address)[0]


# --- deposits and withdrawals -------------------------------------------------------------------------


def test_deposit_credits_ledger_and_emits(ledger, alice):
    tx = ledger.depositFund(sender=alice, value=5_000)
    ev = tx.events.filter(ledger.FundDeposited)[0]
    assert (ev.user, ev.payer, ev.amount, ev.available) == (alice.address, alice.address, 5_000, 5_000)
    ledger.depositFund(sender=alice, value=MIN_DEPOSIT)
    assert ledger.getLedger(alice.address) == (6_000, 0)
    assert ledger.totalDeposited() == 6_000
    assert ledger.balance == 6_000


def test_deposit_for_another_user(ledger, alice, bob):
    tx = ledger.depositFundFor(bob.address, sender=alice, value=2_000)
    ev = tx.events.filter(ledger.FundDeposited)[0]
    assert (ev.user, ev.payer) == (bob.address, alice.address)
    assert available(ledger, bob) == 2_000 and available(ledger, alice) == 0
    with ape.reverts(ledger.ZeroAddress):
        ledger.depositFundFor(ZERO_ADDRESS, sender=alice, value=2_000)


def test_deposit_minimum(ledger, alice):
    with ape.reverts(ledger.DepositBelowMinimum, amount=MIN_DEPOSIT - 1, minimum=MIN_DEPOSIT):
        ledger.depositFund(sender=alice, value=MIN_DEPOSIT - 1)
    with ape.reverts(ledger.DepositBelowMinimum, amount=0, minimum=MIN_DEPOSIT):
        ledger.depositFund(sender=alice)


def test_direct_transfers_rejected(ledger, alice):
    with ape.reverts(ledger.DirectDepositsDisabled):
        alice.transfer(ledger.address, 5_000)
    with ape.reverts(ledger.DirectDepositsDisabled):
        alice.transfer(ledger.address, 5_000, data="0x12345678")
    assert ledger.balance == 0


def test_refund_from_ledger_is_immediate(ledger, alice):
    ledger.depositFund(sender=alice, value=5_000)
    before = alice.balance
    tx = ledger.refund(1_500, sender=alice)
    ev = tx.events.filter(ledger.FundWithdrawn)[0]
    assert (ev.user, ev.amount, ev.available) == (alice.address, 1_500, 3_500)
    assert alice.balance == before + 1_500 - tx.total_fees_paid
    assert ledger.totalWithdrawn() == 1_500
    with ape.reverts(ledger.InsufficientAvailable, requested=3_501, available=3_500):
        ledger.refund(3_501, sender=alice)
    with ape.reverts(ledger.ZeroAmount):
        ledger.refund(0, sender=alice)


# --- sub-accounts and the refund lock -------------------------------------------------------------------


def test_transfer_fund_moves_ledger_to_sub_account(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    tx = ledger.transferFund(prov.address, 2_000, sender=alice)
    ev = tx.events.filter(ledger.AccountFunded)[0]
    assert (ev.user, ev["provider"], ev.fromLedger, ev.cancelledRefund, ev.balance, ev.pendingRefund) == (
        alice.address,
        prov.address,
        2_000,
        0,
        2_000,
        0,
    )
    assert available(ledger, alice) == 3_000
    assert account(ledger, alice, prov)["balance"] == 2_000


def test_transfer_fund_rules(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    with ape.reverts(ledger.TransferBelowMinimum, amount=MIN_TRANSFER - 1, minimum=MIN_TRANSFER):
        ledger.transferFund(prov.address, MIN_TRANSFER - 1, sender=alice)
    with ape.reverts(ledger.InsufficientAvailable, requested=5_001, available=5_000):
        ledger.transferFund(prov.address, 5_001, sender=alice)
    with ape.reverts(ledger.ZeroAddress):
        ledger.transferFund(ZERO_ADDRESS, 1_000, sender=alice)


def test_refund_request_lock_collect(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 3_000, sender=alice)
    tx = ledger.requestRefund(prov.address, 1_000, sender=alice)
    ev = tx.events.filter(ledger.RefundRequested)[0]
    unlock_at = tx.timestamp + LOCK_TIME
    assert (ev.amount, ev.pendingRefund, ev.unlockAt) == (1_000, 1_000, unlock_at)
    acct = account(ledger, alice, prov)
    assert (acct["balance"], acct["pending"], acct["unlockAt"]) == (3_000, 1_000, unlock_at)
    with ape.reverts(ledger.RefundLocked, unlockAt=unlock_at):
        ledger.collectRefund(prov.address, sender=alice)
    time_travel(LOCK_TIME - 5)
    with ape.reverts(ledger.RefundLocked, unlockAt=unlock_at):
        ledger.collectRefund(prov.address, sender=alice)
    time_travel(10)
    tx = ledger.collectRefund(prov.address, sender=alice)
    ev = tx.events.filter(ledger.RefundCollected)[0]
    assert (ev.amount, ev.balance) == (1_000, 2_000)
    assert available(ledger, alice) == 3_000
    assert account(ledger, alice, prov)["pending"] == 0
    with ape.reverts(ledger.NoPendingRefund):
        ledger.collectRefund(prov.address, sender=alice)


def test_refund_request_rules_and_merge(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 3_000, sender=alice)
    with ape.reverts(ledger.ZeroAmount):
        ledger.requestRefund(prov.address, 0, sender=alice)
    with ape.reverts(ledger.InsufficientFree, requested=3_001, free=3_000):
        ledger.requestRefund(prov.address, 3_001, sender=alice)
    ledger.requestRefund(prov.address, 1_000, sender=alice)
    with ape.reverts(ledger.InsufficientFree, requested=2_001, free=2_000):
        ledger.requestRefund(prov.address, 2_001, sender=alice)
    time_travel(LOCK_TIME // 2)
    tx = ledger.requestRefund(prov.address, 500, sender=alice)  # merged, lock restarts for all of it
    ev = tx.events.filter(ledger.RefundRequested)[0]
    assert (ev.amount, ev.pendingRefund, ev.unlockAt) == (500, 1_500, tx.timestamp + LOCK_TIME)
    time_travel(LOCK_TIME // 2 + 10)  # the first request's lock would be over, the merged one is not
    with ape.reverts(ledger.RefundLocked):
        ledger.collectRefund(prov.address, sender=alice)


def test_new_transfer_cancels_pending_refund_first(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 3_000, sender=alice)
    ledger.requestRefund(prov.address, 1_000, sender=alice)
    tx = ledger.transferFund(prov.address, 400, sender=alice)  # all from the pending refund
    ev = tx.events.filter(ledger.AccountFunded)[0]
    assert (ev.fromLedger, ev.cancelledRefund, ev.balance, ev.pendingRefund) == (0, 400, 3_000, 600)
    assert available(ledger, alice) == 2_000
    tx = ledger.transferFund(prov.address, 1_000, sender=alice)  # 600 cancelled, 400 from the ledger
    ev = tx.events.filter(ledger.AccountFunded)[0]
    assert (ev.fromLedger, ev.cancelledRefund, ev.balance, ev.pendingRefund) == (400, 600, 3_400, 0)
    acct = account(ledger, alice, prov)
    assert (acct["pending"], acct["unlockAt"]) == (0, 0)
    assert available(ledger, alice) == 1_600


def test_sub_accounts_are_per_provider(ledger, alice, prov, prov2):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 1_000, sender=alice)
    ledger.transferFund(prov2.address, 2_000, sender=alice)
    assert account(ledger, alice, prov)["balance"] == 1_000
    assert account(ledger, alice, prov2)["balance"] == 2_000
    with ape.reverts(ledger.NoPendingRefund):
        ledger.collectRefund(prov2.address, sender=alice)


# --- TEE signer acknowledgement -----------------------------------------------------------------------


def test_acknowledge_signer(ledger, alice, prov):
    tx = ledger.acknowledgeSigner(prov.address, TEE_SIGNER, sender=alice)
    ev = tx.events.filter(ledger.SignerAcknowledged)[0]
    assert (ev.user, ev["provider"], ev.signer) == (alice.address, prov.address, TEE_SIGNER)
    assert ledger.teeSignerOf(alice.address, prov.address) == TEE_SIGNER
    assert not ledger.acknowledgeSigner(prov.address, TEE_SIGNER, sender=alice).events  # unchanged: no-op
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 1_000, sender=alice)
    with ape.reverts(ledger.SignerChangeWithBalance, current=TEE_SIGNER, balance=1_000):
        ledger.acknowledgeSigner(prov.address, OTHER_SIGNER, sender=alice)
    ledger.requestRefund(prov.address, 1_000, sender=alice)
    with ape.reverts(ledger.SignerChangeWithBalance, current=TEE_SIGNER, balance=1_000):  # pending counts
        ledger.acknowledgeSigner(prov.address, ZERO_ADDRESS, sender=alice)
    time_travel(LOCK_TIME + 1)
    ledger.collectRefund(prov.address, sender=alice)
    ledger.acknowledgeSigner(prov.address, OTHER_SIGNER, sender=alice)
    assert ledger.teeSignerOf(alice.address, prov.address) == OTHER_SIGNER


def test_first_acknowledgement_allowed_with_balance(ledger, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 1_000, sender=alice)
    ledger.acknowledgeSigner(prov.address, TEE_SIGNER, sender=alice)
    assert account(ledger, alice, prov)["signer"] == TEE_SIGNER


# --- roles ----------------------------------------------------------------------------------------------


def test_matcher_and_spender_functions_need_roles(ledger, alice, prov, outsider):
    for call, args in (
        (ledger.reserve, (alice.address, 1)),
        (ledger.releaseReservation, (alice.address, 1)),
        (ledger.fundFromReservation, (alice.address, prov.address, 1)),
    ):
        with ape.reverts(
            ledger.AccessControlUnauthorizedAccount,
            account=outsider.address,
            neededRole=ledger.MATCHER_ROLE(),
        ):
            call(*args, sender=outsider)
    with ape.reverts(
        ledger.AccessControlUnauthorizedAccount, account=outsider.address, neededRole=ledger.SPENDER_ROLE()
    ):
        ledger.charge(alice.address, prov.address, 1, sender=outsider)


def test_reservation_and_charge_paths(ledger, owner, alice, prov, outsider):
    """Driven by an account given the roles (the matcher and fine-tuning tests cover the real callers)."""
    ledger.grantRole(ledger.MATCHER_ROLE(), outsider.address, sender=owner)
    ledger.grantRole(ledger.SPENDER_ROLE(), outsider.address, sender=owner)
    ledger.depositFund(sender=alice, value=5_000)
    with ape.reverts(ledger.InsufficientAvailable, requested=5_001, available=5_000):
        ledger.reserve(alice.address, 5_001, sender=outsider)
    tx = ledger.reserve(alice.address, 3_000, sender=outsider)
    ev = tx.events.filter(ledger.FundReserved)[0]
    assert (ev.amount, ev.available, ev.reserved) == (3_000, 2_000, 3_000)
    with ape.reverts(ledger.InsufficientReserved, requested=3_001, reserved=3_000):
        ledger.releaseReservation(alice.address, 3_001, sender=outsider)
    ledger.releaseReservation(alice.address, 1_000, sender=outsider)
    assert ledger.getLedger(alice.address) == (3_000, 2_000)
    # funding from the reservation cancels a pending refund first; that part of the reservation is released
    ledger.transferFund(prov.address, 500, sender=alice)
    ledger.requestRefund(prov.address, 300, sender=alice)
    with ape.reverts(ledger.ZeroAmount):
        ledger.fundFromReservation(alice.address, prov.address, 0, sender=outsider)
    tx = ledger.fundFromReservation(alice.address, prov.address, 2_000, sender=outsider)
    ev = tx.events.filter(ledger.AccountFunded)[0]
    assert (ev.fromLedger, ev.cancelledRefund, ev.balance, ev.pendingRefund) == (1_700, 300, 2_200, 0)
    assert ledger.getLedger(alice.address) == (2_800, 0)  # 300 of the reservation replaced by the refund
    # charge takes free funds, then the pending refund; never more than the account holds
    ledger.requestRefund(prov.address, 1_000, sender=alice)
    with ape.reverts(ledger.InsufficientAccountBalance, requested=2_201, balance=2_200):
        ledger.charge(alice.address, prov.address, 2_201, sender=outsider)
    tx = ledger.charge(alice.address, prov.address, 2_000, sender=outsider)
    ev = tx.events.filter(ledger.AccountCharged)[0]
    assert (ev.user, ev["provider"], ev.service, ev.amount) == (
        alice.address,
        prov.address,
        outsider.address,
        2_000,
    )
    ev = tx.events.filter(ledger.RefundCancelled)[0]
    assert (ev.amount, ev.pendingRefund) == (800, 200)
    assert ledger.earnings(prov.address) == 2_000
    assert account(ledger, alice, prov)["balance"] == 200
    assert not ledger.charge(alice.address, prov.address, 0, sender=outsider).events  # zero: nothing


# --- parameters and pause -------------------------------------------------------------------------------


def test_lock_time_and_minimums(ledger, owner, alice):
    with ape.reverts(ledger.AccessControlUnauthorizedAccount):
        ledger.setLockTime(7200, sender=alice)
    with ape.reverts(ledger.LockTimeOutOfRange, lockTime=59, min=60, max=7 * 86400):
        ledger.setLockTime(59, sender=owner)
    with ape.reverts(ledger.LockTimeOutOfRange):
        ledger.setLockTime(7 * 86400 + 1, sender=owner)
    tx = ledger.setLockTime(7200, sender=owner)
    ev = tx.events.filter(ledger.LockTimeUpdated)[0]
    assert (ev.oldLockTime, ev.newLockTime) == (LOCK_TIME, 7200)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount):
        ledger.setMinimums(1, 1, sender=alice)
    tx = ledger.setMinimums(10, 5, sender=owner)
    assert (tx.events.filter(ledger.MinimumsUpdated)[0].minDeposit, ledger.minTransfer()) == (10, 5)


def test_lock_time_change_applies_to_new_requests_only(ledger, owner, alice, prov):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 3_000, sender=alice)
    first = ledger.requestRefund(prov.address, 1_000, sender=alice)
    ledger.setLockTime(7 * 86400, sender=owner)
    assert account(ledger, alice, prov)["unlockAt"] == first.timestamp + LOCK_TIME
    time_travel(LOCK_TIME + 1)
    ledger.collectRefund(prov.address, sender=alice)


def test_pause_blocks_inflows_not_outflows(ledger, owner, alice, prov, outsider):
    ledger.depositFund(sender=alice, value=5_000)
    ledger.transferFund(prov.address, 2_000, sender=alice)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount):
        ledger.pause(sender=alice)
    ledger.pause(sender=owner)
    with ape.reverts(ledger.EnforcedPause):
        ledger.depositFund(sender=alice, value=5_000)
    with ape.reverts(ledger.EnforcedPause):
        ledger.transferFund(prov.address, 1_000, sender=alice)
    ledger.grantRole(ledger.MATCHER_ROLE(), outsider.address, sender=owner)
    with ape.reverts(ledger.EnforcedPause):
        ledger.reserve(alice.address, 1_000, sender=outsider)
    ledger.refund(1_000, sender=alice)
    ledger.requestRefund(prov.address, 2_000, sender=alice)
    time_travel(LOCK_TIME + 1)
    ledger.collectRefund(prov.address, sender=alice)
    ledger.unpause(sender=owner)
    ledger.depositFund(sender=alice, value=5_000)


def test_constructor_checks(project, owner):
    with ape.reverts():
        project.ComputeLedger.deploy(ZERO_ADDRESS, LOCK_TIME, 1, 1, sender=owner)
    with ape.reverts():
        project.ComputeLedger.deploy(owner.address, 10, 1, 1, sender=owner)


def test_deploy_wires_roles_and_hands_over_admin(project, owner, alice):
    d = deploy(owner, project, admin=alice.address)
    ledger = project.ComputeLedger.at(d["ledger"])
    assert ledger.hasRole(ledger.MATCHER_ROLE(), d["matcher"])
    assert ledger.hasRole(ledger.SPENDER_ROLE(), d["fine_tuning"])
    for name, ctype in (
        ("ledger", project.ComputeLedger),
        ("registry", project.ServiceRegistry),
        ("matcher", project.ComputeMatcher),
        ("fine_tuning", project.FineTuningServing),
    ):
        c = ctype.at(d[name])
        assert c.hasRole(c.DEFAULT_ADMIN_ROLE(), alice.address)
        assert c.hasRole(c.PARAMS_ADMIN_ROLE(), alice.address)
        assert not c.hasRole(c.DEFAULT_ADMIN_ROLE(), owner.address)
        assert not c.hasRole(c.PARAMS_ADMIN_ROLE(), owner.address)
    assert d["admin"] == alice.address


def test_eip712_domain(ledger):
    domain = ledger.eip712Domain()
    assert domain.name == "deaios Compute Ledger" and domain.version == "1"
    assert domain.verifyingContract == ledger.address
