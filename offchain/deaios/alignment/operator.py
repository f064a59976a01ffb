"""The alignment operator's work (`deaios alignment node`): once per epoch, challenge every supervised node,
verify its answer, attest pass or fail on chain, and finalize the previous epochs' results.

One pass (`Operator.run_once`):

1. finalize the last FINALIZE_LOOKBACK epochs for every node that has attestations and no result yet (anyone
   may); add finalized files big enough for challenges to the contract's challenge pool (before the epoch is
   opened: the pool is fixed when it is);
2. open the current epoch on chain if nobody did (this fixes its seed), read the seed;
3. if this operator runs licenses in the epoch (delegations take effect an epoch after they are made), for
   every active node it has not attested yet: prepare the check once (the storage challenge the contract
   derives — `deaios.alignment.challenge` — and the challenged segment rebuilt from the *other* storage nodes'
   shares; or the DA row), then ask the node following the `TryPlan`: a node that answers correctly at any try
   passes (its answer latency is recorded as its own figure: slow is not dead); a node is judged failed only
   when every try of the plan failed, the tries spread over at least the contract's `minFailSpan` of the epoch.
   A pass of a storage node carries the chunk and its proof to the flow root (checked on chain); a fail carries
   the evidence: the tries' offsets and the hash of the record of them (times, errors, latencies). When the
   operator cannot judge (no challengeable file, the other nodes cannot rebuild the segment, too little of the
   epoch left for the evidence) it does not attest that node.

Every node checked or finalized yields one `Outcome`, printed by the CLI as a JSON line; an attestation's
`detail` holds the tries (`tries`: offset, wall time, milliseconds, error) and `latencyMs` of the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import aiohttp
from eth_abi import decode as abi_decode

from deaios._keccak import keccak256
from deaios.alignment.challenge import (
    MAX_ATTEMPTS, Challenge, chunk_siblings, eligible, flow_tree_at, pick_da_blob, pick_da_row, root_of,
    storage_challenge,
)
from deaios.alignment.chain import (
    DA, STORAGE, SupervisedNode, SupervisionChain, SupervisionChainError, SupervisionParams,
)
from deaios.chain_time import chain_now as time_now
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
POOL_ADDS_PER_PASS = 8  # challenge-pool registrations a pass sends at most
TX_MARGIN = 5.0  # seconds kept at the end of an epoch for the attestation transaction
MIN_GAP = 1.05  # seconds between two tries at least


@dataclass(frozen=True)
class TryPlan:
    """How a node is tried in an epoch: at `offsets` seconds after the first try (exponential backoff), each
    try given `timeout` seconds. Derived from the epoch length and the contract's evidence rule, the same for
    the demo and a real operator."""

    offsets: tuple[float, ...]
    timeout: float

    @classmethod
    def for_epoch(cls, epoch_seconds: int, min_span: int, min_tries: int, timeout: float | None = None) -> TryPlan:
        """`min_tries` (at least 4) tries over `min_span` seconds plus one (the contract counts whole seconds),
        doubling the wait each time; each try may take a sixth of the epoch, between 2 s and 60 s."""
        tries = max(min_tries, 4)
        span = float(min_span + 1)
        unit = span / (2 ** (tries - 1) - 1)
        offsets: list[float] = []
        for i in range(tries):  # at least 1.05 s apart: the contract wants strictly increasing whole seconds
            offsets.append(max(round(unit * (2**i - 1), 3), offsets[-1] + 1.05 if offsets else 0.0))
        if timeout is None:
            timeout = min(max(epoch_seconds / 6, 2.0), 60.0)
        return cls(tuple(offsets), timeout)

    @property
    def needed(self) -> float:
        """Seconds from the first try to a fail verdict, at worst."""
        return self.offsets[-1] + self.timeout


@dataclass(frozen=True)
class OperatorConfig:
    """Where the chain, the contracts and the storage nodes are, and the operator's key."""

    rpc: str
    supervision: str
    private_key: str
    storage_urls: list[str]  # every storage node, in placement order (share s of segment i on (i+s) mod n)
    deploy_block: int = 0  # where to start reading Flow Submit events
    timeout: float | None = None  # seconds one try may take (None: derived from the epoch, see TryPlan)
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


@dataclass
class _Prepared:
    """What one node's tries need: `ask` asks the node once and returns (passed, reason, proof)."""

    ask: Callable[[aiohttp.ClientSession, float], Awaitable[tuple[bool, str, tuple | None]]]
    detail: dict


