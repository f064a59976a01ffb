"""The KV node's JSON-RPC: 0G's kv_* methods (what the official SDK's `KvClient`/`StorageKv` call), named,
shaped and validated as 0G's KV node serves them (0glabs/0g-storage-kv node/rpc/src/kv_rpc_server):

    kv_getValue(streamId, key, startIndex, len, version?)            -> {version, data, size}
    kv_getNext / kv_getPrev(streamId, key, startIndex, len, inclusive, version?) -> {version, key, data, size} | null
    kv_getFirst / kv_getLast(streamId, startIndex, len, version?)    -> {version, key, data, size} | null
    kv_getTransactionResult(txSeq)                                   -> "Commit" | <reason> | null
    kv_getHoldingStreamIds()                                         -> ["0x…", …]
    kv_hasWritePermission(account, streamId, key, version?)          -> bool
    kv_IsAdmin(account, streamId, version?), kv_isWriterOfStream(account, streamId, version?) -> bool
    kv_isSpecialKey(streamId, key, version?), kv_isWriterOfKey(account, streamId, key, version?) -> bool
    kv_getStatus()                                                   -> true

Keys and values are base64, stream ids 0x + 64 hex, accounts 0x + 40 hex, versions u64 (absent or
null: the latest). `data` is value[startIndex : startIndex + len] (len at most 256 KiB) and `size` the
whole value's length. A key never written (or deleted) reads as {version: 0 (or the deleting tx),
data: "", size: 0}. kv_getNext/Prev/First/Last skip deleted keys. Bad params are error objects with
code -32602, message "Invalid params: <param>" and the reason as data, as 0G answers them.

deaios adds `deaios_kvStatus()` -> {nextTxSeq, logTxs, logSyncHeight, streams, waitingForData}: how far
replay has got (every tx below nextTxSeq is replayed) and how far the log is known.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from deaios.jsonrpc import RpcError
from deaios.kv.codec import MAX_QUERY_SIZE, MAX_VERSION
from deaios.kv.replay import StreamConfig
from deaios.kv.store import KvIndex

INVALID_PARAMS = -32602


def invalid(param: str, reason: str) -> RpcError:
    return RpcError(f"Invalid params: {param}", INVALID_PARAMS, reason)


def parse_fixed_hex(value: object, size: int, param: str) -> bytes:
    if isinstance(value, str):
        text = value.removeprefix("0x").removeprefix("0X")
        if len(text) == 2 * size:
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
    raise invalid(param, f"expected 0x followed by {2 * size} hex digits, got {str(value)[:80]!r}")


def parse_key(value: object, param: str = "key") -> bytes:
    if not isinstance(value, str):
        raise invalid(param, "expected a base64 string")
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(param, f"not base64: {value[:80]!r}") from None
    if not key:
        raise invalid(param, "key is empty")
    return key


def parse_u64(value: object, param: str) -> int:
    if isinstance(value, str) and value.isdigit():  # the SDK sends kv_getTransactionResult's txSeq as a string
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise invalid(param, f"expected an unsigned 64-bit integer, got {str(value)[:80]!r}")
    return value


def parse_version(value: object) -> int | None:
    return None if value is None else parse_u64(value, "version")


def parse_bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(param, f"expected true or false, got {str(value)[:80]!r}")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _segment(version: int, data: bytes, start: int, length: int, key: bytes | None = None) -> dict:
    if start > len(data):
        raise invalid("start_index", "start index is greater than value length")
    out: dict[str, object] = {"version": version}
    if key is not None:
        out["key"] = _b64(key)
    out["data"] = _b64(data[start:start + length])
    out["size"] = len(data)
    return out


def _length(value: object) -> int:
    length = parse_u64(value, "len")
    if length > MAX_QUERY_SIZE:
        raise invalid("len", "query length too large")
    return length


def methods(index: KvIndex, config: StreamConfig, status: Callable[[], dict]) -> dict[str, Callable]:
    """The handlers of a KV node over `index`; `status` supplies deaios_kvStatus."""

    def get_value(stream_id: object, key: object, start_index: object, length: object,
                  version: object = None) -> dict:
        size = _length(length)
        k = parse_key(key)
        stream, start, at = parse_fixed_hex(stream_id, 32, "stream_id"), parse_u64(start_index, "start_index"), \
            parse_version(version)
        with index.view() as view:
            found = view.value(stream, k, at)
        if found is None:
            return {"version": 0, "data": "", "size": 0}
        if not found[1]:
            return {"version": found[0], "data": "", "size": 0}
        return _segment(found[0], found[1], start, size)

    def scan_one(stream_id: object, key: bytes | None, start_index: object, size: int, inclusive: bool,
                 forward: bool, version: object) -> dict | None:
        stream, start, at = parse_fixed_hex(stream_id, 32, "stream_id"), parse_u64(start_index, "start_index"), \
            parse_version(version)
        with index.view() as view:
            found = next(view.scan(stream, key, inclusive, forward, at), None)
        if found is None:
            return None
        return _segment(found[1], found[2], start, size, found[0])

    def get_next(stream_id: object, key: object, start_index: object, length: object, inclusive: object,
                 version: object = None) -> dict | None:
        size = _length(length)  # 0G checks len, then the key
        return scan_one(stream_id, parse_key(key), start_index, size, parse_bool(inclusive, "inclusive"), True,
                        version)

    def get_prev(stream_id: object, key: object, start_index: object, length: object, inclusive: object,
                 version: object = None) -> dict | None:
        size = _length(length)
        return scan_one(stream_id, parse_key(key), start_index, size, parse_bool(inclusive, "inclusive"), False,
                        version)

    def get_first(stream_id: object, start_index: object, length: object, version: object = None) -> dict | None:
        return scan_one(stream_id, None, start_index, _length(length), True, True, version)

    def get_last(stream_id: object, start_index: object, length: object, version: object = None) -> dict | None:
        return scan_one(stream_id, None, start_index, _length(length), True, False, version)

    def transaction_result(tx_seq: object) -> str | None:
        seq = parse_u64(tx_seq, "tx_seq")
        with index.view() as view:
            return view.result(seq)

    def holding_stream_ids() -> list[str]:
        if config.ids is not None:
            return sorted("0x" + s.hex() for s in config.ids)
        with index.view() as view:
            return ["0x" + s.hex() for s in view.holding()]

    def account_of(value: object) -> bytes:
        return parse_fixed_hex(value, 20, "account")

    def has_write_permission(account: object, stream_id: object, key: object, version: object = None) -> bool:
        who, k = account_of(account), parse_key(key)
        stream, at = parse_fixed_hex(stream_id, 32, "stream_id"), parse_version(version)
        with index.view() as view:
            return view.has_write_permission(who, stream, k, at)

    def is_admin(account: object, stream_id: object, version: object = None) -> bool:
        who, stream, at = account_of(account), parse_fixed_hex(stream_id, 32, "stream_id"), parse_version(version)
        with index.view() as view:
            return view.is_admin(who, stream, at)

    def is_special_key(stream_id: object, key: object, version: object = None) -> bool:
        k, stream, at = parse_key(key), parse_fixed_hex(stream_id, 32, "stream_id"), parse_version(version)
        with index.view() as view:
            return view.is_special_key(stream, k, at)

    def is_writer_of_key(account: object, stream_id: object, key: object, version: object = None) -> bool:
        who, k = account_of(account), parse_key(key)
        stream, at = parse_fixed_hex(stream_id, 32, "stream_id"), parse_version(version)
        with index.view() as view:
            return view.is_writer_of_key(who, stream, k, at)

    def is_writer_of_stream(account: object, stream_id: object, version: object = None) -> bool:
        who, stream, at = account_of(account), parse_fixed_hex(stream_id, 32, "stream_id"), parse_version(version)
        with index.view() as view:
            return view.is_writer_of_stream(who, stream, at)

    return {
        "kv_getStatus": lambda: True,
        "kv_getValue": get_value,
        "kv_getNext": get_next,
        "kv_getPrev": get_prev,
        "kv_getFirst": get_first,
        "kv_getLast": get_last,
        "kv_getTransactionResult": transaction_result,
        "kv_getHoldingStreamIds": holding_stream_ids,
        "kv_hasWritePermission": has_write_permission,
        "kv_IsAdmin": is_admin,
        "kv_isSpecialKey": is_special_key,
        "kv_isWriterOfKey": is_writer_of_key,
        "kv_isWriterOfStream": is_writer_of_stream,
        "deaios_kvStatus": status,
    }
