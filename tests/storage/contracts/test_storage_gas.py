"""Gas of Flow.submit / batchSubmit (regression bounds; figures recorded in docs/benchmarks.md).

Run `ape test tests/storage/contracts/test_storage_gas.py -s` to print the figures.
"""

from __future__ import annotations

from storage_contracts_helpers import PRICE, random_submission


def _submit(flow, sender, sub):
    return flow.submit(sub.as_abi(sender.address), sender=sender, value=sub.sectors * PRICE)


def test_submit_gas(flow, alice, rng):
    one = random_submission(1_000_000, rng)            # 1 node (height 12)
    three = random_submission(5600 * 256, rng)             # 3 nodes: heights 12, 10, 9
    assert len(one.nodes) == 1 and len(three.nodes) == 3
    first = _submit(flow, alice, one).gas_used           # first submission: fresh storage slots
    second = _submit(flow, alice, random_submission(1_000_000, rng)).gas_used
    three_gas = _submit(flow, alice, three).gas_used
    batch_subs = [random_submission(n, rng) for n in (1_000, 100_000, 1_000_000, 300_000)]
    batch = flow.batchSubmit([s.as_abi(alice.address) for s in batch_subs], sender=alice,
                             value=sum(s.sectors for s in batch_subs) * PRICE).gas_used
    print(f"\nGAS submit 1-node first={first} 1-node next={second} 3-node={three_gas} batchSubmit(4)={batch}")
    assert second < 200_000
    assert three_gas < 250_000
    assert batch < 700_000
