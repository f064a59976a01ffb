"""The DA blob encoding: ckzg cells (EIP-7594), the blob header and its commitment, rows ↔ columns.

A DA blob of up to MAX_DATA bytes is cut into k ckzg blobs of 4096 field elements, 31 payload bytes each
(126,976 bytes; the zero-padded tail of the last one is not data). Each ckzg blob is extended to 128 cells of
2048 bytes with a KZG proof per cell (`ckzg.compute_cells_and_kzg_proofs`; cells 0–63 are the blob itself,
64–127 the extension) and any 64 of its 128 cells recover it.

**Columns.** Column c (0–127) is cell c of every ckzg blob of the DA blob, with their proofs.

**Rows.** A quorum has R >= 128 rows (3072); row r carries column ``r * 128 // R`` (24 rows per column for
R = 3072). A signer holds a contiguous range of rows, so it stores its share of the columns (in proportion to
its rows) once. For R = 3072 any 1513 rows (63·24 + 1, 49.3 %) carry 64 distinct columns, so the signers
holding the 2/3 of the rows that sign a blob can always rebuild it, and so can any half of the rows.

**Header and commitment.** ``data_root = keccak256("deaios-da-v1" ‖ uint64 length ‖ uint32 k ‖ C_0 ‖ … ‖
C_{k-1})`` with C_i the 48-byte KZG commitment of ckzg blob i; it binds the length and every cell (through
the commitments). The on-chain erasure commitment, a BN254 G1 point in 0G's ABI, is
``hash_to_g1(data_root)``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import ckzg

from deaios._keccak import keccak256
from deaios.da import bls
from deaios.da.blobref import MAX_DATA

FIELD_ELEMENTS_PER_BLOB = 4096
PAYLOAD_BYTES_PER_ELEMENT = 31
BLOB_PAYLOAD = FIELD_ELEMENTS_PER_BLOB * PAYLOAD_BYTES_PER_ELEMENT  # 126,976
CKZG_BLOB_BYTES = FIELD_ELEMENTS_PER_BLOB * 32  # 131,072
CELLS = 128
DATA_CELLS = 64
CELL_BYTES = 2048
PROOF_BYTES = 48
COMMITMENT_BYTES = 48
#: 0G's blob size limit (`deaios.da.blobref.MAX_DATA`): 32,505,852 bytes, i.e. up to 256 ckzg blobs
#: (256 × 126,976 = 31 MiB).
MAX_BLOBS = -(-MAX_DATA // BLOB_PAYLOAD)
DOMAIN = b"deaios-da-v1"

#: shipped inside eth_account (found without importing it: that takes a second)
TRUSTED_SETUP = Path(importlib.util.find_spec("eth_account").origin).parent / "typed_transactions" / \
    "blob_transactions" / "kzg_trusted_setup.txt"  # type: ignore[union-attr, arg-type]


class EncodingError(ValueError):
    """Data too large, or cells that do not match their commitments."""


#: Fixed-base MSM precomputation of the encoding workers' setup: cell proofs ~17 % faster (0.25 s instead of
#: 0.30 s per ckzg blob here) for +0.2 s setup load and +33 MB per worker. Verification does not use it.
ENCODE_PRECOMPUTE = 6


@cache
def trusted_setup(precompute: int = 0):
    """The Ethereum mainnet KZG setup (shipped inside eth_account), loaded once per process (~2 s)."""
    return ckzg.load_trusted_setup(str(TRUSTED_SETUP), precompute)


@dataclass(frozen=True)
class BlobHeader:
    length: int
    commitments: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.length <= MAX_DATA:
            raise EncodingError(f"a DA blob holds at most {MAX_DATA} bytes")
        if len(self.commitments) != blobs_needed(self.length):
            raise EncodingError("commitment count does not match the length")
        if any(len(c) != COMMITMENT_BYTES for c in self.commitments):
            raise EncodingError("a KZG commitment has 48 bytes")

    @property
    def data_root(self) -> bytes:
        return keccak256(DOMAIN + self.length.to_bytes(8, "big") + len(self.commitments).to_bytes(4, "big")
                         + b"".join(self.commitments))

    @property
    def erasure_commitment(self) -> bls.G1Point:
        return bls.hash_to_g1(self.data_root)

    def to_json(self) -> dict:
        return {"length": self.length, "commitments": ["0x" + c.hex() for c in self.commitments]}

    @classmethod
    def from_json(cls, obj: Mapping) -> BlobHeader:
        try:
            return cls(int(obj["length"]), tuple(bytes.fromhex(str(c).removeprefix("0x"))
                                                 for c in obj["commitments"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"malformed blob header: {exc}") from exc


@dataclass
class Column:
    """Cell `index` of every ckzg blob of a DA blob, with proofs (one per ckzg blob)."""

    index: int
    cells: list[bytes]
    proofs: list[bytes]

    def to_bytes(self) -> bytes:
        return b"".join(c + p for c, p in zip(self.cells, self.proofs, strict=True))

    @classmethod
    def from_bytes(cls, index: int, raw: bytes, blobs: int) -> Column:
        step = CELL_BYTES + PROOF_BYTES
        if len(raw) != blobs * step:
            raise EncodingError(f"column {index}: {len(raw)} bytes, expected {blobs * step}")
        return cls(index, [raw[i * step:i * step + CELL_BYTES] for i in range(blobs)],
                   [raw[i * step + CELL_BYTES:(i + 1) * step] for i in range(blobs)])


@dataclass
class EncodedBlob:
    header: BlobHeader
    columns: list[Column]  # all 128


def blobs_needed(length: int) -> int:
    return max(1, -(-length // BLOB_PAYLOAD))


def pack(data: bytes) -> list[bytes]:
    """The ckzg blobs of `data`: 31 bytes per field element behind a zero byte, zero-padded."""
    if len(data) > MAX_DATA:
        raise EncodingError(f"a DA blob holds at most {MAX_DATA} bytes, got {len(data)}")
    out = []
    for b in range(blobs_needed(len(data))):
        chunk = data[b * BLOB_PAYLOAD:(b + 1) * BLOB_PAYLOAD].ljust(BLOB_PAYLOAD, b"\0")
        blob = bytearray(CKZG_BLOB_BYTES)
        for i in range(FIELD_ELEMENTS_PER_BLOB):
            blob[i * 32 + 1:(i + 1) * 32] = chunk[i * 31:(i + 1) * 31]
        out.append(bytes(blob))
    return out


def unpack(blobs: Sequence[bytes], length: int) -> bytes:
    parts = []
    for blob in blobs:
        parts.extend(blob[i * 32 + 1:(i + 1) * 32] for i in range(FIELD_ELEMENTS_PER_BLOB))
    return b"".join(parts)[:length]


def _encode_one(blob: bytes, precompute: int = 0) -> tuple[bytes, list[bytes], list[bytes]]:
    ts = trusted_setup(precompute)
    commitment = bytes(ckzg.blob_to_kzg_commitment(blob, ts))
    cells, proofs = ckzg.compute_cells_and_kzg_proofs(blob, ts)
    return commitment, [bytes(c) for c in cells], [bytes(p) for p in proofs]


class Encoder:
    """Encodes DA blobs; with workers > 1 the ckzg blobs are spread over that many processes (ckzg holds
    the GIL), each loading the trusted setup (with ENCODE_PRECOMPUTE) once; the parent loads none."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def warm_up(self) -> None:
        """Start the worker processes and load their setups (or load the setup here, with one worker)."""
        if self.workers > 1:
            pool = self._get_pool()
            pids: set[int] = set()
            deadline = time.monotonic() + 60
            while len(pids) < self.workers and time.monotonic() < deadline:  # every worker has loaded its setup
                pids.update(f.result() for f in [pool.submit(_pause, 0.05) for _ in range(self.workers)])
        else:
            trusted_setup()

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, initializer=_load_setup, initargs=(ENCODE_PRECOMPUTE,))
        return self._pool

    def encode(self, data: bytes) -> EncodedBlob:
        blobs = pack(data)
        if self.workers > 1:
            results = list(self._get_pool().map(partial(_encode_one, precompute=ENCODE_PRECOMPUTE), blobs))
        else:
            results = [_encode_one(b) for b in blobs]
        header = BlobHeader(len(data), tuple(r[0] for r in results))
        columns = [Column(c, [r[1][c] for r in results], [r[2][c] for r in results]) for c in range(CELLS)]
        return EncodedBlob(header, columns)


