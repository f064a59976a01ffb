"""A storage node under bad input: every malformed call gets a JSON-RPC error object (or an HTTP 4xx on the
share API), the node keeps serving, and nothing it already stored changes."""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path

import requests
import pytest

from deaios.stack.config import Stack
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import SEGMENT_SIZE, FileMerkleTree
from deaios.storage.placement import PlacementSigner

DATA = random.Random(5).randbytes(3 * SEGMENT_SIZE + 1000)  # 4 segments


@pytest.fixture(scope="module")
def node(stack: Stack) -> str:
    return stack.node_urls[0]


@pytest.fixture(scope="module")
def pending(stack: Stack) -> FileMerkleTree:
    """A submitted file whose first segment (only) was uploaded through zgs_uploadSegment."""
    tree = FileMerkleTree.from_bytes(DATA)
    FlowClient(stack.rpc, stack.flow, stack.private_key).submit(tree.submission())
    for _ in range(100):
        if rpc(stack.node_urls[0], "zgs_getFileInfo", root_hex(tree), False)["result"]:
            break
    assert rpc(stack.node_urls[0], "zgs_uploadSegment", segment(tree, 0)) == {"jsonrpc": "2.0", "id": 1,
                                                                            "result": None}
    return tree


def root_hex(tree: FileMerkleTree) -> str:
    return "0x" + tree.root.hex()


def segment(tree: FileMerkleTree, at: int, payload: bytes | None = None, **overrides: object) -> dict:
    chunk = DATA[at * SEGMENT_SIZE:(at + 1) * SEGMENT_SIZE] if payload is None else payload
    chunk += bytes(-len(chunk) % 256)  # uploaders send whole 256-byte chunks, as the SDK does
    seg = {"root": root_hex(tree), "data": base64.b64encode(chunk).decode(), "index": at,
           "proof": tree.segment_proof(at).to_json(), "fileSize": len(DATA)}
    seg.update(overrides)
    return seg


def rpc(url: str, method: str, *params: object) -> dict:
    return post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})


def post(url: str, body: object, raw: bytes | None = None) -> dict:
    content = raw if raw is not None else json.dumps(body).encode()
    response = requests.post(url, data=content, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 200  # JSON-RPC errors travel in the body, never as HTTP errors
    return response.json()


def error_of(reply: dict) -> dict:
    assert "error" in reply and "result" not in reply, reply
    return reply["error"]


def uploaded(url: str, tree: FileMerkleTree) -> int:
    return rpc(url, "zgs_getFileInfo", root_hex(tree), False)["result"]["uploadedSegNum"]


def test_protocol_errors(node: str) -> None:
    assert error_of(post(node, None, raw=b'{"jsonrpc": "2.0", "method": '))["code"] == -32700
    assert error_of(post(node, None, raw=b"\xff\xfe"))["code"] == -32700
    assert error_of(post(node, {"method": "zgs_getStatus"}))["code"] == -32600
    assert error_of(post(node, []))["code"] == -32600
    assert error_of(rpc(node, "zgs_noSuchMethod"))["code"] == -32601
    assert error_of(rpc(node, "zgs_getFileInfoByTxSeq"))["code"] == -32602  # missing param
    assert error_of(rpc(node, "zgs_getStatus", 1, 2))["code"] == -32602  # extra params
    assert error_of(post(node, {"jsonrpc": "2.0", "id": 3, "method": "zgs_getStatus", "params": {"a": 1}}))
    batch = post(node, [{"jsonrpc": "2.0", "id": 1, "method": "zgs_getShardConfig", "params": []},
                        {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []}])
    assert batch[0]["result"] == {"shardId": 0, "numShard": 1} and batch[1]["error"]["code"] == -32601


def test_oversize_body_is_refused_with_an_error_object(node: str) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"zgs_uploadSegment","params":["' + b"A" * (65 << 20) + b'"]}'
    error = error_of(post(node, None, raw=body))
    assert error["code"] == -32600 and "too large" in error["message"]


def test_bad_roots_and_ranges(node: str, pending: FileMerkleTree) -> None:
    assert rpc(node, "zgs_getFileInfo", "0x" + "11" * 32, False)["result"] is None
    assert rpc(node, "zgs_getFileInfoByTxSeq", 10**6)["result"] is None
    for bad in ["0x1234", "zz" * 32, 5, None]:
        assert error_of(rpc(node, "zgs_getFileInfo", bad, False))["code"] == -32602
    assert error_of(rpc(node, "zgs_getFileInfoByTxSeq", -1))["code"] == -32602
    assert "not found" in error_of(rpc(node, "zgs_downloadSegment", "0x" + "22" * 32, 0, 1))["message"]
    assert error_of(rpc(node, "zgs_downloadSegment", root_hex(pending), 5, 5))["code"] == -32602
    assert error_of(rpc(node, "zgs_downloadSegment", root_hex(pending), 0, 5000))["code"] == -32602
    assert "not finalized" in error_of(rpc(node, "zgs_downloadSegment", root_hex(pending), 1500, 1600))["message"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"root": "0x" + "33" * 32}, "not found"),
    ({"index": 1}, "invalid merkle proof"),  # segment 0's data and proof claimed as segment 1
    ({"index": 9}, "out of range"),
    ({"index": -1}, "non-negative integer"),
    ({"fileSize": 12}, "does not match"),
    ({"data": "***not base64***"}, "base64"),
    ({"data": base64.b64encode(b"x" * 1000).decode()}, "must be 262144 bytes"),
    ({"proof": {"lemma": ["0x00"], "path": []}}, "malformed proof"),
    ({"proof": "nope"}, "malformed proof"),
])
def test_bad_segments_are_rejected_and_change_nothing(node: str, pending: FileMerkleTree, overrides: dict,
                                                      message: str) -> None:
    before = uploaded(node, pending)
    error = error_of(rpc(node, "zgs_uploadSegment", segment(pending, 0, **overrides)))
    assert message in error["message"]
    assert uploaded(node, pending) == before == 1


