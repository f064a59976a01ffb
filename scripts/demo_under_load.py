"""`make chaos`, part 1: `make demo`'s job several times in a row (default 5) on a busy machine.

Two CPU hogs (busy Python processes at the default niceness, the same priority as the demo) run for the whole
campaign, so the demo competes for both cores of a 2-core machine. Each run is `scripts/demo.py` as `make demo`
runs it, unchanged: the same checks, the same timeouts. The script prints each run's wall time and outcome,
appends them as JSON lines to .chaos/demo-under-load.jsonl (with the machine's core count and load), keeps
each run's output in .chaos/demo-run-N.log, and exits 1 if any run failed.

Run with `make chaos` or `.venv/bin/python scripts/demo_under_load.py [--runs N] [--hogs N]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
HOG = "while True:\n    pass\n"


def start_hogs(count: int) -> list[subprocess.Popen]:
    """`count` busy Python processes, each using one core."""
    return [subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        hog.kill()
    for hog in hogs:
        hog.wait()


def failure_line(log: Path) -> str:
    """The last line of a failed run that says why (an `error`/`expected`/exception line), else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if any(word in line.lower() for word in ("error", "expected", "exception", "failed")):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


@click.command()
@click.option("--runs", default=5, show_default=True, help="how many demos, one after another")
@click.option("--hogs", default=2, show_default=True, help="busy Python processes running meanwhile")
@click.option("--out", type=click.Path(path_type=Path), default=ROOT / ".chaos", show_default=True,
              help="folder for the results (demo-under-load.jsonl) and each run's log")
def main(runs: int, hogs: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = out / "demo-under-load.jsonl"
    procs = start_hogs(hogs)
    outcomes: list[dict] = []
    try:
        for run in range(1, runs + 1):
            log = out / f"demo-run-{run}.log"
            started = time.monotonic()
            with open(log, "w") as fh:
                code = subprocess.call([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT,
                                       stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            seconds = time.monotonic() - started
            outcome = {"run": run, "of": runs, "hogs": hogs, "cores": os.cpu_count(), "exit": code,
                       "ok": code == 0, "seconds": round(seconds, 1), "load1": round(os.getloadavg()[0], 2),
                       "at": time.strftime("%Y-%m-%d %H:%M:%S"), "log": str(log)}
            if code != 0:
                outcome["why"] = failure_line(log)
            outcomes.append(outcome)
            with open(results, "a") as fh:
                fh.write(json.dumps(outcome) + "\n")
            click.echo(f"demo {run}/{runs} with {hogs} CPU hogs: {'passed' if code == 0 else 'FAILED'} in "
                       f"{seconds:.0f} s (load {outcome['load1']})" + (f": {outcome['why']}" if code else ""),
                       err=False)
    finally:
        stop_hogs(procs)
    passed = sum(o["ok"] for o in outcomes)
    times = [o["seconds"] for o in outcomes]
    click.echo(f"{passed}/{runs} demos passed under load; wall time min {min(times):.0f} s, "
               f"max {max(times):.0f} s, mean {sum(times) / len(times):.0f} s")
    sys.exit(0 if passed == runs else 1)


if __name__ == "__main__":
    main()
