"""The kv_* JSON-RPC of a real `deaios kv node` process (read-only mode, serving an index replayed here):
0G's shapes and error objects, and the official SDK's KvClient reading through it."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from kvutil import ALICE, BOB, CAROL, ROOT, S0, S1, S2, Log, sdk_kv

from deaios.kv.codec import AccessControl, Op, StreamData, Write

BIG = bytes(range(256)) * 1200  # 300 KiB: more than one 256 KiB query


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A KV node serving: tx0 alice writes S0 {a, b, c} and S1 {big}; tx1 alice deletes b, grants bob
    writer and makes c special for carol; tx2 bob overwrites a; tx3 bob writes c (denied); tx4 alice
    writes S1 {z}."""
    directory = tmp_path_factory.mktemp("kv") / "kv"
    log = Log(directory)
    assert log.submit(ALICE, StreamData(writes=[Write(S0, b"a", b"a0"), Write(S0, b"b", b"b0"),
                                                Write(S1, b"big", BIG), Write(S0, b"c", b"c0")])) == "Commit"
    assert log.submit(ALICE, StreamData(writes=[Write(S0, b"b", b"")], controls=[
        AccessControl(Op.GRANT_WRITER_ROLE, S0, account=BOB), AccessControl(Op.SET_KEY_TO_SPECIAL, S0, key=b"c"),
        AccessControl(Op.GRANT_SPECIAL_WRITER_ROLE, S0, key=b"c", account=CAROL)])) == "Commit"
    assert log.submit(BOB, StreamData(writes=[Write(S0, b"a", b"a2")])) == "Commit"
    assert log.submit(BOB, StreamData(writes=[Write(S0, b"c", b"bob")])).startswith("WritePermissionDenied")
    assert log.submit(ALICE, StreamData(writes=[Write(S1, b"z", b"z4")])) == "Commit"
    log.index.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "kv", "node", "--dir", str(directory), "--port",
                             str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
    yield url
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def post(url: str, payload: object) -> dict | list:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def call(url: str, method: str, *params: object) -> object:
    reply = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert "error" not in reply, reply
    return reply["result"]


def error(url: str, method: str, *params: object) -> dict:
    reply = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert "error" in reply, reply
    return reply["error"]


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def test_get_value(node: str) -> None:
    assert call(node, "kv_getValue", hx(S0), b64(b"a"), 0, 100) == {"version": 2, "data": b64(b"a2"), "size": 2}
    assert call(node, "kv_getValue", hx(S0), b64(b"a"), 0, 100, 1) == {"version": 0, "data": b64(b"a0"), "size": 2}
    assert call(node, "kv_getValue", hx(S0), b64(b"a"), 1, 100) == {"version": 2, "data": b64(b"2"), "size": 2}
    assert call(node, "kv_getValue", hx(S0), b64(b"a"), 2, 100)["data"] == ""
    # deleted, and never written
    assert call(node, "kv_getValue", hx(S0), b64(b"b"), 0, 100) == {"version": 1, "data": "", "size": 0}
    assert call(node, "kv_getValue", hx(S0), b64(b"b"), 0, 100, 0) == {"version": 0, "data": b64(b"b0"), "size": 2}
    assert call(node, "kv_getValue", hx(S0), b64(b"nope"), 0, 100) == {"version": 0, "data": "", "size": 0}
    assert call(node, "kv_getValue", hx(S2), b64(b"a"), 0, 100) == {"version": 0, "data": "", "size": 0}
    # a value over 256 KiB comes in pieces
    first = call(node, "kv_getValue", hx(S1), b64(b"big"), 0, 256 * 1024)
    rest = call(node, "kv_getValue", hx(S1), b64(b"big"), 256 * 1024, 256 * 1024)
    assert first["size"] == rest["size"] == len(BIG)
    assert base64.b64decode(first["data"]) + base64.b64decode(rest["data"]) == BIG
    assert call(node, "kv_getValue", hx(S1), b64(b"big"), len(BIG), 10)["data"] == ""


def test_iteration(node: str) -> None:
    def key_of(result: dict | None) -> bytes | None:
        return None if result is None else base64.b64decode(result["key"])

    assert key_of(call(node, "kv_getFirst", hx(S0), 0, 10)) == b"a"
    assert key_of(call(node, "kv_getLast", hx(S0), 0, 10)) == b"c"
    assert call(node, "kv_getLast", hx(S0), 0, 10) == {"version": 0, "key": b64(b"c"), "data": b64(b"c0"), "size": 2}
    assert key_of(call(node, "kv_getNext", hx(S0), b64(b"a"), 0, 10, False)) == b"c"  # b is deleted
    assert key_of(call(node, "kv_getNext", hx(S0), b64(b"a"), 0, 10, True)) == b"a"
    assert key_of(call(node, "kv_getNext", hx(S0), b64(b"a"), 0, 10, False, 0)) == b"b"  # at version 0, b exists
    assert key_of(call(node, "kv_getPrev", hx(S0), b64(b"c"), 0, 10, False)) == b"a"
    assert key_of(call(node, "kv_getPrev", hx(S0), b64(b"bz"), 0, 10, True)) == b"a"
    assert key_of(call(node, "kv_getPrev", hx(S0), b64(b"bz"), 0, 10, True, 0)) == b"b"
    assert key_of(call(node, "kv_getPrev", hx(S1), b64(b"zz"), 0, 10, True, 3)) == b"big"
    assert call(node, "kv_getNext", hx(S0), b64(b"c"), 0, 10, False) is None
    assert call(node, "kv_getPrev", hx(S0), b64(b"a"), 0, 10, False) is None
    assert call(node, "kv_getFirst", hx(S2), 0, 10) is None
    assert key_of(call(node, "kv_getLast", hx(S1), 0, 10, 3)) == b"big"  # z came at tx 4


