"""Audit lows of the storage contracts, each performed as an attack:

* L-fees: the market's admin swaps the reward contract allowed to pull the held storage fees for an account of
  its own (or anyone holding the admin key does) and takes them;
* L-epochs: with mining on, `Flow.submit` seals every ended mining epoch in one loop: after a quiet period of a
  few thousand blocks a submission costs more gas than a block holds, and nobody can submit.
"""

from __future__ import annotations

import ape
import pytest

from deaios.testing import revert_name
from storage_contracts_helpers import PRICE, deploy_module, random_submission


def test_fee_recipient_cannot_be_swapped(flow, market, owner, alice, accounts, rng):
    market.setReward(accounts[8].address, sender=owner)  # the storage reward contract, wired once
    sub = random_submission(1 << 20, rng)
    flow.submit(sub.as_abi(alice.address), sender=alice, value=sub.sectors * PRICE)
    held = market.rewardPool()
    thief = accounts[9]
    swapped = revert_name(market, "setReward", thief.address, sender=owner) is None
    if swapped:
        market.setReward(thief.address, sender=owner)
    taken = revert_name(market, "withdrawToReward", held, sender=thief) is None
    print(f"\nL-fees: reward contract swapped: {swapped}; {held} wei of storage fees taken: {taken}")
    assert not taken


def test_submit_stays_cheap_after_many_idle_epochs(owner, alice, project, rng):
    record = deploy_module.deploy_storage(owner, project, blocks_per_epoch=1)  # mining on, 1-block epochs
    flow = project.Flow.at(record["flow"])
    sub = random_submission(4096, rng)
    flow.submit(sub.as_abi(alice.address), sender=alice, value=sub.sectors * PRICE)
    ape.chain.mine(200)  # a quiet period: 200 mining epochs end without a submission
    call = {"from": alice.address, "to": flow.address, "value": sub.sectors * PRICE, "gas": 1_000_000,
            "data": flow.submit.encode_input(sub.as_abi(alice.address))}
    try:
        ape.chain.provider.web3.eth.call(call)
        outcome = "fits in 1M gas"
    except Exception as exc:  # out of gas
        outcome = f"does not fit in 1M gas ({type(exc).__name__}: {str(exc)[:60]})"
    print(f"\nL-epochs: submit after 200 idle epochs {outcome}")
    assert outcome == "fits in 1M gas"
