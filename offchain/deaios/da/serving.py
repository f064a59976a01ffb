"""Running the DA area's HTTP servers (OP alt-DA, Nitro DA provider): bind, announce, serve until cancelled or
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


async def serve_app(app: web.Application, host: str, port: int, ready: Callable[[str], None] | None = None,
                    what: str = "server") -> None:
    """Serve `app` on host:port (0: a free port) until cancelled; `ready(url)` once listening."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
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
    """Run `main` until it ends or SIGINT/SIGTERM cancels it."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
