"""The re-encryption oracle (`deaios inft oracle`): a TRUSTED party standing in for 0G's TEE.

It holds one secp256k1 key (its address is the verifier's `oracleSigner`) and an X25519 key derived from
it. For a transfer, the token's owner sends it the token's data keys sealed to its X25519 key; for each entry it
downloads the ciphertext from the storage network by data hash, decrypts it (proving the key is right),
re-encrypts the plaintext under a fresh key, uploads the new ciphertext (paying with its own key), seals the
new key to the receiver's X25519 key and signs the ownership proof (EIP-712, `deaios.inft.proofs`) for exactly
that transfer: token contract, token id, owner, receiver, old hash, new hash, sealed key, receiver key, nonce.
It sees every plaintext it re-encrypts: in production this runs inside a TEE whose attested key is the signer;
here it is a local process you must trust.

It serves only the token's current owner, for a receiver that asked (audit H6). A request must carry
* the token id, `from` (its current owner on chain) and `to` (the receiver);
* the owner's EIP-712 signature of `ReencryptRequest(token, tokenId, from, to, receiverPubkey, itemsHash, nonce,
  deadline)`: a captured request cannot be replayed (nonces are remembered until their deadline, at most
  `MAX_REQUEST_TTL` ahead of the chain's clock) nor pointed at another receiver key;
* the receiver's access proofs, one per data entry: signed by `to` or its delegated assistant for this very
  transfer, for the request's receiver key, over the token's current data hashes, nonces not yet spent.
Before downloading anything it checks each entry's stored size (at most `MAX_DATA_BYTES`), and it rate-limits
requests per client address and per token owner (HTTP 429).

HTTP (JSON):
    GET  /info       -> {"signer", "x25519PublicKey", "attestation", "chainId"}; attestation = the signer's
                        EIP-191 signature of keccak("deaios/inft/oracle-x25519/v1" ‖ chainId ‖ x25519 key)
    POST /reencrypt  {"tokenId", "from", "to", "receiverPubkey": "0x…32 bytes",
                      "items": [{"dataHash", "sealedKey"}, …], "accessProofs": [AccessProof JSON, …],
                      "nonce": "0x…32 bytes", "deadline": unix seconds, "signature": "0x…"}
                     -> {"proofs": [OwnershipProof JSON, …]}; refusals: 400 (malformed, wrong data),
                        403 (not the owner, bad signature or access proof), 409 (replayed), 413 (too large),
                        429 (rate limit); always {"error": "…"}
`deaios.inft.flows.reencrypt` builds and signs the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from eth_account import Account
from eth_utils import is_address, to_checksum_address

from deaios import eip712, metrics
from deaios.inft import crypto
from deaios.inft.chain import InftChain, InftChainError
from deaios.inft.flows import Storage
from deaios.inft.proofs import (
    ORACLE_KEY_LABEL,
    AccessProof,
    OwnershipProof,
    oracle_key_digest,
    request_digest,
    sign_attestation,
)
from deaios.storage.client import StorageClientError

log = logging.getLogger(__name__)
MAX_ITEMS = 16
#: Largest ciphertext (bytes) the oracle downloads for one data entry.
MAX_DATA_BYTES = 64 << 20
#: Furthest a request's deadline may lie ahead of the chain's clock (seconds).
MAX_REQUEST_TTL = 3600
ZERO_ADDRESS = "0x" + "00" * 20
SESSION = web.AppKey("session", aiohttp.ClientSession)

REENCRYPTED = metrics.counter("inft_oracle", "reencryptions_total", "Data entries re-encrypted for a new owner "
                              "(each with a signed ownership proof).")


class Refused(ValueError):
    """A request the oracle will not serve; `status` is the HTTP status of the answer."""

    status = 400

class Forbidden(Refused):
    status = 403

class Replayed(Refused):
    status = 409

class TooLarge(Refused):
    status = 413

class TooMany(Refused):
    status = 429

@dataclass
class RateLimiter:
    """A token bucket per key: `burst` requests at once, then `rate` per second."""

    rate: float = 0.5
    burst: int = 10
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if len(self._buckets) > 10_000:  # forget idle clients (full buckets)
            idle = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle}
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

@dataclass
class OracleService:
    private_key: str
    storage: Storage
    chain_id: int
    chain: InftChain
    max_data_bytes: int | None = None  # default MAX_DATA_BYTES
    per_client: RateLimiter = field(default_factory=RateLimiter)
    per_owner: RateLimiter = field(default_factory=RateLimiter)

    def __post_init__(self) -> None:
        self.signer = Account.from_key(self.private_key).address
        self.keys = crypto.X25519Keys.derive(
            bytes.fromhex(self.private_key.removeprefix("0x")), ORACLE_KEY_LABEL
        )
        self.attestation = sign_attestation(self.private_key, oracle_key_digest(self.keys.public, self.chain_id))
        self._upload_lock = asyncio.Lock()  # one Flow submission at a time (transaction nonces)
        self._seen: dict[bytes, int] = {}  # request nonce -> its deadline

    def info(self) -> dict[str, Any]:
        return {
            "signer": self.signer,
            "x25519PublicKey": "0x" + self.keys.public.hex(),
            "attestation": "0x" + self.attestation.hex(),
            "chainId": self.chain_id,
        }

    async def reencrypt(self, session: aiohttp.ClientSession, request: dict[str, Any]) -> list[OwnershipProof]:
        if not isinstance(request, dict):
            raise Refused("the request must be a JSON object")
        token_id = _int_field(request, "tokenId")
        sender, receiver = _address_field(request, "from"), _address_field(request, "to")
        receiver_key = _hex_field(request, "receiverPubkey", 32)
        items = request.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
            raise Refused(f"items must be a list of 1..{MAX_ITEMS} entries")
        pairs = [(_hex_field(item, "dataHash", 32), _hex_field(item, "sealedKey")) for item in items]
        access = request.get("accessProofs")
        if not isinstance(access, list) or len(access) != len(items):
            raise Refused("accessProofs must hold one access proof per item")
        try:
            proofs = [AccessProof.from_json(p) for p in access]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise Refused("accessProofs: not access proofs") from None
        nonce = _hex_field(request, "nonce", 32)
        deadline = _int_field(request, "deadline")
        signature = _hex_field(request, "signature", 65)

        now = self._call(self.chain.timestamp)
        if not now <= deadline <= now + MAX_REQUEST_TTL:
            raise Refused(f"deadline {deadline} is not within [{now}, {now + MAX_REQUEST_TTL}] (chain time)")
        self._forget_expired(now)
        if nonce in self._seen:
            raise Replayed("this request was already served")
        owner = self._call(lambda: self.chain.owner_of(token_id))
        if owner != sender:
            raise Forbidden(f"token {token_id} belongs to {owner}, not to {sender}")
        ctx = self.chain.context(token_id, sender, receiver)
        if _recover(request_digest(ctx, receiver_key, pairs, nonce, deadline), signature) != sender:
            raise Forbidden("the request is not signed by the token's owner")
        self._seen[nonce] = deadline
        if not self.per_owner.allow(sender):
            raise TooMany(f"too many requests for {sender}'s tokens: try again later")

        datas = self._call(lambda: self.chain.datas(token_id))
        if len(datas) != len(pairs):
            raise Refused(f"the token has {len(datas)} data entries, the request {len(pairs)}")
        assistant = self._call(lambda: self.chain.delegate_of(receiver))
        allowed = {receiver} | ({assistant} if assistant != ZERO_ADDRESS else set())
        for i, ((data_hash, _), entry, proof) in enumerate(zip(pairs, datas, proofs)):
            if data_hash != entry.data_hash or proof.data_hash != data_hash:
                raise Refused(f"item {i}: 0x{data_hash.hex()} is not the token's current data hash")
            if proof.target_pubkey != receiver_key:
                raise Forbidden(f"item {i}: the access proof asks for another receiver key")
            if _recover_proof(proof, ctx) not in allowed:
                raise Forbidden(f"item {i}: the access proof is not signed by {receiver} or its assistant")
            if self._call(lambda: self.chain.access_nonce_used(token_id, proof.nonce)):
                raise Forbidden(f"item {i}: the access proof was already used")

        limit = self.max_data_bytes or MAX_DATA_BYTES
        for i, (data_hash, _) in enumerate(pairs):  # every size before any download
            try:
                size = await self.storage.size(session, data_hash)
            except StorageClientError as exc:
                raise Refused(f"item {i}: cannot find 0x{data_hash.hex()} in storage: {exc}") from None
            if size > limit:
                raise TooLarge(f"item {i}: {size} bytes, more than the oracle's {limit}")

        out = []
        for i, (data_hash, sealed) in enumerate(pairs):
            try:
                key = crypto.unseal(self.keys, sealed)
                plaintext = crypto.decrypt_data(key, await self.storage.get(session, data_hash))
            except crypto.CryptoError as exc:
                raise Refused(f"item {i}: {exc}") from None
            except StorageClientError as exc:
                raise Refused(f"item {i}: cannot fetch 0x{data_hash.hex()} from storage: {exc}") from None
            new_key = crypto.new_data_key()
            async with self._upload_lock:
                new_hash = await self.storage.put(session, crypto.encrypt_data(new_key, plaintext))
            out.append(OwnershipProof.create(
                self.private_key, ctx, data_hash, new_hash, crypto.seal(receiver_key, new_key), receiver_key
            ))
            REENCRYPTED.inc()
            log.info("token %d: re-encrypted 0x%s -> 0x%s for %s", token_id, data_hash.hex(), new_hash.hex(),
                     receiver)
        return out

    def _forget_expired(self, now: int) -> None:
        if len(self._seen) > 1_000:
            self._seen = {n: d for n, d in self._seen.items() if d >= now}

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except InftChainError as exc:
            raise Refused(str(exc)) from None

def _recover(digest: bytes, signature: bytes) -> str | None:
    try:
        return eip712.recover(digest, signature)
    except Exception:  # noqa: BLE001 - any malformed signature is simply not the owner's
        return None

def _recover_proof(proof: AccessProof, ctx: Any) -> str | None:
    try:
        return proof.signer(ctx)
    except Exception:  # noqa: BLE001
        return None

def _int_field(obj: dict, name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise Refused(f"{name} must be a non-negative integer")
    return value

def _address_field(obj: dict, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not is_address(value):
        raise Refused(f"{name} must be an address")
    return to_checksum_address(value)

def _hex_field(obj: Any, name: str, size: int | None = None) -> bytes:
    value = obj.get(name) if isinstance(obj, dict) else None
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raise Refused(f"{name} must be 0x-hex") from None
    if value is None or (size is not None and len(raw) != size):
        raise Refused(f"{name} must be {size} bytes of 0x-hex" if size else f"{name} is missing")
    return raw

def make_app(service: OracleService) -> web.Application:
    async def info(_: web.Request) -> web.Response:
        return web.json_response(service.info())

    async def reencrypt(request: web.Request) -> web.Response:
        try:
            if not service.per_client.allow(request.remote or "?"):
                raise TooMany("too many requests: try again later")
            try:
                body = await request.json()
            except ValueError:
                raise Refused("the body is not JSON") from None
            proofs = await service.reencrypt(request.app[SESSION], body)
        except Refused as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response({"proofs": [p.to_json() for p in proofs]})

    async def session_ctx(app: web.Application):
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app = web.Application(client_max_size=1 << 20)
    app.router.add_get("/info", info)
    app.router.add_post("/reencrypt", reencrypt)
    app.cleanup_ctx.append(session_ctx)
    return metrics.instrument(app, "inft_oracle")
