"""Hypothesis stateful test: random sequences of KV transactions (batched writes and deletes, reads with
stale versions, access-control changes by random senders, malformed data, unserved streams) replayed
into the real lmdb index equal a simple in-memory model of 0G's KV node.

The model is written independently of deaios.kv: its own parser, and the state as 0G's SQL tables
(rows of (stream, key, version, value) and (stream, key, version, account, op)) queried the way 0G's
SQL statements query them. After every transaction, results, values (latest and at random versions),
iteration in both directions and every access-control query must agree; the index may also be closed
and reopened at any point.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from kvutil import ALICE, BOB, CAROL, S0, S1, S2, Log

from deaios.kv.codec import OP_FIELDS, AccessControl, Read, StreamData, Write, build_tags
from deaios.kv.replay import StreamConfig
from deaios.kv.store import LONG_PREFIX, key_hash

SERVED = (S0, S1)
ACCOUNTS = (ALICE, BOB, CAROL)
LONG = b"L" * LONG_PREFIX
KEYS = (b"a", b"b", b"ab", b"a\0", LONG + b"1", LONG + b"2", LONG)
ZERO = bytes(20)
MAX = (1 << 64) - 1


# -- the model -----------------------------------------------------------------------------------------------
class ParseError(Exception):
    def __init__(self, too_long: bool = False) -> None:
        self.too_long = too_long


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data + bytes(-len(data) % 256)  # 0G reads whole sectors
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ParseError()
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def count(self) -> int:
        n = struct.unpack(">I", self.take(4))[0]
        if n > 65536:
            raise ParseError(too_long=True)
        return n

    def key(self) -> bytes:
        n = int.from_bytes(self.take(3), "big")
        if n == 0:
            raise ParseError()
        return self.take(n)


class Model:
    """0G's KV node state and replay rules, as plainly as possible."""

    def __init__(self) -> None:
        self.t_stream: list[tuple[bytes, bytes, int, bytes]] = []  # stream, key, version, value
        self.t_acl: list[tuple[bytes, bytes, int, bytes, int]] = []  # stream, key, version, account, op
        self.results: dict[int, str] = {}

    # queries (0G's SQL statements, version <= v)
    def _last_op(self, v: int, stream: bytes, ops: tuple[int, ...], key: bytes | None = None,
                 account: bytes | None = None) -> int | None:
        rows = [r for r in self.t_acl if r[0] == stream and r[2] <= v and r[4] in ops
                and (key is None or r[1] == key) and (account is None or r[3] == account)]
        return max(rows, key=lambda r: r[2])[4] if rows else None

    def is_new_stream(self, stream: bytes, v: int = MAX) -> bool:
        return not any(r[0] == stream and r[2] <= v for r in self.t_acl)

    def is_admin(self, account: bytes, stream: bytes, v: int = MAX) -> bool:
        return self._last_op(v, stream, (0x00, 0x01), account=account) == 0x00

    def is_special_key(self, stream: bytes, key: bytes, v: int = MAX) -> bool:
        return self._last_op(v, stream, (0x10, 0x11), key=key) == 0x10

    def is_writer_of_key(self, account: bytes, stream: bytes, key: bytes, v: int = MAX) -> bool:
        return self._last_op(v, stream, (0x30, 0x31, 0x32), key=key, account=account) == 0x30

    def is_writer_of_stream(self, account: bytes, stream: bytes, v: int = MAX) -> bool:
        return self._last_op(v, stream, (0x20, 0x21, 0x22), account=account) == 0x20

    def special_writer_count(self, account: bytes, stream: bytes, v: int = MAX) -> int:
        mine = [r for r in self.t_acl if r[0] == stream and r[3] == account and r[2] <= v]
        latest = {}
        for r in mine:
            latest[r[1]] = max(latest.get(r[1], -1), r[2])
        return sum(1 for r in mine if latest[r[1]] == r[2] and r[4] == 0x30)

    def can_write(self, account: bytes, stream: bytes, v: int) -> bool:
        return (self.is_new_stream(stream, v) or self.is_admin(account, stream, v)
                or self.is_writer_of_stream(account, stream, v) or self.special_writer_count(account, stream, v) > 0)

    def has_write_permission(self, account: bytes, stream: bytes, key: bytes, v: int = MAX) -> bool:
        if self.is_new_stream(stream, v) or self.is_admin(account, stream, v):
            return True
        if self.is_special_key(stream, key, v):
            return self.is_writer_of_key(account, stream, key, v)
        return self.is_writer_of_stream(account, stream, v)

    def value(self, stream: bytes, key: bytes, v: int = MAX) -> tuple[int, bytes] | None:
        rows = [r for r in self.t_stream if r[0] == stream and r[1] == key and r[2] <= v]
        return max(rows, key=lambda r: r[2])[2:] if rows else None

    def latest_version(self, stream: bytes, key: bytes, before: int) -> int:
        found = self.value(stream, key, before)
        return found[0] if found else 0

    def scan(self, stream: bytes, v: int = MAX) -> list[tuple[bytes, int, bytes]]:
        keys = sorted({r[1] for r in self.t_stream if r[0] == stream and r[2] <= v})
        out = []
        for key in keys:
            version, data = self.value(stream, key, v)
            if data:
                out.append((key, version, data))
        return out

    # replay
    def apply(self, seq: int, sender: bytes, streams: list[bytes], data: bytes) -> None:
        if not streams or any(s not in SERVED for s in streams):
            return
        if not any(self.can_write(sender, s, seq) for s in streams):
            self.results[seq] = "SenderNoWritePermission"
            return
        self.results[seq] = self._replay(seq, sender, streams, data)

    def _replay(self, seq: int, sender: bytes, streams: list[bytes], data: bytes) -> str:
        r = Reader(data)
        try:
            version = struct.unpack(">Q", r.take(8))[0]
            reads = [(r.take(32), r.key()) for _ in range(r.count())]
        except ParseError as exc:
            return parse_error(exc)
        for stream, key in reads:
            if stream not in SERVED:
                return "TagsMismatch"
            if self.latest_version(stream, key, seq) > version:
                return "VersionConfliction"
        try:
            meta = []
            for _ in range(r.count()):
                stream, key = r.take(32), r.key()
                meta.append((stream, key, struct.unpack(">Q", r.take(8))[0]))
            writes = {}
            for stream, key, size in meta:
                writes[(stream, key)] = r.take(size)
        except ParseError as exc:
            return parse_error(exc)
        for (stream, key) in writes:
            if stream not in streams:
                return "TagsMismatch"
            if self.latest_version(stream, key, seq) > version:
                return "VersionConfliction"
            if not self.has_write_permission(sender, stream, key, seq):
                return f"WritePermissionDenied: stream: 0x{stream.hex()}, key: {show(key)}"
        ops, admin = {}, set()
        for stream in streams:
            if self.is_new_stream(stream, seq):
                ops[(0x00, stream, b"", sender)] = (0x00, stream, b"", sender)
                admin.add(stream)
            elif self.is_admin(sender, stream, seq):
                admin.add(stream)
        try:
            for _ in range(r.count()):
                op, stream = r.take(1)[0], r.take(32)
                if op not in OP_FIELDS:
                    raise ParseError()
                has_key, has_account = OP_FIELDS[op]
                key = r.key() if has_key else b""
                account = r.take(20) if has_account else (sender if op in (0x01, 0x22, 0x32) else ZERO)
                k = (op & 0xF0, stream, key, account)
                if op != 0x00 or (k not in ops and account != sender):
                    ops[k] = (op, stream, key, account)
        except ParseError as exc:
            return parse_error(exc)
        for op, stream, key, account in ops.values():
            if stream not in streams:
                return "TagsMismatch"
            ok = (stream in admin if op in (0x00, 0x10, 0x11, 0x21, 0x31) else
                  stream in admin or self.is_writer_of_stream(sender, stream, seq) if op == 0x20 else
                  stream in admin or self.is_writer_of_key(sender, stream, key, seq) if op == 0x30 else True)
            if not ok:
                names = {0x00: "GRANT_ADMIN_ROLE", 0x10: "SET_KEY_TO_SPECIAL", 0x11: "SET_KEY_TO_NORMAL",
                         0x20: "GRANT_WRITER_ROLE", 0x21: "REVOKE_WRITER_ROLE", 0x30: "GRANT_SPECIAL_WRITER_ROLE",
                         0x31: "REVOKE_SPECIAL_WRITER_ROLE"}
                return (f"AccessControlPermissionDenied: operation: {names[op]}, stream: 0x{stream.hex()}, "
                        f"key: {show(key)}, account: 0x{account.hex()}")
        for (stream, key), value in writes.items():
            self.t_stream.append((stream, key, seq, value))
        for op, stream, key, account in ops.values():
            self.t_acl.append((stream, key, seq, account, op))
        return "Commit"


