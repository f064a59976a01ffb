"""DA nodes as processes of a stack (`deaios up --da-nodes N`): their command lines, `DANodesService` (used by
`deaios up`), their stack.json entries, the readiness probe, activating the first epoch, and stopping /
relaunching one (tests, demo).

DA node i signs with the i-th key of the stack's `da_nodes` role (`deaios.stack.keys`): Anvil dev key ``FIRST_KEY
+ i`` locally (keys 2..9, see `deaios.stack.config.DEV_KEY_ROLES`), the operator's keys against an existing chain
(there, one node per key unless `--da-nodes` asks for fewer). The key is passed in the environment
(``DEAIOS_DA_NODE_KEY``) rather than on the command line; the node registers the advertised host as its socket.
stack.json lists them as

    "da_nodes": [{"name": "da-node-0", "index": 0, "url": "http://127.0.0.1:PORT", "pid": PID,
                  "address": "0x…", "key_index": 2, "dir": "DATA/da/0", "log": "DATA/logs/da-node-0.log",
                  "cmd": [argv…]}, …]

Start-up: every node registers itself (proof of possession, stake, next-epoch registration) with its own
key, so the N registrations run in parallel. Once every node reports ``ready`` and ``registeredNext``, the
admin (the stack's `admin` key: Anvil key 0 locally) calls ``forceMakeEpoch`` — only if the current epoch has no
quorum yet, so a restarted stack keeps its epochs. Without an admin key (an existing chain whose admin is
someone else) the epoch starts when ``epochBlocks`` have passed and anyone calls ``makeEpoch``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deaios.errors import UserError
from deaios.procs import child_env, free_ports, rpc_call, stop_pid
from deaios.stack.config import ANVIL_KEY_0, DEV_KEY_ROLES, Stack, dev_key
from deaios.stack.service import LaunchContext, StackService, relaunch as relaunch_entry

DEFAULT_DA_NODES = 4
_KEYS: range = DEV_KEY_ROLES["DA nodes"]  # type: ignore[assignment]
FIRST_KEY = _KEYS.start
MAX_DA_NODES = len(_KEYS)
KEY_ENV = "DEAIOS_DA_NODE_KEY"


@dataclass(frozen=True)
class DANodeSpec:
    """One DA node of a stack, before it is started."""

    index: int
    url: str
    cmd: list[str]
    env: dict[str, str]
    data_dir: Path
    log: Path
    key_index: int | None  # the dev key's index in a local stack (None: an operator's key)

    @property
    def name(self) -> str:
        return f"da-node-{self.index}"


def node_command(data_dir: Path, host: str, port: int, rpc: str, entrance: str,
                 public_host: str | None = None) -> list[str]:
    """`deaios da node …` (the key comes from $DEAIOS_DA_NODE_KEY)."""
    return [sys.executable, "-m", "deaios.cli", "da", "node", "--rpc", rpc, "--entrance", entrance, "--dir",
            str(data_dir), "--host", host, "--port", str(port)] + (
        ["--public-host", public_host] if public_host and public_host != host else [])


def node_env(key_index: int, base: dict[str, str] | None = None) -> dict[str, str]:
    return child_env({KEY_ENV: dev_key(key_index)}, base=base)


def plan(keys: list[str], data_dir: Path, logs: Path, host: str, ports: list[int], rpc: str, entrance: str,
         base_env: dict[str, str] | None = None, public_host: str | None = None,
         key_indexes: list[int] | None = None) -> list[DANodeSpec]:
    """The specs of one DA node per key (data in DATA/da/<i>, logs in logs/da-node-<i>.log)."""
    specs = []
    for i, key in enumerate(keys):
        node_dir = data_dir / "da" / str(i)
        url = f"http://{public_host or host}:{ports[i]}"
        specs.append(DANodeSpec(i, url, node_command(node_dir, host, ports[i], rpc, entrance, public_host),
                                child_env({KEY_ENV: key}, base=base_env), node_dir, logs / f"da-node-{i}.log",
                                key_indexes[i] if key_indexes else None))
    return specs


def stack_entry(spec: DANodeSpec, pid: int, address: str) -> dict[str, Any]:
    return {"name": spec.name, "index": spec.index, "url": spec.url, "pid": pid, "address": address,
            "key_index": spec.key_index, "dir": str(spec.data_dir), "log": str(spec.log), "cmd": spec.cmd}


def status(url: str, timeout: float = 2.0) -> dict[str, Any]:
    return rpc_call(url, "da_status", timeout=timeout)


def activate_epoch(rpc: str, entrance: str, admin_key: str = ANVIL_KEY_0) -> int:
    """Start the next epoch at once (`forceMakeEpoch`, by the params admin) unless the current one already has
    quorums; returns the current epoch number."""
    from deaios.da.chain import DAChain

    chain = DAChain(rpc, entrance, admin_key, receipt_timeout=30)
    epoch = chain.epoch_number()
    if chain.quorum_count(epoch) == 0:
        chain.force_make_epoch()
        epoch = chain.epoch_number()
    return epoch


def da_nodes_of(stack: Stack) -> list[dict[str, Any]]:
    """The stack's DA node entries; a UserError if it has none."""
    nodes = stack.extra.get("da_nodes")
    if not isinstance(nodes, list) or not nodes:
        raise UserError(f"the stack in {stack.dir or stack.path} has no DA nodes (start it with "
                        "`deaios up --da-nodes N`)")
    return nodes


