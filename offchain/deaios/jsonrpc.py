"""A small JSON-RPC 2.0 server endpoint for aiohttp, shared by every deaios service (storage node,
indexer, KV node, DA node), and the client call they use to talk to each other and to the chain.

Every failure becomes a JSON-RPC error object, never an HTTP error page or a dropped connection:
parse error (-32700), invalid request (-32600, also for a body or a batch over its limit), unknown method
(-32601), invalid params (-32602: raised by handlers as RpcError, and any ValueError, TypeError or
OverflowError a handler raises on the caller's input), internal error (-32603), over budget (-32005).

Limits (figures in docs/limits.md), so that one request costs the service a bounded amount of work:
* the body is streamed and refused past the largest per-method limit; once parsed, a call (or a batch,
  against the sum of its calls' limits) must fit its method's limit (`body_limits`, else `max_body`);
* integers in the body have at most 78 digits (uint256), nesting is bounded by the parser;
* a batch has at most `max_batch` calls; its replies are serialized one by one and once they reach
  `max_reply` bytes the remaining calls are not run and get -32005 (send fewer calls per batch);
* a handler's exception that is not the caller's fault is logged with its traceback at most once a
  minute per method (one line otherwise); the caller's mistakes are never logged with a traceback.
Requests served at once are bounded by `deaios.service_limits.guard` on the application.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from deaios.service_limits import ReplyTooLarge, read_capped

log = logging.getLogger(__name__)

Handler = Callable[..., Any | Awaitable[Any]]

DEFAULT_BODY = 64 << 10
MAX_BATCH = 100
MAX_REPLY = 16 << 20
MAX_INT_DIGITS = 78  # uint256
OVER_BUDGET = -32005
DEFAULT_MAX_REPLY = 32 << 20  # what rpc_call reads of a reply unless told otherwise


class RpcError(Exception):
    """An error a handler reports to the caller as a JSON-RPC error object."""

    def __init__(self, message: str, code: int = -32000, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


def _error(req_id: object, code: int, message: str, data: object = None) -> dict:
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": req_id if isinstance(req_id, (str, int, type(None))) else None, "error": error}


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _TracebackLimiter:
    """Whether an internal error of `method` may be logged with its traceback now (once a minute each)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.last: dict[str, float] = {}

    def allow(self, method: str) -> bool:
        now = time.monotonic()
        if now - self.last.get(method, -self.every) < self.every:
            return False
        if len(self.last) > 1000:
            self.last.clear()
        self.last[method] = now
        return True


