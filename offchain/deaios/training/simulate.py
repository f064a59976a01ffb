"""In-process runs for the quality comparison of `deaios bench train`: DiLoCo(X) with k simulated workers, and
the synchronous data-parallel baseline, on the same model, data and number of tokens.

`run_diloco` drives exactly the pieces a real worker uses (InnerTrainer, Compressor, GlobalState's
receive/advance, `outer.average`), with the exchange replaced by a function call: worker i's batch at
step p is `corpus.batch_at(shard_i, seed, i, p)` in both. When every worker takes part in every round its
trajectory is the real workers' bit for bit (the end-to-end test compares the parameter hashes). `run_data_parallel` takes one AdamW step per
step on the mean gradient of all k workers' batches of that step (the same tokens as k workers × H × rounds),
with the same inner optimizer and schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from deaios.training import stages
from deaios.training.compression import Compressor, decompress
from deaios.training.config import JobConfig
from deaios.training.corpus import Corpus, batch_at
from deaios.training.inner import InnerTrainer, inner_optimizer
from deaios.training.model import init_params, loss
from deaios.training.outer import average
from deaios.training.state import GlobalState


@dataclass
class RunResult:
    name: str
    eval_loss: float
    bytes_per_worker: int  # pseudo-gradient payload bytes one worker sends over the whole run
    seconds: float
    curve: list[float] = field(default_factory=list)  # held-out loss after each round
    hashes: list[str] = field(default_factory=list)  # DiLoCo(X): hash of x_r, as round r's reports carry it
    final_hash: str = ""  # DiLoCo(X): the hash of the final weights, as the workers print it


def run_diloco(job: JobConfig, corpus: Corpus, name: str, log: Callable[[str], None] = lambda m: None) -> RunResult:
    k, h = job.train.workers, job.train.inner_steps
    trainer = InnerTrainer(job)
    compressor = Compressor(job.compression)
    state = GlobalState.initial(job)
    shards = [corpus.shard(k, i) for i in range(k)]
    inner_states = [trainer.init(state.params) for _ in range(k)]
    residuals: list[list] = [[None] * job.outer.stages for _ in range(k)]
    windows = corpus.eval_windows(job.model.seq_len)
    sent, curve, started = 0, [], time.perf_counter()
    carry: list[dict | None] = [None] * k  # with the delay: each worker's last pseudo-gradient
    hashes: list[str] = []
    for r in range(job.train.rounds):
        hashes.append(state.hash())
        deltas: list[list] = []
        for i in range(k):
            start = state.params if carry[i] is None else {n: (v - carry[i][n]).astype(np.float32)
                                                           for n, v in state.params.items()}
            local, inner_states[i], _ = trainer.run(
                start, inner_states[i],
                lambda step, i=i: batch_at(shards[i], job.train.seed, i, r * h + step, job.train.batch_size,
                                           job.model.seq_len), h)
            per_stage = []
            if job.outer.delay:
                carry[i] = {n: (start[n] - local[n]).astype(np.float32) for n in start}
            for s, (g, l) in enumerate(zip(stages.split(start, state.groups), stages.split(local, state.groups))):
                delta = {n: (g[n] - l[n]).astype(np.float32) for n in g}
                payload, residuals[i][s], _ = compressor.compress(delta, residuals[i][s])
                if i == 0:
                    sent += len(payload)
                per_stage.append(decompress(payload))
            deltas.append(per_stage)
        avg = [average([d[s] for d in deltas]) for s in range(job.outer.stages)]
        if job.outer.delay:  # the average of round r lands at the end of round r + 1
            state.advance()
            state.receive(avg)
        else:
            state.receive(avg)
            state.advance()
        curve.append(trainer.evaluate(state.params, windows))  # with the delay: x without the pending average
        log(f"{name}: round {r + 1}/{job.train.rounds} held-out loss {curve[-1]:.4f}")
    state.finish()
    return RunResult(name, trainer.evaluate(state.params, windows), sent, time.perf_counter() - started, curve,
                     hashes, state.hash())


def run_data_parallel(job: JobConfig, corpus: Corpus, log: Callable[[str], None] = lambda m: None) -> RunResult:
    k, h, steps = job.train.workers, job.train.inner_steps, job.train.rounds * job.train.inner_steps
    tx = inner_optimizer(job)
    params = init_params(job.model, job.train.seed)
    opt_state = tx.init(params)
    shards = [corpus.shard(k, i) for i in range(k)]

    @jax.jit
    def step(params, opt_state, batch):  # batch [k·B, T + 1]: the mean gradient over all workers' windows
        value, grads = jax.value_and_grad(loss)(params, batch, job.model)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    trainer = InnerTrainer(job)
    windows = corpus.eval_windows(job.model.seq_len)
    curve, started = [], time.perf_counter()
    for p in range(steps):
        batch = np.concatenate([batch_at(shards[i], job.train.seed, i, p, job.train.batch_size, job.model.seq_len)
                                for i in range(k)])
        params, opt_state, _ = step(params, opt_state, jnp.asarray(batch))
        if (p + 1) % h == 0:
            curve.append(trainer.evaluate({n: np.asarray(v) for n, v in params.items()}, windows))
            log(f"data-parallel: step {p + 1}/{steps} held-out loss {curve[-1]:.4f}")
    n_params = sum(int(np.prod(v.shape)) for v in params.values())
    return RunResult("data-parallel (fp32 all-reduce every step)", curve[-1], 4 * n_params * steps,
                     time.perf_counter() - started, curve)
