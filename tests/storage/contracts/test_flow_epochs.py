"""Flow mining epochs: NewEpoch, context digests, epoch ranges (Flow deployed with blocksPerEpoch = 5)."""

from __future__ import annotations

import os

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from storage_contracts_helpers import PRICE, SMALL_EPOCH, random_submission

EMPTY_HASH = keccak(b"")


def b32(value) -> bytes:
    return bytes(value).rjust(32, b"\0")


def mine_until_next_block_is(target: int) -> None:
    """Mine so that the next transaction lands in block `target`."""
    height = ape.chain.blocks.height
    assert height + 1 <= target, (height, target)
    if target - height - 1:
        ape.chain.mine(target - height - 1)


def submit(flow, sender, sub):
    return flow.submit(sub.as_abi(sender.address), sender=sender, value=sub.sectors * PRICE)


def test_epoch_sealed_with_context_digest(epoch_flow, alice, rng):
    flow = epoch_flow
    fb = flow.firstBlock()
    assert flow.blocksPerEpoch() == SMALL_EPOCH
    receipt = submit(flow, alice, random_submission(5000, rng))
    assert not receipt.events.filter(flow.NewEpoch)
    assert flow.epoch() == 0

    root = b32(flow.computeFlowRoot())
    length = flow.tree()[0]
    mine_until_next_block_is(fb + SMALL_EPOCH + 2)  # epoch 1 ends at block fb + 5
    receipt = flow.makeContext(sender=alice)
    events = receipt.events.filter(flow.NewEpoch)
    assert len(events) == 1
    block_digest = bytes(ape.chain.blocks[fb + SMALL_EPOCH].hash)
    digest = keccak(encode(["bytes32", "bytes32", "uint256"], [block_digest, root, length]))
    ev = events[0]
    assert ev.sender == alice.address and ev.index == 1
    assert b32(ev.startMerkleRoot) == root and ev.submissionIndex == 1 and ev.flowLength == length
    assert b32(ev.context) == digest
    assert receipt.logs[0]["topics"][0].hex().removeprefix("0x") == (
        "bc8a3fd82465d43f1709e44ed882f7e1af0147274196ef1ec009f5d52ff4e993")

    ctx = flow.getContext()
    assert (ctx.epoch, ctx.mineStart) == (1, fb + SMALL_EPOCH)
    assert (b32(ctx.flowRoot), ctx.flowLength) == (root, length)
    assert b32(ctx.blockDigest) == block_digest and b32(ctx.digest) == digest
    assert flow.epoch() == 1
    assert tuple(flow.getEpochRange(digest)) == (0, length)
    assert tuple(flow.getEpochRange(b"\x01" * 32)) == (0, 0)
    assert flow.epochStartPosition() == length
    assert flow.epochRangeHistoryLength() == 1
    hist = flow.getEpochRangeHistory(0)
    assert (hist.start, hist.end, b32(hist.digest)) == (0, length, digest)

    # Nothing more to seal in the same epoch.
    assert not flow.makeContext(sender=alice).events.filter(flow.NewEpoch)

    # A submission after the next epoch ended seals it first (its root excludes the new submission).
    second = random_submission(300, rng)
    mine_until_next_block_is(fb + 2 * SMALL_EPOCH + 1)
    receipt = submit(flow, alice, second)
    [ev2] = receipt.events.filter(flow.NewEpoch)
    assert ev2.index == 2 and ev2.flowLength == length and ev2.submissionIndex == 1
    assert tuple(flow.getEpochRange(bytes(ev2.context))) == (length, length)  # empty range
    new_length = flow.tree()[0]

    # Query the epoch covering a position.
    rng0 = flow.queryContextAtPosition.call(0)
    assert (rng0.start, rng0.end, b32(rng0.digest)) == (0, length, digest)
    with ape.reverts(flow.PositionOutOfRange, position=new_length, length=new_length):
        flow.queryContextAtPosition(new_length, sender=alice)
    with ape.reverts(flow.NoContextForPosition, position=new_length - 1):
        flow.queryContextAtPosition(new_length - 1, sender=alice)


def test_make_context_fixed_times_and_with_result(epoch_flow, alice):
    flow = epoch_flow
    fb = flow.firstBlock()
    mine_until_next_block_is(fb + 4 * SMALL_EPOCH + 1)  # epochs 1..4 have ended
    receipt = flow.makeContextFixedTimes(3, sender=alice)
    assert [e.index for e in receipt.events.filter(flow.NewEpoch)] == [1, 2, 3]
    ctx = flow.makeContextWithResult.call(sender=alice)
    assert ctx.epoch == 4 and ctx.mineStart == fb + 4 * SMALL_EPOCH
    receipt = flow.makeContextWithResult(sender=alice)
    assert [e.index for e in receipt.events.filter(flow.NewEpoch)] == [4]
    assert flow.epoch() == 4
    assert not flow.makeContextFixedTimes(5, sender=alice).events.filter(flow.NewEpoch)


@pytest.mark.skipif(not os.environ.get("DEAIOS_SLOW_TESTS"),
                    reason="mines 8200 blocks (~1 min on Anvil); set DEAIOS_SLOW_TESTS=1")
def test_epoch_older_than_blockhash_window_gets_empty_digest(epoch_flow, alice, rng):
    flow = epoch_flow
    submit(flow, alice, random_submission(1000, rng))
    for _ in range(9):  # anvil_mine slows down superlinearly with big counts
        ape.chain.mine(920)
    receipt = flow.makeContextFixedTimes(2, sender=alice)
    events = receipt.events.filter(flow.NewEpoch)
    assert [e.index for e in events] == [1, 2]
    assert all(b32(e.context) == EMPTY_HASH for e in events)
    ctx = flow.getContext()
    assert b32(ctx.digest) == EMPTY_HASH and b32(ctx.blockDigest) == EMPTY_HASH
    assert flow.epochStartPosition() == 0  # no range recorded for unverifiable epochs
    assert flow.epochRangeHistoryLength() == 0


def test_default_deployment_never_seals_epochs(flow, alice, rng):
    ape.chain.mine(50)
    assert not flow.makeContext(sender=alice).events.filter(flow.NewEpoch)
    submit(flow, alice, random_submission(10, rng))
    assert flow.epoch() == 0
