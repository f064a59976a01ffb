"""FineTuningServing: deliverables (model root hash, committed secret hash), acknowledgement, dispute, full fee
+ secret release, penalty share (and the rest after a late acknowledgement)."""

from __future__ import annotations

import ape
import pytest
from compute_helpers import (
    ACK_WINDOW,
    FINE_TUNING,
    MIN_STAKE,
    OTHER_KEY,
    PENALTY_BPS,
    TEE_SIGNER,
    ZERO_ADDRESS,
    deliverable_signature,
    service_params,
    task_signature,
    time_travel,
)
from deaios.compute.receipts import SignerKind, deliverable_digest, task_digest
from eth_utils import keccak

TASK = keccak(text="task-1")
ROOT = keccak(text="model root")
SECRET = b"\x04" + b"encrypted-key" * 5
SECRET_HASH = keccak(SECRET)
FEE = 10_000


@pytest.fixture
def ft_provider(registry, prov):
    registry.addOrUpdateService(
        service_params(service_type=FINE_TUNING, input_price=3, output_price=0),
        ZERO_ADDRESS,
        sender=prov,
        value=MIN_STAKE,
    )
    return prov


@pytest.fixture
def funded(ledger, alice, ft_provider):
    ledger.depositFund(sender=alice, value=50_000)
    ledger.transferFund(ft_provider.address, 20_000, sender=alice)
    ledger.acknowledgeSigner(ft_provider.address, TEE_SIGNER, sender=alice)
    return alice


def user_settlement(ft, user, provider, fee=FEE, secret=SECRET, task=TASK):
    return (user.address, task, fee, secret, SignerKind.USER, task_signature(ft, user, provider, task, fee))


def tee_settlement(ft, user, provider, fee=FEE, secret=SECRET, task=TASK, root=ROOT, key=None):
    sig = deliverable_signature(ft, user, provider, task, root, fee, secret, **({"key": key} if key else {}))
    return (user.address, task, fee, secret, SignerKind.TEE, sig)


def test_digests_match_python_format(fine_tuning, alice, prov, chain):
    assert fine_tuning.taskDigest(alice.address, prov.address, TASK, FEE) == task_digest(
        chain.chain_id, fine_tuning.address, alice.address, prov.address, TASK, FEE
    )
    assert fine_tuning.deliverableDigest(
        alice.address, prov.address, TASK, ROOT, FEE, keccak(SECRET)
    ) == deliverable_digest(
        chain.chain_id, fine_tuning.address, alice.address, prov.address, TASK, ROOT, FEE, SECRET
    )


def test_add_deliverable_rules(fine_tuning, registry, funded, ft_provider, prov2, alice):
    with ape.reverts(fine_tuning.NotFineTuningProvider, provider=prov2.address):
        fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=prov2)  # no service
    registry.addOrUpdateService(service_params(), ZERO_ADDRESS, sender=prov2, value=MIN_STAKE)
    with ape.reverts(fine_tuning.NotFineTuningProvider, provider=prov2.address):
        fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=prov2)  # an inference service
    with ape.reverts(fine_tuning.ZeroRootHash):
        fine_tuning.addDeliverable(alice.address, TASK, b"\x00" * 32, SECRET_HASH, sender=ft_provider)
    with ape.reverts(fine_tuning.ZeroAddress):
        fine_tuning.addDeliverable(ZERO_ADDRESS, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    with ape.reverts(fine_tuning.ZeroSecretHash):
        fine_tuning.addDeliverable(alice.address, TASK, ROOT, b"\x00" * 32, sender=ft_provider)
    tx = fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    ev = tx.events.filter(fine_tuning.DeliverableAdded)[0]
    assert (ev.user, ev["provider"], ev.taskId, ev.modelRootHash, ev.secretHash) == (
        alice.address,
        ft_provider.address,
        TASK,
        ROOT,
        SECRET_HASH,
    )
    with ape.reverts(
        fine_tuning.DeliverableExists, user=alice.address, provider=ft_provider.address, taskId=TASK
    ):
        fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    d = fine_tuning.getDeliverable(alice.address, ft_provider.address, TASK)
    assert (d.modelRootHash, d.postedAt, d.acknowledged, d.settled, d.feePaid, d.encryptedSecret, d.secretHash,
            d.disputed) == (ROOT, tx.timestamp, False, False, 0, b"", SECRET_HASH, False)


def test_acknowledge_rules(fine_tuning, funded, ft_provider, alice, bob):
    with ape.reverts(fine_tuning.DeliverableNotFound):
        fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    with ape.reverts(fine_tuning.DeliverableNotFound):  # bob has no such deliverable
        fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=bob)
    tx = fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    assert tx.events.filter(fine_tuning.DeliverableAcknowledged)[0].taskId == TASK
    with ape.reverts(fine_tuning.AlreadyAcknowledged, taskId=TASK):
        fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)


