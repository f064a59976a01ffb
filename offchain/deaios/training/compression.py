"""Adaptive compression of pseudo-gradients: low-rank factors + int4/int8 quantization, with error feedback.

For each tensor of a stage's pseudo-gradient, the worker compresses target = Δ + e (e: the residual it
carried from the previous round) and keeps e' = target − decode(encode(target)) for the next round, so
what compression drops is sent later instead of lost. The rule, applied per tensor and per round:

* **rank** (matrices only): the smallest r whose top-r singular values hold at least `energy` of
  ‖target‖²_F, capped at ⌊max_rank_fraction · min(m, n)⌋ (at least 1). The factors P = U_r·S_r (m×r)
  and Q = V_rᵀ (r×n) are sent instead of the matrix when r·(m + n) < m·n / 2; otherwise the matrix is
  sent dense.
* **bits** (every array sent): blockwise symmetric quantization (`block` values share one float32 scale
  max|x|/q_max). int4 (q_max 7, two values per byte) when its relative error ‖x̂ − x‖/‖x‖, measured on
  this array now, is at most `int4_max_error`; else int8 (q_max 127, error ≤ 1/254 of each block's max).

Stated error (what tests check): int8 per value |x̂ − x| ≤ scale/2 = max|block|/254, int4 ≤ max|block|/14;
low rank: ‖target − P·Q‖_F² = Σ_{i>r} σ_i² ≤ (1 − energy)·‖target‖²_F before quantization.

Decoding is pure numpy without BLAS (einsum, optimize=False) so every worker rebuilds bit-identical
tensors from the same bytes. Mode "none" sends float32 as is (no residual).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deaios.training import tensorfile
from deaios.training.config import CompressionConfig

Tree = dict[str, np.ndarray]


@dataclass
class TensorChoice:
    name: str
    kind: str  # "lowrank" | "dense" | "fp32"
    shape: list[int]
    rank: int
    bits: list[int]  # per array sent (P, Q) or (values,)
    energy: float  # share of ‖target‖² the low-rank factors hold (1 for dense)
    rel_error: float  # ‖target − sent‖ / ‖target‖, after quantization


@dataclass
class StageStats:
    bytes: int
    raw_bytes: int  # float32 size of the stage
    rel_error: float
    tensors: list[TensorChoice]

    def summary(self) -> dict[str, object]:
        ranks = [t.rank for t in self.tensors if t.kind == "lowrank"]
        bits = [b for t in self.tensors for b in t.bits]
        return {"bytes": self.bytes, "ratio": round(self.raw_bytes / max(1, self.bytes), 1),
                "relError": round(self.rel_error, 4), "lowRank": len(ranks),
                "meanRank": round(float(np.mean(ranks)), 2) if ranks else 0,
                "int4": bits.count(4), "int8": bits.count(8)}


# -- quantization ------------------------------------------------------------------------------------------
def quantize(x: np.ndarray, bits: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, scales) of a float array: int8 codes, or int4 codes packed two per byte (uint8)."""
    qmax = 7 if bits == 4 else 127
    flat = np.asarray(x, np.float32).ravel()
    padded = np.zeros(-(-flat.size // block) * block, np.float32)
    padded[:flat.size] = flat
    blocks = padded.reshape(-1, block)
    scales = (np.abs(blocks).max(axis=1) / qmax).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.rint(blocks / safe[:, None]), -qmax, qmax).astype(np.int8)
    if bits == 8:
        return codes.ravel(), scales
    nibbles = (codes.ravel() + 8).astype(np.uint8)
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8), scales


def dequantize(codes: np.ndarray, scales: np.ndarray, bits: int, block: int, shape: tuple[int, ...]) -> np.ndarray:
    if bits == 4:
        values = np.empty(codes.size * 2, np.int8)
        values[0::2] = (codes & 0x0F).astype(np.int8) - 8
        values[1::2] = (codes >> 4).astype(np.int8) - 8
    else:
        values = codes.astype(np.int8)
    out = (values.reshape(-1, block).astype(np.float32) * scales[:, None]).ravel()
    return out[:int(np.prod(shape))].reshape(shape)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a))
    return float(np.linalg.norm(a - b)) / norm if norm > 0 else 0.0


