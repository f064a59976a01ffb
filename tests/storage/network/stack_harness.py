"""Helpers for end-to-end tests against a real local stack: `deaios up` as a subprocess, exactly as a
user runs it (the pytest fixtures built on them are in conftest.py).

`stack` (module-scoped) is a 10-node stack shared by the tests of one module; tests that kill or corrupt
nodes should start their own with `running_stack(dir, nodes=…)` (or accept that later tests in the module
see the damage). Every stack runs with `DEAIOS_HOME` pointing into its tmp dir, so the user's
`~/.deaios/last-stack` is never touched, and is stopped with `deaios down` at the end.

To restart a node a test killed: `deaios.stack.launcher.relaunch_node(stack, i)` (records the new pid in
stack.json so that `deaios down` stops it too).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deaios.stack.config import Stack

ROOT = Path(__file__).resolve().parents[3]
SDK_DRIVER = ROOT / "tests" / "sdk" / "zg_sdk_transfer.js"
START_TIMEOUT = 120.0


def stack_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DEAIOS_HOME"] = str(home)
    env.pop("DEAIOS_STACK", None)
    env["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    env.setdefault("APE_DATA_FOLDER", str(ROOT / ".ape"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def deaios(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `deaios` command to completion (same environment as the stack's)."""
    return subprocess.run([sys.executable, "-m", "deaios.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=stack_env(home), cwd=ROOT)


class RunningStack:
    """A `deaios up` process and the stack it printed."""

    def __init__(self, proc: subprocess.Popen, stack: Stack, line: dict, data_dir: Path, home: Path,
                 stderr_path: Path) -> None:
        self.proc = proc
        self.stack = stack
        self.line = line  # the JSON line `deaios up` printed
        self.dir = data_dir
        self.home = home
        self.stderr_path = stderr_path

    def launcher_log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def running_stack(data_dir: Path, nodes: int = 10, home: Path | None = None) -> Iterator[RunningStack]:
    """`deaios up --nodes N --dir DATA` until the block exits, then `deaios down`."""
    home = home or data_dir.parent / f"{data_dir.name}-home"
    home.mkdir(parents=True, exist_ok=True)
    stderr_path = data_dir.parent / f"{data_dir.name}-up.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "up", "--nodes", str(nodes), "--dir",
                                 str(data_dir)], stdout=subprocess.PIPE, stderr=stderr, env=stack_env(home),
                                cwd=ROOT)
    try:
        line = _first_line(proc, START_TIMEOUT, stderr_path)
        printed = json.loads(line)
        running = RunningStack(proc, Stack.load(data_dir / "stack.json"), printed, data_dir, home, stderr_path)
        yield running
    finally:
        if proc.poll() is None:
            deaios("down", "--stack", str(data_dir / "stack.json"), home=home, timeout=90)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _first_line(proc: subprocess.Popen, timeout: float, stderr_path: Path) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.terminate()
            pytest.fail(f"`deaios up` printed no stack within {timeout:.0f} s:\n{stderr_path.read_text()}")
        if selector.select(timeout=min(remaining, 0.5)):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
        elif proc.poll() is not None:
            break
    if b"\n" not in buffer:
        proc.wait(timeout=30)
        pytest.fail(f"`deaios up` exited ({proc.returncode}) before printing the stack:\n"
                    f"{stderr_path.read_text()}")
    return buffer.split(b"\n", 1)[0].decode()


def sdk_transfer(stack: Stack, src: Path, out: Path, *extra: str) -> dict:
    """Upload `src` with the official SDK through the stack's indexer and download it to `out`; the
    driver's JSON result (tests/sdk/zg_sdk_transfer.js)."""
    if shutil.which("node") is None:
        pytest.fail("node is required for the SDK compatibility tests (run `make setup`)")
    result = subprocess.run(
        ["node", str(SDK_DRIVER), stack.indexer, stack.rpc, stack.private_key, str(src), str(out), *extra],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, f"SDK transfer failed:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])
