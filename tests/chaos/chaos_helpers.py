"""Helpers of the fault matrix (tests/chaos/): the stack under test, `deaios` commands run as a user runs them,
clear-error checks, and the record of each case (deaios.chaos.report).

Every case injects its faults into real processes and files (deaios.chaos.faults), ends with a byte-exact check
of what a client acknowledged before the fault, and records one line: the faults, the bytes checked, what was
lost (nothing, or the case fails).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from deaios.chaos import report
from deaios.chaos.faults import current
from deaios.procs import project_root
from deaios.stack.config import Stack
from deaios.stack.process import RunningStack, stack_env
from deaios.storage.merkle import FileMerkleTree

#: where the cases' lines go (`make chaos` renders them with `deaios chaos report`)
RESULTS = Path(os.environ.get("DEAIOS_CHAOS_RESULTS", project_root() / ".chaos" / "results.jsonl"))
TRACEBACK = "Traceback (most recent call last)"
#: a busy machine (the whole point of `make chaos`) starts a stack far slower than an idle one
START_TIMEOUT = 900.0


class Chaos:
    """A running stack under test and the `deaios` CLI against it."""

    def __init__(self, run: RunningStack, work: Path) -> None:
        self.run = run
        self.work = work
        self.path = run.dir / "stack.json"
        self.env = {**stack_env(run.home), "DEAIOS_STACK": str(self.path)}

    @property
    def stack(self) -> Stack:
        return current(self.path)

    def raw(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`deaios ARGS…` to completion (the stack found through $DEAIOS_STACK)."""
        return subprocess.run([sys.executable, "-m", "deaios.cli", *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=project_root())

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`deaios ARGS…` in the background."""
        return subprocess.Popen([sys.executable, "-m", "deaios.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=project_root())

    def __call__(self, *args: str, timeout: float = 300) -> dict:
        """`deaios ARGS…`, which must succeed; its last JSON line."""
        result = self.raw(*args, timeout=timeout)
        assert result.returncode == 0, f"deaios {' '.join(args)} failed:\n{result.stderr[-3000:]}"
        return last_json(result.stdout)


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith(("{", "["))]
    assert lines, f"no JSON line in {stdout!r}"
    return json.loads(lines[-1])


def assert_clear_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """A failed command that says why in one `error: …` line (exit 1 or 2), with no traceback; the line."""
    assert result.returncode in (1, 2), f"exit {result.returncode}:\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
    assert TRACEBACK not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment.lower() in errors[-1].lower(), errors[-1]
    return errors[-1]


def no_tracebacks(log: Path, since: int = 0) -> None:
    """A service log has no traceback after byte offset `since`."""
    text = log.read_text(errors="replace")[since:]
    assert TRACEBACK not in text, f"{log}:\n{text[text.find(TRACEBACK) - 500:][:4000]}"


def make_file(path: Path, size: int, seed: int) -> tuple[Path, str]:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path, "0x" + FileMerkleTree.from_path(path).root.hex()


def download_exact(chaos: Chaos, root: str, original: Path, out: Path) -> int:
    """`deaios storage download` must give back the original bytes; their count."""
    out.unlink(missing_ok=True)
    chaos("storage", "download", root, "-o", str(out))
    assert out.read_bytes() == original.read_bytes(), f"{root} differs from {original}"
    return original.stat().st_size


class Case:
    """Times one fault case and records its line: `with Case(name, faults) as case: …; case.checked(what, n)`."""

    def __init__(self, name: str, faults: str) -> None:
        self.name = name
        self.faults = faults
        self.what: list[str] = []
        self.bytes = 0
        self.notes = ""
        self.started = 0.0

    def checked(self, what: str, size: int) -> None:
        self.what.append(what)
        self.bytes += size

    def __enter__(self) -> Case:
        self.started = time.monotonic()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            assert self.bytes > 0 or self.what, f"case {self.name!r} checked nothing"
            report.append(RESULTS, report.CaseResult(self.name, self.faults, "; ".join(self.what), self.bytes,
                                                     "nothing", time.monotonic() - self.started, self.notes))
