"""What one client can make a deaios HTTP service do: body limits per route, requests served at once, and
the size of the replies a service reads from others. Every service (storage node, indexer, KV node, DA
node, compute provider, INFT oracle, alt-DA server) applies them; the figures are in docs/limits.md.

* `guard(app, Limits(...))` adds one aiohttp middleware to an application:
  - **body limits**: a request whose Content-Length exceeds its route's limit is refused with 413 before
    anything is read; otherwise the request is handed on with that limit as its `client_max_size`, so
    `read()`, `json()` and `post()` raise 413 past it (chunked bodies included). JSON-RPC endpoints
    (`deaios.jsonrpc.JsonRpcEndpoint`) stream and check their own body against per-method limits;
  - **concurrency**: at most `active` requests are handled at once and at most `waiting` more wait for a
    slot; beyond that the answer is 429 at once, so a flood costs the service one small reply each.
* `read_capped(response, limit)` reads an HTTP reply (of a peer, a chain node, a DA signer …) up to
  `limit` bytes and raises ReplyTooLarge past it: a remote party never makes us buffer more than we asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

DEFAULT_BODY = 64 << 10  # any route without its own limit
OWN_LIMIT = 1 << 62  # for routes that stream and limit their own body (JSON-RPC endpoints answer -32600)
DEFAULT_ACTIVE = 32  # requests handled at once per service
DEFAULT_WAITING = 256  # requests waiting for a slot; more are refused with 429
#: Seconds a stopping service gives the requests in flight (aiohttp's default, 60 s, made `deaios down` wait
#: for a client that kept a slow request open).
SHUTDOWN_GRACE = 5.0


class ReplyTooLarge(ValueError):
    """A remote reply was larger than the caller's cap."""


@dataclass(frozen=True)
class Limits:
    """A service's limits. `bodies` maps (HTTP method, route) to the largest body in bytes; the route is the
    aiohttp resource pattern, e.g. ("PUT", "/deaios/v1/shares/{root}")."""

    bodies: Mapping[tuple[str, str], int] = field(default_factory=dict)
    default_body: int = DEFAULT_BODY
    active: int = DEFAULT_ACTIVE
    waiting: int = DEFAULT_WAITING

    def body_limit(self, method: str, route: str) -> int:
        return self.bodies.get((method, route), self.default_body)


class Gate:
    """At most `active` holders at once, at most `waiting` queued; `enter()` raises Busy beyond that."""

    class Busy(Exception):
        pass

    def __init__(self, active: int, waiting: int) -> None:
        self.active, self.max_waiting = active, waiting
        self._slots: asyncio.Semaphore | None = None
        self.waiting = 0

    async def __aenter__(self) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.active)
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise Gate.Busy()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        assert self._slots is not None
        self._slots.release()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(app: web.Application, limits: Limits) -> web.Application:
    """Apply `limits` to every route of `app` (call before the app starts); returns `app`."""
    gate = Gate(limits.active, limits.waiting)

    @web.middleware
    async def limited(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        pattern = route.resource.canonical if route.resource is not None else request.path
        limit = limits.body_limit(request.method, pattern)
        if request.content_length is not None and request.content_length > limit:
            return web.json_response({"error": f"request body too large: {request.content_length} bytes "
                                               f"(limit {limit} for {request.method} {pattern})"}, status=413)
        try:
            async with gate:
                return await handler(request.clone(client_max_size=limit))
        except Gate.Busy:
            return web.json_response({"error": "server busy: too many requests at once; retry later"},
                                     status=429)

    app.middlewares.append(limited)
    return app


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of `response`, refusing (ReplyTooLarge) to buffer more than `limit` bytes."""
    if response.content_length is not None:  # the body ends where its declared length says
        if response.content_length > limit:
            raise ReplyTooLarge(f"reply of {response.content_length} bytes (limit {limit})")
        return await response.read()
    parts, size = [], 0
    async for chunk in response.content.iter_any():  # chunked: count as it comes
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge(f"reply larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
