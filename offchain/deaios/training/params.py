"""The model's parameters without JAX: their names and groups, the initial weights (numpy, from the seed),
their count and their hash. `deaios train start` and the checkpoint code need only these, so they do not
pay for importing JAX; `model.py` holds the transformer itself."""

from __future__ import annotations

import hashlib

import numpy as np

from deaios.training.config import ModelConfig


def group_names(config: ModelConfig) -> list[str]:
    """The parameter groups in forward order: what stages are cut from."""
    return ["embed", *(f"block{i}" for i in range(config.layers)), "head"]


def init_params(config: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Initial weights: N(0, 0.02) matrices (residual outputs scaled by 1/√(2·layers)), zero biases, unit
    LayerNorm gains. Drawn with numpy's PCG64 from `seed`, so they are the same on every machine and cost
    no compilation."""
    d, ff, v, t = config.d_model, config.ff, config.vocab, config.seq_len
    rng = np.random.default_rng(seed)
    std, out_std = 0.02, 0.02 / np.sqrt(2 * config.layers)

    def normal(shape: tuple[int, ...], scale: float) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    params: dict[str, np.ndarray] = {"embed.tok": normal((v, d), std), "embed.pos": normal((t, d), std)}
    for i in range(config.layers):
        p = f"block{i}."
        params.update({
            p + "ln1.g": np.ones(d), p + "ln1.b": np.zeros(d),
            p + "attn.qkv": normal((d, 3 * d), std), p + "attn.out": normal((d, d), out_std),
            p + "ln2.g": np.ones(d), p + "ln2.b": np.zeros(d),
            p + "mlp.in": normal((d, ff), std), p + "mlp.in_b": np.zeros(ff),
            p + "mlp.out": normal((ff, d), out_std), p + "mlp.out_b": np.zeros(d),
        })
    params.update({"head.ln.g": np.ones(d), "head.ln.b": np.zeros(d), "head.out": normal((d, v), std)})
    return {k: np.asarray(a, np.float32) for k, a in params.items()}


def count_params(params: dict[str, object]) -> int:
    return int(sum(np.prod(np.shape(a)) for a in params.values()))


def param_hash(params: dict[str, object]) -> str:
    """sha256 over every parameter's name, shape and float32 bytes, in name order: equal hashes mean
    bit-identical weights."""
    h = hashlib.sha256()
    for name in sorted(params):
        a = np.ascontiguousarray(np.asarray(params[name], dtype=np.float32))
        h.update(name.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a.astype("<f4", copy=False).tobytes())
    return "0x" + h.hexdigest()
