"""ComputeLedger.settleFees: cumulative receipts signed by the user or the acknowledged TEE signer,
per-receipt statuses, partial settlement, replay and stale rejection, pull payments."""

from __future__ import annotations

import ape
import pytest
from compute_helpers import (
    LOCK_TIME,
    OTHER_KEY,
    TEE_SIGNER,
    ZERO_ADDRESS,
    abi,
    settle,
    tee_receipt,
    time_travel,
    user_receipt,
)
from deaios.compute.receipts import SettlementStatus as S
from deaios.compute.receipts import SignerKind, receipt_digest
from eth_utils import keccak


@pytest.fixture
def funded(ledger, alice, bob, prov):
    """alice and bob each put 1_000 into a sub-account with prov; alice acknowledges prov's TEE signer."""
    for user in (alice, bob):
        ledger.depositFund(sender=user, value=5_000)
        ledger.transferFund(prov.address, 1_000, sender=user)
    ledger.acknowledgeSigner(prov.address, TEE_SIGNER, sender=alice)


def acct(ledger, user, provider):
    return ledger.getAccount(user.address, provider.address)


def test_digest_matches_python_format(ledger, alice, prov, chain):
    h = keccak(text="requests")
    assert ledger.receiptDigest(alice.address, prov.address, 7, 123, h) == receipt_digest(
        chain.chain_id, ledger.address, alice.address, prov.address, 7, 123, h
    )


def test_user_signed_receipt_pays_the_delta(ledger, funded, alice, prov):
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 300)])
    assert statuses == [S.SUCCESS]
    ev = tx.events.filter(ledger.ReceiptSettled)[0]
    assert (ev.user, ev["provider"], ev.nonce, ev.paid, ev.unpaid) == (alice.address, prov.address, 1, 300, 0)
    credited = tx.events.filter(ledger.EarningsCredited)[0]
    assert (credited.amount, credited.earnings) == (300, 300)
    a = acct(ledger, alice, prov)
    assert (a.balance, a.nonce, a.charged) == (700, 1, 300)
    # cumulative: the next receipt states the running total, only the increase is paid
    statuses, _ = settle(ledger, prov, [user_receipt(ledger, alice, prov, 5, 450)])
    assert statuses == [S.SUCCESS]
    a = acct(ledger, alice, prov)
    assert (a.balance, a.nonce, a.charged) == (550, 5, 450)
    assert ledger.earnings(prov.address) == 450


def test_tee_signed_receipt_needs_acknowledged_signer(ledger, funded, alice, bob, prov):
    statuses, _ = settle(
        ledger,
        prov,
        [
            tee_receipt(ledger, alice, prov, 1, 100),  # acknowledged
            tee_receipt(ledger, bob, prov, 1, 100),  # bob acknowledged none
            tee_receipt(ledger, alice, prov, 2, 200, key=OTHER_KEY),
        ],
    )  # wrong key
    assert statuses == [S.SUCCESS, S.SIGNER_NOT_ACKNOWLEDGED, S.INVALID_SIGNATURE]
    assert acct(ledger, alice, prov).charged == 100
    assert acct(ledger, bob, prov).charged == 0


def test_returned_statuses_equal_events(ledger, funded, alice, prov):
    receipts = [user_receipt(ledger, alice, prov, 1, 100), user_receipt(ledger, alice, prov, 1, 200)]
    out = ledger.settleFees.call(abi(receipts), sender=prov)  # eth_call: a preview, nothing changes
    assert list(out) == [S.SUCCESS, S.INVALID_NONCE]
    assert acct(ledger, alice, prov).nonce == 0
    statuses, _ = settle(ledger, prov, receipts)
    assert statuses == [S.SUCCESS, S.INVALID_NONCE]


def test_replayed_and_stale_receipts_are_rejected(ledger, funded, alice, prov):
    first = user_receipt(ledger, alice, prov, 10, 300)
    assert settle(ledger, prov, [first])[0] == [S.SUCCESS]
    older = user_receipt(ledger, alice, prov, 9, 400)
    lower_total = user_receipt(ledger, alice, prov, 11, 200)
    statuses, tx = settle(ledger, prov, [first, older, lower_total])
    assert statuses == [S.INVALID_NONCE, S.INVALID_NONCE, S.FEE_BELOW_CHARGED]
    assert all(e.paid == 0 for e in tx.events.filter(ledger.ReceiptSettled))
    assert not tx.events.filter(ledger.EarningsCredited)
    a = acct(ledger, alice, prov)
    assert (a.balance, a.nonce, a.charged) == (700, 10, 300)


