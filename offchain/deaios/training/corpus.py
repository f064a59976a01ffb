"""The training corpus: real text, split deterministically into per-worker shards and a held-out set.

`build` collects text files — by default the Python standard library's own `.py` sources, found through
`sysconfig` (present on every machine; `site-packages` and test suites left out), or every UTF-8 file
under `--corpus DIR` — orders them by sha256 of their relative path, puts whole files into the held-out
evaluation set until it has `eval_bytes` (files whose hash's first byte is a multiple of 8, i.e. ~1 in 8),
and the rest into the training text until `max_bytes`. `deaios train start` stores the result as one file
in the log, so every worker trains on the same bytes whatever Python its machine has.

Worker i of k trains on the i-th of k equal contiguous slices of the training text (`shard`). Its batch at
data position p (its p-th inner step) is a pure function of (seed, i, p) (`batch_at`): random windows of
seq_len + 1 bytes, so a restarted worker continues with exactly the batches it would have seen.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from pathlib import Path

import numpy as np

from deaios.training import tensorfile
from deaios.training.config import CorpusConfig

SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}


def _walk(root: Path, suffix: str = "") -> list[Path]:
    """Files under root (skipping SKIP_DIRS without descending into them), in path order."""
    out = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        out.extend(Path(directory) / name for name in sorted(files) if name.endswith(suffix))
    return out


def stdlib_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return root, _walk(root, ".py")


def dir_files(root: Path) -> list[Path]:
    return _walk(root)


def build(config: CorpusConfig, directory: Path | None = None) -> tuple[bytes, dict[str, object]]:
    """The corpus file (tensorfile: uint8 arrays "train" and "eval") and a summary. ValueError if there is
    too little text."""
    if directory is None:
        root, files = stdlib_files()
        source = f"python stdlib {sysconfig.get_python_version()} ({root})"
    else:
        root, files = directory, dir_files(directory)
        source = str(directory)
    keyed = sorted((hashlib.sha256(str(p.relative_to(root)).encode()).digest(), p) for p in files)
    train, held_out = bytearray(), bytearray()
    docs = {"train": 0, "eval": 0}
    budget = config.max_bytes - config.eval_bytes
    for digest, path in keyed:
        try:
            text = path.read_bytes()
            text.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text.strip():
            continue
        doc = b"# " + str(path.relative_to(root)).encode() + b"\n" + text + b"\n\n"
        if digest[0] % 8 == 0 and len(held_out) < config.eval_bytes:
            held_out += doc
            docs["eval"] += 1
        elif len(train) < budget:
            train += doc
            docs["train"] += 1
        if len(train) >= budget and len(held_out) >= config.eval_bytes:
            break
    train, held_out = train[:budget], held_out[:config.eval_bytes]
    if len(train) < 4096 or len(held_out) < 1024:
        raise ValueError(f"too little text in {source}: {len(train)} training bytes, {len(held_out)} held out "
                         f"(need ≥ 4096 and ≥ 1024)")
    summary = {"source": source, "trainBytes": len(train), "evalBytes": len(held_out),
               "trainFiles": docs["train"], "evalFiles": docs["eval"]}
    data = tensorfile.pack({"train": np.frombuffer(bytes(train), np.uint8),
                            "eval": np.frombuffer(bytes(held_out), np.uint8)}, summary)
    return data, summary


class Corpus:
    def __init__(self, train: np.ndarray, held_out: np.ndarray) -> None:
        self.train, self.eval = train, held_out

    @classmethod
    def load(cls, data: bytes) -> "Corpus":
        arrays, _ = tensorfile.unpack(data)
        return cls(arrays["train"], arrays["eval"])

    def shard(self, workers: int, index: int) -> np.ndarray:
        size = len(self.train) // workers
        return self.train[index * size:(index + 1) * size]

    def eval_windows(self, seq_len: int) -> np.ndarray:
        """Non-overlapping windows of seq_len + 1 bytes over the held-out text, [N, seq_len + 1] int32."""
        n = len(self.eval) // (seq_len + 1)
        return self.eval[:n * (seq_len + 1)].reshape(n, seq_len + 1).astype(np.int32)


def batch_at(shard: np.ndarray, seed: int, worker: int, position: int, batch_size: int, seq_len: int) -> np.ndarray:
    """Worker `worker`'s batch at data position `position`: [batch_size, seq_len + 1] int32."""
    if len(shard) <= seq_len + 1:
        raise ValueError(f"a shard of {len(shard)} bytes is too small for windows of {seq_len + 1}")
    rng = np.random.default_rng([seed, worker, position])
    starts = rng.integers(0, len(shard) - seq_len - 1, size=batch_size)
    return np.stack([shard[s:s + seq_len + 1] for s in starts]).astype(np.int32)
