"""Provider broker + user client against the real contracts: signed requests, metering, receipts (user- and
TEE-signed), balance checks, auto-accepted matches, settlement; the `deaios compute` CLI; ABI freshness."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
import pytest
from click.testing import CliRunner
from deaios.cli import main as deaios_main
from deaios.compute.backend import count_tokens
from deaios.compute.broker import Broker, BrokerConfig
from deaios.compute.chain import ComputeAddresses, ComputeChain, load_abis
from deaios.compute.client import BillingError, ComputeClient
from deaios.compute.receipts import (
    ZERO32,
    SignerKind,
    next_requests_hash,
    request_digest,
    sign_digest,
    sign_receipt,
)
from eth_utils import keccak

IN_PRICE, OUT_PRICE = 1_000, 3_000
TEE_KEY = "0x" + keccak(text="broker test tee").hex()


class RunningBroker:
    """A broker serving from a background thread's event loop; `tick()` runs its background work now."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)

            async def start() -> None:
                self.runner = aiohttp.web.AppRunner(broker.app(), access_log=None)
                await self.runner.setup()
                site = aiohttp.web.TCPSite(self.runner, "127.0.0.1", 0)
                await site.start()
                broker.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
                ready.set()

            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def tick(self) -> dict:
        return asyncio.run_coroutine_threadsafe(self.broker.tick(), self.loop).result(60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def addresses(deployment):
    return ComputeAddresses.from_mapping(deployment)


@pytest.fixture
def rpc(chain):
    return chain.provider.web3.provider.endpoint_uri


def start_broker(rpc, addresses, prov, tmp_path, settlement="user"):
    config = BrokerConfig(
        rpc=rpc,
        provider_key=prov.private_key,
        data_dir=tmp_path / "broker",
        model="echo-1",
        input_price=IN_PRICE,
        output_price=OUT_PRICE,
        settlement=settlement,
        signer_key=TEE_KEY if settlement == "tee" else None,
        settle_interval=3600,
    )
    running = RunningBroker(Broker(config, ComputeChain(rpc, addresses, prov.private_key)))
    running.broker.register()
    return running


@pytest.fixture
def broker(rpc, addresses, prov, tmp_path):
    running = start_broker(rpc, addresses, prov, tmp_path)
    yield running
    running.stop()


@pytest.fixture
def tee_broker(rpc, addresses, prov, tmp_path):
    running = start_broker(rpc, addresses, prov, tmp_path, settlement="tee")
    yield running
    running.stop()


def user_client(rpc, addresses, user, tmp_path) -> ComputeClient:
    return ComputeClient(
        ComputeChain(rpc, addresses, user.private_key),
        user.private_key,
        tmp_path / f"client-{user.address}.json",
    )


def test_abi_file_is_current(project):
    abis = load_abis()
    for name in ("ComputeLedger", "ServiceRegistry", "ComputeMatcher", "FineTuningServing"):
        compiled = [
            a.model_dump(mode="json", by_alias=True, exclude_none=True)
            for a in getattr(project, name).contract_type.abi
        ]
        assert sorted(json.dumps(x, sort_keys=True) for x in abis[name]) == sorted(
            json.dumps(x, sort_keys=True) for x in compiled
        ), f"stale abi.json for {name}: python -m deaios.abi"


def test_user_signed_flow(broker, rpc, addresses, alice, prov, ledger, tmp_path):
    """deposit -> match (auto-accepted) -> 3 calls (bills checked, receipts signed) -> settlement."""
    client = user_client(rpc, addresses, alice, tmp_path)
    service = client.chain.service(prov.address)
    assert (service.model, service.url, service.input_price, service.output_price, service.verifiability) == (
        "echo-1",
        broker.broker.url,
        IN_PRICE,
        OUT_PRICE,
        "user-signed",
    )
    client.chain.deposit(10**9)
    match = client.chain.request_service(model="echo-1", deposit=10**8)
    assert match["provider"] == prov.address
    assert broker.tick()["accepted"] == [match["requestId"]]
    assert client.chain.get_request(match["requestId"])["status"] == "Accepted"

    total = 0
    for i, text in enumerate(["hello there", "how are you today", "bye"]):
        out = client.chat(prov.address, [{"role": "user", "content": text}])
        assert out["reply"] == f"echo: {text}"
        expected = count_tokens(text) * IN_PRICE + count_tokens(out["reply"]) * OUT_PRICE
        total += expected
        assert (out["fee"], out["totalFee"], out["nonce"]) == (expected, total, i + 1)
    assert ledger.getAccount(alice.address, prov.address).charged == 0  # nothing settled yet
    settled = broker.tick()["settled"]
    assert [(s["status"], s["paid"], s["nonce"]) for s in settled] == [("SUCCESS", total, 3)]
    acct = ledger.getAccount(alice.address, prov.address)
    assert (acct.charged, acct.nonce, acct.balance) == (total, 3, 10**8 - total)
    assert ledger.earnings(prov.address) == total
    assert broker.tick()["settled"] == []  # nothing new to settle
    b = client.balances([prov.address])
    assert b["accounts"][prov.address]["unsettled"] == 0
    assert b["accounts"][prov.address]["signedTotal"] == total


def test_tee_flow_needs_acknowledgement(tee_broker, rpc, addresses, bob, prov, ledger, tmp_path):
    client = user_client(rpc, addresses, bob, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    with pytest.raises(BillingError, match="acknowledge this provider's signer"):
        client.chat(prov.address, [{"role": "user", "content": "hi"}])
    signer = client.chain.service(prov.address).signer
    client.chain.acknowledge_signer(prov.address, signer)
    out = client.chat(prov.address, [{"role": "user", "content": "hi"}])
    out2 = client.chat(prov.address, [{"role": "user", "content": "once more"}])
    settled = tee_broker.tick()["settled"]
    assert [(s["status"], s["paid"]) for s in settled] == [("SUCCESS", out["fee"] + out2["fee"])]
    assert ledger.getAccount(bob.address, prov.address).charged == out2["totalFee"]


def _post(url, body: bytes, headers: dict) -> tuple[int, dict]:
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v1/chat/completions", data=body, headers=headers) as r:
                return r.status, await r.json(content_type=None)

    return asyncio.run(go())


def _headers(client, provider, body, nonce, key=None):
    sig = sign_digest(
        key or client.key,
        request_digest(
            client.chain.chain_id, client.chain.addresses.ledger, client.user, provider, nonce, keccak(body)
        ),
    )
    return {
        "X-Deaios-User": client.user,
        "X-Deaios-Nonce": str(nonce),
        "X-Deaios-Signature": "0x" + sig.hex(),
        "Content-Type": "application/json",
    }


def max_receipt_headers(client, provider: str, body: bytes, nonce: int, max_total: int,
                        previous_hash: bytes = bytes(32)) -> dict:
    """The receipt at a request's maximum cost, pre-signed as `ComputeClient` sends it (user-signed mode)."""
    requests_hash = next_requests_hash(previous_hash, keccak(body), ZERO32)
    receipt = sign_receipt(client.key, client.chain.chain_id, client.chain.addresses.ledger, client.user, provider,
                           nonce, max_total, requests_hash, SignerKind.USER)
    return {"X-Deaios-Max-Total": str(max_total), "X-Deaios-Receipt-Signature": "0x" + receipt.signature.hex()}


def test_broker_rejections(broker, rpc, addresses, alice, bob, prov, tmp_path):
    client = user_client(rpc, addresses, alice, tmp_path)
    url = broker.broker.url
    body = json.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "x y z"}],
                       "max_tokens": 8}).encode()
    max_total = 3 * IN_PRICE + 8 * OUT_PRICE
    presigned = max_receipt_headers(client, prov.address, body, 1, max_total)
    status, out = _post(url, body, {"Content-Type": "application/json"})
    assert status == 401 and "headers" in out["error"]["message"]
    status, out = _post(url, body, _headers(client, prov.address, body, 1, key=bob.private_key))
    assert status == 401 and "signature" in out["error"]["message"]
    status, out = _post(url, body, _headers(client, prov.address, body, 5))
    assert status == 401 and out["error"]["expected_nonce"] == 1
    status, out = _post(url, body, {**_headers(client, prov.address, body, 1), **presigned})
    assert status == 402 and "insufficient balance" in out["error"]["message"]  # no sub-account yet
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**6)
    status, out = _post(url, body, _headers(client, prov.address, body, 1))
    assert status == 402 and "maximum cost" in out["error"]["message"]  # no pre-signed maximum
    status, out = _post(url, body, {**_headers(client, prov.address, body, 1),
                                    **max_receipt_headers(client, prov.address, body, 1, max_total - 1)})
    assert status == 409 and "does not cover" in out["error"]["message"]
    status, out = _post(url, body, {**_headers(client, prov.address, body, 1),
                                    **max_receipt_headers(client, prov.address, body, 1, max_total, b"\1" * 32)})
    assert status == 401 and "pre-signed" in out["error"]["message"]  # signed over another history
    status, out = _post(url, body, {**_headers(client, prov.address, body, 1), **presigned})
    assert status == 200 and out["x_deaios"]["nonce"] == 1
    # the bill of request 1 was never signed: request 2 is refused until it is
    status, out = _post(url, body, _headers(client, prov.address, body, 2))
    assert status == 402 and out["error"]["unsigned"]["nonce"] == 1
    # the broker will not serve beyond the balance: 10**6 covers few requests at these prices
    big = json.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "w " * 2000}],
                      "max_tokens": 8}).encode()
    other = user_client(rpc, addresses, bob, tmp_path)
    other.chain.deposit(10**9)
    other.chain.transfer(prov.address, 10**6)
    status, out = _post(url, big, {**_headers(other, prov.address, big, 1),
                                   **max_receipt_headers(other, prov.address, big, 1, 2000 * IN_PRICE + 8 * OUT_PRICE)})
    assert status == 402
    wrong_model = json.dumps({"model": "gpt-9", "messages": []}).encode()
    status, _ = _post(url, wrong_model, _headers(other, prov.address, wrong_model, 1))
    assert status == 404


