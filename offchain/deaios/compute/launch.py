"""The compute provider as a process of a local stack: its command line, `ComputeProviderService` (used by
`deaios up`), its stack.json entry and its readiness probe.

`deaios up` runs one provider broker (`deaios compute provider`) with Anvil dev key 1, serving the echo
model `deaios-echo` and settling every 2 s. It reads the contract addresses from the deployment record the
launcher's deploy step wrote (stack.json does not exist yet while the stack starts). stack.json lists it as

    "compute_provider": {"url": "http://127.0.0.1:PORT", "pid": PID, "address": "0x…", "model": "deaios-echo",
                         "dir": "DATA/compute/provider", "log": "DATA/logs/compute-provider.log",
                         "cmd": [argv…]}
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from deaios.procs import free_ports, http_get_json
from deaios.stack.config import DEV_KEY_ROLES, dev_address, dev_key
from deaios.stack.service import LaunchContext, StackService

PROVIDER_KEY_INDEX: int = DEV_KEY_ROLES["compute provider"]  # type: ignore[assignment]
MODEL = "deaios-echo"
SETTLE_INTERVAL = 2.0


def provider_key() -> str:
    return dev_key(PROVIDER_KEY_INDEX)


def provider_address() -> str:
    return dev_address(PROVIDER_KEY_INDEX)


def provider_command(data_dir: Path, host: str, port: int, rpc: str, deployment: Path) -> list[str]:
    """`deaios compute provider …` serving on host:port, contracts from the `deployment` record."""
    return [sys.executable, "-m", "deaios.cli", "compute", "--rpc", rpc, "--deployment", str(deployment),
            "--key", provider_key(), "provider", "--dir", str(data_dir), "--host", host, "--port", str(port),
            "--model", MODEL, "--settle-interval", str(SETTLE_INTERVAL)]


def ready(url: str, rpc: str, deployment: Path) -> bool:
    """Whether the broker answers HTTP and its service is registered on chain at `url`."""
    from deaios.compute.chain import ComputeAddresses, ComputeChain

    http_get_json(f"{url}/deaios/v1/service")
    chain = ComputeChain(rpc, ComputeAddresses.from_file(deployment), None)
    service = chain.service(provider_address())
    return service is not None and service.url == url


def stack_entry(data_dir: Path, url: str, pid: int, log: Path, cmd: list[str]) -> dict:
    return {"url": url, "pid": pid, "address": provider_address(), "model": MODEL, "dir": str(data_dir),
            "log": str(log), "cmd": cmd}


class ComputeProviderService(StackService):
    """One provider broker serving the echo model, settling on its own."""

    name = "compute-provider"

    def __init__(self) -> None:
        self.entry: dict[str, Any] = {}

    def start(self, ctx: LaunchContext) -> None:
        port = free_ports(ctx.host, 1)[0]
        data_dir, log = ctx.data_dir / "compute" / "provider", ctx.logs / "compute-provider.log"
        cmd = provider_command(data_dir, ctx.host, port, ctx.rpc, ctx.deployment_file)
        proc = ctx.spawn(self.name, cmd, log)
        self.entry = stack_entry(data_dir, f"http://{ctx.host}:{port}", proc.pid, log, cmd)

    def wait(self, ctx: LaunchContext) -> None:
        ctx.wait(self.name, lambda: ready(self.entry["url"], ctx.rpc, ctx.deployment_file), Path(self.entry["log"]))

    def entries(self) -> dict[str, Any]:
        return {"compute_provider": self.entry}
