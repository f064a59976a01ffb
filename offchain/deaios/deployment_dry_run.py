"""The dry run of a deployment (`ape run deploy --dry-run`): `anvil_fork` starts a throw-away Anvil forking the target
chain at its latest block (same chain id); `scripts/deploy.py` runs the very same `DeploymentSession` against it and
against a scratch copy of the record, so every transaction executes on the target chain's current state (gas is
what it would cost there, reverts show up before anything is spent), and `plan_lines` prices the transactions it
sent at the target's current gas price. Nothing is sent to the target chain.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deaios.deployment_record import DeploymentRecord
from deaios.deployment_session import DeploymentError


@contextlib.contextmanager
def anvil_fork(rpc_url: str, chain_id: int, logs: Path) -> Iterator[str]:
    """A local Anvil forking `rpc_url` at its latest block (same chain id); yields its URL. Nothing it mines
    reaches the forked chain."""
    from deaios.procs import find_tool, free_ports, rpc_call, spawn, stop_pids, wait_until

    port = free_ports("127.0.0.1", 1)[0]
    url = f"http://127.0.0.1:{port}"
    log = logs / "dry-run-fork.log"
    proc = spawn([find_tool("anvil"), "--fork-url", rpc_url, "--chain-id", str(chain_id), "--port", str(port),
                  "--host", "127.0.0.1", "--no-storage-caching"], log)

    def alive() -> None:
        if proc.poll() is not None:
            raise DeploymentError(f"the dry-run fork of {rpc_url} exited; see {log}")

    try:
        wait_until(lambda: int(rpc_call(url, "eth_chainId", timeout=2.0), 16) == chain_id, 60,
                   f"anvil forking {rpc_url}", log=log, check=alive)
        yield url
    finally:
        stop_pids({"fork": proc.pid}, procs={"fork": proc})


def describe(step: str, entry: dict[str, Any]) -> str:
    """A step for people: "deploy da:DASigners#0" or "call   alignment:DAEntrance#0.grantRole(…)"."""
    if entry["kind"] == "deploy":
        return f"deploy {step}"
    area = step.split(":", 1)[0]
    args = json.dumps(entry.get("args", []), separators=(",", ":"))[1:-1]
    return f"call   {area}:{entry.get('target_name', entry['target'])}.{entry['method']}({args})"


def plan_lines(record: DeploymentRecord, executed: list[str], price: int, balance: int, symbol: str = "0G") -> \
        list[str]:
    """The dry run's report: one line per step with its gas, then the totals priced at `price` wei per gas."""
    lines = []
    total_gas = total_value = 0
    for step in executed:
        entry = record.steps.get(step)
        if entry is None:
            continue
        gas, value = int(entry.get("gas_used") or 0), int(entry.get("value") or 0)
        total_gas += gas
        total_value += value
        lines.append(f"{describe(step, entry)}  gas {gas:,}" + (f"  value {value / 1e18:g} {symbol}" if value else ""))
    cost = total_gas * price
    lines.append(f"{len(executed)} transactions, {total_gas:,} gas; at {price / 1e9:g} gwei: "
                 f"{cost / 1e18:.6f} {symbol} in fees + {total_value / 1e18:g} {symbol} sent = "
                 f"{(cost + total_value) / 1e18:.6f} {symbol}; the deployer holds {balance / 1e18:.6f} {symbol}")
    if cost + total_value > balance:
        lines.append(f"NOT ENOUGH FUNDS: fund the deployer with at least {(cost + total_value - balance) / 1e18:.6f} "
                     f"{symbol} more")
    return lines
