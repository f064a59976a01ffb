"""A storage node's durable state: an lmdb index plus one file per stored segment or share.

Layout of a node's data directory:

    index.lmdb/                 lmdb environment (databases below)
      files   root -> FileRecord (JSON)          what the log says about a file, and our progress
      seqs    tx seq (8 bytes BE) -> root         Submit events in log order
      marks   root || segment (8 BE) || kind -> crc32 || offset || length in the pack ("S"/"H")
      meta    "cursor" -> {"block", "hash"}       log-sync position
    data/<root hex>/segments.pack   full segments received from an uploader (kept until shares are placed)
    data/<root hex>/shares.pack     this node's erasure shares of the file's segments
    data/<root hex>/roots           the file's segment roots (32 bytes each), once known

Packs are append-only: a batch of segments or shares is appended and fsynced, and only then marked in
lmdb (crc32, offset, length), so a crash never leaves a half-written share that the index believes
in, and small shares do not each waste a filesystem block. Reads re-check the crc32; a mismatch (bit
rot, tampering) is reported as missing and the mark is dropped, so the repair loop rebuilds it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import zlib
from dataclasses import asdict, dataclass, field
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb

from deaios.storage.merkle import HASH_SIZE, tree_root

SEGMENT = b"S"
SHARE = b"H"

# states of a file on one node
PENDING = "pending"  # known from the log, segments may be arriving
COMPLETE = "complete"  # every data segment received here in full; shares not yet placed
FINALIZED = "finalized"  # erasure shares placed: this node keeps only its own shares


@dataclass
class FileRecord:
    """What the log says about one file (its first submission) and this node's progress on it."""

    root: str  # 0x-hex file root (data merkle root)
    size: int
    seqs: list[int]
    start_entry: int
    merkle_nodes: list[list]  # [[height, "0x…root"], …] as in the Submit event
    tags: str = "0x"
    state: str = PENDING
    received: int = 0  # full segments received from uploaders
    extra: dict = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "FileRecord":
        return cls(**json.loads(raw))


def _checksum(data: bytes) -> bytes:
    """Integrity check of stored bytes (bit rot, truncation); merkle proofs guard authenticity."""
    return zlib.crc32(data).to_bytes(4, "big")


def _seg_key(root: bytes, index: int, kind: bytes) -> bytes:
    return root + index.to_bytes(8, "big") + kind


