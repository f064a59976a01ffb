"""The stream data codec: byte-identical to the official SDK's StreamData.encode(), and every malformed
input is a StreamDataError (never another exception)."""

from __future__ import annotations

import hashlib
import json
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kvutil import S0, S1, S2, sdk_kv

from deaios.kv.codec import (
    MAX_SET_SIZE, MAX_VERSION, OP_FIELDS, STREAM_DOMAIN, AccessControl, Op, Read, StreamData, StreamDataError,
    StreamReader, Write, build_tags, decode, stream_ids_from_tags,
)


def spec_of(data: StreamData) -> dict:
    """The SDK driver's JSON form of a StreamData."""
    hx = lambda b: "0x" + b.hex()  # noqa: E731
    return {
        "version": str(data.version),
        "reads": [{"stream": hx(r.stream_id), "key": hx(r.key)} for r in data.reads],
        "writes": [{"stream": hx(w.stream_id), "key": hx(w.key), "data": hx(w.data)} for w in data.writes],
        "controls": [{"type": int(c.op), "stream": hx(c.stream_id),
                      "key": None if c.key is None else hx(c.key),
                      "account": None if c.account is None else hx(c.account)} for c in data.controls],
    }


def control(op: Op, stream: bytes, rng: random.Random) -> AccessControl:
    has_key, has_account = OP_FIELDS[op]
    return AccessControl(op, stream, rng.randbytes(rng.randint(1, 40)) if has_key else None,
                         rng.randbytes(20) if has_account else None)


def sample_datas() -> list[StreamData]:
    rng = random.Random(5)
    every_op = [control(op, (S0, S1)[i % 2], rng) for i, op in enumerate(Op)]
    return [
        StreamData(),  # empty: version u64 max and three empty lists
        StreamData(version=0, writes=[Write(S0, b"k", b"")]),  # a delete
        StreamData(version=7, reads=[Read(S2, b"r1"), Read(S0, b"\0\xff")],
                   writes=[Write(S0, b"AI_100", json.dumps({"name": "m", "path": "log://c/m/v2/"}).encode()),
                           Write(S1, b"x" * 1000, rng.randbytes(3000)), Write(S0, b"AI_100", b"again")],
                   controls=every_op),
        StreamData(version=MAX_VERSION - 1, writes=[Write(S1, rng.randbytes(70_000), rng.randbytes(70_000))]),
        StreamData(version=3, controls=every_op[::-1]),
    ]


@pytest.mark.sdk
def test_encoding_is_byte_identical_to_the_official_sdk() -> None:
    datas = sample_datas()
    results = sdk_kv("encode", spec=[spec_of(d) for d in datas])
    for data, sdk in zip(datas, results, strict=True):
        assert sdk["data"] == "0x" + data.encode().hex()
        if data.writes:  # the SDK's builder names the streams its writes touch, in first-use order
            assert sdk["tags"] == "0x" + build_tags(list(dict.fromkeys(w.stream_id for w in data.writes))).hex()
        assert decode(data.encode()) == data


ids = st.sampled_from([S0, S1, S2])
keys = st.binary(min_size=1, max_size=40)


@st.composite
def stream_datas(draw: st.DrawFn) -> StreamData:
    def one_control(op: int) -> st.SearchStrategy[AccessControl]:
        has_key, has_account = OP_FIELDS[op]
        return st.builds(AccessControl, st.just(op), ids, keys if has_key else st.none(),
                         st.binary(min_size=20, max_size=20) if has_account else st.none())

    return StreamData(
        draw(st.integers(0, MAX_VERSION)),
        draw(st.lists(st.builds(Read, ids, keys), max_size=4)),
        draw(st.lists(st.builds(Write, ids, keys, st.binary(max_size=64)), max_size=5)),
        draw(st.lists(st.sampled_from(list(OP_FIELDS)).flatmap(one_control), max_size=5)))


@pytest.mark.sdk
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(stream_datas(), min_size=40, max_size=40))
def test_random_transactions_match_the_sdk(datas: list[StreamData]) -> None:
    results = sdk_kv("encode", spec=[spec_of(d) for d in datas])
    for data, sdk in zip(datas, results, strict=True):
        assert sdk["data"] == "0x" + data.encode().hex()


@settings(max_examples=150, deadline=None)
@given(stream_datas())
def test_decode_inverts_encode_and_ignores_trailing_bytes(data: StreamData) -> None:
    raw = data.encode()
    assert decode(raw) == data
    assert decode(raw + b"\x01\x02") == data
    assert decode(raw, pad=True) == data


