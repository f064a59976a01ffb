"""Audit finding M3: match terms are not re-checked.

A provider matched at one price (or model) could raise its price or switch its model before `acceptMatch`, and
the user's deposit was committed anyway; and a price increase applied at once to users who had already funded
the provider's sub-account.
"""

from __future__ import annotations

import pytest
from compute_helpers import MIN_STAKE, ZERO_ADDRESS, request, service_params
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


@pytest.mark.xfail(strict=True, reason="exploit M3: the provider raises its price after the match, then accepts")
def test_m3_price_raised_after_the_match_cannot_be_accepted(registry, matcher, provider, matched):
    registry.addOrUpdateService(service_params(input_price=1_000, output_price=1_000), ZERO_ADDRESS,
                                sender=provider)
    assert testing.revert_name(matcher, "acceptMatch", matched, sender=provider) is not None, \
        "accepted at a price the user was not matched at"


@pytest.mark.xfail(strict=True, reason="exploit M3: the provider changes its model after the match, then accepts")
def test_m3_model_changed_after_the_match_cannot_be_accepted(registry, matcher, provider, matched):
    registry.addOrUpdateService(service_params("some-other-model", input_price=1, output_price=1), ZERO_ADDRESS,
                                sender=provider)
    assert testing.revert_name(matcher, "acceptMatch", matched, sender=provider) is not None, \
        "accepted with a model the user did not ask for"


@pytest.mark.xfail(strict=True, reason="exploit M3: a price increase applies at once to funded accounts")
def test_m3_price_increase_waits_for_funded_users(registry, ledger, matcher, provider, matched, alice):
    matcher.acceptMatch(matched, sender=provider)
    assert ledger.getAccount(alice, provider).balance == 5_000  # the user funded the provider at (1, 1)
    registry.addOrUpdateService(service_params(input_price=1_000, output_price=1_000), ZERO_ADDRESS,
                                sender=provider)
    assert tuple(registry.pricesOf(provider)) == (1, 1), "the new price billed the funded user at once"