def test_client_refuses_a_wrong_bill(broker, rpc, addresses, alice, prov, tmp_path, monkeypatch):
    """A broker billing above the registered prices gets no signature."""
    client = user_client(rpc, addresses, alice, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    # overcharging: the broker bills above the prices in effect on chain
    monkeypatch.setattr(broker.broker.chain, "prices", lambda provider: (IN_PRICE, OUT_PRICE + 1))
    with pytest.raises(BillingError, match="does not match|does not cover"):  # its bill, or its own maximum
        client.chat(prov.address, [{"role": "user", "content": "hello"}])
    assert client.spent(prov.address)["totalFee"] == 0
    assert broker.tick()["settled"] == []


def test_cli(deployment, rpc, alice, prov, tmp_path, broker):
    dep = tmp_path / "local-compute.json"
    dep.write_text(json.dumps(deployment))
    base = ["compute", "--rpc", rpc, "--deployment", str(dep), "--key", alice.private_key]
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(deaios_main, [*base, *args])
        return (
            result.exit_code,
            [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")],
            result.output,
        )

    code, out, _ = run("deposit", "0.001ether")
    assert code == 0 and out[0]["available"] == 10**15
    code, out, _ = run("services")
    assert code == 0 and out[0]["provider"] == prov.address and out[0]["model"] == "echo-1"
    code, out, _ = run("match", "--model", "echo-1", "--deposit", "100000000000")
    assert code == 0 and out[0]["provider"] == prov.address
    broker.tick()
    code, out, _ = run("chat", prov.address, "hello world", "--state-file", str(tmp_path / "s.json"))
    assert code == 0 and out[0]["reply"] == "echo: hello world"
    code, out, _ = run("balance", "--provider", prov.address, "--state-file", str(tmp_path / "s.json"))
    acct = out[0]["accounts"][prov.address]
    assert code == 0 and acct["balance"] == 10**11 and acct["unsettled"] == acct["signedTotal"] > 0
    code, out, _ = run("refund", "request", prov.address, "1000")
    assert code == 0 and out[0]["pendingRefund"] == 1000
    code, _, text = run("refund", "collect", prov.address)
    assert code == 2 and "RefundLocked" in text
    code, _, text = run("deposit", "lots")
    assert code == 2 and "not an amount" in text
    code, _, text = run("transfer", "0x1234", "1")
    assert code == 2 and "address" in text
    code, _, text = run("withdraw", "1000ether")
    assert code == 2 and "InsufficientAvailable" in text
