"""Audit (medium) — the compute provider broker could be made to serve twice for one signed request, to
serve for free, and to keep state for anyone (docs/audit.md, "Off-chain services").

* The nonce check ran before the per-user lock: two copies of one signed request sent at once were both
  served, and in TEE mode both billed (the user signed one request, was charged for two). (Since issue 13 the
  second copy gets the first one's answer again — a resend after an answer lost in a crash — billed once.)
* User-signed mode answered before the user had signed anything: a user who never signs the bill is served
  for free (the broker holds no receipt it can settle) and takes the deposit back after the refund lock.
  Fix: every request carries the user's signature of the cumulative receipt at its maximum cost (prompt ×
  input price + max_tokens × output price); the broker settles it if the exact bill is not signed in time.
* Per-user state was created before the credit check, so unfunded accounts grew the broker's state file
  without limit. Fix: state exists only for users that were billed.

The broker runs on a real socket against the compute contracts on the test chain (as test_broker.py).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from test_broker import (  # noqa: F401 (addresses, broker, rpc, tee_broker: fixtures)
    IN_PRICE, OUT_PRICE, _headers, _post, addresses, broker, max_receipt_headers, rpc, tee_broker, user_client,
)

from deaios.compute.backend import count_tokens


def _post_twice(url: str, body: bytes, headers: dict) -> list[int]:
    async def go() -> list[int]:
        async with aiohttp.ClientSession() as s:
            async def one() -> int:
                async with s.post(url + "/v1/chat/completions", data=body, headers=headers) as r:
                    await r.read()
                    return r.status
            return list(await asyncio.gather(one(), one()))
    return asyncio.run(go())


def test_one_signed_request_is_served_once(tee_broker, rpc, addresses, bob, prov, ledger, tmp_path):
    client = user_client(rpc, addresses, bob, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    client.chain.acknowledge_signer(prov.address, client.chain.service(prov.address).signer)
    body = json.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "once only"}],
                       "max_tokens": 16}).encode()
    statuses = _post_twice(tee_broker.broker.url, body, _headers(client, prov.address, body, 1))
    # the second copy gets the answer already billed (as a resend after an answer lost in a crash), not a new one
    assert statuses == [200, 200]
    assert tee_broker.broker.state.users[client.user].nonce == 1
    settled = tee_broker.tick()["settled"]
    fee = 2 * IN_PRICE + count_tokens("echo: once only") * OUT_PRICE
    assert [(s["status"], s["paid"]) for s in settled] == [("SUCCESS", fee)]


def test_a_user_who_never_signs_still_pays(broker, rpc, addresses, alice, prov, ledger, tmp_path):
    client = user_client(rpc, addresses, alice, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    broker.broker.config.unsigned_grace = 0.0  # settle a pre-signed maximum at once (default: after a grace)
    body = json.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "free lunch"}],
                       "max_tokens": 8}).encode()
    status, out = _post(broker.broker.url, body, _headers(client, prov.address, body, 1))
    assert status == 402 and "receipt" in out["error"]["message"]  # no pre-signed maximum: not served
    max_total = 2 * IN_PRICE + 8 * OUT_PRICE
    headers = {**_headers(client, prov.address, body, 1), **max_receipt_headers(client, prov.address, body, 1,
                                                                                max_total)}
    status, out = _post(broker.broker.url, body, headers)
    assert status == 200 and out["x_deaios"]["fee"] <= max_total
    # the user never signs the exact bill; the broker settles the maximum the user pre-signed
    settled = broker.tick()["settled"]
    assert [(s["status"], s["paid"]) for s in settled] == [("SUCCESS", max_total)]
    assert ledger.getAccount(alice.address, prov.address).charged == max_total


def test_unfunded_users_leave_no_state(broker, rpc, addresses, outsider, prov, tmp_path):
    client = user_client(rpc, addresses, outsider, tmp_path)
    body = json.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4}).encode()
    headers = {**_headers(client, prov.address, body, 1),
               **max_receipt_headers(client, prov.address, body, 1, IN_PRICE + 4 * OUT_PRICE)}
    status, _ = _post(broker.broker.url, body, headers)
    assert status == 402
    assert client.user not in broker.broker.state.users
