"""ComputeMatcher: cheapest suitable service, reservation, accept / decline / re-match / finalize (silence is a
decline) / cancel, strikes and the user's compensation, bounded scan and its start."""

from __future__ import annotations

import ape
import pytest
from compute_helpers import (
    DECLINE_WINDOW,
    FINE_TUNING,
    MIN_STAKE,
    MIN_TRANSFER,
    MODEL,
    ZERO_ADDRESS,
    request,
    service_params,
    time_travel,
)

MATCHED, ACCEPTED, CANCELLED, UNMATCHED = 1, 2, 3, 4


@pytest.fixture
def market(registry, providers):
    """Four inference services of MODEL: (input, output) prices, GPUs, memory."""
    specs = [(5, 5, 1, 8_000), (2, 6, 4, 80_000), (1, 1, 1, 16_000), (3, 3, 8, 160_000)]
    for p, (i, o, g, m) in zip(providers, specs):
        registry.addOrUpdateService(
            service_params(input_price=i, output_price=o, gpu_count=g, memory_mib=m),
            ZERO_ADDRESS,
            sender=p,
            value=MIN_STAKE,
        )
    return providers


@pytest.fixture
def rich(ledger, alice):
    ledger.depositFund(sender=alice, value=100_000)
    return alice


def match(matcher, user, **kw):
    tx = matcher.requestService(request(**kw), sender=user)
    ev = tx.events.filter(matcher.ServiceMatched)[0]
    return ev.requestId, ev["provider"], tx


def status(matcher, rid):
    return matcher.getRequest(rid).status


@pytest.mark.parametrize(
    "constraints, expected",
    [
        ({}, 2),  # cheapest overall: (1, 1)
        ({"min_gpu": 2}, 3),  # (3, 3) with 8 GPUs beats (2, 6) by key 6 < 8
        ({"min_gpu": 2, "max_output": 5}, 3),
        ({"min_gpu": 4, "max_input": 2}, 1),  # only (2, 6) has input <= 2 and >= 4 GPUs
        ({"min_memory": 100_000}, 3),
        ({"max_input": 1, "max_output": 1}, 2),
    ],
)
def test_cheapest_matching_service(matcher, market, rich, constraints, expected):
    rid, provider, tx = match(matcher, rich, **constraints)
    assert provider == market[expected].address
    ev = tx.events.filter(matcher.ServiceMatched)[0]
    assert (ev.user, ev.deposit, ev.declineDeadline) == (rich.address, 1_000, tx.timestamp + DECLINE_WINDOW)
    req = tx.events.filter(matcher.ServiceRequested)[0]
    assert (req.requestId, req.model, req.deposit) == (rid, MODEL, 1_000)


def test_no_matching_service(matcher, market, rich):
    for kw in (
        {"min_gpu": 9},
        {"min_memory": 200_000},
        {"max_input": 0},
        {"model": "unknown"},
        {"service_type": FINE_TUNING},
        {"min_gpu": 8, "max_output": 2},
    ):
        with ape.reverts(matcher.NoMatchingService):
            matcher.requestService(request(**kw), sender=rich)


def test_request_reserves_deposit(matcher, ledger, market, rich):
    rid, provider, tx = match(matcher, rich, deposit=4_000)
    assert ledger.getLedger(rich.address) == (96_000, 4_000)
    ev = tx.events.filter(ledger.FundReserved)[0]
    assert (ev.user, ev.amount) == (rich.address, 4_000)
    info = matcher.getRequest(rid)
    assert (info.user, info.provider, info.status, info.deposit, info.declines) == (
        rich.address,
        provider,
        MATCHED,
        4_000,
        0,
    )
    assert rid == 1 and matcher.nextRequestId() == 2


def test_request_with_value_deposits_first(matcher, ledger, market, bob):
    tx = matcher.requestService(request(deposit=3_000), sender=bob, value=5_000)
    assert tx.events.filter(ledger.FundDeposited)[0].payer == matcher.address
    assert ledger.getLedger(bob.address) == (2_000, 3_000)


