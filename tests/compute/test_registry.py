"""ServiceRegistry: registration with stake, updates, validation, price-sorted lists, activity, removal, delayed
price increases, strikes."""

from __future__ import annotations

import ape
import pytest
from compute_helpers import (
    FINE_TUNING,
    INFERENCE,
    LOCK_TIME,
    MIN_STAKE,
    MODEL,
    TEE_SIGNER,
    ZERO_ADDRESS,
    service_params,
    time_travel,
)


def key(registry, model=MODEL, service_type=INFERENCE):
    return registry.listKeyOf(service_type, model)


def listed(registry, model=MODEL, service_type=INFERENCE):
    return list(registry.getList(key(registry, model, service_type), 0, 100))


def register(registry, provider, hint=ZERO_ADDRESS, **kw):
    return registry.addOrUpdateService(service_params(**kw), hint, sender=provider, value=MIN_STAKE)


def test_register_stakes_and_lists(registry, prov):
    tx = register(registry, prov, input_price=7, output_price=9, gpu_count=2, memory_mib=81_920)
    staked = tx.events.filter(registry.ProviderStaked)[0]
    assert (staked["provider"], staked.amount) == (prov.address, MIN_STAKE)
    ev = tx.events.filter(registry.ServiceUpdated)[0]
    assert (
        ev["provider"],
        ev.serviceType,
        ev.model,
        ev.inputPrice,
        ev.outputPrice,
        ev.gpuCount,
        ev.memoryMiB,
        ev.signer,
    ) == (prov.address, INFERENCE, MODEL, 7, 9, 2, 81_920, TEE_SIGNER)
    s = registry.getService(prov.address)
    assert (
        s.provider,
        s.model,
        s.url,
        s.gpuType,
        s.gpuCount,
        s.memoryMiB,
        s.inputPrice,
        s.outputPrice,
        s.verifiability,
        s.signer,
        s.stake,
        s.active,
    ) == (
        prov.address,
        MODEL,
        "http://127.0.0.1:9000",
        "H100",
        2,
        81_920,
        7,
        9,
        "TeeML",
        TEE_SIGNER,
        MIN_STAKE,
        True,
    )
    assert s.registeredAt == s.updatedAt == tx.timestamp
    assert registry.balance == MIN_STAKE
    assert listed(registry) == [prov.address]
    assert registry.serviceExists(prov.address) and registry.isActive(prov.address)
    assert registry.serviceTypeOf(prov.address) == INFERENCE and registry.signerOf(prov.address) == TEE_SIGNER
    assert registry.pricesOf(prov.address) == (7, 9)
    assert registry.serviceCount() == 1 and list(registry.getProviders(0, 10)) == [prov.address]


def test_stake_rules(registry, prov):
    with ape.reverts(registry.StakeTooLow, sent=MIN_STAKE - 1, required=MIN_STAKE):
        registry.addOrUpdateService(service_params(), ZERO_ADDRESS, sender=prov, value=MIN_STAKE - 1)
    register(registry, prov)
    with ape.reverts(registry.CannotAddStakeWhenUpdating):
        registry.addOrUpdateService(service_params(), ZERO_ADDRESS, sender=prov, value=1)


def test_validation(registry, prov):
    with ape.reverts(registry.EmptyModel):
        register(registry, prov, model="")
    with ape.reverts(registry.EmptyUrl):
        register(registry, prov, url="")
    with ape.reverts(registry.FieldTooLong, field="model", length=257, max=256):
        register(registry, prov, model="m" * 257)
    with ape.reverts(registry.FieldTooLong, field="url", length=1025, max=1024):
        register(registry, prov, url="u" * 1025)
    with ape.reverts(registry.FieldTooLong, field="gpuType"):
        register(registry, prov, gpu_type="g" * 257)
    with ape.reverts(registry.FieldTooLong, field="verifiability"):
        register(registry, prov, verifiability="v" * 257)
    with ape.reverts(registry.FieldTooLong, field="additionalInfo", length=4097, max=4096):
        register(registry, prov, info="i" * 4097)
    with ape.reverts(registry.FineTuningOutputPrice):
        register(registry, prov, service_type=FINE_TUNING, output_price=1)
    register(registry, prov, service_type=FINE_TUNING, input_price=5, output_price=0)
    assert registry.serviceTypeOf(prov.address) == FINE_TUNING