@pytest.mark.parametrize("signed_by", ["user", "tee"])
def test_acknowledged_pays_full_fee_and_releases_secret(
    fine_tuning, ledger, funded, ft_provider, alice, signed_by
):
    fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    make = user_settlement if signed_by == "user" else tee_settlement
    with ape.reverts(fine_tuning.MissingSecret):
        fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider, secret=b""), sender=ft_provider)
    tx = fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider), sender=ft_provider)
    ev = tx.events.filter(fine_tuning.DeliverableSettled)[0]
    assert (ev.fee, ev.acknowledged, ev.encryptedSecret) == (FEE, True, SECRET)
    charged = tx.events.filter(ledger.AccountCharged)[0]
    assert (charged.user, charged["provider"], charged.service, charged.amount) == (
        alice.address,
        ft_provider.address,
        fine_tuning.address,
        FEE,
    )
    assert ledger.earnings(ft_provider.address) == FEE
    assert ledger.getAccount(alice.address, ft_provider.address).balance == 20_000 - FEE
    d = fine_tuning.getDeliverable(alice.address, ft_provider.address, TASK)
    assert (d.settled, d.feePaid, d.encryptedSecret) == (True, FEE, SECRET)
    with ape.reverts(fine_tuning.AlreadySettled, taskId=TASK):
        fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider), sender=ft_provider)


@pytest.mark.parametrize("signed_by", ["user", "tee"])
def test_unacknowledged_pays_penalty_only(fine_tuning, ledger, funded, ft_provider, alice, signed_by):
    tx = fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    make = user_settlement if signed_by == "user" else tee_settlement
    deadline = tx.timestamp + ACK_WINDOW
    with ape.reverts(fine_tuning.AckWindowOpen, deadline=deadline):
        fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider, secret=b""), sender=ft_provider)
    time_travel(ACK_WINDOW + 1)
    with ape.reverts(fine_tuning.UnexpectedSecret):
        fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider), sender=ft_provider)
    tx = fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider, secret=b""), sender=ft_provider)
    penalty = FEE * PENALTY_BPS // 10_000
    ev = tx.events.filter(fine_tuning.DeliverableSettled)[0]
    assert (ev.fee, ev.acknowledged, ev.encryptedSecret) == (penalty, False, b"")
    assert ledger.earnings(ft_provider.address) == penalty
    with ape.reverts(fine_tuning.PenaltyAlreadyPaid, taskId=TASK):
        fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider, secret=b""), sender=ft_provider)
    # a late acknowledgement still gets the model: the provider settles the rest of the fee with the secret
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    tx = fine_tuning.settleDeliverable(make(fine_tuning, alice, ft_provider), sender=ft_provider)
    assert tx.events.filter(fine_tuning.DeliverableSettled)[0].fee == FEE - penalty
    d = fine_tuning.getDeliverable(alice.address, ft_provider.address, TASK)
    assert (d.settled, d.feePaid, d.encryptedSecret) == (True, FEE, SECRET)
    assert ledger.earnings(ft_provider.address) == FEE


def test_signature_checks(fine_tuning, ledger, funded, ft_provider, alice, bob):
    fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    bad = [
        user_settlement(fine_tuning, alice, ft_provider, fee=FEE)[:2]
        + (FEE + 1,)
        + user_settlement(fine_tuning, alice, ft_provider)[3:],  # fee above the signed one
        tee_settlement(fine_tuning, alice, ft_provider, key=OTHER_KEY),  # not the acknowledged key
        tee_settlement(fine_tuning, alice, ft_provider, root=keccak(text="other")),  # another model
        (
            alice.address,
            TASK,
            FEE,
            SECRET,
            SignerKind.USER,
            task_signature(fine_tuning, bob, ft_provider, TASK, FEE),
        ),  # signed by bob
    ]
    for s in bad:
        with ape.reverts(fine_tuning.InvalidSignature):
            fine_tuning.settleDeliverable(s, sender=ft_provider)
    # a secret other than the committed one, even signed for
    other = SECRET + b"x"
    with ape.reverts(fine_tuning.SecretMismatch, committed=SECRET_HASH, given=keccak(other)):
        fine_tuning.settleDeliverable(tee_settlement(fine_tuning, alice, ft_provider, secret=other),
                                      sender=ft_provider)
    with ape.reverts(fine_tuning.SecretTooLong, length=1025, max=1024):
        fine_tuning.settleDeliverable(
            user_settlement(fine_tuning, alice, ft_provider, secret=b"x" * 1025), sender=ft_provider
        )


