"""0G KV stream data: the one encoder/decoder of a KV transaction's bytes and of its submission tags.

A KV write is an ordinary log-layer file. Its submission tags are `sha256("STREAM")` followed by the
32-byte ids of the streams it touches; its data is (all integers big-endian, byte-identical to the
official SDK's `StreamData.encode()`, npm `@0gfoundation/0g-ts-sdk` `kv/types.js`):

    version              u64    the snapshot the transaction was built on (conflict check)
    reads                u32 n, then n × (stream id 32 B, key size u24, key)
    writes               u32 n, then n × (stream id 32 B, key size u24, key, value size u64),
                         then the n values back to back, in the same order
    access controls      u32 n, then n × (op u8, stream id 32 B, fields by op:
                            GRANT_ADMIN_ROLE, GRANT_WRITE_ROLE, REVOKE_WRITE_ROLE   account 20 B
                            SET_KEY_TO_SPECIAL, SET_KEY_TO_NORMAL                     key size u24, key
                            GRANT_/REVOKE_SPECIAL_WRITE_ROLE                          key size u24, key, account
                            RENOUNCE_SPECIAL_WRITE_ROLE                               key size u24, key
                            RENOUNCE_ADMIN_ROLE, RENOUNCE_WRITE_ROLE                  nothing)

Keys are never empty; a list holds at most 65,536 entries (a longer one is "too long", as 0G's KV node
says). An empty value deletes the key. `StreamReader` parses in the stages 0G's replayer uses (version,
reads, writes, access controls), so that the replayer can check each stage before reading the next,
exactly like 0G: which error a malformed or conflicting transaction records depends on that order.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from dataclasses import dataclass, field
from enum import IntEnum

STREAM_DOMAIN = hashlib.sha256(b"STREAM").digest()  # df2ff3bb…4307aa, the first 32 bytes of the tags
MAX_SET_SIZE = 1 << 16  # entries per list (reads, writes, access controls)
MAX_KEY_SIZE = (1 << 24) - 1  # the key size field is 24 bits
MAX_QUERY_SIZE = 256 * 1024  # bytes of a value per kv_getValue call (the SDK's and 0G's limit)
ENTRY_SIZE = 256  # the flow's sector: 0G's KV node reads stream data in whole sectors
STREAM_ID_SIZE = 32
ADDRESS_SIZE = 20
MAX_VERSION = (1 << 64) - 1  # a transaction built on "the latest state": never conflicts

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


class Op(IntEnum):
    """Access-control operation codes (0G's AccessControlOps / the SDK's AccessControlType)."""

    GRANT_ADMIN_ROLE = 0x00
    RENOUNCE_ADMIN_ROLE = 0x01
    SET_KEY_TO_SPECIAL = 0x10
    SET_KEY_TO_NORMAL = 0x11
    GRANT_WRITER_ROLE = 0x20
    REVOKE_WRITER_ROLE = 0x21
    RENOUNCE_WRITER_ROLE = 0x22
    GRANT_SPECIAL_WRITER_ROLE = 0x30
    REVOKE_SPECIAL_WRITER_ROLE = 0x31
    RENOUNCE_SPECIAL_WRITER_ROLE = 0x32


#: which fields follow the stream id, per op: (has key, has account)
OP_FIELDS: dict[int, tuple[bool, bool]] = {
    Op.GRANT_ADMIN_ROLE: (False, True),
    Op.GRANT_WRITER_ROLE: (False, True),
    Op.REVOKE_WRITER_ROLE: (False, True),
    Op.SET_KEY_TO_SPECIAL: (True, False),
    Op.SET_KEY_TO_NORMAL: (True, False),
    Op.GRANT_SPECIAL_WRITER_ROLE: (True, True),
    Op.REVOKE_SPECIAL_WRITER_ROLE: (True, True),
    Op.RENOUNCE_SPECIAL_WRITER_ROLE: (True, False),
    Op.RENOUNCE_ADMIN_ROLE: (False, False),
    Op.RENOUNCE_WRITER_ROLE: (False, False),
}


def op_name(op: int) -> str:
    """0G's name of an access-control op (as it appears in transaction results)."""
    try:
        return Op(op).name
    except ValueError:
        return "UNKNOWN"


