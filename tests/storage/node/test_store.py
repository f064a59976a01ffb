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


def test_writes_are_write_once_and_replace_is_explicit(tmp_path: Path) -> None:
    store = NodeStore(tmp_path, mac_key=b"k" * 32)
    assert store.write_many(ROOT, SHARE, [(0, b"a" * 100)]) == 1
    assert store.write_many(ROOT, SHARE, [(0, b"z" * 100)]) == 0  # different bytes: still not overwritten
    assert store.read(ROOT, 0, SHARE) == b"a" * 100
    assert store.unverified(ROOT, SHARE, range(1)) == [0]
    store.replace(ROOT, 0, SHARE, b"b" * 100)  # what the node does once it proved the stored one wrong
    assert store.read(ROOT, 0, SHARE) == b"b" * 100 and store.unverified(ROOT, SHARE, range(1)) == []


def test_the_mac_catches_bytes_whose_crc_was_recomputed(tmp_path: Path) -> None:
    """A verified share carries the node's MAC: rewriting the bytes and fixing up the crc32 in the index
    (what a forged overwrite amounted to before audit C1) is still detected by scrub."""
    import zlib

    store = NodeStore(tmp_path, mac_key=b"k" * 32)
    store.write_many(ROOT, SHARE, [(0, b"x" * 64)], verified=True)
    pack = tmp_path / "data" / ROOT.hex() / "shares.pack"
    pack.write_bytes(b"y" * 64)
    key = ROOT + (0).to_bytes(8, "big") + SHARE
    with store.env.begin(write=True, db=store.marks) as txn:
        txn.put(key, zlib.crc32(b"y" * 64).to_bytes(4, "big") + txn.get(key)[4:])
    assert store.read(ROOT, 0, SHARE) == b"y" * 64  # the crc alone is fooled
    assert store.read(ROOT, 0, SHARE, check_mac=True) is None and not store.has(ROOT, 0, SHARE)


def test_compaction_reclaims_replaced_bytes_and_keeps_every_share(tmp_path: Path) -> None:
    store = NodeStore(tmp_path, mac_key=b"k" * 32)
    shares = {i: bytes([i]) * 1000 for i in range(20)}
    store.write_many(ROOT, SHARE, list(shares.items()))
    for i in range(0, 20, 2):  # half of them replaced: their first copies are dead bytes
        shares[i] = bytes([100 + i]) * 1000
        store.replace(ROOT, i, SHARE, shares[i])
    size, live = store.wasted(ROOT, SHARE)
    assert (size, live) == (30_000, 20_000)
    marks_before = {i: store._locate(ROOT, i, SHARE) for i in shares}
    assert store.compact(ROOT, SHARE) == 10_000
    assert store.wasted(ROOT, SHARE) == (20_000, 20_000)
    assert not (tmp_path / "data" / ROOT.hex() / "shares.pack").exists()  # generation 1 now
    assert all(store.read(ROOT, i, SHARE, check_mac=True) == data for i, data in shares.items())
    assert store.unverified(ROOT, SHARE, range(20)) == list(range(1, 20, 2))  # verification state kept
    # a reader holding a mark from before the switch finds it moved and reads the new place
    mark, old_path = marks_before[3]
    assert store._read_at(mark, old_path) is None and store.read(ROOT, 3, SHARE) == shares[3]
    store.write_many(ROOT, SHARE, [(20, b"n" * 10)])  # appends go to the new generation
    store.close()
    reopened = NodeStore(tmp_path)
    assert reopened.read(ROOT, 20, SHARE) == b"n" * 10 and reopened.read(ROOT, 0, SHARE) == shares[0]


def _tmpfs(path: Path, size: int) -> bool:
    """Mount a tmpfs of `size` bytes on `path` (root only); whether it worked."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_refuses_writes_and_keeps_what_is_stored(tmp_path: Path) -> None:
    """Issue 13 (chaos: a disk that fills up): a write that does not fit raises StoreFull and changes nothing;
    stored shares still read back; once space returns, writes work and nothing is corrupt."""
    import subprocess

    import pytest

    from deaios.storage.node.store import StoreFull

    disk = tmp_path / "disk"
    if not _tmpfs(disk, 512 << 10):
        pytest.skip("needs root to mount a tmpfs")
    try:
        store = NodeStore(disk, map_size=1 << 24)
        store.record_submission(0, record())
        store.write_many(ROOT, SHARE, [(0, b"a" * 1000)], verified=True)
        with pytest.raises(StoreFull, match="out of disk space"):
            store.write_many(ROOT, SHARE, [(i, bytes([i]) * 100_000) for i in range(1, 20)])
        assert store.read(ROOT, 0, SHARE, check_mac=True) == b"a" * 1000
        assert store.missing(ROOT, SHARE, range(20)) == list(range(1, 20))  # no mark for a cut-short write
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        assert store.write_many(ROOT, SHARE, [(i, bytes([i]) * 100_000) for i in range(1, 20)], verified=True) == 19
        assert all(store.read(ROOT, i, SHARE, check_mac=True) == bytes([i]) * 100_000 for i in range(1, 20))
        assert store.read(ROOT, 0, SHARE, check_mac=True) == b"a" * 1000
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
