"""Hypothesis properties: the contract accepts exactly the 0G client's split for a length.

Only `eth_call`s are made (no state change), so the session-scoped deployment is shared safely by all
examples despite Hypothesis running them inside one test function.
"""

from __future__ import annotations

import ape
from eth_abi import decode, encode
from eth_utils import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractCustomError

from storage_contracts_helpers import PRICE
from deaios.storage.flow_tree import submission_start
from deaios.storage.merkle import Submission, SubmissionNode, node_heights

VALIDATION_ERRORS = {"EmptySubmission", "TooManyNodes", "HeightTooLarge", "HeightsNotDecreasing",
                     "HeightSpanTooLarge", "LengthTooLarge", "LengthTooSmall"}
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

lengths = st.one_of(
    st.integers(1, 1 << 40),
    st.integers(1, 1 << 20),  # small files hit the < 16-sector rules
    st.integers(0, 40).map(lambda e: 1 << e),  # exact powers of two
)


def make(length: int, heights: list[int], roots: bytes) -> Submission:
    nodes = tuple(SubmissionNode(root=(roots[i:i + 1] * 32) or bytes(32), height=h)
                  for i, h in enumerate(heights))
    return Submission(length=length, tags=b"", nodes=nodes)


SUBMIT_SELECTOR = bytes.fromhex("bc8c11f8")
SUBMISSION_TYPE = "((uint256,bytes,(bytes32,uint256)[]),address)"


def try_submit(flow, sender, sub: Submission):
    """(accepted, (index, digest, startIndex, length) or error name) of an eth_call paying the full fee.

    The call is built by hand from 0G's selector and ABI type, and made with web3 directly (ape's
    `.call()` traces reverted calls, which is slow, and does not name custom errors of static calls).
    """
    value = sum(1 << n.height for n in sub.nodes) * PRICE
    data = SUBMIT_SELECTOR + encode([SUBMISSION_TYPE], [sub.as_abi(sender.address)])
    try:
        out = ape.chain.provider.web3.eth.call(
            {"from": sender.address, "to": flow.address, "value": value, "data": data})
    except ContractCustomError as err:
        selector = bytes.fromhex(str(err.data)[2:10])
        names = {keccak(text=e.selector)[:4]: e.name for e in flow.contract_type.errors}
        return False, names.get(selector, "0x" + selector.hex())
    return True, decode(["uint256", "bytes32", "uint256", "uint256"], out)


@SETTINGS
@given(length=lengths, roots=st.binary(min_size=4, max_size=4))
def test_library_submission_is_accepted(flow, alice, length, roots):
    heights = node_heights(length)
    sub = make(length, heights, roots)
    accepted, ret = try_submit(flow, alice, sub)
    assert accepted, (length, heights, ret)
    index, digest, start, sectors = ret
    assert (index, digest, start, sectors) == (0, sub.identity, submission_start(1, heights), sub.sectors)


def lower_bound(heights: list[int]) -> int:
    """Byte length just at/below which the split would be smaller (the interesting edge)."""
    sectors = sum(1 << h for h in heights)
    if sectors < 16:
        return (sectors - 1) * 256
    if len(heights) == 1:
        return (sectors - sectors // 16) * 256
    return (sectors - (1 << (heights[0] - 3))) * 256


@st.composite
def mutated(draw):
    length = draw(lengths)
    heights = node_heights(length)
    kind = draw(st.sampled_from(["drop_last", "add_node", "bump", "swap", "length_edge", "length_shift"]))
    new_length, new_heights = length, list(heights)
    if kind == "drop_last":  # a single node becomes an empty submission
        new_heights.pop()
    elif kind == "add_node":  # a smaller node, or a repeated/larger one
        new_heights.append(draw(st.integers(0, heights[-1] + 1)))
    elif kind == "bump":
        i = draw(st.integers(0, len(heights) - 1))
        new_heights[i] = max(0, new_heights[i] + draw(st.sampled_from([-1, 1, 2])))
    elif kind == "swap":  # no-op for a single node (then it must be accepted)
        new_heights[:2] = new_heights[:2][::-1]
    elif kind == "length_edge":
        sectors = sum(1 << h for h in heights)
        new_length = draw(st.sampled_from([lower_bound(heights), lower_bound(heights) + 1,
                                           sectors * 256, sectors * 256 + 1]))
    else:
        new_length = max(0, length + draw(st.integers(-(1 << 16), 1 << 16)))
    return new_length, new_heights, kind


@SETTINGS
@given(case=mutated(), roots=st.binary(min_size=5, max_size=5))
def test_contract_accepts_exactly_the_minimal_split(flow, alice, case, roots):
    length, heights, kind = case
    expected = length > 0 and node_heights(length) == heights
    accepted, info = try_submit(flow, alice, make(length, heights, roots))
    event(f"{kind}: {'accepted' if accepted else info}")
    assert accepted == expected, (kind, length, heights, info)
    if not accepted:
        assert info in VALIDATION_ERRORS, info
