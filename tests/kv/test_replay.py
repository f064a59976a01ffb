"""Replay with 0G's semantics, scenario by scenario (the random model test is test_model.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kvutil import ALICE, BOB, CAROL, S0, S1, S2, Log, tags

from deaios.kv.codec import MAX_SET_SIZE, AccessControl, Op, Read, StreamData, Write
from deaios.kv.replay import StreamConfig
from deaios.kv.store import LONG_PREFIX


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path / "kv")


def writes(*items: tuple[bytes, bytes, bytes], version: int | None = None, **kw) -> StreamData:
    data = StreamData(writes=[Write(*item) for item in items], **kw)
    if version is not None:
        data.version = version
    return data


def value(log: Log, stream: bytes, key: bytes, version: int | None = None):
    with log.index.view() as view:
        return view.value(stream, key, version)


def test_first_writer_becomes_admin_and_others_need_permission(log: Log) -> None:
    assert log.submit(ALICE, writes((S0, b"AI_100", b'{"name": "m", "path": "log://c/m/v2/"}'))) == "Commit"
    with log.index.view() as view:
        assert view.is_admin(ALICE, S0) and not view.is_admin(BOB, S0)
        assert not view.is_new_stream(S0) and view.is_new_stream(S1)
        assert view.holding() == [S0]
    assert value(log, S0, b"AI_100") == (0, b'{"name": "m", "path": "log://c/m/v2/"}')
    # bob may write nothing in S0: rejected before his data is even read
    assert log.submit(BOB, writes((S0, b"AI_100", b"evil"))) == "SenderNoWritePermission"
    # a transaction touching a new stream too gives bob that stream, but not S0's key
    assert log.submit(BOB, writes((S1, b"mine", b"1"), (S0, b"AI_100", b"evil"))) == \
        f"WritePermissionDenied: stream: 0x{S0.hex()}, key: AI_100"
    assert value(log, S0, b"AI_100")[0] == 0 and value(log, S1, b"mine") is None
    with log.index.view() as view:
        assert view.is_new_stream(S1)  # a rejected transaction records nothing
    # alice makes bob a writer; then he may write
    assert log.submit(ALICE, StreamData(controls=[AccessControl(Op.GRANT_WRITER_ROLE, S0, account=BOB)])) == "Commit"
    assert log.submit(BOB, writes((S0, b"AI_100", b"v2"))) == "Commit"
    assert value(log, S0, b"AI_100") == (4, b"v2")
    assert value(log, S0, b"AI_100", 3) == (0, b'{"name": "m", "path": "log://c/m/v2/"}')
    with log.index.view() as view:
        assert view.is_writer_of_stream(BOB, S0) and not view.is_writer_of_stream(BOB, S0, 2)
        assert [view.result(s) for s in range(log.seq)][-2:] == ["Commit", "Commit"]


def test_writer_and_admin_roles(log: Log) -> None:
    grant = lambda op, stream, account: StreamData(controls=[AccessControl(op, stream, account=account)])  # noqa
    assert log.submit(ALICE, writes((S0, b"k", b"v"))) == "Commit"
    assert log.submit(ALICE, grant(Op.GRANT_WRITER_ROLE, S0, BOB)) == "Commit"
    # a writer may grant the writer role, not the admin role
    assert log.submit(BOB, grant(Op.GRANT_WRITER_ROLE, S0, CAROL)) == "Commit"
    denied = log.submit(BOB, grant(Op.GRANT_ADMIN_ROLE, S0, CAROL))
    assert denied == (f"AccessControlPermissionDenied: operation: GRANT_ADMIN_ROLE, stream: 0x{S0.hex()}, key: NONE, "
                      f"account: 0x{CAROL.hex()}")
    assert log.submit(BOB, grant(Op.REVOKE_WRITER_ROLE, S0, CAROL)).startswith(
        "AccessControlPermissionDenied: operation: REVOKE_WRITER_ROLE")
    # renouncing is always allowed, and only affects the sender
    assert log.submit(CAROL, StreamData(controls=[AccessControl(Op.RENOUNCE_WRITER_ROLE, S0)])) == "Commit"
    assert log.submit(CAROL, writes((S0, b"k", b"c"))) == "SenderNoWritePermission"
    assert log.submit(ALICE, grant(Op.REVOKE_WRITER_ROLE, S0, BOB)) == "Commit"
    assert log.submit(BOB, writes((S0, b"k", b"b"))) == "SenderNoWritePermission"
    # admins: grant, renounce
    assert log.submit(ALICE, grant(Op.GRANT_ADMIN_ROLE, S0, BOB)) == "Commit"
    assert log.submit(ALICE, StreamData(controls=[AccessControl(Op.RENOUNCE_ADMIN_ROLE, S0)])) == "Commit"
    with log.index.view() as view:
        assert view.is_admin(BOB, S0) and not view.is_admin(ALICE, S0) and view.is_admin(ALICE, S0, 8)
    assert log.submit(ALICE, writes((S0, b"k", b"a"))) == "SenderNoWritePermission"
    assert log.submit(BOB, writes((S0, b"k", b"b"))) == "Commit"


def test_special_keys_and_their_writers(log: Log) -> None:
    ctl = lambda *items: StreamData(controls=[AccessControl(*item) for item in items])  # noqa: E731
    assert log.submit(ALICE, writes((S0, b"open", b"1"), (S0, b"vip", b"1"))) == "Commit"
    assert log.submit(ALICE, ctl((Op.GRANT_WRITER_ROLE, S0, None, BOB),
                                 (Op.SET_KEY_TO_SPECIAL, S0, b"vip", None),
                                 (Op.GRANT_SPECIAL_WRITER_ROLE, S0, b"vip", CAROL))) == "Commit"
    # a stream writer may not write a special key; its special writer may, and only that key
    assert log.submit(BOB, writes((S0, b"vip", b"b"))) == f"WritePermissionDenied: stream: 0x{S0.hex()}, key: vip"
    assert log.submit(BOB, writes((S0, b"open", b"b"))) == "Commit"
    assert log.submit(CAROL, writes((S0, b"vip", b"c"))) == "Commit"
    assert log.submit(CAROL, writes((S0, b"open", b"c"))) == f"WritePermissionDenied: stream: 0x{S0.hex()}, key: open"
    with log.index.view() as view:
        assert view.is_special_key(S0, b"vip") and not view.is_special_key(S0, b"open")
        assert view.is_writer_of_key(CAROL, S0, b"vip") and view.special_writer_keys(CAROL, S0) == 1
        assert view.has_write_permission(CAROL, S0, b"vip") and not view.has_write_permission(CAROL, S0, b"open")
        assert view.has_write_permission(BOB, S0, b"open") and not view.has_write_permission(BOB, S0, b"vip")
        assert view.has_write_permission(ALICE, S0, b"vip")
    # a special writer of a key may grant that key to others; renouncing drops it
    assert log.submit(CAROL, ctl((Op.GRANT_SPECIAL_WRITER_ROLE, S0, b"vip", BOB))) == "Commit"
    assert log.submit(BOB, writes((S0, b"vip", b"b2"))) == "Commit"
    assert log.submit(CAROL, ctl((Op.RENOUNCE_SPECIAL_WRITER_ROLE, S0, b"vip", None))) == "Commit"
    assert log.submit(CAROL, writes((S0, b"vip", b"c2"))) == "SenderNoWritePermission"
    # back to normal: the stream's writers may write it again
    assert log.submit(ALICE, ctl((Op.SET_KEY_TO_NORMAL, S0, b"vip", None))) == "Commit"
    assert log.submit(BOB, writes((S0, b"vip", b"b3"))) == "Commit"
    assert value(log, S0, b"vip") == (log.seq - 1, b"b3")


def test_version_conflicts_on_reads_and_writes(log: Log) -> None:
    assert log.submit(ALICE, writes((S0, b"a", b"1"), (S0, b"b", b"1"))) == "Commit"  # tx 0
    assert log.submit(ALICE, writes((S0, b"a", b"2"))) == "Commit"  # tx 1
    stale = writes((S0, b"c", b"x"), version=0)
    stale.reads = [Read(S0, b"a")]
    assert log.submit(ALICE, stale) == "VersionConfliction"  # a was written at 1 > 0
    fresh = writes((S0, b"c", b"x"), version=1)
    fresh.reads = [Read(S0, b"a")]
    assert log.submit(ALICE, fresh) == "Commit"
    assert log.submit(ALICE, writes((S0, b"a", b"3"), version=0)) == "VersionConfliction"
    assert log.submit(ALICE, writes((S0, b"b", b"3"), version=0)) == "Commit"  # b was last written at 0
    assert value(log, S0, b"a") == (1, b"2") and value(log, S0, b"b") == (5, b"3")


def test_tags_mismatch_and_served_streams(tmp_path: Path) -> None:
    log = Log(tmp_path / "kv", StreamConfig(frozenset({S0, S1})))
    assert log.submit(ALICE, writes((S0, b"k", b"v"))) == "Commit"
    # a write to a stream the tags do not name
    assert log.submit(ALICE, writes((S1, b"k", b"v")), tags=tags(S0)) == "TagsMismatch"
    # a read of a stream the node does not serve
    data = writes((S0, b"k", b"v2"))
    data.reads = [Read(S2, b"x")]
    assert log.submit(ALICE, data) == "TagsMismatch"
    # an access-control op on a stream the tags do not name
    assert log.submit(ALICE, StreamData(controls=[AccessControl(Op.GRANT_WRITER_ROLE, S1, account=BOB)]),
                      tags=tags(S0)) == "TagsMismatch"
    # transactions of unserved streams, and files that are no KV transaction, are skipped: no result
    assert log.submit(ALICE, writes((S2, b"k", b"v"))) is None
    assert log.submit(ALICE, writes((S0, b"k", b"v"), (S2, b"k", b"v"))) is None
    assert log.submit(ALICE, b"just a file", tags=b"") is None
    with log.index.view() as view:
        assert view.result(log.seq - 1) is None and view.progress() == log.seq
        assert view.value(S0, b"k") == (0, b"v")


def test_duplicates_deletes_and_ordering(log: Log) -> None:
    assert log.submit(ALICE, writes((S0, b"b", b"1"), (S0, b"a", b"1"), (S0, b"b", b"2"), (S0, b"c", b"1"))) == "Commit"
    assert value(log, S0, b"b") == (0, b"2")  # the last write of a key in a transaction wins
    assert log.submit(ALICE, writes((S0, b"a", b""))) == "Commit"  # an empty value deletes
    assert value(log, S0, b"a") == (1, b"")
    with log.index.view() as view:
        assert [k for k, _, _ in view.scan(S0)] == [b"b", b"c"]
        assert [k for k, _, _ in view.scan(S0, version=0)] == [b"a", b"b", b"c"]
        assert [k for k, _, _ in view.scan(S0, forward=False)] == [b"c", b"b"]
        assert [k for k, _, _ in view.scan(S0, b"b", inclusive=False)] == [b"c"]
        assert [k for k, _, _ in view.scan(S0, b"b", inclusive=False, forward=False)] == []
        assert [k for k, _, _ in view.scan(S0, b"a")] == [b"b", b"c"]
        assert list(view.scan(S1)) == []


def test_long_keys_keep_their_order(log: Log) -> None:
    """Keys longer than lmdb allows are hashed; they still iterate in bytewise order."""
    prefix = b"p" * LONG_PREFIX
    long_keys = [prefix + suffix for suffix in (b"\x00", b"a", b"b" * 300, b"\xff", b"ab")]
    short = [b"p" * (LONG_PREFIX - 1), prefix, b"p" * 20 + b"q", b"o", b"q"]
    every = sorted(long_keys + short)
    assert log.submit(ALICE, writes(*((S0, k, b"v" + k[-1:]) for k in reversed(long_keys + short)))) == "Commit"
    with log.index.view() as view:
        assert [k for k, _, _ in view.scan(S0)] == every
        assert [k for k, _, _ in view.scan(S0, forward=False)] == every[::-1]
        for i, key in enumerate(every):
            assert [k for k, _, _ in view.scan(S0, key)] == every[i:]
            assert [k for k, _, _ in view.scan(S0, key, inclusive=False)] == every[i + 1:]
            assert [k for k, _, _ in view.scan(S0, key, forward=False)] == every[:i + 1][::-1]
            assert [k for k, _, _ in view.scan(S0, key, inclusive=False, forward=False)] == every[:i][::-1]
            assert view.value(S0, key) == (0, b"v" + key[-1:])
        assert view.value(S0, prefix + b"zz") is None


def test_malformed_data_is_a_recorded_failure(log: Log) -> None:
    assert log.submit(ALICE, writes((S0, b"k", b"v"))) == "Commit"
    version, empty, one = struct.pack(">Q", 1), struct.pack(">I", 0), struct.pack(">I", 1)
    invalid, too_long = "DataParseError: Invalid stream data", \
        "DataParseError: Stream read/write/access_control list too long"
    big = writes((S0, b"k", b"x" * 1000)).encode()
    cases = [
        (big[:-600], invalid),  # truncated inside a value, beyond what the sector padding supplies
        (version + struct.pack(">I", MAX_SET_SIZE + 1), too_long),  # a read list too long
        (version + empty + one + S0 + b"\xff\xff\xff" + b"k" * 64, invalid),  # a key longer than the data
        (version + empty + one + S0 + b"\0\0\0", invalid),  # an empty key
        (version + empty + empty + one + b"\x7f" + S0, invalid),  # an unknown access-control op
    ]
    for raw, expected in cases:
        before = log.index.digest()
        assert log.submit(ALICE, raw, tags=tags(S0)) == expected
        with log.index.view() as view:
            assert view.value(S0, b"k") == (0, b"v") and view.result(log.seq - 1) == expected
        assert log.index.digest() != before  # the result (and progress) were recorded, nothing else
    # 0G reads whole 256-byte sectors: one byte and its zero padding is an empty, valid transaction
    assert log.submit(ALICE, b"\1", tags=tags(S0)) == "Commit"
    assert log.submit(ALICE, writes((S0, b"k", b"after"))) == "Commit"  # and replay goes on


def test_restart_keeps_everything(log: Log) -> None:
    assert log.submit(ALICE, writes((S0, b"k", b"v"), (S1, b"x" * 600, b"long"))) == "Commit"
    assert log.submit(ALICE, StreamData(controls=[AccessControl(Op.GRANT_WRITER_ROLE, S0, account=BOB)])) == "Commit"
    digest = log.index.digest()
    log.reopen()
    assert log.index.digest() == digest and log.index.progress() == 2
    assert value(log, S1, b"x" * 600) == (0, b"long")
    with log.index.view() as view:
        assert view.is_writer_of_stream(BOB, S0) and view.holding() == sorted([S0, S1])
