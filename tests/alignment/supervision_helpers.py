"""Helpers shared by the supervision tests (contract tests and the end-to-end test with real storage nodes).

A uniquely named module (test folders may have a conftest): deploys the storage Flow, the alignment economy
(license, delegation, rewards: the other alignment helper's real contracts) and AlignmentSupervision, wires
SUPERVISION_ROLE, makes alignment operators (Anvil dev keys 10.. with a self-operated license each; it runs
from the next epoch), submits files, builds the proofs of the chunks the contract challenges with the
off-chain code (`deaios.alignment.challenge`) and fail evidence, and moves the chain's clock between epochs.
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
EMPTY_PROOF = (0, b"", [])
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
                 min_weight: int = 1, unbonding_epochs: int = 2, min_fail_tries: int = 3,
                 min_fail_span: int | None = None) -> SupervisionWorld:
    """Deploy storage + alignment + supervision (deployer accounts[0]) and grant SUPERVISION_ROLE."""
    owner = accounts[0]
    storage = load_script("deploy").deploy_storage(owner, project, price_per_sector=1)
    econ = load_script("deploy_alignment").deploy_alignment(
        owner, project, reward_per_license=REWARD_PER_LICENSE, reward_funding=ETHER, transfer_lock=0,
        epoch_seconds=epoch_seconds)
    sup = load_script("deploy_supervision").deploy_supervision(
        owner, project, delegation=econ["delegation"], rewards=econ["rewards"], flow=storage["flow"],
        slash_bps=slash_bps, min_weight=min_weight, unbonding_epochs=unbonding_epochs,
        min_fail_tries=min_fail_tries, min_fail_span=min_fail_span)
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


def make_operator(world: SupervisionWorld, account: Any, commission_bps: int = 1_000, licenses: int = 1) -> int:
    """Buy `licenses` licenses for `account`, register it as operator and self-delegate them (they run from the
    next epoch: `next_epoch`); the first token id."""
    first = world.license.totalMinted() + 1
    world.license.buy(licenses, sender=account, value=world.license.quote(licenses))
    world.delegation.registerOperator(commission_bps, sender=account)
    world.delegation.delegateNfts(account.address, list(range(first, first + licenses)), sender=account)
    assert world.delegation.nextOperatedCount(account.address) == licenses
    return first


def travel_to(timestamp: int) -> None:
    """Move the chain's clock to `timestamp` (if it is ahead) and mine a block."""
    from ape import chain

    if timestamp > chain.pending_timestamp:
        chain.pending_timestamp = timestamp
    chain.mine()


def next_epoch(world: SupervisionWorld, opener: Any | None = None, *, into: int = 0) -> int:
    """Move to `into` seconds after the start of the next epoch and open it; the epoch."""
    sup = world.supervision
    travel_to(sup.epochStart(sup.currentEpoch() + 1) + into)
    sup.openEpoch(sender=opener or world.owner)
    return sup.currentEpoch()


def end_epoch(world: SupervisionWorld, epoch: int) -> None:
    travel_to(world.supervision.epochStart(epoch + 1))


def evidence(world: SupervisionWorld, tries: int | None = None, span: int | None = None,
             record: bytes = b"\x01" * 32) -> tuple:
    """A FailEvidence that the contract's rule accepts (override `tries`/`span` to break it). The chain must be
    at least `span` seconds into the epoch (`next_epoch(into=...)`)."""
    p = world.supervision.params()
    tries = p.minFailTries if tries is None else tries
    span = p.minFailSpan if span is None else span
    offsets = [0] + [max(1, span * i // max(1, tries - 1)) for i in range(1, tries)]
    for i in range(1, len(offsets)):
        offsets[i] = max(offsets[i], offsets[i - 1] + 1)
    return (offsets, record)


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


def pass_error(world: SupervisionWorld, sender: Any, epoch: int, node_id: int, proof: tuple = EMPTY_PROOF) -> str | None:
    """`revert_name` of AlignmentSupervision.attestPass."""
    return revert_name(world.supervision, "attestPass", epoch, node_id, proof, sender=sender)


def fail_error(world: SupervisionWorld, sender: Any, epoch: int, node_id: int, ev: tuple) -> str | None:
    """`revert_name` of AlignmentSupervision.attestFail."""
    return revert_name(world.supervision, "attestFail", epoch, node_id, ev, sender=sender)


def set_code(world: SupervisionWorld, n: int, k: int) -> None:
    world.supervision.setErasureCode(n, k, sender=world.owner)


def challenge_proof(world: SupervisionWorld, events: list[SubmitEvent], datas: dict[int, bytes], epoch: int,
                    node_id: int, attempt: int | None = None) -> tuple:
    """The attestPass proof (attempt, chunk, siblings) of the chunk the contract challenges `node_id` for in
    `epoch` (the first attempt that has one, or `attempt`), built from the file's bytes `datas[txSeq]`."""
    sup = world.supervision
    attempts = [attempt] if attempt is not None else range(sup.MAX_ATTEMPTS())
    for a in attempts:
        ok, tx_seq, chunk_index, position = sup.challengeOf(epoch, node_id, a)
        if ok:
            event = next(e for e in events if e.seq == tx_seq)
            tx_seq_, pos, chunk, siblings = storage_proof(events, event, datas[tx_seq], chunk_index)
            assert pos == position
            return (a, chunk, siblings)
    raise AssertionError(f"node {node_id} has no challenge in epoch {epoch}")


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