class Compressor:
    def __init__(self, config: CompressionConfig) -> None:
        self.config = config

    def _quantize_auto(self, name: str, x: np.ndarray, arrays: Tree) -> tuple[int, np.ndarray]:
        """Quantize with the bits rule; store codes and scales under `name`; return (bits, decoded)."""
        block = self.config.block
        for bits in (4, 8):
            codes, scales = quantize(x, bits, block)
            decoded = dequantize(codes, scales, bits, block, x.shape)
            if bits == 8 or _rel(x, decoded) <= self.config.int4_max_error:
                arrays[name + "|q"], arrays[name + "|s"] = codes, scales
                return bits, decoded
        raise AssertionError("unreachable")

    def compress(self, delta: Tree, residual: Tree | None) -> tuple[bytes, Tree | None, StageStats]:
        """Encode one stage's pseudo-gradient; returns (payload, residual for next round, stats)."""
        raw = sum(int(np.asarray(v).size) * 4 for v in delta.values())
        if self.config.mode == "none":
            arrays = {name: np.asarray(v, np.float32) for name, v in sorted(delta.items())}
            meta = [TensorChoice(n, "fp32", list(a.shape), 0, [32], 1.0, 0.0) for n, a in arrays.items()]
            payload = tensorfile.pack(arrays, {"t": [_wire(t) for t in meta]})
            return payload, None, StageStats(len(payload), raw, 0.0, meta)
        arrays: Tree = {}
        choices: list[TensorChoice] = []
        new_residual: Tree = {}
        total_err, total_norm = 0.0, 0.0
        for name in sorted(delta):
            target = np.asarray(delta[name], np.float32)
            if residual is not None and name in residual:
                target = (target + residual[name]).astype(np.float32)
            choice, sent = self._one(name, target, arrays)
            choices.append(choice)
            new_residual[name] = (target - sent).astype(np.float32)
            total_err += float(np.sum((target.astype(np.float64) - sent) ** 2))
            total_norm += float(np.sum(target.astype(np.float64) ** 2))
        payload = tensorfile.pack(arrays, {"t": [_wire(t) for t in choices], "block": self.config.block}, deflate=True)
        rel = (total_err / total_norm) ** 0.5 if total_norm > 0 else 0.0
        return payload, new_residual, StageStats(len(payload), raw, rel, choices)

    def _one(self, name: str, target: np.ndarray, arrays: Tree) -> tuple[TensorChoice, np.ndarray]:
        c = self.config
        if target.ndim == 2 and min(target.shape) >= 2:
            m, n = target.shape
            u, s, vt = np.linalg.svd(target.astype(np.float64), full_matrices=False)
            energy = s ** 2
            total = float(energy.sum())
            cap = max(1, int(c.max_rank_fraction * min(m, n)))
            if total > 0:
                rank = int(np.searchsorted(np.cumsum(energy) / total, c.energy - 1e-12) + 1)
            else:
                rank = 1
            rank = min(rank, cap)
            if rank * (m + n) < m * n / 2:
                p = (u[:, :rank] * s[:rank]).astype(np.float32)
                q = vt[:rank].astype(np.float32)
                bits_p, p_hat = self._quantize_auto(name + "|P", p, arrays)
                bits_q, q_hat = self._quantize_auto(name + "|Q", q, arrays)
                sent = _product(p_hat, q_hat)
                kept = float(energy[:rank].sum() / total) if total > 0 else 1.0
                return TensorChoice(name, "lowrank", [m, n], rank, [bits_p, bits_q], kept, _rel(target, sent)), sent
        bits, sent = self._quantize_auto(name, target, arrays)
        return TensorChoice(name, "dense", list(target.shape), 0, [bits], 1.0, _rel(target, sent)), sent


def _product(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """P·Q in float64 by numpy's own loops (no BLAS threads), rounded once: identical on every worker."""
    return np.einsum("ir,rj->ij", p.astype(np.float64), q.astype(np.float64), optimize=False).astype(np.float32)


def _wire(t: TensorChoice) -> list:
    """What a decoder needs of a tensor's choice (the header stays small: the rest is in the report's stats)."""
    return [t.name, t.kind, t.shape, t.rank, t.bits]


def decompress(payload: bytes) -> Tree:
    """The pseudo-gradient a payload encodes (ValueError if it is not one)."""
    arrays, meta = tensorfile.unpack(payload)
    out: Tree = {}
    try:
        block = int(meta.get("block", 0))
        for name, kind, shape, rank, bits in meta["t"]:
            shape = tuple(shape)
            if kind == "fp32":
                out[name] = arrays[name].astype(np.float32).reshape(shape)
            elif kind == "dense":
                out[name] = dequantize(arrays[name + "|q"], arrays[name + "|s"], bits[0], block, shape)
            elif kind == "lowrank":
                r = int(rank)
                p = dequantize(arrays[name + "|P|q"], arrays[name + "|P|s"], bits[0], block, (shape[0], r))
                q = dequantize(arrays[name + "|Q|q"], arrays[name + "|Q|s"], bits[1], block, (r, shape[1]))
                out[name] = _product(p, q)
            else:
                raise ValueError(f"unknown tensor kind {kind!r}")
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"malformed pseudo-gradient payload: {exc}") from None
    return out
