"""A training job: what JOB.toml says, checked, and the canonical JSON every worker reads from the log.

    [job]          id = "tiny" (optional: default the first 12 hex digits of the job file's root), name = "…"
    [model]        d_model, layers, heads, seq_len, d_ff (default 4·d_model)
    [train]        workers, rounds, inner_steps (H), batch_size, inner_lr, warmup_steps, weight_decay, seed,
                   accounts (who may write the ledger; default the local stack's training dev accounts)
    [outer]        lr (0.7), momentum (0.9), stages, delay (one-step-delay overlap, default true)
    [compression]  mode = "adaptive" | "none", energy, int4_max_error, max_rank_fraction, block
    [elastic]      round_deadline (s), checkpoint_every (rounds), close_grace (s)
    [corpus]       max_bytes, eval_bytes (the corpus itself: the Python standard library, or --corpus DIR)

Every section and key is optional; unknown keys are errors (a typo must not silently train something else).
`JobConfig.from_toml` raises ValueError with the offending key; the CLI turns it into a UserError.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    seq_len: int = 64
    d_ff: int = 0  # 0: 4·d_model
    vocab: int = 256  # bytes

    @property
    def ff(self) -> int:
        return self.d_ff or 4 * self.d_model


@dataclass(frozen=True)
class TrainConfig:
    workers: int = 3
    rounds: int = 6
    inner_steps: int = 20
    batch_size: int = 8
    inner_lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    seed: int = 0
    #: accounts (0x…) allowed to write the job's ledger; empty: the local stack's training dev accounts
    accounts: tuple = ()


@dataclass(frozen=True)
class OuterConfig:
    lr: float = 0.7
    momentum: float = 0.9
    stages: int = 2
    delay: bool = True


@dataclass(frozen=True)
class CompressionConfig:
    mode: str = "adaptive"  # "adaptive": low rank + int4/int8 with error feedback; "none": fp32
    energy: float = 0.8  # smallest rank keeping this share of a matrix's squared singular values
    int4_max_error: float = 0.15  # int4 when its measured relative error is at most this, else int8
    max_rank_fraction: float = 0.25  # rank at most this share of min(rows, cols)
    block: int = 64  # values per quantization scale


@dataclass(frozen=True)
class ElasticConfig:
    round_deadline: float = 120.0  # seconds after a worker's report before it closes the round without the late
    checkpoint_every: int = 2
    close_grace: float = 2.0  # seconds others wait for the designated closer before closing themselves


@dataclass(frozen=True)
class CorpusConfig:
    max_bytes: int = 4 << 20
    eval_bytes: int = 128 << 10


@dataclass(frozen=True)
class JobConfig:
    id: str = ""
    name: str = "deaios-byte-lm"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    outer: OuterConfig = field(default_factory=OuterConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    elastic: ElasticConfig = field(default_factory=ElasticConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    # -- parsing -------------------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, text: str) -> "JobConfig":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {exc}") from None
        job = data.pop("job", {})
        if not isinstance(job, dict):
            raise ValueError("[job] must be a table")
        return cls.from_json({**{k: v for k, v in job.items()}, **data})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JobConfig":
        sections = {"model": ModelConfig, "train": TrainConfig, "outer": OuterConfig,
                    "compression": CompressionConfig, "elastic": ElasticConfig, "corpus": CorpusConfig}
        unknown = set(data) - set(sections) - {"id", "name"}
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
        built = {name: _section(name, kind, data.get(name, {})) for name, kind in sections.items()}
        config = cls(id=str(data.get("id", "")), name=str(data.get("name", cls.name)), **built)
        config.validate()
        return config

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def canonical(self) -> bytes:
        """The job file stored in the log: sorted-key JSON (the same config always gives the same bytes)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def with_id(self, job_id: str) -> "JobConfig":
        return JobConfig.from_json({**self.to_json(), "id": job_id})

    # -- checks --------------------------------------------------------------------------------------------
    def validate(self) -> None:
        m, t, o, c, e = self.model, self.train, self.outer, self.compression, self.elastic
        if self.id and not JOB_ID.match(self.id):
            raise ValueError(f"job id {self.id!r}: letters, digits, '.', '_' and '-' only, at most 64")
        checks = [
            (m.d_model >= 8 and m.d_model % m.heads == 0, "model.d_model must be ≥ 8 and a multiple of model.heads"),
            (m.heads >= 1 and m.layers >= 1, "model.heads and model.layers must be ≥ 1"),
            (8 <= m.seq_len <= 4096, "model.seq_len must be 8…4096"),
            (m.vocab == 256, "model.vocab is 256 (a byte-level model)"),
            (m.d_ff >= 0, "model.d_ff must be ≥ 0 (0: 4·d_model)"),
            (1 <= t.workers <= 64, "train.workers must be 1…64"),
            (t.rounds >= 1 and t.inner_steps >= 1 and t.batch_size >= 1, "train.rounds, inner_steps, batch_size ≥ 1"),
            (t.inner_lr > 0 and t.warmup_steps >= 0 and t.weight_decay >= 0, "train.inner_lr > 0, warmup ≥ 0, wd ≥ 0"),
            (o.lr > 0 and 0 <= o.momentum < 1, "outer.lr must be > 0 and outer.momentum in [0, 1)"),
            (1 <= o.stages <= m.layers + 2, "outer.stages must be 1…layers + 2"),
            (c.mode in ("adaptive", "none"), 'compression.mode must be "adaptive" or "none"'),
            (0 < c.energy <= 1 and 0 < c.max_rank_fraction <= 1, "compression.energy and max_rank_fraction in (0, 1]"),
            (c.int4_max_error >= 0 and c.block >= 2 and c.block % 2 == 0, "compression.int4_max_error ≥ 0, block even ≥ 2"),
            (e.round_deadline > 0 and e.checkpoint_every >= 1 and e.close_grace >= 0,
             "elastic.round_deadline > 0, checkpoint_every ≥ 1, close_grace ≥ 0"),
            (self.corpus.max_bytes >= 4096 and 1024 <= self.corpus.eval_bytes < self.corpus.max_bytes,
             "corpus.max_bytes ≥ 4096 and 1024 ≤ corpus.eval_bytes < max_bytes"),
        ]
        for account in t.accounts:
            if not (isinstance(account, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", account)):
                raise ValueError(f"train.accounts: {account!r} is not a 0x-prefixed 20-byte address")
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def _section(name: str, kind: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"[{name}] must be a table")
    allowed = {f.name: f for f in fields(kind)}
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"[{name}] unknown key(s): {', '.join(sorted(unknown))}")
    out = {}
    for key, value in values.items():
        want = type(getattr(kind(), key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{name}.{key} must be {want.__name__}, got {value!r}")
        out[key] = value
    return kind(**out)
