"""Audit H5 — `da_retrieve` with duplicate columns, and the DA node's other bad-input findings (docs/audit.md,
"Off-chain services"): log flooding and oversized bodies.

* H5: `da_retrieve(root, epoch, quorum, [c] * N)` made the node read and keep column c N times (a 10 MB body
  of duplicates exhausts its memory). Fix: column lists are deduplicated and range-checked (0..127).
* Log flooding: a non-integer epoch (`"x"`) raised ValueError inside the handler, which was logged with its
  full traceback as an internal error; one batch of such calls wrote megabytes of log. Fix: ValueError,
  TypeError and OverflowError are invalid params (-32602), integers are checked at parse time, and client
  errors are never logged with a traceback.
* Oversized bodies: the node read bodies up to 256 MiB although the largest legitimate request (`da_sign`
  with 128 columns) is ≈ 17 MB. Fix: per-method body limits (docs/limits.md).
* Unbounded replies and blind SSRF: signer sockets come from chain state that any staked signer sets, and
  the disperser POSTed to whatever URL a socket named and read replies of any size. Fix: a socket must be
  `host:port` (loopback and link-local only when the chain itself is local), replies are read up to a cap.

The six `deaios da node` processes of this folder's DA network (conftest.py), plus malicious signers
registered on chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from aiohttp import web
from da_network_helpers import put_blob
from eth_account import Account

from deaios.da import bls
from deaios.da.chain import DAChain

DUPLICATES = 20_000


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def call(url: str, method: str, *params: object, timeout: float = 120) -> dict:
    return requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                         timeout=timeout).json()


@pytest.fixture(scope="module")
def blob(net, client):
    ref, node, column = put_blob(net, client, 300_000)
    return {"ref": ref, "node": node, "column": column}


def test_duplicate_columns_are_read_once(blob) -> None:
    node, ref, column = blob["node"], blob["ref"], blob["column"]
    root = "0x" + ref.data_root.hex()
    before = peak_rss(node.proc.pid)
    reply = call(node.url, "da_retrieve", root, ref.epoch, ref.quorum_id, [column] * DUPLICATES)
    grown = peak_rss(node.proc.pid) - before
    assert grown < 40 << 20, f"peak memory grew by {grown >> 20} MiB for one request"
    assert list(reply.get("result", {}).get("columns", [str(column)])) == [str(column)]  # (or refused: too large)
    reply = call(node.url, "da_retrieve", root, ref.epoch, ref.quorum_id, [column] * 2000)  # within the body limit
    assert list(reply["result"]["columns"]) == [str(column)]  # read once
    for bad in ([-1], [128], ["x"], [True], [column, 1.5]):
        assert call(node.url, "da_retrieve", root, ref.epoch, ref.quorum_id, bad)["error"]["code"] == -32602, bad
    assert call(node.url, "da_status")["result"]["ready"]


def test_bad_integers_are_invalid_params_without_tracebacks(blob) -> None:
    node, ref = blob["node"], blob["ref"]
    root = "0x" + ref.data_root.hex()
    log_before = node.log.stat().st_size
    batch = [{"jsonrpc": "2.0", "id": i, "method": "da_retrieve", "params": [root, epoch, 0, [0]]}
             for i, epoch in enumerate(["x", 2**70, -1, None, [1], 1.5] * 10)]
    answers = requests.post(node.url, json=batch, timeout=60).json()
    assert [a["error"]["code"] for a in answers] == [-32602] * len(batch)
    grown = node.log.stat().st_size - log_before
    assert "Traceback" not in node.log.read_text()[log_before:] and grown < 20_000, grown


def test_a_50_mb_body_is_refused(net) -> None:
    node = net["nodes"][1]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "da_status", "params": [],
                       "padding": "x" * (50 << 20)}).encode()
    reply = requests.post(node.url, data=body, headers={"content-type": "application/json"}, timeout=120)
    assert reply.status_code == 413 or reply.json()["error"]["code"] == -32600
    assert call(node.url, "da_status")["result"]["ready"]


class EvilSigner:
    """An HTTP server standing in for malicious DA signers: it records every request's path and answers each
    with a 64 MiB JSON reply, counting the bytes the client actually took."""

    REPLY = 64 << 20

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.sent = 0
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            self.paths.append(request.path)
            await request.read()
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = self.REPLY
            await response.prepare(request)
            head = b'{"jsonrpc":"2.0","id":1,"result":{"signature":["0x1","0x2"],"pad":"'
            chunk = b"x" * (1 << 20)
            try:
                await response.write(head)
                for _ in range(self.REPLY // len(chunk) - 1):
                    await response.write(chunk)
                    self.sent += len(chunk)
                await response.write(b"x" * (len(chunk) - len(head) - 3) + b'"}}')
            except (ConnectionError, RuntimeError):
                pass
            return response

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        assert started.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_signer_sockets_cannot_make_the_disperser_post_anywhere(net, client) -> None:
    registry, chain = net["registry"], net["chain"]
    evil = EvilSigner()
    try:
        sockets = {f"127.0.0.1:{evil.port}": Account.create(),  # a valid host:port on a local stack: replies capped
                   f"http://127.0.0.1:{evil.port}/steal": Account.create()}  # a URL, not host:port: never contacted
        stake = chain.params()["tokensPerVote"]
        for socket, account in sockets.items():
            net["owner"].transfer(account.address, stake + 10**18)  # the stake of one vote, and gas
            signer = DAChain(net["rpc"], net["deployment"]["da_entrance"], "0x" + account.key.hex().removeprefix("0x"))
            key = bls.BLSKey.generate()
            signer.register_signer(key, socket, stake)
            signer.register_next_epoch(key)
        epoch = chain.epoch_number()
        for node in net["nodes"]:  # the honest nodes register for every next epoch on their own
            deadline = time.monotonic() + 30
            while not chain.registered_epoch(node.address, epoch + 1):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        registry.forceMakeEpoch(sender=net["owner"])
        data = os.urandom(20_000)
        result = asyncio.run(client.put(data))  # the six nodes hold 6 of 8 votes: enough rows
        assert result.signers == len(net["nodes"])
        assert "/steal" not in evil.paths
        assert evil.sent < 16 << 20, f"the disperser read {evil.sent >> 20} MiB from one signer"
        assert asyncio.run(client.get(result.ref)) == data
    finally:
        evil.stop()
        epoch = chain.epoch_number()  # the next epoch without the malicious signers (they do not register)
        for node in net["nodes"]:
            deadline = time.monotonic() + 30
            while not chain.registered_epoch(node.address, epoch + 1) and time.monotonic() < deadline:
                time.sleep(0.2)
        registry.forceMakeEpoch(sender=net["owner"])