def test_results_streams_and_access_control(node: str) -> None:
    assert call(node, "kv_getTransactionResult", 0) == "Commit"
    assert call(node, "kv_getTransactionResult", "2") == "Commit"  # the SDK sends the seq as a string
    assert call(node, "kv_getTransactionResult", 3) == f"WritePermissionDenied: stream: {hx(S0)}, key: c"
    assert call(node, "kv_getTransactionResult", 99) is None
    assert call(node, "kv_getHoldingStreamIds") == sorted([hx(S0), hx(S1)])
    assert call(node, "kv_IsAdmin", hx(ALICE), hx(S0)) is True
    assert call(node, "kv_IsAdmin", hx(BOB), hx(S0)) is False
    assert call(node, "kv_isWriterOfStream", hx(BOB), hx(S0)) is True
    assert call(node, "kv_isWriterOfStream", hx(BOB), hx(S0), 0) is False
    assert call(node, "kv_isSpecialKey", hx(S0), b64(b"c")) is True
    assert call(node, "kv_isSpecialKey", hx(S0), b64(b"c"), 0) is False
    assert call(node, "kv_isWriterOfKey", hx(CAROL), hx(S0), b64(b"c")) is True
    assert call(node, "kv_hasWritePermission", hx(BOB), hx(S0), b64(b"a")) is True
    assert call(node, "kv_hasWritePermission", hx(BOB), hx(S0), b64(b"c")) is False
    assert call(node, "kv_hasWritePermission", hx(CAROL), hx(S0), b64(b"c")) is True
    assert call(node, "kv_hasWritePermission", hx(CAROL), hx(S2), b64(b"c")) is True  # a new stream
    assert call(node, "kv_getStatus") is True
    status = call(node, "deaios_kvStatus")
    assert status["nextTxSeq"] == 5 and status["logSyncHeight"] is None and status["streams"] == "all"


def test_bad_params_are_error_objects(node: str) -> None:
    cases = [
        (("kv_getValue", hx(S0), b64(b"a"), 0, 256 * 1024 + 1), "Invalid params: len", "query length too large"),
        (("kv_getValue", hx(S0), "", 0, 10), "Invalid params: key", "key is empty"),
        (("kv_getValue", hx(S0), "%%%", 0, 10), "Invalid params: key", None),
        (("kv_getValue", hx(S0), b64(b"a"), 3, 10), "Invalid params: start_index",
         "start index is greater than value length"),
        (("kv_getValue", "0x1234", b64(b"a"), 0, 10), "Invalid params: stream_id", None),
        (("kv_getValue", hx(S0), b64(b"a"), -1, 10), "Invalid params: start_index", None),
        (("kv_getValue", hx(S0), b64(b"a"), 0, 10, "latest"), "Invalid params: version", None),
        (("kv_getNext", hx(S0), b64(b"a"), 0, 10, "yes"), "Invalid params: inclusive", None),
        (("kv_IsAdmin", "0x12", hx(S0)), "Invalid params: account", None),
        (("kv_getTransactionResult", -1), "Invalid params: tx_seq", None),
    ]
    for (method, *params), message, data in cases:
        err = error(node, method, *params)
        assert err["code"] == -32602 and err["message"] == message, (method, params, err)
        if data:
            assert err["data"] == data
    assert error(node, "kv_getValue", hx(S0))["code"] == -32602  # missing params
    assert error(node, "kv_nope")["code"] == -32601
    assert post(node, b"{not json")["error"]["code"] == -32700
    assert call(node, "kv_getValue", hx(S0), b64(b"a"), 0, 100)["size"] == 2  # and it keeps serving


@pytest.mark.sdk
def test_the_official_kv_client_reads_it(node: str) -> None:
    out = sdk_kv("read", node, spec={"stream": hx(S0), "keys": [hx(b"a"), hx(b"b"), hx(b"c"), hx(b"nope")],
                                     "txSeqs": [0, 3, 99], "account": hx(BOB)})
    assert out["values"][hx(b"a")] == {"data": hx(b"a2"), "size": 2, "version": 2}
    assert out["values"][hx(b"b")]["size"] == 0 and out["values"][hx(b"nope")]["size"] == 0
    assert out["iterated"] == [[hx(b"a"), hx(b"a2")], [hx(b"c"), hx(b"c0")]]
    assert out["reversed"] == [hx(b"c"), hx(b"a")]
    assert out["first"] == hx(b"a") and out["last"] == hx(b"c")
    assert out["results"] == {"0": "Commit", "3": f"WritePermissionDenied: stream: {hx(S0)}, key: c", "99": None}
    assert out["holding"] == sorted([hx(S0), hx(S1)])
    assert out["isAdmin"] is False and out["isWriterOfStream"] is True
    assert out["hasWritePermission"] == {hx(b"a"): True, hx(b"b"): True, hx(b"c"): False, hx(b"nope"): True}
    # a snapshot read: the iterator at version 0 sees b and the old a
    old = sdk_kv("read", node, spec={"stream": hx(S0), "keys": [hx(b"a")], "version": 0})
    assert [k for k, _ in old["iterated"]] == [hx(b"a"), hx(b"b"), hx(b"c")]
    assert old["values"][hx(b"a")]["data"] == hx(b"a0")
