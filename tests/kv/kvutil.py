"""Helpers for the KV tests: an in-memory log replayed into a real index, and the official-SDK driver."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deaios.kv.codec import StreamData, build_tags, stream_ids_from_tags
from deaios.kv.replay import Replayer, StreamConfig
from deaios.kv.store import KvIndex, TxRecord

ROOT = Path(__file__).resolve().parents[2]
SDK_KV = ROOT / "scripts" / "zg_sdk_kv.js"

S0, S1, S2 = (bytes([i]) * 32 for i in (0xA0, 0xB1, 0xC2))
ALICE, BOB, CAROL = (bytes([i]) * 20 for i in (0x11, 0x22, 0x33))


@dataclass
class Log:
    """Transactions replayed one by one into a fresh index, as the KV node does."""

    directory: Path
    config: StreamConfig = field(default_factory=StreamConfig)
    seq: int = 0

    def __post_init__(self) -> None:
        self.index = KvIndex(self.directory, sync=False)
        self.replayer = Replayer(self.config)

    def submit(self, sender: bytes, data: StreamData | bytes, tags: bytes | None = None) -> str | None:
        """Replay one transaction (StreamData, or raw bytes with explicit tags); its result."""
        if isinstance(data, StreamData):
            raw, tags = data.encode(), data.tags() if tags is None else tags
        else:
            raw = data
        tx = TxRecord(self.seq, sender, b"\0" * 32, len(raw), tuple(stream_ids_from_tags(tags or b"")))
        with self.index.writer() as w:
            result = self.replayer.apply(w, tx, raw)
        self.seq += 1
        return result

    def reopen(self) -> None:
        self.index.close()
        self.index = KvIndex(self.directory, sync=False)


def tags(*streams: bytes) -> bytes:
    return build_tags(list(streams))


def sdk_kv(*args: str, spec: object = None, timeout: float = 120) -> object:
    """Run scripts/zg_sdk_kv.js (the official SDK's kv/ module) with `spec` as its last argument (passed
    on stdin); its JSON output."""
    if shutil.which("node") is None:
        pytest.skip("node is required to run the official 0G SDK")
    result = subprocess.run(["node", str(SDK_KV), *args, "-"], input=json.dumps(spec), capture_output=True,
                            text=True, timeout=timeout, cwd=ROOT)
    if result.returncode != 0:
        pytest.fail(f"zg_sdk_kv.js {args[0]} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
