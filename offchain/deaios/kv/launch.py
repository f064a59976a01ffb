"""The KV node as a process of a stack: its command line and `KVService` (used by `deaios up`), its stack.json
entry, and stopping / relaunching it (`deaios kv rebuild`, tests).

stack.json lists it as

    "kv": {"url": "http://127.0.0.1:PORT", "pid": PID, "dir": "DATA/kv", "log": "DATA/logs/kv.log",
           "cmd": [argv…], "streams": "all" | ["0x…", …]}
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from deaios.errors import UserError
from deaios.kv.replay import StreamConfig
from deaios.procs import free_ports, rpc_call, stop_pid
from deaios.stack.config import Stack
from deaios.stack.service import LaunchContext, StackService, relaunch as relaunch_entry


def node_command(data_dir: Path, host: str, port: int, chain_rpc: str, flow: str, node_urls: list[str],
                 start_block: int, streams: StreamConfig) -> list[str]:
    """`deaios kv node …` for a KV node following `flow` on `chain_rpc`, reading from `node_urls`."""
    described = streams.describe()
    return [sys.executable, "-m", "deaios.cli", "kv", "node", "--dir", str(data_dir), "--host", host, "--port",
            str(port), "--chain-rpc", chain_rpc, "--flow", flow, "--nodes", ",".join(node_urls), "--start-block",
            str(start_block), "--streams", described if isinstance(described, str) else ",".join(described)]


def stack_entry(data_dir: Path, url: str, pid: int, log: Path, cmd: list[str], streams: StreamConfig) -> dict:
    return {"url": url, "pid": pid, "dir": str(data_dir), "log": str(log), "cmd": cmd, "streams": streams.describe()}


def kv_of(stack: Stack) -> dict:
    """The stack's KV node entry; a UserError if it has none."""
    kv = stack.extra.get("kv")
    if not isinstance(kv, dict) or not kv.get("url"):
        raise UserError(f"the stack in {stack.dir or stack.path} has no KV node (no \"kv\" in its stack.json); "
                        "restart it with `deaios up` from this version")
    return kv


def stop(stack: Stack, timeout: float = 30.0) -> None:
    """Stop the stack's KV node (SIGTERM, then SIGKILL after `timeout`) and wait until it is gone."""
    stop_pid(int(kv_of(stack).get("pid") or 0), timeout=timeout)


def relaunch(stack: Stack) -> subprocess.Popen:
    """Start the stack's KV node again with its recorded command line and record its new pid in
    stack.json (so that `deaios down` stops it)."""
    return relaunch_entry(stack, kv_of, default_log="kv.log")


class KVService(StackService):
    """The KV node, following the flow and reading stream data from the stack's storage nodes."""

    name = "kv"

    def __init__(self, streams: str) -> None:
        self.streams = StreamConfig.parse(streams)
        self.entry: dict[str, Any] = {}

    def start(self, ctx: LaunchContext) -> None:
        port = free_ports(ctx.host, 1)[0]
        url, log, data_dir = ctx.url(port), ctx.logs / "kv.log", ctx.data_dir / "kv"
        cmd = node_command(data_dir, ctx.host, port, ctx.rpc, ctx.contracts["flow"], ctx.storage_urls,
                           ctx.deploy_block, self.streams)
        proc = ctx.spawn("kv", cmd, log)
        self.entry = stack_entry(data_dir, url, proc.pid, log, cmd, self.streams)

    def wait(self, ctx: LaunchContext) -> None:
        url = self.entry["url"]
        ctx.wait("kv", lambda: (rpc_call(url, "deaios_kvStatus", timeout=1.0)["logSyncHeight"] or -1)
                 >= ctx.deploy_block, Path(self.entry["log"]))

    def entries(self) -> dict[str, Any]:
        return {"kv": self.entry}
