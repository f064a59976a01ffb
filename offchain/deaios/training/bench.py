"""`deaios bench train`: DiLoCoX's communication, quality and overlap, as docs/benchmarks.md reports them.

Quality (in-process, `deaios.training.simulate`): the same model, corpus shards and tokens for
  * synchronous data-parallel training (one AdamW step per step on all k workers' batches),
  * DiLoCo (k workers, H inner steps, outer Nesterov; no delay, no compression),
  * DiLoCoX without compression (one-step delay), and DiLoCoX (delay + adaptive compression);
  held-out loss of each, relative to data-parallel.

Network (real processes on a stack of its own, `deaios up` in a temp dir): the DiLoCoX job with k
`deaios train worker` processes and a simulated link (`--link-mbps`, default 100 Mbit/s: each pseudo-
gradient transfer takes bytes·8/bandwidth longer), once with the one-step delay and once without. From the
workers' own reports: pseudo-gradient bytes each worker sent through the storage network, HTTP bytes on
the wire for the exchanges, and the share of its time a worker sat idle waiting for an exchange. The
data-parallel reference sends 4·P bytes (fp32 gradients) per step per worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from deaios.bench import emit

#: H of the network run: a round's training (4 single-threaded workers sharing 2 cores) outlasts its exchange
#: (a few chain transactions and KV polls), the regime the one-step delay is for
NETWORK_H = 200
#: what the search of docs/benchmarks.md (DiLoCoX training; scripts/train_search.py) found best for the
#: default shape; each method has its own tuned learning rate (data-parallel: 2e-3 / 3e-3 / 4e-3 / 6e-3 tried)
DP_LR = 3e-3
INNER_LR = 2e-3
OUTER_LR, OUTER_MOMENTUM = 1.0, 0.0  # 8 rounds are too few for Nesterov momentum to pay (0.6 / 0.9 were worse)
COMPRESSION = {"energy": 0.8, "max_rank_fraction": 0.125, "block": 128}


def bench_job(workers: int, rounds: int, inner_steps: int, d_model: int, layers: int, seq_len: int, batch: int,
              delay: bool, compression: str, job_id: str = "bench", inner_lr: float = INNER_LR) -> str:
    """The benchmark's job file (the same outer step with and without the delay; see the constants above)."""
    return f"""
[job]
id = "{job_id}"
name = "bench-byte-lm"
[model]
d_model = {d_model}
layers = {layers}
heads = 4
seq_len = {seq_len}
[train]
workers = {workers}
rounds = {rounds}
inner_steps = {inner_steps}
batch_size = {batch}
inner_lr = {inner_lr}
warmup_steps = {min(50, inner_steps * rounds // 10)}
[outer]
stages = 2
delay = {str(delay).lower()}
lr = {OUTER_LR}
momentum = {OUTER_MOMENTUM}
[compression]
mode = "{compression}"
energy = {COMPRESSION["energy"]}
max_rank_fraction = {COMPRESSION["max_rank_fraction"]}
block = {COMPRESSION["block"]}
[elastic]
round_deadline = 600.0
checkpoint_every = {rounds}
[corpus]
max_bytes = 4194304
eval_bytes = 131072
"""


@click.command("train")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(2, 8))
@click.option("--rounds", default=8, show_default=True, type=click.IntRange(2))
@click.option("--inner-steps", default=25, show_default=True, type=click.IntRange(1))
@click.option("--d-model", default=64, show_default=True, type=click.IntRange(16))
@click.option("--layers", default=2, show_default=True, type=click.IntRange(1))
@click.option("--seq-len", default=64, show_default=True, type=click.IntRange(8))
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--link-mbps", default=100.0, show_default=True, type=click.FloatRange(min=0.001))
@click.option("--network-inner-steps", default=NETWORK_H, show_default=True, type=click.IntRange(1),
              help="H of the network run: long enough that a round's training outlasts its exchange")
@click.option("--part", type=click.Choice(["all", "quality", "network"]), default="all", show_default=True)
def train(workers: int, rounds: int, inner_steps: int, d_model: int, layers: int, seq_len: int, batch: int,
          link_mbps: float, network_inner_steps: int, part: str) -> None:
    """DiLoCoX: communication vs data-parallel, held-out loss vs data-parallel, idle share with/without delay."""
    from deaios.training import runtime

    runtime.configure()
    shape = dict(workers=workers, rounds=rounds, inner_steps=inner_steps, d_model=d_model, layers=layers,
                 seq_len=seq_len, batch=batch)
    params = {"workers": workers, "rounds": rounds, "H": inner_steps, "dModel": d_model, "layers": layers,
              "seqLen": seq_len, "batch": batch}
    if part in ("all", "quality"):
        quality(shape, params)
    if part in ("all", "network"):
        network({**shape, "inner_steps": network_inner_steps}, {**params, "H": network_inner_steps}, link_mbps)


