"""Log sync keeps going through failures (issue 13, chaos): a step that raises anything — the chain restarting,
the disk full — is retried; before, only ChainError was caught and any other error ended log sync for good."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from deaios.storage.erasure import ErasureCode
from deaios.storage.node.logsync import LogSync
from deaios.storage.node.service import NodeError, StorageService
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


class CountingLogSync(LogSync):
    """A log sync whose steps only count (and record when they ran)."""

    def __init__(self, store: NodeStore, idle_interval: float) -> None:
        super().__init__(store, chain=None, flow="0x" + "00" * 20, interval=0.01,  # type: ignore[arg-type]
                         idle_interval=idle_interval)
        self.times: list[float] = []

    async def step(self) -> None:
        self.times.append(asyncio.get_running_loop().time())


def test_an_idle_log_sync_polls_slowly_and_a_wake_steps_at_once(tmp_path: Path, monkeypatch) -> None:
    """Idle storage nodes stop polling the chain ten times a second; a request for a file the node has not
    recorded (an uploader waiting for it) makes it step at once instead of after the idle pause."""
    monkeypatch.setattr("deaios.storage.node.logsync.IDLE_AFTER", 0.2)
    sync = CountingLogSync(NodeStore(tmp_path), idle_interval=30.0)

    async def scenario() -> tuple[int, int, list[float]]:
        task = asyncio.create_task(sync.run())
        await asyncio.sleep(0.15)  # active: every 10 ms
        busy = len(sync.times)
        await asyncio.sleep(0.6)  # idle after 0.2 s: one step per 30 s
        idle_steps = len(sync.times) - busy
        latencies = []
        for wake in (sync.wake, lambda: threading.Thread(target=sync.wake).start()):  # the node also reads in threads
            await asyncio.sleep(0.3)  # idle again
            woken_at = asyncio.get_running_loop().time()
            wake()
            for _ in range(100):
                await asyncio.sleep(0.005)
                if sync.times[-1] >= woken_at:
                    break
            latencies.append(sync.times[-1] - woken_at)
        assert not task.done(), task.exception()
        task.cancel()
        return busy, idle_steps, latencies

    busy, idle_steps, latencies = asyncio.run(scenario())
    assert busy >= 5, busy
    assert idle_steps <= 8, idle_steps  # ≤ 0.2 s at 10 ms (with slack), then none for 30 s; without the idle pace: ~60
    assert all(0 <= latency < 0.1 for latency in latencies), latencies


def test_a_storage_node_asked_for_an_unknown_file_wakes_log_sync(tmp_path: Path) -> None:
    service = StorageService(NodeStore(tmp_path), ErasureCode.for_nodes(1), 0, ["http://127.0.0.1:1"],
                             None, 31337, "0x" + "00" * 20)  # type: ignore[arg-type]
    woken: list[str] = []
    service.on_unknown = lambda: woken.append("wake")
    unknown = bytes(32)
    assert service.file_info(unknown) is None
    with pytest.raises(NodeError) as refused:
        service.get_roots(unknown)
    assert refused.value.status == 404
    assert woken == ["wake", "wake"]
