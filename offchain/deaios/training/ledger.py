"""The job's round ledger and the model registry, in 0G KV streams.

Job stream `keccak256("deaios/train/<job>")` (keys sort in round order; values are JSON):

    job                          {"config", "jobRoot", "corpusRoot", "corpus", "owner", "params"}
    worker/<iii>                 a worker's claim: {"address", "host", "pid", "round", "at"}
    round/<rrrrrr>/worker/<iii>  report: {"stages": [root…], "hash" (of x_r), "loss", "position", "bytes", …}
    round/<rrrrrr>/close         {"members": [i…], "by", "reason": "all" | "deadline"}: who is averaged
    ckpt/<rrrrrr>                {"path": "log://<root>", "round", "eval_loss", "hash"}
    ckpt/<rrrrrr>/worker/<iii>   {"path"}: that worker's own state (inner optimizer, residuals, position)
    stopped                      {"reason", "by", "round"}: the job stopped (e.g. a parameter-hash mismatch)

Registry stream `keccak256("deaios/models")`: `AI_<job>` = {"name", "path": "log://<root>", "round", "eval_loss", …}.

A round is closed by compare-and-swap: the close record is written in a KV transaction built on the
version at which the closer saw no close record, with that key in its read set, so 0G's replay rejects
every close but the first (VersionConfliction) and all workers average the same members.
"""

from __future__ import annotations

import json
from typing import Any

from deaios.kv.client import Client, KvError, stream_id

REGISTRY = "deaios/models"


def job_stream(job_id: str) -> bytes:
    return stream_id(f"deaios/train/{job_id}")


def registry_stream() -> bytes:
    return stream_id(REGISTRY)


def model_key(job_id: str) -> str:
    return f"AI_{job_id}"


def report_key(r: int, worker: int) -> str:
    return f"round/{r:06d}/worker/{worker:03d}"


def close_key(r: int) -> str:
    return f"round/{r:06d}/close"


def ckpt_key(r: int, worker: int | None = None) -> str:
    return f"ckpt/{r:06d}" if worker is None else f"ckpt/{r:06d}/worker/{worker:03d}"


def claim_key(worker: int) -> str:
    return f"worker/{worker:03d}"


def _json(value: bytes) -> dict[str, Any]:
    try:
        out = json.loads(value)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


class Ledger:
    """Reads and writes one job's ledger through a KV client (writes go through `write`)."""

    def __init__(self, kv: Client, job_id: str) -> None:
        self.kv = kv
        self.job_id = job_id
        self.stream = job_stream(job_id)

    async def get(self, key: str, version: int | None = None) -> dict[str, Any] | None:
        entry = await self.kv.get(self.stream, key, version)
        return None if entry is None else _json(entry.value)

    async def items(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {entry.key.decode(): _json(entry.value) async for entry in self.kv.ls(self.stream, prefix)}

    async def job(self) -> dict[str, Any] | None:
        return await self.get("job")

    async def reports(self, r: int) -> dict[int, dict[str, Any]]:
        prefix = f"round/{r:06d}/worker/"
        return {int(key[len(prefix):]): value for key, value in (await self.items(prefix)).items()}

    async def round(self, r: int) -> dict[str, Any]:
        """Round r in one listing: {"reports": {i: report}, "close": record | None}."""
        return (await self.rounds(f"round/{r:06d}/")).get(r, {"reports": {}, "close": None})

    async def rounds(self, prefix: str = "round/") -> dict[int, dict[str, Any]]:
        """Every round seen: {r: {"reports": {i: report}, "close": record | None}}."""
        out: dict[int, dict[str, Any]] = {}
        for key, value in (await self.items(prefix)).items():
            parts = key.split("/")
            entry = out.setdefault(int(parts[1]), {"reports": {}, "close": None})
            if parts[2] == "close":
                entry["close"] = value
            else:
                entry["reports"][int(parts[3])] = value
        return out

    async def latest_closed(self) -> int:
        closed = [r for r, entry in (await self.rounds()).items() if entry["close"]]
        return max(closed, default=-1)

    async def checkpoints(self) -> dict[int, dict[str, Any]]:
        return {int(key.split("/")[1]): value for key, value in (await self.items("ckpt/")).items()
                if key.count("/") == 1}

    async def stopped(self) -> dict[str, Any] | None:
        return await self.get("stopped")

    async def model_record(self) -> dict[str, Any] | None:
        entry = await self.kv.get(registry_stream(), model_key(self.job_id))
        return None if entry is None else _json(entry.value)

    async def put_if_absent(self, key: str, record: dict[str, Any], write) -> dict[str, Any]:
        """Write `record` at `key` unless the key has a value (compare-and-swap through the KV read set);
        the value that won. `write(batch)` commits a batch (the caller serialises its chain writes)."""
        version = await self.kv.snapshot()
        existing = await self.get(key, version)
        if existing:
            return existing
        batch = self.kv.batch(version if version is not None else 0)
        batch.read(self.stream, key).set(self.stream, key, json.dumps(record, sort_keys=True))
        outcome = await write(batch)
        if outcome.ok:
            return record
        winner = await self.get(key)
        if not winner:
            raise KvError(f"writing {key} was rejected ({outcome.result}) and it has no value")
        return winner

    async def try_close(self, r: int, record: dict[str, Any], write) -> dict[str, Any]:
        """Close round r with `record` unless someone closed it first; the close record that won."""
        return await self.put_if_absent(close_key(r), record, write)
