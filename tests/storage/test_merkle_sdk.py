"""Cross-check deaios.storage.merkle against the official 0G TypeScript SDK (the test oracle).

Every file below is written to disk, hashed by the SDK (tests/sdk/zg_sdk_oracle.js, one node process for
all of them) and by our library; roots, submission nodes and segment proofs must be byte-identical.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_SIZE, EmptyFileError, FileMerkleTree, Proof

pytestmark = pytest.mark.sdk

ORACLE = Path(__file__).resolve().parents[1] / "sdk" / "zg_sdk_oracle.js"
SEG = SEGMENT_SIZE

EDGE_SIZES = [
    1, 2, 31, 32, 33, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097,
    16 * CHUNK_SIZE - 1, 16 * CHUNK_SIZE, 16 * CHUNK_SIZE + 1, 17 * CHUNK_SIZE + 1,
    SEG - 1, SEG, SEG + 1, SEG + CHUNK_SIZE + 1,
    2 * SEG - 1, 2 * SEG, 2 * SEG + 1, 3 * SEG, 3 * SEG + 7,
    (1024 + 512 + 128 + 64) * CHUNK_SIZE,  # four nodes: 10, 9, 7, 6
    (1024 + 512 + 256 + 128) * CHUNK_SIZE - 100,
    1_000_000, 4 * SEG + 1, 7 * SEG + 12345,
    33 * SEG + 1,  # large: 8.25 MiB, 34 segments
]
RANDOM_SIZES = sorted(random.Random(20261125).sample(range(1, 12 * SEG), 40))


def sdk_describe(paths: list[Path]) -> dict[str, dict]:
    out = subprocess.run(["node", str(ORACLE), *map(str, paths)], check=True, capture_output=True,
                         text=True, cwd=ORACLE.parents[2]).stdout
    return {obj["path"]: obj for obj in map(json.loads, out.splitlines())}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict]]:
    if shutil.which("node") is None:
        pytest.fail("node is required for the SDK cross-check (run `make setup`)")
    folder = tmp_path_factory.mktemp("sdk-corpus")
    rng = random.Random(0x0DEA105)
    paths = []
    for size in sorted(set(EDGE_SIZES + RANDOM_SIZES)):
        path = folder / f"file-{size}.bin"
        path.write_bytes(rng.randbytes(size))
        paths.append(path)
    zero = folder / "zeros-3seg.bin"  # all-zero data: leaves collide with padding leaves
    zero.write_bytes(bytes(3 * SEG + 1))
    paths.append(zero)
    described = sdk_describe(paths)
    return [(p, described[str(p)]) for p in paths]


def test_roots_and_submissions_match_sdk(corpus: list[tuple[Path, dict]]) -> None:
    assert len(corpus) > 60
    for path, sdk in corpus:
        tree = FileMerkleTree.from_path(path)
        sub = tree.submission()
        assert tree.size == sdk["size"]
        assert "0x" + tree.root.hex() == sdk["root"], path.name
        assert sub.to_json()["nodes"] == sdk["submission"]["nodes"], path.name
        assert sub.length == sdk["submission"]["length"]
        assert tree.num_segments == sdk["numSegmentsPadded"]
        assert sub.data_root == tree.root


def test_segment_proofs_match_sdk(corpus: list[tuple[Path, dict]]) -> None:
    for path, sdk in corpus:
        tree = FileMerkleTree.from_path(path)
        assert len(sdk["segmentProofs"]) == tree.num_segments
        for index, expected in enumerate(sdk["segmentProofs"]):
            proof = tree.segment_proof(index)
            assert proof.to_json() == expected, (path.name, index)
            Proof.from_json(expected).verify(tree.root, tree.segment_root(index), index, tree.num_segments)


def test_empty_file_has_no_root_in_sdk_and_is_rejected_here(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    sdk = sdk_describe([empty])[str(empty)]
    assert sdk["root"] is None and sdk["submission"]["nodes"] == []
    with pytest.raises(EmptyFileError):
        FileMerkleTree.from_path(empty)
