"""The INFT re-encryption oracle as a process of a local stack: its command line (used by `deaios up`) and
readiness probe.

`deaios up` runs `deaios inft oracle` with Anvil dev key 15 (the `oracleSigner` the local deployment
trusts; the same key pays the storage fees of re-encrypted files), passed in the environment
($DEAIOS_INFT_ORACLE_KEY, `oracle_env`) rather than on the command line where /proc shows it. stack.json lists it as
`"inft_oracle": "http://127.0.0.1:PORT"` and `"inft_oracle_pid": PID`; its log is DATA/logs/inft-oracle.log.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from deaios.stack.config import DEV_KEY_ROLES, dev_key

ORACLE_KEY_INDEX: int = DEV_KEY_ROLES["INFT oracle"]  # type: ignore[assignment]
KEY_ENV = "DEAIOS_INFT_ORACLE_KEY"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def oracle_command(host: str, port: int, rpc: str, node_urls: list[str], flow: str, deployment: Path) -> list[str]:
    """`deaios inft oracle …` on host:port, storing re-encrypted files through `node_urls` (its key comes
    from the environment: `oracle_env`)."""
    return [sys.executable, "-m", "deaios.cli", "inft", "oracle", "--rpc", rpc, "--nodes", ",".join(node_urls),
            "--flow", flow, "--deployment", str(deployment), "--host", host, "--port", str(port)]


def oracle_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The oracle's environment: its key in $DEAIOS_INFT_ORACLE_KEY."""
    env = dict(os.environ if base is None else base)
    env[KEY_ENV] = dev_key(ORACLE_KEY_INDEX)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ready(url: str) -> bool:
    """Whether the oracle answers GET /info."""
    with _OPENER.open(f"{url}/info", timeout=2.0) as resp:
        return resp.status == 200
