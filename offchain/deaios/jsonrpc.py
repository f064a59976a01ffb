"""A small JSON-RPC 2.0 server endpoint for aiohttp, shared by every deaios service (storage node,
indexer, and the services of later areas).

Every failure becomes a JSON-RPC error object, never an HTTP error page or a dropped connection:
parse error (-32700), invalid request (-32600, also for an oversize body), unknown method (-32601),
invalid params (-32602, raised by handlers as RpcError), internal error (-32603). Batches are served.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[..., Any | Awaitable[Any]]


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
    return {"jsonrpc": "2.0", "id": req_id, "error": error}


class JsonRpcEndpoint:
    """POST handler dispatching JSON-RPC calls to `methods` (positional params, sync or async)."""

    def __init__(self, methods: dict[str, Handler], translate: Callable[[Exception], RpcError | None] | None = None,
                 max_body: int = 64 << 20) -> None:
        self.methods = methods
        self.translate = translate
        self.max_body = max_body

    async def __call__(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body:
            return self._reply(_error(None, -32600, f"request body too large (limit {self.max_body} bytes)"))
        parts, total = [], 0
        try:
            while chunk := await request.content.read(1 << 20):
                total += len(chunk)
                if total > self.max_body:
                    return self._reply(_error(None, -32600, f"request body too large (limit {self.max_body} bytes)"))
                parts.append(chunk)
        except (aiohttp.ClientError, ConnectionError) as exc:
            return self._reply(_error(None, -32600, f"cannot read request: {exc}"))
        body = b"".join(parts)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._reply(_error(None, -32700, f"parse error: {exc}"))
        if isinstance(payload, list):
            if not payload:
                return self._reply(_error(None, -32600, "empty batch"))
            replies = [await self._one(item) for item in payload]
            return self._reply([r for r in replies if r is not None])
        reply = await self._one(payload)
        return self._reply(reply if reply is not None else {})

    async def _one(self, call: object) -> dict | None:
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or not isinstance(call.get("method"), str):
            return _error(call.get("id") if isinstance(call, dict) else None, -32600,
                          "invalid request: expected {jsonrpc: '2.0', method, params, id}")
        req_id = call.get("id")
        params = call.get("params", [])
        if isinstance(params, dict):
            return _error(req_id, -32602, "named params are not supported; pass a list")
        if not isinstance(params, list):
            return _error(req_id, -32602, "params must be a list")
        handler = self.methods.get(call["method"])
        if handler is None:
            return _error(req_id, -32601, f"method not found: {call['method']}")
        try:
            bound = inspect.signature(handler).bind(*params)
        except TypeError as exc:
            return _error(req_id, -32602, f"invalid params for {call['method']}: {exc}")
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
            log.exception("internal error in %s", call["method"])
            return _error(req_id, -32603, f"internal error: {type(exc).__name__}")
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    @staticmethod
    def _reply(obj: object) -> web.Response:
        return web.json_response(obj, dumps=lambda o: json.dumps(o, separators=(",", ":")))


class RpcCallError(RuntimeError):
    """A JSON-RPC call failed: the server answered with an error object, or could not be reached."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


async def rpc_call(session: aiohttp.ClientSession, url: str, method: str, *params: object,
                   timeout: float = 30.0) -> Any:
    """Call one JSON-RPC method over HTTP and return its result."""
    try:
        async with session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        raise RpcCallError(f"{method} at {url}: {exc or type(exc).__name__}") from exc
    if not isinstance(body, dict):
        raise RpcCallError(f"{method} at {url}: malformed reply")
    if body.get("error"):
        error = body["error"]
        raise RpcCallError(f"{method} at {url}: {error.get('message')}", error.get("code"))
    return body.get("result")
