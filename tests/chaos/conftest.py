"""The fault matrix (`make chaos`, not part of `make test`): real stacks (`deaios up` as a subprocess), real
faults (SIGKILL, damaged files, a full disk, a restarted chain), a byte-exact check after each, one line per case
in the results file (chaos_helpers.RESULTS; docs/reliability.md shows them).

`chaos` is one stack (10 storage nodes) shared by the cases, which each leave it running as they found it;
test_restart.py starts a stack of its own (it stops and restarts it), and runs first so that the two stacks never
run side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_helpers import START_TIMEOUT, Chaos

from deaios.stack.process import running_stack

ORDER = ("test_restart.py", "test_storage_faults.py", "test_service_faults.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return ORDER.index(item.path.name) if item.path.name in ORDER else len(ORDER)
    items.sort(key=rank)


@pytest.fixture(scope="session")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """The shared stack under test."""
    base = tmp_path_factory.mktemp("chaos")
    with running_stack(base / "data", nodes=10, home=base / "home", start_timeout=START_TIMEOUT) as run:
        yield Chaos(run, base)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
