"""Running the DA area's HTTP servers (OP alt-DA, Nitro DA provider): bind, announce, serve until cancelled or
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from deaios.service_limits import SHUTDOWN_GRACE

log = logging.getLogger(__name__)


async def serve_app(app: web.Application, host: str, port: int, ready: Callable[[str], None] | None = None,
                    what: str = "server") -> None:
    """Serve `app` on host:port (0: a free port) until cancelled; `ready(url)` once listening."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_GRACE)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://{host}:{bound}"
    log.info("%s listening on %s", what, url)
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def until_signal(main: Awaitable[None]) -> None:
    """Run `main` until it ends or SIGINT/SIGTERM cancels it. A process that has not exited
    2 × SHUTDOWN_GRACE seconds after the signal (a worker thread stuck in a call to an unreachable peer keeps
    the interpreter alive) exits anyway, so `deaios down` never waits for it."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        task.cancel()
        timer = threading.Timer(2 * SHUTDOWN_GRACE, _exit_now)
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await task
    except asyncio.CancelledError:
        pass


def _exit_now() -> None:
    log.warning("still running %.0f s after the stop signal: exiting", 2 * SHUTDOWN_GRACE)
    logging.shutdown()
    os._exit(0)
