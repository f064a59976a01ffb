"""Every process of a stack, found in its stack.json, and how each one is doing: up or down, how fast it
answers, its version, and the counters of its Prometheus `/metrics`.

Discovery needs no list of services: besides the launcher, Anvil, the storage nodes and the indexer (the
launcher's own keys), every stack.json entry that looks like a service is one — an object with "url" and
"pid" (the KV node, the compute provider, the dashboard), a list of such objects (the DA nodes; named by
their "name", else "<key>-<i>"), or a URL string with a "<key>_pid" beside it (the INFT oracle). A service
another area adds later shows up without a change here.

A probe is one `GET <url>/metrics` (Anvil: `web3_clientVersion`; the launcher: its pid only). The state is

* "up": it answered;
* "down": its process is gone (or, without a pid to check, it refused the connection);
* "unresponsive": its process exists but did not answer this time (never judged down on one slow try).

From the metrics the probe keeps the version (`deaios_build_info`), the totals of HTTP requests, their time
and errors, the resident memory and CPU time, and every area counter and gauge (`deaios_<area>_…`) summed
over its labels.
"""

from __future__ import annotations

import time
import urllib.error
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from deaios.procs import http_get, pid_alive, rpc_call
from deaios.stack.config import Stack

PROBE_TIMEOUT = 2.0
#: metric families of deaios.metrics.instrument that every service has (not area counters)
GENERIC = ("http_requests", "http_request_duration_seconds", "http_received_bytes", "http_sent_bytes",
           "rpc_requests", "rpc_errors", "rpc_duration_seconds")


@dataclass(frozen=True)
class Process:
    """One process of a stack."""

    name: str
    kind: str  # "launcher", "chain", "storage", "indexer", or the stack.json key of the service
    pid: int | None
    url: str | None = None

    @property
    def metrics_url(self) -> str | None:
        return f"{self.url.rstrip('/')}/metrics" if self.url and self.kind not in ("chain", "launcher") else None


def stack_processes(stack: Stack) -> list[Process]:
    """Every process stack.json names, in a stable order (launcher, chain, storage, indexer, then the rest)."""
    out = [Process("launcher", "launcher", stack.launcher_pid), Process("anvil", "chain", stack.anvil_pid, stack.rpc)]
    for i, node in enumerate(stack.storage_nodes):
        out.append(Process(f"node-{node.get('index', i)}", "storage", node.get("pid"), node["url"]))
    out.append(Process("indexer", "indexer", stack.indexer_pid, stack.indexer))
    for key, value in stack.extra.items():
        if isinstance(value, dict) and isinstance(value.get("url"), str) and "pid" in value:
            out.append(Process(key.replace("_", "-"), key, value.get("pid"), value["url"]))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and isinstance(item.get("url"), str) and "pid" in item:
                    out.append(Process(str(item.get("name") or f"{key}-{i}"), key, item.get("pid"), item["url"]))
        elif isinstance(value, str) and value.startswith("http") and isinstance(stack.extra.get(f"{key}_pid"), int):
            out.append(Process(key.replace("_", "-"), key, stack.extra[f"{key}_pid"], value))
    return out


def summarize_metrics(text: str) -> dict[str, Any]:
    """What the dashboard shows of one service's /metrics: version, request totals, area counters."""
    out: dict[str, Any] = {"version": None, "requests": 0.0, "errors": 0.0, "request_seconds": 0.0,
                           "request_count": 0.0, "memory_bytes": None, "cpu_seconds": None, "counters": {}}
    for family in text_string_to_metric_families(text):
        name = family.name
        if name == "deaios_build_info":
            for sample in family.samples:
                out["version"] = sample.labels.get("version")
                out["service"] = sample.labels.get("service")
            continue
        if name == "process_resident_memory_bytes" and family.samples:
            out["memory_bytes"] = family.samples[0].value
        elif name == "process_cpu_seconds" and family.samples:
            out["cpu_seconds"] = family.samples[0].value
        if not name.startswith("deaios_"):
            continue
        area_part = name.split("_", 2)[-1] if name.count("_") >= 2 else name
        generic = next((g for g in GENERIC if area_part.endswith(g)), None)
        for sample in family.samples:
            if generic == "http_requests" and sample.name.endswith("_total"):
                out["requests"] += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    out["errors"] += sample.value
            elif generic == "rpc_errors" and sample.name.endswith("_total"):
                out["errors"] += sample.value
            elif generic == "http_request_duration_seconds":
                if sample.name.endswith("_sum"):
                    out["request_seconds"] += sample.value
                elif sample.name.endswith("_count"):
                    out["request_count"] += sample.value
            elif generic is None and family.type in ("counter", "gauge") and not sample.name.endswith("_created"):
                out["counters"][sample.name] = out["counters"].get(sample.name, 0.0) + sample.value
    return out


def probe(process: Process, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """The state of one process (see the module docstring) as a JSON-able dict."""
    alive = pid_alive(process.pid) if process.pid else None
    row: dict[str, Any] = {"name": process.name, "kind": process.kind, "url": process.url, "pid": process.pid,
                           "state": "down", "latency_ms": None, "version": None, "error": None, "metrics": None}
    if process.kind == "launcher" or alive is False:
        row["state"] = "up" if alive else "down"
        if alive is False:
            row["error"] = "process exited"
        return row
    started = time.perf_counter()
    try:
        if process.kind == "chain":
            row["version"] = rpc_call(process.url, "web3_clientVersion", timeout=timeout)
        else:
            try:
                row["metrics"] = summarize_metrics(http_get(process.metrics_url, timeout=timeout).decode())
                row["version"] = row["metrics"]["version"]
            except urllib.error.HTTPError as exc:  # answers, but has no /metrics (an older service)
                row["error"] = f"/metrics: HTTP {exc.code}"
        row["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["state"] = "up"
    except Exception as exc:  # refused, timed out, garbage
        row["error"] = str(getattr(exc, "reason", None) or exc or type(exc).__name__)
        row["state"] = "unresponsive" if alive else "down"
    return row
