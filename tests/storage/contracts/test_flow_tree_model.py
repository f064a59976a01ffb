"""The off-chain flow tree model (deaios.storage.flow_tree) against a brute-force tree over all leaves."""

from __future__ import annotations

import random

import pytest

from deaios.storage.flow_tree import FlowTree, next_align, submission_start, zeros
from deaios.storage.merkle import EMPTY_CHUNK_HASH, keccak256, node_heights


def _root(leaves: list[bytes]) -> bytes:
    while len(leaves) > 1:
        leaves = [keccak256(leaves[i] + leaves[i + 1]) for i in range(0, len(leaves), 2)]
    return leaves[0]


def test_zeros_and_alignment():
    assert zeros(0) == EMPTY_CHUNK_HASH == bytes.fromhex(
        "d397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5")
    assert zeros(1).hex() == "f73e6947d7d1628b9976a6e40d7b278a8a16405e96324a68df45b12a51b7cfde"
    assert zeros(63).hex() == "b48a92d40b61dc995ceecee4cded6415050dcece448b1e0b5e5b6a0e6981f3ef"
    assert [next_align(n, 3) for n in (0, 1, 8, 9)] == [0, 8, 8, 16]
    # [9, 7] after position 1: aligned to 512, would cross 1024 -> next segment
    assert submission_start(2, [9, 7]) == 1024
    assert submission_start(2, [9]) == 512
    assert submission_start(1, [12]) == 4096


def test_fresh_tree():
    tree = FlowTree()
    assert (tree.length, tree.height, tree.root()) == (1, 0, bytes(32))


@pytest.mark.parametrize("seed", range(6))
def test_model_matches_brute_force(seed):
    rng = random.Random(seed)
    tree = FlowTree()
    leaves = [bytes(32)]  # the placeholder at position 0
    for k in range(rng.randint(1, 7)):
        heights = node_heights(rng.randint(1, 600 * 256))
        start = submission_start(len(leaves), heights)
        leaves += [zeros(0)] * (start - len(leaves))
        nodes = []
        for h in heights:
            node_leaves = [rng.randbytes(32) for _ in range(1 << h)]
            leaves += node_leaves
            nodes.append((_root(node_leaves), h))
        placement = tree.append(nodes)
        assert placement.start == start and placement.sectors == sum(1 << h for h in heights)
        assert tree.length == len(leaves)
        size = 1 << (len(leaves) - 1).bit_length()
        assert tree.root() == _root(leaves + [zeros(0)] * (size - len(leaves))), (seed, k)
