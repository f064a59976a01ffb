"""Bad input to every service (issue 13; docs/limits.md): property-based tests (Hypothesis) that send each HTTP
and JSON-RPC service of a running stack — storage node, indexer, KV node, DA node, compute provider, INFT
oracle, OP alt-DA server, Nitro DA provider, dashboard — malformed JSON, wrong types, invalid hex, unknown
methods, random routes, oversized bodies and batches.

Every answer must be a well-formed JSON-RPC response (a result, or an error object — never an internal
error, which would be a bug) or an HTTP 4xx; never a 5xx or a dropped connection. Bodies over each service's
limits are refused without being read in full, and every service still answers afterwards.

The default run is short (a few dozen examples per service); `DEAIOS_AUDIT_STEPS=N` runs N per service.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deaios.da.encoding import MAX_DATA
from deaios.stack.config import Stack

STEPS = int(os.environ.get("DEAIOS_AUDIT_STEPS", "25"))
SETTINGS = settings(max_examples=STEPS, deadline=None, derandomize="DEAIOS_AUDIT_STEPS" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TIMEOUT = 60

METHODS = {
    "storage": ["zgs_getStatus", "zgs_getShardConfig", "zgs_uploadSegment", "zgs_uploadSegments",
                "zgs_uploadSegmentByTxSeq", "zgs_uploadSegmentsByTxSeq", "zgs_downloadSegment",
                "zgs_downloadSegmentByTxSeq", "zgs_downloadSegmentWithProof", "zgs_downloadSegmentWithProofByTxSeq",
                "zgs_getFileInfo", "zgs_getFileInfoByTxSeq", "deaios_challenge"],
    "indexer": ["indexer_getShardedNodes", "indexer_getNodeLocations", "indexer_getFileLocations"],
    "kv": ["kv_getStatus", "kv_getValue", "kv_getNext", "kv_getPrev", "kv_getFirst", "kv_getLast",
           "kv_getTransactionResult", "kv_getHoldingStreamIds", "kv_hasWritePermission", "kv_IsAdmin",
           "kv_isSpecialKey", "kv_isWriterOfKey", "kv_isWriterOfStream", "deaios_kvStatus"],
    "da": ["da_status", "da_sign", "da_retrieve"],
    "nitro": ["daprovider_getSupportedHeaderBytes", "daprovider_getMaxMessageSize", "daprovider_store",
              "daprovider_startChunkedStore", "daprovider_sendChunk", "daprovider_commitChunkedStore",
              "daprovider_recoverPayload", "daprovider_collectPreimages", "daprovider_recoverPayloadAndPreimages",
              "daprovider_generateReadPreimageProof", "daprovider_generateCertificateValidityProof"],
}
#: a body just over each JSON-RPC service's largest per-method limit (docs/limits.md); the Nitro provider's
#: store takes two DA blobs, hex-encoded
OVERSIZE = {"storage": 13 << 20, "indexer": 1 << 20, "kv": 1 << 20, "da": 18 << 20, "nitro": 4 * MAX_DATA + (2 << 20)}

HEXES = st.sampled_from(["", "0x", "0x1", "0xzz", "0x" + "ab" * 20, "0x" + "cd" * 32, "0x" + "00" * 33, "AAAA",
                         "0X" + "ef" * 32, "==", "0x" + "12" * 1000])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | HEXES)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def calls(methods: list[str]) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2]),
        "id": st.integers(0, 99) | st.none() | st.text(max_size=4),
        "method": st.sampled_from(methods) | st.text(max_size=12),
        "params": st.lists(VALUES, max_size=6) | VALUES,
    })


def bodies(methods: list[str]) -> st.SearchStrategy:
    """Request bodies: raw bytes, any JSON, a call, a batch of calls (sometimes over the batch limit)."""
    call = calls(methods)
    return st.one_of(
        st.binary(max_size=300),
        VALUES.map(lambda v: json.dumps(v).encode()),
        call.map(lambda c: json.dumps(c).encode()),
        st.lists(call, min_size=1, max_size=6).map(lambda cs: json.dumps(cs).encode()),
        st.tuples(call, st.integers(101, 140)).map(lambda t: json.dumps([t[0]] * t[1]).encode()),
        st.integers(1, 2000).map(lambda depth: b"[" * depth + b"]" * depth),
    )


def check_jsonrpc_answer(response: requests.Response, body: bytes) -> None:
    """A 4xx, or a well-formed JSON-RPC response whose errors are never internal errors."""
    assert response.status_code < 500, (response.status_code, response.text[:300], body[:200])
    if response.status_code != 200:
        return
    answer = response.json()
    replies = answer if isinstance(answer, list) else [answer]
    for reply in replies:
        if reply == {}:  # a notification's (empty) answer
            continue
        assert reply.get("jsonrpc") == "2.0" and ("result" in reply) != ("error" in reply), (reply, body[:200])
        if "error" in reply:
            error = reply["error"]
            assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), reply
            assert error["code"] != -32603, (reply, body[:300])  # an internal error is a bug


def urls_of(stack: Stack) -> dict[str, str]:
    return {"storage": stack.node_urls[0], "indexer": stack.indexer, "kv": stack.extra["kv"]["url"],
            "da": stack.extra["da_nodes"][0]["url"], "nitro": stack.extra["da_nitro"]["url"]}


@pytest.mark.parametrize("service", sorted(METHODS))
def test_jsonrpc_services_answer_bad_input_with_error_objects(stack: Stack, service: str) -> None:
    url = urls_of(stack)[service]

    @SETTINGS
    @given(body=bodies(METHODS[service]))
    def property_holds(body: bytes) -> None:
        response = requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=TIMEOUT)
        check_jsonrpc_answer(response, body)

    property_holds()
    # a body over the service's limits is refused (without the service reading all of it), and it still serves
    started = time.monotonic()
    huge = b'{"jsonrpc":"2.0","id":1,"method":"' + METHODS[service][0].encode() + b'","params":["' \
        + b"A" * OVERSIZE[service] + b'"]}'
    response = requests.post(url, data=huge, headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 413 or response.json()["error"]["code"] == -32600
    assert time.monotonic() - started < 30
    batch = [{"jsonrpc": "2.0", "id": i, "method": METHODS[service][0], "params": []} for i in range(101)]
    assert requests.post(url, json=batch, timeout=TIMEOUT).json()["error"]["code"] == -32600
    alive = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": METHODS[service][0], "params": []},
                          timeout=TIMEOUT).json()
    assert "result" in alive or alive["error"]["code"] != -32603


def http_routes(stack: Stack) -> list[tuple[str, str, int]]:
    """(method, URL, body limit) of the plain-HTTP routes; {x} is replaced by random path text."""
    node = stack.node_urls[1]
    provider = stack.extra["compute_provider"]["url"]
    oracle = stack.extra["inft_oracle"]
    altda_url = stack.extra["da_altda"]["url"]
    dashboard = stack.extra["dashboard"]["url"]
    return [
        ("GET", node + "/deaios/v1/roots/{x}", 0), ("PUT", node + "/deaios/v1/roots/{x}", 16 << 20),
        ("GET", node + "/deaios/v1/shares/{x}", 0), ("PUT", node + "/deaios/v1/shares/{x}", 17 << 20),
        ("GET", node + "/deaios/v1/missing/{x}", 0), ("GET", node + "/deaios/v1/identity", 0),
        ("POST", provider + "/v1/chat/completions", 1 << 20), ("POST", provider + "/deaios/v1/receipts", 4 << 10),
        ("GET", provider + "/deaios/v1/account/{x}", 0), ("GET", provider + "/v1/models", 0),
        ("GET", provider + "/deaios/v1/service", 0),
        ("GET", oracle + "/info", 0), ("POST", oracle + "/reencrypt", 64 << 10),
        ("POST", altda_url + "/put/{x}", MAX_DATA), ("GET", altda_url + "/get/{x}", 0),
        ("GET", altda_url + "/health", 0),
        ("GET", dashboard + "/api/snapshot", 0), ("GET", dashboard + "/api/health", 0), ("GET", dashboard + "/{x}", 0),
    ]


PATH_TEXT = st.one_of(HEXES, st.text(alphabet="0123456789abcdefx%.-_~", max_size=70))
QUERIES = st.dictionaries(st.sampled_from(["first", "count", "kind", "x"]),
                          st.one_of(st.integers(-5, 10**20).map(str), st.text(max_size=5)), max_size=3)
HEADERS = st.dictionaries(st.sampled_from(["X-Deaios-User", "X-Deaios-Nonce", "X-Deaios-Signature",
                                           "X-Deaios-Max-Total", "X-Deaios-Receipt-Signature", "X-Deaios-Placement"]),
                          st.one_of(HEXES, st.text(alphabet="0123456789.x", max_size=30)), max_size=4)


def test_http_services_answer_bad_input_with_4xx(stack: Stack) -> None:
    routes = http_routes(stack)

    @SETTINGS
    @given(route=st.sampled_from(routes), path=PATH_TEXT, query=QUERIES, headers=HEADERS,
           body=st.one_of(st.binary(max_size=300), VALUES.map(lambda v: json.dumps(v).encode())))
    def property_holds(route, path, query, headers, body) -> None:
        method, url, _ = route
        if method == "GET":
            body = b""
        response = requests.request(method, url.replace("{x}", requests.utils.quote(path, safe="") or "x"),
                                    params=query, data=body, headers=headers, timeout=TIMEOUT)
        assert response.status_code < 500, (method, url, path, response.status_code, response.text[:300])

    property_holds()
    for method, url, limit in routes:  # one byte over each body limit: refused, and the service still serves
        if limit:
            response = requests.request(method, url.replace("{x}", "0x" + "ab" * 32), data=b"\0" * (limit + 1),
                                        timeout=TIMEOUT)
            assert 400 <= response.status_code < 500, (method, url, response.status_code)
    for url in (stack.node_urls[1] + "/deaios/v1/identity", stack.extra["compute_provider"]["url"] + "/v1/models",
                stack.extra["inft_oracle"] + "/info", stack.extra["da_altda"]["url"] + "/health",
                stack.extra["dashboard"]["url"] + "/api/health"):
        assert requests.get(url, timeout=TIMEOUT).status_code == 200
