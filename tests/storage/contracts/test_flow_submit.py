"""Flow.submit / batchSubmit: ABI compatibility, validation errors, fees, refunds, events, flow roots."""

from __future__ import annotations

import random

import ape
import pytest
from eth_utils import keccak

from deaios.storage.flow_tree import FlowTree, submission_start
from deaios.storage.merkle import FileMerkleTree, keccak256
from storage_contracts_helpers import PRICE, custom_submission, random_submission

ZERO_ADDRESS = "0x" + "00" * 20

SUBMIT_SIG = "submit(((uint256,bytes,(bytes32,uint256)[]),address))"
BATCH_SIG = "batchSubmit(((uint256,bytes,(bytes32,uint256)[]),address)[])"
SUBMIT_EVENT_SIG = "Submit(address,bytes32,uint256,uint256,uint256,(uint256,bytes,(bytes32,uint256)[]))"
NEW_EPOCH_SIG = "NewEpoch(address,uint256,bytes32,uint256,uint256,bytes32)"
SUBMIT_TOPIC = "167ce04d2aa1981994d3a31695da0d785373335b1078cec239a1a3a2c7675555"
NEW_EPOCH_TOPIC = "bc8a3fd82465d43f1709e44ed882f7e1af0147274196ef1ec009f5d52ff4e993"


def b32(value) -> bytes:
    return bytes(value).rjust(32, b"\0") if not isinstance(value, str) else bytes.fromhex(value[2:])


def fee(sub) -> int:
    return sub.sectors * PRICE


# ---------------------------------------------------------------- ABI compatibility with 0G's Flow


def test_selectors_and_topics_match_0g(flow):
    assert keccak(text=SUBMIT_SIG)[:4].hex() == "bc8c11f8"
    assert keccak(text=BATCH_SIG)[:4].hex() == "49aa3395"
    assert flow.submit.abis[0].selector == SUBMIT_SIG
    assert flow.batchSubmit.abis[0].selector == BATCH_SIG
    assert flow.contract_type.mutable_methods["submit"].selector == SUBMIT_SIG
    assert keccak(text=SUBMIT_EVENT_SIG).hex() == SUBMIT_TOPIC
    assert keccak(text=NEW_EPOCH_SIG).hex() == NEW_EPOCH_TOPIC
    assert flow.Submit.abi.selector == SUBMIT_EVENT_SIG
    assert flow.NewEpoch.abi.selector == NEW_EPOCH_SIG
    # A few 0G view selectors the SDK and nodes use.
    views = {m.name: keccak(text=m.selector)[:4].hex() for m in flow.contract_type.view_methods}
    assert views["market"] == "80f55605"
    assert views["getContext"] == "127f0f07"
    assert views["numSubmissions"] == "77e19824"
    assert views["getFlowRootByTxSeq"] == "6d7ad0fc"
    assert views["tree"] == "fd54b228"
    assert views["getEpochRange"] == "7d590708"


def test_initial_state(flow, market, deployment, owner):
    assert flow.market() == market.address
    assert market.flow() == flow.address
    assert market.pricePerSector() == PRICE
    assert flow.numSubmissions() == 0 and flow.submissionIndex() == 0
    assert flow.epoch() == 0
    assert flow.blocksPerEpoch() == 1_000_000_000
    assert tuple(flow.tree()) == (1, 0)
    assert b32(flow.computeFlowRoot()) == bytes(32)
    ctx = flow.getContext()
    assert ctx.epoch == 0 and ctx.flowLength == 1 and ctx.mineStart == flow.firstBlock()
    assert b32(ctx.digest) == keccak(b"")
    assert deployment["chain_id"] == ape.chain.chain_id
    assert flow.hasRole(flow.DEFAULT_ADMIN_ROLE(), owner) and flow.hasRole(flow.PAUSER_ROLE(), owner)


# ---------------------------------------------------------------- a submission end to end


