"""Helpers shared by the storage contract tests (a uniquely named module: several test folders have a
`conftest`, so tests must not import from `conftest`)."""

from __future__ import annotations

import random
from pathlib import Path

from deaios.deployment import load_script
from deaios.storage.merkle import Submission, SubmissionNode, node_heights

ROOT = Path(__file__).resolve().parents[3]
PRICE = 232_830_643
SMALL_EPOCH = 5


deploy_module = load_script("deploy")


def random_submission(length: int, rng: random.Random, tags: bytes = b"") -> Submission:
    """A valid (minimal-split) submission for `length` bytes with random node roots."""
    return Submission(
        length=length,
        tags=tags,
        nodes=tuple(SubmissionNode(root=rng.randbytes(32), height=h) for h in node_heights(length)),
    )


def custom_submission(length: int, heights: list[int], rng: random.Random) -> Submission:
    """A submission with arbitrary heights (possibly invalid)."""
    return Submission(
        length=length,
        tags=b"",
        nodes=tuple(SubmissionNode(root=rng.randbytes(32), height=h) for h in heights),
    )
