"""A local stack as a child process: `deaios up` run exactly as a user runs it, stopped with `deaios down`.

Used by the end-to-end tests (tests/storage/network/stack_harness.py) and by benchmarks that need a
stack of their own (`deaios bench storage`). Every stack started here runs with `DEAIOS_HOME` pointing
next to its data dir, so the user's `~/.deaios/last-stack` is never touched.

Also drives the official 0G TypeScript SDK against a stack (scripts/zg_sdk_transfer.js).
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

from deaios.stack.config import Stack
from deaios.procs import LaunchError, project_root

START_TIMEOUT = 240.0  # DA nodes and the disperser load KZG tables before ready: slow on a loaded machine


def sdk_driver() -> Path:
    """The official-SDK upload/download driver (node script)."""
    return project_root() / "scripts" / "zg_sdk_transfer.js"


def stack_env(home: Path) -> dict[str, str]:
    """The environment of a stack's processes and of `deaios` commands run against it."""
    root = project_root()
    env = dict(os.environ)
    env["DEAIOS_HOME"] = str(home)
    env.pop("DEAIOS_STACK", None)
    env["PATH"] = os.pathsep.join([str(root / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    env.setdefault("APE_DATA_FOLDER", str(root / ".ape"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def deaios(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `deaios` command to completion (same environment as the stack's)."""
    return subprocess.run([sys.executable, "-m", "deaios.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=stack_env(home), cwd=project_root())


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
def running_stack(data_dir: Path, nodes: int = 10, home: Path | None = None,
                  start_timeout: float = START_TIMEOUT, args: tuple[str, ...] = (),
                  env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """`deaios up --nodes N --dir DATA [ARGS…]` until the block exits, then `deaios down` (`env`: added to the
    stack's environment).

    Raises LaunchError (with the launcher's output) if the stack does not come up."""
    home = home or data_dir.parent / f"{data_dir.name}-home"
    home.mkdir(parents=True, exist_ok=True)
    stderr_path = data_dir.parent / f"{data_dir.name}-up.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "up", "--nodes", str(nodes), "--dir",
                                 str(data_dir), *args], stdout=subprocess.PIPE, stderr=stderr,
                                env={**stack_env(home), **(env or {})}, cwd=project_root())
    try:
        line = _first_line(proc, start_timeout, stderr_path)
        printed = json.loads(line)
        yield RunningStack(proc, Stack.load(data_dir / "stack.json"), printed, data_dir, home, stderr_path)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # a busy machine: SIGTERM it ourselves below
                deaios("down", "--stack", str(data_dir / "stack.json"), home=home, timeout=90)
            if proc.poll() is None:
                proc.terminate()  # the launcher stops its services on SIGTERM, as `deaios down` asks it to
            try:
                proc.wait(timeout=120)
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
            raise LaunchError(f"`deaios up` printed no stack within {timeout:.0f} s:\n"
                              f"{stderr_path.read_text()}")
        if selector.select(timeout=min(remaining, 0.5)):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
        elif proc.poll() is not None:
            break
    if b"\n" not in buffer:
        proc.wait(timeout=30)
        raise LaunchError(f"`deaios up` exited ({proc.returncode}) before printing the stack:\n"
                          f"{stderr_path.read_text()}")
    return buffer.split(b"\n", 1)[0].decode()


class SdkError(RuntimeError):
    """The official SDK driver failed (or node is missing)."""


def sdk_transfer(stack: Stack, src: Path, out: Path, *extra: str, timeout: float = 120) -> dict:
    """Upload `src` with the official SDK through the stack's indexer and download it to `out`; the
    driver's JSON result ({"root", "txSeq", "txHash", "uploadMs", "downloadMs", …})."""
    if shutil.which("node") is None:
        raise SdkError("node is required to run the official 0G SDK (run `make setup`)")
    result = subprocess.run(
        ["node", str(sdk_driver()), stack.indexer, stack.rpc, stack.private_key, str(src), str(out), *extra],
        capture_output=True, text=True, timeout=timeout, cwd=project_root())
    if result.returncode != 0:
        raise SdkError(f"SDK transfer failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