def test_lists_sorted_by_price_key_ties_fifo(registry, providers):
    p0, p1, p2, p3 = providers
    register(registry, p0, input_price=10, output_price=10)  # key 20
    register(registry, p1, input_price=1, output_price=5)  # key 6
    register(registry, p2, input_price=15, output_price=5)  # key 20, after p0 (tie: insertion order)
    register(registry, p3, input_price=30, output_price=0)  # key 30
    assert listed(registry) == [p1.address, p0.address, p2.address, p3.address]
    assert registry.listHead(key(registry)) == p1.address and registry.listLength(key(registry)) == 4


def test_lists_are_per_type_and_model(registry, providers):
    p0, p1, p2, _ = providers
    register(registry, p0)
    register(registry, p1, model="other-model")
    register(registry, p2, service_type=FINE_TUNING, output_price=0)
    assert listed(registry) == [p0.address]
    assert listed(registry, "other-model") == [p1.address]
    assert listed(registry, MODEL, FINE_TUNING) == [p2.address]
    assert key(registry) != key(registry, MODEL, FINE_TUNING)


def test_update_resorts_and_moves_lists(registry, providers):
    p0, p1, p2, _ = providers
    register(registry, p0, input_price=1, output_price=1)
    register(registry, p1, input_price=2, output_price=2)
    register(registry, p2, input_price=3, output_price=3)
    registry.addOrUpdateService(service_params(input_price=9, output_price=9), ZERO_ADDRESS, sender=p0)
    assert listed(registry) == [p1.address, p2.address, p0.address]
    registry.addOrUpdateService(service_params(model="new"), ZERO_ADDRESS, sender=p2)
    assert listed(registry) == [p1.address, p0.address] and listed(registry, "new") == [p2.address]
    assert registry.getService(p0.address).stake == MIN_STAKE  # unchanged by updates


def test_hints(registry, providers, accounts):
    p0, p1, p2, p3 = providers
    register(registry, p0, input_price=1, output_price=0)
    register(registry, p1, input_price=5, output_price=0)
    register(registry, p2, input_price=9, output_price=0)
    k = key(registry)
    assert registry.findInsertHint(k, 6, 0, ZERO_ADDRESS) == p1.address
    assert registry.findInsertHint(k, 0, 0, ZERO_ADDRESS) == ZERO_ADDRESS
    assert registry.findInsertHint(k, 5, 0, p1.address) == p0.address  # re-pricing p1: skip itself
    register(registry, p3, hint=p1.address, input_price=6, output_price=0)  # exact hint
    assert listed(registry) == [p0.address, p1.address, p3.address, p2.address]
    # a stale or wrong hint (priced above, unlisted, another list) falls back to a walk from the head
    registry.removeService(sender=p3)
    register(registry, p3, hint=p2.address, input_price=6, output_price=0)
    assert listed(registry) == [p0.address, p1.address, p3.address, p2.address]
    registry.removeService(sender=p3)
    register(registry, p3, hint=accounts[9].address, input_price=6, output_price=0)
    assert listed(registry) == [p0.address, p1.address, p3.address, p2.address]


def test_insert_scan_is_bounded(project, owner, accounts):
    """More than MAX_INSERT_SCAN nodes between the hint and the position: HintTooFar; a good hint works."""
    registry = project.ServiceRegistry.deploy(owner.address, 0, 0, 0, sender=owner)
    limit = registry.MAX_INSERT_SCAN()
    signers = [accounts.generate_test_account() for _ in range(limit + 2)]
    for s in signers:
        owner.transfer(s, 10**18)
    for s in signers[: limit + 1]:
        registry.addOrUpdateService(service_params(input_price=1, output_price=0), ZERO_ADDRESS, sender=s)
    last = signers[-1]
    k = key(registry)
    with ape.reverts(registry.HintTooFar, listKey=k):
        registry.addOrUpdateService(service_params(input_price=2, output_price=0), ZERO_ADDRESS, sender=last)
    hint = registry.findInsertHint(k, 2, 0, ZERO_ADDRESS)
    registry.addOrUpdateService(service_params(input_price=2, output_price=0), hint, sender=last)
    assert registry.getList(k, limit + 1, 1)[0] == last.address
    cheap = accounts.generate_test_account()
    owner.transfer(cheap, 10**18)
    registry.addOrUpdateService(service_params(input_price=0, output_price=0), ZERO_ADDRESS, sender=cheap)
    assert registry.listHead(k) == cheap.address


