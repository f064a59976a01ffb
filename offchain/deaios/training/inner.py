"""The inner optimizer: H AdamW steps (optax) on a worker's own batches, and the held-out evaluation.

AdamW (β = 0.9/0.95, weight decay on matrices, global-norm clipping at 1) with a linear warm-up and a
cosine decay to 10 % over the job's rounds × H steps. The optimizer state (moments and step count) stays
with the worker across rounds, as in DiLoCo; it is saved in the worker's state at checkpoints so a restart
continues the same trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from deaios.training.config import JobConfig
from deaios.training.model import loss

Tree = dict[str, np.ndarray]


def inner_optimizer(job: JobConfig) -> optax.GradientTransformation:
    t = job.train
    total = max(t.rounds * t.inner_steps, t.warmup_steps + 1)
    schedule = optax.warmup_cosine_decay_schedule(0.0, t.inner_lr, t.warmup_steps, total, end_value=t.inner_lr * 0.1)
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=t.weight_decay,
                    mask=lambda params: {k: v.ndim == 2 for k, v in params.items()}),
    )


def _train_step(tx, config, params, state, batch):
    value, grads = jax.value_and_grad(loss)(params, batch, config)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value


class InnerTrainer:
    def __init__(self, job: JobConfig) -> None:
        self.job = job
        self.tx = inner_optimizer(job)
        self._step = jax.jit(partial(_train_step, self.tx, job.model))
        self._loss = jax.jit(partial(loss, config=job.model))

    def init(self, params: Tree) -> optax.OptState:
        return self.tx.init({k: jnp.asarray(v) for k, v in params.items()})

    def run(self, params: Tree, state: optax.OptState, batch: Callable[[int], np.ndarray], steps: int,
            on_step: Callable[[int, float], None] | None = None) -> tuple[Tree, optax.OptState, float]:
        """`steps` AdamW steps on batch(0), batch(1), …; the new params, state and mean training loss."""
        current = {k: jnp.asarray(v) for k, v in params.items()}
        losses = []
        for i in range(steps):
            current, state, value = self._step(current, state, jnp.asarray(batch(i)))
            losses.append(value)
            if on_step:
                on_step(i, float(value))
        return {k: np.asarray(v) for k, v in current.items()}, state, float(np.mean(jax.device_get(losses)))

    def evaluate(self, params: Tree, windows: np.ndarray, batch: int = 64) -> float:
        """Mean next-byte loss (nats) over held-out windows [N, seq_len + 1]."""
        current = {k: jnp.asarray(v) for k, v in params.items()}
        total, count = 0.0, 0
        for start in range(0, len(windows) - batch + 1, batch):
            total += float(self._loss(current, jnp.asarray(windows[start:start + batch]))) * batch
            count += batch
        if count == 0:
            total, count = float(self._loss(current, jnp.asarray(windows))) * len(windows), len(windows)
        return total / count

    def warm_up(self, params: Tree, windows: np.ndarray) -> None:
        """Compile the training step and the evaluation (from the persistent cache when it has them)."""
        batch = np.zeros((self.job.train.batch_size, self.job.model.seq_len + 1), np.int32)
        self.run(params, self.init(params), lambda step: batch, 1)
        self.evaluate(params, windows)

    def state_arrays(self, state: optax.OptState) -> list[np.ndarray]:
        return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state)]

    def state_from_arrays(self, params: Tree, arrays: list[np.ndarray]) -> optax.OptState:
        treedef = jax.tree_util.tree_structure(self.init(params))
        if treedef.num_leaves != len(arrays):
            raise ValueError(f"inner state has {len(arrays)} arrays, expected {treedef.num_leaves}")
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays])
