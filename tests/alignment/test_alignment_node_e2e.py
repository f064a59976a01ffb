"""End to end: 4 real storage node processes on the test chain hold a file as 2-of-4 erasure shares and 2 real
DA nodes hold a blob (one of them withholds its rows); the supervision contract lists all 6; 3 alignment
operators (Anvil dev keys 10..12, one self-operated license each, running from the epoch after they delegated)
run `deaios alignment node --once`. One storage node loses its data (killed, data directory wiped, restarted with
repair off): in that epoch every operator tries it and the withholding DA node several times over the evidence
span, attests them failed (with the evidence of the tries) and the others passed (each storage pass carries the
chunk the contract challenges, proven on chain against the flow root; DA rows are checked with their KZG cell
proofs); the first operator pass of the next epoch finalizes the results: the two failing nodes are flagged (the
staked one slashed), the others pass, and every operator's duty is recorded in the rewards contract.

The nodes run against ape's Anvil (as tests/da/network does) rather than under `deaios up`: the alignment
contracts are deployed by ape in-process, and the stack's KV node, indexer and compute provider would only
cost time here. The operators find everything through a stack.json written for these nodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import ape
import pytest
from supervision_helpers import (
    DA, ETHER, FAIL, PASS, SEGMENT_SIZE, STORAGE, deploy_world, make_operator, operator_accounts, random_file,
)

from deaios.alignment.operator import Operator, OperatorConfig
from deaios.da.chain import DAChain
from deaios.da.client import DAClient
from deaios.da.encoding import Encoder
from deaios.deployment import load_script
from deaios.jsonrpc import RpcCallError, rpc_call
from deaios.stack.config import Stack
from deaios.procs import free_ports
from deaios.storage.client import StorageClient
from deaios.storage.erasure import ErasureCode
from deaios.storage.merkle import CHUNK_SIZE

NODES = 4
VICTIM = 3
DA_FAULTS = ["none", "withhold"]  # supervision node ids 4 and 5
EPOCH = 300
FAIL_SPAN = 4  # seconds a fail's tries must span (short, for the test's time)
SLASH_BPS = 2_000
FILE_SIZE = 3 * SEGMENT_SIZE + 1000  # 4 flow-padded segments: every node keeps a data share of one of them
DEAIOS = [sys.executable, "-m", "deaios.cli"]
NODE_TIMEOUT = 30.0  # generous: 2 shared cores run 6 nodes, Anvil and 3 operators at once
EXPECTED = {0: "pass", 1: "pass", 2: "pass", VICTIM: "fail", 4: "pass", 5: "fail"}


@dataclass
class StorageNode:
    index: int
    url: str
    dir: Path
    cmd: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, repair_interval: float = 2.0) -> None:
        cmd = self.cmd + ["--repair-interval", str(repair_interval)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _wait_ready(nodes: list[StorageNode], block: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            while True:
                try:
                    status = await rpc_call(session, node.url, "zgs_getStatus", timeout=1)
                    if status["logSyncHeight"] >= block:
                        break
                except RpcCallError:
                    pass
                if time.monotonic() > deadline or (node.proc and node.proc.poll() is not None):
                    raise RuntimeError(f"storage node {node.index} not ready:\n{node.log.read_text()[-3000:]}")
                await asyncio.sleep(0.2)


def start_da_nodes(rpc: str, entrance: str, keys: list[str], base: Path) -> list[tuple[subprocess.Popen, dict]]:
    """`deaios da node` processes (one per key, faults DA_FAULTS); (process, its ready line {url, address})."""
    procs = []
    for i, (key, fault) in enumerate(zip(keys, DA_FAULTS, strict=True)):
        cmd = DEAIOS + ["da", "node", "--rpc", rpc, "--entrance", entrance, "--dir", str(base / f"da{i}"),
                        "--fault", fault, "--poll-interval", "0.5"]
        with open(base / f"da{i}.log", "wb") as log:
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                          env={**os.environ, "DEAIOS_DA_NODE_KEY": key}))
    return procs


def da_ready(procs: list[subprocess.Popen], base: Path, timeout: float = 90) -> list[dict]:
    """Each DA node's ready line {"url", "address", "pid"} (printed once registered and listening)."""
    out = []
    deadline = time.monotonic() + timeout
    for i, proc in enumerate(procs):
        ready, _, _ = select.select([proc.stdout], [], [], max(0.1, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"DA node {i} not ready:\n{(base / f'da{i}.log').read_text()[-3000:]}")
        out.append(json.loads(line))
    return out


def operators_once(stack_path: Path, keys: list[str]) -> list[list[dict]]:
    """One pass of each operator: the first as `deaios alignment node --once` (a process), the others in this
    process (`Operator.run_once`, sharing the KZG setup already loaded here) meanwhile; their JSON lines."""
    proc = subprocess.Popen(DEAIOS + ["alignment", "node", "--stack", str(stack_path), "--key", keys[0], "--once",
                                      "--timeout", str(NODE_TIMEOUT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stack = Stack.load(stack_path)
    out = []
    for key in keys[1:]:
        config = OperatorConfig(stack.rpc, stack.contracts["alignment_supervision"], key, stack.node_urls,
                                stack.deploy_block, NODE_TIMEOUT, stack.contracts["da_entrance"])
        out.append([o.to_json() for o in asyncio.run(Operator(config).run_once())])
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    return [[json.loads(line) for line in stdout.splitlines() if line.strip()]] + out


def travel_to(timestamp: int) -> None:
    if timestamp > ape.chain.pending_timestamp:
        ape.chain.pending_timestamp = timestamp
    ape.chain.mine()


@pytest.fixture(scope="module")
def net(accounts, project, tmp_path_factory):
    # the DA nodes start first: they register (proof of possession, stake, epoch) while the rest is deployed
    base = tmp_path_factory.mktemp("supervised")
    rpc = ape.chain.provider.http_uri
    da = load_script("deploy_da").deploy_da(accounts[0], project, epoch_blocks=10**6, blob_price=10**12)
    da_procs = start_da_nodes(rpc, da["da_entrance"], [accounts[i].private_key for i in (2, 3)], base)
    nodes: list[StorageNode] = []
    try:
        world = deploy_world(accounts, project, epoch_seconds=EPOCH, slash_bps=SLASH_BPS, min_fail_span=FAIL_SPAN)
        ops = operator_accounts(accounts, 3)
        for op in ops:
            make_operator(world, op)
        storage = world.deployments["storage"]
        urls = [f"http://127.0.0.1:{port}" for port in free_ports("127.0.0.1", NODES)]
        for i, url in enumerate(urls):
            cmd = DEAIOS + ["storage", "node", "--dir", str(base / f"node{i}"), "--port", url.rsplit(":", 1)[1],
                            "--chain-rpc", rpc, "--flow", storage["flow"], "--index", str(i), "--peers", ",".join(urls),
                            "--start-block", str(storage["block_number"]), "--log-level", "WARNING"]
            nodes.append(StorageNode(i, url, base / f"node{i}", cmd, base / f"node{i}.log"))
        for node in nodes:
            node.start()
        asyncio.run(_wait_ready(nodes, storage["block_number"]))
        da_nodes = da_ready(da_procs, base)
        project.DASigners.at(da["da_signers"]).forceMakeEpoch(sender=world.owner)
        data = random_file(FILE_SIZE, 7)
        src = base / "model.bin"
        src.write_bytes(data)

        async def upload_and_put():  # the file to the storage nodes and a blob to the DA nodes, at once
            async with aiohttp.ClientSession() as session:
                storage_client = StorageClient(session, urls, rpc, storage["flow"], accounts[0].private_key)
                with Encoder(1) as encoder:
                    da_client = DAClient(DAChain(rpc, da["da_entrance"], accounts[1].private_key), encoder)
                    return await asyncio.gather(storage_client.upload(src), da_client.put(random_file(50_000, 8)))

        uploaded, blob = asyncio.run(upload_and_put())
        assert blob.signers == len(DA_FAULTS)
        sup = world.supervision
        node_operator = accounts[5]
        code = ErasureCode.for_nodes(NODES)
        sup.setErasureCode(code.n, code.k, sender=world.owner)
        for node in nodes:
            sup.registerNode(STORAGE, node.url, node_operator.address, node.index, sender=world.owner)
        for info in da_nodes:  # a DA node is registered with its signer address as operator
            sup.registerNode(DA, info["url"], info["address"], 0, sender=world.owner)
        sup.stake(VICTIM, sender=node_operator, value=ETHER)
        stack_path = Stack(rpc=rpc, chain_id=ape.chain.chain_id,
                           contracts={"flow": storage["flow"], "market": storage["market"],
                                      "alignment_supervision": sup.address, "da_entrance": da["da_entrance"]},
                           indexer="", storage_nodes=[{"index": n.index, "url": n.url} for n in nodes],
                           private_key=accounts[0].private_key, dir=str(base), launcher_pid=os.getpid(),
                           deploy_block=storage["block_number"]).save(base / "stack.json")
        yield {"world": world, "ops": ops, "nodes": nodes, "data": data, "uploaded": uploaded, "blob": blob,
               "stack_path": stack_path}
    finally:
        for node in nodes:
            node.stop()
        for proc in da_procs:
            proc.terminate()
            proc.wait(10)


def test_challenge_rpc_answers_from_local_shares_only(net):
    data, seq = net["data"], net["uploaded"].tx_seq

    async def ask(node: StorageNode, *params):
        async with aiohttp.ClientSession() as session:
            return await rpc_call(session, node.url, "deaios_challenge", *params, timeout=5)

    # segment 1's data shares (2-of-4) are on nodes 1 and 2; node 1 keeps chunks 1024..1535 of the file
    answer = asyncio.run(ask(net["nodes"][1], seq, 1030))
    assert bytes.fromhex(answer["chunk"][2:]) == data[1030 * CHUNK_SIZE:1031 * CHUNK_SIZE]
    assert answer["root"] == net["uploaded"].root and answer["segmentProof"]["path"]
    for node, params, message in [
        (net["nodes"][0], (seq, 1030), "not inside a data share"),  # node 0 keeps a parity share of segment 1
        (net["nodes"][1], (seq, 4 * 1024), "beyond the data"),
        (net["nodes"][1], (seq + 5, 0), "no submission with tx seq"),
        (net["nodes"][1], (seq, -1), "chunkIndex must be a non-negative integer"),
    ]:
        with pytest.raises(RpcCallError, match=message):
            asyncio.run(ask(node, *params))


def test_node_that_lost_its_data_is_flagged_within_one_epoch(net):
    world, ops, nodes = net["world"], net["ops"], net["nodes"]
    sup, rewards = world.supervision, world.rewards
    victim = nodes[VICTIM]
    victim.stop()
    shutil.rmtree(victim.dir)
    victim.start(repair_interval=0)  # repair would rebuild its shares from the peers within seconds
    asyncio.run(_wait_ready([victim], world.deployments["storage"]["block_number"]))

    travel_to(sup.epochStart(sup.currentEpoch() + 1))
    epoch = sup.currentEpoch()
    started = time.monotonic()
    runs = operators_once(net["stack_path"], [op.private_key for op in ops])
    for lines in runs:
        verdicts = {line["nodeId"]: line for line in lines if line["action"] != "finalize"}
        assert {i: v["verdict"] for i, v in verdicts.items()} == EXPECTED, json.dumps(lines, indent=1)
        assert all(v["epoch"] == epoch and v["tx"] for v in verdicts.values())
        assert "not held here" in verdicts[VICTIM]["reason"] and "blob not available" in verdicts[5]["reason"]
        for failed in (VICTIM, 5):  # judged failed only after tries over the evidence span, recorded
            tries = verdicts[failed]["detail"]["tries"]
            assert len(tries) >= 3 and tries[-1]["offset"] >= FAIL_SPAN and all(t["error"] for t in tries)
            assert verdicts[failed]["detail"]["evidence"]["tries"] == [t["offset"] for t in tries]
        assert all("latencyMs" in verdicts[i]["detail"] for i, v in EXPECTED.items() if v == "pass")
        assert verdicts[0]["detail"]["txSeq"] == net["uploaded"].tx_seq
        assert verdicts[4]["detail"]["dataRoot"] == "0x" + net["blob"].ref.data_root.hex()
    for i in EXPECTED:  # every operator derived the same challenge for each node
        assert len({json.dumps(line["detail"].get("chunk", line["detail"].get("row"))) for lines in runs
                    for line in lines if line["nodeId"] == i}) == 1
    for i, verdict in EXPECTED.items():
        tally = sup.tallyOf(epoch, i)
        assert (tally.passes, tally.fails) == ((3, 0) if verdict == "pass" else (0, 3))
    for op in ops:  # each attested all 4 storage nodes (checked on chain): duty reported to the rewards contract
        assert sup.dutyRecorded(epoch, op.address) and rewards.recorded(epoch, op.address)

    travel_to(sup.epochStart(epoch + 1))
    (lines,) = operators_once(net["stack_path"], [ops[0].private_key])
    finalized = {line["nodeId"]: line["verdict"] for line in lines if line["action"] == "finalize"}
    assert finalized == EXPECTED
    flagged_after = time.monotonic() - started
    assert [sup.tallyOf(epoch, i).result for i in EXPECTED] == [PASS if v == "pass" else FAIL
                                                                for v in EXPECTED.values()]
    victim_node = sup.getNode(VICTIM)
    assert victim_node.flagged and victim_node.failures == 1
    assert victim_node.stake == ETHER - ETHER * SLASH_BPS // 10_000 and sup.slashedPool() == ETHER * SLASH_BPS // 10_000
    assert [i for i in EXPECTED if sup.getNode(i).flagged] == [VICTIM, 5]
    print(f"E2E flagged {flagged_after:.1f} s after the operators started (epoch {epoch}); "
          f"pid {os.getpid()}")
