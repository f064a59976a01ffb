"""The dashboard process (`deaios dashboard serve`, started by `deaios up`): one static page that renders a JSON
snapshot of the stack, refreshed in the background.

HTTP (aiohttp):

* `GET /` — the page (`page.html`: plain HTML and a small script, no build step); it fetches the snapshot
  every `interval` seconds and renders it;
* `GET /api/snapshot` — the latest snapshot (`deaios.dashboard.snapshot`), plus `interval`; integers beyond
  JavaScript's exact range (wei amounts) are sent as decimal strings;
* `GET /api/health` — `{"ok": true}` as soon as the server listens (the launcher's readiness probe);
* `GET /metrics` — its own Prometheus metrics (`deaios_dashboard_…`, `deaios.metrics`).

A background task collects a snapshot every `interval` seconds in a worker thread (the collection blocks on
many small requests) while someone is looking (a snapshot was requested in the last `WATCHED` seconds), and
only every `IDLE_INTERVAL` seconds otherwise, so that an unwatched dashboard costs the stack next to nothing;
a request after an idle spell starts a collection at once. With `--launcher-pid`, the process started by `deaios up` waits until stack.json is the
one that launcher wrote (a restarted stack's old stack.json would show the previous processes): meanwhile the
snapshot says `{"starting": true}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from deaios import metrics
from deaios.dashboard.snapshot import Collector
from deaios.service_limits import SHUTDOWN_GRACE
from deaios.stack.config import Stack

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("page.html")
JS_SAFE = 2**53 - 1
WATCHED = 30.0  # seconds a snapshot request counts as someone watching
IDLE_INTERVAL = 15.0  # seconds between snapshots while nobody watches
COLLECT_SECONDS = metrics.histogram("dashboard", "collect_seconds", "Time to collect one snapshot of the stack.")


def js_safe(value: Any) -> Any:
    """`value` with every integer JavaScript cannot hold exactly turned into a decimal string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > JS_SAFE:
        return str(value)
    if isinstance(value, dict):
        return {k: js_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [js_safe(v) for v in value]
    return value


class Dashboard:
    """Keeps the latest snapshot of the stack at `stack_path` and serves it."""

    def __init__(self, stack_path: Path, interval: float = 2.0, launcher_pid: int | None = None) -> None:
        self.stack_path = stack_path
        self.interval = interval
        self.launcher_pid = launcher_pid
        self.collector = Collector(stack_path)
        self.snapshot: dict[str, Any] = {"starting": True}
        self.collected_at = 0.0
        self.viewed_at = 0.0
        self._wake: asyncio.Event | None = None

    def _ours(self) -> bool:
        if self.launcher_pid is None:
            return True
        try:
            return Stack.load(self.stack_path).launcher_pid == self.launcher_pid
        except Exception:  # not written yet
            return False

    def refresh(self) -> None:
        """Collect one snapshot (blocking)."""
        if not self._ours():
            return
        started = time.perf_counter()
        self.snapshot = js_safe(self.collector.collect())
        COLLECT_SECONDS.observe(time.perf_counter() - started)
        self.collected_at = time.time()

    def watched(self) -> bool:
        return time.monotonic() - self.viewed_at < WATCHED

    def viewed(self) -> None:
        """A snapshot was requested: collect at the full rate (and at once after an idle spell)."""
        idle = not self.watched()
        self.viewed_at = time.monotonic()
        if idle and self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # keep serving the last snapshot whatever happens in one round
                log.exception("collecting the snapshot failed")
            self._wake.clear()
            delay = self.interval if self.watched() else max(self.interval, IDLE_INTERVAL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def app(self) -> web.Application:
        async def page(_: web.Request) -> web.Response:
            return web.Response(text=PAGE.read_text(), content_type="text/html")

        async def snapshot(_: web.Request) -> web.Response:
            self.viewed()
            return web.json_response({**self.snapshot, "interval": self.interval},
                                     dumps=lambda o: json.dumps(o, separators=(",", ":")))

        async def health(_: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        async def no_icon(_: web.Request) -> web.Response:
            return web.Response(status=204)

        app = web.Application()
        app.router.add_get("/", page)
        app.router.add_get("/api/snapshot", snapshot)
        app.router.add_get("/api/health", health)
        app.router.add_get("/favicon.ico", no_icon)
        return metrics.instrument(app, "dashboard", gauges={
            "snapshot_age_seconds": ("Seconds since the last snapshot was collected.",
                                     lambda: time.time() - self.collected_at if self.collected_at else -1)})


async def serve(dashboard: Dashboard, host: str, port: int) -> None:
    """Serve the dashboard until SIGINT/SIGTERM."""
    runner = web.AppRunner(dashboard.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_GRACE).start()
    log.info("dashboard on http://%s:%d for %s (refresh every %.1f s)", host, port, dashboard.stack_path,
             dashboard.interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(dashboard.run())
    await stop.wait()
    task.cancel()
    await runner.cleanup()
    dashboard.collector.close()
