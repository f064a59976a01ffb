"""The INFT re-encryption oracle as a process of a local stack: its command line, `InftOracleService` (used by
`deaios up`) and readiness probe.

`deaios up` runs `deaios inft oracle` with the stack's `inft_oracle` key (Anvil dev key 15 locally: the
`oracleSigner` the local deployment trusts; against an existing chain, the operator's key whose address was given
to the deploy as `--oracle-signer`); the same key pays the storage fees of re-encrypted files. stack.json lists it as
`"inft_oracle": "http://127.0.0.1:PORT"` and `"inft_oracle_pid": PID`; its log is DATA/logs/inft-oracle.log.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from deaios.procs import child_env, free_ports, http_get_json
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


class InftOracleService(StackService):
    """The re-encryption oracle (only in stacks whose deployment has the INFT contracts)."""

    name = "inft-oracle"

    def __init__(self) -> None:
        self.url: str | None = None
        self.pid: int | None = None

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
        cmd = oracle_command(ctx.host, port, ctx.rpc, ctx.storage_urls, ctx.contracts["flow"], ctx.deployment_file)
        self.pid = ctx.spawn(self.name, cmd, ctx.logs / "inft-oracle.log", env=child_env({KEY_ENV: key})).pid

    def wait(self, ctx: LaunchContext) -> None:
        if self.url is not None:
            url = self.url
            ctx.wait(self.name, lambda: ready(url), ctx.logs / "inft-oracle.log")

    def entries(self) -> dict[str, Any]:
        return {"inft_oracle": self.url, "inft_oracle_pid": self.pid} if self.url else {}
