"""Audit H4 — JSON-RPC batches amplify (docs/audit.md, "Off-chain services").

The attack: one request body holding a batch of `zgs_downloadSegment` calls for the same segment. Before
the fix the node built every reply (a 256 KiB segment is ≈ 350 KB of base64) into one response: a 64 MiB
body of such calls asks for ≈ 164 GB. The fix caps the batch length and the running size of a batch's
replies (calls past the cap get error objects), and bounds the requests served at once.
"""

from __future__ import annotations

import random
from pathlib import Path

import requests
from stack_harness import upload

from deaios.stack.config import Stack

CALLS = 100  # ≈ 35 MB of replies before the fix (the batch limit is 100 calls)


def test_a_batch_of_segment_downloads_is_capped(stack: Stack, tmp_path: Path) -> None:
    src = tmp_path / "one-segment.bin"
    src.write_bytes(random.Random(4).randbytes(262_144))
    root = upload(stack, src)
    node = stack.node_urls[2]
    batch = [{"jsonrpc": "2.0", "id": i, "method": "zgs_downloadSegment", "params": [root, 0, 1024]}
             for i in range(CALLS)]
    reply = requests.post(node, json=batch, timeout=120)
    assert reply.status_code == 200
    assert len(reply.content) < 20 << 20, f"{len(reply.content)} bytes of replies for one {len(reply.request.body)} byte request"
    answers = reply.json()
    assert "result" in answers[0] and answers[-1]["error"]["code"] == -32005  # past the reply budget
    huge = [{"jsonrpc": "2.0", "id": i, "method": "zgs_getStatus", "params": []} for i in range(5000)]
    assert requests.post(node, json=huge, timeout=60).json()["error"]["code"] == -32600
    assert requests.post(node, json={"jsonrpc": "2.0", "id": 1, "method": "zgs_getStatus"}).json()["result"]
