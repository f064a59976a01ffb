"""Audit H7 — the KV node could be halted or crash-looped for one fee (docs/audit.md, "Off-chain services").

* A KV transaction for a fresh stream whose data is never uploaded: a node serving every stream (the
  default) waited for that data forever, so replay of every stream stopped at it.
* A submission claiming several GB (cheap at the default price) was fetched and loaded whole, killing the
  node on every restart.

The fix: a data-availability deadline after which the transaction is recorded as failed ("DataUnavailable"),
a maximum transaction size above which it is recorded as failed without being fetched ("DataTooLarge"),
and parsing from the downloaded file instead of a copy in memory.

Real processes on the test chain: the storage contracts, three storage nodes and one KV node.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiohttp
import ape
import pytest

from deaios.deployment import load_script
from deaios.jsonrpc import RpcCallError, rpc_call
from deaios.kv.client import Client, stream_id
from deaios.kv.codec import StreamData, Write, build_tags
from deaios.stack.launcher import free_ports, spawn, stop_pids
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import FileMerkleTree, Submission, SubmissionNode, node_heights

DEAIOS = [sys.executable, "-m", "deaios.cli"]
NODES = 3
DEADLINE = 3.0  # seconds a KV node waits for a transaction's data before recording it as failed
MAX_TX = 1 << 20


@pytest.fixture
def _function_isolation():
    """No per-test snapshot/revert: the node processes follow the chain on their own."""
    yield


async def _wait(url: str, method: str, ready, proc, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                if ready(await rpc_call(session, url, method, timeout=1)):
                    return
            except RpcCallError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{url} not ready:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def net(accounts, project, tmp_path_factory):
    base = tmp_path_factory.mktemp("kv-audit")
    storage = load_script("deploy").deploy_storage(accounts[0], project, price_per_sector=1)
    rpc, flow, block = ape.chain.provider.http_uri, storage["flow"], storage["block_number"]
    ports = free_ports("127.0.0.1", NODES + 1)
    urls = [f"http://127.0.0.1:{port}" for port in ports[:NODES]]
    procs = {}
    for i, url in enumerate(urls):
        procs[f"node-{i}"] = spawn(DEAIOS + [
            "storage", "node", "--dir", str(base / f"node{i}"), "--port", str(ports[i]), "--chain-rpc", rpc,
            "--flow", flow, "--index", str(i), "--peers", ",".join(urls), "--start-block", str(block),
            "--log-level", "WARNING"], base / f"node{i}.log", die_with_parent=True)
    kv_url, kv_log = f"http://127.0.0.1:{ports[NODES]}", base / "kv.log"
    procs["kv"] = spawn(DEAIOS + [
        "kv", "node", "--dir", str(base / "kv"), "--port", str(ports[NODES]), "--chain-rpc", rpc, "--flow", flow,
        "--nodes", ",".join(urls), "--start-block", str(block), "--data-deadline", str(DEADLINE),
        "--max-tx-size", str(MAX_TX)], kv_log, die_with_parent=True)
    try:
        for i, url in enumerate(urls):
            asyncio.run(_wait(url, "zgs_getStatus", lambda s: s["logSyncHeight"] >= block, procs[f"node-{i}"],
                              base / f"node{i}.log"))
        asyncio.run(_wait(kv_url, "deaios_kvStatus", lambda s: (s["logSyncHeight"] or -1) >= block, procs["kv"],
                          kv_log))
        yield {"rpc": rpc, "flow": flow, "urls": urls, "kv": kv_url, "key": accounts[0].private_key, "log": kv_log}
    finally:
        stop_pids({name: proc.pid for name, proc in procs.items()}, grace=5, procs=procs)


def submit_only(net: dict, submission: Submission) -> int:
    """Pay for a submission whose data is never uploaded; its tx seq."""
    return FlowClient(net["rpc"], net["flow"], net["key"]).submit(submission).event.seq


def test_missing_and_huge_transactions_do_not_halt_replay(net) -> None:
    # 1. a fresh stream, its data never uploaded
    missing = StreamData(writes=[Write(stream_id("attack/missing"), b"k", os.urandom(3000))])
    missing_seq = submit_only(net, FileMerkleTree.from_bytes(missing.encode()).submission(missing.tags()))
    # 2. a claimed 4 GiB transaction (any roots: the node must not try to fetch it)
    size = 4 << 30
    huge = Submission(size, build_tags([stream_id("attack/huge")]),
                      tuple(SubmissionNode(os.urandom(32), h) for h in node_heights(size)))
    huge_seq = submit_only(net, huge)

    # 3. an honest write behind them is replayed within the deadline (plus slack for a loaded machine)
    async def honest():
        async with aiohttp.ClientSession() as session:
            client = Client(session, net["kv"], net["urls"], net["rpc"], net["flow"], net["key"],
                            timeout=DEADLINE + 30)
            outcome = await client.put(stream_id("honest"), "key", "value")
            return outcome, await client.tx_result(missing_seq), await client.tx_result(huge_seq)

    outcome, missing_result, huge_result = asyncio.run(honest())
    assert outcome.result == "Commit" and outcome.seq > huge_seq > missing_seq
    assert missing_result.startswith("DataUnavailable"), missing_result
    assert huge_result.startswith("DataTooLarge"), huge_result
