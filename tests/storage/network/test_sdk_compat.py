"""The official 0G TypeScript SDK (npm @0gfoundation/0g-ts-sdk, unmodified) against a deaios stack:
`Indexer.upload` through our indexer and storage nodes, `Indexer.download` back, byte-exact; plus the
SDK's `StorageNode` client reading file info and a proven segment straight from a node.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from stack_harness import sdk_transfer

from deaios.stack.config import Stack
from deaios.storage.merkle import SEGMENT_SIZE, FileMerkleTree, Proof, num_segments, segment_root

pytestmark = pytest.mark.sdk

def test_sdk_uploads_and_downloads_multi_segment_file(stack: Stack, tmp_path: Path) -> None:
    data = os.urandom(600_000)  # 3 segments, two submission nodes
    src, out = tmp_path / "file.bin", tmp_path / "file.out"
    src.write_bytes(data)
    node = stack.storage_nodes[3]["url"]
    result = sdk_transfer(stack, src, out, "--proof", "--node", node)

    tree = FileMerkleTree.from_path(src)
    assert result["root"] == "0x" + tree.root.hex()
    assert out.read_bytes() == data

    # the SDK's StorageNode client, straight against one node
    info = result["node"]["info"]
    assert info["finalized"] is True
    assert info["tx"]["dataMerkleRoot"] == result["root"]
    assert info["tx"]["size"] == len(data)
    assert info["tx"]["seq"] == result["txSeq"]
    assert result["node"]["byTxSeq"]["tx"]["dataMerkleRoot"] == result["root"]
    segment = result["node"]["segment"]
    seg_data = base64.b64decode(segment["data"])
    assert seg_data == data[:SEGMENT_SIZE]
    Proof.from_json(segment["proof"]).verify(tree.root, segment_root(seg_data), 0, num_segments(len(data)))
    assert result["node"]["shard"] == {"shardId": 0, "numShard": 1}
    status = result["node"]["status"]
    assert status["networkIdentity"]["flowAddress"].lower() == stack.flow.lower()
    assert status["networkIdentity"]["chainId"] == stack.chain_id


def test_sdk_uploads_and_downloads_one_byte_file(stack: Stack, tmp_path: Path) -> None:
    src, out = tmp_path / "one", tmp_path / "one.out"
    src.write_bytes(b"\x42")
    result = sdk_transfer(stack, src, out)
    assert result["root"] == "0x" + FileMerkleTree.from_path(src).root.hex()
    assert out.read_bytes() == b"\x42"
