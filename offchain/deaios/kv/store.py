"""The KV node's on-disk state: the transaction log it follows and the replayed index, in lmdb.

A KV node's data directory holds two lmdb environments (separate, so that recording chain events never
waits for a long replay transaction):

    log.lmdb/      what the chain says, written by log sync
      txs     seq (u64 BE) -> TxRecord          every Flow Submit event (sender, root, size, stream ids)
      meta    "cursor" -> {"block", "hash"}      log-sync position (the storage node's LogSync format)
    index.lmdb/    the replayed state, written only by the replayer
      meta    "progress" -> u64                  next tx seq to replay (committed with its effects)
              "config" -> {"all", "ids"}         the streams this index was replayed for
      results seq -> text                        0G's transaction result ("Commit", "VersionConfliction", …)
      streams stream id -> u64 first seq         streams seen in replayed transactions
      cur     stream || key -> version u64 || flag u8 || [key size u32 || key] || value
                                                 the latest write of every key (flag 1: a long key, below)
      hist    stream || H(key) || version -> value   superseded writes, for reads at an older version
      acl     fact -> op u8 || version u64       the latest access-control op per fact; and
              "c" || stream || account -> u32    how many keys the account may write as special writer
              "n" || stream -> u64               the version of the stream's first access-control op
      acl_hist fact || version -> op u8          every access-control op, for checks at a version

where H is BLAKE2b-256 and a fact is "a" || stream || account (admin), "w" || stream || account (writer),
"s" || stream || H(key) (special key), "k" || stream || account || H(key) (special writer of a key).

Keys are ordered as 0G orders them (bytewise) because `cur` is keyed by stream || key. lmdb keys are at
most 511 bytes, so a key longer than LONG_PREFIX bytes is stored as stream || key[:LONG_PREFIX] ||
H(key) with the whole key in the value: such keys sort correctly against every other key except
other long keys with the same first LONG_PREFIX bytes, which sit together and are sorted by full key
when iterated. A transaction's effects and the progress move in one lmdb transaction, so a crash at any
point leaves the index at a transaction boundary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb

from deaios.kv.codec import ADDRESS_SIZE, Op

LONG_PREFIX = 447
LONG_LEN = 32 + LONG_PREFIX + 32  # 511, lmdb's key size limit
MAP_SIZE = 1 << 36
ZERO_ACCOUNT = bytes(ADDRESS_SIZE)

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_pack64 = _U64.pack


def key_hash(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=32).digest()


def cur_key(stream: bytes, key: bytes) -> bytes:
    if len(key) <= LONG_PREFIX:
        return stream + key
    return stream + key[:LONG_PREFIX] + key_hash(key)


def _split_cur(lmdb_key: bytes, raw: bytes) -> tuple[bytes, int, bytes]:
    """(key, version, value) of a `cur` entry."""
    if raw[8] == 0:
        return lmdb_key[32:], _U64.unpack_from(raw)[0], raw[9:]
    (size,) = _U32.unpack_from(raw, 9)
    return raw[13:13 + size], _U64.unpack_from(raw)[0], raw[13 + size:]


# -- the transaction log ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TxRecord:
    """One Flow submission as the KV node needs it."""

    seq: int
    sender: bytes  # 20 bytes: the Submit event's sender (the submission's submitter)
    root: bytes  # the file's data root
    size: int  # bytes
    stream_ids: tuple[bytes, ...]  # from the tags; () for a file that is not a KV transaction

    def to_bytes(self) -> bytes:
        return self.sender + self.root + _pack64(self.size) + b"".join(self.stream_ids)

    @classmethod
    def from_bytes(cls, seq: int, raw: bytes) -> "TxRecord":
        ids = raw[60:]
        return cls(seq, raw[:20], raw[20:52], _U64.unpack_from(raw, 52)[0],
                   tuple(ids[i:i + 32] for i in range(0, len(ids), 32)))


class TxLog:
    """The submissions log sync recorded (the `store` of a deaios.storage.node.logsync.LogSync, which
    calls `set_cursor` after each scanned block range): records added with `add` are written together
    with the cursor that follows them, in one lmdb transaction."""

    def __init__(self, directory: Path, map_size: int = 1 << 32) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(directory / "log.lmdb"), map_size=map_size, max_dbs=4, subdir=True)
        self.txs = self.env.open_db(b"txs")
        self.meta = self.env.open_db(b"meta")
        self.pending: list[TxRecord] = []

    def close(self) -> None:
        self.env.close()

    def cursor(self) -> dict | None:
        with self.env.begin(db=self.meta) as txn:
            raw = txn.get(b"cursor")
        return json.loads(raw) if raw else None

    def add(self, tx: TxRecord) -> None:
        """Record `tx` with the next set_cursor (re-adding a seq overwrites it: rescans are harmless)."""
        self.pending.append(tx)

    def set_cursor(self, cursor: dict) -> None:
        with self.env.begin(write=True) as txn:
            for tx in self.pending:
                txn.put(_pack64(tx.seq), tx.to_bytes(), db=self.txs)
            txn.put(b"cursor", json.dumps(cursor).encode(), db=self.meta)
        self.pending.clear()

    def get(self, seq: int) -> TxRecord | None:
        with self.env.begin(db=self.txs) as txn:
            raw = txn.get(_pack64(seq))
        return TxRecord.from_bytes(seq, raw) if raw is not None else None

    def next_seq(self) -> int:
        """One past the highest recorded seq (seqs are recorded without gaps)."""
        with self.env.begin(db=self.txs) as txn, txn.cursor() as cursor:
            return _U64.unpack(cursor.key())[0] + 1 if cursor.last() else 0


# -- the index ------------------------------------------------------------------------------------------
class KvIndex:
    """The replayed state (see the module docstring); read through `view()`, written through `writer()`."""

    FORMAT = b"1"

    def __init__(self, directory: Path, map_size: int = MAP_SIZE, readonly: bool = False, sync: bool = True) -> None:
        """`sync=False` skips the fsync of every commit (tests, benchmarks of the index alone)."""
        self.path = directory / "index.lmdb"
        if not readonly:
            directory.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.path), map_size=map_size, max_dbs=10, subdir=True, readonly=readonly,
                             readahead=False, sync=sync)
        names = ("meta", "results", "streams", "cur", "hist", "acl", "acl_hist")
        self.dbs = {name: self.env.open_db(name.encode(), create=not readonly) for name in names}
        if not readonly:
            with self.env.begin(write=True, db=self.dbs["meta"]) as txn:
                found = txn.get(b"format")
                if found is None:
                    txn.put(b"format", self.FORMAT)
                elif found != self.FORMAT:
                    raise RuntimeError(f"{self.path} has index format {found.decode()}, this node writes "
                                       f"{self.FORMAT.decode()}: rebuild it (deaios kv rebuild)")

    def close(self) -> None:
        self.env.close()

    @contextlib.contextmanager
    def view(self) -> Iterator["View"]:
        with self.env.begin() as txn:
            yield View(txn, self.dbs)

    @contextlib.contextmanager
    def writer(self) -> Iterator["Writer"]:
        """A write transaction: committed when the block ends normally, aborted on an exception."""
        with self.env.begin(write=True) as txn:
            yield Writer(txn, self.dbs)

    def progress(self) -> int:
        with self.view() as view:
            return view.progress()

    def config(self) -> dict | None:
        with self.env.begin(db=self.dbs["meta"]) as txn:
            raw = txn.get(b"config")
        return json.loads(raw) if raw else None

    def set_config(self, config: dict) -> None:
        with self.env.begin(write=True, db=self.dbs["meta"]) as txn:
            txn.put(b"config", json.dumps(config, sort_keys=True).encode())

    def digest(self) -> str:
        """A hash of the whole replayed state (values, history, access control, results, progress):
        two indexes replayed from the same log are equal exactly when their digests are."""
        h = hashlib.sha256()
        with self.env.begin() as txn:
            h.update(b"progress" + _pack64(View(txn, self.dbs).progress()))
            for name in ("results", "streams", "cur", "hist", "acl", "acl_hist"):
                h.update(name.encode())
                for key, value in txn.cursor(db=self.dbs[name]):
                    h.update(_U32.pack(len(key)) + key + _pack64(len(value)) + value)
        return h.hexdigest()


def wipe(directory: Path) -> None:
    """Delete a KV node's state (log and index) so that it is rebuilt from the chain and storage."""
    for name in ("index.lmdb", "log.lmdb"):
        shutil.rmtree(directory / name, ignore_errors=True)