class NodeStore:
    """Durable index and segment/share files of one storage node (thread-safe)."""

    def __init__(self, directory: str | os.PathLike[str], map_size: int = 1 << 36) -> None:
        self.dir = Path(directory)
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.dir / "index.lmdb"), map_size=map_size, max_dbs=8, subdir=True)
        self.files = self.env.open_db(b"files")
        self.seqs = self.env.open_db(b"seqs")
        self.marks = self.env.open_db(b"marks")
        self.meta = self.env.open_db(b"meta")
        self._lock = threading.RLock()
        self.on_forget: Callable[[bytes], None] | None = None  # told when a stored share goes missing

    def close(self) -> None:
        self.env.close()

    # -- log -------------------------------------------------------------------------------------------
    def cursor(self) -> dict | None:
        with self.env.begin(db=self.meta) as txn:
            raw = txn.get(b"cursor")
        return json.loads(raw) if raw else None

    def record_submission(self, seq: int, record: FileRecord, cursor: dict | None = None) -> FileRecord:
        """Add one Submit event (idempotent by seq). A root submitted again keeps its first record."""
        root = bytes.fromhex(record.root[2:])
        with self._lock, self.env.begin(write=True) as txn:
            existing_raw = txn.get(root, db=self.files)
            if existing_raw:
                existing = FileRecord.from_bytes(existing_raw)
                if seq not in existing.seqs:
                    existing.seqs.append(seq)
                    txn.put(root, existing.to_bytes(), db=self.files)
                record = existing
            else:
                txn.put(root, record.to_bytes(), db=self.files)
            txn.put(seq.to_bytes(8, "big"), root, db=self.seqs)
            if cursor is not None:
                txn.put(b"cursor", json.dumps(cursor).encode(), db=self.meta)
        return record

    def set_cursor(self, cursor: dict) -> None:
        with self.env.begin(write=True, db=self.meta) as txn:
            txn.put(b"cursor", json.dumps(cursor).encode())

    def next_tx_seq(self) -> int:
        with self.env.begin(db=self.seqs) as txn:
            cur = txn.cursor()
            return int.from_bytes(cur.key(), "big") + 1 if cur.last() else 0

    def root_by_seq(self, seq: int) -> bytes | None:
        with self.env.begin(db=self.seqs) as txn:
            return txn.get(seq.to_bytes(8, "big"))

    def get(self, root: bytes) -> FileRecord | None:
        with self.env.begin(db=self.files) as txn:
            raw = txn.get(root)
        return FileRecord.from_bytes(raw) if raw else None

    def put(self, record: FileRecord) -> None:
        with self._lock, self.env.begin(write=True, db=self.files) as txn:
            txn.put(bytes.fromhex(record.root[2:]), record.to_bytes())

    def update(self, root: bytes, **changes: object) -> FileRecord:
        """Change fields of a file record atomically; returns the new record."""
        with self._lock, self.env.begin(write=True, db=self.files) as txn:
            record = FileRecord.from_bytes(txn.get(root))
            for key, value in changes.items():
                setattr(record, key, value)
            txn.put(root, record.to_bytes())
        return record

    def records(self) -> Iterator[FileRecord]:
        with self.env.begin(db=self.files) as txn:
            records = [FileRecord.from_bytes(v) for _, v in txn.cursor()]
        yield from records

    # -- segment and share packs -------------------------------------------------------------------------
    def _pack(self, root: bytes, kind: bytes) -> Path:
        return self.data_dir / root.hex() / ("segments.pack" if kind == SEGMENT else "shares.pack")

    def write(self, root: bytes, index: int, kind: bytes, data: bytes) -> bool:
        """Store one segment or share durably; returns False if an identical one was already there."""
        return self.write_many(root, kind, [(index, data)]) > 0

    def write_many(self, root: bytes, kind: bytes, items: list[tuple[int, bytes]]) -> int:
        """Append segments or shares to the file's pack (one fsync, one index transaction); returns how
        many were new. Identical ones already stored are skipped."""
        with self.env.begin(db=self.marks) as txn:
            fresh = [(i, d, c) for i, d in items
                     if (txn.get(_seg_key(root, i, kind)) or b"")[:4] != (c := _checksum(d))]
        if not fresh:
            return 0
        path = self._pack(root, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            with open(path, "ab") as f:
                offset = f.tell()
                marks = []
                for index, data, digest in fresh:
                    f.write(data)
                    marks.append((_seg_key(root, index, kind),
                                  digest + offset.to_bytes(8, "big") + len(data).to_bytes(8, "big")))
                    offset += len(data)
                f.flush()
                os.fsync(f.fileno())
            with self.env.begin(write=True, db=self.marks) as txn:
                for key, value in marks:
                    txn.put(key, value)
        return len(fresh)

    def has(self, root: bytes, index: int, kind: bytes) -> bool:
        with self.env.begin(db=self.marks) as txn:
            return txn.get(_seg_key(root, index, kind)) is not None

    def missing(self, root: bytes, kind: bytes, indices: range | list[int]) -> list[int]:
        """The indices among `indices` with no segment (or share) marked as stored (one transaction)."""
        with self.env.begin(db=self.marks) as txn:
            return [i for i in indices if txn.get(_seg_key(root, i, kind)) is None]

    def read(self, root: bytes, index: int, kind: bytes) -> bytes | None:
        """The stored bytes, or None when missing or corrupt (a corrupt one is forgotten for repair)."""
        key = _seg_key(root, index, kind)
        with self.env.begin(db=self.marks) as txn:
            mark = txn.get(key)
        if mark is None:
            return None
        digest, offset, length = mark[:4], int.from_bytes(mark[4:12], "big"), int.from_bytes(mark[12:20], "big")
        try:
            with open(self._pack(root, kind), "rb") as f:
                data = os.pread(f.fileno(), length, offset)
        except OSError:
            data = b""
        if len(data) != length or _checksum(data) != digest:
            self.forget(root, index, kind)
            return None
        return data

    def forget(self, root: bytes, index: int, kind: bytes) -> None:
        """Drop one segment or share from the index (its bytes stay in the pack until the pack is dropped)."""
        with self._lock, self.env.begin(write=True, db=self.marks) as txn:
            txn.delete(_seg_key(root, index, kind))
        if self.on_forget is not None and kind == SHARE:
            self.on_forget(root)

    def count(self, root: bytes, kind: bytes) -> int:
        """How many segments (or shares) of `root` are marked as stored."""
        n = 0
        with self.env.begin(db=self.marks) as txn:
            cur = txn.cursor()
            if cur.set_range(root):
                for key in cur.iternext(values=False):
                    if not key.startswith(root):
                        break
                    n += key.endswith(kind)
        return n

    def drop_segments(self, root: bytes, indices: range) -> None:
        """Delete the full segments of a file (after its shares are placed), pack included."""
        for index in indices:
            self.forget(root, index, SEGMENT)
        self._pack(root, SEGMENT).unlink(missing_ok=True)

    # -- segment roots ----------------------------------------------------------------------------------
    def segment_roots(self, root: bytes) -> bytes | None:
        try:
            roots = (self.data_dir / root.hex() / "roots").read_bytes()
        except OSError:
            return None
        return roots if roots and len(roots) % HASH_SIZE == 0 and tree_root(roots) == root else None

    def write_segment_roots(self, root: bytes, roots: bytes) -> None:
        path = self.data_dir / root.hex() / "roots"
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, roots)

    def wipe(self) -> None:
        """Remove everything (used by tests that simulate a lost data directory)."""
        self.close()
        shutil.rmtree(self.dir)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
