"""`make walk`: run the README's command blocks as a user would, on a fresh, otherwise idle stack.

The blocks of README.md from "## A local network" up to "## What is here" are joined into one bash script and
run with `set -euo pipefail` in a scratch directory holding the files a user brings (`big.iso`, `blob.bin`,
`batch.bin`, `agent.json`), after `deaios up --dir deaios-data` there (the walk starts it itself, the same way,
and waits until it is ready; `deaios down` lines run at the end). A block preceded by `<!-- walk: skip … -->`
is left out (training: minutes of JAX, covered by tests/training). The time-locked steps — the compute refund
collected after its lock, a governance proposal executed after its voting period and timelock — run after plain
`sleep`s with nothing else sent: the stack's chain clock (`deaios.stack.clock`) must carry them.

Then it checks what the commands wrote: every copy byte-identical to its original. Exit 0 when all passed; the
output is the commands (bash -x) and their output. 6 to 12 minutes (4 of them the time locks).

    python scripts/readme_walk.py [--keep DIR] [--block-time S]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
START, END = "## A local network", "## What is here"
SKIP = re.compile(r"<!--\s*walk:\s*skip")


def readme_script(readme: Path) -> tuple[str, list[str]]:
    """The bash of the README's walked blocks, and the `deaios down` lines (run last)."""
    text = readme.read_text()
    section = text[text.index(START):text.index(END)]
    body, downs = [], []
    for match in re.finditer(r"(<!--[^\n]*-->\n)?```bash\n(.*?)```", section, re.S):
        if match.group(1) and SKIP.search(match.group(1)):
            continue
        for line in match.group(2).splitlines():
            command = line.strip()
            if command.startswith("deaios up "):
                continue  # the walk started the stack just so, and waited for it
            (downs if command.startswith("deaios down") else body).append(line)
    return "\n".join(body) + "\n", downs


def user_files(where: Path) -> dict[str, bytes]:
    """The files the README's commands take as input."""
    files = {
        "big.iso": os.urandom(1 << 20),
        "blob.bin": os.urandom(100_000),
        "batch.bin": os.urandom(20_000),
        "agent.json": json.dumps({"name": "walker", "weights": "log://…", "prompt": "be helpful"}).encode(),
    }
    for name, data in files.items():
        (where / name).write_bytes(data)
    return files


def start_stack(where: Path, env: dict[str, str], block_time: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deaios.cli", "up", "--nodes", "10", "--dir", "deaios-data",
         "--block-time", str(block_time)],
        cwd=where, env=env, stdout=subprocess.PIPE, stderr=open(where / "up.log", "w"), text=True,
        start_new_session=True)
    line = proc.stdout.readline() if proc.stdout else ""  # one JSON line once every service is up
    if not line.startswith("{"):
        proc.wait(timeout=30)
        raise click.ClickException(f"deaios up failed (exit {proc.returncode}); see {where / 'up.log'}:\n"
                                   + (where / "up.log").read_text()[-3000:])
    return proc


@click.command()
@click.option("--keep", "keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Walk in this directory and keep it (default: a temporary one, removed).")
@click.option("--block-time", default=2, show_default=True, type=click.IntRange(0),
              help="`deaios up --block-time` (the README's default: 2).")
def main(keep: Path | None, block_time: int) -> None:
    where = keep or Path(tempfile.mkdtemp(prefix="deaios-walk-"))
    where.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, DEAIOS_HOME=str(where / "home"),
               PATH=f"{bin_dir}:{ROOT / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}")
    for name in ("DEAIOS_STACK", "DEAIOS_KEY"):
        env.pop(name, None)
    files = user_files(where)
    script, downs = readme_script(ROOT / "README.md")
    (where / "walk.sh").write_text("set -euo pipefail -x\n" + script)
    started = time.monotonic()
    click.echo(f"walking the README in {where} (deaios up --block-time {block_time})", err=True)
    stack = start_stack(where, env, block_time)
    click.echo(f"stack up in {time.monotonic() - started:.0f} s", err=True)
    try:
        walked = subprocess.run(["bash", str(where / "walk.sh")], cwd=where, env=env, timeout=1800)
    finally:
        for line in downs or ["deaios down"]:
            subprocess.run(["bash", "-c", line], cwd=where, env=env, timeout=120)
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(timeout=60)
    problems = [] if walked.returncode == 0 else [f"a README command failed (bash exit {walked.returncode})"]
    for original, copy in (("big.iso", "copy.iso"), ("blob.bin", "blob.copy"), ("batch.bin", "batch.copy"),
                           ("agent.json", "bought/agent.json")):
        path = where / copy
        if not path.is_file() or path.read_bytes() != files[original]:
            problems.append(f"{copy} is not a byte-exact copy of {original}")
    seconds = time.monotonic() - started
    if problems:
        raise click.ClickException(f"README walk failed after {seconds:.0f} s: " + "; ".join(problems)
                                   + f" (kept {where})")
    click.echo(f"README walk passed in {seconds:.0f} s: every block ran, every copy is byte-exact", err=True)
    if keep is None:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