def test_set_active(registry, providers):
    p0, p1, _, _ = providers
    register(registry, p0, input_price=1)
    register(registry, p1, input_price=2)
    with ape.reverts(registry.ServiceActiveUnchanged, active=True):
        registry.setServiceActive(True, ZERO_ADDRESS, sender=p0)
    tx = registry.setServiceActive(False, ZERO_ADDRESS, sender=p0)
    ev = tx.events.filter(registry.ServiceActiveChanged)[0]
    assert (ev["provider"], ev.active) == (p0.address, False)
    assert listed(registry) == [p1.address] and not registry.isActive(p0.address)
    # an update of an inactive service keeps it out of the list
    registry.addOrUpdateService(service_params(input_price=0), ZERO_ADDRESS, sender=p0)
    assert listed(registry) == [p1.address]
    registry.setServiceActive(True, ZERO_ADDRESS, sender=p0)
    assert listed(registry) == [p0.address, p1.address]
    with ape.reverts(registry.ServiceNotFound, provider=providers[2].address):
        registry.setServiceActive(True, ZERO_ADDRESS, sender=providers[2])


@pytest.mark.parametrize("active", [True, False])
def test_remove_returns_stake(registry, providers, active):
    p0, p1, p2, _ = providers
    for i, p in enumerate((p0, p1, p2)):
        register(registry, p, input_price=i)
    if not active:
        registry.setServiceActive(False, ZERO_ADDRESS, sender=p1)
    before = p1.balance
    tx = registry.removeService(sender=p1)
    assert p1.balance == before + MIN_STAKE - tx.total_fees_paid
    assert tx.events.filter(registry.ServiceRemoved)[0]["provider"] == p1.address
    assert tx.events.filter(registry.ProviderStakeReturned)[0].amount == MIN_STAKE
    assert listed(registry) == [p0.address, p2.address]
    assert not registry.serviceExists(p1.address) and registry.serviceCount() == 2
    with ape.reverts(registry.ServiceNotFound, provider=p1.address):
        registry.getService(p1.address)
    with ape.reverts(registry.ServiceNotFound, provider=p1.address):
        registry.removeService(sender=p1)
    register(registry, p1)  # can register again, staking again
    assert registry.getService(p1.address).stake == MIN_STAKE


def test_remove_head_and_tail(registry, providers):
    p0, p1, p2, _ = providers
    for i, p in enumerate((p0, p1, p2)):
        register(registry, p, input_price=i)
    registry.removeService(sender=p0)
    registry.removeService(sender=p2)
    assert listed(registry) == [p1.address] and registry.listLength(key(registry)) == 1
    registry.removeService(sender=p1)
    assert listed(registry) == [] and registry.listHead(key(registry)) == ZERO_ADDRESS


def test_pause_and_params(registry, owner, providers):
    p0, p1, _, _ = providers
    register(registry, p0)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.pause(sender=p0)
    registry.pause(sender=owner)
    with ape.reverts(registry.EnforcedPause):
        register(registry, p1)
    registry.setServiceActive(False, ZERO_ADDRESS, sender=p0)  # pausing a service is allowed
    with ape.reverts(registry.EnforcedPause):
        registry.setServiceActive(True, ZERO_ADDRESS, sender=p0)
    registry.removeService(sender=p0)  # exit is always allowed
    registry.unpause(sender=owner)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.setMinStake(1, sender=p0)
    tx = registry.setMinStake(2 * MIN_STAKE, sender=owner)
    ev = tx.events.filter(registry.MinStakeUpdated)[0]
    assert (ev.oldMinStake, ev.newMinStake) == (MIN_STAKE, 2 * MIN_STAKE)
    with ape.reverts(registry.StakeTooLow, sent=MIN_STAKE, required=2 * MIN_STAKE):
        register(registry, p1)


def test_get_list_pagination(registry, providers):
    for i, p in enumerate(providers):
        register(registry, p, input_price=i)
    k = key(registry)
    assert list(registry.getList(k, 1, 2)) == [providers[1].address, providers[2].address]
    assert list(registry.getList(k, 3, 10)) == [providers[3].address]
    assert list(registry.getList(k, 4, 10)) == []
    assert list(registry.getProviders(2, 10)) == [providers[2].address, providers[3].address]
    assert list(registry.getProviders(9, 10)) == []