class StreamDataError(ValueError):
    """Stream data that cannot be parsed. `too_long` distinguishes 0G's two parse errors."""

    def __init__(self, message: str, too_long: bool = False) -> None:
        super().__init__(message)
        self.too_long = too_long

    @property
    def result(self) -> str:
        """The transaction result 0G's KV node records for this error."""
        return ("DataParseError: Stream read/write/access_control list too long" if self.too_long
                else "DataParseError: Invalid stream data")


# -- the data model ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Read:
    stream_id: bytes
    key: bytes


@dataclass(frozen=True)
class Write:
    stream_id: bytes
    key: bytes
    data: bytes


@dataclass(frozen=True)
class AccessControl:
    """One access-control operation. `key`/`account` are None when the op has no such field (for the
    renounce ops the account is the transaction's sender, filled in by the replayer)."""

    op: int
    stream_id: bytes
    key: bytes | None = None
    account: bytes | None = None


@dataclass
class StreamData:
    """A KV transaction's content. `encode()` is byte-identical to the official SDK's."""

    version: int = MAX_VERSION
    reads: list[Read] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    controls: list[AccessControl] = field(default_factory=list)

    def stream_ids(self) -> list[bytes]:
        """The streams this data writes or controls, in first-use order (what its tags must name)."""
        seen: dict[bytes, None] = {}
        for item in (*self.writes, *self.controls):
            seen.setdefault(item.stream_id, None)
        return list(seen)

    def tags(self) -> bytes:
        return build_tags(self.stream_ids())

    def encode(self) -> bytes:
        """The bytes of this transaction; ValueError for data 0G could not parse back."""
        if not 0 <= self.version <= MAX_VERSION:
            raise ValueError(f"version must be a u64, got {self.version}")
        for name, items in (("reads", self.reads), ("writes", self.writes), ("access controls", self.controls)):
            if len(items) > MAX_SET_SIZE:
                raise ValueError(f"too many {name}: {len(items)} > {MAX_SET_SIZE}")
        out = [_U64.pack(self.version), _U32.pack(len(self.reads))]
        for read in self.reads:
            out += [_stream(read.stream_id), _key(read.key)]
        out.append(_U32.pack(len(self.writes)))
        for write in self.writes:
            out += [_stream(write.stream_id), _key(write.key), _U64.pack(len(write.data))]
        out += [bytes(write.data) for write in self.writes]
        out.append(_U32.pack(len(self.controls)))
        for control in self.controls:
            has_key, has_account = OP_FIELDS.get(control.op, (None, None))
            if has_key is None:
                raise ValueError(f"unknown access-control op {control.op:#04x}")
            if has_key != (control.key is not None) or has_account != (control.account is not None):
                raise ValueError(f"{op_name(control.op)} takes {'a key' if has_key else 'no key'} and "
                                 f"{'an account' if has_account else 'no account'}")
            out += [bytes([control.op]), _stream(control.stream_id)]
            if control.key is not None:
                out.append(_key(control.key))
            if control.account is not None:
                if len(control.account) != ADDRESS_SIZE:
                    raise ValueError(f"an account is {ADDRESS_SIZE} bytes, got {len(control.account)}")
                out.append(bytes(control.account))
        return b"".join(out)


def _stream(stream_id: bytes) -> bytes:
    if len(stream_id) != STREAM_ID_SIZE:
        raise ValueError(f"a stream id is {STREAM_ID_SIZE} bytes, got {len(stream_id)}")
    return bytes(stream_id)


def _key(key: bytes) -> bytes:
    if not key:
        raise ValueError("a key must not be empty")
    if len(key) > MAX_KEY_SIZE:
        raise ValueError(f"a key is at most {MAX_KEY_SIZE} bytes, got {len(key)}")
    return len(key).to_bytes(3, "big") + bytes(key)


# -- tags ---------------------------------------------------------------------------------------------------
def build_tags(stream_ids: list[bytes]) -> bytes:
    """Submission tags of a KV transaction: sha256("STREAM") || stream ids."""
    return STREAM_DOMAIN + b"".join(_stream(s) for s in stream_ids)


