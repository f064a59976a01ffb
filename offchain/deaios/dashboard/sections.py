"""What the network holds, section by section, read from the chain (events and contract views through each
area's chain module) and from the services' own RPCs: the log's files and their replication, KV streams and
writes, DA blobs, compute services, accounts and settlements, INFTs and market listings, alignment epochs,
attestations and flagged nodes.

Each section is a function `(ctx: Context) -> dict` (JSON-able); one that fails (a service down, a contract
this stack lacks) reports `{"error": …}` instead of failing the page. Sections skip what the stack does not
have (no DA contracts: no DA section). Lists show the newest entries first, at most `ctx.limit` of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from deaios.dashboard.events import Event, EventLog
from deaios.procs import http_get_json, rpc_call
from deaios.stack.config import Stack

log = logging.getLogger(__name__)

SUBMIT = Event.parse("Submit(address indexed sender, bytes32 indexed identity, uint256 submissionIndex, "
                     "uint256 startPos, uint256 length, (uint256,bytes,(bytes32,uint256)[]) submission)")
DATA_UPLOAD = Event.parse("DataUpload(address sender, bytes32 dataRoot, uint256 epoch, uint256 quorumId, "
                          "uint256 blobPrice)")
VERIFIED = Event.parse("ErasureCommitmentVerified(bytes32 dataRoot, uint256 epoch, uint256 quorumId)")
ATTESTED = Event.parse("Attested(uint256 indexed epoch, uint256 indexed nodeId, address indexed operator, "
                       "bool passed, uint256 txSeq, uint256 position)")
FLAGGED = Event.parse("NodeFlagged(uint256 indexed nodeId, uint256 indexed epoch, uint256 slashed)")


@dataclass
class Context:
    """What a section reads from: the stack, the chain head, the cached event logs, a thread pool, the
    processes' states (by name), and objects a section keeps between refreshes (`cache`)."""

    stack: Stack
    head: int
    events: EventLog
    pool: ThreadPoolExecutor
    states: dict[str, str]
    limit: int = 20
    cache: dict[str, Any] = field(default_factory=dict)

    def keep(self, key: str, make: Callable[[], Any]) -> Any:
        """An object made once per (key, chain RPC) and kept between refreshes (web3 clients)."""
        full = f"{key}@{self.stack.rpc}"
        if full not in self.cache:
            self.cache[full] = make()
        return self.cache[full]


def _newest(items: list[dict], limit: int) -> list[dict]:
    return list(reversed(items[-limit:]))


# -- chain ----------------------------------------------------------------------------------------------------
def chain(ctx: Context) -> dict[str, Any]:
    stack = ctx.stack
    block = rpc_call(stack.rpc, "eth_getBlockByNumber", [hex(ctx.head), False])
    contracts = [{"name": name, "address": address} for name, address in sorted(stack.contracts.items())]
    return {"rpc": stack.rpc, "chain_id": stack.chain_id, "block": ctx.head,
            "block_time": int(block["timestamp"], 16) if block else None, "deploy_block": stack.deploy_block,
            "contracts": contracts}


# -- storage: files in the log ----------------------------------------------------------------------------
def _submissions(ctx: Context) -> list[dict[str, Any]]:
    """Every file submitted to the Flow (its Submit events), oldest first."""
    from deaios.storage.node.logsync import SubmitEvent
    from deaios.storage.node.service import stream_ids

    out = []
    for event in ctx.events.get(ctx.stack.flow, SUBMIT, ctx.head):
        length, tags, nodes = event["submission"]
        submit = SubmitEvent(event["submissionIndex"], event["startPos"], event["length"], length, bytes(tags),
                             tuple((bytes(r), h) for r, h in nodes), event["block"], event["sender"])
        out.append({"seq": submit.seq, "root": "0x" + submit.data_root.hex(), "size": length, "block": submit.block,
                    "tx": event["tx"], "sender": submit.sender, "streams": stream_ids(submit.tags)})
    return out


