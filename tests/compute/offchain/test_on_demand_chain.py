"""A refund on an on-demand chain: no block is mined while the user waits out the lock, and `deaios compute refund
collect` still works (deaios.chain_time: gas estimates and calls see the next block, stamped with the current
time). ape's Anvil mines only for transactions, like `deaios up --block-time 0`; the lock's minimum is 60 s, so
the test moves Anvil's clock on with `evm_increaseTime` (which mines nothing) instead of sleeping."""

from __future__ import annotations

import json

from click.testing import CliRunner
from compute_helpers import deploy
from deaios.chain_time import NEXT_BLOCK, connect
from deaios.cli import main as deaios_main
from deaios.compute.chain import ComputeAddresses, ComputeChain

LOCK = 60  # seconds: the ledger's refund lock in this deployment (its minimum)


def latest(w3) -> tuple[int, int]:
    block = w3.eth.get_block("latest")
    return int(block["number"]), int(block["timestamp"])


def test_refund_collects_after_the_lock_with_no_block_mined(owner, project, alice, prov, chain, tmp_path):
    deployment = deploy(owner, project, lock_time=LOCK)
    record = tmp_path / "compute.json"
    record.write_text(json.dumps(deployment, default=str))
    rpc = chain.provider.web3.provider.endpoint_uri
    user = ComputeChain(rpc, ComputeAddresses.from_mapping(deployment), alice.private_key)
    user.deposit(5_000)
    user.transfer(prov.address, 3_000)
    user.request_refund(prov.address, 1_000)
    unlock_at = user.get_account(alice.address, prov.address).refund_unlock_at

    w3 = connect(rpc)
    number, _ = latest(w3)
    w3.provider.make_request("evm_increaseTime", [LOCK + 1])  # the clock passes the lock …
    assert w3.eth.get_block(NEXT_BLOCK)["timestamp"] > unlock_at
    after, stamped = latest(w3)
    assert after == number and stamped < unlock_at  # … and the chain's latest block still says it is locked

    result = CliRunner().invoke(deaios_main, ["compute", "refund", "collect", prov.address, "--rpc", rpc,
                                              "--deployment", str(record), "--key", alice.private_key])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["collected"], out["available"]) == (1_000, 3_000)
    assert user.get_account(alice.address, prov.address).pending_refund == 0