def stream_ids_from_tags(tags: bytes) -> list[bytes]:
    """The stream ids a submission's tags name ([] for a file that is not a KV transaction), as 0G parses
    them: the tags must be a non-empty multiple of 32 bytes starting with the stream domain."""
    if not tags or len(tags) % 32 or tags[:32] != STREAM_DOMAIN:
        return []
    return [bytes(tags[i:i + 32]) for i in range(32, len(tags), 32)]


# -- parsing ------------------------------------------------------------------------------------------------
class StreamReader:
    """Reads stream data in 0G's stages. Reading past the end raises StreamDataError.

    0G's KV node reads a transaction in whole 256-byte sectors, so bytes up to the next sector boundary
    read as zeros; pass `pad=True` (what the replayer does) for exactly that behaviour."""

    def __init__(self, data: bytes, pad: bool = False) -> None:
        """`data`: bytes or any buffer supporting slicing and struct.unpack_from (an mmap of a downloaded
        transaction is parsed in place: only the pieces read are copied)."""
        if pad and len(data) % ENTRY_SIZE:
            data = bytes(data) + bytes(ENTRY_SIZE - len(data) % ENTRY_SIZE)
        elif not isinstance(data, (bytes, mmap.mmap)):
            data = bytes(data)
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise StreamDataError(f"stream data ends at byte {len(self.data)}, needed {end}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _count(self) -> int:
        (count,) = _U32.unpack(self._take(4))
        if count > MAX_SET_SIZE:
            raise StreamDataError(f"a list of {count} entries (at most {MAX_SET_SIZE})", too_long=True)
        return count

    def _key(self) -> bytes:
        size = int.from_bytes(self._take(3), "big")
        if size == 0:
            raise StreamDataError("empty key")
        return self._take(size)

    def version(self) -> int:
        (version,) = _U64.unpack(self._take(8))
        return version

    def reads(self) -> list[Read]:
        out = []
        for _ in range(self._count()):
            stream_id = self._take(STREAM_ID_SIZE)
            out.append(Read(stream_id, self._key()))
        return out

    def writes(self) -> list[tuple[bytes, bytes, int, int]]:
        """The write set in order, duplicates included, as (stream id, key, start, end): the value is
        data[start:end]. The reader moves past the values."""
        count = self._count()
        data, pos, size = self.data, self.pos, len(self.data)
        unpack32, unpack64 = _U32.unpack_from, _U64.unpack_from
        meta = []
        for _ in range(count):  # inlined _take/_key: this loop is the replay hot path
            if pos + 35 > size:
                raise StreamDataError(f"stream data ends at byte {size} inside the write set")
            key_size = unpack32(data, pos + 31)[0] & 0xFFFFFF
            if key_size == 0:
                raise StreamDataError("empty key")
            key_end = pos + 35 + key_size
            if key_end + 8 > size:
                raise StreamDataError(f"stream data ends at byte {size} inside the write set")
            meta.append((data[pos:pos + 32], data[pos + 35:key_end], unpack64(data, key_end)[0]))
            pos = key_end + 8
        out = []
        for stream_id, key, length in meta:
            end = pos + length
            if end > size:
                raise StreamDataError(f"values end at byte {end}, past the stream data ({size} bytes)")
            out.append((stream_id, key, pos, end))
            pos = end
        self.pos = pos
        return out

    def controls(self) -> list[AccessControl]:
        """The access-control list in order; renounce ops carry account=None (the sender)."""
        out = []
        for _ in range(self._count()):
            op = self._take(1)[0]
            stream_id = self._take(STREAM_ID_SIZE)
            fields = OP_FIELDS.get(op)
            if fields is None:
                raise StreamDataError(f"unknown access-control op {op:#04x}")
            key = self._key() if fields[0] else None
            account = self._take(ADDRESS_SIZE) if fields[1] else None
            out.append(AccessControl(op, stream_id, key, account))
        return out


def decode(data: bytes, pad: bool = False) -> StreamData:
    """Parse a whole transaction (StreamDataError if malformed). Trailing bytes are ignored, as by 0G."""
    reader = StreamReader(data, pad)
    version = reader.version()
    reads = reader.reads()
    writes = [Write(stream, key, reader.data[start:end]) for stream, key, start, end in reader.writes()]
    return StreamData(version, reads, writes, reader.controls())