def test_tampered_segment_data_fails_its_proof(node: str, pending: FileMerkleTree) -> None:
    data = bytearray(DATA[SEGMENT_SIZE:2 * SEGMENT_SIZE])
    data[100] ^= 1
    error = error_of(rpc(node, "zgs_uploadSegment", segment(pending, 1, bytes(data))))
    assert "invalid merkle proof" in error["message"]
    assert error_of(rpc(node, "zgs_uploadSegments", []))["code"] == -32602
    assert error_of(rpc(node, "zgs_uploadSegment", "not an object"))["code"] == -32602
    assert error_of(rpc(node, "zgs_uploadSegmentByTxSeq", segment(pending, 1), 999))["code"] == -32602
    assert uploaded(node, pending) == 1


def test_share_api_rejects_bad_requests(stack: Stack, node: str, pending: FileMerkleTree) -> None:
    root = root_hex(pending)
    unknown = "0x" + "44" * 32
    assert requests.get(f"{node}/deaios/v1/missing/{unknown}").status_code == 404
    assert requests.get(f"{node}/deaios/v1/missing/0x12").status_code == 400
    placement = PlacementSigner(stack.private_key, stack.chain_id, stack.flow).headers(pending.root, 0)
    assert requests.put(f"{node}/deaios/v1/roots/{root}", data=b"\x00" * 64).status_code == 401  # no signature
    assert requests.put(f"{node}/deaios/v1/roots/{root}", data=b"\x00" * 64, headers=placement).status_code == 400
    reply = requests.put(f"{node}/deaios/v1/shares/{root}", params={"first": 0, "count": 1}, data=b"x",
                         headers=placement)
    assert reply.status_code == 409 and "segment roots" in reply.json()["error"]
    stranger = PlacementSigner("0x" + "42" * 32, stack.chain_id, stack.flow).headers(pending.root, 0)
    reply = requests.put(f"{node}/deaios/v1/roots/{root}", data=pending.segment_roots, headers=stranger)
    assert reply.status_code == 403 and "neither a submitter" in reply.json()["error"]
    wrong_node = PlacementSigner(stack.private_key, stack.chain_id, stack.flow).headers(pending.root, 1)
    assert requests.put(f"{node}/deaios/v1/roots/{root}", data=pending.segment_roots,
                        headers=wrong_node).status_code in (401, 403)  # a token for node 1 fails on node 0
    assert requests.get(f"{node}/deaios/v1/shares/{root}", params={"first": "a", "count": 1}).status_code == 400
    assert requests.get(f"{node}/deaios/v1/shares/{root}", params={"first": 0, "count": 99}).status_code == 400


def test_node_still_serves_and_completes_the_file(stack: Stack, node: str, pending: FileMerkleTree,
                                                 tmp_path: Path) -> None:
    """After all the abuse above: the rest of the segments upload, the file finalizes and reads back."""
    assert rpc(node, "zgs_getStatus")["result"]["networkIdentity"]["flowAddress"] == stack.flow
    reply = rpc(node, "zgs_uploadSegments", [segment(pending, i) for i in (1, 2, 3)])
    assert reply.get("result", reply) is None
    for _ in range(200):
        info = rpc(node, "zgs_getFileInfo", root_hex(pending), False)["result"]
        if info["finalized"]:
            break
        time.sleep(0.05)
    assert info["finalized"] and info["uploadedSegNum"] == 4
    again = error_of(rpc(node, "zgs_uploadSegment", segment(pending, 0)))
    assert again["message"] == "already uploaded and finalized"
    first = rpc(stack.node_urls[5], "zgs_downloadSegmentWithProof", root_hex(pending), 3)["result"]
    assert base64.b64decode(first["data"]) == DATA[3 * SEGMENT_SIZE:] + bytes(24)  # whole chunks
    data = b"".join(base64.b64decode(rpc(stack.node_urls[7], "zgs_downloadSegment", root_hex(pending),
                                         i * 1024, min((i + 1) * 1024, 3 * 1024 + 4))["result"]) for i in range(4))
    assert data[:len(DATA)] == DATA
