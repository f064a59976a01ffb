"""The INFT re-encryption oracle as a process of a local stack: its command line, `InftOracleService` (used by
`deaios up`) and readiness probe.

`deaios up` runs `deaios inft oracle` with the stack's `inft_oracle` key (Anvil dev key 15 locally: the
`oracleSigner` the local deployment trusts; against an existing chain, the operator's key whose address was given
to the deploy as `--oracle-signer`); the same key pays the storage fees of re-encrypted files. stack.json lists it as
`"inft_oracle": "http://127.0.0.1:PORT"`, `"inft_oracle_pid": PID` and `"inft_oracle_cmd": [argv…]`; its log is
DATA/logs/inft-oracle.log. Tests and tools stop it (`kill`, SIGKILL by default: a crash) and start it again
(`relaunch`: the recorded command line and the dev key).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from deaios.errors import UserError
from deaios.procs import child_env, free_ports, http_get_json, spawn, stop_pid
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key
from deaios.stack.service import LaunchContext, StackService

KEY_ENV = "DEAIOS_INFT_ORACLE_KEY"  # `deaios inft oracle --key` falls back to it: the key stays off the command line


def oracle_command(host: str, port: int, rpc: str, node_urls: list[str], flow: str, deployment: Path) -> list[str]:
    """`deaios inft oracle …` on host:port, storing re-encrypted files through `node_urls` (key: $KEY_ENV)."""
    return [sys.executable, "-m", "deaios.cli", "inft", "oracle", "--rpc", rpc, "--nodes", ",".join(node_urls),
            "--flow", flow, "--deployment", str(deployment), "--host", host, "--port", str(port)]


def ready(url: str) -> bool:
    """Whether the oracle answers GET /info."""
    http_get_json(f"{url}/info")
    return True


def kill(stack: Stack, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Stop the stack's oracle (default SIGKILL, as a crash) and wait until it is gone."""
    stop_pid(int(stack.extra.get("inft_oracle_pid") or 0), sig=sig, timeout=timeout)


def relaunch(stack: Stack) -> subprocess.Popen:
    """Start the oracle of a local stack again (its recorded command line, dev key 15, the same port); its new pid
    is recorded in stack.json. Wait for it with `ready`."""
    cmd = stack.extra.get("inft_oracle_cmd")
    if not cmd:
        raise UserError(f"the stack in {stack.dir or stack.path} records no INFT oracle command line")
    log = Path(stack.dir or ".") / "logs" / "inft-oracle.log"
    proc = spawn(list(cmd), log, env=child_env({KEY_ENV: dev_key(int(DEV_KEY_ROLES["INFT oracle"]))}),  # type: ignore[arg-type]
                 die_with_parent=False)
    stack.extra["inft_oracle_pid"] = proc.pid
    if stack.path is not None:
        current = Stack.load(stack.path)  # keep what others wrote since `stack` was loaded
        current.extra["inft_oracle_pid"] = proc.pid
        current.save()
    return proc


class InftOracleService(StackService):
    """The re-encryption oracle (only in stacks whose deployment has the INFT contracts)."""

    name = "inft-oracle"

    def __init__(self) -> None:
        self.url: str | None = None
        self.pid: int | None = None
        self.cmd: list[str] = []

    def start(self, ctx: LaunchContext) -> None:
        if not ctx.contracts.get("inft_nft"):
            ctx.say("no INFT contracts in this stack (restarted from an older version): no INFT oracle")
            return
        key = ctx.keys.one("inft_oracle")
        if key is None:
            ctx.say("no inft_oracle key: no INFT oracle")
            return
        port = free_ports(ctx.host, 1)[0]
        self.url = ctx.url(port)
        cmd = self.cmd = oracle_command(ctx.host, port, ctx.rpc, ctx.storage_urls, ctx.contracts["flow"],
                                        ctx.deployment_file)
        self.pid = ctx.spawn(self.name, cmd, ctx.logs / "inft-oracle.log", env=child_env({KEY_ENV: key})).pid

    def wait(self, ctx: LaunchContext) -> None:
        if self.url is not None:
            url = self.url
            ctx.wait(self.name, lambda: ready(url), ctx.logs / "inft-oracle.log")

    def entries(self) -> dict[str, Any]:
        return {"inft_oracle": self.url, "inft_oracle_pid": self.pid, "inft_oracle_cmd": self.cmd} if self.url else {}
