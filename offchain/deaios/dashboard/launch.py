"""The dashboard as a process of a stack: `DashboardService` (listed last by the launcher, so that it sees
every other service), its command line and readiness probe.

`deaios up` runs `deaios dashboard serve` on a free port, pointed at DATA/stack.json; the launcher prints its
URL once it answers. stack.json lists it as

    "dashboard": {"url": "http://127.0.0.1:PORT", "pid": PID, "interval": 2.0,
                  "log": "DATA/logs/dashboard.log", "cmd": [argv…]}
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from deaios.procs import free_ports, http_get_json
from deaios.stack.config import STACK_FILE
from deaios.stack.service import LaunchContext, StackService

INTERVAL = 2.0  # seconds between snapshots (and page refreshes)


def dashboard_command(stack_file: Path, host: str, port: int, interval: float = INTERVAL,
                      launcher_pid: int | None = None) -> list[str]:
    """`deaios dashboard serve …` for the stack described by `stack_file`."""
    cmd = [sys.executable, "-m", "deaios.cli", "dashboard", "serve", "--stack-file", str(stack_file), "--host", host,
           "--port", str(port), "--interval", str(interval)]
    return cmd + (["--launcher-pid", str(launcher_pid)] if launcher_pid else [])


def ready(url: str) -> bool:
    return bool(http_get_json(f"{url}/api/health", timeout=1.0).get("ok"))


class DashboardService(StackService):
    """The web dashboard of the stack (it reads stack.json, which is written after every service is up)."""

    name = "dashboard"

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.entry: dict[str, Any] = {}

    def start(self, ctx: LaunchContext) -> None:
        port = free_ports(ctx.host, 1)[0]
        url, log = ctx.url(port), ctx.logs / "dashboard.log"
        cmd = dashboard_command(ctx.data_dir / STACK_FILE, ctx.host, port, self.interval, os.getpid())
        proc = ctx.spawn(self.name, cmd, log)
        self.entry = {"url": url, "pid": proc.pid, "interval": self.interval, "log": str(log), "cmd": cmd}

    def wait(self, ctx: LaunchContext) -> None:
        ctx.wait(self.name, lambda: ready(self.entry["url"]), Path(self.entry["log"]))
        ctx.say(f"dashboard: {self.entry['url']}")

    def entries(self) -> dict[str, Any]:
        return {"dashboard": self.entry}
