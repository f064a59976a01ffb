"""A provider that crashes right after answering, before the user's signed receipt reached it (found by the fault
case in tests/chaos/test_compute_faults.py).

Before: the client raised "cannot hand the receipt to the provider" and forgot the answered request, so every
later request carried a nonce the broker had already billed (401 "stale request nonce", forever), and after
`unsigned_grace` the broker settled the request at its pre-signed maximum — the user paid more than the bill of
an answer it had. Now: the client keeps the checked, signed receipt (`ProviderState.pending_receipt`), returns
the answer (`receiptPending`), and hands the receipt over before its next request; the broker settles the
exact fees.
"""

from __future__ import annotations

import aiohttp
import pytest
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
