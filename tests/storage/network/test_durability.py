"""Durability of the storage network with real processes: upload with the deaios CLI, kill random 30 %
of the storage nodes (SIGKILL), download byte-exact; corrupted and wiped nodes repair themselves; an
interrupted upload resumes without paying twice; last, `deaios down` stops every process of the damaged
stack, the nodes relaunched by hand included.

This module owns its stack (it kills and damages nodes): its `stack_run` overrides the session's shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import click
import pytest
from stack_harness import RunningStack, deaios, running_stack, sdk_transfer, wait_until

from deaios.procs import rpc_call
from deaios.stack.config import Stack, load_stack, pid_alive
from deaios.stack.launcher import service_pids
from deaios.storage.erasure import ErasureCode, segment_lengths
from deaios.storage.launch import relaunch_node
from deaios.storage.merkle import FileMerkleTree
from deaios.storage.share_transport import ShareClient

SIZES = [1, 300_000, 2 * 262_144 + 4097]  # one chunk; 2 segments; 3 segments with a partial chunk
REPAIR_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def stack_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A 10-node stack of this module's own (the tests kill, wipe and relaunch its nodes)."""
    base = tmp_path_factory.mktemp("stack")
    with running_stack(base / "data", nodes=10, home=base / "home") as running:
        yield running


