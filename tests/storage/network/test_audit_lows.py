"""Audit, low findings of the off-chain services (docs/audit.md, "Off-chain services"):

* L1 — the compute provider's and INFT oracle's keys were on their command lines (readable in /proc by any
  local user); now they come from the environment, as the DA nodes' always did.
* L2 — a DA node's BLS key was derived from its Ethereum key; now each node has its own (DIR/bls.key).
* L3 — `deaios up --host` exposed Anvil's public dev keys without a word; now it warns.
* L4 — the storage client took the file size from the first node that answered; one lying node could
  truncate or extend a download. Now the size is the caller's (from the chain) or the one k nodes agree on.
* L5 — the indexer asked every storage node about a file on every `indexer_getFileLocations` call.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import requests
from aiohttp import web
from stack_harness import stack_env, upload

from deaios.da import bls
from deaios.da.chain import DAChain
from deaios.stack.config import DEV_ACCOUNTS, Stack, dev_key
from deaios.stack.launcher import free_ports, service_pids
from deaios.stack.process import project_root
from deaios.storage.client import StorageClient


class FakeNodes:
    """Storage-node stand-ins on real sockets: they answer zgs_getStatus, report file sizes as told
    (`sizes`: root -> size; None: unknown), refuse the share API, and count the calls they get per method."""

    def __init__(self, count: int, sizes: dict[str, int] | None = None) -> None:
        self.sizes = sizes or {}
        self.calls: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.ports = free_ports("127.0.0.1", count)
        started = threading.Event()

        async def rpc(request: web.Request) -> web.Response:
            call = await request.json()
            self.calls[call["method"]] += 1
            result: object = None
            if call["method"] == "zgs_getStatus":
                result = {"logSyncHeight": 1}
            elif call["method"] == "zgs_getFileInfo" and call["params"][0] in self.sizes:
                result = {"tx": {"size": self.sizes[call["params"][0]], "seq": 0}, "finalized": True}
            return web.json_response({"jsonrpc": "2.0", "id": call.get("id"), "result": result})

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/", rpc)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            for port in self.ports:
                await web.TCPSite(self.runner, "127.0.0.1", port).start()
            started.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                         daemon=True).start()
        assert started.wait(10)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_l1_no_key_on_any_command_line(stack_run) -> None:
    stack = Stack.load(stack_run.dir / "stack.json")
    keys = {dev_key(i).removeprefix("0x").lower() for i in range(DEV_ACCOUNTS)}
    for name, pid in service_pids(stack).items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").lower()
        except OSError:
            continue
        assert not any(key in cmdline for key in keys), f"{name} (pid {pid}) has a key on its command line"


def test_l2_da_nodes_have_their_own_bls_keys(stack: Stack) -> None:
    chain = DAChain(stack.rpc, stack.contracts["da_entrance"])
    for node in stack.extra["da_nodes"]:
        derived = bls.BLSKey.generate(b"da-node-bls" + bytes.fromhex(dev_key(node["key_index"])[2:]))
        registered = chain.signer_infos([node["address"]])[0].pk_g1
        assert registered != derived.pk_g1, node["name"]
        assert bls.BLSKey.from_secret(int((Path(node["dir"]) / "bls.key").read_text(), 16)).pk_g1 == registered
        assert (Path(node["dir"]) / "bls.key").stat().st_mode & 0o077 == 0


def test_l3_up_warns_when_it_listens_beyond_loopback(stack_run, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "up", "--host", "0.0.0.0", "--nodes", "1",
                             "--da-nodes", "0", "--dir", str(tmp_path / "data")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=stack_env(tmp_path / "home"), cwd=project_root())
    seen = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            seen.append(line)
            if not line or "WARNING" in line or "anvil up" in line:  # the warning comes before Anvil starts
                break
    finally:
        proc.send_signal(signal.SIGTERM)  # stops it during start-up (Anvil included)
        proc.communicate(timeout=60)
    assert any("WARNING" in line and "public" in line for line in seen), seen


def test_l4_one_lying_node_cannot_change_a_downloads_size(stack: Stack, tmp_path: Path) -> None:
    data = random.Random(21).randbytes(300_000)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    root = upload(stack, src)
    liar = FakeNodes(1, {root: len(data) - 1000})  # answers first, claims the file is shorter
    try:
        async def go() -> None:
            async with aiohttp.ClientSession() as session:
                await StorageClient(session, liar.urls + stack.node_urls[1:]).download(root, tmp_path / "copy.bin")
        asyncio.run(go())
    finally:
        liar.stop()
    assert (tmp_path / "copy.bin").read_bytes() == data


def test_l5_the_indexer_asks_few_nodes_per_call(stack_run, tmp_path: Path) -> None:
    nodes = FakeNodes(10)
    port = free_ports("127.0.0.1", 1)[0]
    indexer = subprocess.Popen([sys.executable, "-m", "deaios.cli", "storage", "indexer", "--port", str(port),
                                "--nodes", ",".join(nodes.urls)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=stack_env(tmp_path), cwd=project_root())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if len(requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "indexer_getShardedNodes",
                                                "params": []}, timeout=5).json()["result"]["trusted"]) == 10:
                    break
            except (requests.RequestException, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "the indexer did not come up"
            time.sleep(0.2)
        before = nodes.calls["zgs_getFileInfo"]
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "indexer_getFileLocations",
                                         "params": ["0x" + os.urandom(32).hex()]}, timeout=30).json()
        assert reply["result"] == []
        assert nodes.calls["zgs_getFileInfo"] - before <= 3, json.dumps(nodes.calls)
    finally:
        indexer.terminate()
        indexer.wait(30)
        nodes.stop()
