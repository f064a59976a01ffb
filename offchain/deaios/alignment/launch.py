"""Alignment supervision in a local stack: `deaios up` registers every storage node and DA node of the stack
in AlignmentSupervision (admin = Anvil dev key 0), so that operators who start `deaios alignment node
--stack DATA` find them, and the storage network's erasure code (n nodes, k data shares: what the contract
derives storage challenges from). Storage nodes are registered with the stack's account as their operator (the
account that may stake for them) and their placement index, DA nodes with their signer address. On a restart
(same chain, new ports) the existing registrations get the new URLs instead of new ids.
"""

from __future__ import annotations

import logging

from deaios.alignment.chain import SupervisionChain

log = logging.getLogger(__name__)

STORAGE, DA = 0, 1


def register_stack_nodes(rpc: str, supervision: str, admin_key: str, storage_urls: list[str],
                         da_nodes: list[dict], storage_operator: str) -> int:
    """Register (or re-point) the stack's nodes; returns how many nodes are supervised."""
    from deaios.storage.erasure import ErasureCode

    chain = SupervisionChain(rpc, supervision, admin_key)
    if storage_urls:
        code = ErasureCode.for_nodes(len(storage_urls))
        if chain.erasure_code() != (code.n, code.k):
            chain.transact("setErasureCode(uint16,uint16)", ["uint16", "uint16"], [code.n, code.k])
    wanted = [(STORAGE, url, storage_operator, i) for i, url in enumerate(storage_urls)]
    wanted += [(DA, node["url"], node["address"], 0) for node in da_nodes]
    existing = chain.nodes()
    for node_id, (kind, url, operator, placement) in enumerate(wanted):
        if node_id < len(existing):
            node = existing[node_id]
            if node.kind == kind and node.url != url:
                chain.transact("setNodeUrl(uint256,string)", ["uint256", "string"], [node_id, url])
            continue
        chain.transact("registerNode(uint8,string,address,uint16)", ["uint8", "string", "address", "uint16"],
                       [kind, url, operator, placement])
    log.info("%d nodes under alignment supervision at %s", len(wanted), supervision)
    return max(len(wanted), len(existing))
