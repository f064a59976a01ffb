"""Storage nodes and the indexer as processes of a stack (`deaios up --nodes N`): their command lines, their
stack.json entries, readiness, and relaunching a node a test or tool stopped.

Storage node i keeps its data in DATA/nodes/<i> and logs to DATA/logs/node-<i>.log; every node knows every
peer's URL (share s of segment i lives on node (i+s) mod n). stack.json lists them as

    "storage_nodes": [{"index": i, "url": "http://HOST:PORT", "pid": PID, "dir": "DATA/nodes/i",
                       "log": "DATA/logs/node-i.log", "cmd": [argv…]}, …],
    "indexer": "http://HOST:PORT", "indexer_pid": PID, "indexer_cmd": [argv…]

A node is ready once its log sync is past the deploy block; the indexer once it lists every node as trusted.
`relaunch_node` and `relaunch_indexer` start one again after a crash (tests, the fault matrix).

Joining (`deaios up --chain … --join NODE_URL`): the stack starts no storage nodes of its own but uses the network
the node at NODE_URL belongs to — its ordered peer list (`deaios_peers`) — so that this machine's KV node, DA
nodes, compute provider and oracle work with it; the joined nodes are listed with `"joined": true` and no pid.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from deaios.errors import UserError
from deaios.procs import free_ports, rpc_call, spawn
from deaios.stack.config import Stack
from deaios.stack.service import LaunchContext, StackService, relaunch


def node_command(data_dir: Path, host: str, port: int, rpc: str, flow: str, index: int, peers: list[str],
                 start_block: int) -> list[str]:
    """`deaios storage node …` for node `index` of `peers`."""
    return [sys.executable, "-m", "deaios.cli", "storage", "node", "--dir", str(data_dir), "--host", host,
            "--port", str(port), "--chain-rpc", rpc, "--flow", flow, "--index", str(index), "--peers",
            ",".join(peers), "--start-block", str(start_block)]


def indexer_command(host: str, port: int, node_urls: list[str]) -> list[str]:
    return [sys.executable, "-m", "deaios.cli", "storage", "indexer", "--host", host, "--port", str(port),
            "--nodes", ",".join(node_urls)]


class StorageService(StackService):
    """N storage nodes and the indexer in front of them."""

    name = "storage"

    def __init__(self, count: int, join: str | None = None) -> None:
        self.count = count
        self.join = join
        self.nodes: list[dict[str, Any]] = []
        self.indexer: dict[str, Any] = {}

    def start(self, ctx: LaunchContext) -> None:
        if self.join:
            self._start_joined(ctx)
            return
        ports = free_ports(ctx.host, self.count + 1)
        urls = [ctx.url(port) for port in ports[:self.count]]
        for i, url in enumerate(urls):
            node_dir = ctx.data_dir / "nodes" / str(i)
            cmd = node_command(node_dir, ctx.host, ports[i], ctx.rpc, ctx.contracts["flow"], i, urls,
                               ctx.deploy_block)
            log = ctx.logs / f"node-{i}.log"
            proc = ctx.spawn(f"node-{i}", cmd, log)
            self.nodes.append({"index": i, "url": url, "pid": proc.pid, "dir": str(node_dir), "log": str(log),
                               "cmd": cmd})
        self._start_indexer(ctx, ports[-1], urls)

    def _start_indexer(self, ctx: LaunchContext, port: int, urls: list[str]) -> None:
        cmd = indexer_command(ctx.host, port, urls)
        proc = ctx.spawn("indexer", cmd, ctx.logs / "indexer.log")
        self.indexer = {"indexer": ctx.url(port), "indexer_pid": proc.pid, "indexer_cmd": cmd}
        # published now: the services started after this one need the node URLs
        ctx.stack.update(self.entries())

    def _start_joined(self, ctx: LaunchContext) -> None:
        assert self.join is not None
        try:
            reply = rpc_call(self.join.rstrip("/"), "deaios_peers", timeout=10.0)
            urls = [str(url) for url in reply["peers"]]
        except Exception as exc:  # noqa: BLE001  (any failure: the node is not a reachable deaios storage node)
            raise UserError(f"--join {self.join}: cannot read its storage network ({exc})") from None
        self.count = len(urls)
        self.nodes = [{"index": i, "url": url, "joined": True} for i, url in enumerate(urls)]
        ctx.say(f"joining the storage network of {self.join}: {len(urls)} nodes")
        self._start_indexer(ctx, free_ports(ctx.host, 1)[0], urls)

    def wait(self, ctx: LaunchContext) -> None:
        indexer = self.indexer["indexer"]
        if self.join:  # the joined network's health is its operators' business: one live node will do
            ctx.wait("indexer", lambda: len(rpc_call(indexer, "indexer_getShardedNodes", timeout=3.0)
                                            .get("trusted", [])) >= 1, ctx.logs / "indexer.log")
            return
        for node in self.nodes:
            def synced(url: str = node["url"]) -> bool:
                status = rpc_call(url, "zgs_getStatus", timeout=1.0)
                return isinstance(status, dict) and status.get("logSyncHeight", -1) >= ctx.deploy_block
            ctx.wait(f"node-{node['index']}", synced, Path(node["log"]))
        ctx.wait("indexer", lambda: len(rpc_call(indexer, "indexer_getShardedNodes", timeout=3.0)
                                        .get("trusted", [])) == self.count, ctx.logs / "indexer.log")

    def entries(self) -> dict[str, Any]:
        return {"storage_nodes": self.nodes, **self.indexer}


def relaunch_indexer(stack: Stack) -> subprocess.Popen:
    """Start the stack's indexer again with its recorded command line (after a crash or a test's SIGKILL) and
    record its new pid in stack.json, so that `deaios down` stops it too."""
    cmd = stack.extra.get("indexer_cmd")
    if not cmd:
        raise UserError(f"the stack in {stack.dir} records no indexer command line (started by an older version)")
    proc = spawn(list(cmd), Path(stack.dir) / "logs" / "indexer.log", die_with_parent=False)
    stack.indexer_pid = proc.pid
    if stack.path is not None:  # keep what others wrote since `stack` was loaded
        current = Stack.load(stack.path)
        current.indexer_pid = proc.pid
        current.save()
    return proc


def relaunch_node(stack: Stack, index: int) -> subprocess.Popen:
    """Start storage node `index` again with its recorded command line (for tests that killed it) and
    record its new pid in stack.json, so that `deaios down` stops it too."""
    return relaunch(stack, lambda s: s.storage_nodes[index], default_log=f"node-{index}.log")
