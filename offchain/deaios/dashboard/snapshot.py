"""One picture of a running stack: every process (`deaios.dashboard.processes`) and every section of what the
network holds (`deaios.dashboard.sections`), as one JSON-able dict — what the dashboard page renders, what
`deaios status` prints, what `GET /api/snapshot` returns.

A `Collector` is kept by the dashboard process between refreshes: it re-reads stack.json each time (a test or
`deaios kv rebuild` may have relaunched a process), probes every process in parallel, refreshes the chain
sections only when a block was mined since the last refresh (the files' replication and the KV node's
progress every time: they change without blocks), and keeps a short history of the network's throughput
computed from the services' metrics (requests per second, mean request latency, bytes stored per second)
for the page's chart. `deaios status` uses a fresh Collector once.

Snapshot keys: generated_at, stack {dir, path, started_at, running}, processes [..], chain, files, kv, da,
compute, inft, market, alignment (each a section dict, `{}` when the stack has no such part, `{"error"}` when
it could not be read), series [{t, requests_per_s, latency_ms, stored_bytes_per_s}], totals.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deaios.dashboard import sections
from deaios.dashboard.events import EventLog
from deaios.dashboard.processes import probe, stack_processes
from deaios.procs import rpc_call
from deaios.stack.config import Stack

log = logging.getLogger(__name__)

HISTORY = 120  # points kept for the chart


class Collector:
    """Builds snapshots of the stack whose stack.json is `stack_path`."""

    def __init__(self, stack_path: Path, limit: int = 20, workers: int = 16) -> None:
        self.stack_path = stack_path
        self.limit = limit
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dashboard")
        self.events: EventLog | None = None
        self.cache: dict[str, Any] = {}
        self.sections: dict[str, dict[str, Any]] = {}
        self.sections_block: int | None = None
        self.series: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._last_totals: tuple[float, dict[str, float]] | None = None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def collect(self) -> dict[str, Any]:
        """A new snapshot (blocking: run it in a thread from async code)."""
        stack = Stack.load(self.stack_path)
        processes = list(self.pool.map(probe, stack_processes(stack)))
        states = {p["name"]: p["state"] for p in processes}
        snapshot: dict[str, Any] = {
            "generated_at": time.time(),
            "stack": {"dir": stack.dir, "path": str(self.stack_path), "started_at": stack.extra.get("started_at"),
                      "stopped_at": stack.extra.get("stopped_at"), "running": stack.is_running()},
            "processes": processes,
        }
        try:
            head = int(rpc_call(stack.rpc, "eth_blockNumber", timeout=2.0), 16)
        except Exception as exc:
            head = None
            snapshot["chain_error"] = f"chain unreachable: {exc}"
        if head is not None:
            if self.events is None or self.events.rpc != stack.rpc:
                self.events = EventLog(stack.rpc, stack.deploy_block)
                self.sections_block = None
            ctx = sections.Context(stack, head, self.events, self.pool, states, self.limit, self.cache)
            fresh = head != self.sections_block
            for name, section in sections.SECTIONS.items():
                if fresh or name in sections.LIVE or name not in self.sections:
                    self.sections[name] = self._section(name, section, ctx)
            self.sections_block = head
        snapshot.update(self.sections)
        snapshot["totals"], snapshot["series"] = self._throughput(processes)
        return snapshot

    @staticmethod
    def _section(name: str, section: Any, ctx: sections.Context) -> dict[str, Any]:
        try:
            return section(ctx)
        except Exception as exc:
            log.warning("dashboard section %s: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _throughput(self, processes: list[dict[str, Any]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Totals over every service's metrics, and the chart's series (rates since the previous snapshot)."""
        totals = {"requests": 0.0, "request_seconds": 0.0, "request_count": 0.0, "errors": 0.0,
                  "stored_bytes": 0.0, "served_bytes": 0.0}
        for proc in processes:
            m = proc.get("metrics")
            if not m:
                continue
            for key in ("requests", "request_seconds", "request_count", "errors"):
                totals[key] += m[key]
            for name, value in m["counters"].items():
                if name.endswith("_stored_bytes_total"):
                    totals["stored_bytes"] += value
                elif name.endswith("_served_bytes_total"):
                    totals["served_bytes"] += value
        now = time.time()
        if self._last_totals is not None:
            then, last = self._last_totals
            dt = max(now - then, 1e-3)
            # a restarted service starts its counters from zero: never show a negative rate
            d = {key: max(totals[key] - last[key], 0.0) for key in totals}
            self.series.append({
                "t": round(now, 3),
                "requests_per_s": round(d["requests"] / dt, 2),
                "latency_ms": round(1000 * d["request_seconds"] / d["request_count"], 2) if d["request_count"] else None,
                "stored_bytes_per_s": round(d["stored_bytes"] / dt, 1),
                "served_bytes_per_s": round(d["served_bytes"] / dt, 1),
            })
        self._last_totals = (now, totals)
        return totals, list(self.series)
