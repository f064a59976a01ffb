"""A provider that crashes between a bill and the end of the exchange (found with the fault cases in
tests/chaos/test_compute_faults.py).

1. Right after answering, before the user's signed receipt reached it.

Before: the client raised "cannot hand the receipt to the provider" and forgot the answered request, so every
later request carried a nonce the broker had already billed (401 "stale request nonce", forever), and after
`unsigned_grace` the broker settled the request at its pre-signed maximum — the user paid more than the bill of
an answer it had. Now: the client keeps the checked, signed receipt (`ProviderState.pending_receipt`), returns
the answer (`receiptPending`), and hands the receipt over before its next request; the broker settles the
exact fees.
2. After journaling a bill, before its answer left. Before: the same request sent again was a stale nonce (401,
for good) and the bill stood for an answer the user never got. Now the broker journals the answer with the bill
and serves it again to the same signed request, billed once.
"""

from __future__ import annotations

import aiohttp
import pytest
from deaios.compute.client import ProviderUnreachable
from test_broker import (  # noqa: F401 (addresses, broker, rpc: fixtures)
    addresses,
    broker,
    rpc,
    user_client,
)


def test_a_receipt_lost_in_a_crash_is_handed_over_later(broker, rpc, addresses, alice, prov, ledger, tmp_path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client = user_client(rpc, addresses, alice, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    before = ledger.getAccount(alice.address, prov.address)
    post = aiohttp.ClientSession.post

    def provider_gone(self, url, *args, **kwargs):
        if str(url).endswith("/deaios/v1/receipts"):
            raise aiohttp.ClientConnectionError("connection refused")  # the broker died after its answer
        return post(self, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "post", provider_gone)
    first = client.chat(prov.address, [{"role": "user", "content": "answered, then the broker crashed"}])
    monkeypatch.undo()
    assert first["reply"] and first["receiptPending"]
    second = client.chat(prov.address, [{"role": "user", "content": "after the restart"}])
    assert second["nonce"] == 2 and not second["receiptPending"]
    settled = broker.tick()["settled"]
    assert [(s["status"], s["nonce"]) for s in settled] == [("SUCCESS", 2)]
    after = ledger.getAccount(alice.address, prov.address)
    assert after.charged - before.charged == first["fee"] + second["fee"] == second["totalFee"]
    assert before.balance - after.balance == first["fee"] + second["fee"]


def test_an_answer_lost_in_a_crash_is_served_again_and_billed_once(broker, rpc, addresses, alice, prov, ledger,
                                                                   tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker journaled the bill, then died before its answer left: the client resends the same request (same
    nonce) and gets the answer it is billed for; before, the broker refused it as a stale nonce, for good."""
    client = user_client(rpc, addresses, alice, tmp_path)
    client.chain.deposit(10**9)
    client.chain.transfer(prov.address, 10**8)
    before = ledger.getAccount(alice.address, prov.address)
    post = aiohttp.ClientSession.post
    question = [{"role": "user", "content": "billed, then the broker crashed before answering"}]

    class LostAnswer:
        """The request reaches the broker (it bills), the answer never comes back."""

        def __init__(self, session, url, args, kwargs):
            self.call = post(session, url, *args, **kwargs)

        async def __aenter__(self):
            async with self.call:
                pass
            raise aiohttp.ServerDisconnectedError()

        async def __aexit__(self, *exc):
            return False

    def answer_lost(self, url, *args, **kwargs):
        if str(url).endswith("/v1/chat/completions"):
            return LostAnswer(self, url, args, kwargs)
        return post(self, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "post", answer_lost)
    with pytest.raises(ProviderUnreachable):
        client.chat(prov.address, question)
    monkeypatch.undo()
    again = client.chat(prov.address, question)  # the same request, sent again
    assert again["nonce"] == 1 and again["reply"]
    nxt = client.chat(prov.address, [{"role": "user", "content": "next"}])
    assert nxt["nonce"] == 2
    broker.tick()
    after = ledger.getAccount(alice.address, prov.address)
    assert after.charged - before.charged == again["fee"] + nxt["fee"] == nxt["totalFee"]
    assert before.balance - after.balance == again["fee"] + nxt["fee"]