def quality(shape: dict, params: dict) -> None:
    from deaios.training.config import JobConfig
    from deaios.training.corpus import Corpus, build
    from deaios.training.model import count_params, init_params
    from deaios.training.simulate import run_data_parallel, run_diloco

    def job(delay: bool, compression: str) -> JobConfig:
        return JobConfig.from_toml(bench_job(**shape, delay=delay, compression=compression))

    base = JobConfig.from_toml(bench_job(**shape, delay=True, compression="adaptive", inner_lr=DP_LR))
    corpus = Corpus.load(build(base.corpus)[0])
    n = count_params(init_params(base.model, base.train.seed))
    say = lambda message: click.echo(message, err=True)  # noqa: E731
    dp = run_data_parallel(base, corpus, say)
    runs = [run_diloco(job(False, "none"), corpus, "DiLoCo", say),
            run_diloco(job(True, "none"), corpus, "DiLoCoX, no compression", say),
            run_diloco(job(True, "adaptive"), corpus, "DiLoCoX", say)]
    tokens = shape["workers"] * shape["rounds"] * shape["inner_steps"] * shape["batch"] * shape["seq_len"]
    emit("train.quality.data_parallel", dp.eval_loss, "nats", **params, params_count=n, tokens=tokens, lr=DP_LR,
         seconds=round(dp.seconds, 1), curve=[round(x, 4) for x in dp.curve])
    for result in runs:
        emit(f"train.quality.{result.name}", result.eval_loss, "nats", **params, vs_data_parallel=round(
            result.eval_loss / dp.eval_loss - 1, 4), bytes_per_worker=result.bytes_per_worker,
            comm_reduction=round(dp.bytes_per_worker / max(1, result.bytes_per_worker), 1),
            seconds=round(result.seconds, 1), curve=[round(x, 4) for x in result.curve])


def network(shape: dict, params: dict, link_mbps: float) -> None:
    from deaios.stack.config import DEV_KEY_ROLES, dev_key
    from deaios.stack.launcher import project_root
    from deaios.stack.process import deaios, running_stack, stack_env
    from deaios.training.config import JobConfig
    from deaios.training.model import count_params, init_params

    keys: range = DEV_KEY_ROLES["training workers"]  # type: ignore[assignment]
    n = count_params(init_params(JobConfig.from_toml(bench_job(**shape, delay=True, compression="adaptive")).model, 0))
    steps = shape["rounds"] * shape["inner_steps"]
    with tempfile.TemporaryDirectory(prefix="deaios-bench-train-") as tmp:
        base = Path(tmp)
        click.echo("starting a stack (deaios up --nodes 4)", err=True)
        with running_stack(base / "data", nodes=4, home=base / "home") as run:
            for delay in (True, False):
                job_id = f"bench-{'delay' if delay else 'sync'}"
                path = base / f"{job_id}.toml"
                path.write_text(bench_job(**shape, delay=delay, compression="adaptive", job_id=job_id))
                started = deaios("train", "start", str(path), "--json", "--stack", str(run.dir), home=run.home)
                if started.returncode != 0:
                    raise click.ClickException(started.stderr)
                t0 = time.monotonic()
                procs = [subprocess.Popen(
                    [sys.executable, "-m", "deaios.cli", "train", "worker", "--job", job_id, "--index", str(i),
                     "--key", dev_key(keys[i]), "--single-thread", "--json", "--link-mbps", str(link_mbps),
                     "--stack", str(run.dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    env=stack_env(run.home), cwd=project_root()) for i in range(shape["workers"])]
                outs = [p.communicate() for p in procs]
                wall = time.monotonic() - t0
                for p, (_, err) in zip(procs, outs):
                    if p.returncode != 0:
                        raise click.ClickException(f"worker failed:\n{err[-3000:]}")
                lines = [[json.loads(x) for x in out.splitlines() if x.startswith("{")] for out, _ in outs]
                rounds = [[x for x in ls if "round" in x and "done" not in x] for ls in lines]
                idle = [sum(x["idleSeconds"] for x in rs) for rs in rounds]
                busy = [sum(x["trainSeconds"] for x in rs[1:]) for rs in rounds]  # round 0: compile warm-up excluded
                done = [ls[-1] for ls in lines]
                idle_rest = [sum(x["idleSeconds"] for x in rs[1:]) + d.get("finalIdleSeconds", 0)
                             for rs, d in zip(rounds, done)]
                sent = max(d["bytesSent"] for d in done)
                wire = max(d["wireBytesSent"].get("exchange", 0) for d in done)
                share = max(i / (i + b) for i, b in zip(idle_rest, busy) if i + b > 0)
                tag = "delay" if delay else "no_delay"
                phases = [x["exchangeSeconds"] for rs in rounds for x in rs if x.get("exchangeSeconds")]
                emit(f"train.network.{tag}.idle_share", 100 * share, "%", **params, link_mbps=link_mbps,
                     idle_seconds=[round(x, 2) for x in idle], train_seconds=[round(x, 2) for x in busy],
                     idle_per_round=[[round(x["idleSeconds"], 2) for x in rs] for rs in rounds],
                     final_idle_seconds=[d.get("finalIdleSeconds", 0) for d in done],
                     exchange_seconds={k: round(sum(p.get(k, 0) for p in phases) / max(1, len(phases)), 2)
                                       for k in ("upload", "report", "previous", "close", "average")},
                     wall_seconds=round(wall, 1))
                emit(f"train.network.{tag}.bytes_per_worker", sent, "bytes", **params, wire_exchange_bytes=wire,
                     data_parallel_bytes=4 * n * steps, reduction=round(4 * n * steps / max(1, sent), 1),
                     wire_reduction=round(4 * n * steps / max(1, wire), 1), params_count=n)
