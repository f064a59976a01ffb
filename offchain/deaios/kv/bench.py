"""`deaios bench kv`: replay throughput into the index, and kv_getValue latency / throughput over loopback.

1. replay: WRITES key writes (16-byte keys in random order, 32-byte values) in transactions of TX_WRITES writes, encoded
   as stream data, replayed by deaios.kv.replay into a fresh lmdb index, batched into write
   transactions as the KV node does (decode + version/permission checks + index + commit; the data
   download from storage is not included). Twice: fresh keys, then the same keys again (overwrites,
   which also move the old versions to the history).
2. kv_getValue over HTTP: the index is served by a real `deaios kv node` process (read-only mode, no
   chain), asked for random existing keys: 1 client on one keep-alive connection (latency p50/p99), then
   CLIENTS concurrent clients (throughput).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from deaios.bench import emit
from deaios.kv.codec import StreamData, Write
from deaios.kv.node import BATCH_TXS
from deaios.kv.replay import Replayer, StreamConfig
from deaios.kv.store import KvIndex, TxRecord

STREAM = bytes(range(32))
SENDER = b"\x11" * 20


def build_txs(writes: int, tx_writes: int, first_seq: int, rng: random.Random) -> list[tuple[TxRecord, bytes]]:
    keys = [b"key-%012d" % i for i in range(writes)]
    rng.shuffle(keys)  # random order: no append-only fast path in the index
    out = []
    for n, start in enumerate(range(0, writes, tx_writes)):
        data = StreamData(writes=[Write(STREAM, k, rng.randbytes(32)) for k in keys[start:start + tx_writes]]).encode()
        out.append((TxRecord(first_seq + n, SENDER, b"\0" * 32, len(data), (STREAM,)), data))
    return out


def replay(index: KvIndex, txs: list[tuple[TxRecord, bytes]]) -> float:
    """Seconds to replay `txs` (batched as by the node)."""
    replayer = Replayer(StreamConfig())
    started = time.perf_counter()
    for first in range(0, len(txs), BATCH_TXS):
        with index.writer() as w:
            for tx, data in txs[first:first + BATCH_TXS]:
                if replayer.apply(w, tx, data) != "Commit":
                    raise RuntimeError(f"tx {tx.seq} did not commit")
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _body(key: bytes) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "kv_getValue",
                       "params": ["0x" + STREAM.hex(), base64.b64encode(key).decode(), 0, 1024]}).encode()


def latency_one_client(port: int, keys: list[bytes], requests: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    bodies = [_body(random.choice(keys)) for _ in range(requests)]
    times = []
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
        times.append(time.perf_counter() - t0)
        if "result" not in reply or not reply["result"]["size"]:
            raise RuntimeError(f"unexpected reply {reply}")
    conn.close()
    return times


async def throughput(port: int, keys: list[bytes], requests: int, clients: int) -> tuple[float, list[float]]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/"
    per_client = requests // clients
    times: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        bodies = [_body(random.choice(keys)) for _ in range(per_client)]
        for body in bodies:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
            times.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return per_client * clients / elapsed, times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@click.command("kv")
@click.option("--writes", default=262_144, show_default=True, type=click.IntRange(1), help="Key writes to replay.")
@click.option("--tx-writes", default=4096, show_default=True, type=click.IntRange(1, 65536),
              help="Writes per KV transaction.")
@click.option("--requests", default=5000, show_default=True, type=click.IntRange(10),
              help="kv_getValue calls per measurement.")
@click.option("--clients", default=16, show_default=True, type=click.IntRange(1), help="Concurrent clients.")
def kv(writes: int, tx_writes: int, requests: int, clients: int) -> None:
    """KV replay throughput and kv_getValue latency / throughput (JSON lines)."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="deaios-bench-kv-") as tmp:
        directory = Path(tmp) / "kv"
        index = KvIndex(directory)
        fresh = build_txs(writes, tx_writes, 0, rng)
        seconds = replay(index, fresh)
        emit("kv.replay.fresh_keys", writes / seconds, "writes/s", writes=writes, tx_writes=tx_writes)
        again = build_txs(writes, tx_writes, len(fresh), rng)
        seconds = replay(index, again)
        emit("kv.replay.overwrites", writes / seconds, "writes/s", writes=writes, tx_writes=tx_writes)
        index.close()

        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "kv", "node", "--dir", str(directory),
                                 "--port", str(port), "--log-level", "WARNING"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise click.ClickException(f"the KV node did not start: {proc.stderr.read().decode()[-2000:]}"
                                                   if proc.stderr else "the KV node did not start")
                    time.sleep(0.05)
            keys = [b"key-%012d" % i for i in range(writes)]
            latency_one_client(port, keys, min(500, requests))  # warm up
            times = latency_one_client(port, keys, requests)
            emit("kv.get_value.p50", _pct(times, 0.5) * 1e3, "ms", clients=1, requests=requests)
            emit("kv.get_value.p99", _pct(times, 0.99) * 1e3, "ms", clients=1, requests=requests)
            rate, times = asyncio.run(throughput(port, keys, requests * 2, clients))
            emit("kv.get_value.throughput", rate, "requests/s", clients=clients, requests=requests * 2)
            emit("kv.get_value.p99_concurrent", _pct(times, 0.99) * 1e3, "ms", clients=clients)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