@pytest.fixture(scope="module")
def files(stack_run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files uploaded once with `deaios storage upload`: root -> original path."""
    folder = tmp_path_factory.mktemp("files")
    rng = random.Random(7)
    uploaded = {}
    for size in SIZES:
        path = folder / f"f{size}.bin"
        path.write_bytes(rng.randbytes(size))
        result = cli(stack_run, "storage", "upload", str(path))
        assert result["size"] == size and result["txHash"]
        assert result["root"] == "0x" + FileMerkleTree.from_path(path).root.hex()
        uploaded[result["root"]] = path
    return uploaded


def cli(stack_run, *args: str) -> dict:
    """Run a deaios client command against the module's stack; return its JSON line."""
    proc = deaios(*args, "--stack", str(stack_run.dir / "stack.json"), home=stack_run.home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def current(stack_run) -> Stack:
    return Stack.load(stack_run.dir / "stack.json")


def kill_nodes(stack_run, indices: list[int]) -> None:
    stack = current(stack_run)
    for i in indices:
        os.kill(stack.storage_nodes[i]["pid"], signal.SIGKILL)
    for i in indices:  # wait until the port is really closed
        pid = stack.storage_nodes[i]["pid"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and \
                "zombie" not in _state(pid):
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def restart_nodes(stack_run, indices: list[int]) -> None:
    stack = current(stack_run)
    for i in indices:
        relaunch_node(stack, i)


async def missing_shares(stack: Stack, roots: list[str]) -> dict[int, int]:
    """Missing shares per reachable node, summed over `roots` (unreachable nodes are left out)."""
    out: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        client = ShareClient(session, stack.node_urls, timeout=5)
        for node in range(len(stack.node_urls)):
            try:
                lists = [await client.missing(node, bytes.fromhex(r[2:])) for r in roots]
            except Exception:
                continue
            out[node] = sum(len(m) if m is not None else 1_000_000 for m in lists)
    return out


def wait_repaired(stack_run, roots: list[str], nodes: list[int]) -> None:
    deadline = time.monotonic() + REPAIR_TIMEOUT
    while True:
        missing = asyncio.run(missing_shares(current(stack_run), roots))
        if all(missing.get(n) == 0 for n in nodes):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"nodes {nodes} not repaired within {REPAIR_TIMEOUT} s: missing {missing}")
        time.sleep(0.3)


@contextlib.contextmanager
def nodes_down(stack_run, victims: list[int], roots: list[str]) -> Iterator[None]:
    """SIGKILL `victims` for the duration of the block; then restart them and wait until they repaired."""
    kill_nodes(stack_run, victims)
    try:
        yield
    finally:
        restart_nodes(stack_run, victims)
    wait_repaired(stack_run, roots, victims)


def download_all(stack_run, files: dict[str, Path], out_dir: Path) -> None:
    for root, original in files.items():
        out = out_dir / f"{root[:10]}.out"
        out.unlink(missing_ok=True)
        result = cli(stack_run, "storage", "download", root, "-o", str(out))
        assert result["size"] == original.stat().st_size
        assert out.read_bytes() == original.read_bytes(), root


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_30_percent_of_nodes_killed_files_still_download(stack_run, files, tmp_path: Path, seed: int) -> None:
    with nodes_down(stack_run, random.Random(seed).sample(range(10), 3), list(files)):
        download_all(stack_run, files, tmp_path)


def test_four_nodes_down_is_reported_not_garbled(stack_run, files, tmp_path: Path) -> None:
    with nodes_down(stack_run, [0, 1, 2, 3], list(files)):
        root = max(files, key=lambda r: files[r].stat().st_size)
        out = tmp_path / "lost.out"
        proc = deaios("storage", "download", root, "-o", str(out), "--stack", str(stack_run.dir / "stack.json"),
                      home=stack_run.home)
        assert proc.returncode == 2 and "7 are needed" in proc.stderr, proc.stderr
        assert not out.exists()


def test_corrupted_shares_are_detected_and_repaired(stack_run, files, tmp_path: Path) -> None:
    stack = current(stack_run)
    root = max(files, key=lambda r: files[r].stat().st_size)
    node = 4
    pack = Path(stack.storage_nodes[node]["dir"]) / "data" / root[2:] / "shares.pack"
    raw = bytearray(pack.read_bytes())
    for offset in range(0, len(raw), 1000):  # damage every share of the file
        raw[offset] ^= 0x5A
    pack.write_bytes(bytes(raw))
    # the node notices on the next read and rebuilds from its peers
    async def read_all() -> list:
        async with aiohttp.ClientSession() as session:
            client = ShareClient(session, stack.node_urls)
            code = ErasureCode.for_nodes(10)
            size = files[root].stat().st_size
            sizes = [code.share_size(n) for n in segment_lengths(size)]
            return await client.get_shares(node, bytes.fromhex(root[2:]), 0, sizes)
    assert None in asyncio.run(read_all())
    wait_repaired(stack_run, [root], [node])
    # the repaired shares are the right ones: with node 4 among only 7 live nodes, the file still reads
    with nodes_down(stack_run, [n for n in range(10) if n != node][:3], list(files)):
        download_all(stack_run, {root: files[root]}, tmp_path)


def test_wiped_node_is_rebuilt_from_the_others(stack_run, files, tmp_path: Path) -> None:
    node = 6
    kill_nodes(stack_run, [node])
    shutil.rmtree(current(stack_run).storage_nodes[node]["dir"])
    restart_nodes(stack_run, [node])
    wait_repaired(stack_run, list(files), [node])
    with nodes_down(stack_run, [n for n in range(10) if n != node][-3:], list(files)):
        download_all(stack_run, files, tmp_path)


# A client process that SIGKILLs itself as soon as its first batch of shares is placed: a real crash
# mid-upload (no cleanup, connections dropped), at a deterministic point.
CRASHING_UPLOAD = """
import asyncio, os, signal, sys
from pathlib import Path

import aiohttp
from deaios.stack.config import Stack
from deaios.storage.client import StorageClient

stack = Stack.load(Path(sys.argv[1]))

def progress(done):
    if done:
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    async with aiohttp.ClientSession() as session:
        client = StorageClient(session, stack.node_urls, stack.rpc, stack.flow, stack.private_key,
                               batch_segments=4, in_flight=1)
        await client.upload(sys.argv[2], b"", progress)

asyncio.run(main())
"""


def test_upload_killed_midway_resumes_without_a_second_submission(stack_run, tmp_path: Path) -> None:
    path = tmp_path / "resume.bin"
    path.write_bytes(random.Random(11).randbytes(40 * 262_144 + 123))  # 41 segments
    stack = current(stack_run)
    crashed = subprocess.run([sys.executable, "-c", CRASHING_UPLOAD, str(stack_run.dir / "stack.json"), str(path)],
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    root = "0x" + FileMerkleTree.from_path(path).root.hex()
    missing = asyncio.run(missing_shares(stack, [root]))
    assert missing == {n: 41 - 4 for n in range(10)}, missing  # the first 4 segments placed, no more
    nonce_before = _nonce(stack)
    resumed = cli(stack_run, "storage", "upload", str(path))
    assert resumed["root"] == root and resumed["txHash"] is None  # no second submission, no second fee
    assert _nonce(stack) == nonce_before
    assert asyncio.run(missing_shares(stack, [root])) == {n: 0 for n in range(10)}
    download_all(stack_run, {root: path}, tmp_path)


def _nonce(stack: Stack) -> int:
    from eth_account import Account
    from web3 import Web3

    return Web3(Web3.HTTPProvider(stack.rpc)).eth.get_transaction_count(Account.from_key(stack.private_key).address)


def test_sdk_upload_with_30_percent_down_completes_and_heals(stack_run, tmp_path: Path) -> None:
    """The official SDK uploads plain segments to one node while 3 nodes are down; that node encodes and
    places shares on the 7 live nodes, reports finalized, and the 3 get theirs once they are back."""
    src, out = tmp_path / "sdk.bin", tmp_path / "sdk.out"
    src.write_bytes(random.Random(12).randbytes(700_000))
    root = "0x" + FileMerkleTree.from_path(src).root.hex()
    with nodes_down(stack_run, [1, 5, 9], [root]):
        time.sleep(1.2)  # the indexer's liveness cache
        assert sdk_transfer(current(stack_run), src, out)["root"] == root
        assert out.read_bytes() == src.read_bytes()
    with nodes_down(stack_run, [0, 2, 3], [root]):
        download_all(stack_run, {root: src}, tmp_path)


def test_down_stops_every_process_including_relaunched_nodes(stack_run) -> None:
    """Last in the module (it stops the module's stack): a node killed on purpose is logged and not restarted,
    a test relaunches it, and `deaios down` stops every process, that one included."""
    stack = current(stack_run)
    trusted = lambda: len(rpc_call(stack.indexer, "indexer_getShardedNodes")["trusted"])  # noqa: E731
    alive_nodes = [i for i, node in enumerate(stack.storage_nodes) if pid_alive(node["pid"])]
    assert len(alive_nodes) == len(stack.storage_nodes), "an earlier test left a node down"
    assert wait_until(lambda: trusted() == len(alive_nodes), timeout=30.0)
    # prefer a node the launcher started: it logs its children's exits (nodes relaunched by earlier tests
    # are not its children)
    owned = [i for i in alive_nodes if stack.storage_nodes[i]["pid"] == stack_run.stack.storage_nodes[i]["pid"]]
    victim = (owned or alive_nodes)[0]
    offset = len(stack_run.launcher_log())
    os.kill(stack.storage_nodes[victim]["pid"], signal.SIGKILL)
    if owned:
        assert wait_until(lambda: f"node-{victim} " in stack_run.launcher_log()[offset:]
                           and "not restarting" in stack_run.launcher_log()[offset:], timeout=30.0)
    assert wait_until(lambda: trusted() == len(alive_nodes) - 1, timeout=30.0)
    time.sleep(3)  # not restarted behind the test's back
    assert trusted() == len(alive_nodes) - 1
    assert Stack.load(stack_run.dir / "stack.json").storage_nodes[victim]["pid"] == stack.storage_nodes[victim]["pid"]
    assert stack_run.proc.poll() is None

    # a test can bring it back with the same command line; stack.json follows the new pid
    proc = relaunch_node(stack, victim)
    assert Stack.load(stack_run.dir / "stack.json").storage_nodes[victim]["pid"] == proc.pid
    assert wait_until(lambda: trusted() == len(alive_nodes), timeout=30.0)

    now = Stack.load(stack_run.dir / "stack.json")
    pids = service_pids(now)
    assert {"launcher", "anvil", "indexer", f"node-{victim}", "kv", "compute_provider", "inft_oracle"} <= set(pids)
    assert all(pid_alive(pid) for pid in pids.values()), pids
    da_pids = {n["name"]: n["pid"] for n in now.extra["da_nodes"]}
    assert len(da_pids) == 4 and all(pid_alive(pid) for pid in da_pids.values())
    result = deaios("down", "--stack", str(stack_run.dir / "stack.json"), home=stack_run.home)
    assert result.returncode == 0, result.stderr
    proc.wait(timeout=10)  # reap the relaunched node (our child)
    for name, pid in {**pids, **da_pids}.items():
        assert not pid_alive(pid), f"{name} (pid {pid}) still running after `deaios down`"
    assert stack_run.proc.wait(timeout=10) == 0
    assert "stopped_at" in json.loads((stack_run.dir / "stack.json").read_text())

    # client commands now refuse the stopped stack clearly
    with pytest.raises(click.ClickException, match="not running") as excinfo:
        load_stack(stack_run.dir / "stack.json")
    assert excinfo.value.exit_code == 2
    again = deaios("down", "--stack", str(stack_run.dir), home=stack_run.home)
    assert again.returncode == 0 and "not running" in again.stderr
