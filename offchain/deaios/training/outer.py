"""The outer step: SGD with Nesterov momentum (optax) on the averaged pseudo-gradient, one state per stage.

    Δ̄ = (1/|M|) Σ_{i∈M} Δ_i            (members M of the round, in worker order; Δ_i = θ_global − θ_i)
    m ← μ·m + Δ̄ ;  θ ← θ − lr·(Δ̄ + μ·m)  (optax.sgd(lr, μ, nesterov=True))

`average` sums in float64 in worker order and rounds once to float32; `OuterOptimizer.step` is one jitted
function of (params, state, Δ̄). Both are pure functions of their inputs, so every worker that applies them
to the same bytes in the same order gets bit-identical parameters (checked each round by parameter hash).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

Tree = dict[str, np.ndarray]


def average(deltas: list[Tree]) -> Tree:
    """The mean of the members' pseudo-gradients (given in worker order)."""
    if not deltas:
        raise ValueError("a round needs at least one pseudo-gradient")
    out = {}
    for name in deltas[0]:
        total = np.zeros(np.shape(deltas[0][name]), np.float64)
        for delta in deltas:
            total += np.asarray(delta[name], np.float64)
        out[name] = (total / len(deltas)).astype(np.float32)
    return out


class OuterOptimizer:
    """optax SGD + Nesterov for one stage's parameters."""

    def __init__(self, lr: float, momentum: float) -> None:
        self.tx = optax.sgd(learning_rate=lr, momentum=momentum, nesterov=True)
        self._step = jax.jit(partial(_step, self.tx))

    def init(self, params: Tree) -> optax.OptState:
        return self.tx.init({k: jnp.asarray(v) for k, v in params.items()})

    def step(self, params: Tree, state: optax.OptState, avg_delta: Tree) -> tuple[Tree, optax.OptState]:
        new, state = self._step({k: jnp.asarray(v) for k, v in params.items()}, state,
                                {k: jnp.asarray(v) for k, v in avg_delta.items()})
        return {k: np.asarray(v) for k, v in new.items()}, state

    # a state as plain arrays (checkpoints) and back
    def state_arrays(self, state: optax.OptState) -> list[np.ndarray]:
        return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(state)]

    def state_from_arrays(self, params: Tree, arrays: list[np.ndarray]) -> optax.OptState:
        template = self.init(params)
        treedef = jax.tree_util.tree_structure(template)
        if treedef.num_leaves != len(arrays):
            raise ValueError(f"outer state has {len(arrays)} arrays, expected {treedef.num_leaves}")
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays])


def _step(tx: optax.GradientTransformation, params, state, avg_delta):
    updates, state = tx.update(avg_delta, state, params)
    return optax.apply_updates(params, updates), state
