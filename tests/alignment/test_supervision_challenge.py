"""The off-chain half of storage challenges (deaios.alignment.challenge), without a chain: challenge derivation,
the chunks a node keeps in its data shares (checked against the real erasure encoder), and chunk proofs to the
flow root (checked against the flow-tree model, which the storage tests check against Flow.sol)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deaios.alignment.challenge import (
    MAX_ATTEMPTS, attempt_hash, chunk_siblings, eligible, flow_tree_at, full_data_segments, node_height, pick_chunk,
    pick_da_blob, pick_da_row, root_of, storage_challenge,
)
from deaios.storage.erasure import ErasureCode, segment_lengths
from deaios.storage.flow_tree import FlowTree
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_SIZE, FileMerkleTree, num_chunks, padded_chunks
from deaios.storage.node.logsync import SubmitEvent

sizes = st.one_of(st.integers(1, 4 * CHUNK_SIZE), st.integers(1, 3 * SEGMENT_SIZE))


def submit_all(files: list[bytes]) -> list[SubmitEvent]:
    """Append the files to a flow model; their Submit events as the chain would emit them."""
    tree, events = FlowTree(), []
    for seq, data in enumerate(files):
        sub = FileMerkleTree.from_bytes(data).submission()
        placement = tree.append_submission(sub)
        events.append(SubmitEvent(seq, placement.start, placement.sectors, len(data), b"",
                                  tuple((n.root, n.height) for n in sub.nodes), 0))
    return events


@settings(max_examples=25, deadline=None)
@given(st.lists(sizes, min_size=1, max_size=4), st.data())
def test_chunk_proofs_reach_the_flow_root(file_sizes, data):
    files = [bytes([i + 1]) * size for i, size in enumerate(file_sizes)]
    events = submit_all(files)
    seq = data.draw(st.integers(0, len(files) - 1))
    event, content = events[seq], files[seq]
    full = content + bytes(padded_chunks(num_chunks(len(content))) * CHUNK_SIZE - len(content))
    chunk = data.draw(st.integers(0, len(full) // CHUNK_SIZE - 1))
    segment = full[chunk // 1024 * SEGMENT_SIZE:(chunk // 1024 + 1) * SEGMENT_SIZE]
    tree = flow_tree_at(events, seq)
    siblings = chunk_siblings(event, chunk, segment, FileMerkleTree.from_bytes(content).segment_roots, tree)
    assert len(siblings) == tree.height
    position = event.start_pos + chunk
    assert root_of(full[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE], position, siblings) == tree.root()
    assert root_of(bytes(CHUNK_SIZE) if any(full[chunk * 256:(chunk + 1) * 256]) else b"\1" * 256, position,
                   siblings) != tree.root()


@pytest.mark.parametrize("nodes", [4, 7, 10])
def test_challenged_chunks_are_the_nodes_own_bytes(nodes):
    """Whatever the attempt hash, the challenged chunk lies wholly inside one of the node's data shares of a
    full data segment: the node can answer it from its own data (checked against the real encoder)."""
    code = ErasureCode.for_nodes(nodes)
    size = (nodes + 1) * SEGMENT_SIZE + 777
    sectors = padded_chunks(num_chunks(size))
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    full = content + bytes(sectors * CHUNK_SIZE - size)
    segments = full_data_segments(size, sectors)
    assert segments >= nodes + 1 and eligible(size, sectors, code.n, code.k)
    for node in range(nodes):
        for i in range(12):
            chunk = pick_chunk(attempt_hash(b"\5" * 32, node, i), segments, node, code.n, code.k)
            segment = chunk // 1024
            assert segment < segments
            seg = full[segment * SEGMENT_SIZE:(segment + 1) * SEGMENT_SIZE]
            number = code.share_of(segment, node)
            assert number < code.k  # a data share
            share = bytes(code.encode(seg, [number])[0])
            lo = (chunk % 1024) * CHUNK_SIZE - number * code.share_size(len(seg))
            assert 0 <= lo and share[lo:lo + CHUNK_SIZE] == seg[(chunk % 1024) * CHUNK_SIZE:][:CHUNK_SIZE]


def test_derivation_is_deterministic_and_in_range():
    seed = b"\7" * 32
    events = {e.seq: e for e in submit_all([bytes(5 * SEGMENT_SIZE), bytes(3000), bytes(4 * SEGMENT_SIZE)])}
    pool = [0, 2]
    got = [storage_challenge(seed, 3, a, pool, 2, events, 1, 4, 2) for a in range(MAX_ATTEMPTS)]
    assert got == [storage_challenge(seed, 3, a, pool, 2, events, 1, 4, 2) for a in range(MAX_ATTEMPTS)]
    assert all(c is not None and c.tx_seq in pool and c.attempt == a for a, c in enumerate(got))
    assert all(c.position == events[c.tx_seq].start_pos + c.chunk_index for c in got)
    assert got != [storage_challenge(seed, 4, a, pool, 2, events, 1, 4, 2) for a in range(MAX_ATTEMPTS)]
    # only the pool as it was when the epoch opened; attempts beyond the contract's are refused
    assert {c.tx_seq for c in (storage_challenge(seed, 3, a, pool, 1, events, 1, 4, 2) for a in range(8))} == {0}
    assert storage_challenge(seed, 3, MAX_ATTEMPTS, pool, 2, events, 1, 4, 2) is None
    assert storage_challenge(seed, 3, 0, pool, 0, events, 1, 4, 2) is None
    # a small file gives no node a chunk of a full data segment and cannot enter the pool
    assert not eligible(3000, events[1].sectors, 4, 2) and full_data_segments(3000, events[1].sectors) == 0
    assert pick_chunk(seed, 0, 0, 4, 2) is None


def test_node_height_and_flow_siblings_guard():
    (event,) = submit_all([bytes(5 * SEGMENT_SIZE)])
    assert [h for _, h in event.nodes] == [12, 10]
    assert node_height(event, 4095) == 12 and node_height(event, 4096) == 10
    with pytest.raises(IndexError):
        node_height(event, 5 * 1024)
    tree = flow_tree_at([event], 0)
    with pytest.raises(ValueError, match="lies in a node of height 12"):
        tree.siblings(event.start_pos + 5, 3)
    with pytest.raises(IndexError):
        tree.siblings(tree.length)
    with pytest.raises(LookupError):
        flow_tree_at([event], 1)


def test_da_pick_is_deterministic_and_in_range():
    seed = b"\3" * 32
    assert pick_da_blob(seed, 4, 0) is None
    index, h = pick_da_blob(seed, 4, 7)
    assert 0 <= index < 7 and pick_da_blob(seed, 4, 7) == (index, h) and pick_da_blob(seed, 5, 7)[1] != h
    rows = range(1536, 3072)
    assert pick_da_row(h, rows) in rows and pick_da_row(h, rows) == pick_da_row(h, rows)


def test_cli_bad_input_exits_2(tmp_path):
    from click.testing import CliRunner

    from deaios.cli import main
    from deaios.stack.config import Stack

    def run(contracts: dict, *args: str):
        path = Stack(rpc="http://127.0.0.1:9", chain_id=31337, contracts={"flow": "0x" + "11" * 20, **contracts},
                     indexer="", storage_nodes=[], private_key="0x" + "22" * 32,
                     launcher_pid=os.getpid()).save(tmp_path / "stack.json")
        return CliRunner().invoke(main, ["alignment", "node", "--stack", str(path), "--once", *args])

    key = ["--key", "0x" + "33" * 32]
    result = run({}, *key)
    assert result.exit_code == 2 and "alignment_supervision" in result.output
    supervision = {"alignment_supervision": "0x" + "44" * 20}
    result = run(supervision)
    assert result.exit_code == 2 and "--key" in result.output
    result = run(supervision, "--key", "0x1234")
    assert result.exit_code == 2 and "32-byte" in result.output
    result = run(supervision, *key)  # nothing listens on port 9
    assert result.exit_code == 2 and "unreachable" in result.output
