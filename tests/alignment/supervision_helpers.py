"""Helpers shared by the supervision tests (contract tests and the end-to-end test with real storage nodes).

A uniquely named module (test folders may have a conftest): deploys the storage Flow, the alignment economy
(license, delegation, rewards: the other alignment helper's real contracts) and AlignmentSupervision, wires
SUPERVISION_ROLE, makes alignment operators (Anvil dev keys 10.. with a self-operated license each), submits
files and builds storage proofs with the off-chain code (`deaios.alignment.challenge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deaios import testing
from deaios.alignment.challenge import chunk_siblings, flow_tree_at
from deaios.deployment import load_script
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_SIZE, FileMerkleTree, num_chunks, padded_chunks
from deaios.storage.node.logsync import SubmitEvent

ETHER = 10**18
STORAGE, DA = 0, 1
NONE, PASS, FAIL, INCONCLUSIVE = 0, 1, 2, 3
EMPTY_PROOF = (0, 0, b"", [])
REWARD_PER_LICENSE = 10**15
FIRST_OPERATOR_KEY = 10  # Anvil dev keys 10..14 are the local stack's alignment operators


@dataclass
class SupervisionWorld:
    """Everything one test module deploys."""

    owner: Any
    flow: Any
    license: Any
    delegation: Any
    rewards: Any
    supervision: Any
    deployments: dict[str, Any]


def deploy_world(accounts: Any, project: Any, *, epoch_seconds: int = 600, slash_bps: int = 1_000,
                 min_attestations: int = 1, unbonding_epochs: int = 2) -> SupervisionWorld:
    """Deploy storage + alignment + supervision (deployer accounts[0]) and grant SUPERVISION_ROLE."""
    owner = accounts[0]
    storage = load_script("deploy").deploy_storage(owner, project, price_per_sector=1)
    econ = load_script("deploy_alignment").deploy_alignment(
        owner, project, reward_per_license=REWARD_PER_LICENSE, reward_funding=ETHER, transfer_lock=0)
    sup = load_script("deploy_supervision").deploy_supervision(
        owner, project, delegation=econ["delegation"], rewards=econ["rewards"], flow=storage["flow"],
        epoch_seconds=epoch_seconds, slash_bps=slash_bps, min_attestations=min_attestations,
        unbonding_epochs=unbonding_epochs)
    rewards = project.AlignmentRewards.at(econ["rewards"])
    rewards.grantRole(rewards.SUPERVISION_ROLE(), sup["supervision"], sender=owner)
    return SupervisionWorld(owner, project.Flow.at(storage["flow"]), project.AlignmentLicense.at(econ["license"]),
                            project.AlignmentDelegation.at(econ["delegation"]), rewards,
                            project.AlignmentSupervision.at(sup["supervision"]),
                            {"storage": storage, "alignment": econ, "supervision": sup})


def operator_accounts(accounts: Any, count: int) -> list[Any]:
    """Test accounts for Anvil dev keys 10, 11, … (generated from the test mnemonic), funded with 10 ether."""
    from ape import chain

    from deaios.stack.config import dev_key

    while len(accounts) < FIRST_OPERATOR_KEY + count:
        accounts.generate_test_account()
    out = [accounts[FIRST_OPERATOR_KEY + i] for i in range(count)]
    assert all(a.private_key.lower() == dev_key(FIRST_OPERATOR_KEY + i).lower() for i, a in enumerate(out))
    for account in out:
        if account.balance < ETHER:
            chain.set_balance(account.address, 10 * ETHER)
    return out


def make_operator(world: SupervisionWorld, account: Any, commission_bps: int = 1_000) -> int:
    """Buy one license for `account`, register it as operator and self-delegate; the token id."""
    first = world.license.totalMinted() + 1
    world.license.buy(1, sender=account, value=world.license.quote(1))
    world.delegation.registerOperator(commission_bps, sender=account)
    world.delegation.delegateNfts(account.address, [first], sender=account)
    assert world.delegation.isActiveOperator(account.address)
    return first


def submit_file(world: SupervisionWorld, data: bytes, sender: Any | None = None) -> SubmitEvent:
    """Submit `data` to the Flow (fee paid); the decoded Submit event."""
    sender = sender or world.owner
    submission = FileMerkleTree.from_bytes(data).submission()
    fee = submission.sectors * world.deployments["storage"]["price_per_sector"]
    receipt = world.flow.submit(submission.as_abi(sender.address), sender=sender, value=fee)
    (log,) = [e for e in receipt.events if e.event_name == "Submit"]
    return SubmitEvent(log.submissionIndex, log.startPos, log.length, len(data), bytes(submission.tags),
                       tuple((n.root, n.height) for n in submission.nodes), receipt.block_number)


def revert_name(contract: Any, method: str, *args: Any, sender: Any, value: int = 0) -> str | None:
    """Simulate `contract.method(*args)` as `sender` with one eth_call: None if it would succeed, else the name
    of the contract's custom error it reverts with (see deaios.testing)."""
    return testing.revert_name(contract, method, *args, sender=sender, value=value)


def attest_error(world: SupervisionWorld, sender: Any, epoch: int, node_id: int, passed: bool,
                 proof: tuple) -> str | None:
    """`revert_name` of AlignmentSupervision.attest."""
    return revert_name(world.supervision, "attest", epoch, node_id, passed, proof, sender=sender)


def padded(data: bytes) -> bytes:
    """The file's bytes zero-padded as the flow pads it."""
    return data + bytes(padded_chunks(num_chunks(len(data))) * CHUNK_SIZE - len(data))


def storage_proof(events: list[SubmitEvent], event: SubmitEvent, data: bytes, chunk_index: int) -> tuple:
    """The attestation proof (txSeq, position, chunk, siblings) of chunk `chunk_index` of the file `data`."""
    full = padded(data)
    segment_index = chunk_index * CHUNK_SIZE // SEGMENT_SIZE
    segment = full[segment_index * SEGMENT_SIZE:(segment_index + 1) * SEGMENT_SIZE]
    tree = FileMerkleTree.from_bytes(data)
    siblings = chunk_siblings(event, chunk_index, segment, tree.segment_roots, flow_tree_at(events, event.seq))
    return (event.seq, event.start_pos + chunk_index, full[chunk_index * CHUNK_SIZE:(chunk_index + 1) * CHUNK_SIZE],
            siblings)


def random_file(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (tests reproduce)."""
    import random

    return random.Random(seed).randbytes(size)
