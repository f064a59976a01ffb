"""Helpers for end-to-end tests against a real local stack: `deaios up` as a subprocess, exactly as a
user runs it (the pytest fixtures built on them are in conftest.py). The machinery lives in
deaios.stack.process (the storage benchmark uses it too); this module adapts it to pytest.

`stack` (module-scoped) is a 10-node stack shared by the tests of one module; tests that kill or corrupt
nodes should start their own with `running_stack(dir, nodes=…)` (or accept that later tests in the module
see the damage). Every stack runs with `DEAIOS_HOME` pointing into its tmp dir, so the user's
`~/.deaios/last-stack` is never touched, and is stopped with `deaios down` at the end.

To restart a node a test killed: `deaios.storage.launch.relaunch_node(stack, i)` (records the new pid in
stack.json so that `deaios down` stops it too).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from deaios.stack import process
from deaios.stack.config import Stack
from deaios.stack.process import START_TIMEOUT, RunningStack, deaios, running_stack, stack_env
from deaios.storage.client import StorageClient

__all__ = ["START_TIMEOUT", "RunningStack", "deaios", "running_stack", "sdk_transfer", "stack_env", "upload",
           "download", "wait_until"]


def upload(stack: Stack, path: Path) -> str:
    """Upload `path` with the deaios client (in-process) as the stack's account; its root."""
    async def go() -> str:
        async with aiohttp.ClientSession() as session:
            client = StorageClient(session, stack.node_urls, stack.rpc, stack.flow, stack.private_key)
            return (await client.upload(path)).root
    return asyncio.run(go())


def download(stack: Stack, root: str, out: Path) -> bytes:
    """Download file `root` with the deaios client to `out`; its bytes."""
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            await StorageClient(session, stack.node_urls).download(root, out)
    asyncio.run(go())
    return out.read_bytes()


def sdk_transfer(stack: Stack, src: Path, out: Path, *extra: str) -> dict:
    """Upload `src` with the official SDK through the stack's indexer and download it to `out`; the
    driver's JSON result (scripts/zg_sdk_transfer.js)."""
    try:
        return process.sdk_transfer(stack, src, out, *extra)
    except process.SdkError as exc:
        pytest.fail(str(exc))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1) -> bool:
    """Poll `predicate` until it holds or `timeout` s passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