def test_same_total_with_higher_nonce_pays_nothing(ledger, funded, alice, prov):
    settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 300)])
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 2, 300)])
    assert statuses == [S.SUCCESS]
    assert tx.events.filter(ledger.ReceiptSettled)[0].paid == 0
    assert acct(ledger, alice, prov).nonce == 2


def test_nonce_above_uint64_rejected(ledger, funded, alice, prov):
    statuses, _ = settle(ledger, prov, [user_receipt(ledger, alice, prov, 2**64, 100)])
    assert statuses == [S.INVALID_NONCE]
    statuses, _ = settle(ledger, prov, [user_receipt(ledger, alice, prov, 2**64 - 1, 100)])
    assert statuses == [S.SUCCESS]


def test_tampered_receipts_fail_signature(ledger, funded, alice, bob, prov, prov2):
    good = user_receipt(ledger, alice, prov, 1, 100)
    tampered = [
        good.__class__(**{**good.__dict__, "total_fee": 1_000}),  # more than signed
        good.__class__(**{**good.__dict__, "nonce": 2}),
        good.__class__(**{**good.__dict__, "requests_hash": b"\x01" * 32}),
        good.__class__(**{**good.__dict__, "user": bob.address}),  # another user's account
        good.__class__(**{**good.__dict__, "signature": good.signature[:64]}),  # malformed
        good.__class__(**{**good.__dict__, "signer_kind": SignerKind.TEE}),  # user key is not the TEE signer
    ]
    statuses, _ = settle(ledger, prov, tampered)
    assert statuses == [S.INVALID_SIGNATURE] * 5 + [S.INVALID_SIGNATURE]
    # a receipt for prov cannot be settled by another provider (the provider is part of the signed message)
    ledger.transferFund(prov2.address, 1_000, sender=alice)
    statuses, _ = settle(ledger, prov2, [good])
    assert statuses == [S.INVALID_SIGNATURE]
    assert acct(ledger, alice, prov2).charged == 0
    assert settle(ledger, prov, [good])[0] == [S.SUCCESS]


def test_receipt_signed_by_bob_for_alice_is_rejected(ledger, funded, alice, bob, prov, chain):
    from deaios.compute.receipts import sign_receipt

    forged = sign_receipt(
        bob.private_key, chain.chain_id, ledger.address, alice.address, prov.address, 1, 500
    )
    assert settle(ledger, prov, [forged])[0] == [S.INVALID_SIGNATURE]


def test_partial_settlement_keeps_the_rest_due(ledger, funded, alice, prov):
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 1_300)])
    assert statuses == [S.PARTIAL]
    ev = tx.events.filter(ledger.ReceiptSettled)[0]
    assert (ev.paid, ev.unpaid) == (1_000, 300)
    a = acct(ledger, alice, prov)
    assert (a.balance, a.charged, a.nonce) == (0, 1_000, 1)
    # the user tops up; a later receipt with the same cumulative total collects the remainder, no more
    ledger.transferFund(prov.address, 1_000, sender=alice)
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 2, 1_300)])
    assert statuses == [S.SUCCESS]
    assert tx.events.filter(ledger.ReceiptSettled)[0].paid == 300
    a = acct(ledger, alice, prov)
    assert (a.balance, a.charged) == (700, 1_300)
    assert ledger.earnings(prov.address) == 1_300


def test_settlement_draws_on_pending_refund(ledger, funded, alice, prov):
    """Funds locked for refund stay spendable by the provider until collected: what the lock is for."""
    ledger.requestRefund(prov.address, 800, sender=alice)  # free 200, pending 800
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 500)])
    assert statuses == [S.SUCCESS]
    ev = tx.events.filter(ledger.RefundCancelled)[0]
    assert (ev.amount, ev.pendingRefund) == (300, 500)
    a = acct(ledger, alice, prov)
    assert (a.balance, a.pendingRefund) == (500, 500)
    statuses, _ = settle(ledger, prov, [user_receipt(ledger, alice, prov, 2, 1_200)])
    assert statuses == [S.PARTIAL]
    a = acct(ledger, alice, prov)
    assert (a.balance, a.pendingRefund, a.refundUnlockAt, a.charged) == (0, 0, 0, 1_000)
    time_travel(LOCK_TIME + 1)
    with ape.reverts(ledger.NoPendingRefund):
        ledger.collectRefund(prov.address, sender=alice)