def test_submit_file_event_and_returns(flow, market, alice, bob):
    data = random.Random(7).randbytes(262_145)  # two nodes: heights 10 and 7
    sub = FileMerkleTree.from_bytes(data).submission(b"\x01\x02")
    assert [n.height for n in sub.nodes] == [10, 7]
    # Static call returns (index, digest, startIndex, length).
    ret = flow.submit.call(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    assert (ret.index, b32(ret.digest), ret.startIndex, ret.length) == (0, sub.identity, 1024, 1152)

    before = ape.chain.provider.get_balance(market.address)
    with ape.reverts(flow.SubmitterNotSender, submitter=bob.address, sender=alice.address):
        flow.submit(sub.as_abi(bob.address), sender=alice, value=fee(sub))  # recorded for its sender only
    receipt = flow.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    assert ape.chain.provider.get_balance(market.address) - before == fee(sub)
    assert ape.chain.provider.get_balance(flow.address) == 0

    events = receipt.events.filter(flow.Submit)
    assert len(events) == 1
    ev = events[0]
    assert ev.sender == alice.address  # the submitter, which must be msg.sender
    assert b32(ev.identity) == sub.identity == keccak256(b"".join(n.root for n in sub.nodes))
    assert ev.submissionIndex == 0
    # position 1 aligned to 2^10 = 1024 (no segment crossing after alignment)
    assert ev.startPos == 1024
    assert ev.length == 1152 == sub.sectors
    length, tags, nodes = ev.submission  # decoded as a plain sequence
    assert length == 262_145
    assert bytes(tags) == b"\x01\x02"
    assert [(b32(root), height) for root, height in nodes] == [(n.root, n.height) for n in sub.nodes]
    # topic layout: topic0, sender, identity
    raw = receipt.logs[0]
    assert raw["topics"][0].hex().removeprefix("0x") == SUBMIT_TOPIC

    fee_events = receipt.events.filter(market.FeeCharged)
    assert len(fee_events) == 1
    assert (fee_events[0].beforeLength, fee_events[0].uploadSectors, fee_events[0].paddingSectors,
            fee_events[0].amount) == (1, 1152, 1023, fee(sub))

    model = FlowTree()
    model.append_submission(sub)
    assert flow.numSubmissions() == 1
    assert tuple(flow.tree()) == (model.length, model.height) == (2176, 12)
    assert b32(flow.getFlowRootByTxSeq(0)) == model.root() == b32(flow.computeFlowRoot())
    assert b32(flow.getFlowRootByTxSeq(1)) == bytes(32)


# ---------------------------------------------------------------- invalid submissions


@pytest.mark.parametrize(
    "length,heights,error,args",
    [
        (256, [], "EmptySubmission", {}),
        (10**9, [5, 4, 3, 2, 1], "TooManyNodes", {"count": 5}),
        (256, [64], "HeightTooLarge", {"height": 64}),
        (5 * 256, [0, 2], "HeightsNotDecreasing", {"index": 1}),
        (5 * 256, [2, 2], "HeightsNotDecreasing", {"index": 1}),
        (1100 * 256, [10, 5], "HeightSpanTooLarge", {"firstHeight": 10, "lastHeight": 5}),
        (257, [0], "LengthTooLarge", {"length": 257, "maxLength": 256}),
        (0, [0], "LengthTooSmall", {"length": 0, "minLengthExclusive": 0}),
        (512, [2], "LengthTooSmall", {"length": 512, "minLengthExclusive": 768}),
        # 1000 sectors fit one 1024-sector node: [10, 7] is not minimal.
        (1000 * 256, [10, 7], "LengthTooSmall", {"length": 256000, "minLengthExclusive": 1024 * 256}),
        # single node of 2^12 sectors needs > 2^12 - 2^8 sectors of data
        (3840 * 256, [12], "LengthTooSmall", {"length": 3840 * 256, "minLengthExclusive": 3840 * 256}),
    ],
)
def test_invalid_submissions_revert_with_specific_errors(flow, alice, rng, length, heights, error, args):
    sub = custom_submission(length, heights, rng)
    with ape.reverts(getattr(flow, error), **args):
        flow.submit(sub.as_abi(alice.address), sender=alice, value=10**18)


def test_zero_submitter_rejected(flow, alice, rng):
    sub = random_submission(1000, rng)
    with ape.reverts(flow.ZeroSubmitter):
        flow.submit(sub.as_abi(ZERO_ADDRESS), sender=alice, value=fee(sub))


def test_boundary_lengths_accepted(flow, alice, rng):
    # Exactly the bounds of each split are accepted.
    for length in (1, 256, 257, 15 * 256, 16 * 256 + 1, 1024 * 256, 1024 * 256 + 1, 4096 * 256):
        sub = random_submission(length, rng)
        ret = flow.submit.call(sub.as_abi(alice.address), sender=alice, value=fee(sub))
        assert ret[3] == sub.sectors


# ---------------------------------------------------------------- fees


def test_underpayment_reverts_not_enough_fee(flow, alice, rng):
    sub = random_submission(5000, rng)  # 20 sectors -> [4, 2]
    assert sub.sectors == 20
    with ape.reverts(flow.NotEnoughFee, price=PRICE, amount=20, paid=fee(sub) - 1):
        flow.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub) - 1)
    with ape.reverts(flow.NotEnoughFee, price=PRICE, amount=20, paid=0):
        flow.submit(sub.as_abi(alice.address), sender=alice)


