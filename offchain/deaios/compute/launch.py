"""The compute provider as a process of a local stack: its command line, `ComputeProviderService` (used by
`deaios up`), its stack.json entry and its readiness probe.

Tests and tools stop it (`kill`, SIGKILL by default: a crash) and start it again (`relaunch`: the recorded
command line and the dev key; its bills survive in its directory).

`deaios up` runs one provider broker (`deaios compute provider`) with the stack's `compute_provider` key (Anvil
dev key 1 locally; none given against an existing chain: no provider), serving the echo model `deaios-echo` and
settling every 2 s; the service URL it registers on chain is the stack's advertised URL. It reads the contract addresses from the deployment record the
launcher's deploy step wrote (stack.json does not exist yet while the stack starts). stack.json lists it as

    "compute_provider": {"url": "http://127.0.0.1:PORT", "pid": PID, "address": "0x…", "model": "deaios-echo",
                         "dir": "DATA/compute/provider", "log": "DATA/logs/compute-provider.log",
                         "cmd": [argv…]}
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from deaios.errors import UserError
from deaios.procs import child_env, free_ports, http_get_json, stop_pid
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key
from deaios.stack.keys import address_of
from deaios.stack.service import LaunchContext, StackService, relaunch as relaunch_entry

MODEL = "deaios-echo"
SETTLE_INTERVAL = 2.0
KEY_ENV = "DEAIOS_KEY"  # `deaios compute --key` falls back to it: the key stays off the command line


def provider_command(data_dir: Path, host: str, port: int, rpc: str, deployment: Path, public_url: str) -> list[str]:
    """`deaios compute provider …` serving on host:port, contracts from the `deployment` record (the key comes
    from $DEAIOS_KEY)."""
    return [sys.executable, "-m", "deaios.cli", "compute", "--rpc", rpc, "--deployment", str(deployment),
            "provider", "--dir", str(data_dir), "--host", host, "--port", str(port), "--public-url", public_url,
            "--model", MODEL, "--settle-interval", str(SETTLE_INTERVAL)]


def ready(url: str, rpc: str, deployment: Path, address: str) -> bool:
    """Whether the broker answers HTTP and its service is registered on chain at `url`."""
    from deaios.compute.chain import ComputeAddresses, ComputeChain

    http_get_json(f"{url}/deaios/v1/service")
    chain = ComputeChain(rpc, ComputeAddresses.from_file(deployment), None)
    service = chain.service(address)
    return service is not None and service.url == url


def stack_entry(data_dir: Path, url: str, pid: int, log: Path, cmd: list[str], address: str) -> dict:
    return {"url": url, "pid": pid, "address": address, "model": MODEL, "dir": str(data_dir),
            "log": str(log), "cmd": cmd}


def provider_of(stack: Stack) -> dict[str, Any]:
    """The stack's compute provider entry; a UserError if it has none."""
    entry = stack.extra.get("compute_provider")
    if not isinstance(entry, dict) or not entry.get("cmd"):
        raise UserError(f"the stack in {stack.dir or stack.path} runs no compute provider")
    return entry


def kill(stack: Stack, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Stop the stack's provider broker (default SIGKILL, as a crash) and wait until it is gone."""
    stop_pid(int(provider_of(stack).get("pid") or 0), sig=sig, timeout=timeout)


def relaunch(stack: Stack) -> subprocess.Popen:
    """Start the provider broker of a local stack again (its recorded command line, dev key 1); its new pid is
    recorded in stack.json. Wait for it with `ready`."""
    entry = provider_of(stack)
    key = dev_key(int(DEV_KEY_ROLES["compute provider"]))  # type: ignore[arg-type]
    if address_of(key) != entry.get("address"):
        raise UserError("the compute provider runs with an operator's key, which stack.json does not hold: "
                        "restart the stack (`deaios up`) instead")
    return relaunch_entry(stack, provider_of, env=child_env({KEY_ENV: key}), default_log="compute-provider.log")


class ComputeProviderService(StackService):
    """One provider broker serving the echo model, settling on its own."""

    name = "compute-provider"

    def __init__(self) -> None:
        self.entry: dict[str, Any] = {}

    def start(self, ctx: LaunchContext) -> None:
        key = ctx.keys.one("compute_provider")
        if key is None:
            ctx.say("no compute_provider key: no compute provider")
            return
        if not ctx.contracts.get("compute_ledger"):
            ctx.say("no compute contracts in this deployment: no compute provider")
            return
        port = free_ports(ctx.host, 1)[0]
        data_dir, log = ctx.data_dir / "compute" / "provider", ctx.logs / "compute-provider.log"
        cmd = provider_command(data_dir, ctx.host, port, ctx.rpc, ctx.deployment_file, ctx.url(port))
        proc = ctx.spawn(self.name, cmd, log, env=child_env({KEY_ENV: key}))
        self.entry = stack_entry(data_dir, ctx.url(port), proc.pid, log, cmd, address_of(key))

    def wait(self, ctx: LaunchContext) -> None:
        if self.entry:
            ctx.wait(self.name, lambda: ready(self.entry["url"], ctx.rpc, ctx.deployment_file, self.entry["address"]),
                     Path(self.entry["log"]))

    def entries(self) -> dict[str, Any]:
        return {"compute_provider": self.entry} if self.entry else {}