class JsonRpcEndpoint:
    """POST handler dispatching JSON-RPC calls to `methods` (positional params, sync or async)."""

    def __init__(self, methods: dict[str, Handler], translate: Callable[[Exception], RpcError | None] | None = None,
                 max_body: int = DEFAULT_BODY, body_limits: dict[str, int] | None = None,
                 max_batch: int = MAX_BATCH, max_reply: int = MAX_REPLY) -> None:
        self.methods = methods
        self.translate = translate
        self.max_body = max_body
        self.body_limits = dict(body_limits or {})
        self.stream_limit = max([max_body, *self.body_limits.values()])
        self.max_batch = max_batch
        self.max_reply = max_reply
        self._tracebacks = _TracebackLimiter()

    def limit_of(self, method: object) -> int:
        return self.body_limits.get(method, self.max_body) if isinstance(method, str) else self.max_body

    async def __call__(self, request: web.Request) -> web.Response:
        too_large = f"request body too large (limit {self.stream_limit} bytes)"
        if request.content_length is not None and request.content_length > self.stream_limit:
            return self._reply(_dumps(_error(None, -32600, too_large)))
        parts, total = [], 0
        try:
            while chunk := await request.content.read(1 << 20):
                total += len(chunk)
                if total > self.stream_limit:
                    return self._reply(_dumps(_error(None, -32600, too_large)))
                parts.append(chunk)
        except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
            return self._reply(_dumps(_error(None, -32600, f"cannot read request: {exc}")))
        body = b"".join(parts)
        try:
            payload = json.loads(body, parse_int=_bounded_int)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return self._reply(_dumps(_error(None, -32700, f"parse error: {str(exc)[:200]}")))
        if isinstance(payload, list):
            if not payload:
                return self._reply(_dumps(_error(None, -32600, "empty batch")))
            if len(payload) > self.max_batch:
                return self._reply(_dumps(_error(None, -32600, f"batch of {len(payload)} calls (at most "
                                                               f"{self.max_batch})")))
            allowed = sum(self.limit_of(c.get("method") if isinstance(c, dict) else None) for c in payload)
            if len(body) > allowed:
                return self._reply(_dumps(_error(None, -32600, f"request body too large for its calls: "
                                                               f"{len(body)} bytes (limit {allowed})")))
            return self._reply(await self._batch(payload))
        method = payload.get("method") if isinstance(payload, dict) else None
        if len(body) > self.limit_of(method):
            return self._reply(_dumps(_error(payload.get("id") if isinstance(payload, dict) else None, -32600,
                                             f"request body too large for {str(method)[:80]}: {len(body)} bytes "
                                             f"(limit {self.limit_of(method)})")))
        reply = await self._one(payload)
        return self._reply(_dumps(reply if reply is not None else {}))

    async def _batch(self, calls: list) -> bytes:
        pieces, size = [], 2
        for call in calls:
            if size > self.max_reply:
                reply = _error(call.get("id") if isinstance(call, dict) else None, OVER_BUDGET,
                               f"reply budget of this batch exhausted ({self.max_reply} bytes): "
                               "send fewer calls per batch")
            else:
                reply = await self._one(call)
            if reply is None:
                continue
            piece = _dumps(reply)
            size += len(piece) + 1
            pieces.append(piece)
        return b"[" + b",".join(pieces) + b"]"

    async def _one(self, call: object) -> dict | None:
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or not isinstance(call.get("method"), str):
            return _error(call.get("id") if isinstance(call, dict) else None, -32600,
                          "invalid request: expected {jsonrpc: '2.0', method, params, id}")
        req_id = call.get("id")
        name = call["method"]
        params = call.get("params", [])
        if isinstance(params, dict):
            return _error(req_id, -32602, "named params are not supported; pass a list")
        if not isinstance(params, list):
            return _error(req_id, -32602, "params must be a list")
        handler = self.methods.get(name)
        if handler is None:
            return _error(req_id, -32601, f"method not found: {name[:80]}")
        try:
            bound = inspect.signature(handler).bind(*params)
        except TypeError as exc:
            return _error(req_id, -32602, f"invalid params for {name}: {exc}")
        try:
            result = handler(*bound.args)
            if inspect.isawaitable(result):
                result = await result
        except RpcError as exc:
            return _error(req_id, exc.code, str(exc), exc.data)
        except Exception as exc:
            translated = self.translate(exc) if self.translate else None
            if translated is not None:
                return _error(req_id, translated.code, str(translated), translated.data)
            if isinstance(exc, (ValueError, TypeError, OverflowError)):  # the caller's input, not our bug
                return _error(req_id, -32602, f"invalid params for {name}: {str(exc)[:200]}")
            if self._tracebacks.allow(name):
                log.exception("internal error in %s", name)
            else:
                log.error("internal error in %s: %s", name, repr(exc)[:200])
            return _error(req_id, -32603, f"internal error: {type(exc).__name__}")
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    @staticmethod
    def _reply(body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")


class RpcCallError(RuntimeError):
    """A JSON-RPC call failed: the server answered with an error object, or could not be reached."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


async def rpc_call(session: aiohttp.ClientSession, url: str, method: str, *params: object,
                   timeout: float = 30.0, max_reply: int = DEFAULT_MAX_REPLY) -> Any:
    """Call one JSON-RPC method over HTTP and return its result; a reply over `max_reply` bytes is an error
    (RpcCallError), read no further."""
    try:
        async with session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = json.loads(await read_capped(resp, max_reply))
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, RecursionError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, ReplyTooLarge):
            reason = f"refused: {reason}"
        raise RpcCallError(f"{method} at {url}: {reason[:300]}") from exc
    if not isinstance(body, dict):
        raise RpcCallError(f"{method} at {url}: malformed reply")
    if body.get("error"):
        error = body["error"]
        if not isinstance(error, dict):
            raise RpcCallError(f"{method} at {url}: malformed error")
        raise RpcCallError(f"{method} at {url}: {str(error.get('message'))[:300]}", error.get("code"))
    return body.get("result")