def test_overpayment_is_credited_and_withdrawable(flow, market, alice, bob, rng):
    sub = random_submission(300, rng)  # 2 sectors
    extra = 12345
    receipt = flow.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub) + extra)
    assert ape.chain.provider.get_balance(market.address) == fee(sub)
    assert ape.chain.provider.get_balance(flow.address) == extra
    assert flow.refundOf(alice) == extra
    credited = receipt.events.filter(flow.RefundCredited)
    assert credited[0].account == alice.address and credited[0].amount == extra

    with ape.reverts(flow.NothingToWithdraw):
        flow.withdrawRefund(bob.address, sender=bob)
    with ape.reverts(flow.ZeroAddress):
        flow.withdrawRefund(ZERO_ADDRESS, sender=alice)
    bob_before = bob.balance
    receipt = flow.withdrawRefund(bob.address, sender=alice)
    assert bob.balance - bob_before == extra
    assert flow.refundOf(alice) == 0
    assert ape.chain.provider.get_balance(flow.address) == 0
    ev = receipt.events.filter(flow.RefundWithdrawn)[0]
    assert (ev.account, ev.to, ev.amount) == (alice.address, bob.address, extra)


def test_price_change_applies_to_next_submission(flow, market, owner, alice, rng):
    market.setPricePerSector(7, sender=owner)
    sub = random_submission(256 * 3, rng)  # 3 sectors -> [1, 0]
    flow.submit(sub.as_abi(alice.address), sender=alice, value=21)
    assert ape.chain.provider.get_balance(market.address) == 21
    market.setPricePerSector(0, sender=owner)
    flow.submit(random_submission(10, rng).as_abi(alice.address), sender=alice)  # free
    assert market.totalFees() == 21


# ---------------------------------------------------------------- batches


def test_batch_submit(flow, market, alice, bob, rng):
    subs = [random_submission(n, rng) for n in (100, 5000, 300_000, 2000)]
    total = sum(fee(s) for s in subs)
    args = [s.as_abi(alice.address) for s in subs]

    indexes, digests, starts, lengths = flow.batchSubmit.call(args, sender=alice, value=total)
    assert list(indexes) == [0, 1, 2, 3]
    assert [b32(d) for d in digests] == [s.identity for s in subs]
    assert list(lengths) == [s.sectors for s in subs]

    model = FlowTree()
    placements = [model.append_submission(s) for s in subs]
    assert list(starts) == [p.start for p in placements]

    with ape.reverts(flow.NotEnoughFee, price=PRICE, amount=sum(s.sectors for s in subs), paid=total - 1):
        flow.batchSubmit(args, sender=alice, value=total - 1)

    receipt = flow.batchSubmit(args, sender=alice, value=total)
    events = receipt.events.filter(flow.Submit)
    assert [e.submissionIndex for e in events] == [0, 1, 2, 3]
    assert [e.sender for e in events] == [alice.address] * 4
    with ape.reverts(flow.SubmitterNotSender, submitter=bob.address, sender=alice.address):
        flow.batchSubmit(args[:1] + [subs[1].as_abi(bob.address)], sender=alice, value=total)
    assert [e.startPos for e in events] == [p.start for p in placements]
    fees = receipt.events.filter(market.FeeCharged)
    assert [(f.beforeLength, f.uploadSectors, f.paddingSectors) for f in fees] == [
        (p.before_length, p.sectors, p.padding) for p in placements]
    assert ape.chain.provider.get_balance(market.address) == total == market.totalFees()
    assert flow.numSubmissions() == 4
    # The roots per tx seq are those of the model after each submission.
    replay = FlowTree()
    for i, s in enumerate(subs):
        replay.append_submission(s)
        assert b32(flow.getFlowRootByTxSeq(i)) == replay.root()


def test_batch_with_one_invalid_submission_reverts(flow, alice, rng):
    good = random_submission(100, rng)
    bad = custom_submission(100, [1], rng)  # 1 sector of data in a 2-sector node
    with ape.reverts(flow.LengthTooSmall):
        flow.batchSubmit([good.as_abi(alice.address), bad.as_abi(alice.address)], sender=alice, value=10**18)


def test_empty_batch_credits_value(flow, alice):
    flow.batchSubmit([], sender=alice, value=5)
    assert flow.refundOf(alice) == 5 and flow.numSubmissions() == 0


# ---------------------------------------------------------------- flow tree vs the off-chain model


def _submit_and_compare(flow, sender, subs):
    model = FlowTree()
    for i, sub in enumerate(subs):
        placement = model.append_submission(sub)
        receipt = flow.submit(sub.as_abi(sender.address), sender=sender, value=fee(sub))
        ev = receipt.events.filter(flow.Submit)[0]
        assert ev.startPos == placement.start, (i, [n.height for n in sub.nodes])
        assert tuple(flow.tree()) == (model.length, model.height)
        assert b32(flow.getFlowRootByTxSeq(i)) == model.root(), i
    return model


