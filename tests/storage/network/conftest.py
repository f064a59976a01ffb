"""Fixtures for end-to-end tests against a real local stack (`deaios up` as a subprocess, exactly as a
user runs it); the helpers behind them are in stack_harness.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stack_harness import RunningStack, deaios, running_stack

from deaios.stack.config import Stack


@pytest.fixture(scope="module")
def stack_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A running 10-node stack, shared by the tests of one module."""
    base = tmp_path_factory.mktemp("stack")
    with running_stack(base / "data", nodes=10, home=base / "home") as running:
        yield running


@pytest.fixture(scope="module")
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


