"""A byte-level decoder-only transformer in plain JAX (no framework: parameters are a flat dict of arrays).

Parameters are named `embed.*`, `block<i>.*`, `head.*` (see `init_params`); `stages.py` cuts the model
into pipeline stages along these groups. Pre-LayerNorm blocks with causal multi-head attention and a GELU
MLP, learned positions, an untied output head over the 256 byte values. `loss` is the mean next-byte
cross-entropy (nats); `generate` samples bytes from a prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from deaios.training.config import ModelConfig
from deaios.training.params import count_params, group_names, init_params, param_hash

Params = dict[str, jax.Array]
__all__ = ["count_params", "forward", "generate", "group_names", "init_params", "loss", "param_hash"]


def _layer_norm(x: jax.Array, g: jax.Array, b: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * g + b


def forward(params: Params, tokens: jax.Array, config: ModelConfig) -> jax.Array:
    """Logits [B, T, 256] for byte tokens [B, T] (T ≤ seq_len)."""
    b, t = tokens.shape
    h_count, d = config.heads, config.d_model
    x = params["embed.tok"][tokens] + params["embed.pos"][:t]
    causal = jnp.tril(jnp.ones((t, t), bool))
    for i in range(config.layers):
        p = f"block{i}."
        h = _layer_norm(x, params[p + "ln1.g"], params[p + "ln1.b"])
        q, k, v = jnp.split(h @ params[p + "attn.qkv"], 3, axis=-1)
        q, k, v = (z.reshape(b, t, h_count, d // h_count) for z in (q, k, v))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // h_count)
        weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
        attended = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d)
        x = x + attended @ params[p + "attn.out"]
        h = _layer_norm(x, params[p + "ln2.g"], params[p + "ln2.b"])
        h = jax.nn.gelu(h @ params[p + "mlp.in"] + params[p + "mlp.in_b"])
        x = x + h @ params[p + "mlp.out"] + params[p + "mlp.out_b"]
    x = _layer_norm(x, params["head.ln.g"], params["head.ln.b"])
    return x @ params["head.out"]


def loss(params: Params, batch: jax.Array, config: ModelConfig) -> jax.Array:
    """Mean next-byte cross-entropy (nats) of a batch of windows [B, T + 1]."""
    logits = forward(params, batch[:, :-1], config)
    targets = batch[:, 1:]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1).mean()


def loss_fn(config: ModelConfig) -> Callable[[Params, jax.Array], jax.Array]:
    return jax.jit(partial(loss, config=config))


def generate(params: Params, config: ModelConfig, prompt: bytes, length: int, temperature: float = 0.8,
             seed: int = 0) -> bytes:
    """Sample `length` bytes after `prompt` (the last seq_len bytes are the context)."""
    step = jax.jit(partial(forward, config=config))
    rng = np.random.default_rng(seed)
    out = bytearray(prompt or b"\n")
    for _ in range(length):
        window = np.frombuffer(bytes(out[-config.seq_len:]), np.uint8)
        context = np.zeros((1, config.seq_len), np.int32)  # right-padded: causal, so padding is never seen
        context[0, :len(window)] = window
        logits = np.asarray(step(params, context)[0, len(window) - 1], np.float64)
        if temperature <= 0:
            out.append(int(logits.argmax()))
            continue
        z = logits / temperature
        probs = np.exp(z - z.max())
        out.append(int(rng.choice(256, p=probs / probs.sum())))
    return bytes(out[len(prompt or b"\n"):])
