"""Audit H3: one party can hold every DA quorum of an epoch.

The attack: `registerNextEpoch` takes the first registrations of an epoch up to the cap, whatever their
stake. Right after an epoch starts, an attacker registers signers with one vote each until the cap is
reached; honest signers with a thousand times the stake come later and are refused (`EpochFull`). When the
epoch is made, every quorum belongs to the attacker, who can then certify any commitment alone (and, since the
first commitment recorded for a blob wins, block the honest one).

What must hold: a party's rows in a quorum follow its stake, so a party with a small share of the stake
registered for an epoch never holds 2/3 of a quorum's rows; signers with more stake are not kept out by
earlier, smaller ones. And a signer that signs two different commitments for one blob loses its stake.
"""

from __future__ import annotations

import ape
import pytest
from da_contract_helpers import TOKENS_PER_VOTE, deploy_da_module, epoch_signature, register
from deaios.da import bls
from deaios.testing import ChainRpc
from eth_utils import keccak

ROWS = 30
SLOTS = 8  # registrations per epoch (the contracts before the fix had a fixed 128, which the attack filled)
EPOCH_BLOCKS = 64  # registration closes 8 blocks before the end: room for the attack's transactions
HONEST_VOTES = 1000
G1 = "(uint256,uint256)"


@pytest.fixture(scope="module")
def attacker_keys():
    """BLS keys (consecutive secrets: each public key is the previous one plus the generator, which is quick
    to compute) and impersonated addresses for the attacker's many one-vote signers."""
    first = bls.BLSKey.generate(b"h3-attacker")
    keys = [first]
    for _ in range(SLOTS - 1):
        prev = keys[-1]
        keys.append(bls.BLSKey(prev.sk + 1, bls.g1_add(prev.pk_g1, bls.G1), bls.g2_add(prev.pk_g2, bls.G2)))
    return [(key, "0x" + keccak(b"h3-attacker-%d" % i)[-20:].hex()) for i, key in enumerate(keys)]


def _slots(registry) -> int:
    return registry.maxSignersPerEpoch()


def _register_many(rpc: ChainRpc, signers: list[tuple[bls.BLSKey, str]], votes: int) -> list[str]:
    """registerSigner (with stake) and registerNextEpoch from impersonated addresses, in order; the addresses
    whose registration for the next epoch went in."""
    chain_id = ape.chain.chain_id
    epoch = rpc.views([("reg", "epochNumber", ())])[0] + 1
    sent = []
    for key, address in signers:
        address = rpc.impersonate(address)
        detail = (address, "10.6.6.6:34000", key.pk_g1, bls.g2_signer_order(key.pk_g2))
        rpc.send_unchecked("reg", "registerSigner", detail, key.pop(address, chain_id), sender=address,
                           value=votes * TOKENS_PER_VOTE)
        sent.append((address, rpc.send_unchecked("reg", "registerNextEpoch",
                                                  key.sign(bls.epoch_digest(address, epoch, chain_id)),
                                                  sender=address)))
    return [address for (address, _), ok in zip(sent, rpc.statuses([h for _, h in sent])) if ok]


def test_small_stake_cannot_fill_every_quorum(owner, project, signer_pool, attacker_keys):
    d = deploy_da_module.deploy_da(owner, project, tokens_per_vote=TOKENS_PER_VOTE, encoded_slices=ROWS,
                                   epoch_blocks=EPOCH_BLOCKS, max_signers_per_epoch=SLOTS)
    registry = project.DASigners.at(d["da_signers"])
    rpc = ChainRpc(ape.chain.provider.web3, {"reg": registry})
    honest = signer_pool[12:15]

    # the attacker is first in the epoch: one vote per signer, every slot
    slots = _slots(registry)
    attackers = _register_many(rpc, attacker_keys[:slots], 1)
    # honest signers, each with a thousand times one attacker signer's stake, come later
    admitted = []
    for s in honest:
        rpc.impersonate(s.address)
        register(registry, s, HONEST_VOTES)
        sig = epoch_signature(s, registry.epochNumber() + 1)
        ok, err = rpc.send("reg", "registerNextEpoch", sig, sender=s.address)
        admitted.append(ok or err)

    ape.chain.mine(EPOCH_BLOCKS)
    registry.makeEpoch(sender=owner)  # anyone
    epoch = registry.epochNumber()
    mine = {a.lower() for a in attackers}
    shares = []
    for qid in range(registry.quorumCount(epoch)):
        members, ends, _ = registry.getQuorumMembers(epoch, qid)
        rows = [e - (ends[i - 1] if i else 0) for i, e in enumerate(ends)]
        shares.append(sum(r for m, r in zip(members, rows) if m.lower() in mine) / ends[-1])
    stake_share = len(attackers) / (len(attackers) + HONEST_VOTES * admitted.count(True))
    print(f"\nH3: attacker registered {len(attackers)} one-vote signers first; honest signers: {admitted}; "
          f"attacker's row share per quorum {[round(s, 3) for s in shares]} with {stake_share:.1%} of the stake")
    assert admitted == [True] * len(honest)
    assert max(shares) < 2 / 3


def test_signing_two_commitments_for_one_blob_is_slashed(world, alice):
    registry = world.registry
    signer = world.signers[0]
    root = keccak(b"equivocation")
    commitments = [bls.hash_to_g1(keccak(b"c1")), bls.hash_to_g1(keccak(b"c2"))]
    sigs = [signer.key.sign(bls.commit_digest(root, world.epoch, 0, c)) for c in commitments]
    stake = registry.stakeOf(signer.address)
    assert stake > 0
    registry.slashEquivocation(signer.address, root, world.epoch, 0, commitments[0], sigs[0], commitments[1],
                               sigs[1], sender=alice)
    assert registry.stakeOf(signer.address) == 0
