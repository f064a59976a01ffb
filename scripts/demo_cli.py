"""`make demo` helper: run `deaios` commands against the demo's stack as a user would, one JSON line back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from deaios.stack.config import Stack


class DeaiosCli:
    """`deaios AREA [--key K] VERB …` in a subprocess with the stack's environment."""

    def __init__(self, stack: Stack, home: Path) -> None:
        self.env = dict(os.environ, DEAIOS_STACK=str(stack.path), DEAIOS_HOME=str(home))

    def raw(self, *args: str, key: str | None = None, group_key: bool = True) -> subprocess.CompletedProcess[str]:
        """`group_key`: --key goes after the area (inft, market, compute); else after the verb (alignment)."""
        key_args = ["--key", key] if key else []
        cmd = [*args[:1], *key_args, *args[1:]] if group_key else [*args[:2], *key_args, *args[2:]]
        return subprocess.run([sys.executable, "-m", "deaios.cli", *cmd], capture_output=True, text=True,
                              env=self.env, timeout=300)

    def lines(self, *args: str, key: str | None = None, group_key: bool = True) -> list:
        result = self.raw(*args, key=key, group_key=group_key)
        if result.returncode != 0:
            raise click.ClickException(f"`deaios {' '.join(args)}` failed: {result.stderr.strip()}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith(("{", "["))]

    def __call__(self, *args: str, key: str | None = None, group_key: bool = True) -> dict | list:
        return self.lines(*args, key=key, group_key=group_key)[-1]