def test_find_match_view(registry, providers):
    p0, p1, _, _ = providers
    register(registry, p0, input_price=5, output_price=5, gpu_count=1)
    register(registry, p1, input_price=1, output_price=1, gpu_count=4)
    k = key(registry)
    top = 2**256 - 1
    assert registry.findMatch(k, 0, 0, top, top, [], ZERO_ADDRESS) == (p1.address, 1, 1)  # no overflow
    assert registry.findMatch(k, 0, 0, top, top, [p1.address], ZERO_ADDRESS)[0] == p0.address
    assert registry.findMatch(k, 8, 0, top, top, [], ZERO_ADDRESS)[0] == ZERO_ADDRESS
    assert registry.findMatch(k, 0, 0, 0, 0, [], ZERO_ADDRESS)[0] == ZERO_ADDRESS
    assert registry.findMatch(k, 0, 0, top, top, [], p0.address)[0] == p0.address  # starts at p0
    assert registry.findMatch(k, 0, 0, top, top, [], providers[2].address)[0] == p1.address  # not listed
    # nothing qualifies from the start on (here: the start itself is excluded and last): again from the head
    assert registry.findMatch(k, 0, 0, top, top, [p0.address], p0.address)[0] == p1.address
    assert registry.findFirstMatch(k, 2, 0, top, top) == p1.address
    assert registry.findFirstMatch(k, 0, 0, 4, 4) == p1.address
    assert registry.findFirstMatch(k, 8, 0, top, top) == ZERO_ADDRESS


def test_price_increase_is_delayed(registry, prov, chain):
    register(registry, prov, input_price=10, output_price=20)
    assert tuple(registry.pricesOf(prov)) == (10, 20)  # a new service bills its prices at once
    tx = registry.addOrUpdateService(service_params(input_price=15, output_price=5), ZERO_ADDRESS, sender=prov)
    at = tx.timestamp + registry.priceIncreaseDelay()
    ev = tx.events.filter(registry.PriceIncreaseScheduled)[0]
    assert (ev["provider"], ev.inputPrice, ev.outputPrice, ev.effectiveAt) == (prov.address, 15, 5, at)
    # the decrease applies at once, the increase only from `at`; matching uses the announced prices already
    assert tuple(registry.pricesOf(prov)) == (10, 5)
    s = registry.getService(prov)
    assert (s.inputPrice, s.outputPrice, s.nextInputPrice, s.nextOutputPrice, s.nextPriceAt) == (10, 5, 15, 5, at)
    assert registry.matchTermsOf(prov)[3:5] == (15, 5)
    # a decrease below what is billed cancels the pending increase
    registry.addOrUpdateService(service_params(input_price=9, output_price=5), ZERO_ADDRESS, sender=prov)
    assert tuple(registry.pricesOf(prov)) == (9, 5) and registry.getService(prov).nextPriceAt == 0
    registry.addOrUpdateService(service_params(input_price=30, output_price=5), ZERO_ADDRESS, sender=prov)
    time_travel(LOCK_TIME + 1)
    assert tuple(registry.pricesOf(prov)) == (30, 5) and registry.getService(prov).nextPriceAt == 0
    # removing and registering again is no way around the delay
    registry.removeService(sender=prov)
    register(registry, prov, input_price=100, output_price=5)
    assert tuple(registry.pricesOf(prov)) == (30, 5)


def test_strikes_need_the_matcher_role(registry, matcher, owner, prov, providers):
    register(registry, prov)
    outsider = providers[1]
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.recordStrike(prov, sender=outsider)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.recordAcceptance(prov, sender=outsider)
    assert registry.hasRole(registry.MATCHER_ROLE(), matcher.address)
    # the owner acting as a matcher: the penalty is sent to the caller; a stake that cannot pay another strike
    # takes the service out and keeps it out
    registry.grantRole(registry.MATCHER_ROLE(), owner, sender=owner)
    penalty = MIN_STAKE // 2 + 1
    registry.setStrikePenalty(penalty, sender=owner)
    before = owner.balance
    tx = registry.recordStrike(prov, sender=owner)
    assert owner.balance == before + penalty - tx.total_fees_paid
    assert not registry.isActive(prov) and registry.getService(prov).stake == MIN_STAKE - penalty
    with ape.reverts(registry.StakeTooLow, sent=MIN_STAKE - penalty, required=penalty):
        registry.setServiceActive(True, ZERO_ADDRESS, sender=prov)
    registry.recordStrike(prov, sender=owner)  # takes what is left
    assert registry.getService(prov).stake == 0
    assert registry.recordStrike(providers[2], sender=owner).return_value == 0  # no service: nothing
    with ape.reverts(registry.PriceIncreaseDelayOutOfRange):
        registry.setPriceIncreaseDelay(31 * 86_400, sender=owner)
    with ape.reverts(registry.AccessControlUnauthorizedAccount):
        registry.setStrikePenalty(1, sender=outsider)
