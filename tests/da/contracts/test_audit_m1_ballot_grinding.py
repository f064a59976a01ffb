"""Audit M1: DA ballots are keccak(epoch-registration signature) and BLS signatures are deterministic, so each
signer's votes sit in one contiguous block whose place the signer chooses by trying keys offline.

The attack: four honest signers (8 votes each) register for the next epoch; their signatures are public. The
attacker (three signers, 8 votes each: 43 % of the stake) tries BLS keys until each of its registration
signatures sorts below every honest one, registers, and after `makeEpoch` holds 24 of the 30 rows of quorum 0:
enough to certify any commitment alone.

What must hold: the order of signers (and so the rows they get) is drawn from randomness fixed after
registration closes, and rows follow stake, so 43 % of the stake never reaches 2/3 of a quorum's rows.
"""

from __future__ import annotations

import ape
from da_contract_helpers import (
    TOKENS_PER_VOTE, DASigner, deploy_da_module, epoch_signature, make_signer, register, register_epoch,
    sign_blob, try_submit_verified, World,
)
from deaios.da import bls
from deaios.da.quorums import Quorum
from eth_utils import keccak

ROWS = 30
VOTES = 8


def _ballot(signer: DASigner, epoch: int) -> int:
    """The ballot the contracts before the fix sorted signers by: the high 192 bits of keccak256 of the
    epoch-registration signature (a signer computes it offline for any key it tries)."""
    x, y = epoch_signature(signer, epoch)
    return int.from_bytes(keccak(x.to_bytes(32, "big") + y.to_bytes(32, "big")), "big") >> 64


def test_ground_keys_do_not_capture_a_quorum(owner, project, signer_pool, alice):
    d = deploy_da_module.deploy_da(owner, project, tokens_per_vote=TOKENS_PER_VOTE, encoded_slices=ROWS,
                                   epoch_blocks=64)
    registry = project.DASigners.at(d["da_signers"])
    entrance = project.DAEntrance.at(d["da_entrance"])
    honest = signer_pool[:4]
    epoch = registry.epochNumber() + 1
    for s in honest:
        register(registry, s, VOTES)
        register_epoch(registry, s)
    ballots = [_ballot(s, epoch) for s in honest]
    # the wider open end of the honest ballots: all below the lowest, or all above the highest
    low, high = min(ballots), max(ballots)
    below = low > (1 << 192) - high

    attackers, tries = [], 0
    key = bls.BLSKey.generate(b"m1-grind")
    for i in range(3):
        account = make_signer(300 + i).account
        while True:  # offline: try keys (consecutive secrets, cheap to derive) until the signature sorts outside
            tries += 1
            key = bls.BLSKey(key.sk + 1, bls.g1_add(key.pk_g1, bls.G1), bls.g2_add(key.pk_g2, bls.G2))
            candidate = DASigner(account, key)
            ballot = _ballot(candidate, epoch)
            if (ballot < low) if below else (ballot > high):
                break
        register(registry, candidate, VOTES)
        register_epoch(registry, candidate)
        attackers.append(candidate)

    ape.chain.mine(64)
    registry.makeEpoch(sender=alice)
    quorums = []
    for qid in range(registry.quorumCount(epoch)):
        members, ends, _ = registry.getQuorumMembers(epoch, qid)
        quorums.append(Quorum(tuple(members), tuple(ends)))
    mine = {a.address for a in attackers}
    rows = [sum(len(q.rows_of(m)) for m in mine) for q in quorums]

    # the attacker certifies a commitment of its choice for someone's blob, with its own signatures only
    world = World(registry, entrance, honest + attackers, [VOTES] * 7, epoch, quorums)
    best = max(range(len(quorums)), key=lambda k: rows[k])
    root = keccak(b"victim's blob")
    bogus = bls.hash_to_g1(keccak(b"attacker's commitment"))
    sigs = sign_blob(attackers, root, epoch, best, bogus)
    signing = [a.address for a in attackers if quorums[best].rows_of(a.address)]
    bitmap = bls.quorum_bitmap([r for a in signing for r in quorums[best].rows_of(a)], quorums[best].rows)
    sub = (root, epoch, best, bogus, bitmap, bls.g2_eip197(bls.aggregate_g2(world.by_address(a).key.pk_g2
                                                                           for a in signing)),
           bls.aggregate_g1(sigs[a] for a in signing))
    certified, error = try_submit_verified(world, [sub], alice.address)
    print(f"\nM1: {tries} keys tried; attacker (43 % of the stake) holds {rows} rows of the quorums "
          f"({ROWS} rows each); certifying a bogus commitment alone: {certified or error}")
    assert max(rows) * 3 < 2 * ROWS
    assert not certified
