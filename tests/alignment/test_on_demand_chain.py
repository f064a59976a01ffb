"""Alignment epochs and governance on an on-demand chain: the epoch ends, and no block is mined after it.

ape's Anvil mines only for transactions, like `deaios up --block-time 0`. Its clock is moved past the epoch's
end (or a proposal's vote end) with `evm_increaseTime`, which mines nothing, so the latest block still says
"the old epoch" / "voting": the alignment node must still finalize the ended epoch and open the next one by
itself, and `alignment proposals` must show the vote as over (deaios.chain_time: calls and gas estimates see
the next block)."""

from __future__ import annotations

import asyncio

from supervision_helpers import DA, EMPTY_PROOF, deploy_world, make_operator, next_epoch, operator_accounts

from deaios.alignment.economy import Economy, EconomyAddresses
from deaios.alignment.operator import Operator, OperatorConfig

EPOCH = 600
VOTING = 120  # deploy_alignment's default voting period


def idle_until_after(w3, seconds: int) -> int:
    """Move the chain's clock on by `seconds` + 1 without mining; the latest block's number (unchanged)."""
    number = w3.eth.block_number
    w3.provider.make_request("evm_increaseTime", [seconds + 1])
    assert w3.eth.block_number == number
    return number


def test_the_alignment_node_finalizes_and_opens_epochs_with_no_block_mined(accounts, project, chain):
    world = deploy_world(accounts, project, epoch_seconds=EPOCH)
    (op,) = operator_accounts(accounts, 1)
    make_operator(world, op)
    sup = world.supervision
    sup.registerNode(DA, "http://127.0.0.1:9", accounts[7].address, 0, sender=world.owner)
    node_id = sup.nodeCount() - 1
    epoch = next_epoch(world)  # the operator's license runs from this epoch
    sup.attestPass(epoch, node_id, EMPTY_PROOF, sender=op)

    rpc = chain.provider.web3.provider.endpoint_uri
    operator = Operator(OperatorConfig(rpc, sup.address, op.private_key, []))
    idle_until_after(operator.chain.w3, EPOCH)
    assert int(sup.currentEpoch()) == epoch  # the latest block: still the old epoch
    assert operator.chain.current_epoch() == epoch + 1  # what a transaction sent now sees

    outcomes = asyncio.run(operator.run_once())
    assert [(o.epoch, o.node_id, o.action, o.verdict) for o in outcomes if o.action == "finalize"] \
        == [(epoch, node_id, "finalize", "pass")]
    seed, _ = operator.chain.epoch_info(epoch + 1)
    assert seed != bytes(32)  # the next epoch was opened by the node itself


def test_proposals_show_the_vote_over_with_no_block_mined(accounts, project, chain):
    world = deploy_world(accounts, project, epoch_seconds=EPOCH)
    (op,) = operator_accounts(accounts, 1)
    token = make_operator(world, op)
    governor = project.AlignmentGovernor.at(world.deployments["alignment"]["governor"])
    rewards = world.rewards
    data = bytes.fromhex(rewards.setRewardPerLicense.as_transaction(31).data.hex().removeprefix("0x"))
    tx = governor.propose(rewards.address, data, "cheaper", sender=op)
    pid = tx.events.filter(governor.ProposalCreated)[0].proposalId
    governor.castVote(pid, 1, [token], sender=op)

    economy = Economy(chain.provider.web3.provider.endpoint_uri,
                      EconomyAddresses.from_mapping(world.deployments["alignment"]))
    (before,) = economy.proposals([pid])
    assert before.state == "active"
    idle_until_after(economy.w3, VOTING)
    (after,) = economy.proposals([pid])
    assert after.state == "succeeded"
