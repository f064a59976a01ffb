"""pytest plugin of the deaios test suites (loaded through `addopts` in pyproject.toml): each test session
gets an Anvil of its own, started patiently.

* **Its own port.** ape-foundry's `host: auto` first tries Anvil's default port 8545 and only then a random
  one; with two test sessions at once (`make test` runs two areas in parallel) the second could connect to the
  first one's chain, or wait for an Anvil that had exited because the port was taken. Here every session
  picks a free port of its own (10000–19999: below the ports `deaios up` picks, 20000–32767, and the kernel's
  ephemeral range) and hands it to ape-foundry through `APE_FOUNDRY_HOST`, taken out of the environment again
  once ape has connected (after collection), so that `ape run …` processes the tests start get chains of
  their own.
* **Time to start.** ape gives the process 20 s to answer, which a busy 2-core machine exceeded (the whole
  area then failed with an internal error before any test ran); here it is 120 s.
"""

from __future__ import annotations

import os
import random
import socket
from typing import Any

ANVIL_START_TIMEOUT = 120
PORTS = range(10000, 20000)


def free_port(rng: random.Random | None = None) -> int:
    """A port of PORTS that nothing listens on now."""
    rng = rng or random.SystemRandom()
    for _ in range(200):
        port = rng.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


_OWN_HOST = "_DEAIOS_OWN_APE_FOUNDRY_HOST"


def pytest_configure(config: Any) -> None:
    if "APE_FOUNDRY_HOST" not in os.environ:
        os.environ["APE_FOUNDRY_HOST"] = os.environ[_OWN_HOST] = f"http://127.0.0.1:{free_port()}"
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


def pytest_runtestloop(session: Any) -> None:
    """ape connected at the end of collection: the port is its provider's now, not the children's."""
    if os.environ.pop(_OWN_HOST, None) is not None:
        os.environ.pop("APE_FOUNDRY_HOST", None)
