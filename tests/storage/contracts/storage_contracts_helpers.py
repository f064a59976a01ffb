"""Helpers shared by the storage contract tests (a uniquely named module: several test folders have a
`conftest`, so tests must not import from `conftest`)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

from deaios.storage.merkle import Submission, SubmissionNode, node_heights

ROOT = Path(__file__).resolve().parents[3]
PRICE = 232_830_643
SMALL_EPOCH = 5


def _load_deploy_module() -> Any:
    spec = importlib.util.spec_from_file_location("deaios_scripts_deploy", ROOT / "scripts" / "deploy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy_module = _load_deploy_module()


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
