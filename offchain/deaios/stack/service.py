"""What an area contributes to a stack: the `StackService` an area's `launch.py` defines, the `LaunchContext`
the launcher hands it, and `relaunch` for restarting a recorded process.

The launcher (`deaios.stack.launcher`) owns the chain and the contracts; every other process belongs to an
area. It calls, for every service in order, `start(ctx)` (spawn processes through `ctx.spawn`, which logs
them and supervises them), then, again in order, `wait(ctx)` (readiness probes, on-chain registration) and
merges `entries()` into `ctx.stack` — the stack.json being built — so that a later service sees what an
earlier one published (the KV node needs the storage nodes' URLs, supervision registration needs the DA
nodes). The launcher never imports an area by name except in its list of services.

A service finds its signing key in `ctx.keys` (`deaios.stack.keys`: Anvil dev keys in a local stack, the operator's
keys against an existing chain) and builds the URLs it publishes with `ctx.url(port)`: processes listen on
`ctx.host` (e.g. 0.0.0.0) and are reached at `ctx.advertise` (the host name other machines use).

This module sits below the areas: it imports only `deaios.procs` and `deaios.stack.config`/`keys`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deaios.procs import child_env, spawn, wait_until
from deaios.stack.config import Stack
from deaios.stack.keys import ServiceKeys

SpawnFn = Callable[..., subprocess.Popen]


@dataclass
class LaunchContext:
    """What a service needs to start: where the chain and contracts are, where to put data and logs, how to
    spawn, and the stack.json entries published so far."""

    data_dir: Path
    logs: Path
    host: str
    rpc: str
    chain_id: int
    contracts: dict[str, str]
    deploy_block: int
    #: the deployment record the deploy step wrote (services read their contract addresses from it)
    deployment_file: Path
    #: the key that administers the contracts (forceMakeEpoch, supervision registration); None against an
    #: existing chain when the operator gave no admin key (those steps are then left to the admin)
    admin_key: str | None
    admin_address: str | None
    startup_timeout: float
    #: `spawn(name, cmd, log, env=None, cwd=None)`: start a supervised child of the launcher
    spawn: SpawnFn
    #: raises LaunchError when a child exited during start-up
    check: Callable[[], None]
    say: Callable[[str], None]
    options: Any = None  # the launcher's options (per-area settings such as kv_streams, da_nodes)
    #: every service's signing key, by role (see deaios.stack.keys)
    keys: ServiceKeys = field(default_factory=ServiceKeys)
    #: the host name in the URLs the stack publishes (and registers on chain); default: `host`
    advertise: str = ""
    #: True for a local stack (Anvil started by the launcher), False against an existing chain
    local: bool = True
    #: stack.json entries published by the services started so far
    stack: dict[str, Any] = field(default_factory=dict)

    def url(self, port: int) -> str:
        """The URL others reach a service of this stack listening on `port` at."""
        return f"http://{self.advertise or self.host}:{port}"

    def wait(self, what: str, probe: Callable[[], bool], log: Path) -> None:
        """Poll `probe` until ready (LaunchError after the start-up timeout, or at once if a child died)."""
        wait_until(probe, self.startup_timeout, what, log=log, check=self.check)

    @property
    def storage_urls(self) -> list[str]:
        return [node["url"] for node in self.stack.get("storage_nodes", [])]


class StackService:
    """One area's processes in a stack. Subclasses override what they need."""

    name = "service"

    def start(self, ctx: LaunchContext) -> None:
        """Spawn the processes (do not wait for them)."""

    def wait(self, ctx: LaunchContext) -> None:
        """Block until the processes are ready; register them on chain if needed."""

    def entries(self) -> dict[str, Any]:
        """The stack.json keys this service publishes."""
        return {}


def relaunch(stack: Stack, entry_of: Callable[[Stack], dict[str, Any]], env: dict[str, str] | None = None,
             default_log: str = "service.log") -> subprocess.Popen:
    """Start a recorded process again with its recorded command line (for tests and tools that stopped it) and
    record its new pid in stack.json, so that `deaios down` stops it too. `entry_of` picks the process's
    stack.json entry (with "cmd", "log", "pid") out of a Stack."""
    entry = entry_of(stack)
    log = Path(entry.get("log") or Path(stack.dir) / "logs" / default_log)
    proc = spawn(list(entry["cmd"]), log, env=env or child_env(), die_with_parent=False)
    entry["pid"] = proc.pid
    if stack.path is not None:
        current = Stack.load(stack.path)  # keep what others wrote since `stack` was loaded
        entry_of(current)["pid"] = proc.pid
        current.save()
    return proc