def test_flow_roots_match_model_with_padding(flow, alice, rng):
    lengths = [
        1,             # 1 sector at position 1
        600 * 256,     # [9, 7]: aligned to 512, would cross 1024 -> padded to 1024
        200 * 256,     # [7, 6]: at 1664, fits in the segment
        700 * 256,     # [9, 8]: at 2048 (aligned), fits exactly into the segment? 768 sectors
        3 * 256,       # [1, 0] small
        1024 * 256 + 1,  # [10, 6]: big node aligned to 1024
        5 * 256,       # [2, 0]
        90_000 * 256,  # [16, 13, 12]: large, aligned to 2^16
        1,
    ]
    subs = [random_submission(n, rng) for n in lengths]
    model = _submit_and_compare(flow, alice, subs)
    assert model.length == flow.tree()[0]


def test_flow_root_with_padding_matches_brute_force_leaves(flow, alice):
    # Real file data: compute the expected root from the sectors themselves (independent of the model).
    data1 = bytes(range(256)) * 3          # 3 sectors, [1, 0]
    data2 = random.Random(3).randbytes(600 * 256)  # [9, 7] -> padded to the next segment
    subs = [FileMerkleTree.from_bytes(d).submission() for d in (data1, data2)]
    for s in subs:
        flow.submit(s.as_abi(alice.address), sender=alice, value=fee(s))

    zero_leaf = keccak256(bytes(256))
    leaves = [bytes(32)]  # placeholder
    for d, s in zip((data1, data2), subs):
        padded = d + bytes(s.sectors * 256 - len(d))
        # alignment: first node aligned to its size, pad to segment if crossing
        pos = submission_start(len(leaves), [n.height for n in s.nodes])
        leaves += [zero_leaf] * (pos - len(leaves))
        leaves += [keccak256(padded[i:i + 256]) for i in range(0, len(padded), 256)]
    assert len(leaves) == flow.tree()[0]
    size = 1 << (len(leaves) - 1).bit_length()
    level = leaves + [zero_leaf] * (size - len(leaves))
    while len(level) > 1:
        level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert b32(flow.computeFlowRoot()) == level[0]


def test_many_random_submissions_match_model(flow, alice):
    rng = random.Random(2024)
    lengths = [rng.choice([rng.randint(1, 4096), rng.randint(1, 1 << 20), rng.randint(1, 1 << 27)])
               for _ in range(20)]
    _submit_and_compare(flow, alice, [random_submission(n, rng) for n in lengths])


# ---------------------------------------------------------------- launch delay, pause, roles


def test_not_launched_before_first_block(project, owner, alice, rng):
    from storage_contracts_helpers import deploy_module
    d = deploy_module.deploy_storage(owner, project, deploy_delay=10)
    delayed = project.Flow.at(d["flow"])
    sub = random_submission(10, rng)
    with ape.reverts(delayed.NotLaunched, firstBlock=d["first_block"]):
        delayed.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    ape.chain.mine(10)
    delayed.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    assert delayed.numSubmissions() == 1


def test_pause_and_roles(flow, owner, alice, bob, rng):
    sub = random_submission(10, rng)
    role = flow.PAUSER_ROLE()
    with ape.reverts(flow.AccessControlUnauthorizedAccount, account=alice.address, neededRole=role):
        flow.pause(sender=alice)
    receipt = flow.pause(sender=owner)
    assert receipt.events.filter(flow.Paused)[0].account == owner.address
    assert flow.paused()
    with ape.reverts(flow.EnforcedPause):
        flow.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    with ape.reverts(flow.EnforcedPause):
        flow.batchSubmit([sub.as_abi(alice.address)], sender=alice, value=fee(sub))
    with ape.reverts(flow.EnforcedPause):
        flow.makeContext(sender=alice)

    # The admin can delegate pausing.
    flow.grantRole(role, bob.address, sender=owner)
    with ape.reverts(flow.AccessControlUnauthorizedAccount):
        flow.unpause(sender=alice)
    flow.unpause(sender=bob)
    assert not flow.paused()
    flow.submit(sub.as_abi(alice.address), sender=alice, value=fee(sub))
    with ape.reverts(flow.AccessControlUnauthorizedAccount):
        flow.grantRole(role, alice.address, sender=bob)


def test_constructor_checks(project, owner, market):
    with ape.reverts(project.Flow.ZeroAddress):
        project.Flow.deploy(ZERO_ADDRESS, 10, 0, owner.address, sender=owner)
    with ape.reverts(project.Flow.ZeroAddress):
        project.Flow.deploy(market.address, 10, 0, ZERO_ADDRESS, sender=owner)
    with ape.reverts(project.Flow.InvalidBlocksPerEpoch):
        project.Flow.deploy(market.address, 0, 0, owner.address, sender=owner)
