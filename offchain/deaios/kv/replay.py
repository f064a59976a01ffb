"""Replay: the KV state machine. Applies log transactions in tx-seq order to the index, with the rules
of 0G's KV node (0glabs/0g-storage-kv, node/stream/src/stream_manager/stream_replayer.rs):

1. A transaction whose tags name no stream, or a stream this node does not serve, is skipped: no result.
2. If its sender may write nothing in any of its streams (not new, not admin, not a writer, not a
   special writer of any key), the result is "SenderNoWritePermission" (its data is not needed).
3. Otherwise its data is parsed stage by stage; the first failure is the result:
   read set (a malformed list → DataParseError; a read of a stream not served → TagsMismatch; a key
   written after the transaction's version → VersionConfliction), then the write set (malformed →
   DataParseError; a stream not in the tags → TagsMismatch; VersionConfliction; no permission for the
   key → WritePermissionDenied), then the access-control list (malformed → DataParseError; a stream
   not in the tags → TagsMismatch; an op the sender may not perform → AccessControlPermissionDenied).
4. Else "Commit": every write gets version = tx seq (the last write of a key in the transaction wins;
   an empty value is a delete), and the access-control ops are recorded. A stream's first committed
   transaction makes its sender the stream's admin.

Stream data is read as 0G reads it, in whole 256-byte sectors: bytes up to the next sector boundary
read as zeros. One deliberate difference: when several writes or ops of one transaction fail, the
first in the data is reported (0G reports whichever its hash map yields first).

Two results are deaios's own, so that one submission cannot halt or crash-loop the node (audit H7): a
transaction larger than `max_tx_size` is recorded as "DataTooLarge" without its data being fetched, and one
whose data did not reach the storage nodes within the node's data deadline as "DataUnavailable" (0G's node
waits for it forever, which stops replay of every stream behind it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deaios.kv.codec import Op, StreamDataError, StreamReader, op_name
from deaios.kv.store import ZERO_ACCOUNT, TxRecord, Writer

COMMIT = "Commit"
SENDER_NO_WRITE_PERMISSION = "SenderNoWritePermission"
VERSION_CONFLICTION = "VersionConfliction"
TAGS_MISMATCH = "TagsMismatch"
DATA_TOO_LARGE = "DataTooLarge"
DATA_UNAVAILABLE = "DataUnavailable"

MAX_TX_SIZE = 256 << 20  # bytes of one transaction's data the node fetches (default)
DATA_DEADLINE = 120.0  # seconds the node waits for a transaction's data (default; 0: forever, as 0G)

_RENOUNCE = (Op.RENOUNCE_ADMIN_ROLE, Op.RENOUNCE_WRITER_ROLE, Op.RENOUNCE_SPECIAL_WRITER_ROLE)
_ADMIN_ONLY = (Op.GRANT_ADMIN_ROLE, Op.SET_KEY_TO_NORMAL, Op.SET_KEY_TO_SPECIAL, Op.REVOKE_WRITER_ROLE,
               Op.REVOKE_SPECIAL_WRITER_ROLE)


@dataclass(frozen=True)
class StreamConfig:
    """Which streams a node serves: `ids` None means every stream it sees."""

    ids: frozenset[bytes] | None = None

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> "StreamConfig":
        """From "all"/None, or stream ids (0x-hex, a list or one comma-separated string); ValueError."""
        if text is None or text == "all":
            return cls(None)
        items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
        if not items:
            raise ValueError("no stream id given (use \"all\" to serve every stream)")
        ids = set()
        for item in items:
            try:
                value = bytes.fromhex(item.removeprefix("0x"))
            except ValueError:
                value = b""
            if len(value) != 32 or not item.startswith("0x"):
                raise ValueError(f"a stream id is 0x followed by 64 hex digits, got {item!r}")
            ids.add(value)
        return cls(frozenset(ids))

    def serves(self, stream: bytes) -> bool:
        return self.ids is None or stream in self.ids

    @classmethod
    def from_json(cls, data: dict) -> "StreamConfig":
        return cls(None) if data.get("all") else cls(frozenset(bytes.fromhex(i[2:]) for i in data.get("ids", [])))

    def to_json(self) -> dict:
        return {"all": self.ids is None, "ids": sorted("0x" + i.hex() for i in self.ids or ())}

    def describe(self) -> str | list[str]:
        """What stack.json shows: "all" or the list of ids."""
        return "all" if self.ids is None else sorted("0x" + i.hex() for i in self.ids)

    def covered_by(self, stored: dict | None) -> bool:
        """Whether an index replayed with `stored` (a to_json()) already holds every stream this config
        serves (0G: a config adding a stream replays from the start)."""
        if stored is None:
            return False
        if stored.get("all"):
            return True
        return self.ids is not None and {"0x" + i.hex() for i in self.ids} <= set(stored.get("ids", []))


class NeedData(Exception):
    """The transaction at `seq` must be replayed and its data is not available yet."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"data of tx {seq} is needed")
        self.seq = seq


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def truncated_key(key: bytes) -> str:
    """A key as 0G's results show it: UTF-8, at most 32 characters ("UNKNOWN" if not UTF-8)."""
    if not key:
        return "NONE"
    try:
        return key.decode()[:32]
    except UnicodeDecodeError:
        return "UNKNOWN"


