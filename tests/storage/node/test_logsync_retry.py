"""Log sync keeps going through failures (issue 13, chaos): a step that raises anything — the chain restarting,
the disk full — is retried; before, only ChainError was caught and any other error ended log sync for good."""

from __future__ import annotations

import asyncio
from pathlib import Path

from deaios.storage.node.logsync import LogSync
from deaios.storage.node.store import NodeStore, StoreFull


class FlakyLogSync(LogSync):
    """A log sync whose first steps fail as a full disk would (the store's write raises)."""

    def __init__(self, store: NodeStore, failures: int) -> None:
        super().__init__(store, chain=None, flow="0x" + "00" * 20, interval=0.01)  # type: ignore[arg-type]
        self.failures = failures
        self.steps = 0

    async def step(self) -> None:
        self.steps += 1
        if self.steps <= self.failures:
            raise StoreFull("out of disk space (test)")
        self.height = self.steps


def test_a_failing_step_does_not_end_log_sync(tmp_path: Path) -> None:
    sync = FlakyLogSync(NodeStore(tmp_path), failures=3)

    async def run_a_while() -> None:
        task = asyncio.create_task(sync.run())
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sync.height > 0:
                break
        assert not task.done(), task.exception()
        task.cancel()

    asyncio.run(run_a_while())
    assert sync.steps > 3 and sync.height > 0