def test_request_rules(matcher, ledger, market, rich, bob):
    with ape.reverts(matcher.ZeroDeposit):
        matcher.requestService(request(deposit=0), sender=rich)
    with ape.reverts(matcher.DepositBelowMinimum, deposit=MIN_TRANSFER - 1, minimum=MIN_TRANSFER):
        matcher.requestService(request(deposit=MIN_TRANSFER - 1), sender=rich)
    with ape.reverts(ledger.InsufficientAvailable, requested=1_000, available=0):
        matcher.requestService(request(deposit=1_000), sender=bob)


def test_accept_funds_sub_account(matcher, ledger, market, rich, outsider):
    rid, provider, _ = match(matcher, rich, deposit=2_500)
    p = market[2]
    with ape.reverts(matcher.NotMatchedProvider, requestId=rid, caller=outsider.address):
        matcher.acceptMatch(rid, sender=outsider)
    tx = matcher.acceptMatch(rid, sender=p)
    ev = tx.events.filter(matcher.MatchAccepted)[0]
    assert (ev.requestId, ev.user, ev["provider"], ev.deposit) == (rid, rich.address, p.address, 2_500)
    assert ledger.getAccount(rich.address, p.address).balance == 2_500
    assert ledger.getLedger(rich.address) == (97_500, 0)
    assert status(matcher, rid) == ACCEPTED
    with ape.reverts(matcher.NotMatched, requestId=rid, status=ACCEPTED):
        matcher.acceptMatch(rid, sender=p)
    with ape.reverts(matcher.NotMatched):
        matcher.cancelRequest(rid, sender=rich)


def test_decline_rematches_next_cheapest(matcher, ledger, market, rich):
    rid, first, _ = match(matcher, rich)
    assert first == market[2].address
    tx = matcher.declineMatch(rid, sender=market[2])
    assert tx.events.filter(matcher.MatchDeclined)[0]["provider"] == first
    ev = tx.events.filter(matcher.ServiceMatched)[0]
    assert ev["provider"] == market[3].address and ev.declineDeadline == tx.timestamp + DECLINE_WINDOW
    assert (ev.inputPrice, ev.outputPrice) == (3, 3)
    info = matcher.getRequest(rid)
    assert (info.provider, info.declines, info.status) == (market[3].address, 1, MATCHED)
    assert list(matcher.declinedBy(rid)) == [first]
    with ape.reverts(matcher.NotMatchedProvider):
        matcher.declineMatch(rid, sender=market[2])  # the old provider has no say any more
    matcher.declineMatch(rid, sender=market[3])
    assert matcher.getRequest(rid).provider == market[1].address
    matcher.acceptMatch(rid, sender=market[1])
    assert ledger.getAccount(rich.address, market[1].address).balance == 1_000


def test_decline_until_nothing_left_releases(matcher, ledger, registry, market, rich):
    rid, _, _ = match(matcher, rich, min_gpu=4)  # candidates: (3,3,8 GPUs) then (2,6,4 GPUs)
    matcher.declineMatch(rid, sender=market[3])
    tx = matcher.declineMatch(rid, sender=market[1])
    assert tx.events.filter(matcher.MatchFailed)[0].requestId == rid
    assert tx.events.filter(ledger.ReservationReleased)[0].amount == 1_000
    assert status(matcher, rid) == UNMATCHED
    # each decline cost the provider a strike penalty, credited to the user
    penalty = registry.strikePenalty()
    ev = tx.events.filter(matcher.UserCompensated)[0]
    assert (ev.requestId, ev.user, ev["provider"], ev.amount) == (rid, rich.address, market[1].address, penalty)
    assert ledger.getLedger(rich.address) == (100_000 + 2 * penalty, 0)
    assert registry.getService(market[1]).stake == MIN_STAKE - penalty


def test_max_declines(matcher, ledger, market, registry, rich, accounts, owner):
    extra = accounts.generate_test_account()
    owner.transfer(extra, 10**18)
    registry.addOrUpdateService(
        service_params(input_price=50, output_price=50), ZERO_ADDRESS, sender=extra, value=MIN_STAKE
    )
    rid, _, _ = match(matcher, rich)
    for _ in range(matcher.MAX_DECLINES() - 1):
        matcher.declineMatch(
            rid, sender=[p for p in market if p.address == matcher.getRequest(rid).provider][0]
        )
    assert matcher.getRequest(rid).declines == 3
    last = [p for p in market if p.address == matcher.getRequest(rid).provider][0]
    tx = matcher.declineMatch(rid, sender=last)  # 4th decline: fails although `extra` would match
    assert tx.events.filter(matcher.MatchFailed)
    assert status(matcher, rid) == UNMATCHED


