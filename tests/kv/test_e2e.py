"""The KV layer end to end on a real local stack (`deaios up`, shared by this module): the KV node that
`deaios up` starts, the Python client and the CLI, round trips with the official SDK in both directions,
malformed stream data in the log, a KV node killed mid-replay, `deaios kv rebuild`, `deaios down`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from eth_account import Account
from kvutil import sdk_kv

from deaios.cli import main
from deaios.kv import launch
from deaios.kv.client import Client, stream_id
from deaios.kv.codec import MAX_SET_SIZE, StreamData, Write, build_tags
from deaios.kv.replay import StreamConfig
from deaios.kv.store import KvIndex
from deaios.stack.config import Stack, dev_key, pid_alive
from deaios.procs import rpc_call, spawn
from deaios.stack.process import RunningStack, deaios, running_stack
from deaios.storage.client import StorageClient

KEY_1, KEY_2 = dev_key(1), dev_key(2)  # Anvil dev accounts 1 and 2
MODELS = stream_id("deaios/models")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("kvstack")
    # no DA nodes (nor the disperser and rollup servers that need them): nothing here uses DA
    with running_stack(base / "data", nodes=3, home=base / "home", args=("--da-nodes", "0")) as running:
        yield running


@pytest.fixture(scope="module")
def stack(run: RunningStack) -> Stack:
    return run.stack


def client_call(stack: Stack, job, key: str | None = None):
    """Run `job(client)` with a Client of the stack (optionally writing with another key)."""
    async def go():
        async with aiohttp.ClientSession() as session:
            client = Client.from_stack(stack, session)
            if key:
                client.private_key = key
            return await job(client)
    return asyncio.run(go())


def status(url: str) -> dict:
    return rpc_call(url, "deaios_kvStatus")


def wait_caught_up(url: str, at_least: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            now = status(url)
            if now["logTxs"] >= at_least and now["nextTxSeq"] == now["logTxs"]:
                return now
        except OSError:
            now = None
        assert time.monotonic() < deadline, f"KV node at {url} did not catch up: {now}"
        time.sleep(0.05)


def digest(directory: str | Path) -> str:
    index = KvIndex(Path(directory), readonly=True)
    try:
        return index.digest()
    finally:
        index.close()


def test_deaios_up_starts_a_kv_node(run: RunningStack, stack: Stack) -> None:
    kv = stack.extra["kv"]
    assert set(kv) == {"url", "pid", "dir", "log", "cmd", "streams"}
    assert run.line["kv"] == kv and kv["streams"] == "all"
    assert pid_alive(kv["pid"]) and Path(kv["dir"]).is_dir()
    assert kv["cmd"][kv["cmd"].index("--flow") + 1] == stack.flow
    assert rpc_call(kv["url"], "kv_getStatus") is True
    assert status(kv["url"])["logSyncHeight"] >= stack.deploy_block
    assert rpc_call(kv["url"], "kv_getHoldingStreamIds") == []


def test_python_client_writes_and_reads_the_model_record(stack: Stack, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(300_000))

    async def job(kv: Client):
        uploaded = await StorageClient(kv.session, stack.node_urls, stack.rpc, stack.flow,
                                       stack.private_key).upload(model)
        record = {"name": "resnet-demo", "version": "v2", "path": f"log://{uploaded.root}"}
        put = await kv.put(MODELS, "AI_100", json.dumps(record))
        got = await kv.get(MODELS, "AI_100")
        # the path leads back to the model
        root = json.loads(got.value)["path"].removeprefix("log://")
        await StorageClient(kv.session, stack.node_urls).download(root, tmp_path / "back.bin")
        # versions, listing, deletes
        second = await kv.put(MODELS, "AI_101", json.dumps({**record, "name": "other"}))
        deleted = await kv.delete(MODELS, "AI_101")
        listed = [e async for e in kv.ls(MODELS, "AI_")]
        before_delete = await kv.get(MODELS, "AI_101", version=second.seq)
        return record, put, got, second, deleted, listed, before_delete, await kv.get(MODELS, "AI_101")

    record, put, got, second, deleted, listed, before_delete, gone = client_call(stack, job)
    assert put.ok and put.result == "Commit" and put.tx_hash and put.seq >= 1
    assert json.loads(got.value) == record and got.version == put.seq
    assert (tmp_path / "back.bin").read_bytes() == model.read_bytes()
    assert second.ok and deleted.ok and deleted.seq > second.seq
    assert [e.key for e in listed] == [b"AI_100"] and gone is None
    assert json.loads(before_delete.value)["name"] == "other"


def test_access_control_through_the_log(stack: Stack) -> None:
    account_1 = Account.from_key(KEY_1).address
    account_2 = Account.from_key(KEY_2).address

    async def admin(kv: Client):
        return (await kv.batch().grant_writer(MODELS, account_1).commit(),
                await kv.is_admin(Account.from_key(stack.private_key).address, MODELS),
                await kv.is_writer(account_1, MODELS))

    granted, is_admin, is_writer = client_call(stack, admin)
    assert granted.ok and is_admin and is_writer
    as_writer = client_call(stack, lambda kv: kv.put(MODELS, "AI_200", "by a writer"), key=KEY_1)
    assert as_writer.ok
    outsider = client_call(stack, lambda kv: kv.put(MODELS, "AI_100", "hijacked"), key=KEY_2)
    assert outsider.result == "SenderNoWritePermission"
    # the same bytes again are a new transaction (and the same result)
    again = client_call(stack, lambda kv: kv.put(MODELS, "AI_100", "hijacked"), key=KEY_2)
    assert again.seq > outsider.seq and again.result == "SenderNoWritePermission"
    assert client_call(stack, lambda kv: kv.get(MODELS, "AI_100")).value != b"hijacked"
    assert client_call(stack, lambda kv: kv.may_write(account_2, MODELS, "AI_100")) is False


def test_cli(run: RunningStack, stack: Stack) -> None:
    sid = "0x" + stream_id("deaios/cli").hex()
    runner = CliRunner()
    invoke = lambda *args: runner.invoke(main, ["kv", *args, "--stack", str(run.dir)])  # noqa: E731
    put = invoke("put", sid, "greeting", "hello KV")
    assert put.exit_code == 0, put.output
    line = json.loads(put.output)
    assert line["result"] == "Commit" and line["key"] == "greeting" and line["stream"] == sid
    assert invoke("put", sid, "0x00ff", "0xdeadbeef").exit_code == 0
    got = invoke("get", sid, "greeting")
    assert got.exit_code == 0 and got.output == "hello KV\n"
    assert json.loads(invoke("get", sid, "0x00ff", "--json").output) == {
        "key": "0x00ff", "value": "0xdeadbeef", "version": line["txSeq"] + 1, "size": 4}
    listed = [json.loads(x) for x in invoke("ls", sid).output.splitlines()]
    assert [e["key"] for e in listed] == ["0x00ff", "greeting"]
    assert [json.loads(x)["key"] for x in invoke("ls", sid, "--prefix", "gr").output.splitlines()] == ["greeting"]
    missing = invoke("get", sid, "nope")
    assert missing.exit_code == 1 and "has no value" in missing.output
    for bad in (("get", "0x1234", "k"), ("put", sid, "0xzz", "v"), ("put", sid, "", "v"), ("ls", "stream")):
        result = invoke(*bad)
        assert result.exit_code == 2 and result.output.startswith("error: "), (bad, result.output)
        assert len(result.output.strip().splitlines()) == 1
    # the real entry point, once
    real = deaios("kv", "get", sid, "greeting", "--stack", str(run.dir), home=run.home)
    assert real.returncode == 0 and real.stdout == "hello KV\n"


@pytest.mark.sdk
def test_sdk_batcher_writes_and_we_read(stack: Stack) -> None:
    sid = stream_id("deaios/sdk-writes")
    keys = {"sdk-1": b"one", "sdk-2": bytes(range(256)), "sdk-0": b"zero"}
    out = sdk_kv("write", stack.indexer, stack.rpc, stack.private_key, spec={"writes": [
        {"stream": "0x" + sid.hex(), "key": "0x" + k.encode().hex(), "data": "0x" + v.hex()} for k, v in keys.items()]})
    kv_url = stack.extra["kv"]["url"]
    deadline = time.monotonic() + 60
    while rpc_call(kv_url, "kv_getTransactionResult", [out["txSeq"]]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rpc_call(kv_url, "kv_getTransactionResult", [out["txSeq"]]) == "Commit"

    async def read(kv: Client):
        return {k: (await kv.get(sid, k)).value for k in keys}, [e.key async for e in kv.ls(sid)]

    values, listed = client_call(stack, read)
    assert values == keys and listed == sorted(k.encode() for k in keys)


@pytest.mark.sdk
def test_we_write_and_the_sdk_reads(stack: Stack) -> None:
    sid = stream_id("deaios/sdk-reads")
    account_1 = Account.from_key(KEY_1).address

    async def write(kv: Client):
        return await (kv.batch().set(sid, "b", "2").set(sid, "a", "1").set(sid, b"\xff\x00", b"\x00\x01")
                      .grant_writer(sid, account_1).commit())

    outcome = client_call(stack, write)
    overwritten = client_call(stack, lambda kv: kv.put(sid, "a", "1b"), key=KEY_1)
    assert outcome.ok and overwritten.ok
    out = sdk_kv("read", stack.extra["kv"]["url"], spec={
        "stream": "0x" + sid.hex(), "keys": ["0x61", "0x62", "0xff00"], "txSeqs": [outcome.seq, overwritten.seq],
        "account": account_1})
    assert out["values"]["0x61"] == {"data": "0x" + b"1b".hex(), "size": 2, "version": overwritten.seq}
    assert out["values"]["0xff00"]["data"] == "0x0001"
    assert out["iterated"] == [["0x61", "0x" + b"1b".hex()], ["0x62", "0x32"], ["0xff00", "0x0001"]]
    assert out["reversed"] == ["0xff00", "0x62", "0x61"]
    assert out["results"] == {str(outcome.seq): "Commit", str(overwritten.seq): "Commit"}
    assert "0x" + sid.hex() in out["holding"]
    assert out["isWriterOfStream"] is True and out["isAdmin"] is False


def test_malformed_stream_data_in_the_log(stack: Stack, tmp_path: Path) -> None:
    sid = stream_id("deaios/malformed")
    good = StreamData(writes=[Write(sid, b"k", b"x" * 1000)]).encode()
    files = {
        "truncated": good[:-600],
        "too long": (1).to_bytes(8, "big") + (MAX_SET_SIZE + 1).to_bytes(4, "big"),
        "oversize key": bytes(12) + (1).to_bytes(4, "big") + sid + b"\xff\xff\xff" + b"k" * 300,
    }

    async def job(kv: Client):
        storage = StorageClient(kv.session, stack.node_urls, stack.rpc, stack.flow, stack.private_key)
        seqs = {}
        for name, raw in files.items():
            path = tmp_path / name.replace(" ", "_")
            path.write_bytes(raw)
            seqs[name] = (await storage.upload(path, build_tags([sid]))).tx_seq
        results = {name: await kv.wait_result(seq) for name, seq in seqs.items()}
        return results, await kv.put(sid, "k", "fine")

    results, after = client_call(stack, job)
    assert results == {"truncated": "DataParseError: Invalid stream data",
                       "too long": "DataParseError: Stream read/write/access_control list too long",
                       "oversize key": "DataParseError: Invalid stream data"}
    assert after.ok  # the node is alive and replay goes on
    assert client_call(stack, lambda kv: kv.get(sid, "k")).value == b"fine"


def test_kill_mid_replay_then_restart_equals_uninterrupted(stack: Stack, tmp_path: Path) -> None:
    """A second KV node replays the whole log from scratch; SIGKILLed mid-replay and restarted, it ends
    in exactly the state of the stack's KV node, which replayed without interruption."""
    sid = stream_id("deaios/bulk")

    async def fill(kv: Client):
        seqs = []
        for n in range(12):
            data = StreamData(writes=[Write(sid, b"k%06d" % ((i * 7919 + n) % 5000), os.urandom(24))
                                      for i in range(4000)])
            seqs.append((await kv.submit(data, wait=False)).seq)
        return seqs

    bulk = client_call(stack, fill)
    kv = stack.extra["kv"]
    reference = wait_caught_up(kv["url"], 0)
    expected = digest(kv["dir"])

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = launch.node_command(tmp_path / "kv2", "127.0.0.1", port, stack.rpc, stack.flow, stack.node_urls,
                              stack.deploy_block, StreamConfig())
    killed_at = None
    for attempt in range(3):  # kill while some but not all transactions are replayed
        proc = spawn(cmd, tmp_path / "kv2.log", die_with_parent=True)
        try:
            deadline = time.monotonic() + 60
            while killed_at is None and time.monotonic() < deadline:
                try:
                    now = status(url)
                except OSError:
                    time.sleep(0.01)
                    continue
                if bulk[0] < now["nextTxSeq"] < bulk[-2]:  # amid the bulk writes (4,000 keys per tx)
                    proc.send_signal(signal.SIGKILL)
                    killed_at = now["nextTxSeq"]
                elif now["nextTxSeq"] >= bulk[-2]:
                    break  # too late: start over from scratch
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        if killed_at is not None:
            break
        subprocess.run(["rm", "-rf", str(tmp_path / "kv2")], check=True)
    assert killed_at is not None, "could not catch the KV node mid-replay"

    proc = spawn(cmd, tmp_path / "kv2.log", die_with_parent=True)
    try:
        assert wait_caught_up(url, reference["logTxs"])["nextTxSeq"] == reference["logTxs"]
        assert digest(tmp_path / "kv2") == expected
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "kv2.log").read_text()


def test_rebuild_from_the_log_gives_the_same_index(run: RunningStack, stack: Stack) -> None:
    kv = stack.extra["kv"]
    before = wait_caught_up(kv["url"], 0)
    expected = digest(kv["dir"])
    result = deaios("kv", "rebuild", "--stack", str(run.dir), home=run.home)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["txs"] == before["logTxs"] == line["nextTxSeq"]
    assert not pid_alive(kv["pid"]) and pid_alive(line["pid"])
    assert Stack.load(run.dir / "stack.json").extra["kv"]["pid"] == line["pid"]
    assert digest(kv["dir"]) == expected
    assert rpc_call(kv["url"], "kv_getValue", ["0x" + MODELS.hex(), "QUlfMTAw", 0, 100])["size"] > 0


def test_down_stops_the_kv_node_too(run: RunningStack) -> None:
    current = Stack.load(run.dir / "stack.json")
    kv_pid = current.extra["kv"]["pid"]  # relaunched by the rebuild: not a child of the launcher
    assert pid_alive(kv_pid)
    result = deaios("down", "--stack", str(run.dir), home=run.home)
    assert result.returncode == 0, result.stderr
    assert not pid_alive(kv_pid)
    for name, pid in current.pids().items():
        assert not pid_alive(pid), name
