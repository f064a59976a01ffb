"""The per-area deploy scripts (`ape run deploy_<area>`) as a user runs them: onto a running stack's chain with
`--stack`, using the stack's contracts as dependencies, and a missing dependency or stack as one line (`error: …`,
exit code 2, no traceback).

The "running stack" is this test session's Anvil with an INFT contract on it and a stack.json naming it (what
`deaios up` writes): `ape run deploy_market --stack` must connect to that chain (not start an Anvil of its own) and
build on that NFT (not deploy one)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from deaios.deployment import load_script
from deaios.procs import project_root

ROOT = project_root()


def ape_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APE_FOUNDRY_HOST"}
    return subprocess.run(["ape", "run", *args], capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)


def problems(stderr: str) -> list[str]:
    """stderr without ape's own log lines (INFO:/WARNING: … connecting, deploying)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("INFO:", "WARNING:"))]


@pytest.fixture
def rpc(chain) -> str:
    return chain.provider.web3.provider.endpoint_uri


def test_deploy_market_onto_a_running_stack_uses_its_contracts(accounts, project, chain, rpc, tmp_path: Path):
    nft = load_script("deploy_inft").deploy_inft(accounts[0], project)["nft"]
    stack = tmp_path / "data" / "stack.json"
    stack.parent.mkdir()
    stack.write_text(json.dumps({"rpc": rpc, "chain_id": chain.chain_id, "contracts": {"inft_nft": nft},
                                 "indexer": "", "storage_nodes": [], "private_key": ""}))
    out = tmp_path / "deployments"
    result = ape_run("deploy_market", "--stack", str(stack.parent), "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    assert "deploying the INFT contract first" not in result.stderr
    record = json.loads((out / "local-market.json").read_text())
    assert record["nft"] == nft
    market = project.AgentMarket.at(record["agent_market"])  # on this very chain
    assert market.nft() == nft
    assert project.AgentNFT.at(nft).hasRole(project.AgentNFT.at(nft).DELEGATION_LOCKER_ROLE(), market.address)


def test_a_missing_dependency_is_one_line(rpc, tmp_path: Path):
    """On a network that is not a throwaway local one (here: the chain's URL), nothing is deployed implicitly."""
    result = ape_run("deploy_supervision", "--network", rpc, "--account", "TEST::0", "--out-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = problems(result.stderr)
    assert line.startswith("error: the storage Flow is needed: deploy it on custom first"), line


@pytest.mark.parametrize("case", ["stack not running", "no such stack"])
def test_a_stack_that_cannot_be_used_is_one_line(case: str, tmp_path: Path):
    """`--stack` is checked before ape connects anywhere (in-process: the same click command `ape run` runs)."""
    if case == "stack not running":
        stack = tmp_path / "stack.json"
        stack.write_text(json.dumps({"rpc": "http://127.0.0.1:9", "chain_id": 31337, "contracts": {},
                                     "indexer": "", "storage_nodes": [], "private_key": ""}))
        expected = f"error: --stack {stack}: its chain http://127.0.0.1:9 does not answer"
    else:
        stack = tmp_path / "nope"
        expected = f"error: --stack {stack}: no such stack file"
    result = CliRunner(mix_stderr=False).invoke(load_script("deploy_market").cli, ["--stack", str(stack)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(expected), result.stderr
    assert "APE_FOUNDRY_HOST" not in os.environ