def test_decline_window(matcher, market, rich):
    rid, _, tx = match(matcher, rich)
    deadline = tx.timestamp + DECLINE_WINDOW
    with ape.reverts(matcher.DeclineWindowOpen, requestId=rid, deadline=deadline):
        matcher.finalizeMatch(rid, sender=rich)
    time_travel(DECLINE_WINDOW + 1)
    with ape.reverts(matcher.DeclineWindowClosed, requestId=rid, deadline=deadline):
        matcher.declineMatch(rid, sender=market[2])
    with ape.reverts(matcher.DeclineWindowClosed, requestId=rid, deadline=deadline):
        matcher.acceptMatch(rid, sender=market[2])  # too late to accept too


def test_silence_is_a_decline(matcher, ledger, registry, market, rich, outsider):
    rid, provider, _ = match(matcher, rich)
    time_travel(DECLINE_WINDOW + 1)
    tx = matcher.finalizeMatch(rid, sender=outsider)
    assert tx.events.filter(matcher.MatchTimedOut)[0]["provider"] == provider
    assert tx.events.filter(matcher.MatchDeclined)[0]["provider"] == provider
    assert tx.events.filter(matcher.ServiceMatched)[0]["provider"] == market[3].address
    assert ledger.getAccount(rich.address, provider).balance == 0  # nothing committed to the silent one
    assert registry.strikesOf(provider) == 1 and status(matcher, rid) == MATCHED


def test_three_strikes_take_a_service_out_and_acceptance_forgives(matcher, registry, market, rich):
    cheapest = market[2]
    for _ in range(2):
        rid, provider, _ = match(matcher, rich)
        assert provider == cheapest.address
        matcher.declineMatch(rid, sender=cheapest)
    assert registry.strikesOf(cheapest) == 2
    rid, _, _ = match(matcher, rich)
    matcher.acceptMatch(rid, sender=cheapest)
    assert registry.strikesOf(cheapest) == 0  # an acceptance forgives
    for _ in range(3):
        rid, provider, _ = match(matcher, rich)
        assert provider == cheapest.address
        tx = matcher.declineMatch(rid, sender=cheapest)
    ev = tx.events.filter(registry.ServiceStruck)[0]
    assert (ev["provider"], ev.strikes) == (cheapest.address, 3)
    assert not registry.isActive(cheapest) and match(matcher, rich)[1] != cheapest.address
    registry.setServiceActive(True, ZERO_ADDRESS, sender=cheapest)  # back, strikes cleared
    assert registry.strikesOf(cheapest) == 0 and match(matcher, rich)[1] == cheapest.address


def test_finalize_rematches_when_service_went_inactive(matcher, registry, ledger, market, rich):
    rid, provider, _ = match(matcher, rich)
    registry.setServiceActive(False, ZERO_ADDRESS, sender=market[2])
    with ape.reverts(matcher.ServiceNotActive, provider=provider):
        matcher.acceptMatch(rid, sender=market[2])
    time_travel(DECLINE_WINDOW + 1)
    tx = matcher.finalizeMatch(rid, sender=rich)
    assert tx.events.filter(matcher.MatchDeclined)[0]["provider"] == provider
    assert matcher.getRequest(rid).provider == market[3].address
    assert status(matcher, rid) == MATCHED
    registry.removeService(sender=market[3])  # removed during its window: silence can't accept it
    time_travel(DECLINE_WINDOW + 1)
    matcher.finalizeMatch(rid, sender=rich)
    assert matcher.getRequest(rid).provider == market[1].address


def test_cancel(matcher, ledger, market, rich, bob):
    rid, _, _ = match(matcher, rich, deposit=3_000)
    with ape.reverts(matcher.NotRequestUser, requestId=rid, caller=bob.address):
        matcher.cancelRequest(rid, sender=bob)
    tx = matcher.cancelRequest(rid, sender=rich)
    assert tx.events.filter(matcher.RequestCancelled)[0].user == rich.address
    assert ledger.getLedger(rich.address) == (100_000, 0)
    assert status(matcher, rid) == CANCELLED
    with ape.reverts(matcher.NotMatched, requestId=rid, status=CANCELLED):
        matcher.acceptMatch(rid, sender=market[2])


