"""Audit finding M3: match terms are not re-checked.

A provider matched at one price (or model) could raise its price or switch its model before `acceptMatch`, and
the user's deposit was committed anyway; and a price increase applied at once to users who had already funded
the provider's sub-account.

Fixed: the matcher stores the terms a request was matched on (the provider's listed prices, the request's model,
GPUs and memory) and `acceptMatch` refuses a service that no longer offers them (`MatchTermsChanged`); the
registry bills a price increase only `priceIncreaseDelay` (>= the ledger's refund lock) after it is announced,
while matching uses the announced price at once.
"""

from __future__ import annotations

import pytest
from compute_helpers import LOCK_TIME, MIN_STAKE, ZERO_ADDRESS, request, service_params, time_travel
from deaios import testing


@pytest.fixture
def provider(registry, prov):
    registry.addOrUpdateService(service_params(input_price=1, output_price=1), ZERO_ADDRESS, sender=prov,
                                value=MIN_STAKE)
    return prov


@pytest.fixture
def matched(ledger, matcher, provider, alice) -> int:
    """A request of alice matched with `provider` at (1, 1) per token."""
    ledger.depositFund(sender=alice, value=100_000)
    tx = matcher.requestService(request(deposit=5_000), sender=alice)
    ev = tx.events.filter(matcher.ServiceMatched)[0]
    assert ev["provider"] == provider.address and (ev.inputPrice, ev.outputPrice) == (1, 1)
    return ev.requestId


def test_m3_price_raised_after_the_match_cannot_be_accepted(registry, matcher, provider, matched):
    registry.addOrUpdateService(service_params(input_price=1_000, output_price=1_000), ZERO_ADDRESS,
                                sender=provider)
    assert testing.revert_name(matcher, "acceptMatch", matched, sender=provider) is not None, \
        "accepted at a price the user was not matched at"
    testing.assert_reverts(matcher, "acceptMatch", matched, sender=provider, error="MatchTermsChanged",
                           requestId=matched, provider=provider)
    # back at the matched price (or below), it may accept
    registry.addOrUpdateService(service_params(input_price=1, output_price=1), ZERO_ADDRESS, sender=provider)
    matcher.acceptMatch(matched, sender=provider)


def test_m3_model_changed_after_the_match_cannot_be_accepted(registry, matcher, provider, matched):
    registry.addOrUpdateService(service_params("some-other-model", input_price=1, output_price=1), ZERO_ADDRESS,
                                sender=provider)
    assert testing.revert_name(matcher, "acceptMatch", matched, sender=provider) == "MatchTermsChanged", \
        "accepted with a model the user did not ask for"


def test_m3_price_increase_waits_for_funded_users(registry, ledger, matcher, provider, matched, alice):
    matcher.acceptMatch(matched, sender=provider)
    assert ledger.getAccount(alice, provider).balance == 5_000  # the user funded the provider at (1, 1)
    tx = registry.addOrUpdateService(service_params(input_price=1_000, output_price=1_000), ZERO_ADDRESS,
                                     sender=provider)
    assert tuple(registry.pricesOf(provider)) == (1, 1), "the new price billed the funded user at once"
    service = registry.getService(provider)
    assert (service.nextInputPrice, service.nextOutputPrice) == (1_000, 1_000)
    # the user has a refund lock's time of notice, billed at the old price meanwhile, to leave
    assert service.nextPriceAt - tx.timestamp >= ledger.lockTime()
    ledger.requestRefund(provider, 5_000, sender=alice)
    time_travel(LOCK_TIME + 1)
    assert tuple(registry.pricesOf(provider)) == (1_000, 1_000)
    ledger.collectRefund(provider, sender=alice)
