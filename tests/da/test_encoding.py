"""deaios.da.encoding: ckzg packing, columns, header/commitment, verification and recovery."""

from __future__ import annotations

import os
import random

import pytest
from deaios.da import bls
from deaios.da import encoding as E


@pytest.fixture(scope="module")
def blob():
    data = os.urandom(E.BLOB_PAYLOAD + 1000)  # 2 ckzg blobs
    return data, E.encode(data)


def test_pack_unpack_roundtrip():
    for n in (0, 1, 30, 31, 32, E.BLOB_PAYLOAD, E.BLOB_PAYLOAD + 1):
        data = os.urandom(n)
        blobs = E.pack(data)
        assert len(blobs) == E.blobs_needed(n) and all(len(b) == E.CKZG_BLOB_BYTES for b in blobs)
        assert all(b[i * 32] == 0 for b in blobs for i in range(E.FIELD_ELEMENTS_PER_BLOB))
        assert E.unpack(blobs, n) == data
    with pytest.raises(E.EncodingError):
        E.pack(bytes(E.MAX_DATA + 1))


def test_header_commitment_and_json(blob):
    data, enc = blob
    h = enc.header
    assert h.length == len(data) and len(h.commitments) == 2
    assert h.data_root == bls.keccak256(b"deaios-da-v1" + len(data).to_bytes(8, "big") + (2).to_bytes(4, "big")
                                        + b"".join(h.commitments))
    assert h.erasure_commitment == bls.hash_to_g1(h.data_root)
    assert E.BlobHeader.from_json(h.to_json()) == h
    for bad in ({"length": 5}, {"length": 10**9, "commitments": []}, {"length": 1, "commitments": ["0x00"]},
                {"length": 1, "commitments": []}):
        with pytest.raises(E.EncodingError):
            E.BlobHeader.from_json(bad)


def test_columns_verify_and_decode(blob):
    data, enc = blob
    cols = {c.index: c for c in enc.columns}
    assert E.verify_columns(enc.header, enc.columns)
    assert E.decode(enc.header, cols) == data
    half = {i: cols[i] for i in random.Random(1).sample(range(128), 64)}  # any 64 columns recover the blob
    assert E.decode(enc.header, half) == data
    with pytest.raises(E.EncodingError):
        E.decode(enc.header, {i: cols[i] for i in range(63)})
    raw = bytearray(cols[7].to_bytes())
    raw[100] ^= 1
    bad = E.Column.from_bytes(7, bytes(raw), 2)
    assert not E.verify_columns(enc.header, [bad])
    assert not E.verify_columns(enc.header, [E.Column(7, cols[8].cells, cols[8].proofs)])  # wrong index
    other = E.encode(b"x")
    assert not E.verify_columns(other.header, [cols[0]])  # other commitments
    with pytest.raises(E.EncodingError):
        E.Column.from_bytes(0, b"\0" * 10, 2)


def test_parallel_encoder_matches(blob):
    data, enc = blob
    with E.Encoder(2) as encoder:
        again = encoder.encode(data)
    assert again.header == enc.header and [c.to_bytes() for c in again.columns] == [c.to_bytes()
                                                                                     for c in enc.columns]


@pytest.mark.parametrize("rows", [128, 300, 1000, 3072, 65535])
def test_two_thirds_of_rows_always_cover_64_columns(rows):
    """The worst 2/3 of the rows (whole columns, most-carried first) still carry >= 64 columns, so the
    signers of any accepted blob can rebuild it; for 3072 rows any 1513 rows (63 * 24 + 1) suffice."""
    per_column = [0] * E.CELLS
    for r in range(rows):
        per_column[E.column_of_row(r, rows)] += 1
    assert min(per_column) >= 1
    worst63 = sum(sorted(per_column, reverse=True)[:63])
    assert worst63 < -(-2 * rows // 3)  # fewer rows than 2/3: any 2/3 of the rows span >= 64 columns
    if rows == 3072:
        assert per_column == [24] * 128 and worst63 + 1 == 1513


def test_columns_of_rows():
    assert E.columns_of_rows(range(24), 3072) == [0]
    assert E.columns_of_rows(range(25), 3072) == [0, 1]
    assert E.columns_of_rows(range(504, 1024), 3072) == list(range(21, 43))
    assert E.columns_of_rows(range(0), 3072) == []
    assert E.columns_of_rows(range(3072), 3072) == list(range(128))