def parse_error(exc: ParseError) -> str:
    return "DataParseError: " + ("Stream read/write/access_control list too long" if exc.too_long
                                 else "Invalid stream data")


def show(key: bytes) -> str:
    if not key:
        return "NONE"
    try:
        return key.decode()[:32]
    except UnicodeDecodeError:
        return "UNKNOWN"


# -- strategies ----------------------------------------------------------------------------------------------
streams = st.sampled_from((S0,) * 15 + (S1,) * 5 + (S2,))  # S2 is not served
keys = st.sampled_from(KEYS[:4] * 3 + KEYS[4:])
accounts = st.sampled_from(ACCOUNTS)
values = st.sampled_from((b"", b"v1", b"v2", b"\0" * 300))
reads = st.lists(st.builds(Read, st.sampled_from((S0, S1, S2)), keys), max_size=2)
writes = st.lists(st.builds(Write, streams, keys, values), max_size=3)
OPS = [0x00, 0x01, 0x10, 0x10, 0x11, 0x20, 0x20, 0x20, 0x21, 0x22, 0x30, 0x30, 0x30, 0x31, 0x32]


def _control(op: int) -> st.SearchStrategy[AccessControl]:
    has_key, has_account = OP_FIELDS[op]
    return st.builds(AccessControl, st.just(op), streams, keys if has_key else st.none(),
                     accounts if has_account else st.none())


