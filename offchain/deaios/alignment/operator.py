"""The alignment operator's work (`deaios alignment node`): once per epoch, challenge every supervised node,
verify its answer, attest pass or fail on chain, and finalize the previous epoch's results.

One pass (`Operator.run_once`):

1. open the current epoch on chain if nobody did (this fixes its seed), read the seed;
2. finalize the last FINALIZE_LOOKBACK epochs for every node that has attestations and no result yet
   (anyone may);
3. for every active node this operator has not attested in the epoch: derive the challenge
   (`deaios.alignment.challenge`), ask the node (`deaios_challenge`, short timeout; it must answer from its
   own data), rebuild the challenged segment from the *other* storage nodes' shares, check the node's chunk
   and segment proof, build the chunk's proof to the flow root and attest pass with it (checked on chain)
   or fail. When the operator cannot judge (no challengeable file, the other nodes cannot rebuild the
   segment) it does not attest that node.

Every node checked or finalized yields one `Outcome`, printed by the CLI as a JSON line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field

import aiohttp
from eth_abi import decode as abi_decode

from deaios.alignment.challenge import (
    Challenge, candidate_seqs, chunk_siblings, data_share_chunks, flow_tree_at, pick_chunk, pick_da_blob,
    pick_da_row, root_of,
)
from deaios.alignment.chain import DA, STORAGE, SupervisedNode, SupervisionChain, SupervisionChainError
from deaios.da.chain import VERIFIED_TOPIC, DAChain, DAChainError
from deaios.da.encoding import BlobHeader, Column, EncodingError, column_of_row, verify_columns
from deaios.da.quorums import Quorum
from deaios.jsonrpc import RpcCallError, rpc_call
from deaios.storage.erasure import ErasureCode
from deaios.storage.merkle import CHUNK_SIZE, SEGMENT_CHUNKS, Proof, ProofError, segment_root
from deaios.storage.node.logsync import SubmitEvent
from deaios.storage.retrieval import RetrievalError, SegmentFetcher, fetch_segment_roots
from deaios.storage.share_transport import ShareClient

log = logging.getLogger(__name__)

FLOW_ROOT = "getFlowRootByTxSeq(uint256)"
FINALIZE_LOOKBACK = 3  # past epochs whose unrecorded results each pass finalizes


@dataclass(frozen=True)
class OperatorConfig:
    """Where the chain, the contracts and the storage nodes are, and the operator's key."""

    rpc: str
    supervision: str
    private_key: str
    storage_urls: list[str]  # every storage node, in placement order (share s of segment i on (i+s) mod n)
    deploy_block: int = 0  # where to start reading Flow Submit events
    timeout: float = 5.0  # seconds a challenged node has to answer
    da_entrance: str | None = None  # DAEntrance of the DA nodes (None: DA nodes are not checked)


@dataclass
class Outcome:
    """One JSON line: a node checked (verdict pass/fail/skip) or a result finalized."""

    epoch: int
    node_id: int
    kind: str
    action: str  # "attest" | "skip" | "finalize"
    verdict: str  # pass | fail | skip | the finalized result
    reason: str = ""
    tx: str | None = None
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        out["nodeId"] = out.pop("node_id")
        return out


@dataclass
class _Verdict:
    passed: bool | None  # None: cannot judge
    reason: str
    proof: tuple | None = None
    detail: dict = field(default_factory=dict)


