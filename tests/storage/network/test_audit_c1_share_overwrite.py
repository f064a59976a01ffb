"""Audit C1 — anyone overwrites erasure shares (docs/audit.md, "Off-chain services").

The attack: `PUT /deaios/v1/shares/<root>` with random bytes of the right length, sent to every storage node
by someone holding no key and paying no fee. Against the code before the fix every node replaced its shares
(the crc32 was recomputed over the garbage, so scrub and repair never noticed) and the file could no longer
be downloaded; a file still waiting for its shares even turned FINALIZED with garbage. The fix: placement
is authenticated (the submitter's or a peer node's signature), shares are write-once, data shares carry a
merkle proof against their segment root, parity shares are checked by decoding before a file is FINALIZED.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import aiohttp
import requests
from stack_harness import download, upload

from deaios.stack.config import Stack
from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import SEGMENT_SIZE, FileMerkleTree
from deaios.storage.placement import PlacementSigner, encode_for_placement
from deaios.storage.share_transport import ShareClient

SIZE = 3 * 262_144 + 5_000  # 4 segments, the last one short


def forged_body(code: ErasureCode, size: int) -> bytes:
    """Random bytes exactly as long as a node's shares of every data segment of a `size`-byte file."""
    lengths = segment_lengths(size)[:data_segments(size)]
    return os.urandom(sum(code.share_size(length) for length in lengths))


def forge_everywhere(stack: Stack, root: str, size: int, with_roots: bytes | None = None) -> list[int]:
    """The attacker's PUTs (no key, no signature) to every node; the HTTP status of each share PUT."""
    code = ErasureCode.for_nodes(len(stack.node_urls))
    statuses = []
    for url in stack.node_urls:
        if with_roots is not None:
            requests.put(f"{url}/deaios/v1/roots/{root}", data=with_roots, timeout=10)
        reply = requests.put(f"{url}/deaios/v1/shares/{root}", params={"first": 0, "count": data_segments(size)},
                             data=forged_body(code, size), timeout=10)
        statuses.append(reply.status_code)
    return statuses


def file_infos(stack: Stack, root: str) -> list[dict]:
    infos = []
    for url in stack.node_urls:
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "zgs_getFileInfo",
                                         "params": [root, False]}, timeout=10).json()
        infos.append(reply["result"])
    return infos


def submit_only(stack: Stack, tree: FileMerkleTree) -> str:
    """Pay for `tree`'s submission (no shares placed) and wait until every node has seen it; its root."""
    root = "0x" + tree.root.hex()
    FlowClient(stack.rpc, stack.flow, stack.private_key).submit(tree.submission())
    deadline = time.monotonic() + 30
    while not all(file_infos(stack, root)):
        assert time.monotonic() < deadline, "the nodes did not see the submission"
        time.sleep(0.1)
    return root


def test_forged_shares_from_anyone_leave_every_file_downloadable(stack: Stack, tmp_path: Path) -> None:
    data = random.Random(11).randbytes(SIZE)
    src = tmp_path / "victim.bin"
    src.write_bytes(data)
    root = upload(stack, src)
    statuses = forge_everywhere(stack, root, SIZE)
    time.sleep(2.5)  # a repair pass on every node
    assert download(stack, root, tmp_path / "copy.bin") == data
    assert all(400 <= status < 500 for status in statuses), statuses


def test_forged_shares_cannot_finalize_a_pending_file(stack: Stack, tmp_path: Path) -> None:
    data = random.Random(12).randbytes(SIZE)
    src = tmp_path / "pending.bin"
    src.write_bytes(data)
    tree = FileMerkleTree.from_bytes(data)
    root = submit_only(stack, tree)
    # the attacker knows the file (it is public) and so its segment roots, but has no key
    forge_everywhere(stack, root, SIZE, with_roots=tree.segment_roots)
    assert not any(info["finalized"] for info in file_infos(stack, root))
    assert upload(stack, src) == root  # the honest uploader resumes the submission
    assert download(stack, root, tmp_path / "copy.bin") == data


def test_a_submitter_cannot_store_garbage_either(stack: Stack, tmp_path: Path) -> None:
    """Even the account that paid for a file (and so may place its shares) cannot make a node keep wrong
    shares: a forged data share fails its merkle proof at once, forged parity shares are found by decoding
    and replaced before the nodes report the file finalized."""
    data = random.Random(13).randbytes(SIZE)
    src = tmp_path / "own.bin"
    src.write_bytes(data)
    tree = FileMerkleTree.from_bytes(data)
    root = submit_only(stack, tree)
    code = ErasureCode.for_nodes(len(stack.node_urls))
    signer = PlacementSigner(stack.private_key, stack.chain_id, stack.flow)
    n = data_segments(SIZE)
    segments = [data[i * SEGMENT_SIZE:(i + 1) * SEGMENT_SIZE].ljust(length, b"\0")
                for i, length in enumerate(segment_lengths(SIZE)[:n])]
    placed = [encode_for_placement(code, segment) for segment in segments]
    correct = [code.encode(segment) for segment in segments]
    for node, url in enumerate(stack.node_urls):
        headers = signer.headers(tree.root, node)
        assert requests.put(f"{url}/deaios/v1/roots/{root}", data=tree.segment_roots, headers=headers,
                            timeout=10).status_code == 204
        numbers = [code.share_of(i, node) for i in range(n)]
        if any(number < code.k for number in numbers):  # one forged data share spoils the whole request
            forged = [bytearray(placed[i][s]) for i, s in enumerate(numbers)]
            victim = next(i for i, s in enumerate(numbers) if s < code.k)
            forged[victim][7] ^= 0xFF
            reply = requests.put(f"{url}/deaios/v1/shares/{root}", params={"first": 0, "count": n},
                                 data=b"".join(forged), headers=headers, timeout=10)
            assert reply.status_code == 400 and "merkle proof" in reply.json()["error"], reply.text
        body = b"".join(placed[i][s] if s < code.k else os.urandom(len(placed[i][s])) for i, s in enumerate(numbers))
        assert requests.put(f"{url}/deaios/v1/shares/{root}", params={"first": 0, "count": n}, data=body,
                            headers=headers, timeout=10).status_code == 204
    deadline = time.monotonic() + 30
    while not all(info["finalized"] for info in file_infos(stack, root)):
        assert time.monotonic() < deadline, "the nodes did not verify and finalize the file"
        time.sleep(0.2)

    async def stored() -> list[list[bytes | None]]:
        async with aiohttp.ClientSession() as session:
            client = ShareClient(session, stack.node_urls)
            sizes = [code.share_size(length) for length in segment_lengths(SIZE)[:n]]
            return [await client.get_shares(node, tree.root, 0, sizes) for node in range(len(stack.node_urls))]

    for node, shares in enumerate(asyncio.run(stored())):
        assert [bytes(s) for s in shares] == [bytes(correct[i][code.share_of(i, node)]) for i in range(n)], node
    assert download(stack, root, tmp_path / "copy.bin") == data