def test_unknown_request(matcher, rich):
    for call in (matcher.acceptMatch, matcher.declineMatch, matcher.finalizeMatch, matcher.cancelRequest):
        with ape.reverts(matcher.UnknownRequest, requestId=99):
            call(99, sender=rich)
    with ape.reverts(matcher.UnknownRequest, requestId=99):
        matcher.getRequest(99)


def test_accept_cancels_pending_refund(matcher, ledger, market, rich):
    """A deposit into a sub-account with a pending refund cancels that refund first (as transferFund)."""
    p = market[2]
    ledger.transferFund(p.address, 500, sender=rich)
    ledger.requestRefund(p.address, 500, sender=rich)
    rid, _, _ = match(matcher, rich, deposit=2_000)
    tx = matcher.acceptMatch(rid, sender=p)
    ev = tx.events.filter(ledger.AccountFunded)[0]
    assert (ev.fromLedger, ev.cancelledRefund, ev.balance, ev.pendingRefund) == (1_500, 500, 2_000, 0)
    assert ledger.getLedger(rich.address) == (98_000, 0)


def test_pause_and_params(matcher, owner, market, rich):
    with ape.reverts(matcher.AccessControlUnauthorizedAccount):
        matcher.pause(sender=rich)
    rid, _, _ = match(matcher, rich)
    matcher.pause(sender=owner)
    with ape.reverts(matcher.EnforcedPause):
        matcher.requestService(request(), sender=rich)
    matcher.acceptMatch(rid, sender=market[2])  # pending requests still complete
    matcher.unpause(sender=owner)
    with ape.reverts(matcher.DeclineWindowOutOfRange, window=9, min=10, max=86400):
        matcher.setDeclineWindow(9, sender=owner)
    with ape.reverts(matcher.AccessControlUnauthorizedAccount):
        matcher.setDeclineWindow(100, sender=rich)
    tx = matcher.setDeclineWindow(100, sender=owner)
    assert tx.events.filter(matcher.DeclineWindowUpdated)[0].newWindow == 100


def test_scan_is_bounded(project, owner, accounts, alice):
    """Past MAX_SCAN unsuitable cheaper services, a suitable one is not found: gas stays bounded."""
    from compute_helpers import deploy

    d = deploy(owner, project, min_stake=0)
    registry = project.ServiceRegistry.at(d["registry"])
    matcher = project.ComputeMatcher.at(d["matcher"])
    ledger = project.ComputeLedger.at(d["ledger"])
    ledger.depositFund(sender=alice, value=10_000)
    limit = registry.MAX_SCAN()
    signers = [accounts.generate_test_account() for _ in range(limit + 1)]
    for s in signers:
        owner.transfer(s, 10**18)
    hint = ZERO_ADDRESS
    for s in signers[:limit]:  # cheap, 1 GPU
        registry.addOrUpdateService(
            service_params(input_price=1, output_price=1, gpu_count=1), hint, sender=s
        )
        hint = s.address
    registry.addOrUpdateService(
        service_params(input_price=2, output_price=2, gpu_count=8), hint, sender=signers[limit]
    )
    with ape.reverts(matcher.NoMatchingService):
        matcher.requestService(request(min_gpu=8), sender=alice)
    # the scan may start where the client's unbounded view found the first qualifying service
    key = registry.listKeyOf(0, MODEL)
    start = registry.findFirstMatch(key, 8, 0, 10**9, 10**9)
    assert start == signers[limit].address
    tx = matcher.requestService(request(min_gpu=8, start=start), sender=alice)
    assert tx.events.filter(matcher.ServiceMatched)[0]["provider"] == start
    print(f"\nGAS requestService starting at the match: {tx.gas_used}")
    # a full scan of MAX_SCAN nodes that ends in a match at the last one costs bounded gas
    registry.removeService(sender=signers[0])
    tx = matcher.requestService(request(min_gpu=8), sender=alice)
    assert tx.events.filter(matcher.ServiceMatched)[0]["provider"] == signers[limit].address
    print(f"\nGAS requestService scanning {limit} nodes: {tx.gas_used}")
    assert tx.gas_used < 400_000