class View:
    """Reads of the index inside one lmdb transaction. `version=None` means the latest state; a version
    v means the state right after transaction v (0G's `version <= v`)."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict) -> None:
        self.txn = txn
        self.meta, self.results, self.streams = dbs["meta"], dbs["results"], dbs["streams"]
        self.cur, self.hist, self.acl, self.acl_hist = dbs["cur"], dbs["hist"], dbs["acl"], dbs["acl_hist"]

    # -- progress and results --------------------------------------------------------------------------
    def progress(self) -> int:
        raw = self.txn.get(b"progress", db=self.meta)
        return _U64.unpack(raw)[0] if raw else 0

    def result(self, seq: int) -> str | None:
        raw = self.txn.get(_pack64(seq), db=self.results)
        return raw.decode() if raw is not None else None

    def holding(self) -> list[bytes]:
        with self.txn.cursor(db=self.streams) as cursor:
            return [bytes(key) for key in cursor.iternext(keys=True, values=False)]

    # -- values ----------------------------------------------------------------------------------------
    def current(self, stream: bytes, key: bytes) -> bytes | None:
        """The raw `cur` entry of a key (its first 8 bytes are the latest version)."""
        return self.txn.get(cur_key(stream, key), db=self.cur)

    def latest_version(self, stream: bytes, key: bytes) -> int:
        raw = self.txn.get(cur_key(stream, key), db=self.cur)
        return _U64.unpack_from(raw)[0] if raw is not None else 0

    def value(self, stream: bytes, key: bytes, version: int | None = None) -> tuple[int, bytes] | None:
        """(version, value) of the key's latest write at `version`; None if it had none."""
        lk = cur_key(stream, key)
        raw = self.txn.get(lk, db=self.cur)
        if raw is None:
            return None
        full_key, latest, data = _split_cur(lk, raw)
        if full_key != key:
            return None  # a long key sharing a hash slot: impossible short of a BLAKE2b collision
        if version is None or latest <= version:
            return latest, data
        return self._historic(stream, key, version)

    def _historic(self, stream: bytes, key: bytes, version: int) -> tuple[int, bytes] | None:
        found = _seek_at_most(self.txn, self.hist, stream + key_hash(key), version)
        return (found[0], bytes(found[1])) if found else None

    def scan(self, stream: bytes, start: bytes | None = None, inclusive: bool = True, forward: bool = True,
             version: int | None = None) -> Iterator[tuple[bytes, int, bytes]]:
        """(key, version, value) of the stream's keys in order from `start` (None: from the first / last),
        skipping deleted keys (an empty value) and keys not written yet at `version`."""
        for key, lk_raw in self._keys(stream, start, inclusive, forward):
            full_key, latest, data = lk_raw
            if version is not None and latest > version:
                found = self._historic(stream, full_key, version)
                if found is None:
                    continue
                latest, data = found
            if data:
                yield full_key, latest, data

    def _keys(self, stream: bytes, start: bytes | None, inclusive: bool,
              forward: bool) -> Iterator[tuple[bytes, tuple[bytes, int, bytes]]]:
        def wanted(key: bytes) -> bool:
            if start is None or (inclusive and key == start):
                return True
            return key > start if forward else key < start

        with self.txn.cursor(db=self.cur) as cursor:
            if forward:
                seek = stream if start is None else stream + start[:LONG_PREFIX]
                ok = cursor.set_range(seek)
            else:
                if start is None:
                    seek = _successor(stream)
                elif len(start) > LONG_PREFIX:
                    seek = stream + start[:LONG_PREFIX] + b"\xff" * 32
                else:
                    seek = stream + start
                ok = cursor.set_range(seek) if seek is not None else False
                if not ok:
                    ok = cursor.last()
                elif cursor.key() != seek:
                    ok = cursor.prev()
            step = cursor.next if forward else cursor.prev
            while ok:
                lk = cursor.key()
                if lk[:32] != stream:
                    return
                if len(lk) == LONG_LEN:  # a run of long keys sharing their first LONG_PREFIX bytes
                    prefix, group = lk[:32 + LONG_PREFIX], []
                    while ok and len(lk) == LONG_LEN and lk[:32 + LONG_PREFIX] == prefix:
                        group.append(_split_cur(lk, cursor.value()))
                        ok = step()
                        lk = cursor.key() if ok else b""
                    group.sort(key=lambda item: item[0], reverse=not forward)
                    for item in group:
                        if wanted(item[0]):
                            yield item[0], item
                    continue
                if wanted(lk[32:]):
                    item = _split_cur(lk, cursor.value())
                    yield item[0], item
                ok = step()

    # -- access control ---------------------------------------------------------------------------------
    def _fact(self, fact: bytes, version: int | None) -> int | None:
        raw = self.txn.get(fact, db=self.acl)
        if raw is None:
            return None
        if version is None or _U64.unpack_from(raw, 1)[0] <= version:
            return raw[0]
        found = _seek_at_most(self.txn, self.acl_hist, fact, version)
        return found[1][0] if found else None

    def is_new_stream(self, stream: bytes, version: int | None = None) -> bool:
        raw = self.txn.get(b"n" + stream, db=self.acl)
        return raw is None or (version is not None and _U64.unpack(raw)[0] > version)

    def is_admin(self, account: bytes, stream: bytes, version: int | None = None) -> bool:
        return self._fact(b"a" + stream + account, version) == Op.GRANT_ADMIN_ROLE

    def is_writer_of_stream(self, account: bytes, stream: bytes, version: int | None = None) -> bool:
        return self._fact(b"w" + stream + account, version) == Op.GRANT_WRITER_ROLE

    def is_special_key(self, stream: bytes, key: bytes, version: int | None = None) -> bool:
        return self._fact(b"s" + stream + key_hash(key), version) == Op.SET_KEY_TO_SPECIAL

    def is_writer_of_key(self, account: bytes, stream: bytes, key: bytes, version: int | None = None) -> bool:
        return self._fact(b"k" + stream + account + key_hash(key), version) == Op.GRANT_SPECIAL_WRITER_ROLE

    def has_write_permission(self, account: bytes, stream: bytes, key: bytes, version: int | None = None) -> bool:
        """0G's rule: anyone on a new stream; an admin; for a special key its special writers; else the
        stream's writers."""
        if self.is_new_stream(stream, version) or self.is_admin(account, stream, version):
            return True
        if self.is_special_key(stream, key, version):
            return self.is_writer_of_key(account, stream, key, version)
        return self.is_writer_of_stream(account, stream, version)

    def special_writer_keys(self, account: bytes, stream: bytes) -> int:
        raw = self.txn.get(b"c" + stream + account, db=self.acl)
        return _U32.unpack(raw)[0] if raw else 0

    def can_write(self, account: bytes, stream: bytes) -> bool:
        """Whether `account` may write anything at all in `stream` now (0G's pre-check of a transaction)."""
        return (self.is_new_stream(stream) or self.is_admin(account, stream)
                or self.is_writer_of_stream(account, stream) or self.special_writer_keys(account, stream) > 0)