class Operator:
    """An alignment operator: one key, one supervision contract, the storage network of one stack."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.chain = SupervisionChain(config.rpc, config.supervision, config.private_key)
        self.code = ErasureCode.for_nodes(len(config.storage_urls)) if config.storage_urls else None
        self.placement = {url.rstrip("/"): i for i, url in enumerate(config.storage_urls)}
        self._flow: str | None = None
        self._events: dict[int, SubmitEvent] = {}
        self._next_block = config.deploy_block
        self.da = DAChain(config.rpc, config.da_entrance) if config.da_entrance else None
        self._blobs: list[tuple[int, bytes, int, int]] = []  # (block, data root, epoch, quorum), in log order
        self._next_blob_block = config.deploy_block

    # -- chain state ----------------------------------------------------------------------------------
    @property
    def flow(self) -> str:
        if self._flow is None:
            self._flow = self.chain.flow()
        return self._flow

    def _sync_events(self) -> None:
        events, self._next_block = self.chain.submit_events(self.flow, self._next_block)
        self._events.update((e.seq, e) for e in events)

    def _sync_blobs(self) -> None:
        if self.da is None:
            return
        logs, self._next_blob_block = self.chain.logs(self.da.entrance, ["0x" + VERIFIED_TOPIC.hex()],
                                                      self._next_blob_block)
        for entry in logs:
            root, epoch, quorum_id = abi_decode(["bytes32", "uint256", "uint256"], bytes(entry["data"]))
            self._blobs.append((int(entry["blockNumber"]), bytes(root), int(epoch), int(quorum_id)))

    def _da_candidates(self, signer: str, opened: int) -> list[tuple[bytes, int, int, Quorum]]:
        """Verified, unexpired blobs (up to block `opened`) in quorums where `signer` holds rows."""
        assert self.da is not None
        out, expired = [], {}
        for block, root, epoch, quorum_id in self._blobs:
            if block > opened:
                break
            quorum = self.da.quorum(epoch, quorum_id)
            if signer not in quorum.members:
                continue
            if epoch not in expired:
                expired[epoch] = self.da.is_epoch_expired(epoch)
            if not expired[epoch]:
                out.append((root, epoch, quorum_id, quorum))
        return out

    def open_epoch(self) -> tuple[int, bytes, int]:
        """(current epoch, seed, submissions), opening the epoch on chain if needed."""
        epoch = self.chain.current_epoch()
        seed, submissions = self.chain.epoch_info(epoch)
        if seed == bytes(32):
            try:
                self.chain.open_epoch()
            except SupervisionChainError as exc:
                log.warning("openEpoch: %s", exc)
            epoch = self.chain.current_epoch()
            seed, submissions = self.chain.epoch_info(epoch)
        return epoch, seed, submissions

    # -- one pass -------------------------------------------------------------------------------------
    async def run_once(self) -> list[Outcome]:
        """Finalize recent epochs, then challenge and attest every node of the current one."""
        epoch, seed, submissions = self.open_epoch()
        nodes = self.chain.nodes()
        outcomes = [o for past in range(max(0, epoch - FINALIZE_LOOKBACK), epoch) for o in self.finalize(past, nodes)]
        if seed == bytes(32):
            return outcomes
        self._sync_events()
        todo = [n for n in nodes if n.active and not self.chain.has_attested(epoch, n.node_id, self.chain.operator)]
        opened = 0
        if self.da is not None and any(n.kind == DA for n in todo):
            self._sync_blobs()
            opened = self.chain.opened_block(epoch, self.config.deploy_block) or 0
        timeout = aiohttp.ClientTimeout(total=max(30.0, self.config.timeout))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            verdicts = await asyncio.gather(*(self._check(session, seed, submissions, opened, n) for n in todo))
        for node, verdict in zip(todo, verdicts):
            outcomes.append(self._attest(epoch, node, verdict))
        return outcomes

    def finalize(self, epoch: int, nodes: list[SupervisedNode]) -> list[Outcome]:
        """Record `epoch`'s results of the nodes that have attestations but no result yet."""
        pending = []
        for node in nodes:
            passes, fails, result = self.chain.tally(epoch, node.node_id)
            if result == "none" and passes + fails > 0:
                pending.append(node)
        if not pending:
            return []
        try:
            tx = self.chain.finalize(epoch, [n.node_id for n in pending])
        except SupervisionChainError as exc:  # e.g. another operator was first: nothing lost
            log.info("finalize(%d): %s", epoch, exc)
            tx = None
        outcomes = []
        for node in pending:
            passes, fails, result = self.chain.tally(epoch, node.node_id)
            outcomes.append(Outcome(epoch, node.node_id, node.kind_name, "finalize", result, tx=tx,
                                    detail={"passes": passes, "fails": fails}))
        return outcomes

    def _attest(self, epoch: int, node: SupervisedNode, verdict: _Verdict) -> Outcome:
        if verdict.passed is None:
            return Outcome(epoch, node.node_id, node.kind_name, "skip", "skip", verdict.reason, detail=verdict.detail)
        try:
            tx = self.chain.attest(epoch, node.node_id, verdict.passed, verdict.proof or (0, 0, b"", []))
        except SupervisionChainError as exc:
            return Outcome(epoch, node.node_id, node.kind_name, "skip", "skip", f"attestation refused: {exc}",
                           detail=verdict.detail)
        return Outcome(epoch, node.node_id, node.kind_name, "attest", "pass" if verdict.passed else "fail",
                       verdict.reason, tx, verdict.detail)

    async def _check(self, session: aiohttp.ClientSession, seed: bytes, submissions: int, opened: int,
                     node: SupervisedNode) -> _Verdict:
        started = time.monotonic()
        try:
            if node.kind == STORAGE:
                verdict = await self._check_storage(session, seed, submissions, node)
            elif node.kind == DA:
                verdict = await self._check_da(session, seed, opened, node)
            else:
                verdict = _Verdict(None, f"unknown node kind {node.kind}")
        except Exception as exc:  # one node's trouble must not stop the others' checks
            log.exception("checking node %d", node.node_id)
            verdict = _Verdict(None, f"operator error: {exc}")
        verdict.detail["ms"] = round((time.monotonic() - started) * 1000)
        return verdict

    # -- storage nodes --------------------------------------------------------------------------------
    async def _check_storage(self, session: aiohttp.ClientSession, seed: bytes, submissions: int,
                             node: SupervisedNode) -> _Verdict:
        index = self.placement.get(node.url.rstrip("/"))
        if index is None or self.code is None:
            return _Verdict(None, f"{node.url} is not one of the stack's storage nodes")
        shares = ShareClient(session, self.config.storage_urls)
        others = [i for i in range(len(self.config.storage_urls)) if i != index]
        challenge = await self._derive(session, seed, submissions, node.node_id, index, others)
        if challenge is None:
            return _Verdict(None, "no finalized file with a chunk in this node's data shares")
        event = self._events[challenge.tx_seq]
        detail = {"txSeq": challenge.tx_seq, "chunk": challenge.chunk_index, "position": challenge.position}
        root = event.data_root
        roots = await fetch_segment_roots(shares, root, others)
        if roots is None:
            return _Verdict(None, "the other nodes do not serve the file's segment roots", detail=detail)
        fetcher = SegmentFetcher(shares, self.code, root, roots, event.length)
        fetcher.down.add(index)  # the reference comes from the other nodes only
        try:
            (segment,) = await fetcher.fetch(challenge.segment, 1)
        except RetrievalError as exc:
            return _Verdict(None, f"cannot rebuild the segment from the other nodes: {exc}", detail=detail)

        try:
            answer = await rpc_call(session, node.url, "deaios_challenge", challenge.tx_seq, challenge.chunk_index,
                                    timeout=self.config.timeout)
            chunk = bytes.fromhex(str(answer["chunk"]).removeprefix("0x"))
            Proof.from_json(answer["segmentProof"]).verify(root, segment_root(segment), challenge.segment,
                                                           len(roots) // 32)
        except RpcCallError as exc:
            return _Verdict(False, f"no answer: {exc}", detail=detail)
        except (KeyError, TypeError, ValueError, ProofError) as exc:
            return _Verdict(False, f"malformed answer: {exc}", detail=detail)
        offset = (challenge.chunk_index % SEGMENT_CHUNKS) * CHUNK_SIZE
        if chunk != segment[offset:offset + CHUNK_SIZE]:
            return _Verdict(False, "wrong chunk", detail=detail)

        flow_tree = flow_tree_at(self._events.values(), challenge.tx_seq)
        siblings = chunk_siblings(event, challenge.chunk_index, segment, roots, flow_tree)
        (on_chain,) = self.chain.view(FLOW_ROOT, ["uint256"], [challenge.tx_seq], ["bytes32"], to=self.flow)
        if root_of(chunk, challenge.position, siblings) != bytes(on_chain):
            return _Verdict(None, "the chunk's proof does not reach the on-chain flow root", detail=detail)
        return _Verdict(True, "chunk and proof verified", (challenge.tx_seq, challenge.position, chunk, siblings),
                        detail)

    async def _derive(self, session: aiohttp.ClientSession, seed: bytes, submissions: int, node_id: int,
                      index: int, others: list[int]) -> Challenge | None:
        assert self.code is not None
        eligible = [seq for seq, event in sorted(self._events.items())
                    if data_share_chunks(self.code, event.length, index)]
        for attempt, (tx_seq, h) in enumerate(candidate_seqs(seed, node_id, submissions, eligible)):
            event = self._events.get(tx_seq)
            if event is None or not await self._finalized(session, tx_seq, others):
                continue
            chunk = pick_chunk(h, self.code, event.length, index)
            if chunk is not None:
                return Challenge(node_id, tx_seq, chunk, event.start_pos + chunk, attempt)
        return None

    async def _finalized(self, session: aiohttp.ClientSession, tx_seq: int, others: list[int]) -> bool:
        """Whether another storage node reports the file finalized (the challenged node's word is not asked)."""
        for i in others:
            try:
                info = await rpc_call(session, self.config.storage_urls[i], "zgs_getFileInfoByTxSeq", tx_seq,
                                      timeout=self.config.timeout)
            except RpcCallError:
                continue
            if isinstance(info, dict):
                return bool(info.get("finalized"))
        return False

    # -- DA nodes -------------------------------------------------------------------------------------------
    async def _check_da(self, session: aiohttp.ClientSession, seed: bytes, opened: int,
                        node: SupervisedNode) -> _Verdict:
        if self.da is None:
            return _Verdict(None, "no DAEntrance known (stack contracts.da_entrance)")
        try:
            candidates = await asyncio.to_thread(self._da_candidates, node.operator, opened)
        except DAChainError as exc:
            return _Verdict(None, f"DA contracts: {exc}")
        pick = pick_da_blob(seed, node.node_id, len(candidates))
        if pick is None:
            return _Verdict(None, "no unexpired verified blob in this node's quorums")
        root, epoch, quorum_id, quorum = candidates[pick[0]]
        row = pick_da_row(pick[1], quorum.rows_of(node.operator))
        column = column_of_row(row, quorum.rows)
        detail = {"dataRoot": "0x" + root.hex(), "daEpoch": epoch, "quorumId": quorum_id, "row": row, "column": column}
        try:
            reply = await rpc_call(session, node.url, "da_retrieve", "0x" + root.hex(), epoch, quorum_id, [column],
                                   timeout=self.config.timeout)
            header = BlobHeader.from_json(reply["header"])
            raw = str(reply["columns"][str(column)])
            cells = Column.from_bytes(column, bytes.fromhex(raw.removeprefix("0x")), len(header.commitments))
        except RpcCallError as exc:
            return _Verdict(False, f"no answer: {exc}", detail=detail)
        except (KeyError, TypeError, ValueError, AttributeError, EncodingError) as exc:
            return _Verdict(False, f"malformed answer: {exc!r}", detail=detail)
        if header.data_root != root:
            return _Verdict(False, "the header does not hash to the blob's data root", detail=detail)
        if not await asyncio.to_thread(verify_columns, header, [cells]):
            return _Verdict(False, "cells do not match their KZG proofs", detail=detail)
        return _Verdict(True, "row served, KZG cell proofs verified", detail=detail)
