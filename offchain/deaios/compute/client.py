"""User side of the compute market: funds, matching and signed calls to a provider's broker.

`ComputeClient.chat` sends one OpenAI chat request signed as `deaios.compute.broker` describes, checks the
bill it gets back (the tokens are recounted with the public metering rule, the fee recomputed from the
prices registered on chain, the cumulative total and requests hash recomputed from the client's own last
receipt) and, for a user-signed provider, signs the new cumulative receipt and hands it to the broker. The
client never signs a total it did not check. Its per-provider receipt state is a JSON file
(`~/.deaios/compute/<chain>-<ledger>-<user>.json` by default).
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
    SignerKind,
    next_requests_hash,
    receipt_digest,
    recover,
    request_digest,
    sign_digest,
    sign_receipt,
)


class BillingError(ComputeError):
    """The provider refused a request or sent a bill the client cannot accept."""


@dataclass
class ProviderState:
    nonce: int = 0
    total: int = 0
    hash: str = "0x" + "00" * 32


class ComputeClient:
    def __init__(
        self, chain: ComputeChain, private_key: str, state_file: Path | None = None, timeout: float = 60.0
    ) -> None:
        self.chain = chain
        self.key = private_key
        self.user = chain.address
        if state_file is None:
            state_file = (
                Path.home()
                / ".deaios"
                / "compute"
                / f"{chain.chain_id}-{chain.addresses.ledger.lower()}-{self.user.lower()}.json"
            )
        self.state_file = state_file
        self.timeout = timeout

    # --- local receipt state ---------------------------------------------------------------------------
    def _load(self) -> dict[str, ProviderState]:
        if not self.state_file.exists():
            return {}
        return {k: ProviderState(**v) for k, v in json.loads(self.state_file.read_text()).items()}

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
        request: dict[str, Any] = {"model": service.model, "messages": messages}
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        body = json.dumps(request, separators=(",", ":")).encode()
        nonce = state.nonce + 1
        body_hash = keccak(body)
        signature = sign_digest(
            self.key,
            request_digest(
                self.chain.chain_id, self.chain.addresses.ledger, self.user, provider, nonce, body_hash
            ),
        )
        headers = {
            "Content-Type": "application/json",
            "X-Deaios-User": self.user,
            "X-Deaios-Nonce": str(nonce),
            "X-Deaios-Signature": "0x" + signature.hex(),
        }
        url = service.url.rstrip("/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            try:
                async with session.post(f"{url}/v1/chat/completions", data=body, headers=headers) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status != 200:
                        raise BillingError(
                            f"provider refused the request ({resp.status}): "
                            f"{answer.get('error', {}).get('message', answer)}"
                        )
            except aiohttp.ClientError as exc:
                raise BillingError(f"cannot reach the provider at {url}: {exc}") from None
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
                try:
                    async with session.post(f"{url}/deaios/v1/receipts", json=receipt.to_json()) as resp:
                        if resp.status != 200:
                            raise BillingError(
                                f"the provider did not take the receipt ({resp.status}): {await resp.text()}"
                            )
                except aiohttp.ClientError as exc:
                    raise BillingError(f"cannot hand the receipt to the provider: {exc}") from None
        states[provider] = ProviderState(
            nonce=nonce, total=expected["totalFee"], hash=expected["requestsHash"]
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
        }

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