def test_collected_refund_is_out_of_reach(ledger, funded, alice, prov):
    ledger.requestRefund(prov.address, 1_000, sender=alice)
    time_travel(LOCK_TIME + 1)
    ledger.collectRefund(prov.address, sender=alice)
    statuses, tx = settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 500)])
    assert statuses == [S.PARTIAL]
    assert tx.events.filter(ledger.ReceiptSettled)[0].paid == 0
    assert acct(ledger, alice, prov).nonce == 1


def test_batch_mixes_users_and_statuses(ledger, funded, alice, bob, prov):
    receipts = [
        user_receipt(ledger, alice, prov, 1, 100),
        user_receipt(ledger, bob, prov, 1, 1_500),  # partial: bob holds 1_000
        user_receipt(ledger, alice, prov, 1, 200),  # replay of nonce 1 within the batch
        tee_receipt(ledger, alice, prov, 2, 250),  # alice again, TEE-signed, same series
        tee_receipt(ledger, bob, prov, 2, 1_600),  # bob has no TEE signer
    ]
    statuses, tx = settle(ledger, prov, receipts)
    assert statuses == [S.SUCCESS, S.PARTIAL, S.INVALID_NONCE, S.SUCCESS, S.SIGNER_NOT_ACKNOWLEDGED]
    assert [e.paid for e in tx.events.filter(ledger.ReceiptSettled)] == [100, 1_000, 0, 150, 0]
    assert tx.events.filter(ledger.EarningsCredited)[0].amount == 1_250
    assert acct(ledger, alice, prov).charged == 250 and acct(ledger, bob, prov).charged == 1_000


def test_batch_size_limits(ledger, funded, alice, prov):
    with ape.reverts(ledger.NoReceipts):
        ledger.settleFees([], sender=prov)
    receipts = [user_receipt(ledger, alice, prov, i + 1, i) for i in range(51)]
    with ape.reverts(ledger.TooManyReceipts, count=51, max=50):
        ledger.settleFees(abi(receipts), sender=prov)


def test_earnings_are_pulled(ledger, funded, alice, prov, outsider):
    with ape.reverts(ledger.NoEarnings):
        ledger.withdrawEarnings(prov.address, sender=prov)
    settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 400)])
    with ape.reverts(ledger.ZeroAddress):
        ledger.withdrawEarnings(ZERO_ADDRESS, sender=prov)
    before = outsider.balance
    tx = ledger.withdrawEarnings(outsider.address, sender=prov)
    ev = tx.events.filter(ledger.EarningsWithdrawn)[0]
    assert (ev["provider"], ev.to, ev.amount) == (prov.address, outsider.address, 400)
    assert outsider.balance == before + 400
    assert ledger.earnings(prov.address) == 0
    assert ledger.totalWithdrawn() == 400
    with ape.reverts(ledger.NoEarnings):
        ledger.withdrawEarnings(prov.address, sender=prov)


def test_settlement_works_while_paused(ledger, owner, funded, alice, prov):
    ledger.pause(sender=owner)
    assert settle(ledger, prov, [user_receipt(ledger, alice, prov, 1, 100)])[0] == [S.SUCCESS]
    ledger.withdrawEarnings(prov.address, sender=prov)


def test_enum_out_of_range_reverts_batch(ledger, funded, alice, prov, chain):
    """A malformed signerKind is an ABI error: the whole call reverts (statuses are for well-formed input)."""
    good = user_receipt(ledger, alice, prov, 1, 100).as_abi()
    bad = user_receipt(ledger, alice, prov, 2, 100).as_abi()
    bad = bad[:4] + (2,) + bad[5:]
    with ape.reverts():
        ledger.settleFees([good, bad], sender=prov)
    assert acct(ledger, alice, prov).nonce == 0
