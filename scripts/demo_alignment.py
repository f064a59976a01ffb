"""`make demo`, alignment step: an operator with licenses supervises the stack's storage and DA nodes, and
the DA node the demo killed is flagged on chain — driven through the `deaios` CLI.

The storage nodes killed earlier are brought back first (same command line, their data intact), so that
every storage node can be judged (a challenged segment is rebuilt from the other nodes' shares). Then:
buy 3 licenses → register as operator → delegate them to itself (they run from the next epoch: the chain's
clock moves there) → `deaios alignment node --once` with the defaults a real operator uses (every node
challenged: storage nodes answer the chunk the contract challenges from their own shares, proven on chain
against the flow root; DA nodes answer a row with KZG cell proofs; a node that does not answer is tried again
with backoff over a quarter of the epoch before it is attested failed, with the evidence of the tries) → the
chain's clock moves past the epoch → a second pass finalizes the epoch: the dead node is flagged, the operator's
licenses earn the epoch reward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from demo_cli import DeaiosCli
from rich.console import Console
from web3 import Web3

from deaios.alignment.chain import SupervisionChain
from deaios.jsonrpc import RpcCallError
from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key, pid_alive
from deaios.procs import rpc_call
from deaios.storage.launch import relaunch_node


def _bring_back_storage_nodes(stack: Stack, console: Console) -> None:
    dead = [i for i, node in enumerate(stack.storage_nodes) if not pid_alive(node["pid"])]
    for i in dead:
        relaunch_node(stack, i)
    deadline = time.monotonic() + 60
    for i in dead:
        while True:
            try:
                rpc_call(stack.storage_nodes[i]["url"], "zgs_getStatus", timeout=1.0)
                break
            except (OSError, RuntimeError, RpcCallError):
                if time.monotonic() > deadline:
                    raise click.ClickException(f"storage node {i} did not come back") from None
                time.sleep(0.2)
    if dead:
        console.print(f"storage nodes {dead} restarted with their data")


def _travel_to(w3: Web3, timestamp: int) -> None:
    """Anvil: move the chain's clock to `timestamp` (if ahead) and mine a block."""
    if timestamp > int(w3.eth.get_block("latest")["timestamp"]):
        w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    w3.provider.make_request("evm_mine", [])


def run(stack: Stack, console: Console, show: Callable[[str, dict[str, object]], None], work: Path,
        operator_index: int = DEV_KEY_ROLES["alignment operators"][0]) -> None:  # type: ignore[index]
    console.rule("alignment nodes: licenses → operator → supervision of storage and DA nodes")
    _bring_back_storage_nodes(stack, console)
    deaios = DeaiosCli(stack, work / "home")
    key = dev_key(operator_index)
    bought = deaios("alignment", "buy", "--count", "3", key=key, group_key=False)
    operator = deaios("alignment", "register-operator", "--commission-bps", "1000", key=key, group_key=False)
    tokens = [str(t) for t in bought["tokenIds"]]
    deaios("alignment", "delegate", "self", *tokens, key=key, group_key=False)
    show("licenses", {"operator": operator["operator"], "licenses bought": ", ".join(tokens),
                      "paid (wei)": bought["paid"], "commission": "10 %", "delegated to": "itself"})

    supervision = SupervisionChain(stack.rpc, stack.contracts["alignment_supervision"])
    w3 = Web3(Web3.HTTPProvider(stack.rpc))
    _travel_to(w3, supervision.epoch_start(supervision.current_epoch() + 1))  # the delegations apply
    dead_da = {n["url"] for n in stack.extra.get("da_nodes", []) if not pid_alive(n["pid"])}
    # one pass attests every node it can judge; a node it could not judge yet (e.g. a restarted node still
    # syncing) is tried again by the next pass of the same epoch
    judged: dict[int, dict] = {}
    for _ in range(5):
        for outcome in deaios.lines("alignment", "node", "--once", key=key, group_key=False):
            if outcome["action"] in ("attest", "skip"):
                judged[outcome["nodeId"]] = outcome
        if all(o["action"] == "attest" for o in judged.values()):
            break
        time.sleep(1)
    verdicts: dict[str, int] = {}
    for outcome in judged.values():
        name = f"{outcome['kind']} {outcome['verdict']}"
        verdicts[name] = verdicts.get(name, 0) + 1
    skipped = {f"node {o['nodeId']} skipped": o["reason"] for o in judged.values() if o["action"] == "skip"}
    epoch = next(iter(judged.values()))["epoch"] if judged else supervision.current_epoch()
    latencies = [o["detail"]["latencyMs"] for o in judged.values() if "latencyMs" in o.get("detail", {})]
    failed = [o for o in judged.values() if o["verdict"] == "fail"]
    show(f"deaios alignment node --once (epoch {epoch})", {
        **{f"{name} (nodes)": count for name, count in sorted(verdicts.items())}, **skipped,
        "storage pass": "the challenged chunk from the node's own share + merkle path to the flow root, verified "
                        "on chain",
        "DA pass": "row served, KZG cell proofs verified",
        "answer latency (ms)": f"{min(latencies)}..{max(latencies)}" if latencies else "-",
        **{f"node {o['nodeId']} failed after": f"{len(o['detail']['tries'])} tries over "
                                               f"{o['detail']['tries'][-1]['offset']} s" for o in failed}})

    _travel_to(w3, supervision.epoch_start(epoch + 1))  # Anvil: end the epoch
    deaios.lines("alignment", "node", "--once", key=key, group_key=False)
    nodes = supervision.nodes()
    flagged = {n.url for n in nodes if n.flagged}
    rewards = deaios("alignment", "rewards", key=key, group_key=False)
    show(f"epoch {epoch} finalized", {
        "flagged nodes": ", ".join(f"#{n.node_id} {n.kind_name} {n.url}" for n in nodes if n.flagged) or "none",
        "killed DA node": ", ".join(sorted(dead_da)) or "none",
        "operator's claimable reward (wei)": rewards["claimable"]})
    if flagged != dead_da or rewards["claimable"] <= 0:
        raise click.ClickException(f"expected exactly the dead DA node flagged and a reward; flagged {flagged}")
