"""The services around the storage network under faults: the indexer SIGKILLed, the KV node SIGKILLed in the
middle of a replay, Anvil stopped and started again under a running stack (its state kept). While a service is down, clients get one clear
`error:` line (no traceback); once it is back, everything resumes, and every value and file written before, and the
writes a client made while it was down, read back byte-exact.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from chaos_helpers import Case, Chaos, assert_clear_error, download_exact, make_file, no_tracebacks

from deaios.chaos import faults
from deaios.kv import launch as kv_launch
from deaios.kv.client import Client, stream_id
from deaios.procs import rpc_call
from deaios.stack.launcher import relaunch_anvil
from deaios.stack.process import SdkError, sdk_transfer
from deaios.storage.launch import relaunch_indexer

TXS = 16  # KV transactions written while the KV node is down: the backlog it replays when it comes back
VALUE = 96_000  # bytes per value: each replayed transaction downloads its data from the storage nodes


def kv_status(chaos: Chaos) -> dict | None:
    try:
        return rpc_call(chaos.stack.extra["kv"]["url"], "deaios_kvStatus", timeout=2.0)
    except Exception:  # noqa: BLE001  (down, or starting)
        return None


def wait_kv_caught_up(chaos: Chaos, timeout: float = 180.0) -> dict:
    """Wait until the KV node has replayed every transaction of the log it knows; its status."""
    deadline = time.monotonic() + timeout
    while True:
        status = kv_status(chaos)
        if status and status["logTxs"] and status["nextTxSeq"] >= status["logTxs"] \
                and status.get("waitingForData") is None:
            return status
        assert time.monotonic() < deadline, f"the KV node did not catch up within {timeout:.0f} s: {status}"
        time.sleep(0.1)


async def write_backlog(chaos: Chaos, stream: bytes, values: dict[str, bytes]) -> int:
    """Put each key as its own KV transaction without waiting for the KV node; the last tx seq."""
    last = -1
    async with aiohttp.ClientSession() as session:
        client = Client.from_stack(chaos.stack, session)
        for key, value in values.items():
            outcome = await client.batch().set(stream, key, value).commit(wait=False)
            last = outcome.seq
    return last


async def read_all(chaos: Chaos, stream: bytes, keys: list[str]) -> dict[str, bytes | None]:
    async with aiohttp.ClientSession() as session:
        client = Client.from_stack(chaos.stack, session)
        return {key: (None if (e := await client.get(stream, key)) is None else e.value) for key in keys}


def test_kv_node_killed_mid_replay(chaos: Chaos, work: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    stream = stream_id(f"chaos-kv-{seed}")
    sid = "0x" + stream.hex()
    before = {f"before-{i}": rng.randbytes(VALUE) for i in range(3)}
    backlog = {f"backlog-{i}": rng.randbytes(VALUE) for i in range(TXS)}
    with Case("KV: node SIGKILLed mid-replay", f"SIGKILL the KV node; {TXS} KV transactions written meanwhile; "
              f"restart; SIGKILL again in the middle of replaying them; restart (seed {seed})") as case:
        asyncio.run(write_backlog(chaos, stream, before))
        wait_kv_caught_up(chaos)
        log = Path(chaos.stack.extra["kv"]["log"])
        faults.kill(chaos.stack.extra["kv"]["pid"])
        # reads and writes while it is down: a clear error each; the write is in the log all the same
        get = chaos.raw("kv", "get", sid, "before-0")
        assert_clear_error(get, "unreachable")
        put = chaos.raw("kv", "put", sid, "while-down", "written while the KV node was down", timeout=300)
        assert_clear_error(put, "unreachable")
        total = asyncio.run(write_backlog(chaos, stream, backlog)) + 1  # transactions in the log
        # back up, then killed again while it replays the backlog (the node learns the log's length as it syncs:
        # its own `logTxs` can lag behind `total`, so the backlog's progress is judged against `total`)
        kv_launch.relaunch(chaos.stack)
        deadline = time.monotonic() + 180
        while True:
            status = kv_status(chaos)
            if status and total - TXS < status["nextTxSeq"] < total - 2:
                break
            assert not (status and status["nextTxSeq"] >= total), \
                f"the KV node replayed the whole backlog before the kill: {status}"
            assert time.monotonic() < deadline, f"the KV node did not start replaying: {status}"
            time.sleep(0.01)
        faults.kill(chaos.stack.extra["kv"]["pid"])
        case.notes = f"killed at tx {status['nextTxSeq']} of {status['logTxs']}"
        offset = log.stat().st_size
        kv_launch.relaunch(chaos.stack)
        wait_kv_caught_up(chaos)
        values = asyncio.run(read_all(chaos, stream, [*before, *backlog, "while-down"]))
        assert values["while-down"] == b"written while the KV node was down"
        for key, value in {**before, **backlog}.items():
            assert values[key] == value, f"{key} differs after the restart"
        cli = chaos.raw("kv", "get", sid, "while-down")
        assert cli.returncode == 0 and cli.stdout.strip() == "written while the KV node was down", cli.stderr
        no_tracebacks(log, offset)
        case.checked(f"{len(before) + len(backlog)} values of {VALUE:,} bytes and the write made while it was "
                     "down, read back", VALUE * (len(before) + len(backlog)) + 34)


def test_anvil_restarted_under_the_stack(chaos: Chaos, work: Path) -> None:
    seed = random.randrange(1 << 30)
    first, first_root = make_file(work / "first.bin", 1_500_000, seed)
    second, second_root = make_file(work / "second.bin", 1_500_000, seed + 1)
    stream = "0x" + stream_id(f"chaos-anvil-{seed}").hex()
    with Case("chain: Anvil stopped and started again under the stack", "SIGTERM Anvil (it saves its state); "
              "uploads, KV writes and downloads meanwhile; start it again with its recorded command line") as case:
        chaos("storage", "upload", str(first))
        chaos("kv", "put", stream, "model", "before the restart")
        stack = chaos.stack
        height = int(rpc_call(stack.rpc, "eth_blockNumber"), 16)
        faults.kill(stack.anvil_pid, signal.SIGTERM, timeout=60)
        # while the chain is down: a clear error to writers; stored files still download (the nodes serve them)
        upload = chaos.raw("storage", "upload", str(second))
        assert_clear_error(upload, "unreachable")
        put = chaos.raw("kv", "put", stream, "model", "while the chain was down")
        assert_clear_error(put)
        case.checked("1.5 MB file downloaded while the chain was down", download_exact(chaos, first_root, first,
                                                                                      work / "first.down"))
        relaunch_anvil(chaos.stack)
        after = int(rpc_call(chaos.stack.rpc, "eth_blockNumber"), 16)
        assert after >= height, f"the chain lost blocks: {after} < {height}"
        # everything resumes: a new upload (its nodes follow the log again), a KV write read back
        chaos("storage", "upload", str(second))
        chaos("kv", "put", stream, "model", "after the restart")
        assert chaos.raw("kv", "get", stream, "model").stdout.strip() == "after the restart"
        faults.wait_repaired(chaos.path, [first_root, second_root])
        case.checked("both files downloaded after the restart",
                     download_exact(chaos, first_root, first, work / "first.out")
                     + download_exact(chaos, second_root, second, work / "second.out"))
        case.notes = f"block {height} before the stop, {after} after the restart"


def test_the_indexer_killed(chaos: Chaos, work: Path) -> None:
    original, root = make_file(work / "sdk.bin", 700_000, random.randrange(1 << 30))
    with Case("storage: the indexer SIGKILLed", "SIGKILL the indexer; restart it") as case:
        faults.kill(chaos.stack.indexer_pid)
        with pytest.raises(SdkError) as refused:  # the official SDK cannot find nodes: it says so, nothing stored
            sdk_transfer(chaos.stack, original, work / "never.bin")
        assert "ECONNREFUSED" in str(refused.value) or "connect" in str(refused.value).lower(), refused.value
        status = chaos.raw("status", "--json")  # the status view still works, and shows the indexer
        assert status.returncode == 0 and '"indexer"' in status.stdout, status.stderr
        relaunch_indexer(chaos.stack)
        faults.wait_answering(chaos.stack.indexer, "indexer_getShardedNodes", 30, "the indexer")
        deadline = time.monotonic() + 30
        while len(rpc_call(chaos.stack.indexer, "indexer_getShardedNodes")["trusted"]) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        out = work / "sdk.out"
        result = sdk_transfer(chaos.stack, original, out)
        assert result["root"] == root and out.read_bytes() == original.read_bytes()
        case.checked("700 kB file through the official SDK (indexer route) after the restart", 700_000)
        case.checked("and with the deaios client", download_exact(chaos, root, original, work / "sdk2.out"))