class Operator:
    """An alignment operator: one key, one supervision contract, the storage network of one stack."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.chain = SupervisionChain(config.rpc, config.supervision, config.private_key)
        self._flow: str | None = None
        self._events: dict[int, SubmitEvent] = {}
        self._next_block = config.deploy_block
        self.da = DAChain(config.rpc, config.da_entrance) if config.da_entrance else None
        self._blobs: list[tuple[int, bytes, int, int]] = []  # (block, data root, epoch, quorum), in log order
        self._next_blob_block = config.deploy_block
        self._plan: TryPlan | None = None
        self._params: SupervisionParams | None = None
        # chain state read once per pass, before the nodes are judged concurrently (no blocking call in the loop)
        self._code: tuple[int, int] = (0, 0)
        self._pool: list[int] = []

    # -- chain state ----------------------------------------------------------------------------------
    @property
    def flow(self) -> str:
        if self._flow is None:
            self._flow = self.chain.flow()
        return self._flow

    def params(self) -> SupervisionParams:
        if self._params is None:
            self._params = self.chain.params()
        return self._params

    def plan(self) -> TryPlan:
        """The try plan of this supervision contract (its epoch length and evidence rule)."""
        if self._plan is None:
            p = self.params()
            self._plan = TryPlan.for_epoch(self.chain.epoch_seconds(), p.min_fail_span, p.min_fail_tries,
                                           self.config.timeout)
        return self._plan

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
        """(current epoch, seed, challenge pool size), opening the epoch on chain if needed."""
        epoch = self.chain.current_epoch()
        seed, files = self.chain.epoch_info(epoch)
        if seed == bytes(32):
            try:
                self.chain.open_epoch()
            except SupervisionChainError as exc:
                log.warning("openEpoch: %s", exc)
            epoch = self.chain.current_epoch()
            seed, files = self.chain.epoch_info(epoch)
        return epoch, seed, files

    async def grow_pool(self, session: aiohttp.ClientSession) -> list[int]:
        """Add finalized files big enough for challenges to the contract's pool; the tx seqs added."""
        n, k = self.chain.erasure_code()
        if n == 0:
            return []
        added = []
        for seq, event in sorted(self._events.items()):
            if len(added) >= POOL_ADDS_PER_PASS:
                break
            if not eligible(event.length, event.sectors, n, k) or self.chain.is_challenge_file(seq):
                continue
            if not await self._finalized(session, seq, range(len(self.config.storage_urls))):
                continue
            try:
                self.chain.register_challenge_file(seq)
                added.append(seq)
            except SupervisionChainError as exc:  # another operator was first: fine
                log.info("registerChallengeFile(%d): %s", seq, exc)
        return added

    # -- one pass -------------------------------------------------------------------------------------
    async def run_once(self) -> list[Outcome]:
        """Finalize recent epochs, grow the challenge pool, then challenge and attest every node of the epoch."""
        epoch = self.chain.current_epoch()
        nodes = self.chain.nodes()
        outcomes = [o for past in range(max(0, epoch - FINALIZE_LOOKBACK), epoch) for o in self.finalize(past, nodes)]
        self._sync_events()
        async with aiohttp.ClientSession() as session:
            if self.chain.epoch_info(epoch)[0] == bytes(32):
                await self.grow_pool(session)
            epoch, seed, files = self.open_epoch()
            if seed == bytes(32):
                return outcomes
            todo = [n for n in nodes
                    if n.active and not self.chain.has_attested(epoch, n.node_id, self.chain.operator)]
            weight = self.chain.weight(self.chain.operator)
            if not weight:
                reason = (f"{self.chain.operator} runs no license in epoch {epoch} (delegations take effect "
                          "from the next epoch)")
                return outcomes + [Outcome(epoch, n.node_id, n.kind_name, "skip", "skip", reason) for n in todo]
            self.plan()
            self._code = self.chain.erasure_code()
            self._pool = self.chain.challenge_files()[:files]
            opened = 0
            if self.da is not None and any(n.kind == DA for n in todo):
                self._sync_blobs()
                opened = self.chain.opened_block(epoch, self.config.deploy_block) or 0
            deadline = self._epoch_deadline(epoch)
            verdicts = await asyncio.gather(*(self._judge(session, epoch, seed, files, opened, n, deadline)
                                              for n in todo))
        for node, verdict in zip(todo, verdicts):
            verdict.detail["weight"] = weight
            outcomes.append(self._attest(epoch, node, verdict))
        return outcomes

    def _epoch_deadline(self, epoch: int) -> float:
        """time.monotonic() by which the epoch's attestations must be sent (its end in chain time, less a margin)."""
        end = self.chain.epoch_start(epoch + 1)
        chain_now = time_now(self.chain.w3)
        return time.monotonic() + (end - chain_now) - TX_MARGIN

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
            if verdict.passed:
                tx = self.chain.attest_pass(epoch, node.node_id, verdict.proof or (0, b"", []))
            else:
                evidence = verdict.detail["evidence"]
                tx = self.chain.attest_fail(epoch, node.node_id, evidence["tries"],
                                            bytes.fromhex(evidence["record"][2:]))
        except SupervisionChainError as exc:
            return Outcome(epoch, node.node_id, node.kind_name, "skip", "skip", f"attestation refused: {exc}",
                           detail=verdict.detail)
        return Outcome(epoch, node.node_id, node.kind_name, "attest", "pass" if verdict.passed else "fail",
                       verdict.reason, tx, verdict.detail)

    # -- judging one node: prepare once, then try by the plan ----------------------------------------------
    async def _judge(self, session: aiohttp.ClientSession, epoch: int, seed: bytes, files: int, opened: int,
                     node: SupervisedNode, deadline: float) -> _Verdict:
        try:
            if node.kind == STORAGE:
                prepared = await self._prepare_storage(session, epoch, seed, files, node)
            elif node.kind == DA:
                prepared = await self._prepare_da(session, seed, opened, node)
            else:
                prepared = _Verdict(None, f"unknown node kind {node.kind}")
            if isinstance(prepared, _Verdict):
                return prepared
            return await self._try(session, epoch, node, prepared, deadline)
        except Exception as exc:  # one node's trouble must not stop the others' checks
            log.exception("checking node %d", node.node_id)
            return _Verdict(None, f"operator error: {exc}")

    async def _try(self, session: aiohttp.ClientSession, epoch: int, node: SupervisedNode, prepared: _Prepared,
                   deadline: float) -> _Verdict:
        """Ask the node at the plan's offsets until it answers correctly; a fail only after every try failed.
        Tries stay at least MIN_GAP apart whatever delays them (the evidence's whole-second offsets increase)."""
        plan = self.plan()
        detail = dict(prepared.detail)
        tries: list[dict] = []
        start = time.monotonic()
        last = start - MIN_GAP
        for offset in plan.offsets:
            wait = max(start + offset, last + MIN_GAP) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            begun = last = time.monotonic()
            if begun + plan.timeout > deadline:
                break  # no time left in the epoch for this try and the attestation
            at = time.time()
            passed, reason, proof = await prepared.ask(session, plan.timeout)
            ms = round((time.monotonic() - begun) * 1000)
            if passed:
                detail.update(tries=tries, latencyMs=ms)
                return _Verdict(True, reason, proof, detail)
            tries.append({"offset": int(begun - start), "at": round(at, 3), "ms": ms, "error": reason})
        detail["tries"] = tries
        params = self.params()
        offsets = [t["offset"] for t in tries]
        if len(tries) < params.min_fail_tries or not offsets or offsets[-1] < params.min_fail_span \
                or any(b <= a for a, b in zip(offsets, offsets[1:])):
            return _Verdict(None, f"{len(tries)} failed tries so far: too little of epoch {epoch} left for the "
                                  "evidence a fail needs (judged next epoch)", detail=detail)
        record = {"epoch": epoch, "nodeId": node.node_id, "url": node.url, "operator": self.chain.operator,
                  "tries": tries}
        digest = keccak256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
        detail["evidence"] = {"tries": offsets, "record": "0x" + digest.hex()}
        return _Verdict(False, f"no correct answer in {len(tries)} tries over {offsets[-1]} s: {tries[-1]['error']}",
                        detail=detail)

    # -- storage nodes --------------------------------------------------------------------------------
    async def _prepare_storage(self, session: aiohttp.ClientSession, epoch: int, seed: bytes, files: int,
                               node: SupervisedNode) -> _Prepared | _Verdict:
        n, k = self._code
        urls = self.config.storage_urls
        if n == 0 or n != len(urls) or not 0 <= node.placement < n:
            return _Verdict(None, f"the storage network's erasure code on chain ({n}, {k}) does not match the "
                                  f"stack's {len(urls)} storage nodes")
        index = node.placement
        others = [i for i in range(n) if i != index]
        challenge = await self._derive(session, epoch, seed, files, node, n, k, others)
        if challenge is None:
            return _Verdict(None, "no challenge: no finalized file of the pool has a chunk in this node's data shares")
        event = self._events[challenge.tx_seq]
        detail = {"txSeq": challenge.tx_seq, "chunk": challenge.chunk_index, "position": challenge.position,
                  "attempt": challenge.attempt}
        root = event.data_root
        shares = ShareClient(session, urls)
        roots = await fetch_segment_roots(shares, root, others)
        if roots is None:
            return _Verdict(None, "the other nodes do not serve the file's segment roots", detail=detail)
        fetcher = SegmentFetcher(shares, ErasureCode(k, n), root, roots, event.length)
        fetcher.down.add(index)  # the reference comes from the other nodes only
        try:
            (segment,) = await fetcher.fetch(challenge.segment, 1)
        except RetrievalError as exc:
            return _Verdict(None, f"cannot rebuild the segment from the other nodes: {exc}", detail=detail)
        flow_tree = await asyncio.to_thread(flow_tree_at, list(self._events.values()), challenge.tx_seq)
        siblings = await asyncio.to_thread(chunk_siblings, event, challenge.chunk_index, segment, roots, flow_tree)
        offset = (challenge.chunk_index % SEGMENT_CHUNKS) * CHUNK_SIZE
        expected = segment[offset:offset + CHUNK_SIZE]
        (on_chain,) = await asyncio.to_thread(self.chain.view, FLOW_ROOT, ["uint256"], [challenge.tx_seq],
                                              ["bytes32"], to=self.flow)
        if root_of(expected, challenge.position, siblings) != bytes(on_chain):
            return _Verdict(None, "the chunk's proof does not reach the on-chain flow root", detail=detail)

        async def ask(session: aiohttp.ClientSession, timeout: float) -> tuple[bool, str, tuple | None]:
            try:
                answer = await rpc_call(session, node.url, "deaios_challenge", challenge.tx_seq,
                                        challenge.chunk_index, timeout=timeout)
                chunk = bytes.fromhex(str(answer["chunk"]).removeprefix("0x"))
                Proof.from_json(answer["segmentProof"]).verify(root, segment_root(segment), challenge.segment,
                                                               len(roots) // 32)
            except RpcCallError as exc:
                return False, f"no answer: {exc}", None
            except (KeyError, TypeError, ValueError, ProofError) as exc:
                return False, f"malformed answer: {exc}", None
            if chunk != expected:
                return False, "wrong chunk", None
            return True, "chunk and proof verified", (challenge.attempt, chunk, siblings)

        return _Prepared(ask, detail)

    async def _derive(self, session: aiohttp.ClientSession, epoch: int, seed: bytes, files: int,
                      node: SupervisedNode, n: int, k: int, others: list[int]) -> Challenge | None:
        """The first attempt whose file the other nodes report finalized (the contract's challenge, checked
        against `challengeOf`)."""
        for attempt in range(MAX_ATTEMPTS):
            challenge = storage_challenge(seed, node.node_id, attempt, self._pool, files, self._events, node.placement,
                                          n, k)
            if challenge is None or not await self._finalized(session, challenge.tx_seq, others):
                continue
            ok, tx_seq, chunk, position = await asyncio.to_thread(self.chain.challenge_of, epoch, node.node_id,
                                                                  attempt)
            if (ok, tx_seq, chunk, position) != (True, challenge.tx_seq, challenge.chunk_index, challenge.position):
                raise RuntimeError(f"challenge derivation disagrees with the contract: {challenge} vs "
                                   f"{(ok, tx_seq, chunk, position)}")
            return challenge
        return None

    async def _finalized(self, session: aiohttp.ClientSession, tx_seq: int, others) -> bool:
        """Whether another storage node reports the file finalized (the challenged node's word is not asked)."""
        for i in others:
            try:
                info = await rpc_call(session, self.config.storage_urls[i], "zgs_getFileInfoByTxSeq", tx_seq,
                                      timeout=self.plan().timeout)
            except RpcCallError:
                continue
            if isinstance(info, dict):
                return bool(info.get("finalized"))
        return False

    # -- DA nodes -------------------------------------------------------------------------------------------
    async def _prepare_da(self, session: aiohttp.ClientSession, seed: bytes, opened: int,
                          node: SupervisedNode) -> _Prepared | _Verdict:
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

        async def ask(session: aiohttp.ClientSession, timeout: float) -> tuple[bool, str, tuple | None]:
            try:
                reply = await rpc_call(session, node.url, "da_retrieve", "0x" + root.hex(), epoch, quorum_id,
                                       [column], timeout=timeout)
                header = BlobHeader.from_json(reply["header"])
                raw = str(reply["columns"][str(column)])
                cells = Column.from_bytes(column, bytes.fromhex(raw.removeprefix("0x")), len(header.commitments))
            except RpcCallError as exc:
                return False, f"no answer: {exc}", None
            except (KeyError, TypeError, ValueError, AttributeError, EncodingError) as exc:
                return False, f"malformed answer: {exc!r}", None
            if header.data_root != root:
                return False, "the header does not hash to the blob's data root", None
            if not await asyncio.to_thread(verify_columns, header, [cells]):
                return False, "cells do not match their KZG proofs", None
            return True, "row served, KZG cell proofs verified", None

        return _Prepared(ask, detail)