def replication(ctx: Context, checked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many erasure shares of each file the live storage nodes hold: per segment, the shares reachable
    (a node holds share s of every segment it does not list as missing); a file is recoverable while every
    segment has at least k. One request per (file, live node), all in parallel."""
    from deaios.storage.erasure import ErasureCode, data_segments

    nodes = [n for n in ctx.stack.storage_nodes if ctx.states.get(f"node-{n.get('index')}") == "up"]
    code = ErasureCode.for_nodes(len(ctx.stack.storage_nodes))

    def missing(job: tuple[dict, dict]) -> set[int]:
        item, node = job
        try:
            return set(http_get_json(f"{node['url']}/deaios/v1/missing/{item['root']}", timeout=2.0))
        except Exception:  # does not know the file (yet), or cannot answer: nothing we can count on
            return set(range(data_segments(item["size"])))

    jobs = [(item, node) for item in checked for node in nodes]
    answers = iter(ctx.pool.map(missing, jobs))
    out = []
    for item in checked:
        segments = data_segments(item["size"])
        held = [next(answers) for _ in nodes]
        per_segment = [sum(1 for m in held if i not in m) for i in range(segments)] or [0]
        low = min(per_segment)
        health = "full" if low == code.n else "degraded" if low >= code.k else "unavailable"
        out.append({"shares_reachable": sum(per_segment), "shares_total": segments * code.n,
                    "min_per_segment": low, "k": code.k, "n": code.n, "segments": segments, "health": health})
    return out


def files(ctx: Context) -> dict[str, Any]:
    subs = _submissions(ctx)
    newest = _newest(subs, ctx.limit)
    checked = newest[:8]  # replication is probed on the newest files only
    for item, rep in zip(checked, replication(ctx, checked)):
        item["replication"] = rep
    return {"count": len(subs), "bytes": sum(f["size"] for f in subs), "files": newest}


# -- KV ---------------------------------------------------------------------------------------------------
def kv(ctx: Context) -> dict[str, Any]:
    entry = ctx.stack.extra.get("kv")
    if not isinstance(entry, dict) or not entry.get("url"):
        return {}
    url = entry["url"]
    status = rpc_call(url, "deaios_kvStatus", timeout=2.0)
    streams = rpc_call(url, "kv_getHoldingStreamIds", timeout=2.0)
    writes = [f for f in _submissions(ctx) if f["streams"]]
    recent = _newest(writes, ctx.limit)

    def result(item: dict) -> dict:
        try:
            item["result"] = rpc_call(url, "kv_getTransactionResult", [item["seq"]], timeout=2.0)
        except Exception as exc:
            item["result"] = f"? ({exc})"
        return item

    return {"url": url, "status": status, "streams": streams, "writes": len(writes),
            "recent": list(ctx.pool.map(result, recent))}


# -- DA ---------------------------------------------------------------------------------------------------
def _signers(ctx: Context, tx_hash: str, root: str, epoch: int, quorum_id: int) -> dict[str, Any] | None:
    """Signed rows and distinct signers of a verified blob, from the calldata of its verification tx."""
    from eth_abi import decode as abi_decode

    from deaios.da.chain import SUBMISSION, DAChain

    key = f"signers:{tx_hash}:{root}:{epoch}:{quorum_id}"
    if key in ctx.cache:
        return ctx.cache[key]
    tx = rpc_call(ctx.stack.rpc, "eth_getTransactionByHash", [tx_hash])
    submissions = abi_decode([f"{SUBMISSION}[]"], bytes.fromhex(tx["input"][10:]))[0]
    chain = ctx.keep("da", lambda: DAChain(ctx.stack.rpc, ctx.stack.contracts["da_entrance"]))
    quorum = chain.quorum(epoch, quorum_id)
    for sub in submissions:
        if "0x" + bytes(sub[0]).hex() == root and sub[1] == epoch and sub[2] == quorum_id:
            bitmap = bytes(sub[4])
            rows = [r for r in range(quorum.rows) if bitmap[r // 8] & (1 << (r % 8))]
            owners = {quorum.owner(r) for r in rows}
            ctx.cache[key] = {"rows_signed": len(rows), "rows": quorum.rows, "signers": len(owners),
                              "members": len(set(quorum.members))}
            return ctx.cache[key]
    return None


def da(ctx: Context) -> dict[str, Any]:
    entrance = ctx.stack.contracts.get("da_entrance")
    if not entrance:
        return {}
    from deaios.da.chain import DAChain

    chain = ctx.keep("da", lambda: DAChain(ctx.stack.rpc, entrance))
    epoch = chain.epoch_number()
    uploads = ctx.events.get(entrance, DATA_UPLOAD, ctx.head)
    verified = {(v["dataRoot"], v["epoch"], v["quorumId"]): v for v in ctx.events.get(entrance, VERIFIED, ctx.head)}
    blobs = []
    for up in _newest(uploads, ctx.limit):
        ref = (up["dataRoot"], up["epoch"], up["quorumId"])
        check = verified.get(ref)
        signed = None
        if check is not None:
            try:
                signed = _signers(ctx, check["tx"], *ref)
            except Exception as exc:  # an older calldata layout: show the blob without its signers
                log.debug("signers of %s: %s", ref, exc)
        blobs.append({"root": up["dataRoot"], "epoch": up["epoch"], "quorum": up["quorumId"], "sender": up["sender"],
                      "fee": up["blobPrice"], "block": up["block"], "tx": up["tx"], "verified": check is not None,
                      "signed": signed})
    return {"epoch": epoch, "quorums": chain.quorum_count(epoch), "blobs_total": len(uploads),
            "verified_total": len(verified), "blobs": blobs}


# -- compute ----------------------------------------------------------------------------------------------
def compute(ctx: Context) -> dict[str, Any]:
    from deaios.compute.chain import ABIS, ComputeAddresses, ComputeChain, ComputeError

    try:
        addresses = ComputeAddresses.from_mapping(ctx.stack.contracts)
    except ComputeError:
        return {}
    chain = ctx.keep("compute", lambda: ComputeChain(ctx.stack.rpc, addresses))
    ledger = ABIS["ComputeLedger"]
    services = [s.to_json() for s in chain.services()]
    for service in services:
        service["earnings"] = chain.earnings(service["provider"])
    funded = ctx.events.get(addresses.ledger, Event.from_abi(ledger, "AccountFunded"), ctx.head)
    pairs = list(dict.fromkeys((e["user"], e["provider"]) for e in reversed(funded)))  # newest first
    accounts = []
    for user, provider in pairs[:ctx.limit]:
        available, reserved = chain.get_ledger(user)
        accounts.append({"user": user, "provider": provider, "ledger_available": available,
                         "ledger_reserved": reserved, **chain.get_account(user, provider).to_json()})
    settled = ctx.events.get(addresses.ledger, Event.from_abi(ledger, "ReceiptSettled"), ctx.head)
    from deaios.compute.receipts import SettlementStatus

    settlements = [{"user": e["user"], "provider": e["provider"], "nonce": e["nonce"],
                    "status": SettlementStatus(e["status"]).name, "paid": e["paid"], "unpaid": e["unpaid"],
                    "block": e["block"], "tx": e["tx"]} for e in _newest(settled, ctx.limit)]
    return {"services": services, "accounts": accounts, "settlements": settlements,
            "settled_total": len(settled), "paid_total": sum(e["paid"] for e in settled)}


# -- INFTs and the market -----------------------------------------------------------------------------------
def inft(ctx: Context) -> dict[str, Any]:
    from deaios.inft.chain import ABIS, InftAddresses, InftChain, InftChainError

    try:
        addresses = InftAddresses.from_mapping(ctx.stack.contracts)
    except InftChainError:
        return {}
    chain = ctx.keep("inft", lambda: InftChain(ctx.stack.rpc, addresses))
    transfers = ctx.events.get(addresses.nft, Event.from_abi(ABIS["AgentNFT"], "Transfer"), ctx.head)
    minted = [e["tokenId"] for e in transfers if int(e["from"], 16) == 0]
    tokens = []
    for token_id in list(reversed(minted))[:ctx.limit]:
        try:
            info = chain.token_info(token_id)
        except InftChainError as exc:  # burnt
            tokens.append({"tokenId": token_id, "error": str(exc)})
            continue
        tokens.append({"tokenId": token_id, "owner": info["owner"], "creator": info["creator"],
                       "datas": len(info["datas"]),
                       "dataHash": info["datas"][0]["dataHash"] if info["datas"] else None,
                       "authorizedUsers": len(info["authorizedUsers"])})
    return {"minted": len(minted), "transfers": len(transfers) - len(minted), "tokens": tokens}


def market(ctx: Context) -> dict[str, Any]:
    from deaios.market.chain import MarketAddresses, MarketChain, MarketError

    try:
        addresses = MarketAddresses.from_mapping(ctx.stack.contracts)
    except MarketError:
        return {}
    chain = ctx.keep("market", lambda: MarketChain(ctx.stack.rpc, addresses))
    now = chain.timestamp()
    listings = [dict(x.to_json(), open=x.active and x.expiry > now)
                for x in reversed(chain.listings(include_inactive=True))][:ctx.limit]
    purchases = [x.to_json() for x in reversed(chain.purchases(include_closed=True))][:ctx.limit]
    bundles = chain.bundles_listed() if addresses.compute_bundles else []
    return {"listings": listings, "purchases": purchases, "bundles": bundles[:ctx.limit]}


# -- alignment --------------------------------------------------------------------------------------------
def alignment(ctx: Context) -> dict[str, Any]:
    supervision = ctx.stack.contracts.get("alignment_supervision")
    if not supervision:
        return {}
    from deaios.alignment.chain import SupervisionChain

    chain = ctx.keep("alignment", lambda: SupervisionChain(ctx.stack.rpc, supervision))
    epoch = chain.current_epoch()
    seed, _ = chain.epoch_info(epoch)
    nodes = [{"id": n.node_id, "kind": n.kind_name, "url": n.url, "active": n.active, "flagged": n.flagged,
              "failures": n.failures, "stake": n.stake, "operator": n.operator} for n in chain.nodes()]
    attested = ctx.events.get(supervision, ATTESTED, ctx.head)
    flagged = ctx.events.get(supervision, FLAGGED, ctx.head)
    out: dict[str, Any] = {
        "epoch": epoch, "epoch_seconds": chain.epoch_seconds(), "opened": any(seed), "nodes": nodes,
        "attestations_total": len(attested),
        "attestations": [{"epoch": a["epoch"], "node": a["nodeId"], "operator": a["operator"], "passed": a["passed"],
                          "block": a["block"]} for a in _newest(attested, ctx.limit)],
        "flagged": [{"node": f["nodeId"], "epoch": f["epoch"], "slashed": f["slashed"], "block": f["block"]}
                    for f in _newest(flagged, ctx.limit)]}
    try:
        from deaios.alignment.economy import Economy, EconomyAddresses

        economy = ctx.keep("economy", lambda: Economy(ctx.stack.rpc, EconomyAddresses.from_mapping(ctx.stack.contracts)))
        out["licenses_minted"] = economy.total_minted()
    except Exception as exc:  # a stack without the economy contracts
        log.debug("alignment economy: %s", exc)
    return out


SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "chain": chain, "files": files, "kv": kv, "da": da, "compute": compute, "inft": inft, "market": market,
    "alignment": alignment,
}
#: sections that depend on the services' state, not only on the chain: refreshed even when no block was mined
LIVE = ("files", "kv")
