"""Gas of the compute market (regression bounds; figures recorded in docs/benchmarks.md).

Run `ape test tests/compute/test_compute_gas.py -s` to print the "GAS ..." lines.
"""

from __future__ import annotations

from compute_helpers import (
    LOCK_TIME,
    MIN_STAKE,
    TEE_KEY,
    TEE_SIGNER,
    ZERO_ADDRESS,
    abi,
    request,
    service_params,
    tee_receipt,
    time_travel,
    user_receipt,
)
from eth_account import Account
from eth_utils import keccak

BATCH = 50
TARGET_PER_ENTRY = 40_000


class KeyUser:
    """A user known only by its key (funded by the admin through the ledger; never sends transactions)."""

    def __init__(self, i: int) -> None:
        self.private_key = "0x" + keccak(text=f"deaios gas user {i}").hex()
        self.address = Account.from_key(self.private_key).address


def _fund_accounts(ledger, owner, prov, users, amount=10**12):
    """Give each user a funded sub-account with prov without user transactions (owner acts as matcher)."""
    ledger.grantRole(ledger.MATCHER_ROLE(), owner.address, sender=owner)
    for u in users:
        ledger.depositFundFor(u.address, sender=owner, value=amount)
        ledger.reserve(u.address, amount, sender=owner)
        ledger.fundFromReservation(u.address, prov.address, amount, sender=owner)


def test_settlement_gas_per_entry(ledger, owner, prov, accounts):
    users = [KeyUser(i) for i in range(BATCH)]
    _fund_accounts(ledger, owner, prov, users)

    # user-signed receipts: a batch of 1, then batches of 50 (first settlement of each account, then a later)
    one = ledger.settleFees(abi([user_receipt(ledger, users[0], prov, 1, 1_000)]), sender=prov).gas_used
    first = ledger.settleFees(abi([user_receipt(ledger, u, prov, 2, 2_000) for u in users]), sender=prov)
    later = ledger.settleFees(abi([user_receipt(ledger, u, prov, 3, 3_500) for u in users]), sender=prov)
    assert all(e.status == 0 for e in later.events.filter(ledger.ReceiptSettled))
    assert len(later.events.filter(ledger.ReceiptSettled)) == BATCH

    # TEE-signed receipts (each user acknowledged the provider's signer: one transaction per user)
    tee_users = [accounts.generate_test_account() for _ in range(BATCH)]
    for u in tee_users:
        owner.transfer(u, 10**18)
        ledger.acknowledgeSigner(prov.address, TEE_SIGNER, sender=u)
    _fund_accounts(ledger, owner, prov, tee_users)
    tee = ledger.settleFees(
        abi([tee_receipt(ledger, u, prov, 1, 2_000, key=TEE_KEY) for u in tee_users]), sender=prov
    )
    assert all(e.status == 0 for e in tee.events.filter(ledger.ReceiptSettled))

    # receipts that dig into a pending refund (second storage slot of the account)
    for u in tee_users:
        ledger.requestRefund(prov.address, 10**12 - 2_000, sender=u)
    refund = ledger.settleFees(
        abi([tee_receipt(ledger, u, prov, 2, 3_000, key=TEE_KEY) for u in tee_users]), sender=prov
    )
    assert all(e.status == 0 for e in refund.events.filter(ledger.ReceiptSettled))

    # rejected (replayed) receipts cost little
    replay = ledger.settleFees(
        abi([tee_receipt(ledger, u, prov, 2, 3_000, key=TEE_KEY) for u in tee_users]), sender=prov
    )
    assert all(e.status == 2 for e in replay.events.filter(ledger.ReceiptSettled))

    per = {
        name: tx.gas_used / BATCH
        for name, tx in (
            ("user-first", first),
            ("user-later", later),
            ("tee", tee),
            ("tee-from-refund", refund),
            ("replayed", replay),
        )
    }
    marginal = (later.gas_used - one) / (BATCH - 1)
    print(
        f"\nGAS settleFees batch=1 {one}; batch={BATCH}: "
        + "; ".join(f"{k} total={int(v * BATCH)} per-entry={v:.0f}" for k, v in per.items())
        + f"; marginal per extra user-signed entry {marginal:.0f}"
    )
    for name, value in per.items():
        assert value <= TARGET_PER_ENTRY, (name, value)