class Writer(View):
    """View plus the replayer's writes, inside one lmdb write transaction."""

    def set_progress(self, seq: int) -> None:
        self.txn.put(b"progress", _pack64(seq), db=self.meta)

    def set_result(self, seq: int, result: str) -> None:
        self.txn.put(_pack64(seq), result.encode(), db=self.results)

    def add_stream(self, stream: bytes, seq: int) -> None:
        self.txn.put(stream, _pack64(seq), db=self.streams, overwrite=False)

    def currents(self, stream_keys: list[tuple[bytes, bytes]]) -> list[bytes | None]:
        """The raw `cur` entries of many keys at once (None where a key was never written)."""
        lks = [stream + key if len(key) <= LONG_PREFIX else cur_key(stream, key) for stream, key in stream_keys]
        with self.txn.cursor(db=self.cur) as cursor:
            found = dict(cursor.getmulti(sorted(lks)))  # in key order: neighbouring pages, fewer misses
        return [found.get(lk) for lk in lks]

    def put_values(self, writes: list[tuple[bytes, bytes, bytes, bytes | None]], version: int) -> None:
        """Write each (stream, key, value, old) at `version`; `old` is the key's current `cur` entry
        (from `currents`), which moves to the history."""
        head, long_head = _pack64(version) + b"\0", _pack64(version) + b"\1"
        cur_items, hist_items = [], []
        for stream, key, data, old in writes:
            if old is not None:
                if old[8] == 0:
                    hist_items.append((stream + key_hash(key) + old[:8], old[9:]))
                else:
                    hist_items.append((stream + key_hash(key) + old[:8], _split_cur(b"", old)[2]))
            if len(key) <= LONG_PREFIX:
                cur_items.append((stream + key, head + data))
            else:
                cur_items.append((cur_key(stream, key), long_head + _U32.pack(len(key)) + key + data))
        if hist_items:  # (in key order: each B-tree page is copied once per write transaction)
            hist_items.sort()
            with self.txn.cursor(db=self.hist) as cursor:
                cursor.putmulti(hist_items)
        cur_items.sort()
        with self.txn.cursor(db=self.cur) as cursor:
            cursor.putmulti(cur_items)

    def put_acl(self, op: int, stream: bytes, key: bytes, account: bytes, version: int) -> None:
        """Record one access-control op (committed by transaction `version`)."""
        category = op & 0xF0
        if category == 0x00:
            fact = b"a" + stream + account
        elif category == 0x10:
            fact = b"s" + stream + key_hash(key)
        elif category == 0x20:
            fact = b"w" + stream + account
        else:
            fact = b"k" + stream + account + key_hash(key)
            before = self.txn.get(fact, db=self.acl)
            was = before is not None and before[0] == Op.GRANT_SPECIAL_WRITER_ROLE
            now = op == Op.GRANT_SPECIAL_WRITER_ROLE
            if was != now:
                count = self.special_writer_keys(account, stream) + (1 if now else -1)
                self.txn.put(b"c" + stream + account, _U32.pack(count), db=self.acl)
        self.txn.put(fact, bytes([op]) + _pack64(version), db=self.acl)
        self.txn.put(fact + _pack64(version), bytes([op]), db=self.acl_hist)
        self.txn.put(b"n" + stream, _pack64(version), db=self.acl, overwrite=False)


def _seek_at_most(txn: lmdb.Transaction, db: object, prefix: bytes, version: int) -> tuple[int, bytes] | None:
    """The entry prefix || v with the largest v <= version, as (v, value)."""
    target = prefix + _pack64(version)
    with txn.cursor(db=db) as cursor:
        if cursor.set_range(target):
            if cursor.key() != target and not cursor.prev():
                return None
        elif not cursor.last():
            return None
        key = cursor.key()
        if len(key) == len(target) and key[:-8] == prefix:
            return _U64.unpack(key[-8:])[0], cursor.value()
    return None


def _successor(stream: bytes) -> bytes | None:
    """The smallest 32-byte id after `stream` (None after ff…ff)."""
    value = int.from_bytes(stream, "big") + 1
    return value.to_bytes(32, "big") if value < 1 << 256 else None
