"""The deployment record, `deployments/<network>.json`: what was deployed where, written after every transaction.

One JSON object serves two readers. Services and clients read the **flat keys** every deploy script has always
written: one address per contract (`flow`, `market`, `da_entrance`, `compute_ledger`, `inft_nft`, `agent_market`,
`alignment_supervision`, …), `block_number` (the Flow deployment block, where storage and KV nodes start syncing),
`chain_id`, `network`, `deployer`, `admin`, and `areas` (each area's own record: its parameters). The deploy
machinery (`deaios.deployment_session`) and `ape run verify_deployment` read the **bookkeeping keys**:

    "format": 1,
    "status": "in progress" | "complete",
    "git_commit": "…", "git_dirty": false,           # the source tree the contracts were built from
    "started_at": ISO-8601, "updated_at": ISO-8601,
    "options": {…},                                   # the deploy command's parameters
    "steps": {                                        # every transaction, in order, by step id
      "storage:FixedPriceMarket#0": {"kind": "deploy", "contract_type": "FixedPriceMarket",
          "source_id": "contracts/storage/FixedPriceMarket.sol", "address": "0x…", "args": [...], "value": 0,
          "tx_hash": "0x…", "block_number": N, "gas_used": G},
      "storage:FixedPriceMarket#0.setFlow(\"0x…\")#0": {"kind": "call", "target": "0x…", "method": "setFlow",
          "args": [...], "value": 0, "tx_hash": "0x…", "block_number": N, "gas_used": G}, …},
    "pending": null | {"step": id, "entry": {…}, "tx_hash": "0x…", "nonce": N, "raw": "0x…"},
    "contracts": {"flow": {"address", "contract_type", "source_id", "block_number", "tx_hash", "args"}, …},
    "replaced": [{"area": "market", "at": ISO-8601, "steps": {…}}, …],   # areas redeployed: their old steps
    "redeploying": ["market"]                                            # until that redeployment completes

A step id names the area, the contract type and its occurrence in that area (`da:DASigners#0`), or for a call
the target's address, the method and its arguments (`storage:0x…​.setFlow("0x…")#0`; the entry also names the
target, `target_name`); re-running the same deployment produces the same ids, which is how a re-run recognises
what is done — and a call to a redeployed contract (a new address) is a new step, so it is made again. `pending` is the one transaction signed and about to be (or being) sent: it is
written *before* the transaction leaves, with the signed bytes, so that a process killed at any point can be
resumed without sending a second copy (see `DeploymentSession.resolve_pending`). `contracts` maps every
public contract name to its deploy step once its area has finished.

Every write goes to a temporary file that replaces the record atomically, so a kill never leaves half a file.
This module has no ape dependency: tests and the stack read records with it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = 1
IN_PROGRESS, COMPLETE = "in progress", "complete"
#: Keys of the record that are bookkeeping, not contract addresses or area parameters.
BOOKKEEPING = ("format", "status", "git_commit", "git_dirty", "started_at", "updated_at", "options", "steps",
               "pending", "contracts", "replaced", "redeploying")


class RecordError(Exception):
    """A deployment record that cannot be used as asked (wrong chain, unreadable, inconsistent)."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def git_state(root: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of the source tree at `root`; (None, False) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit or None, bool(status.strip())