def test_other_operation_gas(ledger, registry, matcher, fine_tuning, owner, alice, prov, prov2):
    from compute_helpers import FINE_TUNING, deliverable_signature

    figures = {}
    figures["depositFund (first)"] = ledger.depositFund(sender=alice, value=10**15).gas_used
    figures["depositFund"] = ledger.depositFund(sender=alice, value=10**15).gas_used
    figures["transferFund (new account)"] = ledger.transferFund(prov2.address, 10**12, sender=alice).gas_used
    figures["transferFund"] = ledger.transferFund(prov2.address, 10**12, sender=alice).gas_used
    figures["requestRefund"] = ledger.requestRefund(prov2.address, 10**12, sender=alice).gas_used
    time_travel(LOCK_TIME + 1)
    figures["collectRefund"] = ledger.collectRefund(prov2.address, sender=alice).gas_used
    figures["refund (ledger withdrawal)"] = ledger.refund(10**12, sender=alice).gas_used
    figures["addOrUpdateService (register)"] = registry.addOrUpdateService(
        service_params(), ZERO_ADDRESS, sender=prov, value=MIN_STAKE
    ).gas_used
    figures["addOrUpdateService (update)"] = registry.addOrUpdateService(
        service_params(input_price=11), ZERO_ADDRESS, sender=prov
    ).gas_used
    tx = matcher.requestService(request(deposit=10**12), sender=alice)
    figures["requestService (match at list head)"] = tx.gas_used
    rid = tx.events.filter(matcher.ServiceMatched)[0].requestId
    figures["acceptMatch"] = matcher.acceptMatch(rid, sender=prov).gas_used
    rid2 = (
        matcher.requestService(request(deposit=10**12), sender=alice)
        .events.filter(matcher.ServiceMatched)[0]
        .requestId
    )
    figures["declineMatch (strike, no other service: fails)"] = matcher.declineMatch(rid2, sender=prov).gas_used
    rid3 = (
        matcher.requestService(request(deposit=10**12, start=prov.address), sender=alice)
        .events.filter(matcher.ServiceMatched)[0]
        .requestId
    )
    time_travel(61)
    figures["finalizeMatch (ignored: strike, no other service)"] = matcher.finalizeMatch(rid3, sender=alice).gas_used
    figures["withdrawEarnings"] = None
    registry.addOrUpdateService(
        service_params(service_type=FINE_TUNING, output_price=0), ZERO_ADDRESS, sender=prov2, value=MIN_STAKE
    )
    ledger.transferFund(prov2.address, 10**12, sender=alice)
    ledger.acknowledgeSigner(prov2.address, TEE_SIGNER, sender=alice)
    task, root, secret = keccak(text="t"), keccak(text="r"), b"s" * 64
    figures["addDeliverable"] = fine_tuning.addDeliverable(alice.address, task, root, keccak(secret),
                                                           sender=prov2).gas_used
    figures["acknowledgeDeliverable"] = fine_tuning.acknowledgeDeliverable(
        prov2.address, task, sender=alice
    ).gas_used
    sig = deliverable_signature(fine_tuning, alice, prov2, task, root, 10**9, secret)
    figures["settleDeliverable (TEE, 64-byte secret)"] = fine_tuning.settleDeliverable(
        (alice.address, task, 10**9, secret, 0, sig), sender=prov2
    ).gas_used
    figures["withdrawEarnings"] = ledger.withdrawEarnings(prov2.address, sender=prov2).gas_used
    figures["removeService"] = registry.removeService(sender=prov).gas_used
    print("\nGAS " + "; ".join(f"{k}={v}" for k, v in figures.items()))
    assert figures["requestService (match at list head)"] < 300_000
    assert figures["acceptMatch"] < 100_000
