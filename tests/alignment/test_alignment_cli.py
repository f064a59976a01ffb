"""`deaios alignment buy|licenses|register-operator|delegate|undelegate|rewards|claim|propose|vote|execute|
proposals` against the contracts deployed by deploy_alignment on ape's Anvil (through --rpc/--deployment and
the test accounts' keys); the abi.json export; the governance-call encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alignment_econ_helpers import *  # noqa: F401,F403  (fixtures)
from alignment_econ_helpers import (
    REWARD, TIMELOCK, TIER_PRICES, VOTING_PERIOD, deploy, next_epoch, split, time_travel,
)
from click.testing import CliRunner
from deaios.alignment.cli import alignment as alignment_cli
from deaios.alignment.economy import ABI_FILE, encode_call, parse_argument, render, split_signature
from deaios.deployment import load_script

ROOT = Path(__file__).resolve().parents[2]
COMMISSION_BPS = 1_000


def test_abi_file_is_current():
    assert ABI_FILE.read_text() == render(ROOT / ".build" / "__local__.json"), (
        "run `python -m deaios.alignment.economy` after `ape compile`"
    )


def test_encode_call():
    assert encode_call("setPricePerSector(uint256)", ["1000"]).hex() == "14aa90a1" + f"{1000:064x}"
    assert split_signature("f(uint256[], (address,bool),bytes)") == (
        "f", ["uint256[]", "(address,bool)", "bytes"])
    assert parse_argument("uint16[]", "[1, 2]") == [1, 2]
    assert parse_argument("bool", "true") is True
    assert parse_argument("uint256", "0x10") == 16
    for signature, args, match in [
        ("setPricePerSector", ["1"], "not a function signature"),
        ("setPricePerSector(uint256)", [], "takes 1 argument"),
        ("setPricePerSector(uint256)", ["lots"], "not an integer"),
        ("setPricePerSector(uint8)", ["300"], "cannot encode"),
        ("setAdmin(address)", ["0x12"], "not an address"),
        ("f((uint256,bool))", ["1"], "tuple"),
    ]:
        with pytest.raises(ValueError, match=match):
            encode_call(signature, args)


@pytest.fixture(scope="module")
def storage(admin, project) -> Any:
    record = load_script("deploy").deploy_storage(admin, project)
    return project.FixedPriceMarket.at(record["market"])


@pytest.fixture(scope="module")
def deployment(admin, project, storage, supervisor):  # noqa: F811  (overrides the helper's: with the market)
    result = deploy(admin, project, storage_market=storage.address)
    rewards = project.AlignmentRewards.at(result["rewards"])
    rewards.grantRole(rewards.SUPERVISION_ROLE(), supervisor.address, sender=admin)
    return result


@pytest.fixture(scope="module")
def deployment_file(deployment, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("alignment") / "local-alignment.json"
    path.write_text(json.dumps(deployment))
    return path


@pytest.fixture
def cli(deployment_file, chain):
    runner = CliRunner()

    def run(account: Any, *args: str, code: int = 0) -> list[dict] | str:
        """JSON lines of a successful command, else its error output."""
        key = ["--key", account.private_key] if account is not None else []
        result = runner.invoke(
            alignment_cli, [*args, "--rpc", chain.provider.uri, "--deployment", str(deployment_file), *key]
        )
        assert result.exit_code == code, (args, result.output, result.exception)
        if code:
            return result.output
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    return run


def test_buy_delegate_record_claim_undelegate(cli, alice, ops, supervisor, lic, dlg, rew):
    op = ops[0]
    (bought,) = cli(alice, "buy", "--count", "3")
    assert (bought["buyer"], bought["tokenIds"], bought["paid"]) == (
        alice.address, [1, 2, 3], 3 * TIER_PRICES[0])
    assert cli(op, "buy")[0]["tokenIds"] == [4]
    (registered,) = cli(op, "register-operator", "--commission-bps", str(COMMISSION_BPS))
    assert (registered["registered"], registered["commissionBps"]) == (True, COMMISSION_BPS)
    (delegated,) = cli(alice, "delegate", op.address, "1", "2", "3")
    assert delegated["effectiveEpoch"] == dlg.currentEpoch() + 1  # delegations apply from the next epoch
    assert cli(op, "delegate", "self", "4")[0]["operator"] == op.address
    listed = cli(alice, "licenses")
    assert [(x["tokenId"], x["owner"], x["operator"]) for x in listed] == [(t, alice.address, op.address)
                                                                         for t in (1, 2, 3)]
    assert listed[0]["transferLockedUntil"] == lic.unlockAt(1)
    assert [x["tokenId"] for x in cli(None, "licenses", "--all")] == [1, 2, 3, 4]

    epoch = next_epoch(dlg)
    rew.recordOperated(epoch, op, sender=supervisor)  # supervision: op ran its 4 licenses in the epoch
    owner_share, commission = split(REWARD, COMMISSION_BPS)
    (due,) = cli(alice, "rewards")
    assert due == {"account": alice.address, "epoch": epoch, "credited": 0, "claimable": 3 * owner_share,
                   "pending": {"1": owner_share, "2": owner_share, "3": owner_share}}
    assert cli(None, "rewards", "4", "--account", op.address)[0]["claimable"] == owner_share + 4 * commission
    assert cli(alice, "claim")[0]["claimed"] == 3 * owner_share
    assert rew.totalClaimed() == 3 * owner_share
    assert cli(op, "claim", "4")[0]["claimed"] == owner_share + 4 * commission
    assert "NothingToClaim" in cli(alice, "claim", code=2)

    cli(alice, "undelegate", op.address, "3")
    cli(op, "undelegate", alice.address, "2", "--by-operator")
    assert [dlg.operatorOf(t) for t in (1, 2, 3)] == [op.address, "0x" + "00" * 20, "0x" + "00" * 20]
    assert "NotDelegated" in cli(alice, "undelegate", op.address, "3", code=2)


def test_propose_vote_execute_changes_the_storage_price(cli, alice, bob, storage):
    cli(alice, "buy", "--count", "3")
    cli(bob, "buy")
    (proposal,) = cli(alice, "propose", "market", "setPricePerSector(uint256)", "1234",
                      "--description", "cheaper")
    assert (proposal["proposalId"], proposal["targetName"], proposal["target"]) == (
        1, "market", storage.address)
    (voted,) = cli(alice, "vote", "1", "--support", "yes")
    assert (voted["tokenIds"], voted["forVotes"]) == ([1, 2, 3], 3)
    assert cli(bob, "vote", "1", "--support", "no", "4")[0]["againstVotes"] == 1
    assert "AlreadyVoted" in cli(alice, "vote", "1", "--support", "no", "1", code=2)
    assert "none of your licenses can vote" in cli(alice, "vote", "1", "--support", "no", code=2)
    assert "TimelockNotElapsed" in cli(bob, "execute", "1", code=2)
    time_travel(VOTING_PERIOD + TIMELOCK + 1)
    (executed,) = cli(bob, "execute", "1")
    assert executed["state"] == "executed"
    assert storage.pricePerSector() == 1234
    (shown,) = cli(None, "proposals")
    assert (shown["state"], shown["description"], shown["forVotes"], shown["againstVotes"]) == (
        "executed", "cheaper", 3, 1)
    assert "ProposalNotPending" in cli(bob, "execute", "1", code=2)


def test_bad_input_exits_2(cli, alice, carol, deployment_file):
    assert "0 is not in the range" in cli(alice, "buy", "--count", "0", code=2)
    assert "WalletCapExceeded" in cli(alice, "buy", "--count", "13", code=2)
    assert "NoLicenseOwned" in cli(carol, "register-operator", "--commission-bps", "100", code=2)
    assert "OPERATOR must be" in cli(alice, "delegate", "nobody", "1", code=2)
    assert "give the TOKEN_IDs" in cli(alice, "delegate", "self", code=2)
    assert "OperatorNotRegistered" in cli(alice, "delegate", "self", "1", code=2)
    assert "ERC721NonexistentToken(tokenId=99)" in cli(alice, "rewards", "99", code=2)
    assert "not an integer" in cli(alice, "propose", "market", "setPricePerSector(uint256)", "cheap", code=2)
    assert "unknown target 'nowhere'" in cli(alice, "propose", "nowhere", "setPricePerSector(uint256)", "1",
                                             code=2)
    assert "not on the governor's allowlist" in cli(alice, "propose", "rewards", "setWalletCap(uint256)", "1",
                                                    code=2)
    assert "UnknownProposal" in cli(alice, "vote", "7", "--support", "yes", "1", code=2)
    assert "--support" in cli(alice, "vote", "1", "--support", "maybe", "1", code=2)
    runner = CliRunner()
    only_rpc = runner.invoke(alignment_cli, ["proposals", "--rpc", "http://127.0.0.1:1"])
    assert only_rpc.exit_code == 2 and "go together" in only_rpc.output
    bad_key = runner.invoke(alignment_cli, ["buy", "--rpc", "http://127.0.0.1:1", "--deployment",
                                            str(deployment_file), "--key", "0x12"])
    assert bad_key.exit_code == 2 and "32-byte" in bad_key.output
    missing = runner.invoke(alignment_cli, ["proposals", "--rpc", "http://127.0.0.1:1", "--deployment",
                                            str(deployment_file.with_name("none.json"))])
    assert missing.exit_code == 2 and "cannot read the deployment" in missing.output


def _json(result: Any) -> dict:
    return next(json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))


def test_stack_json_and_its_dev_key(deployment, storage, alice, chain, tmp_path):
    """Without --rpc/--deployment: the contracts, the RPC and the key come from a (running) stack.json."""
    import os

    contracts = {"market": storage.address, **{f"alignment_{k}": deployment[k]
                                               for k in ("license", "delegation", "rewards", "governor")}}
    stack = {"rpc": chain.provider.uri, "chain_id": 31337, "contracts": contracts, "indexer": "",
             "storage_nodes": [], "private_key": alice.private_key, "launcher_pid": os.getpid(),
             "deploy_block": 0}
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    runner = CliRunner()
    bought = runner.invoke(alignment_cli, ["buy", "--stack", str(tmp_path)])
    assert bought.exit_code == 0, bought.output
    assert _json(bought)["buyer"] == alice.address
    proposed = runner.invoke(alignment_cli, ["propose", "market", "setPricePerSector(uint256)", "7",
                                             "--stack", str(tmp_path / "stack.json")])
    assert proposed.exit_code == 0, proposed.output
    assert _json(proposed)["description"] == "market.setPricePerSector(uint256) 7"
    del contracts["alignment_rewards"]
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    missing = runner.invoke(alignment_cli, ["proposals", "--stack", str(tmp_path)])
    assert missing.exit_code == 2 and "no alignment rewards contract" in missing.output
