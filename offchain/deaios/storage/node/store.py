"""A storage node's durable state: an lmdb index plus one file per stored segment or share.

Layout of a node's data directory:

    index.lmdb/                 lmdb environment (databases below)
      files   root -> FileRecord (JSON)          what the log says about a file, and our progress
      seqs    tx seq (8 bytes BE) -> root         Submit events in log order
      marks   root || segment (8 BE) || kind -> crc32 || offset || length in the pack ("S"/"H")
                                                    [|| MAC once the share is verified]
      meta    "cursor" -> {"block", "hash"}       log-sync position
              "gen" || root || kind -> pack generation (after compactions)
    data/<root hex>/segments.pack   full segments received from an uploader (kept until shares are placed)
    data/<root hex>/shares.pack     this node's erasure shares of the file's segments
                                    (shares.<gen>.pack after the pack was compacted <gen> times)
    data/<root hex>/roots           the file's segment roots (32 bytes each), once known

Packs are append-only: a batch of segments or shares is appended and fsynced, and only then marked in
lmdb (crc32, offset, length), so a crash never leaves a half-written share that the index believes
in, and small shares do not each waste a filesystem block. Reads re-check the crc32; a mismatch (bit
rot, tampering) is reported as missing and the mark is dropped, so the repair loop rebuilds it.

Writes are write-once: a segment or share already marked is never replaced by a write, only by
`replace()`, which the node calls when it has proven the stored one wrong (audit C1). A share the node
has verified (a data share by its merkle proof, any share by decoding its segment) carries a MAC in its
mark: BLAKE2b-128 keyed with the node's secret over (root, index, kind, bytes). Scrub checks it — a
commitment only this node can make, over bytes it checked — so a share that changed on disk after its
verification is detected even where a crc32 would still match.

Replaced and forgotten bytes stay in the pack until `compact()` copies the live ones into the pack of
the next generation and switches every mark to it in one lmdb transaction; a reader that raced the switch
finds its mark moved and reads again.

A full disk (or lmdb map) makes a write raise `StoreFull` and leaves what is stored as it was: pack bytes are
appended before their marks, so a pack cut short by the disk holds only unmarked bytes at its end, and an lmdb
transaction that cannot commit changes nothing. Reads keep working; writes work again once there is space.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import threading
import zlib
from dataclasses import asdict, dataclass, field
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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
    senders: list[str] = field(default_factory=list)  # lowercase 0x-addresses of every Submit of this root

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


def _gen_key(root: bytes, kind: bytes) -> bytes:
    return b"gen" + root + kind


MARK_SIZE = 20  # crc32 (4) || offset (8) || length (8)
MAC_SIZE = 16
#: free bytes below which an lmdb error is taken for a full disk (lmdb reports ENOSPC as an I/O error)
LOW_SPACE = 1 << 20

F = TypeVar("F", bound=Callable[..., Any])


class StoreFull(Exception):
    """The node's disk (or its lmdb map) is full: the write did not happen, and nothing stored was changed."""


