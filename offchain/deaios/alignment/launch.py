"""Alignment supervision in a stack: `deaios up` registers every storage node and DA node of the stack in
AlignmentSupervision with the stack's `admin` key (Anvil dev key 0 locally; against an existing chain the
operator's admin key — without one, registration is left to the admin and the launcher says so), so that
operators who start `deaios alignment node --stack DATA` find them, and the storage network's erasure code (n
nodes, k data shares: what the contract derives storage challenges from). Storage nodes are registered with the
stack's account as their operator (the account that may stake for them) and their placement index, DA nodes
with their signer address. On a restart (same chain, new ports) the existing registrations get the new URLs
instead of new ids.
"""

from __future__ import annotations

import logging

from deaios.alignment.chain import SupervisionChain
from deaios.stack.service import LaunchContext, StackService

log = logging.getLogger(__name__)

STORAGE, DA = 0, 1


def register_stack_nodes(rpc: str, supervision: str, admin_key: str, storage_urls: list[str],
                         da_nodes: list[dict], storage_operator: str) -> int:
    """Register (or re-point) the stack's nodes; returns how many nodes are supervised.

    The chain may be shared (other stacks' nodes registered before ours), so nodes are matched by what identifies
    them, not by position: a URL registered already (by anyone) is left alone; a DA node is its signer address
    (re-pointed to its new URL after a restart on another port); a storage node of `storage_operator` whose URL
    is no longer one of the stack's takes the new URL of its placement (a restarted stack), else a new node is
    registered."""
    from deaios.storage.erasure import ErasureCode

    chain = SupervisionChain(rpc, supervision, admin_key)
    if storage_urls:
        code = ErasureCode.for_nodes(len(storage_urls))
        if chain.erasure_code() != (code.n, code.k):
            chain.transact("setErasureCode(uint16,uint16)", ["uint16", "uint16"], [code.n, code.k])
    existing = chain.nodes()
    registered = {node.url for node in existing}

    def set_url(node_id: int, url: str) -> None:
        chain.transact("setNodeUrl(uint256,string)", ["uint256", "string"], [node_id, url])

    def register(kind: int, url: str, operator: str, placement: int = 0) -> None:
        chain.transact("registerNode(uint8,string,address,uint16)", ["uint8", "string", "address", "uint16"],
                       [kind, url, operator, placement])

    stale = {n.placement: n for n in existing if n.kind == STORAGE
             and n.operator.lower() == storage_operator.lower() and n.url not in storage_urls}
    for placement, url in enumerate(storage_urls):
        if url in registered:
            continue
        if placement in stale:  # the same share position, restarted on another port
            set_url(stale.pop(placement).node_id, url)
        else:
            register(STORAGE, url, storage_operator, placement)
    for node in da_nodes:
        if node["url"] in registered:
            continue
        mine = next((n for n in existing if n.kind == DA and n.operator.lower() == node["address"].lower()), None)
        if mine is not None:
            set_url(mine.node_id, node["url"])
        else:
            register(DA, node["url"], node["address"])
    count = len(chain.nodes())
    log.info("%d nodes under alignment supervision at %s", count, supervision)
    return count


class SupervisionRegistration(StackService):
    """Not a process: once the storage and DA nodes are up, register them for alignment supervision."""

    name = "alignment-supervision"

    def wait(self, ctx: LaunchContext) -> None:
        supervision = ctx.contracts.get("alignment_supervision")
        if supervision and (ctx.admin_key is None or ctx.admin_address is None):
            ctx.say("no admin key: the supervision contract's node admin must register this stack's nodes")
        elif supervision:
            count = register_stack_nodes(ctx.rpc, supervision, ctx.admin_key, ctx.storage_urls,
                                         ctx.stack.get("da_nodes", []), ctx.admin_address)
            ctx.say(f"{count} nodes under alignment supervision")