def kill(stack: Stack, index: int, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Stop DA node `index` of the stack (default SIGKILL, as a crash) and wait until it is gone."""
    stop_pid(int(da_nodes_of(stack)[index].get("pid") or 0), sig=sig, timeout=timeout)


def relaunch(stack: Stack, index: int) -> subprocess.Popen:
    """Start DA node `index` of a local stack again with its recorded command line and dev key; record its new pid
    in stack.json."""
    entry = da_nodes_of(stack)[index]
    if entry.get("key_index") is None:
        raise UserError(f"DA node {index} runs with an operator's key, which stack.json does not hold: restart "
                        "the stack (`deaios up`) instead")
    return relaunch_entry(stack, lambda s: da_nodes_of(s)[index], env=node_env(int(entry["key_index"])),
                          default_log=f"da-node-{index}.log")


class DANodesService(StackService):
    """`count` DA nodes; each registers itself (so they start in parallel), then the admin starts the first
    epoch if the current one has no quorum."""

    name = "da"

    def __init__(self, count: int | None) -> None:
        self.count = count  # None: the default (DEFAULT_DA_NODES locally, one per key against an existing chain)
        self.specs: list[DANodeSpec] = []
        self.pids: dict[str, int] = {}
        self.nodes: list[dict[str, Any]] = []

    def _keys(self, ctx: LaunchContext) -> tuple[list[str], list[int] | None]:
        keys = ctx.keys.many("da_nodes")
        count = self.count if self.count is not None else (DEFAULT_DA_NODES if ctx.local else len(keys))
        if count > len(keys):
            raise UserError(f"--da-nodes {count}: only {len(keys)} DA node keys ({ctx.keys.source}; "
                            + ("dev keys " + f"{_KEYS.start}..{_KEYS.stop - 1}" if ctx.local else "role da_nodes")
                            + ")")
        return keys[:count], ([FIRST_KEY + i for i in range(count)] if ctx.local else None)

    def start(self, ctx: LaunchContext) -> None:
        keys, indexes = self._keys(ctx)
        if not keys:
            if not ctx.local:
                ctx.say("no da_nodes keys: no DA nodes")
            return
        if not ctx.contracts.get("da_entrance"):
            ctx.say("no DA contracts in this stack (restarted from an older version): no DA nodes")
            return
        self.specs = plan(keys, ctx.data_dir, ctx.logs, ctx.host, free_ports(ctx.host, len(keys)), ctx.rpc,
                          ctx.contracts["da_entrance"], child_env(), ctx.advertise, indexes)
        self.pids = {spec.name: ctx.spawn(spec.name, spec.cmd, spec.log, env=spec.env).pid for spec in self.specs}

    def wait(self, ctx: LaunchContext) -> None:
        addresses: dict[str, str] = {}

        def registered(spec: DANodeSpec) -> bool:
            reply = status(spec.url)
            addresses[spec.name] = reply["address"]
            return bool(reply.get("ready") and reply.get("registeredNext"))

        for spec in self.specs:
            ctx.wait(spec.name, lambda spec=spec: registered(spec), spec.log)
        if self.specs and ctx.admin_key is not None:
            epoch = activate_epoch(ctx.rpc, ctx.contracts["da_entrance"], ctx.admin_key)
            ctx.say(f"{len(self.specs)} DA nodes registered; DA epoch {epoch} active")
        elif self.specs:
            ctx.say(f"{len(self.specs)} DA nodes registered; no admin key: their quorum forms at the next epoch "
                    "(every epochBlocks blocks, or the DA admin's forceMakeEpoch)")
        self.nodes = [stack_entry(spec, self.pids[spec.name], addresses[spec.name]) for spec in self.specs]

    def entries(self) -> dict[str, Any]:
        return {"da_nodes": self.nodes}
