"""The INFT re-encryption oracle SIGKILLed in the middle of a sale's re-encryption, on a real stack (`deaios up
--nodes 3`), driven through the `deaios` CLI as a seller and a buyer run it:

creator/seller mints an agent and lists it → the buyer pays into the market's escrow and signs access proofs →
the seller asks the oracle for the transfer proofs (`deaios inft proofs`) and the oracle is SIGKILLed as soon
as it has paid for the re-encrypted file (its upload under way, no proof signed yet) → the seller's command
fails with a clear error, nothing has moved: the token, its data hash, the escrow, nobody's credits; a settle
with proofs the oracle did not sign is refused → the oracle restarts (`deaios.inft.launch.relaunch`), the seller
asks again, the purchase settles → the buyer decrypts the agent byte-exact. Money: the buyer's balance went
down by exactly the price plus the gas of its own transactions, the seller (also the creator: proceeds +
royalty) withdraws exactly the price, the market holds nothing of this sale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_case_helpers import WallTime, wait_for
from web3 import Web3

from deaios.inft import launch
from deaios.inft.chain import InftAddresses, InftChain
from deaios.inft.proofs import AccessProof, OwnershipProof
from deaios.market.chain import MarketAddresses, MarketChain
from deaios.stack.config import DEV_KEY_ROLES, dev_address, dev_key
from deaios.stack.process import RunningStack, deaios, running_stack, stack_env

SELLER_KEY = dev_key(DEV_KEY_ROLES["demo users"][2])  # type: ignore[index]
BUYER_KEY = dev_key(DEV_KEY_ROLES["demo users"][3])  # type: ignore[index]
ORACLE = dev_address(DEV_KEY_ROLES["INFT oracle"])  # type: ignore[arg-type]
PRICE = 10**18


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("chaos-inft")
    with running_stack(base / "data", nodes=3, home=base / "home", args=("--da-nodes", "0")) as running:
        yield running


def cli(run: RunningStack, area: str, key: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """`deaios AREA --stack DATA --key KEY ARGS…` as a subprocess (asserts exit code 0 when `ok`)."""
    done = deaios(area, "--stack", str(run.stack.path), "--key", key, *args, home=run.home, timeout=300)
    if ok:
        assert done.returncode == 0, f"deaios {area} {' '.join(args)}: {done.returncode}\n{done.stderr[-3000:]}"
    return done


def last_json(done: subprocess.CompletedProcess) -> object:
    return json.loads(done.stdout.strip().splitlines()[-1])


def gas_paid(w3: Web3, account: str, first_block: int) -> int:
    """Wei `account` paid in gas for its transactions from `first_block` on."""
    paid = 0
    for number in range(first_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == account:
                receipt = w3.eth.get_transaction_receipt(tx["hash"])
                paid += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return paid


def test_oracle_killed_mid_reencryption_then_the_sale_is_retried(run: RunningStack, tmp_path: Path) -> None:
    timer = WallTime("INFT: oracle SIGKILLed mid re-encryption, sale retried")
    stack = run.stack
    w3 = Web3(Web3.HTTPProvider(stack.rpc))
    nft = InftChain(stack.rpc, InftAddresses.from_mapping(stack.contracts))
    market = MarketChain(stack.rpc, MarketAddresses.from_mapping(stack.contracts))
    seller, buyer = w3.eth.account.from_key(SELLER_KEY).address, w3.eth.account.from_key(BUYER_KEY).address

    source = tmp_path / "agent.json"
    source.write_bytes(json.dumps({"name": "chaos-agent", "weights": os.urandom(200_000).hex()}).encode())
    minted = last_json(cli(run, "inft", SELLER_KEY, "mint", str(source), "--description", "chaos"))
    token = minted["tokenId"]
    old_hash = nft.datas(token)[0].data_hash
    listing = last_json(cli(run, "market", SELLER_KEY, "sell", str(token), str(PRICE)))

    first_block = w3.eth.block_number + 1
    buyer_before, escrow_before = w3.eth.get_balance(buyer), w3.eth.get_balance(market.addresses.agent_market)
    seller_credits = market.credits(seller)
    purchase = last_json(cli(run, "market", BUYER_KEY, "buy", str(listing["listing"])))
    access = tmp_path / "access.json"
    cli(run, "inft", BUYER_KEY, "access-proof", str(token), "-o", str(access))

    # the seller asks for the proofs; the oracle dies once it has paid for the re-encrypted file
    proofs = tmp_path / "proofs.json"
    oracle_nonce = w3.eth.get_transaction_count(ORACLE, "pending")
    asking = subprocess.Popen([sys.executable, "-m", "deaios.cli", "inft", "--stack", str(stack.path), "--key",
                               SELLER_KEY, "proofs", str(token), "--access-proof", str(access), "-o", str(proofs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=stack_env(run.home))
    deadline = time.monotonic() + 180
    while w3.eth.get_transaction_count(ORACLE, "pending") == oracle_nonce:
        assert asking.poll() is None, f"the proofs came before the oracle paid for an upload: {asking.stderr}"
        assert time.monotonic() < deadline, "the oracle never started the upload"
        time.sleep(0.01)
    launch.kill(stack)
    out, err = asking.communicate(timeout=120)
    assert asking.returncode == 2 and err.startswith("error:"), (asking.returncode, err[-2000:])
    assert not proofs.exists()

    # nothing moved
    assert nft.owner_of(token) == seller and nft.datas(token)[0].data_hash == old_hash
    assert market.purchase(purchase["id"]).status == purchase["status"]
    assert market.credits(seller) == seller_credits and market.credits(buyer) == 0
    assert w3.eth.get_balance(market.addresses.agent_market) == escrow_before + PRICE
    # proofs the oracle did not sign (the seller forges them) do not move the token
    doc = json.loads(access.read_text())
    access_proof = AccessProof.from_json(doc["accessProofs"][0])
    ctx = nft.context(token, seller, buyer)
    forged = OwnershipProof.create(SELLER_KEY, ctx, old_hash, os.urandom(32), os.urandom(80),
                                   access_proof.target_pubkey)
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps([{"accessProof": access_proof.to_json(), "ownershipProof": forged.to_json()}]))
    refused = cli(run, "market", SELLER_KEY, "settle", str(purchase["id"]), "--proofs", str(forged_file), ok=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error:"), refused.stderr[-2000:]
    assert nft.owner_of(token) == seller

    # the oracle restarts; the seller asks again; the purchase settles
    launch.relaunch(stack)
    wait_for(lambda: launch.ready(stack.extra["inft_oracle"]), "the oracle back")
    cli(run, "inft", SELLER_KEY, "proofs", str(token), "--access-proof", str(access), "-o", str(proofs))
    settled = last_json(cli(run, "market", SELLER_KEY, "settle", str(purchase["id"]), "--proofs", str(proofs)))
    assert settled["sellerProceeds"] + settled["royalty"] == PRICE
    assert nft.owner_of(token) == buyer and nft.datas(token)[0].data_hash != old_hash
    shown = last_json(cli(run, "inft", BUYER_KEY, "show", str(token), "--decrypt", "-o", str(tmp_path / "bought")))
    assert Path(shown["files"][0]).read_bytes() == source.read_bytes()

    # money: the seller (also the creator) may withdraw exactly the price; the buyer paid the price and its gas
    assert market.credits(seller) - seller_credits == PRICE and market.credits(buyer) == 0
    seller_block = w3.eth.block_number + 1
    seller_before = w3.eth.get_balance(seller)
    withdrawn = last_json(cli(run, "market", SELLER_KEY, "withdraw"))
    assert withdrawn["withdrawn"] == seller_credits + PRICE
    assert w3.eth.get_balance(seller) == seller_before + seller_credits + PRICE - gas_paid(w3, seller, seller_block)
    assert buyer_before - w3.eth.get_balance(buyer) == PRICE + gas_paid(w3, buyer, first_block)
    assert w3.eth.get_balance(market.addresses.agent_market) == escrow_before
    timer.done()
