"""The KV node as a process of a stack: its command line (used by `deaios up`), its stack.json entry,
and stopping / relaunching it (`deaios kv rebuild`, tests).

stack.json lists it as

    "kv": {"url": "http://127.0.0.1:PORT", "pid": PID, "dir": "DATA/kv", "log": "DATA/logs/kv.log",
           "cmd": [argv…], "streams": "all" | ["0x…", …]}
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deaios.errors import UserError
from deaios.kv.replay import StreamConfig
from deaios.stack.config import Stack, pid_alive


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


def _ours(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:
        return b"deaios" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def stop(stack: Stack, timeout: float = 30.0) -> None:
    """Stop the stack's KV node (SIGTERM, then SIGKILL after `timeout`) and wait until it is gone."""
    pid = int(kv_of(stack).get("pid") or 0)
    if not _ours(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)


def relaunch(stack: Stack) -> subprocess.Popen:
    """Start the stack's KV node again with its recorded command line and record its new pid in
    stack.json (so that `deaios down` stops it)."""
    from deaios.stack.launcher import spawn

    kv = kv_of(stack)
    log = Path(kv.get("log") or Path(stack.dir) / "logs" / "kv.log")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = spawn(list(kv["cmd"]), log, env=env, die_with_parent=False)
    kv["pid"] = proc.pid
    if stack.path is not None:
        current = Stack.load(stack.path)  # keep what others wrote since `stack` was loaded
        current.extra.setdefault("kv", dict(kv))["pid"] = proc.pid
        current.save()
    return proc
