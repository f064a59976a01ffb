"""`make demo`, training step: a DiLoCoX job whose three workers meet only through the stack — driven through
the `deaios train` CLI.

1. `deaios train start JOB.toml`: a small byte-level transformer, 3 workers × 4 rounds × 40 inner steps,
   one-step delay and adaptive compression; the corpus (Python standard library sources) and the job file
   go to the log, the job record to KV;
2. three `deaios train worker` processes (the training dev keys): each round a compressed pseudo-gradient per
   stage as a storage file, a report in the KV round ledger, the members' files downloaded and averaged;
3. worker 2 is SIGKILLed after its first round: the next round closes at its deadline without it, the
   other two go on with bit-identical parameters;
4. `deaios train status` (rounds, members, bytes, hashes, checkpoints), the model record `AI_<job>` in the
   registry stream, and `deaios train sample`: text generated from the checkpoint it points at.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
from demo_cli import DeaiosCli
from rich.console import Console

from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key

WORKERS = 3
JOB = """
[job]
id = "demo"
name = "stdlib-bytes-demo"
[model]
d_model = 32
layers = 2
heads = 4
seq_len = 32
[train]
workers = 3
rounds = 4
inner_steps = 40
batch_size = 8
warmup_steps = 5
[outer]
stages = 2
delay = true
momentum = 0.6
[compression]
mode = "adaptive"
[elastic]
round_deadline = 15.0
checkpoint_every = 2
[corpus]
max_bytes = 400000
eval_bytes = 8192
"""


def run(stack: Stack, console: Console, show: Callable[[str, dict[str, object]], None], work: Path) -> None:
    console.rule("DiLoCoX training: 3 workers meeting through the storage log and KV")
    deaios = DeaiosCli(stack, work / "home")
    job_file = work / "job.toml"
    job_file.write_text(JOB)
    started = deaios("train", "start", str(job_file), "--json")
    job_id = started["job"]
    show("deaios train start", {"job": job_id, "parameters": f"{started['params']:,}",
                                "corpus": f"{started['corpus']['trainBytes']:,} training bytes, "
                                          f"{started['corpus']['evalBytes']:,} held out ({started['corpus']['source']})",
                                "corpus file": f"log://{started['corpusRoot']}", "job file": f"log://{started['jobRoot']}",
                                "ledger stream": started["stream"], "workers (accounts)": ", ".join(started["workers"])})
    keys: range = DEV_KEY_ROLES["training workers"]  # type: ignore[assignment]
    procs = [subprocess.Popen([sys.executable, "-m", "deaios.cli", "train", "worker", "--job", job_id, "--index", str(i),
                               "--key", dev_key(keys[i]), "--single-thread", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=deaios.env) for i in range(WORKERS)]
    try:
        victim = procs[-1]
        assert victim.stdout is not None
        first = victim.stdout.readline()
        if not first:
            raise click.ClickException(f"worker {WORKERS - 1} failed: {victim.stderr.read() if victim.stderr else ''}")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        console.print(f"worker {WORKERS - 1} finished round {json.loads(first)['round']} — [bold red]kill -9[/] "
                      f"(pid {victim.pid}); the others go on without it")
        for i, proc in enumerate(procs[:-1]):
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise click.ClickException(f"worker {i} failed: {err.strip()[-2000:]}")
            for line in out.splitlines():
                entry = json.loads(line)
                if i == 0 and "done" not in entry:
                    console.print(f"worker 0, round {entry['round']}: training loss {entry['loss']:.3f}, averaged round "
                                  f"{entry['averagedRound']} of workers {entry['members']} ({entry['closed']}), "
                                  f"idle {entry['idleSeconds']:.2f} s, {entry['bytesSent']:,} B sent so far")
                elif "done" in entry:
                    console.print(f"worker {i} done: parameters {entry['hash'][:18]}…, {entry['bytesSent']:,} B of "
                                  f"pseudo-gradients sent")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    status = deaios.raw("train", "status", job_id)
    console.print(status.stdout.rstrip())
    record = deaios("train", "status", job_id, "--json")["model"]
    show(f"model registry: AI_{job_id}", {k: record[k] for k in ("name", "path", "round", "eval_loss", "hash")})
    sample = deaios("train", "sample", job_id, "--prompt", "def ", "--length", "160", "--json")
    console.print(f"[bold]deaios train sample {job_id}[/] (round {sample['round']}, held-out loss "
                  f"{sample['eval_loss']}):")
    console.print(sample["prompt"] + sample["sample"], markup=False, highlight=False)