controls = st.lists(st.one_of(*(_control(op) for op in OPS)), max_size=3)


def _control_in(op: int, stream: bytes) -> st.SearchStrategy[AccessControl]:
    has_key, has_account = OP_FIELDS[op]
    return st.builds(AccessControl, st.just(op), st.just(stream), st.sampled_from(KEYS[:2]) if has_key else st.none(),
                     accounts if has_account else st.none())


@st.composite
def transactions(draw: st.DrawFn, seq: int) -> tuple[bytes, list[bytes], bytes]:
    """(sender, stream ids of the tags, data)."""
    data = StreamData(draw(st.one_of(st.just(MAX), st.integers(max(seq - 3, 0), max(seq, 0)),
                                     st.integers(0, max(seq, 0)))),
                      draw(reads), draw(writes), draw(controls))
    tag_streams = data.stream_ids() or [S0]
    if draw(st.integers(0, 9)) == 0:  # tags that disagree with the data
        tag_streams = draw(st.lists(streams, min_size=1, max_size=2))
    raw = data.encode()
    mangle = draw(st.integers(0, 11))
    if mangle == 0 and len(raw) > 8:
        raw = raw[:draw(st.integers(1, len(raw) - 1))]
    elif mangle == 1:
        raw = raw + draw(st.binary(min_size=1, max_size=8))
    elif mangle == 2 and len(raw) > 12:
        pos = draw(st.integers(8, len(raw) - 4))
        raw = raw[:pos] + struct.pack(">I", draw(st.sampled_from((65537, 1 << 31, 3)))) + raw[pos + 4:]
    return draw(accounts), tag_streams, raw


def acl_table(model: Model) -> dict[bytes, bytes]:
    """The model's access-control rows as the index's acl_hist entries (fact || version -> op)."""
    out = {}
    for stream, key, version, account, op in model.t_acl:
        fact = {0x00: b"a" + stream + account, 0x10: b"s" + stream + key_hash(key),
                0x20: b"w" + stream + account, 0x30: b"k" + stream + account + key_hash(key)}[op & 0xF0]
        out[fact + struct.pack(">Q", version)] = bytes([op])
    return out


