"""User side of the compute market: funds, matching and signed calls to a provider's broker.

`ComputeClient.chat` sends one OpenAI chat request signed as `deaios.compute.broker` describes, checks the
bill it gets back (the tokens are recounted with the public metering rule, the fee recomputed from the
prices registered on chain, the cumulative total and requests hash recomputed from the client's own last
receipt) and, for a user-signed provider, signs the new cumulative receipt and hands it to the broker. The
client never signs a total it did not check — except the request's maximum: with every request to a
user-signed provider it signs the receipt at the request's maximum cost (prompt × inputPrice + max_tokens
× outputPrice, max_tokens defaulting to `DEFAULT_MAX_TOKENS`), which the provider settles only if the exact
bill is never signed; should that happen, the client resumes from that maximum (it signed it). Its
per-provider receipt state is a JSON file (`~/.deaios/compute/<chain>-<ledger>-<user>.json` by default).

A signed receipt that cannot be handed over (the provider crashed right after answering) is kept in that file
and handed over before the next request: the answer is the user's and is billed exactly once, at its exact fee
(or, if the provider gave up waiting, at the maximum the user signed for it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from eth_utils import keccak, to_checksum_address

from deaios.compute.backend import count_tokens, prompt_tokens
from deaios.compute.backend import fee as compute_fee
from deaios.compute.chain import ComputeChain, ComputeError
from deaios.compute.receipts import (
    ZERO32,
    SignerKind,
    next_requests_hash,
    receipt_digest,
    recover,
    request_digest,
    sign_digest,
    sign_receipt,
)
from deaios.stack.config import deaios_home


DEFAULT_MAX_TOKENS = 1024  # the completion cap a request asks for when the caller names none


class BillingError(ComputeError):
    """The provider refused a request or sent a bill the client cannot accept."""


class ProviderUnreachable(BillingError):
    """The provider did not answer (down, restarting): the same request may be sent again."""


@dataclass
class ProviderState:
    nonce: int = 0
    total: int = 0
    hash: str = "0x" + "00" * 32
    # the last receipt signed at a request's maximum cost (the provider may settle it instead of the bill)
    max_nonce: int = 0
    max_total: int = 0
    max_hash: str = "0x" + "00" * 32
    # the signed receipt of the last answered request, until the provider took it (its JSON)
    pending_receipt: dict | None = None

    def adopt_maximum(self, bill: dict) -> bool:
        """Continue from the pre-signed maximum when the provider settled it: only if `bill` is exactly the
        maximum this client signed for its last request."""
        if bill.get("settledAtMaximum") and (bill.get("nonce"), bill.get("totalFee"), bill.get("requestsHash")) \
                == (self.max_nonce, self.max_total, self.max_hash) and self.max_nonce >= self.nonce:
            self.nonce, self.total, self.hash = self.max_nonce, self.max_total, self.max_hash
            return True
        return False


class ComputeClient:
    def __init__(
        self, chain: ComputeChain, private_key: str, state_file: Path | None = None, timeout: float = 60.0
    ) -> None:
        self.chain = chain
        self.key = private_key
        self.user = chain.address
        if state_file is None:
            # keyed by the chain's genesis block too: every fresh local chain has the same chain id and, from the
            # same deployer, the same ledger address, and a state file of an earlier chain sent stale nonces
            genesis = bytes(chain.w3.eth.get_block(0)["hash"]).hex()[:16]
            state_file = (
                deaios_home()
                / "compute"
                / f"{chain.chain_id}-{genesis}-{chain.addresses.ledger.lower()}-{self.user.lower()}.json"
            )
        self.state_file = state_file
        self.timeout = timeout

    # --- local receipt state ---------------------------------------------------------------------------
    def _load(self) -> dict[str, ProviderState]:
        if not self.state_file.exists():
            return {}
        return {k: ProviderState(**{f: x for f, x in v.items() if f in ProviderState.__dataclass_fields__})
                for k, v in json.loads(self.state_file.read_text()).items()}

    def _save(self, states: dict[str, ProviderState]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in states.items()}, indent=1))
        tmp.replace(self.state_file)

    def spent(self, provider: str) -> dict:
        """What this client signed for (or accepted from) a provider."""
        s = self._load().get(to_checksum_address(provider), ProviderState())
        return {"provider": to_checksum_address(provider), "requests": s.nonce, "totalFee": s.total}

    # --- calls ---------------------------------------------------------------------------------------
    def chat(self, provider: str, messages: list[dict], max_tokens: int | None = None) -> dict:
        return asyncio.run(self.achat(provider, messages, max_tokens))

    async def achat(self, provider: str, messages: list[dict], max_tokens: int | None = None) -> dict:
        provider = to_checksum_address(provider)
        service = await asyncio.to_thread(self.chain.service, provider)
        if service is None:
            raise BillingError(f"{provider} has no registered service")
        states = self._load()
        state = states.get(provider, ProviderState())
        max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
        request: dict[str, Any] = {"model": service.model, "messages": messages, "max_tokens": max_tokens}
        body = json.dumps(request, separators=(",", ":")).encode()
        body_hash = keccak(body)
        url = service.url.rstrip("/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            if state.pending_receipt is not None:  # the last answer's receipt first (the provider crashed)
                await self._hand_over(session, url, state)
                state.pending_receipt = None
                self._save({**states, provider: state})
            for _ in range(2):  # once more if the provider settled our last request at its maximum
                nonce = state.nonce + 1
                headers = self._headers(provider, service, state, nonce, body, body_hash, prompt_tokens(messages),
                                        max_tokens)
                self._save({**states, provider: state})  # the maximum we are about to sign is remembered
                try:
                    async with session.post(f"{url}/v1/chat/completions", data=body, headers=headers) as resp:
                        answer = await resp.json(content_type=None)
                        status = resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    raise ProviderUnreachable(f"cannot reach the provider at {url}: {exc}") from None
                error = answer.get("error", {}) if isinstance(answer, dict) else {}
                if status == 409 and state.adopt_maximum(error.get("bill", {})):
                    continue
                if status != 200:
                    raise BillingError(f"provider refused the request ({status}): {error.get('message', answer)}")
                break
            reply = answer["choices"][0]["message"]["content"]
            bill = answer["x_deaios"]
            # check the bill before signing or accepting anything
            prompt, completion = prompt_tokens(messages), count_tokens(reply)
            usage = answer.get("usage", {})
            cost = compute_fee(prompt, completion, service.input_price, service.output_price)
            new_hash = next_requests_hash(bytes.fromhex(state.hash[2:]), body_hash, keccak(reply.encode()))
            expected = {
                "nonce": nonce,
                "fee": cost,
                "totalFee": state.total + cost,
                "requestsHash": "0x" + new_hash.hex(),
            }
            got = {k: bill.get(k) for k in expected}
            if got != expected or (usage.get("prompt_tokens"), usage.get("completion_tokens")) != (
                prompt,
                completion,
            ):
                raise BillingError(
                    f"the provider's bill {got} does not match the request: expected {expected}"
                )
            if bill.get("signerKind") == "TEE":
                acked = (await asyncio.to_thread(self.chain.get_account, self.user, provider)).tee_signer
                digest = receipt_digest(
                    self.chain.chain_id,
                    self.chain.addresses.ledger,
                    self.user,
                    provider,
                    nonce,
                    expected["totalFee"],
                    new_hash,
                )
                if recover(digest, bytes.fromhex(bill["signature"][2:])) != acked:
                    raise BillingError(
                        "the TEE receipt is not signed by the signer acknowledged for this provider"
                    )
            else:
                receipt = sign_receipt(
                    self.key,
                    self.chain.chain_id,
                    self.chain.addresses.ledger,
                    self.user,
                    provider,
                    nonce,
                    expected["totalFee"],
                    new_hash,
                    SignerKind.USER,
                )
                # the answer is ours: remember the bill and its receipt before handing it over
                answered = ProviderState(
                    nonce=nonce, total=expected["totalFee"], hash=expected["requestsHash"],
                    max_nonce=state.max_nonce, max_total=state.max_total, max_hash=state.max_hash,
                    pending_receipt=receipt.to_json(),
                )
                self._save({**states, provider: answered})
                try:
                    taken = await self._hand_over(session, url, answered)
                except ProviderUnreachable:
                    taken = None  # kept in the state file: handed over before the next request
                except BillingError:
                    self._save(states)  # refused: as before this request
                    raise
                if taken is False:  # the provider settled the pre-signed maximum instead of the bill
                    states[provider] = answered
                    self._save(states)
                    raise BillingError(f"the provider settled request {nonce} at the maximum signed for it "
                                       f"({answered.total}) instead of its bill")
                if taken:
                    answered.pending_receipt = None
                states[provider] = answered
        if bill.get("signerKind") == "TEE":
            states[provider] = ProviderState(
                nonce=nonce, total=expected["totalFee"], hash=expected["requestsHash"], max_nonce=state.max_nonce,
                max_total=state.max_total, max_hash=state.max_hash,
            )
        self._save(states)
        return {
            "provider": provider,
            "model": service.model,
            "reply": reply,
            "promptTokens": prompt,
            "completionTokens": completion,
            "fee": cost,
            "totalFee": expected["totalFee"],
            "nonce": nonce,
            "receiptPending": states[provider].pending_receipt is not None,
        }

    async def _hand_over(self, session: aiohttp.ClientSession, url: str, state: ProviderState) -> bool:
        """POST `state.pending_receipt` to the provider: True once it took it. ProviderUnreachable if it does not
        answer (try again later); False if it refused because it settled the request's pre-signed maximum
        (`state` then continues from that maximum); any other refusal is a BillingError."""
        try:
            async with session.post(f"{url}/deaios/v1/receipts", json=state.pending_receipt) as resp:
                if resp.status == 200:
                    return True
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ProviderUnreachable(f"cannot hand the receipt to the provider at {url}: {exc}") from None
        if status >= 500:
            raise ProviderUnreachable(f"the provider at {url} could not take the receipt ({status}): {text}")
        try:
            bill = json.loads(text).get("error", {}).get("bill", {})
        except (ValueError, AttributeError):
            bill = {}
        if not state.adopt_maximum(bill):
            raise BillingError(f"the provider did not take the receipt ({status}): {text}")
        return False

    def _headers(self, provider: str, service: Any, state: ProviderState, nonce: int, body: bytes, body_hash: bytes,
                 prompt: int, max_tokens: int) -> dict[str, str]:
        """The request's signed headers; for a user-signed provider also the receipt at its maximum cost
        (recorded in `state`)."""
        signature = sign_digest(
            self.key,
            request_digest(self.chain.chain_id, self.chain.addresses.ledger, self.user, provider, nonce, body_hash),
        )
        headers = {
            "Content-Type": "application/json",
            "X-Deaios-User": self.user,
            "X-Deaios-Nonce": str(nonce),
            "X-Deaios-Signature": "0x" + signature.hex(),
        }
        if service.verifiability != "TEE":
            max_total = state.total + compute_fee(prompt, max_tokens, service.input_price, service.output_price)
            max_hash = next_requests_hash(bytes.fromhex(state.hash[2:]), body_hash, ZERO32)
            receipt = sign_receipt(self.key, self.chain.chain_id, self.chain.addresses.ledger, self.user, provider,
                                   nonce, max_total, max_hash, SignerKind.USER)
            state.max_nonce, state.max_total, state.max_hash = nonce, max_total, "0x" + max_hash.hex()
            headers["X-Deaios-Max-Total"] = str(max_total)
            headers["X-Deaios-Receipt-Signature"] = "0x" + receipt.signature.hex()
        return headers

    # --- balances --------------------------------------------------------------------------------------
    def balances(self, providers: list[str] | None = None) -> dict:
        """The user's ledger and its sub-accounts with `providers` (default: every registered service)."""
        available, reserved = self.chain.get_ledger(self.user)
        if providers is None:
            providers = [s.provider for s in self.chain.services()]
        accounts = {}
        local = self._load()
        for p in providers:
            p = to_checksum_address(p)
            acct = self.chain.get_account(self.user, p)
            s = local.get(p, ProviderState())
            accounts[p] = {
                **acct.to_json(),
                "signedTotal": s.total,
                "requests": s.nonce,
                "unsettled": max(s.total - acct.charged, 0),
            }
        return {"user": self.user, "available": available, "reserved": reserved, "accounts": accounts}
