"""Prometheus metrics for every deaios service: one call instruments an aiohttp app, a few counters count what
matters per area.

`instrument(app, "storage")` — called where a service builds its aiohttp application, before it starts —
adds `GET /metrics` (the Prometheus text format, `prometheus_client`) and a middleware that measures every
HTTP request, and wraps the methods of every JSON-RPC endpoint (`deaios.jsonrpc.JsonRpcEndpoint`, found among
the app's routes) so that each method is counted and timed on its own:

    deaios_build_info{service, version}                      1 (the service's kind and deaios version)
    deaios_<area>_http_requests_total{method, route, status}  HTTP requests (route: the route's pattern)
    deaios_<area>_http_request_duration_seconds{route}        histogram of the handling time
    deaios_<area>_http_received_bytes_total{route}            request bodies (as declared by Content-Length)
    deaios_<area>_http_sent_bytes_total{route}                response bodies
    deaios_<area>_rpc_requests_total{method}                  JSON-RPC calls per method
    deaios_<area>_rpc_errors_total{method}                    of which answered with an error object
    deaios_<area>_rpc_duration_seconds{method}                histogram of the time per method

plus the `process_*` and `python_*` metrics of prometheus_client's default collectors. Requests for
`/metrics` itself are not counted. Area gauges that read live state (replay position, sync height, rows held)
are passed as `gauges={"name": ("help", callable)}` and evaluated at scrape time; counters that code
increments where the work happens (bytes stored, shares repaired, calls billed) come from `counter(area,
name, help, labels)`. Names follow Prometheus conventions: `deaios_<area>_<what>_total` for counters,
`_seconds`, `_bytes`.

One process runs one service, so the metrics live in prometheus_client's default registry; asking twice for
the same name returns the same metric (several apps built in one test process share them).

This module sits below the areas: it imports nothing from deaios but the version.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, generate_latest,
    start_http_server,
)

from deaios import __version__

METRICS_PATH = "/metrics"
BUILD_INFO = "deaios_build_info"

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
disable_created_metrics()  # no `*_created` series: they double the exposition and nobody here reads them


def _name(area: str, name: str) -> str:
    return f"deaios_{area.replace('-', '_')}_{name}"


def _get(kind: type, full_name: str, doc: str, labels: Iterable[str], **kwargs: Any) -> Any:
    with _lock:
        metric = _metrics.get(full_name)
        if metric is None:
            metric = _metrics[full_name] = kind(full_name, doc, list(labels), **kwargs)
        elif not isinstance(metric, kind):
            raise ValueError(f"metric {full_name} already exists as a {type(metric).__name__}")
        return metric


def counter(area: str, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
    """The counter `deaios_<area>_<name>` (name ends in `_total`), created on first use."""
    if not name.endswith("_total"):
        raise ValueError(f"counter names end in _total: {name}")
    # prometheus_client appends _total itself and exposes the name with it
    return _get(Counter, _name(area, name.removesuffix("_total")), doc, labels)


def gauge(area: str, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
    """The gauge `deaios_<area>_<name>`, created on first use."""
    return _get(Gauge, _name(area, name), doc, labels)


def histogram(area: str, name: str, doc: str, labels: Iterable[str] = ()) -> Histogram:
    """The histogram `deaios_<area>_<name>` (name ends in `_seconds` or `_bytes`), created on first use."""
    return _get(Histogram, _name(area, name), doc, labels)


def _build_info() -> Gauge:
    return _get(Gauge, BUILD_INFO, "The kind of deaios service in this process and its version (always 1).",
                ["service", "version"])


def _route_of(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _timed_method(name: str, handler: Callable[..., Any], calls: Counter, errors: Counter,
                  seconds: Histogram) -> Callable[..., Any]:
    """`handler` counted and timed as JSON-RPC method `name`; keeps its signature (the endpoint binds params
    against it: `inspect.signature` follows `__wrapped__`)."""
    calls_m, errors_m, seconds_m = calls.labels(name), errors.labels(name), seconds.labels(name)

    async def finish(awaitable: Awaitable[Any], started: float) -> Any:
        try:
            return await awaitable
        except BaseException:
            errors_m.inc()
            raise
        finally:
            seconds_m.observe(time.perf_counter() - started)

    if inspect.iscoroutinefunction(handler):  # stays a coroutine function (gRPC's aio server looks)
        @functools.wraps(handler)
        async def async_wrapper(*args: Any) -> Any:
            calls_m.inc()
            return await finish(handler(*args), time.perf_counter())

        async_wrapper.__deaios_timed__ = True  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(handler)
    def wrapper(*args: Any) -> Any:
        calls_m.inc()
        started = time.perf_counter()
        try:
            result = handler(*args)
        except BaseException:
            errors_m.inc()
            seconds_m.observe(time.perf_counter() - started)
            raise
        if inspect.isawaitable(result):
            return finish(result, started)
        seconds_m.observe(time.perf_counter() - started)
        return result

    wrapper.__deaios_timed__ = True  # type: ignore[attr-defined]
    return wrapper


def instrument_rpc(methods: dict[str, Callable[..., Any]], area: str) -> None:
    """Wrap every method of a JSON-RPC method table in place (idempotent)."""
    calls = counter(area, "rpc_requests_total", "JSON-RPC calls, per method.", ["method"])
    errors = counter(area, "rpc_errors_total", "JSON-RPC calls answered with an error object, per method.",
                     ["method"])
    seconds = histogram(area, "rpc_duration_seconds", "Time to answer a JSON-RPC call, per method.", ["method"])
    for name, handler in list(methods.items()):
        if not getattr(handler, "__deaios_timed__", False):
            methods[name] = _timed_method(name, handler, calls, errors, seconds)


def serve_http(host: str, port: int, area: str) -> int:
    """`GET /metrics` on its own port (0: a free one), in a thread, for a service that is not an aiohttp app (the
    gRPC disperser); returns the port."""
    _build_info().labels(area, __version__).set(1)
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)


def instrument(app: web.Application, area: str,
               gauges: dict[str, tuple[str, Callable[[], float]]] | None = None) -> web.Application:
    """Serve `GET /metrics` on `app`, measure its requests as `deaios_<area>_http_*`, its JSON-RPC methods as
    `deaios_<area>_rpc_*`, and export `gauges` (name -> (help, function read at scrape time)). Call it before
    the app starts; returns the app."""
    _build_info().labels(area, __version__).set(1)
    requests = counter(area, "http_requests_total", "HTTP requests, per method, route and status.",
                       ["method", "route", "status"])
    seconds = histogram(area, "http_request_duration_seconds", "Time to handle an HTTP request, per route.",
                        ["route"])
    received = counter(area, "http_received_bytes_total", "Bytes of request bodies, per route.", ["route"])
    sent = counter(area, "http_sent_bytes_total", "Bytes of response bodies, per route.", ["route"])

    @web.middleware
    async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) \
            -> web.StreamResponse:
        if request.path == METRICS_PATH:
            return await handler(request)
        route = _route_of(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            length = response.content_length if isinstance(response, web.Response) else response.body_length
            sent.labels(route).inc(length or 0)
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            seconds.labels(route).observe(time.perf_counter() - started)
            requests.labels(request.method, route, str(status)).inc()
            received.labels(route).inc(request.content_length or 0)

    for name, (doc, read) in (gauges or {}).items():
        gauge(area, name, doc).set_function(read)
    for route in app.router.routes():
        endpoint = getattr(route.handler, "__wrapped__", route.handler)  # aiohttp wraps callable objects
        methods = getattr(endpoint, "methods", None)
        if isinstance(methods, dict):  # a JsonRpcEndpoint
            instrument_rpc(methods, area)
    app.middlewares.append(measure)
    app.router.add_get(METRICS_PATH, metrics_handler)
    return app


async def metrics_handler(request: web.Request) -> web.Response:
    """`GET /metrics`: every metric of this process in the Prometheus text format."""
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