def _load_setup(precompute: int = 0) -> None:
    trusted_setup(precompute)


def _pause(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def encode(data: bytes) -> EncodedBlob:
    """Encode in this process (see `Encoder` for the parallel version)."""
    return Encoder(1).encode(data)


def verify_columns(header: BlobHeader, columns: Iterable[Column]) -> bool:
    """True iff every cell of the columns matches its proof and its ckzg blob's commitment."""
    commitments, indices, cells, proofs = [], [], [], []
    k = len(header.commitments)
    for col in columns:
        if not 0 <= col.index < CELLS or len(col.cells) != k or len(col.proofs) != k:
            return False
        for b in range(k):
            if len(col.cells[b]) != CELL_BYTES or len(col.proofs[b]) != PROOF_BYTES:
                return False
            commitments.append(header.commitments[b])
            indices.append(col.index)
            cells.append(col.cells[b])
            proofs.append(col.proofs[b])
    if not cells:
        return True
    try:
        return bool(ckzg.verify_cell_kzg_proof_batch(commitments, indices, cells, proofs, trusted_setup()))
    except Exception:  # noqa: BLE001 - malformed cells or points are a failed check
        return False


def decode(header: BlobHeader, columns: Mapping[int, Column]) -> bytes:
    """Rebuild the data from >= 64 verified columns (callers verify with `verify_columns` first)."""
    if len(columns) < DATA_CELLS:
        raise EncodingError(f"{len(columns)} columns, at least {DATA_CELLS} needed")
    blobs = []
    data_cols = all(c in columns for c in range(DATA_CELLS))
    chosen = sorted(columns)[:DATA_CELLS]
    for b in range(len(header.commitments)):
        if data_cols:
            cells = [columns[c].cells[b] for c in range(DATA_CELLS)]
        else:
            cells, _ = ckzg.recover_cells_and_kzg_proofs(chosen, [columns[c].cells[b] for c in chosen],
                                                         trusted_setup())
            cells = cells[:DATA_CELLS]
        blobs.append(b"".join(bytes(c) for c in cells))
    return unpack(blobs, header.length)


#: Quorums need at least one row per column.
MIN_ROWS = CELLS


def column_of_row(row: int, rows: int) -> int:
    return row * CELLS // rows


def columns_of_rows(rows_range: range, rows: int) -> list[int]:
    """The columns a range of rows carries (sorted, distinct)."""
    if not rows_range:
        return []
    return list(range(column_of_row(rows_range.start, rows), column_of_row(rows_range.stop - 1, rows) + 1))


def header_json(header: BlobHeader) -> str:
    return json.dumps(header.to_json(), separators=(",", ":"))