@settings(max_examples=60, deadline=None)
@given(stream_datas(), st.data())
def test_every_truncation_is_a_parse_error(data: StreamData, draw: st.DataObject) -> None:
    raw = data.encode()
    cut = draw.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(StreamDataError) as excinfo:
        decode(raw[:cut])
    assert excinfo.value.result == "DataParseError: Invalid stream data"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises_anything_else(raw: bytes) -> None:
    try:
        decode(raw, pad=True)
    except StreamDataError as exc:
        assert exc.result.startswith("DataParseError: ")


def test_malformed_lists_and_keys() -> None:
    version = struct.pack(">Q", 1)
    empty = struct.pack(">I", 0)
    too_long = struct.pack(">I", MAX_SET_SIZE + 1)
    cases = {
        "reads too long": (version + too_long, True),
        "writes too long": (version + empty + too_long, True),
        "controls too long": (version + empty + empty + too_long, True),
        "empty key": (version + struct.pack(">I", 1) + S0 + b"\0\0\0", False),
        "oversize key": (version + struct.pack(">I", 1) + S0 + b"\xff\xff\xff" + b"k" * 100, False),
        "value past the end": (version + empty + struct.pack(">I", 1) + S0 + b"\0\0\1k" + struct.pack(">Q", 10**9)
                               + empty, False),
        "unknown op": (version + empty + empty + struct.pack(">I", 1) + b"\x05" + S0, False),
        "shorter than a version": (b"\0\0\0", False),
    }
    for name, (raw, too_long_expected) in cases.items():
        with pytest.raises(StreamDataError) as excinfo:
            decode(raw)
        assert excinfo.value.too_long == too_long_expected, name
    # a list of exactly MAX_SET_SIZE entries is fine
    reader = StreamReader(version + struct.pack(">I", MAX_SET_SIZE) + (S0 + b"\0\0\1k") * MAX_SET_SIZE)
    reader.version()
    assert len(reader.reads()) == MAX_SET_SIZE


def test_padding_reads_zeros_up_to_the_sector_boundary() -> None:
    """0G's node reads whole 256-byte sectors: a value may run into the zero padding of the last one."""
    raw = StreamData(version=1, writes=[Write(S0, b"k", b"abc")]).encode()
    overrun = raw[:-3 - 4]  # drop the value and the (empty) control list
    overrun = overrun[:-8] + struct.pack(">Q", 20)  # claim a 20-byte value: padding supplies zeros
    with pytest.raises(StreamDataError):
        decode(overrun)
    parsed = decode(overrun, pad=True)
    assert parsed.writes == [Write(S0, b"k", bytes(20))] and parsed.controls == []


def test_encoder_refuses_what_0g_could_not_parse() -> None:
    for bad in (StreamData(writes=[Write(S0, b"", b"v")]),
                StreamData(writes=[Write(b"short", b"k", b"v")]),
                StreamData(version=-1),
                StreamData(version=MAX_VERSION + 1),
                StreamData(controls=[AccessControl(Op.GRANT_WRITER_ROLE, S0)]),  # needs an account
                StreamData(controls=[AccessControl(Op.RENOUNCE_WRITER_ROLE, S0, account=b"\1" * 20)]),
                StreamData(controls=[AccessControl(0x40, S0)]),
                StreamData(controls=[AccessControl(Op.GRANT_ADMIN_ROLE, S0, account=b"\1" * 19)])):
        with pytest.raises(ValueError):
            bad.encode()


def test_tags() -> None:
    assert STREAM_DOMAIN == hashlib.sha256(b"STREAM").digest()
    assert STREAM_DOMAIN.hex() == "df2ff3bb0af36c6384e6206552a4ed807f6f6a26e7d0aa6bff772ddc9d4307aa"
    assert stream_ids_from_tags(build_tags([S0, S1, S0])) == [S0, S1, S0]
    assert stream_ids_from_tags(STREAM_DOMAIN) == []
    for not_kv in (b"", b"\x01", STREAM_DOMAIN + S0[:31], bytes(32) + S0, S0):
        assert stream_ids_from_tags(not_kv) == []
    data = StreamData(writes=[Write(S1, b"a", b"1"), Write(S0, b"b", b"2")],
                      controls=[AccessControl(Op.GRANT_WRITER_ROLE, S2, account=b"\1" * 20)])
    assert data.stream_ids() == [S1, S0, S2]
    assert data.tags() == STREAM_DOMAIN + S1 + S0 + S2
