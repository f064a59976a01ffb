"""deaios.metrics in process (no stack): what `instrument(app, area)` exposes, per-method JSON-RPC timing that
keeps the endpoint's parameter checks, and the dashboard's discovery of a stack's processes."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from deaios import metrics
from deaios.dashboard.events import Event
from deaios.dashboard.processes import stack_processes, summarize_metrics
from deaios.dashboard.server import js_safe
from deaios.jsonrpc import JsonRpcEndpoint, RpcError
from deaios.stack.config import Stack


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_instrument_counts_http_requests_and_each_rpc_method() -> None:
    async def add(a: int, b: int = 1) -> int:
        return a + b

    def refuse(x: object) -> None:
        raise RpcError("refused")

    async def thing(request: web.Request) -> web.Response:
        return web.Response(body=b"hello")

    app = web.Application()
    app.router.add_post("/", JsonRpcEndpoint({"t_add": add, "t_refuse": refuse, "t_sync": lambda: 3}))
    app.router.add_get("/thing/{id}", thing)
    metrics.instrument(app, "ttest", gauges={"height": ("a gauge read at scrape time", lambda: 42)})

    async def scenario() -> tuple[list, str]:
        async with TestClient(TestServer(app)) as client:
            replies = []
            for method, params in (("t_add", [1, 2]), ("t_refuse", [0]), ("t_add", [1, 2, 3]), ("t_sync", []),
                                   ("t_missing", [])):
                resp = await client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                replies.append(await resp.json())
            assert (await client.get("/thing/7")).status == 200
            assert (await client.get("/nowhere")).status == 404
            for _ in range(3):
                text = await (await client.get("/metrics")).text()
            return replies, text

    replies, text = asyncio.run(scenario())
    assert replies[0]["result"] == 3 and replies[3]["result"] == 3
    assert replies[1]["error"]["message"] == "refused"
    assert replies[2]["error"]["code"] == -32602  # the wrapper keeps the method's signature for param checks
    assert replies[4]["error"]["code"] == -32601
    got = samples(text)
    assert got[("deaios_build_info", (("service", "ttest"), ("version", metrics.__version__)))] == 1
    assert got[("deaios_ttest_rpc_requests_total", (("method", "t_add"),))] == 1  # the bad-params call never ran
    assert got[("deaios_ttest_rpc_requests_total", (("method", "t_refuse"),))] == 1
    assert got[("deaios_ttest_rpc_errors_total", (("method", "t_refuse"),))] == 1
    assert got[("deaios_ttest_rpc_errors_total", (("method", "t_add"),))] == 0
    assert got[("deaios_ttest_rpc_duration_seconds_count", (("method", "t_sync"),))] == 1
    assert got[("deaios_ttest_http_requests_total", (("method", "POST"), ("route", "/"), ("status", "200")))] == 5
    assert got[("deaios_ttest_http_requests_total", (("method", "GET"), ("route", "/thing/{id}"),
                                                     ("status", "200")))] == 1
    assert got[("deaios_ttest_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert got[("deaios_ttest_http_sent_bytes_total", (("route", "/thing/{id}"),))] == 5
    assert got[("deaios_ttest_height", ())] == 42
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in got)  # scrapes are not counted
    assert not any(name.endswith("_created") for name, _ in got)

    summary = summarize_metrics(text)
    assert summary["version"] == metrics.__version__ and summary["requests"] == 7
    assert summary["errors"] == 1 and summary["counters"]["deaios_ttest_height"] == 42


def test_counter_names_follow_the_conventions() -> None:
    c = metrics.counter("ttest", "things_total", "things")
    assert metrics.counter("ttest", "things_total", "things") is c  # one metric per name in a process
    try:
        metrics.counter("ttest", "things", "no _total")
    except ValueError:
        pass
    else:
        raise AssertionError("a counter name without _total was accepted")


def test_every_process_of_stack_json_is_found_even_of_unknown_services() -> None:
    stack = Stack.from_json({
        "rpc": "http://127.0.0.1:1", "chain_id": 31337, "contracts": {}, "indexer": "http://127.0.0.1:2",
        "indexer_pid": 12, "storage_nodes": [{"index": 0, "url": "http://127.0.0.1:3", "pid": 13}],
        "private_key": "0x" + "11" * 32, "launcher_pid": 10, "anvil_pid": 11,
        "kv": {"url": "http://127.0.0.1:4", "pid": 14}, "inft_oracle": "http://127.0.0.1:5", "inft_oracle_pid": 15,
        "da_nodes": [{"name": "da-node-0", "url": "http://127.0.0.1:6", "pid": 16}],
        "disperser": {"url": "http://127.0.0.1:7", "pid": 17},  # a service a later area adds
        "logs": "/tmp/logs", "account": "0x" + "22" * 20})
    found = {p.name: p for p in stack_processes(stack)}
    assert set(found) == {"launcher", "anvil", "node-0", "indexer", "kv", "inft-oracle", "da-node-0", "disperser"}
    assert found["disperser"].metrics_url == "http://127.0.0.1:7/metrics"
    assert found["anvil"].metrics_url is None and found["launcher"].url is None


def test_event_declarations_decode_raw_logs() -> None:
    event = Event.parse("Flagged(uint256 indexed nodeId, address indexed by, (uint256,bytes) detail, bool final)")
    assert [name for _, name, _ in event.inputs] == ["nodeId", "by", "detail", "final"]
    from eth_abi import encode

    log = {"topics": [event.topic, "0x" + (7).to_bytes(32, "big").hex(), "0x" + bytes(12).hex() + "ab" * 20],
           "data": "0x" + encode(["(uint256,bytes)", "bool"], [(5, b"xy"), True]).hex(),
           "blockNumber": "0x10", "transactionHash": "0x" + "cd" * 32, "logIndex": "0x2"}
    decoded = event.decode(log)
    assert decoded["nodeId"] == 7 and decoded["by"].lower() == "0x" + "ab" * 20
    assert decoded["detail"] == (5, b"xy") and decoded["final"] is True and decoded["block"] == 16


def test_amounts_beyond_javascript_integers_become_strings() -> None:
    assert js_safe({"a": [2**53 - 1, 2**60, True], "b": -(2**70)}) == {"a": [2**53 - 1, str(2**60), True],
                                                                      "b": str(-(2**70))}
