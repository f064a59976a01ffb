"""Properties of deaios.storage.merkle that do not need the SDK: splits, proofs, streaming, errors."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deaios.storage.merkle import (
    CHUNK_SIZE, EMPTY_CHUNK_HASH, SEGMENT_SIZE, EmptyFileError, FileMerkleTree, Proof, ProofError, chunk_proof,
    keccak256, node_heights, num_chunks, padded_chunks, tree_proof,
)
from Crypto.Hash import keccak as pycryptodome_keccak


def reference_keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


@given(st.binary(max_size=2000))
def test_native_keccak_matches_reference(data: bytes) -> None:
    assert keccak256(data) == reference_keccak(data)


def test_known_constants() -> None:
    assert EMPTY_CHUNK_HASH.hex() == "d397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5"
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@pytest.mark.parametrize(("size", "heights"), [
    (1, [0]), (256, [0]), (257, [1]), (262_145, [10, 7]), (1_000_000, [12]),
])
def test_node_heights_known_values(size: int, heights: list[int]) -> None:
    assert node_heights(size) == heights


@given(st.integers(min_value=1, max_value=1 << 45))
def test_split_is_minimal_and_valid(size: int) -> None:
    heights = node_heights(size)
    sectors = sum(1 << h for h in heights)
    chunks = num_chunks(size)
    assert 1 <= len(heights) <= 4
    assert all(a > b for a, b in zip(heights, heights[1:]))
    assert heights[0] - heights[-1] < 4
    assert sectors == padded_chunks(chunks) >= chunks
    # the contract's minimality rule: the length must not fit in the capacity of one step smaller
    last_capacity = (sectors - 1 if sectors < 16 else
                     sectors - (sectors >> 4) if len(heights) == 1 else
                     sectors - (1 << (heights[0] - 3)))
    assert last_capacity * CHUNK_SIZE < size <= sectors * CHUNK_SIZE


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=6 * SEGMENT_SIZE), st.integers(0, 2**32))
def test_streaming_and_proofs(size: int, seed: int) -> None:
    rnd = random.Random(seed)
    data = rnd.randbytes(size)
    tree = FileMerkleTree.from_bytes(data)
    assert FileMerkleTree.from_stream(io.BytesIO(data), size).root == tree.root
    assert tree.submission().data_root == tree.root
    padded = data + bytes(tree.padded_size - size)
    for index in range(tree.num_segments):
        tree.segment_proof(index).verify(tree.root, tree.segment_root(index), index, tree.num_segments)
    chunks = tree.padded_size // CHUNK_SIZE
    for chunk in {0, chunks - 1, rnd.randrange(chunks)}:
        segment = padded[chunk // 1024 * SEGMENT_SIZE:(chunk // 1024 + 1) * SEGMENT_SIZE]
        leaf = keccak256(padded[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE])
        chunk_proof(segment, chunk, tree).verify(tree.root, leaf, chunk, chunks)


def test_tampered_proofs_are_rejected() -> None:
    leaves = b"".join(keccak256(bytes([i])) for i in range(7))
    root = FileMerkleTree(7 * SEGMENT_SIZE, leaves, b"").root
    proof = tree_proof(leaves, 5)
    leaf = leaves[5 * 32:6 * 32]
    proof.verify(root, leaf, 5, 7)
    with pytest.raises(ProofError, match="position"):
        proof.verify(root, leaf, 4, 7)
    with pytest.raises(ProofError, match="content"):
        proof.verify(root, keccak256(b"x"), 5, 7)
    with pytest.raises(ProofError, match="root mismatch"):
        proof.verify(keccak256(b"y"), leaf, 5, 7)
    forged = Proof(proof.lemma[:1] + (keccak256(b"z"),) + proof.lemma[2:], proof.path)
    with pytest.raises(ProofError, match="hash to the root"):
        forged.verify(root, leaf, 5, 7)
    with pytest.raises(ProofError, match="malformed"):
        Proof(proof.lemma[:-1], proof.path).verify(root, leaf, 5, 7)
    with pytest.raises(ProofError, match="malformed"):
        Proof.from_json({"lemma": ["0x12"], "path": []})
    with pytest.raises(ProofError, match="malformed"):
        Proof.from_json({"lemma": [], "path": [1]})


def test_empty_input_is_rejected() -> None:
    with pytest.raises(EmptyFileError):
        FileMerkleTree.from_bytes(b"")
    with pytest.raises(EmptyFileError):
        node_heights(0)


def test_file_shrinking_while_read_is_detected() -> None:
    with pytest.raises(ValueError, match="shrank"):
        FileMerkleTree.from_stream(io.BytesIO(b"abc"), 1000)
