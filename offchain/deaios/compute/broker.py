"""Provider broker: an OpenAI-compatible `/v1/chat/completions` endpoint that bills every request.

Protocol (all amounts in wei, addresses checksummed, hashes 0x-hex):

1. The user sends the OpenAI request with three headers: `X-Deaios-User` (its address), `X-Deaios-Nonce`
   (the broker's last billed nonce for that user + 1) and `X-Deaios-Signature`: the user's EIP-712
   signature of `ServiceRequest(user, provider, nonce, keccak(body))` (`deaios.compute.receipts`). A bad or
   replayed signature is refused (401); the nonce is checked under the user's lock, so two copies of one
   signed request are served once.
   In user-signed mode two more: `X-Deaios-Max-Total` and `X-Deaios-Receipt-Signature`, the user's
   signature of the cumulative receipt at this request's *maximum* cost (nonce, previous total + prompt ×
   inputPrice + max_tokens × outputPrice, requestsHash = keccak(previous ‖ keccak(body) ‖ 32 zero bytes));
   without it the request is not served (402). The broker thus always holds a receipt covering what it
   served: a user who never signs the exact bill is charged that maximum (after `unsigned_grace` seconds).
2. The broker checks the user's sub-account on chain: its free balance minus what the broker billed and
   has not settled yet must cover the request's maximum cost (else 402), and, in user-signed mode, that the
   user signed the previous bill (else 402 with the bill to sign). In TEE mode the user must have
   acknowledged the broker's signer in the ledger. A user is remembered only once billed.
3. It runs the backend, meters tokens (`backend.count_tokens`), bills `fee = prompt × inputPrice +
   completion × outputPrice` at the prices in effect on chain (`ServiceRegistry.pricesOf`: a price increase
   is billed only from the date the registry set when it was announced) (402 if the balance does not cover
   it; nothing is returned), and answers the
   OpenAI response plus `x_deaios`: the new cumulative receipt `{nonce, fee, totalFee, requestsHash,
   signerKind}` (TEE mode: with the broker's signature).
4. User-signed mode: the client checks the bill (recounts the tokens, recomputes fee, total and hash) and
   posts its signature of the receipt to `POST /deaios/v1/receipts`.
5. Every `settle_interval` seconds the broker settles the newest signed receipt of each user with unsettled
   spend (`settleFees`, ≤ 50 per transaction) and accepts the matches the matcher assigned to it (within
   the matcher's window: a match left unanswered counts as a decline and costs the provider stake).

State (bills, signed receipts, settled nonces) is kept in the broker's directory: `state.json` (a snapshot)
and `state.log` (one JSON line per change, appended and fsynced: a bill costs one line, not a rewrite of
every user's state; folded into the snapshot at start and every `JOURNAL_LINES` lines), so a restart loses
nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import weakref
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aiohttp import web
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from deaios import metrics
from deaios.compute.backend import Backend, EchoBackend, count_tokens, prompt_tokens
from deaios.compute.backend import fee as compute_fee
from deaios.compute.chain import INFERENCE, ComputeChain, ComputeError
from deaios.service_limits import Limits, guard
from deaios.compute.receipts import (
    ZERO32,
    Receipt,
    SignerKind,
    next_requests_hash,
    receipt_digest,
    recover,
    request_digest,
    sign_receipt,
)

log = logging.getLogger("deaios.compute.broker")

MAX_BODY = 1 << 20
BATCH = 50
BILLED = metrics.counter("compute", "calls_billed_total", "Inference calls served and billed.")
BILLED_WEI = metrics.counter("compute", "billed_wei_total", "Fees billed for inference calls (wei).")
TOKENS = metrics.counter("compute", "tokens_total", "Tokens metered, by kind (prompt, completion).", ["kind"])
SETTLED = metrics.counter("compute", "receipts_settled_total", "Receipts sent to settleFees, by the ledger's "
                          "verdict (SUCCESS, PARTIAL, INVALID_NONCE, …).", ["status"])
SETTLED_WEI = metrics.counter("compute", "settled_wei_total", "Fees the ledger paid out on settlement (wei).")
DEFAULT_MAX_TOKENS = 1024  # a request's completion cap when it names none
JOURNAL_LINES = 1000


@dataclass
class BrokerConfig:
    rpc: str
    provider_key: str
    data_dir: Path
    model: str = "deaios-echo"
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    input_price: int = 1_000_000
    output_price: int = 2_000_000
    #: "user": the user signs each bill; "tee": the broker's signer key (standing in for a TEE) signs
    settlement: str = "user"
    signer_key: str | None = None
    settle_interval: float = 5.0
    auto_accept: bool = True
    register: bool = True
    gpu_type: str = "cpu"
    gpu_count: int = 0
    memory_mib: int = 1024
    max_tokens: int = DEFAULT_MAX_TOKENS  # completion cap (and the largest max_tokens a request may ask)
    unsigned_grace: float = 30.0  # seconds before an unsigned exact bill is settled at its pre-signed maximum


@dataclass
class UserState:
    nonce: int = 0
    total: int = 0
    hash: str = "0x" + "00" * 32
    signed_nonce: int = 0
    signed_total: int = 0
    signed_hash: str = "0x" + "00" * 32
    signature: str = ""
    settled_nonce: int = 0
    settled_total: int = 0
    # the receipt the user pre-signed at the maximum cost of its last request (user-signed mode)
    max_nonce: int = 0
    max_total: int = 0
    max_hash: str = "0x" + "00" * 32
    max_signature: str = ""
    billed_at: float = 0.0  # unix time of the last bill
    settled_at_max: int = 0  # the last nonce settled at its pre-signed maximum (the user never signed it)

    @classmethod
    def from_json(cls, data: dict) -> UserState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class BrokerState:
    """Every billed user's state: a snapshot (state.json) plus a journal of changes (state.log)."""

    users: dict[str, UserState] = field(default_factory=dict)
    match_block: int = 0
    path: Path | None = None
    journal_lines: int = 0

    @classmethod
    def load(cls, path: Path) -> BrokerState:
        state = cls(path=path)
        if path.exists():
            d = json.loads(path.read_text())
            state.users = {k: UserState.from_json(v) for k, v in d.get("users", {}).items()}
            state.match_block = int(d.get("match_block", 0))
        journal = path.with_suffix(".log")
        if journal.exists():
            for line in journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # a line cut short by a crash: the ones before it are complete
                    break
                if "user" in entry:
                    state.users[entry["user"]] = UserState.from_json(entry["state"])
                if "match_block" in entry:
                    state.match_block = int(entry["match_block"])
        state.snapshot()
        return state

    def snapshot(self) -> None:
        """Write the whole state to state.json and empty the journal."""
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"users": {k: asdict(v) for k, v in self.users.items()},
                                   "match_block": self.match_block}, indent=1))
        tmp.replace(self.path)
        self.path.with_suffix(".log").unlink(missing_ok=True)
        self.journal_lines = 0

    def record(self, user: str | None = None) -> None:
        """Persist one user's state (or the match cursor): one journal line, appended and fsynced."""
        assert self.path is not None
        entry: dict[str, Any] = {"match_block": self.match_block}
        if user is not None:
            entry = {"user": user, "state": asdict(self.users[user])}
        with open(self.path.with_suffix(".log"), "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.journal_lines += 1
        if self.journal_lines >= JOURNAL_LINES:
            self.snapshot()


class BrokerError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


class Broker:
    def __init__(self, config: BrokerConfig, chain: ComputeChain, backend: Backend | None = None) -> None:
        self.config = config
        self.chain = chain
        self.backend = backend or EchoBackend()
        self.provider = chain.address
        if config.settlement not in ("user", "tee"):
            raise ValueError("settlement must be 'user' or 'tee'")
        self.signer = (
            Account.from_key(config.signer_key) if config.settlement == "tee" and config.signer_key else None
        )
        if config.settlement == "tee" and self.signer is None:
            raise ValueError("TEE settlement needs a signer key")
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = config.data_dir / "state.json"
        self.state = BrokerState.load(self.state_path)
        self.locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.settle_lock = asyncio.Lock()
        self.url = ""

    # --- chain-side setup -----------------------------------------------------------------------------
    def register(self) -> str:
        c = self.config
        return self.chain.register_service(
            model=c.model,
            url=self.url,
            input_price=c.input_price,
            output_price=c.output_price,
            service_type=INFERENCE,
            gpu_type=c.gpu_type,
            gpu_count=c.gpu_count,
            memory_mib=c.memory_mib,
            verifiability="TEE" if c.settlement == "tee" else "user-signed",
            signer=self.signer.address if self.signer else "0x" + "00" * 20,
        )

    # --- HTTP ---------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/v1/chat/completions", self.handle_chat)
        app.router.add_get("/v1/models", self.handle_models)
        app.router.add_get("/deaios/v1/service", self.handle_service)
        app.router.add_get("/deaios/v1/account/{user}", self.handle_account)
        app.router.add_post("/deaios/v1/receipts", self.handle_receipt)
        return guard(metrics.instrument(app, "compute"), Limits(bodies={("POST", "/v1/chat/completions"): MAX_BODY,
                                         ("POST", "/deaios/v1/receipts"): 4 << 10}, default_body=0, active=16))

    @staticmethod
    def _error(exc: BrokerError) -> web.Response:
        body = {"error": {"message": str(exc), "type": "deaios_billing", "code": exc.status, **exc.extra}}
        return web.json_response(body, status=exc.status)

    async def handle_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.config.model, "object": "model", "owned_by": self.provider}],
            }
        )

    async def handle_service(self, request: web.Request) -> web.Response:
        c = self.config
        return web.json_response(
            {
                "provider": self.provider,
                "model": c.model,
                "inputPrice": c.input_price,
                "outputPrice": c.output_price,
                "settlement": c.settlement,
                "signer": self.signer.address if self.signer else None,
                "maxTokens": c.max_tokens,
                "ledger": self.chain.addresses.ledger,
                "chainId": self.chain.chain_id,
            }
        )

    async def handle_account(self, request: web.Request) -> web.Response:
        try:
            user = to_checksum_address(request.match_info["user"])
        except ValueError:
            return self._error(BrokerError(400, "not an address"))
        return web.json_response(asdict(self.state.users.get(user, UserState())))

    def _lock(self, user: str) -> asyncio.Lock:
        lock = self.locks.get(user)
        if lock is None:
            lock = self.locks[user] = asyncio.Lock()
        return lock

    async def handle_chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
            user, nonce = self._authenticate(request, body)
            async with self._lock(user):
                self._check_nonce(user, nonce)  # under the lock: a second copy of the request sees the new nonce
                return web.json_response(await self._serve(user, nonce, body, request.headers))
        except BrokerError as exc:
            return self._error(exc)

    async def handle_receipt(self, request: web.Request) -> web.Response:
        try:
            try:
                receipt = Receipt.from_json(await request.json())
                user = to_checksum_address(receipt.user)
            except (ValueError, KeyError, TypeError) as exc:
                raise BrokerError(400, f"malformed receipt: {exc}") from None
            async with self._lock(user):
                self._accept_user_receipt(user, receipt)
            return web.json_response({"ok": True, "nonce": receipt.nonce, "totalFee": receipt.total_fee})
        except BrokerError as exc:
            return self._error(exc)

    # --- billing --------------------------------------------------------------------------------------
    def _authenticate(self, request: web.Request, body: bytes) -> tuple[str, int]:
        try:
            user = to_checksum_address(request.headers["X-Deaios-User"])
            nonce = int(request.headers["X-Deaios-Nonce"])
            signature = bytes.fromhex(request.headers["X-Deaios-Signature"].removeprefix("0x"))
        except (KeyError, ValueError):
            raise BrokerError(
                401, "missing or malformed X-Deaios-User / X-Deaios-Nonce / X-Deaios-Signature headers"
            ) from None
        digest = request_digest(
            self.chain.chain_id, self.chain.addresses.ledger, user, self.provider, nonce, keccak(body)
        )
        try:
            signer = recover(digest, signature)
        except Exception:  # noqa: BLE001 - any malformed signature
            signer = None
        if signer != user:
            raise BrokerError(401, "the request signature does not match X-Deaios-User")
        return user, nonce

    def _check_nonce(self, user: str, nonce: int) -> None:
        state = self.state.users.get(user, UserState())
        if nonce != state.nonce + 1:
            raise BrokerError(
                401,
                f"stale or future request nonce {nonce}; expected {state.nonce + 1}",
                expected_nonce=state.nonce + 1,
            )

    def _presigned_maximum(self, user: str, state: UserState, body: bytes, headers: Any, max_cost: int
                           ) -> tuple[int, str, str]:
        """The receipt the user pre-signed at this request's maximum cost: (total, requests hash, signature);
        402 unless it is there, signed by the user and covers `max_cost`."""
        try:
            max_total = int(headers["X-Deaios-Max-Total"])
            signature = bytes.fromhex(headers["X-Deaios-Receipt-Signature"].removeprefix("0x"))
        except (KeyError, ValueError):
            raise BrokerError(402, "sign the receipt at this request's maximum cost first (X-Deaios-Max-Total, "
                                   "X-Deaios-Receipt-Signature)", previous={"nonce": state.nonce,
                                   "totalFee": state.total, "requestsHash": state.hash}, maxCost=max_cost) from None
        if max_total < state.total + max_cost:
            extra: dict[str, Any] = {"maxCost": max_cost, "bill": {"nonce": state.nonce, "totalFee": state.total,
                                                                   "requestsHash": state.hash}}
            if state.settled_at_max == state.nonce and state.nonce:
                extra["bill"]["settledAtMaximum"] = True
            raise BrokerError(409, f"the pre-signed maximum {max_total} does not cover this request: receipts "
                                   f"continue from total {state.total}, and it may cost up to {max_cost}", **extra)
        max_hash = next_requests_hash(bytes.fromhex(state.hash[2:]), keccak(body), ZERO32)
        digest = receipt_digest(self.chain.chain_id, self.chain.addresses.ledger, user, self.provider,
                                 state.nonce + 1, max_total, max_hash)
        try:
            ok = recover(digest, signature) == user
        except Exception:  # noqa: BLE001 - any malformed signature
            ok = False
        if not ok:
            raise BrokerError(401, "the pre-signed receipt is not signed by the user")
        return max_total, "0x" + max_hash.hex(), "0x" + signature.hex()

    async def _serve(self, user: str, nonce: int, body: bytes, headers: Any) -> dict:
        try:
            req = json.loads(body)
            messages = req["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
            max_tokens = req.get("max_tokens", self.config.max_tokens)
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) \
                    or not 0 <= max_tokens <= self.config.max_tokens:
                raise TypeError(f"max_tokens must be an integer in 0..{self.config.max_tokens}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise BrokerError(400, f"malformed chat request: {str(exc)[:200]}") from None
        if req.get("model", self.config.model) != self.config.model:
            raise BrokerError(404, f"this provider serves {self.config.model!r}")
        known = self.state.users.get(user)
        state = known if known is not None else UserState()  # remembered only once billed
        if self.signer is None and state.signed_nonce != state.nonce:
            raise BrokerError(
                402,
                f"sign the receipt of request {state.nonce} first",
                unsigned={"nonce": state.nonce, "totalFee": state.total, "requestsHash": state.hash},
            )
        prompt = prompt_tokens(messages)
        # bill at the prices in effect on chain (an announced increase applies only from its date: audit M3)
        input_price, output_price = await asyncio.to_thread(self.chain.prices, self.provider)
        max_cost = compute_fee(prompt, max_tokens, input_price, output_price)
        presigned = None
        if self.signer is None:
            presigned = self._presigned_maximum(user, state, body, headers, max_cost)
        credit = await asyncio.to_thread(self._credit, user, state)
        if credit < max_cost:
            raise BrokerError(
                402, f"insufficient balance in the sub-account: this request may cost up to {max_cost}",
                available=credit, maxCost=max_cost,
            )
        reply = await asyncio.to_thread(self.backend.complete, messages, max_tokens)
        if count_tokens(reply) > max_tokens:  # a backend that ignores the cap is cut to it
            reply = " ".join(reply.split()[:max_tokens])
        completion = count_tokens(reply)
        cost = compute_fee(prompt, completion, input_price, output_price)  # ≤ max_cost ≤ credit
        new_hash = next_requests_hash(bytes.fromhex(state.hash[2:]), keccak(body), keccak(reply.encode()))
        if known is None:
            self.state.users[user] = state
        if presigned is not None:
            state.max_nonce = state.nonce + 1
            state.max_total, state.max_hash, state.max_signature = presigned
        state.billed_at = time.time()
        state.nonce += 1
        state.total += cost
        state.hash = "0x" + new_hash.hex()
        bill: dict[str, Any] = {
            "provider": self.provider,
            "nonce": state.nonce,
            "fee": cost,
            "totalFee": state.total,
            "requestsHash": state.hash,
            "signerKind": "TEE" if self.signer else "USER",
        }
        if self.signer is not None:
            r = sign_receipt(
                self.signer.key,
                self.chain.chain_id,
                self.chain.addresses.ledger,
                user,
                self.provider,
                state.nonce,
                state.total,
                new_hash,
                SignerKind.TEE,
            )
            state.signed_nonce, state.signed_total, state.signed_hash = state.nonce, state.total, state.hash
            state.signature = "0x" + r.signature.hex()
            bill["signature"] = state.signature
        self.state.record(user)
        BILLED.inc()
        BILLED_WEI.inc(cost)
        TOKENS.labels("prompt").inc(prompt)
        TOKENS.labels("completion").inc(completion)
        log.info(
            "served %s: request %d, %d+%d tokens, fee %d, total %d",
            user,
            state.nonce,
            prompt,
            completion,
            cost,
            state.total,
        )
        return {
            "id": f"chatcmpl-{state.hash[2:18]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "x_deaios": bill,
        }

    def _credit(self, user: str, state: UserState) -> int:
        """What the user can still spend: free sub-account funds minus billed-but-unsettled spend."""
        try:
            account = self.chain.get_account(user, self.provider)
        except ComputeError as exc:
            raise BrokerError(503, f"cannot read the ledger: {exc}") from None
        if self.signer is not None and account.tee_signer != self.signer.address:
            raise BrokerError(
                402,
                f"acknowledge this provider's signer {self.signer.address} in the ledger first",
                signer=self.signer.address,
            )
        unsettled = max(state.total - account.charged, 0)
        return account.balance - account.pending_refund - unsettled

    def _accept_user_receipt(self, user: str, receipt: Receipt) -> None:
        state = self.state.users.get(user)
        if (
            state is None
            or receipt.nonce != state.nonce
            or receipt.total_fee != state.total
            or "0x" + receipt.requests_hash.hex() != state.hash
            or receipt.signer_kind != SignerKind.USER
        ):
            bill: dict[str, Any] = {
                "nonce": state.nonce if state else 0,
                "totalFee": state.total if state else 0,
                "requestsHash": state.hash if state else "0x" + "00" * 32,
            }
            if state is not None and state.nonce and state.settled_at_max == state.nonce:
                bill["settledAtMaximum"] = True
            raise BrokerError(409, "the receipt does not match the last bill", bill=bill)
        digest = receipt_digest(
            self.chain.chain_id,
            self.chain.addresses.ledger,
            user,
            self.provider,
            receipt.nonce,
            receipt.total_fee,
            receipt.requests_hash,
        )
        try:
            ok = recover(digest, receipt.signature) == user
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            raise BrokerError(401, "the receipt is not signed by the user")
        state.signed_nonce, state.signed_total, state.signed_hash = (
            receipt.nonce,
            receipt.total_fee,
            state.hash,
        )
        state.signature = "0x" + receipt.signature.hex()
        self.state.record(user)

    # --- settlement -----------------------------------------------------------------------------------
    def settle_unsigned_at_maximum(self) -> list[str]:
        """Users whose last bill is still unsigned after `unsigned_grace` seconds: their pre-signed receipt
        at that request's maximum cost becomes the bill (the user authorized it; it is what gets settled).
        Runs on the event loop, between requests, so it never interleaves with a bill."""
        converted = []
        now = time.time()
        for user, s in self.state.users.items():
            if self.signer is None and s.signed_nonce < s.nonce == s.max_nonce and s.max_signature \
                    and now - s.billed_at >= self.config.unsigned_grace:
                s.total, s.hash = s.max_total, s.max_hash
                s.signed_nonce, s.signed_total, s.signed_hash, s.signature = s.nonce, s.max_total, s.max_hash, \
                    s.max_signature
                s.settled_at_max = s.nonce
                self.state.record(user)
                converted.append(user)
                log.warning("%s never signed bill %d: settling the maximum it pre-signed (%d)", user, s.nonce,
                            s.max_total)
        return converted

    def pending_receipts(self) -> list[Receipt]:
        out = []
        for user, s in self.state.users.items():
            if s.signed_nonce > s.settled_nonce and s.signature:
                out.append(
                    Receipt(
                        user=user,
                        provider=self.provider,
                        nonce=s.signed_nonce,
                        total_fee=s.signed_total,
                        requests_hash=bytes.fromhex(s.signed_hash[2:]),
                        signer_kind=SignerKind.TEE if self.signer else SignerKind.USER,
                        signature=bytes.fromhex(s.signature[2:]),
                    )
                )
        return out

    def settle_once(self) -> list[dict]:
        """Settle every signed, unsettled receipt (blocking); the per-receipt results."""
        results: list[dict] = []
        receipts = self.pending_receipts()
        for start in range(0, len(receipts), BATCH):
            batch = receipts[start : start + BATCH]
            out = self.chain.settle(batch)
            for r, res in zip(batch, out):
                s = self.state.users[r.user]
                SETTLED.labels(res["status"]).inc()
                SETTLED_WEI.inc(res["paid"])
                if res["status"] in ("SUCCESS", "PARTIAL", "INVALID_NONCE"):
                    # accepted, or already settled by an earlier (e.g. interrupted) run
                    s.settled_nonce, s.settled_total = r.nonce, r.total_fee
                if res["status"] not in ("SUCCESS",):
                    log.warning(
                        "settlement of %s nonce %d: %s (unpaid %d)",
                        r.user,
                        r.nonce,
                        res["status"],
                        res["unpaid"],
                    )
                results.append(res)
                self.state.record(r.user)
        return results

    def accept_matches(self) -> list[int]:
        latest = self.chain.w3.eth.block_number
        if self.state.match_block > latest:
            return []
        ids = self.chain.matches_for(self.provider, self.state.match_block, latest)
        accepted = []
        for rid in sorted(set(ids)):
            if (
                self.chain.get_request(rid)["status"] == "Matched"
                and self.chain.get_request(rid)["provider"] == self.provider
            ):
                try:
                    self.chain.accept_match(rid)
                    accepted.append(rid)
                    log.info("accepted match %d", rid)
                except ComputeError as exc:
                    log.warning("cannot accept match %d: %s", rid, exc)
        self.state.match_block = latest + 1
        self.state.record()
        return accepted

    async def background(self) -> None:
        while True:
            await asyncio.sleep(self.config.settle_interval)
            await self.tick()

    async def tick(self) -> dict:
        """One round of background work: accept matches, settle. Errors are logged, never fatal."""
        out: dict[str, Any] = {}
        async with self.settle_lock:
            if self.config.auto_accept:
                try:
                    out["accepted"] = await asyncio.to_thread(self.accept_matches)
                except Exception as exc:  # noqa: BLE001 - keep serving
                    log.warning("accepting matches failed: %s", exc)
            self.settle_unsigned_at_maximum()
            try:
                out["settled"] = await asyncio.to_thread(self.settle_once)
            except Exception as exc:  # noqa: BLE001
                log.warning("settlement failed: %s", exc)
        return out


async def serve(
    config: BrokerConfig, chain: ComputeChain, ready: asyncio.Event | None = None, announce: Any = None
) -> None:
    """Run a broker until SIGTERM/SIGINT (or cancellation): bind, register the service with its URL, serve,
    accept matches and settle periodically; settle once more before exiting."""
    broker = Broker(config, chain)
    runner = web.AppRunner(broker.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    broker.url = config.public_url or f"http://{config.host}:{port}"
    if config.register:
        outcome = await asyncio.to_thread(broker.register)
        log.info("service %s at %s", outcome, broker.url)
    if announce is not None:
        announce(
            {
                "provider": broker.provider,
                "url": broker.url,
                "model": config.model,
                "inputPrice": config.input_price,
                "outputPrice": config.output_price,
                "settlement": config.settlement,
                "signer": broker.signer.address if broker.signer else None,
            }
        )
    if ready is not None:
        ready.set()
    task = asyncio.create_task(broker.background())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        await stop.wait()
    finally:
        task.cancel()
        await broker.tick()  # settle what was served before stopping
        await runner.cleanup()


__all__ = ["Broker", "BrokerConfig", "BrokerError", "serve", "ZERO32"]
