"""FixedPriceMarket: only-flow charging, exact fees, per-pricing-chunk accounting, price, reward pulls."""

from __future__ import annotations

import ape
import pytest

from storage_contracts_helpers import PRICE, random_submission

ZERO_ADDRESS = "0x" + "00" * 20
CHUNK = 1 << 25


@pytest.fixture
def bare_market(project, owner, alice):
    """A market whose 'flow' is the EOA alice, so chargeFee can be called directly."""
    m = project.FixedPriceMarket.deploy(10, owner.address, sender=owner)
    m.setFlow(alice.address, sender=owner)
    return m


def test_only_flow_can_charge(market, alice):
    with ape.reverts(market.OnlyFlow, caller=alice.address):
        market.chargeFee(1, 1, 0, sender=alice, value=PRICE)


def test_set_flow_once_and_admin_only(project, owner, alice, market, flow):
    with ape.reverts(market.FlowAlreadySet, flow=flow.address):
        market.setFlow(alice.address, sender=owner)
    fresh = project.FixedPriceMarket.deploy(1, owner.address, sender=owner)
    with ape.reverts(fresh.AccessControlUnauthorizedAccount):
        fresh.setFlow(alice.address, sender=alice)
    with ape.reverts(fresh.ZeroAddress):
        fresh.setFlow(ZERO_ADDRESS, sender=owner)
    receipt = fresh.setFlow(alice.address, sender=owner)
    assert receipt.events.filter(fresh.FlowSet)[0].flow == alice.address
    with ape.reverts(fresh.ZeroAddress):
        project.FixedPriceMarket.deploy(1, ZERO_ADDRESS, sender=owner)


def test_price_update_requires_params_admin(market, owner, alice):
    with ape.reverts(market.AccessControlUnauthorizedAccount, account=alice.address,
                     neededRole=market.PARAMS_ADMIN_ROLE()):
        market.setPricePerSector(1, sender=alice)
    receipt = market.setPricePerSector(99, sender=owner)
    ev = receipt.events.filter(market.PricePerSectorUpdated)[0]
    assert (ev.oldPrice, ev.newPrice) == (PRICE, 99)
    assert market.pricePerSector() == 99
    market.grantRole(market.PARAMS_ADMIN_ROLE(), alice.address, sender=owner)
    market.setPricePerSector(5, sender=alice)
    assert market.pricePerSector() == 5


def test_fee_must_match_exactly(bare_market, alice):
    with ape.reverts(bare_market.FeeMismatch, expected=30, paid=29):
        bare_market.chargeFee(1, 3, 0, sender=alice, value=29)
    with ape.reverts(bare_market.FeeMismatch, expected=30, paid=31):
        bare_market.chargeFee(1, 3, 0, sender=alice, value=31)
    receipt = bare_market.chargeFee(1, 3, 5, sender=alice, value=30)
    ev = receipt.events.filter(bare_market.FeeCharged)[0]
    assert (ev.beforeLength, ev.uploadSectors, ev.paddingSectors, ev.amount) == (1, 3, 5, 30)
    assert bare_market.totalFees() == 30 == bare_market.rewardPool()
    assert bare_market.chunkFees(0) == 30


def test_fees_are_split_over_pricing_chunks(bare_market, alice):
    # Upload [CHUNK - 100, CHUNK - 100 + CHUNK + 200) spans chunks 0, 1, 2 with 100, CHUNK, 100 sectors.
    sectors = CHUNK + 200
    amount = sectors * 10
    bare_market.chargeFee(CHUNK - 150, sectors, 50, sender=alice, value=amount)
    parts = [bare_market.chunkFees(i) for i in range(4)]
    assert parts == [1000, CHUNK * 10, 1000, 0]
    assert sum(parts) == amount


def test_reward_contract_pulls_fees(market, flow, owner, alice, bob, rng):
    sub = random_submission(100_000, rng)
    flow.submit(sub.as_abi(alice.address), sender=alice, value=sub.sectors * PRICE)
    held = sub.sectors * PRICE
    assert market.rewardPool() == held

    with ape.reverts(market.OnlyReward, caller=bob.address):
        market.withdrawToReward(1, sender=bob)  # no reward contract yet
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setReward(bob.address, sender=bob)
    receipt = market.setReward(bob.address, sender=owner)
    ev = receipt.events.filter(market.RewardSet)[0]
    assert (ev.previousReward, ev.newReward) == (ZERO_ADDRESS, bob.address)
    with ape.reverts(market.RewardAlreadySet, reward=bob.address):  # set once: the fees cannot be redirected
        market.setReward(alice.address, sender=owner)

    with ape.reverts(market.OnlyReward, caller=alice.address):
        market.withdrawToReward(1, sender=alice)
    with ape.reverts(market.InsufficientBalance, requested=held + 1, available=held):
        market.withdrawToReward(held + 1, sender=bob)
    before = bob.balance
    receipt = market.withdrawToReward(held - 7, sender=bob)
    gas_cost = receipt.gas_used * receipt.gas_price
    assert bob.balance - before + gas_cost == held - 7
    assert receipt.events.filter(market.RewardWithdrawn)[0].amount == held - 7
    assert market.rewardPool() == 7 and market.totalWithdrawn() == held - 7
    assert ape.chain.provider.get_balance(market.address) == 7
