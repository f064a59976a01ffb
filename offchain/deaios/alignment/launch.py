"""Alignment supervision in a local stack: `deaios up` registers every storage node and DA node of the stack
in AlignmentSupervision (admin = Anvil dev key 0), so that operators who start `deaios alignment node
--stack DATA` find them. Storage nodes are registered with the stack's account as their operator (the
account that may stake for them), DA nodes with their signer address. On a restart (same chain, new ports)
the existing registrations get the new URLs instead of new ids.
"""

from __future__ import annotations

import logging

from deaios.alignment.chain import SupervisionChain
from deaios.stack.service import LaunchContext, StackService

log = logging.getLogger(__name__)

STORAGE, DA = 0, 1


def register_stack_nodes(rpc: str, supervision: str, admin_key: str, storage_urls: list[str],
                         da_nodes: list[dict], storage_operator: str) -> int:
    """Register (or re-point) the stack's nodes; returns how many nodes are supervised."""
    chain = SupervisionChain(rpc, supervision, admin_key)
    wanted = [(STORAGE, url, storage_operator) for url in storage_urls]
    wanted += [(DA, node["url"], node["address"]) for node in da_nodes]
    existing = chain.nodes()
    for node_id, (kind, url, operator) in enumerate(wanted):
        if node_id < len(existing):
            node = existing[node_id]
            if node.kind == kind and node.url != url:
                chain.transact("setNodeUrl(uint256,string)", ["uint256", "string"], [node_id, url])
            continue
        chain.transact("registerNode(uint8,string,address)", ["uint8", "string", "address"], [kind, url, operator])
    log.info("%d nodes under alignment supervision at %s", len(wanted), supervision)
    return max(len(wanted), len(existing))


class SupervisionRegistration(StackService):
    """Not a process: once the storage and DA nodes are up, register them for alignment supervision."""

    name = "alignment-supervision"

    def wait(self, ctx: LaunchContext) -> None:
        supervision = ctx.contracts.get("alignment_supervision")
        if supervision:
            count = register_stack_nodes(ctx.rpc, supervision, ctx.admin_key, ctx.storage_urls,
                                         ctx.stack.get("da_nodes", []), ctx.admin_address)
            ctx.say(f"{count} nodes under alignment supervision")