def _writes(method: F) -> F:
    """Turn a full disk during `method` into StoreFull (other errors pass through)."""
    @functools.wraps(method)
    def wrapper(self: NodeStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (OSError, lmdb.Error) as exc:
            if not self._out_of_space(exc):
                raise
            raise StoreFull(f"out of disk space ({exc}): nothing of this write was stored; what the node held "
                            "is intact and still served") from exc
    return wrapper  # type: ignore[return-value]


class NodeStore:
    """Durable index and segment/share files of one storage node (thread-safe)."""

    def __init__(self, directory: str | os.PathLike[str], map_size: int = 1 << 36, mac_key: bytes | None = None) -> None:
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
        self.mac_key = mac_key or b"deaios-unkeyed-store"  # the node's secret (deaios.storage.placement)
        self.dead_bytes: dict[tuple[bytes, bytes], int] = {}  # replaced/forgotten bytes per pack since start

    def close(self) -> None:
        self.env.close()

    def _out_of_space(self, exc: BaseException) -> bool:
        if isinstance(exc, OSError):
            return exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if isinstance(exc, lmdb.MapFullError):
            return True
        try:
            st = os.statvfs(self.dir)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < LOW_SPACE

    # -- log -------------------------------------------------------------------------------------------
    def cursor(self) -> dict | None:
        with self.env.begin(db=self.meta) as txn:
            raw = txn.get(b"cursor")
        return json.loads(raw) if raw else None

    @_writes
    def record_submission(self, seq: int, record: FileRecord, cursor: dict | None = None) -> FileRecord:
        """Add one Submit event (idempotent by seq). A root submitted again keeps its first record."""
        root = bytes.fromhex(record.root[2:])
        with self._lock, self.env.begin(write=True) as txn:
            existing_raw = txn.get(root, db=self.files)
            if existing_raw:
                existing = FileRecord.from_bytes(existing_raw)
                if seq not in existing.seqs or not set(record.senders) <= set(existing.senders):
                    if seq not in existing.seqs:
                        existing.seqs.append(seq)
                    existing.senders += [a for a in record.senders if a not in existing.senders]
                    txn.put(root, existing.to_bytes(), db=self.files)
                record = existing
            else:
                txn.put(root, record.to_bytes(), db=self.files)
            txn.put(seq.to_bytes(8, "big"), root, db=self.seqs)
            if cursor is not None:
                txn.put(b"cursor", json.dumps(cursor).encode(), db=self.meta)
        return record

    @_writes
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

    @_writes
    def put(self, record: FileRecord) -> None:
        with self._lock, self.env.begin(write=True, db=self.files) as txn:
            txn.put(bytes.fromhex(record.root[2:]), record.to_bytes())

    @_writes
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
    def _pack(self, root: bytes, kind: bytes, gen: int = 0) -> Path:
        name = "segments" if kind == SEGMENT else "shares"
        return self.data_dir / root.hex() / (f"{name}.pack" if gen == 0 else f"{name}.{gen}.pack")

    def _gen(self, txn: lmdb.Transaction, root: bytes, kind: bytes) -> int:
        raw = txn.get(_gen_key(root, kind), db=self.meta)
        return int(raw) if raw else 0

    def mac(self, root: bytes, index: int, kind: bytes, data: bytes) -> bytes:
        """The node's keyed commitment to a verified segment or share."""
        h = hashlib.blake2b(key=self.mac_key[:64], digest_size=MAC_SIZE)
        h.update(_seg_key(root, index, kind))
        h.update(data)
        return h.digest()

    def write(self, root: bytes, index: int, kind: bytes, data: bytes, verified: bool = False) -> bool:
        """Store one segment or share durably unless one is stored already; returns whether it was new."""
        return self.write_many(root, kind, [(index, data)], verified) > 0

    def write_many(self, root: bytes, kind: bytes, items: list[tuple[int, bytes]], verified: bool = False) -> int:
        """Append the segments or shares not stored yet to the file's pack (one fsync, one index
        transaction); returns how many were new. Stored ones are never overwritten (write-once);
        `verified` marks the new ones as checked by the caller (they get the node's MAC)."""
        with self._lock:
            with self.env.begin(db=self.marks) as txn:
                fresh = [(i, d) for i, d in items if txn.get(_seg_key(root, i, kind)) is None]
            return self._append(root, kind, fresh, verified)

    def replace(self, root: bytes, index: int, kind: bytes, data: bytes) -> None:
        """Replace a stored segment or share the node proved wrong by one it verified itself."""
        with self._lock:
            with self.env.begin(db=self.marks) as txn:
                old = txn.get(_seg_key(root, index, kind))
            if old is not None:
                self.dead_bytes[(root, kind)] = self.dead_bytes.get((root, kind), 0) + _length(old)
            self._append(root, kind, [(index, data)], True)

    @_writes
    def _append(self, root: bytes, kind: bytes, items: list[tuple[int, bytes]], verified: bool) -> int:
        if not items:
            return 0
        with self.env.begin(db=self.meta) as txn:
            path = self._pack(root, kind, self._gen(txn, root, kind))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            offset = f.tell()
            marks = []
            for index, data in items:
                f.write(data)
                value = _checksum(data) + offset.to_bytes(8, "big") + len(data).to_bytes(8, "big")
                if verified:
                    value += self.mac(root, index, kind, bytes(data))
                marks.append((_seg_key(root, index, kind), value))
                offset += len(data)
            f.flush()
            os.fsync(f.fileno())
        with self.env.begin(write=True, db=self.marks) as txn:
            for key, value in marks:
                txn.put(key, value)
        return len(items)

    def has(self, root: bytes, index: int, kind: bytes) -> bool:
        with self.env.begin(db=self.marks) as txn:
            return txn.get(_seg_key(root, index, kind)) is not None

    def missing(self, root: bytes, kind: bytes, indices: range | list[int]) -> list[int]:
        """The indices among `indices` with no segment (or share) marked as stored (one transaction)."""
        with self.env.begin(db=self.marks) as txn:
            return [i for i in indices if txn.get(_seg_key(root, i, kind)) is None]

    def unverified(self, root: bytes, kind: bytes, indices: range | list[int]) -> list[int]:
        """The indices among `indices` stored without the node's MAC (received, not verified yet)."""
        with self.env.begin(db=self.marks) as txn:
            return [i for i in indices if (m := txn.get(_seg_key(root, i, kind))) is not None and len(m) == MARK_SIZE]

    def _locate(self, root: bytes, index: int, kind: bytes) -> tuple[bytes, Path] | None:
        with self.env.begin() as txn:
            mark = txn.get(_seg_key(root, index, kind), db=self.marks)
            return (mark, self._pack(root, kind, self._gen(txn, root, kind))) if mark is not None else None

    def _read_at(self, mark: bytes, path: Path) -> bytes | None:
        offset, length = int.from_bytes(mark[4:12], "big"), _length(mark)
        try:
            with open(path, "rb") as f:
                data = os.pread(f.fileno(), length, offset)
        except OSError:
            return None
        return data if len(data) == length and _checksum(data) == mark[:4] else None

    def read(self, root: bytes, index: int, kind: bytes, check_mac: bool = False) -> bytes | None:
        """The stored bytes, or None when missing or corrupt (a corrupt one is forgotten for repair). With
        `check_mac`, a verified one must also still match its MAC (scrub)."""
        located = self._locate(root, index, kind)
        while located is not None:
            mark, path = located
            data = self._read_at(mark, path)
            if data is not None and check_mac and len(mark) > MARK_SIZE \
                    and mark[MARK_SIZE:] != self.mac(root, index, kind, data):
                data = None
            if data is not None:
                return data
            again = self._locate(root, index, kind)
            if again == located:  # the same mark still fails: the bytes are bad
                self.forget(root, index, kind, mark)
                return None
            located = again  # a compaction (or a repair) moved it meanwhile: read it where it is now
        return None

    @_writes
    def mark_verified(self, root: bytes, index: int, kind: bytes, data: bytes) -> bool:
        """Add the node's MAC to a stored segment or share the caller verified (`data` is what it checked);
        False if the stored bytes are not `data` any more."""
        with self._lock, self.env.begin(write=True, db=self.marks) as txn:
            key = _seg_key(root, index, kind)
            mark = txn.get(key)
            if mark is None or mark[:4] != _checksum(data) or _length(mark) != len(data):
                return False
            txn.put(key, mark[:MARK_SIZE] + self.mac(root, index, kind, bytes(data)))
            return True

    @_writes
    def forget(self, root: bytes, index: int, kind: bytes, only: bytes | None = None) -> None:
        """Drop one segment or share from the index (its bytes stay in the pack until compaction); with
        `only`, just if its mark is still that one."""
        with self._lock, self.env.begin(write=True, db=self.marks) as txn:
            key = _seg_key(root, index, kind)
            mark = txn.get(key)
            if mark is None or (only is not None and mark != only):
                return
            txn.delete(key)
            self.dead_bytes[(root, kind)] = self.dead_bytes.get((root, kind), 0) + _length(mark)
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
        with self.env.begin(db=self.meta) as txn:
            gen = self._gen(txn, root, SEGMENT)
        self._pack(root, SEGMENT, gen).unlink(missing_ok=True)
        self.dead_bytes.pop((root, SEGMENT), None)

    # -- compaction ---------------------------------------------------------------------------------------
    def wasted(self, root: bytes, kind: bytes) -> tuple[int, int]:
        """(bytes in the pack, bytes its marks use)."""
        live = 0
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.marks)
            if cur.set_range(root):
                for key, mark in cur:
                    if not key.startswith(root):
                        break
                    if key.endswith(kind):
                        live += _length(mark)
            path = self._pack(root, kind, self._gen(txn, root, kind))
        try:
            return path.stat().st_size, live
        except OSError:
            return 0, live

    @_writes
    def compact(self, root: bytes, kind: bytes = SHARE) -> int:
        """Copy the live bytes of a pack into a new generation's pack and switch the marks to it at once;
        returns the bytes reclaimed."""
        with self._lock:
            with self.env.begin() as txn:
                gen = self._gen(txn, root, kind)
                cur = txn.cursor(db=self.marks)
                marks = []
                if cur.set_range(root):
                    for key, mark in cur:
                        if not key.startswith(root):
                            break
                        if key.endswith(kind):
                            marks.append((key, mark))
            old, new = self._pack(root, kind, gen), self._pack(root, kind, gen + 1)
            try:
                before = old.stat().st_size
            except OSError:
                return 0
            moved = []
            try:
                with open(old, "rb") as src, open(new, "wb") as dst:
                    offset = 0
                    for key, mark in marks:
                        length = _length(mark)
                        data = os.pread(src.fileno(), length, int.from_bytes(mark[4:12], "big"))
                        dst.write(data)
                        moved.append((key, mark[:4] + offset.to_bytes(8, "big") + mark[12:]))
                        offset += len(data)
                    dst.flush()
                    os.fsync(dst.fileno())
            except OSError:
                new.unlink(missing_ok=True)  # e.g. the disk filled up: the old pack stays in use
                raise
            with self.env.begin(write=True) as txn:
                for key, mark in moved:
                    txn.put(key, mark, db=self.marks)
                txn.put(_gen_key(root, kind), str(gen + 1).encode(), db=self.meta)
            old.unlink(missing_ok=True)
            self.dead_bytes.pop((root, kind), None)
            return before - offset

    # -- segment roots ----------------------------------------------------------------------------------
    def segment_roots(self, root: bytes) -> bytes | None:
        try:
            roots = (self.data_dir / root.hex() / "roots").read_bytes()
        except OSError:
            return None
        return roots if roots and len(roots) % HASH_SIZE == 0 and tree_root(roots) == root else None

    @_writes
    def write_segment_roots(self, root: bytes, roots: bytes) -> None:
        path = self.data_dir / root.hex() / "roots"
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, roots)

    def wipe(self) -> None:
        """Remove everything (used by tests that simulate a lost data directory)."""
        self.close()
        shutil.rmtree(self.dir)


def _length(mark: bytes) -> int:
    return int.from_bytes(mark[12:20], "big")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