class Replayer:
    """Applies transactions to an index through a Writer (the caller owns the lmdb transaction)."""

    def __init__(self, config: StreamConfig, max_tx_size: int = MAX_TX_SIZE) -> None:
        self.config = config
        self.max_tx_size = max_tx_size

    def fetchable(self, tx: TxRecord) -> bool:
        """Whether replay may need `tx`'s data and it is small enough to fetch."""
        return self.wants_data(tx) and tx.size <= self.max_tx_size

    def wants_data(self, tx: TxRecord) -> bool:
        """Whether `tx` is a transaction of served streams (whose data replay may need)."""
        return bool(tx.stream_ids) and all(self.config.serves(s) for s in tx.stream_ids)

    def apply(self, w: Writer, tx: TxRecord, data: bytes | None, unavailable: bool = False) -> str | None:
        """Replay `tx` (which must be the next one: w.progress() == tx.seq); returns its result, or None
        if it is skipped. Raises NeedData, with nothing written, if its data is needed and `data` is None,
        unless the caller gave up waiting for it (`unavailable`: recorded as DataUnavailable). `data` is
        any buffer (bytes, or an mmap of the downloaded file)."""
        if not self.wants_data(tx):
            w.set_progress(tx.seq + 1)
            return None
        if not any(w.can_write(tx.sender, s) for s in tx.stream_ids):
            result = SENDER_NO_WRITE_PERMISSION
        elif tx.size > self.max_tx_size:
            result = f"{DATA_TOO_LARGE}: {tx.size} bytes (this node replays at most {self.max_tx_size})"
        elif data is None and unavailable:
            result = f"{DATA_UNAVAILABLE}: the data did not reach the storage nodes in time"
        else:
            if data is None:
                raise NeedData(tx.seq)
            result = self._replay(w, tx, data)
        w.set_result(tx.seq, result)
        for stream in tx.stream_ids:
            w.add_stream(stream, tx.seq)
        w.set_progress(tx.seq + 1)
        return result

    def _replay(self, w: Writer, tx: TxRecord, data: bytes) -> str:
        reader = StreamReader(data, pad=True)
        try:
            version = reader.version()
            reads = reader.reads()
        except StreamDataError as exc:
            return exc.result
        for read in reads:
            if not self.config.serves(read.stream_id):
                return TAGS_MISMATCH
            if w.latest_version(read.stream_id, read.key) > version:
                return VERSION_CONFLICTION

        try:
            entries = reader.writes()
        except StreamDataError as exc:
            return exc.result
        writes = {}
        for stream, key, start, end in entries:  # the last write of a key wins; it keeps its first position
            writes[(stream, key)] = (start, end)
        tx_streams = set(tx.stream_ids)
        sender = tx.sender
        free: dict[bytes, bool] = {}  # stream -> new stream or sender is admin (may write any key)
        writer: dict[bytes, bool] = {}  # stream -> sender is a writer of the stream
        pending = []
        for (stream, key), old in zip(writes, w.currents(list(writes))):
            if stream not in tx_streams:
                return TAGS_MISMATCH
            if old is not None and int.from_bytes(old[:8], "big") > version:
                return VERSION_CONFLICTION
            allowed = free.get(stream)
            if allowed is None:
                allowed = free[stream] = w.is_new_stream(stream) or w.is_admin(sender, stream)
            if not allowed:
                if w.is_special_key(stream, key):
                    allowed = w.is_writer_of_key(sender, stream, key)
                else:
                    allowed = writer.get(stream)
                    if allowed is None:
                        allowed = writer[stream] = w.is_writer_of_stream(sender, stream)
                if not allowed:
                    return f"WritePermissionDenied: stream: {_hex(stream)}, key: {truncated_key(key)}"
            pending.append((stream, key, old))

        try:
            controls = reader.controls()
        except StreamDataError as exc:
            return exc.result
        ops: dict[tuple, tuple[int, bytes, bytes, bytes]] = {}
        is_admin = set()
        for stream in tx.stream_ids:
            if w.is_new_stream(stream):
                ops[(Op.GRANT_ADMIN_ROLE, stream, b"", sender)] = (Op.GRANT_ADMIN_ROLE, stream, b"", sender)
                is_admin.add(stream)
            elif w.is_admin(sender, stream):
                is_admin.add(stream)
        for control in controls:
            op, stream = control.op, control.stream_id
            key = control.key if control.key is not None else b""
            if control.account is not None:
                account = control.account
            else:
                account = sender if op in _RENOUNCE else ZERO_ACCOUNT
            meta = (op & 0xF0, stream, key, account)
            if op != Op.GRANT_ADMIN_ROLE or (meta not in ops and account != sender):
                ops[meta] = (op, stream, key, account)
        for op, stream, key, account in ops.values():
            if stream not in tx_streams:
                return TAGS_MISMATCH
            if op in _ADMIN_ONLY:
                allowed = stream in is_admin
            elif op == Op.GRANT_WRITER_ROLE:
                allowed = stream in is_admin or w.is_writer_of_stream(sender, stream)
            elif op == Op.GRANT_SPECIAL_WRITER_ROLE:
                allowed = stream in is_admin or w.is_writer_of_key(sender, stream, key)
            else:
                allowed = True  # renouncing is always allowed
            if not allowed:
                return (f"AccessControlPermissionDenied: operation: {op_name(op)}, stream: {_hex(stream)}, "
                        f"key: {truncated_key(key)}, account: {_hex(account)}")

        data = reader.data
        w.put_values([(stream, key, data[slice(*writes[(stream, key)])], old) for stream, key, old in pending],
                     tx.seq)
        for op, stream, key, account in ops.values():
            w.put_acl(op, stream, key, account, tx.seq)
        return COMMIT

