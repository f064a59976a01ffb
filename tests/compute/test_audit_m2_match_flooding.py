"""Audit finding M2: fake services flood compute matching.

`findMatch` examines at most 32 services of a list, cheapest first, and a registered service's stake came back
in full whatever it did. So:

* 32 free fake services that do not meet a request (no GPU) sit at the head of the list and hide every honest
  service behind them: the request finds nothing;
* a fake service that is matched and stays silent is accepted by `finalizeMatch` after the decline window: the
  user's deposit moves into the fake's sub-account, behind the refund lock;
* fakes that decline every match make every request fail (4 declines), at no cost to them.

Fixed: a request names where the scan starts (`start`; the client passes `findFirstMatch`, an unbounded view),
so services that never qualify hide nothing; silence is no longer acceptance: only an explicit `acceptMatch`
commits the deposit; a decline or an ignored match is a strike: `strikePenalty` of the provider's stake goes to
the user's ledger, and 3 strikes in a row (or a stake below the minimum) take the service out of matching.
"""

from __future__ import annotations

import pytest
from compute_helpers import DECLINE_WINDOW, MIN_STAKE, ZERO_ADDRESS, request, service_params, time_travel
from deaios import testing
from eth_utils import keccak, to_checksum_address

MATCHED, ACCEPTED, CANCELLED, UNMATCHED = 1, 2, 3, 4


def fake_providers(chain, registry, count: int, **params) -> list[str]:
    """`count` fresh accounts (funded through Anvil) registering a service each; their addresses."""
    w3 = chain.provider.web3
    reg = w3.eth.contract(address=registry.address, abi=[a.model_dump(mode="json", by_alias=True)
                                                           for a in registry.contract_type.abi])
    out = []
    for i in range(count):
        address = to_checksum_address(keccak(text=f"deaios audit m2 fake {i}")[:20])
        w3.provider.make_request("anvil_setBalance", [address, hex(10**19)])
        w3.provider.make_request("anvil_impersonateAccount", [address])
        p = service_params(**params)
        hint = registry.findInsertHint(registry.listKeyOf(p[0], p[1]), p[6], p[7], address)
        tx = reg.functions.addOrUpdateService(p, hint).transact({"from": address, "value": MIN_STAKE})
        assert w3.eth.wait_for_transaction_receipt(tx).status == 1
        out.append(address)
    return out


@pytest.fixture
def honest(registry, prov):
    registry.addOrUpdateService(service_params(input_price=10, output_price=20, gpu_count=8),
                                ZERO_ADDRESS, sender=prov, value=MIN_STAKE)
    return prov


@pytest.fixture
def user(ledger, alice):
    ledger.depositFund(sender=alice, value=100_000)
    return alice


def request_service(matcher, registry, user, **kw) -> tuple[int | None, str | None]:
    """The user's request as its client sends it (`deaios.compute.chain.ComputeChain.request_service`: the scan
    starts at `findFirstMatch`): (request id, matched provider), (None, None) if none."""
    req = request(**kw)
    key = registry.listKeyOf(req[0], req[1])
    req = req[:-1] + (registry.findFirstMatch(key, *req[2:6]),)
    if testing.revert_name(matcher, "requestService", req, sender=user) is not None:
        return None, None
    ev = matcher.requestService(req, sender=user).events.filter(matcher.ServiceMatched)[0]
    return ev.requestId, ev["provider"]


def test_m2_fakes_at_the_head_do_not_hide_honest_services(chain, registry, matcher, honest, user):
    fake_providers(chain, registry, 32, input_price=0, output_price=0, gpu_count=0)
    _, provider = request_service(matcher, registry, user, min_gpu=1)
    assert provider == honest.address, "the honest service was hidden"


def test_m2_silent_fake_cannot_lock_the_deposit(chain, registry, matcher, ledger, honest, user):
    (fake,) = fake_providers(chain, registry, 1, input_price=0, output_price=0, gpu_count=8)
    rid, provider = request_service(matcher, registry, user, deposit=5_000)
    assert provider == fake
    time_travel(DECLINE_WINDOW + 1)  # the fake never answers
    tx = matcher.finalizeMatch(rid, sender=user)
    assert ledger.getAccount(user, fake).balance == 0, "the deposit went to the silent fake"
    penalty = registry.strikePenalty()
    assert ledger.getLedger(user)[0] + ledger.getLedger(user)[1] == 100_000 + penalty  # unlocked, compensated
    assert tx.events.filter(matcher.ServiceMatched)[0]["provider"] == honest.address  # matched again
    assert registry.getService(fake).stake == MIN_STAKE - penalty and registry.strikesOf(fake) == 1
    matcher.cancelRequest(rid, sender=user)  # and the user may always take the deposit back at once
    assert ledger.getLedger(user) == (100_000 + penalty, 0)


def test_m2_declining_fakes_pay_and_drop_out(chain, registry, matcher, honest, user):
    fakes = fake_providers(chain, registry, 4, input_price=0, output_price=0, gpu_count=8)
    w3 = chain.provider.web3
    mat = w3.eth.contract(address=matcher.address,
                          abi=[a.model_dump(mode="json", by_alias=True) for a in matcher.contract_type.abi])
    outcome = []
    for _ in range(4):  # the user keeps asking; the fakes decline whatever they are matched with
        rid, provider = request_service(matcher, registry, user)
        while provider in fakes:
            w3.eth.wait_for_transaction_receipt(mat.functions.declineMatch(rid).transact({"from": provider}))
            info = matcher.getRequest(rid)
            provider = info.provider if info.status == MATCHED else None
        outcome.append(provider)
    assert honest.address in outcome, "every request failed"
    assert all(registry.getService(f).stake < MIN_STAKE for f in fakes), "declining cost the fakes nothing"
    assert not any(registry.isActive(f) for f in fakes)  # out of matching after 3 strikes in a row