# -- the machine ---------------------------------------------------------------------------------------------
class KvReplayMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="kv-model-"))
        self.log = Log(self.tmp / "kv", StreamConfig(frozenset(SERVED)))
        self.model = Model()

    def teardown(self) -> None:
        if hasattr(self, "log"):
            self.log.index.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self, sender: bytes, tag_streams: list[bytes], raw: bytes) -> None:
        seq = self.log.seq
        result = self.log.submit(sender, raw, tags=build_tags(tag_streams))
        self.model.apply(seq, sender, tag_streams, raw)
        assert result == self.model.results.get(seq), (seq, result, self.model.results.get(seq))

    @rule(data=st.data(), count=st.integers(1, 8))
    def submit(self, data: st.DataObject, count: int) -> None:
        for _ in range(count):
            self._run(*data.draw(transactions(self.log.seq)))

    @rule(data=st.data(), count=st.integers(1, 4))
    def role_holder_submits(self, data: st.DataObject, count: int) -> None:
        """A transaction in S0 by an account holding a role there (admin, writer, special writer), with
        the role-changing ops: reaches the deeper access-control states more often than random ones."""
        for _ in range(count):
            holders = [a for a in ACCOUNTS if not self.model.is_new_stream(S0) and self.model.can_write(a, S0, MAX)]
            if not holders:
                return
            sender = data.draw(st.sampled_from(holders))
            focused = [_control_in(op, S0) for op in (0x10, 0x11, 0x20, 0x21, 0x22, 0x30, 0x30, 0x31, 0x32)]
            tx = StreamData(writes=data.draw(st.lists(st.builds(Write, st.just(S0), st.sampled_from(KEYS[:2]), values),
                                                      max_size=2)),
                            controls=data.draw(st.lists(st.one_of(*focused), max_size=2)))
            self._run(sender, [S0], tx.encode())

    @rule()
    def reopen(self) -> None:
        self.log.reopen()

    @precondition(lambda self: self.log.seq > 0)
    @rule(data=st.data())
    def read_at_a_version(self, data: st.DataObject) -> None:
        v = data.draw(st.integers(0, self.log.seq - 1))
        with self.log.index.view() as view:
            for stream in SERVED:
                assert list(view.scan(stream, version=v)) == self.model.scan(stream, v)
                for key in KEYS:
                    assert view.value(stream, key, v) == self.model.value(stream, key, v)
                for account in ACCOUNTS:
                    key = data.draw(keys)
                    assert view.is_admin(account, stream, v) == self.model.is_admin(account, stream, v)
                    assert view.is_writer_of_stream(account, stream, v) == self.model.is_writer_of_stream(account, stream, v)
                    assert view.is_writer_of_key(account, stream, key, v) == \
                        self.model.is_writer_of_key(account, stream, key, v)
                    assert view.has_write_permission(account, stream, key, v) == \
                        self.model.has_write_permission(account, stream, key, v)
                assert view.is_new_stream(stream, v) == self.model.is_new_stream(stream, v)

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "log"):
            return
        with self.log.index.view() as view:
            assert view.progress() == self.log.seq
            for stream in SERVED:
                expected = self.model.scan(stream)
                assert list(view.scan(stream)) == expected
                assert list(view.scan(stream, forward=False)) == expected[::-1]
                for key in KEYS:
                    assert view.value(stream, key) == self.model.value(stream, key)
                    after = [e for e in expected if e[0] > key]
                    assert list(view.scan(stream, key, inclusive=False)) == after
                    assert view.is_special_key(stream, key) == self.model.is_special_key(stream, key)
                for account in ACCOUNTS:
                    assert view.can_write(account, stream) == self.model.can_write(account, stream, MAX)
                    assert view.special_writer_keys(account, stream) == self.model.special_writer_count(account, stream)
                    assert view.is_admin(account, stream) == self.model.is_admin(account, stream)
            for seq in range(self.log.seq):
                assert view.result(seq) == self.model.results.get(seq)
            with view.txn.cursor(db=view.acl_hist) as cursor:
                assert dict(cursor) == acl_table(self.model)  # every access-control record, exactly


KvReplayMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=25, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow], database=None)
TestKvReplay = KvReplayMachine.TestCase