def jsonable(value: Any) -> Any:
    """Constructor/method arguments as JSON: bytes as 0x-hex, tuples as lists, addresses as they are."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    address = getattr(value, "address", None)
    if isinstance(address, str):
        return address
    return str(value)


def is_address(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0x") and len(value) == 42


class DeploymentRecord:
    """A deployment record file: load, change, save atomically."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = Path(path)
        self.data = data

    # -- files ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> DeploymentRecord:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise RecordError(f"cannot read the deployment record {path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise RecordError(f"cannot read the deployment record {path}: {exc}") from None
        if not isinstance(data, dict):
            raise RecordError(f"{path} is not a deployment record (not a JSON object)")
        return cls(path, data)

    @classmethod
    def start(cls, path: Path, *, network: str, chain_id: int, deployer: str, options: dict[str, Any],
              source_root: Path | None = None) -> DeploymentRecord:
        """A new, empty record (not yet written)."""
        commit, dirty = git_state(source_root) if source_root else (None, False)
        return cls(path, {"format": FORMAT, "status": IN_PROGRESS, "network": network, "chain_id": chain_id,
                          "deployer": deployer, "git_commit": commit, "git_dirty": dirty, "started_at": now(),
                          "updated_at": now(), "options": options, "steps": {}, "pending": None,
                          "contracts": {}})

    def save(self) -> Path:
        self.data["updated_at"] = now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.data, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path

    # -- views ---------------------------------------------------------------------------------------------
    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("steps", {})

    @property
    def pending(self) -> dict[str, Any] | None:
        return self.data.get("pending")

    @property
    def complete(self) -> bool:
        return self.data.get("status") == COMPLETE

    @property
    def chain_id(self) -> int | None:
        value = self.data.get("chain_id")
        return int(value) if value is not None else None

    def deployments(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(step id, entry) of every contract deployment, in order."""
        return ((sid, e) for sid, e in self.steps.items() if e.get("kind") == "deploy")

    def step_at(self, address: str) -> tuple[str, dict[str, Any]] | None:
        """The deploy step of the contract at `address`, if this record deployed it."""
        return next(((sid, e) for sid, e in self.deployments() if e["address"].lower() == address.lower()), None)

    def addresses(self) -> dict[str, str]:
        """Every flat `name: address` key (the contracts' public names; not deployer/admin accounts)."""
        accounts = {str(self.data.get(k, "")).lower() for k in ("deployer", "admin")}
        return {k: v for k, v in self.data.items()
                if k not in BOOKKEEPING and is_address(v) and v.lower() not in accounts}

    # -- changes -------------------------------------------------------------------------------------------
    def set_pending(self, step: str, entry: dict[str, Any], tx_hash: str, nonce: int, raw: str) -> None:
        self.data["pending"] = {"step": step, "entry": entry, "tx_hash": tx_hash, "nonce": nonce, "raw": raw}
        self.save()

    def clear_pending(self) -> None:
        self.data["pending"] = None
        self.save()

    def finish_step(self, step: str, entry: dict[str, Any]) -> None:
        """Record a mined step and clear `pending`, in one write."""
        self.steps[step] = entry
        self.data["pending"] = None
        self.save()

    def publish(self, flat: dict[str, Any]) -> None:
        """Merge an area's flat keys and name its contracts (by matching addresses with deploy steps)."""
        self.data.update(flat)
        for name, value in flat.items():
            if not is_address(value):
                continue
            found = self.step_at(value)
            if found is not None:
                sid, entry = found
                self.data.setdefault("contracts", {})[name] = {"step": sid, **{k: entry[k] for k in (
                    "address", "contract_type", "source_id", "block_number", "tx_hash", "args") if k in entry}}
        self.save()

    def mark_complete(self) -> None:
        self.data["status"] = COMPLETE
        self.data.pop("redeploying", None)
        self.save()

    def redeploy(self, areas: list[str]) -> None:
        """Forget the steps of `areas` (kept under `replaced`), so that the next run deploys them again and makes
        every call that names their contracts again. An area already being redeployed (a run was interrupted) is
        not forgotten twice: its new contracts stay."""
        underway = set(self.data.get("redeploying") or [])
        for area in areas:
            if area in underway:
                continue
            steps = {sid: e for sid, e in self.steps.items() if sid.startswith(area + ":")}
            self.data.setdefault("replaced", []).append({"area": area, "at": now(), "steps": steps})
            for sid in steps:
                del self.steps[sid]
        if areas:
            self.data["redeploying"] = sorted(underway | set(areas))
            self.data["status"] = IN_PROGRESS
            self.save()

    def replaced_addresses(self) -> set[str]:
        """Lower-case addresses of every contract a redeployment replaced."""
        return {e["address"].lower() for r in self.data.get("replaced") or [] for e in r["steps"].values()
                if e.get("kind") == "deploy"}
