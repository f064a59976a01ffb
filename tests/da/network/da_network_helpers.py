"""Helpers for the DA end-to-end tests: DA nodes as real `deaios da node` processes against the test
chain (a uniquely named module: tests must not import from `conftest`)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEAIOS = [sys.executable, "-m", "deaios.cli"]
START_TIMEOUT = 180.0  # nodes load their KZG tables (~2 s of CPU each) before they answer


@dataclass
class NodeProcess:
    proc: subprocess.Popen
    url: str
    address: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nodes(rpc: str, entrance: str, keys: list[str], base: Path, faults: list[str] | None = None,
                votes: int = 1) -> list[NodeProcess]:
    """Start one DA node per key (in parallel) and wait until each is registered and listening."""
    faults = faults or ["none"] * len(keys)
    procs = []
    for i, (key, fault) in enumerate(zip(keys, faults, strict=True)):
        log = base / f"node{i}.log"
        cmd = DEAIOS + ["da", "node", "--rpc", rpc, "--entrance", entrance, "--dir", str(base / f"node{i}"),
                        "--votes", str(votes), "--fault", fault, "--poll-interval", "0.5"]
        env = {**os.environ, "DEAIOS_DA_NODE_KEY": key}
        procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), env=env), log))
    nodes = []
    deadline = time.monotonic() + START_TIMEOUT
    for proc, log in procs:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(max(0.1, deadline - time.monotonic())):
            for p, _ in procs:
                p.kill()
            raise RuntimeError(f"DA node did not start: {log.read_text()[-2000:]}")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"DA node exited: {log.read_text()[-2000:]}")
        info = json.loads(line)
        nodes.append(NodeProcess(proc, info["url"], info["address"], log))
    return nodes


def put_blob(net: dict, client, size: int, node_index: int = 0) -> tuple:
    """Disperse `size` random bytes; (their blob reference, node `node_index`, the first column it holds)."""
    import asyncio

    from deaios.da.encoding import columns_of_rows

    ref = asyncio.run(client.put(os.urandom(size))).ref
    node = net["nodes"][node_index]
    quorum = net["chain"].quorum(ref.epoch, ref.quorum_id)
    return ref, node, columns_of_rows(quorum.rows_of(node.address), quorum.rows)[0]


def deaios_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(DEAIOS + list(args), capture_output=True, text=True, timeout=timeout)
