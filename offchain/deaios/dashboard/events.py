"""Contract events for the dashboard: declared by signature (or taken from an area's abi.json), fetched with
`eth_getLogs` from where the last fetch stopped, decoded with eth_abi.

`EventLog` keeps, per (contract, event), every log since the deploy block and asks the chain only for the
blocks it has not seen, so a dashboard that refreshes every few seconds reads each log once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from deaios.abi import canonical_type
from deaios.procs import rpc_call

LOG_RANGE = 5000  # blocks per eth_getLogs call


@dataclass(frozen=True)
class Event:
    """An event type: its name and inputs as (type, name, indexed)."""

    name: str
    inputs: tuple[tuple[str, str, bool], ...]

    @classmethod
    def parse(cls, declaration: str) -> "Event":
        """From `Name(type [indexed] name, …)`, e.g. `NodeFlagged(uint256 indexed nodeId, uint256 slashed)`."""
        name, rest = declaration.split("(", 1)
        parts, depth, current = [], 0, ""
        for char in rest[:-1]:  # split at the commas outside tuple types
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += char
        parts.append(current)
        inputs = []
        for words in (part.split() for part in parts if part.strip()):
            inputs.append((words[0], words[-1], "indexed" in words[1:-1]))
        return cls(name.strip(), tuple(inputs))

    @classmethod
    def from_abi(cls, abi: Sequence[dict], name: str) -> "Event":
        entry = next(e for e in abi if e.get("type") == "event" and e.get("name") == name)
        return cls(name, tuple((canonical_type(i), i["name"], bool(i.get("indexed"))) for i in entry["inputs"]))

    @property
    def topic(self) -> str:
        return "0x" + keccak(text=f"{self.name}({','.join(t for t, _, _ in self.inputs)})").hex()

    def decode(self, log: dict) -> dict[str, Any]:
        """One raw JSON-RPC log as {input name: value, "block", "tx", "log_index"} (addresses checksummed)."""
        topics = log.get("topics") or []
        data_types = [t for t, _, indexed in self.inputs if not indexed]
        data = list(abi_decode(data_types, bytes.fromhex(log["data"][2:]))) if data_types else []
        out: dict[str, Any] = {}
        topic_index = 1
        for abi_type, name, indexed in self.inputs:
            if indexed:
                raw = bytes.fromhex(topics[topic_index][2:])
                topic_index += 1
                value = abi_decode([abi_type], raw)[0] if abi_type in _STATIC else "0x" + raw.hex()
            else:
                value = data.pop(0)
            out[name] = _plain(abi_type, value)
        out["block"] = int(log["blockNumber"], 16)
        out["tx"] = log.get("transactionHash")
        out["log_index"] = int(log.get("logIndex") or "0x0", 16)
        return out


_STATIC = {"address", "bool", "bytes32"} | {f"uint{8 * i}" for i in range(1, 33)} | {f"int{8 * i}" for i in range(1, 33)}


def _plain(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


class EventLog:
    """Every log of some (contract, event) pairs since `from_block`, fetched incrementally."""

    def __init__(self, rpc: str, from_block: int) -> None:
        self.rpc = rpc
        self.from_block = from_block
        self._seen: dict[tuple[str, str], tuple[int, list[dict]]] = {}  # -> (next block, decoded)
        self._lock = threading.Lock()

    def get(self, address: str, event: Event, head: int) -> list[dict[str, Any]]:
        """Every `event` of `address` up to block `head`, oldest first."""
        key = (address.lower(), event.topic)
        with self._lock:
            start, found = self._seen.get(key, (self.from_block, []))
        new = []
        for first in range(start, head + 1, LOG_RANGE):
            logs = rpc_call(self.rpc, "eth_getLogs", [{"address": address, "topics": [event.topic],
                                                       "fromBlock": hex(first),
                                                       "toBlock": hex(min(first + LOG_RANGE - 1, head))}],
                            timeout=10)
            new += [event.decode(entry) for entry in logs if not entry.get("removed")]
        with self._lock:
            found = found + new
            self._seen[key] = (max(start, head + 1), found)
        return found
