"""The compute provider as a process of a local stack: its command line (used by `deaios up`), its
stack.json entry and its readiness probe.

`deaios up` runs one provider broker (`deaios compute provider`) with Anvil dev key 1 — passed in the
environment (`$DEAIOS_KEY`, `provider_env`), never on the command line where /proc shows it — serving the
echo model `deaios-echo` and settling every 2 s. It reads the contract addresses from the deployment record the
launcher's deploy step wrote (stack.json does not exist yet while the stack starts). stack.json lists it as

    "compute_provider": {"url": "http://127.0.0.1:PORT", "pid": PID, "address": "0x…", "model": "deaios-echo",
                         "dir": "DATA/compute/provider", "log": "DATA/logs/compute-provider.log",
                         "cmd": [argv…]}
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from deaios.stack.config import DEV_KEY_ROLES, dev_address, dev_key

PROVIDER_KEY_INDEX: int = DEV_KEY_ROLES["compute provider"]  # type: ignore[assignment]
MODEL = "deaios-echo"
SETTLE_INTERVAL = 2.0

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def provider_key() -> str:
    return dev_key(PROVIDER_KEY_INDEX)


def provider_address() -> str:
    return dev_address(PROVIDER_KEY_INDEX)


def provider_command(data_dir: Path, host: str, port: int, rpc: str, deployment: Path) -> list[str]:
    """`deaios compute provider …` serving on host:port, contracts from the `deployment` record (the key comes
    from the environment: `provider_env`)."""
    return [sys.executable, "-m", "deaios.cli", "compute", "--rpc", rpc, "--deployment", str(deployment),
            "provider", "--dir", str(data_dir), "--host", host, "--port", str(port), "--model", MODEL,
            "--settle-interval", str(SETTLE_INTERVAL)]


def provider_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The provider's environment: its key in $DEAIOS_KEY (what `deaios compute --key` defaults to)."""
    env = dict(os.environ if base is None else base)
    env["DEAIOS_KEY"] = provider_key()
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ready(url: str, rpc: str, deployment: Path) -> bool:
    """Whether the broker answers HTTP and its service is registered on chain at `url`."""
    from deaios.compute.chain import ComputeAddresses, ComputeChain

    with _OPENER.open(f"{url}/deaios/v1/service", timeout=2.0) as resp:
        json.load(resp)
    chain = ComputeChain(rpc, ComputeAddresses.from_file(deployment), None)
    service = chain.service(provider_address())
    return service is not None and service.url == url


def stack_entry(data_dir: Path, url: str, pid: int, log: Path, cmd: list[str]) -> dict:
    return {"url": url, "pid": pid, "address": provider_address(), "model": MODEL, "dir": str(data_dir),
            "log": str(log), "cmd": cmd}
