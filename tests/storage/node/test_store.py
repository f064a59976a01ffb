"""The node's durable store: packs + lmdb index, checksums on read, idempotent log records."""

from __future__ import annotations

from pathlib import Path

from deaios.storage.node.store import PENDING, SEGMENT, SHARE, FileRecord, NodeStore

ROOT = bytes(range(32))


def record(seq: int = 0) -> FileRecord:
    return FileRecord(root="0x" + ROOT.hex(), size=1000, seqs=[seq], start_entry=1, merkle_nodes=[[3, "0x00"]])


def test_shares_round_trip_and_survive_reopen(tmp_path: Path) -> None:
    store = NodeStore(tmp_path)
    assert store.write_many(ROOT, SHARE, [(0, b"a" * 100), (1, b"b" * 50)]) == 2
    assert store.write_many(ROOT, SHARE, [(0, b"a" * 100)]) == 0  # identical: skipped
    assert store.count(ROOT, SHARE) == 2 and store.count(ROOT, SEGMENT) == 0
    store.close()
    store = NodeStore(tmp_path)
    assert store.read(ROOT, 1, SHARE) == b"b" * 50
    assert store.read(ROOT, 2, SHARE) is None


def test_corruption_is_detected_and_reported(tmp_path: Path) -> None:
    store = NodeStore(tmp_path)
    lost: list[bytes] = []
    store.on_forget = lost.append
    store.write_many(ROOT, SHARE, [(0, b"x" * 64), (1, b"y" * 64)])
    pack = tmp_path / "data" / ROOT.hex() / "shares.pack"
    raw = bytearray(pack.read_bytes())
    raw[70] ^= 0xFF  # inside share 1
    pack.write_bytes(bytes(raw))
    assert store.read(ROOT, 0, SHARE) == b"x" * 64
    assert store.read(ROOT, 1, SHARE) is None
    assert lost == [ROOT] and not store.has(ROOT, 1, SHARE)
    store.write(ROOT, 1, SHARE, b"y" * 64)  # repair appends a fresh copy
    assert store.read(ROOT, 1, SHARE) == b"y" * 64


def test_truncated_pack_reads_as_missing(tmp_path: Path) -> None:
    store = NodeStore(tmp_path)
    store.write_many(ROOT, SEGMENT, [(0, b"s" * 256)])
    pack = tmp_path / "data" / ROOT.hex() / "segments.pack"
    pack.write_bytes(pack.read_bytes()[:100])
    assert store.read(ROOT, 0, SEGMENT) is None
    store.drop_segments(ROOT, range(1))
    assert not pack.exists()


def test_submissions_are_idempotent_by_seq(tmp_path: Path) -> None:
    store = NodeStore(tmp_path)
    store.record_submission(0, record(0))
    store.record_submission(0, record(0))
    again = store.record_submission(5, record(5))  # the same root submitted again later
    assert again.seqs == [0, 5] and again.state == PENDING
    assert store.root_by_seq(5) == ROOT and store.next_tx_seq() == 6
    assert store.update(ROOT, received=3).received == 3
    assert [r.root for r in store.records()] == ["0x" + ROOT.hex()]
