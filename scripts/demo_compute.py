"""`make demo`, compute market step: a user pays for inference from the stack's provider and gets the rest
back, and the figures add up.

deposit 1 ETH → match the cheapest `deaios-echo` service (0.1 ETH reserved, the provider's broker accepts) →
3 signed chat calls → the broker settles the cumulative receipt on chain → refund request for what is left
→ the chain's clock moves past the refund lock (evm_increaseTime) → collect. Balances are shown at each
step; at the end: deposit == ledger available + charged, and the provider's earnings grew by charged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console

from deaios.compute.chain import ComputeAddresses, ComputeChain
from deaios.compute.client import ComputeClient
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key

ETHER = 10**18
DEPOSIT = ETHER
COMMIT = ETHER // 10
PROMPTS = ["What is 0G?", "Summarise the flow of a file.", "And of a compute payment?"]


def run(stack: Stack, console: Console, show: Callable[[str, dict[str, object]], None],
        user_index: int = DEV_KEY_ROLES["demo users"][0]) -> None:  # type: ignore[index]
    provider = stack.extra["compute_provider"]
    user_key = dev_key(user_index)
    chain = ComputeChain(stack.rpc, ComputeAddresses.from_mapping(stack.contracts), user_key)
    lock_time = chain.params()["lockTime"]
    address = provider["address"]

    def balances(title: str) -> dict[str, int]:
        available, reserved = chain.get_ledger(chain.address)
        acct = chain.get_account(chain.address, address)
        figures = {"ledger available": available, "ledger reserved": reserved,
                   "sub-account balance": acct.balance, "pending refund": acct.pending_refund,
                   "charged (settled)": acct.charged, "provider earnings": chain.earnings(address)}
        show(title, {k: f"{v:>22,} wei  ({v / ETHER:.6f} ETH)" for k, v in figures.items()})
        return figures

    console.rule("deaios compute: deposit → match → 3 calls → settlement → refund")
    earnings_before = chain.earnings(address)
    start = balances("before")
    chain.deposit(DEPOSIT)
    balances(f"after deposit of {DEPOSIT / ETHER} ETH")

    match = chain.request_service(model=provider["model"], deposit=COMMIT)
    deadline = time.monotonic() + 30
    status = chain.get_request(match["requestId"])
    while status["status"] == "Matched" and time.monotonic() < deadline:
        time.sleep(0.3)
        status = chain.get_request(match["requestId"])
    if status["status"] != "Accepted":
        raise click.ClickException(f"the provider did not accept request {match['requestId']}: {status}")
    show("match", {"request": match["requestId"], "provider": match["provider"], "status": status["status"],
                   "prices (wei/token in, out)": f"{match['inputPrice']}, {match['outputPrice']}"})
    balances(f"after the match ({COMMIT / ETHER} ETH moved to the provider's sub-account)")

    client = ComputeClient(chain, user_key, Path(stack.dir) / "demo" / f"receipts-{chain.address}.json")
    total = 0
    for prompt in PROMPTS:
        out = client.chat(address, [{"role": "user", "content": prompt}])
        total = out["totalFee"]
        show(f"chat: {prompt}", {"reply": out["reply"], "tokens in/out": f"{out['promptTokens']}/"
                                 f"{out['completionTokens']}", "fee (wei)": out["fee"],
                                 "signed cumulative total (wei)": total, "nonce": out["nonce"]})
    deadline = time.monotonic() + 30
    while chain.get_account(chain.address, address).charged < total and time.monotonic() < deadline:
        time.sleep(0.3)
    settled = balances("after the provider's broker settled the signed receipt")
    if settled["charged (settled)"] != total:
        raise click.ClickException(f"settled {settled['charged (settled)']} wei, signed {total}")

    chain.request_refund(address, settled["sub-account balance"])
    balances(f"after the refund request (locked for {lock_time} s)")
    chain.w3.provider.make_request("evm_increaseTime", [lock_time + 1])  # Anvil: time travel
    chain.w3.provider.make_request("evm_mine", [])
    collected = chain.collect_refund(address)
    end = balances(f"after collecting the refund ({collected} wei) once the lock passed")

    charged = end["charged (settled)"] - start["charged (settled)"]
    adds_up = (start["ledger available"] + DEPOSIT == end["ledger available"] + charged
               and end["provider earnings"] - earnings_before == charged and end["sub-account balance"] == 0)
    show("figures", {"deposited": DEPOSIT, "charged for 3 calls": charged,
                     "back in the ledger": end["ledger available"] - start["ledger available"],
                     "provider earned": end["provider earnings"] - earnings_before,
                     "deposit == returned + charged, earnings == charged": adds_up})
    if not adds_up:
        raise click.ClickException("the compute figures do not add up")
