"""The erasure code and share placement: any k of n shares rebuild a segment; overhead and placement."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deaios.storage.erasure import ErasureCode, data_segments, segment_lengths
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_SIZE, num_chunks, padded_chunks


def test_ten_nodes_tolerate_three_down_within_overhead() -> None:
    code = ErasureCode.for_nodes(10)
    assert (code.k, code.n) == (7, 10)
    assert code.overhead <= 1.5
    assert ErasureCode.for_nodes(1) == ErasureCode(1, 1)
    with pytest.raises(ValueError):
        ErasureCode.for_nodes(0)
    with pytest.raises(ValueError):
        ErasureCode(5, 4)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=1024), st.integers(min_value=2, max_value=16), st.integers(0, 2**32))
def test_any_k_shares_rebuild_the_segment(chunks: int, nodes: int, seed: int) -> None:
    rnd = random.Random(seed)
    code = ErasureCode.for_nodes(nodes)
    segment = rnd.randbytes(chunks * CHUNK_SIZE)
    shares = code.encode(segment)
    assert len(shares) == code.n and len({len(s) for s in shares}) == 1
    survivors = rnd.sample(range(code.n), code.k)
    assert code.decode({s: shares[s] for s in survivors}, len(segment)) == segment
    assert code.encode(segment, [survivors[0]]) == [shares[survivors[0]]]


def test_every_subset_of_seven_decodes() -> None:
    code = ErasureCode.for_nodes(10)
    segment = random.Random(1).randbytes(SEGMENT_SIZE)
    shares = code.encode(segment)
    for subset in itertools.combinations(range(10), 7):
        assert code.decode({s: shares[s] for s in subset}, SEGMENT_SIZE) == segment
    with pytest.raises(ValueError, match="need 7 shares"):
        code.decode({s: shares[s] for s in range(6)}, SEGMENT_SIZE)
    with pytest.raises(ValueError, match="wrong size"):
        code.decode({s: shares[s][:-1] for s in range(7)}, SEGMENT_SIZE)


def test_placement_gives_each_node_one_share_of_every_segment() -> None:
    code = ErasureCode.for_nodes(10)
    for segment in range(25):
        holders = [code.holder(segment, share) for share in range(code.n)]
        assert sorted(holders) == list(range(code.n))
        assert all(code.share_of(segment, code.holder(segment, s)) == s for s in range(code.n))
    # data shares rotate: over n consecutive segments every node holds k data shares
    assert all(sum(code.share_of(i, node) < code.k for i in range(code.n)) == code.k for node in range(code.n))


@given(st.integers(min_value=1, max_value=1 << 34))
def test_segment_lengths_cover_the_padded_file(size: int) -> None:
    lengths = segment_lengths(size)
    assert sum(lengths) == padded_chunks(num_chunks(size)) * CHUNK_SIZE
    assert all(length == SEGMENT_SIZE for length in lengths[:-1]) and 0 < lengths[-1] <= SEGMENT_SIZE
    assert 1 <= data_segments(size) <= len(lengths)
    assert (data_segments(size) - 1) * SEGMENT_SIZE < size <= data_segments(size) * SEGMENT_SIZE
