"""pytest plugin of the deaios test suites (loaded through `addopts` in pyproject.toml).

ape starts the test session's Anvil with a 20 s limit for it to answer, which a busy 2-core machine (two test
sessions at once, each starting stacks) exceeded: the whole area then failed with an internal error before
any test ran. Here the limit is 120 s; a healthy Anvil still answers in well under a second.
"""

from __future__ import annotations

from typing import Any

ANVIL_START_TIMEOUT = 120


def pytest_configure(config: Any) -> None:
    try:
        from ape.api.providers import SubprocessProvider
    except ImportError:  # pragma: no cover - ape is a test dependency of every area
        return
    if getattr(SubprocessProvider.start, "_deaios_patient", False):
        return
    original = SubprocessProvider.start

    def start(self: Any, timeout: int = ANVIL_START_TIMEOUT) -> Any:
        return original(self, timeout=max(timeout, ANVIL_START_TIMEOUT))

    start._deaios_patient = True  # type: ignore[attr-defined]
    SubprocessProvider.start = start  # type: ignore[method-assign]
