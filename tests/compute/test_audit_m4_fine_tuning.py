"""Audit finding M4 and a low in fine-tuning settlement (user-signed mode).

The user's signature (`FineTuningTask(user, provider, taskId, taskFee)`, given when ordering) binds neither
the model root nor the secret, so:

* M4 (junk secret): after the user acknowledged the model, the provider settles with a junk
  `encryptedSecret` and collects the full fee; the user paid and cannot open the model;
* M4 (junk root): the provider posts a random root, the user (who finds nothing there) does not acknowledge,
  and after the acknowledgement window the provider collects the penalty share with the user's signature;
* low (late acknowledgement): once the window passed, a provider that sees the user's acknowledgement in the
  mempool front-runs it with the penalty settlement; the acknowledgement then reverts and the user never gets
  the secret of a model it wanted.

Fixed: the provider commits to keccak256 of the secret when posting (`addDeliverable(user, task, root,
secretHash)`), so the user's acknowledgement names both root and secret and a settlement must release exactly
that secret; within the window the user may `disputeDeliverable` (no penalty is due then); a penalty settlement
no longer closes the deliverable: a late acknowledgement is accepted and the provider settles the rest with the
secret.
"""

from __future__ import annotations

import pytest
from compute_helpers import ACK_WINDOW, FINE_TUNING, MIN_STAKE, ZERO_ADDRESS, service_params, task_signature, \
    time_travel
from deaios import testing
from deaios.compute.receipts import SignerKind
from eth_utils import keccak

TASK = keccak(text="audit m4 task")
ROOT = keccak(text="audit m4 model root")
SECRET = b"\x04" + b"the model key, encrypted for the user" * 2
JUNK = b"\x04" + b"junk" * 20
FEE = 10_000


@pytest.fixture
def provider(registry, prov):
    registry.addOrUpdateService(service_params(service_type=FINE_TUNING, input_price=3, output_price=0),
                                ZERO_ADDRESS, sender=prov, value=MIN_STAKE)
    return prov


@pytest.fixture
def user(ledger, alice, provider):
    ledger.depositFund(sender=alice, value=50_000)
    ledger.transferFund(provider.address, 20_000, sender=alice)
    return alice


def settlement(ft, user, provider, secret: bytes) -> tuple:
    return (user.address, TASK, FEE, secret, SignerKind.USER, task_signature(ft, user, provider, TASK, FEE))


def post(ft, user, provider, root=ROOT, secret=SECRET) -> None:
    """The provider posts the deliverable, committing to its secret."""
    ft.addDeliverable(user.address, TASK, root, keccak(secret), sender=provider)


def test_m4_junk_secret_cannot_collect_the_fee(fine_tuning, ledger, provider, user):
    post(fine_tuning, user, provider)
    fine_tuning.acknowledgeDeliverable(provider.address, TASK, sender=user)
    assert testing.revert_name(fine_tuning, "settleDeliverable", settlement(fine_tuning, user, provider, JUNK),
                               sender=provider) is not None, "the full fee was paid for a junk secret"
    testing.assert_reverts(fine_tuning, "settleDeliverable", settlement(fine_tuning, user, provider, JUNK),
                           sender=provider, error="SecretMismatch", committed=keccak(SECRET), given=keccak(JUNK))
    fine_tuning.settleDeliverable(settlement(fine_tuning, user, provider, SECRET), sender=provider)
    assert ledger.earnings(provider) == FEE


def test_m4_disputed_junk_root_pays_no_penalty(fine_tuning, ledger, provider, user):
    post(fine_tuning, user, provider, root=keccak(text="random, nothing stored here"))
    # the user finds nothing at the root and disputes it within the window
    fine_tuning.disputeDeliverable(provider.address, TASK, sender=user)
    time_travel(ACK_WINDOW + 1)
    assert testing.revert_name(fine_tuning, "settleDeliverable", settlement(fine_tuning, user, provider, b""),
                               sender=provider) == "DisputedDeliverable", "the penalty was paid for a junk root"
    assert ledger.earnings(provider) == 0


def test_late_acknowledgement_still_gets_the_model(fine_tuning, ledger, provider, user):
    post(fine_tuning, user, provider)
    time_travel(ACK_WINDOW + 1)
    fine_tuning.settleDeliverable(settlement(fine_tuning, user, provider, b""), sender=provider)  # front-run
    assert testing.revert_name(fine_tuning, "acknowledgeDeliverable", provider.address, TASK, sender=user) \
        is None, "the late acknowledgement is refused: the user never gets the model"
    fine_tuning.acknowledgeDeliverable(provider.address, TASK, sender=user)
    fine_tuning.settleDeliverable(settlement(fine_tuning, user, provider, SECRET), sender=provider)
    d = fine_tuning.getDeliverable(user, provider, TASK)
    assert (d.settled, d.feePaid, d.encryptedSecret) == (True, FEE, SECRET)  # the penalty counts towards the fee
