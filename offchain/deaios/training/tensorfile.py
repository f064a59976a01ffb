"""The one file format of training artifacts in the log: named numpy arrays plus a JSON header.

    magic "DXT1" | u32 header length (little-endian) | header JSON | array bytes, in header order

The header is {"meta": {...}, "arrays": [[name, dtype, shape], ...]}; arrays are C-ordered little-endian.
Compressed pseudo-gradients, checkpoints and per-worker states all use it, so one reader loads any of
them; a file that does not parse raises ValueError (never a partial result).

`pack(..., deflate=True)` writes magic "DXZ1" followed by the zlib stream (level 9) of the same "DXT1" bytes:
pseudo-gradients use it, since their JSON header and int4 codes shrink by about a third (docs/training.md).
`unpack` reads both and refuses a stream that inflates beyond `MAX_INFLATED` bytes.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

MAGIC = b"DXT1"
MAGIC_DEFLATED = b"DXZ1"
MAX_INFLATED = 1 << 30
DTYPES = {"float32", "float16", "float64", "int8", "uint8", "int32", "int64", "uint32"}


def pack(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, deflate: bool = False) -> bytes:
    entries, blobs = [], []
    for name, array in arrays.items():
        a = np.ascontiguousarray(array)
        if a.dtype.name not in DTYPES:
            raise ValueError(f"{name}: dtype {a.dtype} is not storable")
        entries.append([name, a.dtype.name, list(a.shape)])
        blobs.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    header = json.dumps({"meta": meta or {}, "arrays": entries}, sort_keys=True, separators=(",", ":")).encode()
    data = b"".join([MAGIC, struct.pack("<I", len(header)), header, *blobs])
    return MAGIC_DEFLATED + zlib.compress(data, 9) if deflate else data


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data[4:], MAX_INFLATED)
    except zlib.error as exc:
        raise ValueError(f"malformed deflated training file: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"deflated training file inflates beyond {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise ValueError("deflated training file is truncated")
    if inflater.unused_data:
        raise ValueError("deflated training file has trailing bytes")
    return out


def unpack(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if data[:4] == MAGIC_DEFLATED:
        data = _inflate(data)
    if len(data) < 8 or data[:4] != MAGIC:
        raise ValueError("not a deaios training file (bad magic)")
    (size,) = struct.unpack("<I", data[4:8])
    try:
        header = json.loads(data[8:8 + size])
        entries, meta = header["arrays"], header["meta"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed training file header: {exc}") from None
    arrays: dict[str, np.ndarray] = {}
    offset = 8 + size
    for name, dtype, shape in entries:
        if dtype not in DTYPES:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        kind = np.dtype(dtype).newbyteorder("<")
        count = int(np.prod(shape, dtype=np.int64))
        end = offset + count * kind.itemsize
        if end > len(data):
            raise ValueError(f"training file truncated at array {name}")
        arrays[name] = np.frombuffer(data, dtype=kind, count=count, offset=offset).reshape(shape).astype(dtype)
        offset = end
    if offset != len(data):
        raise ValueError("training file has trailing bytes")
    return arrays, meta
