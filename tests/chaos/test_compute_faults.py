"""The compute provider's broker SIGKILLed between calls and their settlement, on a real stack (`deaios up
--nodes 1`): a user funds a sub-account with the stack's provider and makes signed chat calls
(`deaios.compute.client.ComputeClient`, what `deaios compute chat` runs) while the broker is killed

* right after answering calls, before its settlement tick;
* after answering a call but before the user's signed receipt reached it (the receipt is handed over later);
* at random moments while calls stream in (calls that got no answer are sent again after the restart);

and restarted from its directory (`deaios.compute.launch.relaunch`). From the money's point of view, once the
restarted broker has settled: the user's sub-account went down by exactly the sum of the fees of the calls it
got answers for (nothing billed twice, nothing unbilled), the ledger's `charged` says the same, and the
provider may withdraw exactly that sum.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from fault_case_helpers import WallTime, wait_for

from deaios.compute import launch
from deaios.compute.chain import ComputeAddresses, ComputeChain
from deaios.compute.client import ComputeClient, ProviderUnreachable
from deaios.stack.config import DEV_KEY_ROLES, dev_key
from deaios.stack.process import RunningStack, running_stack

ETHER = 10**18
USER_KEY = dev_key(DEV_KEY_ROLES["demo users"][1])  # type: ignore[index]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("chaos-compute")
    with running_stack(base / "data", nodes=1, home=base / "home", args=("--da-nodes", "0")) as running:
        yield running


class Market:
    """The user's side, the provider's address, and the money figures read from the chain."""

    def __init__(self, run: RunningStack, tmp: Path) -> None:
        self.run = run
        self.chain = ComputeChain(run.stack.rpc, ComputeAddresses.from_mapping(run.stack.contracts), USER_KEY)
        self.provider = run.stack.extra["compute_provider"]["address"]
        self.client = ComputeClient(self.chain, USER_KEY, tmp / "receipts.json", timeout=30)
        self.fees: list[int] = []  # fees of the calls the user got answers for

    def money(self) -> dict[str, int]:
        account = self.chain.get_account(self.chain.address, self.provider)
        return {"balance": account.balance, "charged": account.charged,
                "earnings": self.chain.earnings(self.provider)}

    def call(self, text: str) -> dict:
        out = self.client.chat(self.provider, [{"role": "user", "content": text}], max_tokens=64)
        self.fees.append(out["fee"])
        return out

    def call_until_answered(self, text: str, deadline: float) -> dict:
        """A call; sent again (same nonce) while the provider is down, as a user would."""
        while True:
            try:
                return self.call(text)
            except ProviderUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def kill(self) -> None:
        launch.kill(self.run.stack)  # SIGKILL: a crash

    def restart(self) -> None:
        launch.relaunch(self.run.stack)
        entry = self.run.stack.extra["compute_provider"]
        deployment = Path(self.run.stack.extra.get("deployment") or Path(self.run.stack.dir) / "deployments"
                          / "local.json")
        wait_for(lambda: launch.ready(entry["url"], self.run.stack.rpc, deployment, entry["address"]),
                 "the provider broker back")

    def settled(self, start: dict[str, int]) -> dict[str, int]:
        """Wait until the broker settled every answered call; the money figures then."""
        want = start["charged"] + sum(self.fees)
        wait_for(lambda: self.money()["charged"] >= want, f"settlement of {sum(self.fees)} wei", timeout=120)
        time.sleep(5)  # two more settlement ticks: nothing more may be charged
        return self.money()


@pytest.fixture(scope="module")
def market(run: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Market:
    m = Market(run, tmp_path_factory.mktemp("compute-user"))
    m.chain.deposit(ETHER)
    m.chain.transfer(m.provider, ETHER // 10)
    return m


def assert_money_exact(market: Market, start: dict[str, int], end: dict[str, int]) -> None:
    spent = sum(market.fees)
    assert spent > 0
    assert start["balance"] - end["balance"] == spent, (start, end, market.fees)  # the user paid exactly its calls
    assert end["charged"] - start["charged"] == spent
    assert end["earnings"] - start["earnings"] == spent  # what the provider may withdraw
    assert market.client.spent(market.provider)["totalFee"] == end["charged"]  # what the user signed for


def test_killed_between_calls_and_settlement(run: RunningStack, market: Market) -> None:
    timer = WallTime("compute: broker SIGKILLed after answering, before settling")
    market.fees.clear()
    start = market.money()
    for i in range(3):
        market.call(f"question {i}: what is 0G?")
    market.kill()
    unsettled = sum(market.fees) - (market.money()["charged"] - start["charged"])
    market.restart()
    end = market.settled(start)
    assert_money_exact(market, start, end)
    print(f"\n[chaos] unsettled when killed: {unsettled} of {sum(market.fees)} wei")
    timer.done()


def test_killed_before_the_signed_receipt_arrived(run: RunningStack, market: Market,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    timer = WallTime("compute: broker SIGKILLed after answering, before the user's receipt arrived")
    market.fees.clear()
    start = market.money()
    market.call("before the crash")
    post = aiohttp.ClientSession.post

    def crash_before_receipt(self, url, *args, **kwargs):  # the broker dies right after its answer
        if str(url).endswith("/deaios/v1/receipts"):
            market.kill()
        return post(self, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "post", crash_before_receipt)
    out = market.call("answered, then the broker crashed")
    monkeypatch.undo()
    assert out["reply"] and out["receiptPending"]
    market.restart()
    market.call_until_answered("after the restart", time.monotonic() + 60)
    end = market.settled(start)
    assert_money_exact(market, start, end)
    timer.done()


def test_killed_at_random_while_calls_stream_in(run: RunningStack, market: Market) -> None:
    timer = WallTime("compute: broker SIGKILLed 3 times at random during 15 calls")
    market.fees.clear()
    start = market.money()
    done = threading.Event()
    kills = []

    def killer() -> None:
        rng = random.Random()
        for _ in range(3):
            if done.wait(rng.uniform(0.5, 4.0)):
                return
            market.kill()
            kills.append(time.monotonic())
            market.restart()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        for i in range(15):
            market.call_until_answered(f"call {i} of the stream", time.monotonic() + 120)
    finally:
        done.set()
        thread.join()
    end = market.settled(start)
    assert_money_exact(market, start, end)
    assert len(market.fees) == 15
    print(f"\n[chaos] {len(kills)} kills during the stream")
    timer.done()