def test_tee_mode_needs_acknowledged_signer(fine_tuning, ledger, ft_provider, bob):
    ledger.depositFund(sender=bob, value=50_000)
    ledger.transferFund(ft_provider.address, 20_000, sender=bob)
    fine_tuning.addDeliverable(bob.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=bob)
    with ape.reverts(fine_tuning.SignerNotAcknowledged, user=bob.address, provider=ft_provider.address):
        fine_tuning.settleDeliverable(tee_settlement(fine_tuning, bob, ft_provider), sender=ft_provider)


def test_fee_above_balance_reverts(fine_tuning, ledger, funded, ft_provider, alice):
    fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    with ape.reverts(ledger.InsufficientAccountBalance, requested=20_001, balance=20_000):
        fine_tuning.settleDeliverable(
            user_settlement(fine_tuning, alice, ft_provider, fee=20_001), sender=ft_provider
        )
    assert not fine_tuning.getDeliverable(alice.address, ft_provider.address, TASK).settled


def test_dispute_rules(fine_tuning, ledger, funded, ft_provider, alice, bob):
    tx = fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    with ape.reverts(fine_tuning.DeliverableNotFound):
        fine_tuning.disputeDeliverable(ft_provider.address, TASK, sender=bob)
    ev = fine_tuning.disputeDeliverable(ft_provider.address, TASK, sender=alice).events.filter(
        fine_tuning.DeliverableDisputed)[0]
    assert (ev.user, ev["provider"], ev.taskId) == (alice.address, ft_provider.address, TASK)
    with ape.reverts(fine_tuning.AlreadyDisputed, taskId=TASK):
        fine_tuning.disputeDeliverable(ft_provider.address, TASK, sender=alice)
    time_travel(ACK_WINDOW + 1)
    with ape.reverts(fine_tuning.DisputedDeliverable, taskId=TASK):
        fine_tuning.settleDeliverable(user_settlement(fine_tuning, alice, ft_provider, secret=b""),
                                      sender=ft_provider)
    # changing its mind, the user acknowledges: the full settlement works
    fine_tuning.acknowledgeDeliverable(ft_provider.address, TASK, sender=alice)
    fine_tuning.settleDeliverable(user_settlement(fine_tuning, alice, ft_provider), sender=ft_provider)
    task2 = keccak(text="task-2")
    tx = fine_tuning.addDeliverable(alice.address, task2, ROOT, SECRET_HASH, sender=ft_provider)
    fine_tuning.acknowledgeDeliverable(ft_provider.address, task2, sender=alice)
    with ape.reverts(fine_tuning.AlreadyAcknowledged, taskId=task2):
        fine_tuning.disputeDeliverable(ft_provider.address, task2, sender=alice)
    task3 = keccak(text="task-3")
    tx = fine_tuning.addDeliverable(alice.address, task3, ROOT, SECRET_HASH, sender=ft_provider)
    time_travel(ACK_WINDOW)
    with ape.reverts(fine_tuning.AckWindowClosed, deadline=tx.timestamp + ACK_WINDOW):
        fine_tuning.disputeDeliverable(ft_provider.address, task3, sender=alice)


def test_another_provider_cannot_settle(fine_tuning, registry, funded, ft_provider, prov2, alice):
    fine_tuning.addDeliverable(alice.address, TASK, ROOT, SECRET_HASH, sender=ft_provider)
    with ape.reverts(fine_tuning.DeliverableNotFound):
        fine_tuning.settleDeliverable(user_settlement(fine_tuning, alice, ft_provider), sender=prov2)


def test_params(fine_tuning, owner, alice):
    with ape.reverts(fine_tuning.AccessControlUnauthorizedAccount):
        fine_tuning.setPenaltyBps(1, sender=alice)
    with ape.reverts(fine_tuning.PenaltyOutOfRange, penaltyBps=10_001):
        fine_tuning.setPenaltyBps(10_001, sender=owner)
    tx = fine_tuning.setPenaltyBps(500, sender=owner)
    ev = tx.events.filter(fine_tuning.PenaltyUpdated)[0]
    assert (ev.oldPenaltyBps, ev.newPenaltyBps) == (PENALTY_BPS, 500)
    with ape.reverts(fine_tuning.AckWindowOutOfRange, ackWindow=0):
        fine_tuning.setAckWindow(0, sender=owner)
    with ape.reverts(fine_tuning.AckWindowOutOfRange):
        fine_tuning.setAckWindow(31 * 86400, sender=owner)
    fine_tuning.setAckWindow(60, sender=owner)
    assert fine_tuning.ackWindow() == 60
