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
    DA, EMPTY_PROOF, ETHER, REWARD_PER_LICENSE, STORAGE, challenge_proof, deploy_world, end_epoch, evidence,
    make_operator, next_epoch, operator_accounts, random_file, revert_name, set_code, submit_file,
)

EPOCH = 600


@pytest.fixture(scope="module")
def world(accounts, project):
    return deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=1_000)


def attest_fail(world, op, epoch, node_id) -> bool:
    """Attest a fail (with valid evidence) if the contract lets `op` do it now; whether it did."""
    ev = evidence(world)
    if revert_name(world.supervision, "attestFail", epoch, node_id, ev, sender=op) is not None:
        return False
    world.supervision.attestFail(epoch, node_id, ev, sender=op)
    return True


def test_one_license_votes_and_earns_once_per_epoch(world, accounts, project):
    sup, lic, dlg, rewards = world.supervision, world.license, world.delegation, world.rewards
    honest, *attackers = operator_accounts(accounts, 4)
    make_operator(world, honest, licenses=2)  # the honest operator runs 2 licenses

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
    set_code(world, 4, 2)
    sup.registerNode(STORAGE, "http://127.0.0.1:1", accounts[5].address, 0, sender=world.owner)
    sup.registerNode(DA, "http://127.0.0.1:2", accounts[6].address, 0, sender=world.owner)
    sup.registerChallengeFile(event.seq, sender=honest)
    sup.stake(0, sender=accounts[5], value=ETHER)
    sup.stake(1, sender=accounts[6], value=ETHER)

    epoch = next_epoch(world, honest, into=sup.params().minFailSpan)
    allocated = rewards.totalAllocated()
    sup.attestPass(epoch, 0, challenge_proof(world, [event], {event.seq: data}, epoch, 0), sender=honest)
    sup.attestPass(epoch, 1, EMPTY_PROOF, sender=honest)
    honest_share = rewards.totalAllocated() - allocated

    votes = 0
    for i, op in enumerate(attackers):
        if i > 0:  # the hop: take L back from the previous operator, give it to this one
            dlg.undelegateNfts(attackers[i - 1].address, [hopper], False, sender=owner)
            dlg.delegateNfts(op.address, [hopper], sender=owner)
        votes += attest_fail(world, op, epoch, 0) & attest_fail(world, op, epoch, 1)
    hopper_rewards = rewards.totalAllocated() - allocated - honest_share

    end_epoch(world, epoch)
    sup.finalize(epoch, [0, 1], sender=honest)
    flagged = [sup.getNode(n).flagged for n in (0, 1)]
    stakes = [sup.getNode(n).stake for n in (0, 1)]
    print(f"\nH2: hopping license attested with {votes} operators; nodes flagged {flagged}, stakes {stakes}; "
          f"rewards for the hopping license this epoch {hopper_rewards} (one share = {REWARD_PER_LICENSE})")
    assert flagged == [False, False] and stakes == [ETHER, ETHER]
    assert hopper_rewards <= REWARD_PER_LICENSE
