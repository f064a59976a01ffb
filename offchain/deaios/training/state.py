"""The global state every worker holds identically, how rounds move it, and how it is checkpointed.

State S_r (at the start of round r): the global weights x_r, each stage's outer-optimizer state, and — with
the one-step delay — the averaged pseudo-gradient of round r − 1, received but not applied yet.

    receive(avg_r):  no delay: x ← Outer(x, avg_r)          delay: pending ← avg_r
    advance():       no delay: r ← r + 1                    delay: x ← Outer(x, pending) (if any); r ← r + 1

A worker without delay ends round r with exchange(r) → receive → advance. With the delay it ends round r
with receive(avg_{r−1}) (the exchange that ran during round r) → advance (x_{r+1} = Outer(x_r, avg_{r−1}))
→ starts exchange(r) in the background and trains round r + 1: the update lands one round late.
`finish()` applies the last pending average, so both variants make the same number of outer steps. A
worker that joins replays closed rounds from the log with the same two functions.

With the delay, a worker does not restart each round from x_r (which lacks the average still in flight,
so its next pseudo-gradient would count the same progress twice): it starts round r from x_r − Δ_{r−1},
its own last pseudo-gradient on top of the global weights, and Δ_r is measured from that start.

A checkpoint of S_r (`pack`/`unpack`, a tensorfile) also records each worker's data position; a worker's
own state at round r (inner AdamW state, error-feedback residuals, data position, Δ_{r−1}) is a separate
file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deaios.training import stages, tensorfile
from deaios.training.config import JobConfig
from deaios.training.params import init_params, param_hash
from deaios.training.outer import OuterOptimizer

Tree = dict[str, np.ndarray]


@dataclass
class GlobalState:
    job: JobConfig
    round: int
    params: Tree
    outer_states: list  # one optax state per stage
    pending: list[Tree] | None = None  # delay: avg of round − 1 per stage, not applied yet
    positions: dict[int, int] = field(default_factory=dict)  # worker → data position at the start of `round`

    def __post_init__(self) -> None:
        self.groups = stages.stage_groups(self.job.model, self.job.outer.stages)
        self.outer = OuterOptimizer(self.job.outer.lr, self.job.outer.momentum)

    @classmethod
    def initial(cls, job: JobConfig) -> "GlobalState":
        params = {k: np.asarray(v) for k, v in init_params(job.model, job.train.seed).items()}
        state = cls(job, 0, params, [])
        state.outer_states = [state.outer.init(part) for part in stages.split(params, state.groups)]
        return state

    def hash(self) -> str:
        return param_hash(self.params)

    def stage_params(self) -> list[Tree]:
        return stages.split(self.params, self.groups)

    def _apply(self, avg: list[Tree]) -> None:
        parts = self.stage_params()
        for s, delta in enumerate(avg):
            parts[s], self.outer_states[s] = self.outer.step(parts[s], self.outer_states[s], delta)
        self.params = stages.merge(parts)

    def warm_up(self) -> None:
        """Compile each stage's outer step (the state is left as it is)."""
        for s, part in enumerate(self.stage_params()):
            self.outer.step(part, self.outer_states[s], {k: np.zeros_like(v) for k, v in part.items()})

    def receive(self, avg: list[Tree]) -> None:
        if self.job.outer.delay:
            self.pending = avg
        else:
            self._apply(avg)

    def advance(self) -> None:
        if self.job.outer.delay and self.pending is not None:
            self._apply(self.pending)
            self.pending = None
        self.round += 1

    def finish(self) -> None:
        """Apply what is still pending (the last round's average, with the delay)."""
        if self.pending is not None:
            self._apply(self.pending)
            self.pending = None

    # -- checkpoints ---------------------------------------------------------------------------------------
    def pack(self, meta: dict | None = None) -> bytes:
        arrays = {f"param|{k}": v for k, v in sorted(self.params.items())}
        for s, st in enumerate(self.outer_states):
            for j, leaf in enumerate(self.outer.state_arrays(st)):
                arrays[f"outer|{s}|{j}"] = leaf
        for s, part in enumerate(self.pending or []):
            for k, v in sorted(part.items()):
                arrays[f"pending|{s}|{k}"] = v
        info = {"job": self.job.id, "round": self.round, "hash": self.hash(), "pending": self.pending is not None,
                "positions": {str(w): p for w, p in sorted(self.positions.items())}, **(meta or {})}
        return tensorfile.pack(arrays, info)

    @classmethod
    def unpack(cls, job: JobConfig, data: bytes) -> tuple["GlobalState", dict]:
        arrays, meta = tensorfile.unpack(data)
        params = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith("param|")}
        state = cls(job, int(meta["round"]), params, [])
        if state.hash() != meta.get("hash"):
            raise ValueError("checkpoint parameters do not match the hash recorded in it")
        for s, part in enumerate(state.stage_params()):
            leaves = [arrays[f"outer|{s}|{j}"] for j in range(sum(1 for k in arrays if k.startswith(f"outer|{s}|")))]
            state.outer_states.append(state.outer.state_from_arrays(part, leaves))
        if meta.get("pending"):
            state.pending = [{k: arrays[f"pending|{s}|{k}"] for k in part} for s, part in enumerate(state.stage_params())]
        state.positions = {int(w): int(p) for w, p in meta.get("positions", {}).items()}
        return state, meta


def pack_local(inner_arrays: list[np.ndarray], residuals: list[Tree | None], position: int, carry: Tree | None,
               meta: dict) -> bytes:
    """A worker's own state at the start of a round: inner optimizer state, residuals, data position, and
    (with the delay) its last pseudo-gradient, which its next round starts from."""
    arrays = {f"inner|{j}": a for j, a in enumerate(inner_arrays)}
    for s, part in enumerate(residuals):
        for k, v in sorted((part or {}).items()):
            arrays[f"residual|{s}|{k}"] = v
    for k, v in sorted((carry or {}).items()):
        arrays[f"carry|{k}"] = v
    return tensorfile.pack(arrays, {**meta, "position": position, "stages": len(residuals)})


def unpack_local(data: bytes) -> tuple[list[np.ndarray], list[Tree | None], int, Tree | None, dict]:
    arrays, meta = tensorfile.unpack(data)
    inner = [arrays[f"inner|{j}"] for j in range(sum(1 for k in arrays if k.startswith("inner|")))]
    residuals: list[Tree | None] = []
    for s in range(int(meta["stages"])):
        part = {k.split("|", 2)[2]: v for k, v in arrays.items() if k.startswith(f"residual|{s}|")}
        residuals.append(part or None)
    carry = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith("carry|")}
    return inner, residuals, int(meta["position"]), carry or None, meta
