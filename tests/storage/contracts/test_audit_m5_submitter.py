"""Audit M5: `Flow.submit` accepts any `submitter`, and the KV layer's access control trusts it.

The `Submit` event's `sender` is the submission's `submitter` field, which the caller fills in freely. The KV
node makes a stream's first writer its admin and checks every later write against the event's sender. So
mallory, who may write nothing in alice's stream, submits a KV transaction naming alice as submitter, and the
KV replay (deaios.kv, the same code the KV node runs) commits it as alice's write.

What must hold: a submission is recorded for the account that sent it (or one that authorized it), so that
mallory's transaction is refused on chain or replays as mallory's, and alice's value stays.
"""

from __future__ import annotations

from pathlib import Path

from deaios.kv.codec import StreamData, Write, stream_ids_from_tags
from deaios.kv.replay import Replayer, StreamConfig
from deaios.kv.store import KvIndex, TxRecord
from deaios.storage.merkle import FileMerkleTree
from deaios.testing import revert_name

STREAM = bytes([0x5E]) * 32
KEY = b"model/latest"


def _submit(flow, market, sender, submitter, data: StreamData) -> dict | None:
    """Submit the KV transaction `data` as `sender` naming `submitter`; its Submit event's fields, or None if
    the Flow refuses it."""
    raw = data.encode()
    sub = FileMerkleTree.from_bytes(raw).submission(data.tags())
    fee = sub.sectors * market.pricePerSector()
    if revert_name(flow, "submit", sub.as_abi(submitter.address), sender=sender, value=fee) is not None:
        return None
    receipt = flow.submit(sub.as_abi(submitter.address), sender=sender, value=fee)
    (ev,) = receipt.events.filter(flow.Submit)
    return {"seq": ev.submissionIndex, "sender": ev.sender, "raw": raw, "tags": data.tags()}


def _replay(index: KvIndex, events: list[dict]) -> list[str | None]:
    """Replay the submitted KV transactions in order, as the KV node does from the Submit events."""
    replayer, results = Replayer(StreamConfig()), []
    for seq, ev in enumerate(events):
        tx = TxRecord(seq, bytes.fromhex(ev["sender"][2:]), b"\0" * 32, len(ev["raw"]),
                      tuple(stream_ids_from_tags(ev["tags"])))
        with index.writer() as w:
            results.append(replayer.apply(w, tx, ev["raw"]))
    return results


def test_nobody_writes_as_another_account(flow, market, accounts, tmp_path: Path):
    alice, mallory = accounts[1], accounts[7]
    first = _submit(flow, market, alice, alice, StreamData(writes=[Write(STREAM, KEY, b"alice's model")]))
    assert first is not None and first["sender"] == alice.address
    forged = _submit(flow, market, mallory, alice, StreamData(writes=[Write(STREAM, KEY, b"mallory's model")]))
    index = KvIndex(tmp_path / "kv", sync=False)
    try:
        results = _replay(index, [first] + ([forged] if forged else []))
        with index.view() as view:
            value = view.value(STREAM, KEY)
    finally:
        index.close()
    print(f"\nM5: forged submission {'accepted, event sender ' + forged['sender'] if forged else 'refused'}; "
          f"KV results {results}; value now {value[1]!r}")
    assert forged is None or forged["sender"] == mallory.address
    assert value[1] == b"alice's model"
