"""Helpers for the fault-case modules of this folder (test_da_faults.py, test_compute_faults.py,
test_inft_faults.py): `deaios` commands run as a user runs them against a stack of `running_stack`, waiting for
a relaunched service, and a wall-time record per case (a uniquely named module: tests must not import from
`conftest`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from deaios.stack.process import RunningStack, deaios

log = logging.getLogger(__name__)


def cli_json(run: RunningStack, *args: str, timeout: float = 240) -> Any:
    """`deaios ARGS --stack DATA` as a subprocess; the first JSON line it printed (asserts exit code 0)."""
    done = deaios(*args, "--stack", str(run.stack.path), home=run.home, timeout=timeout)
    assert done.returncode == 0, f"deaios {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"deaios {' '.join(args)} printed no JSON:\n{done.stdout}")


def cli_lines(run: RunningStack, *args: str, timeout: float = 240) -> list[str]:
    """`deaios ARGS --stack DATA` as a subprocess; its stdout lines (asserts exit code 0)."""
    done = deaios(*args, "--stack", str(run.stack.path), home=run.home, timeout=timeout)
    assert done.returncode == 0, f"deaios {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 180.0, every: float = 0.5) -> Any:
    """Call `probe` until it returns a truthy value (exceptions count as "not yet"); that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a service coming back refuses connections for a while
            last = exc
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last error: {last})")


class WallTime:
    """Wall time of one fault case, logged (and printed with -s) for docs/reliability.md."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.started = time.monotonic()

    def done(self) -> float:
        seconds = time.monotonic() - self.started
        print(f"\n[chaos] {self.case}: {seconds:.1f} s")
        log.info("%s: %.1f s", self.case, seconds)
        return seconds
