"""Fixtures for end-to-end tests against a real local stack (`deaios up` as a subprocess, exactly as a
user runs it); the helpers behind them are in stack_harness.py.

`stack_run` / `stack` is one 10-node stack shared by every module of this folder that leaves it as it
found it (read-only use, uploads, attacks that must fail): starting a full stack costs ≈ 40 s, so the
session starts it once. Modules that kill, wipe or relaunch nodes define their own module-scoped
`stack_run` (test_durability.py) and run first (`pytest_collection_modifyitems` below), so that the two
stacks never run side by side.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stack_harness import RunningStack, deaios, running_stack

from deaios.stack.config import Stack

#: modules that start a stack of their own (destructive tests): collected first
OWN_STACK_MODULES = ("test_durability.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the modules with a stack of their own before the ones sharing the session's stack."""
    def own_stack_first(item: pytest.Item) -> int:
        return 0 if item.path.name in OWN_STACK_MODULES and item.path.parent.name == "network" else 1
    items.sort(key=own_stack_first)  # stable: the order inside each group is kept


@pytest.fixture(scope="session")
def stack_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A running 10-node stack, shared by the modules of this folder that do not damage it."""
    base = tmp_path_factory.mktemp("stack")
    with running_stack(base / "data", nodes=10, home=base / "home") as running:
        yield running


@pytest.fixture(scope="session")
def stack(stack_run: RunningStack) -> Stack:
    """The running stack's stack.json."""
    return stack_run.stack


@pytest.fixture
def start_stack():
    """`running_stack` for tests that need a stack of their own: `with start_stack(dir, nodes=3) as run:`."""
    return running_stack


@pytest.fixture
def run_deaios():
    """`deaios(*args, home=…)`: run a deaios command to completion with the stacks' environment."""
    return deaios
