"""Pipeline stages: the model's parameter groups (embed, block0 … blockN, head) cut into S contiguous stages.

DiLoCoX shards the model into pipeline stages and keeps a pseudo-gradient, an outer-optimizer state and an
exchange per stage. Here a stage is the unit of exchange (one compressed storage file per stage, worker and
round), of outer-optimizer state and of compression choices; every worker holds all stages (the model is
small), so what a real pipeline would spread over machines is the communication pattern, not the memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import numpy as np

from deaios.training.config import ModelConfig
from deaios.training.params import group_names

T = TypeVar("T")


def stage_groups(config: ModelConfig, stages: int) -> list[list[str]]:
    """The parameter groups of each stage, in forward order (as even as group counts allow)."""
    return [list(part) for part in np.array_split(np.array(group_names(config)), stages)]


def stage_of(name: str, groups: list[list[str]]) -> int:
    group = name.split(".", 1)[0]
    for index, members in enumerate(groups):
        if group in members:
            return index
    raise KeyError(f"parameter {name!r} belongs to no stage")


def split(tree: Mapping[str, T], groups: list[list[str]]) -> list[dict[str, T]]:
    """A flat parameter dict (or any dict keyed like one) cut into per-stage dicts."""
    out: list[dict[str, T]] = [{} for _ in groups]
    for name in sorted(tree):
        out[stage_of(name, groups)][name] = tree[name]
    return out


def merge(parts: list[dict[str, T]]) -> dict[str, T]:
    out: dict[str, T] = {}
    for part in parts:
        out.update(part)
    return out
