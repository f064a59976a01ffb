"""The re-encryption oracle (`deaios inft oracle`): a TRUSTED party standing in for 0G's TEE.

It holds one secp256k1 key (its address is the verifier's `oracleSigner`) and an X25519 key derived from
it. For a transfer, the sender sends it the token's data keys sealed to its X25519 key; for each entry it
downloads the ciphertext from the storage network by data hash, decrypts it (proving the key is right),
re-encrypts the plaintext under a fresh key, uploads the new ciphertext (paying with its own key), seals the
new key to the receiver's X25519 key and signs the ownership proof binding old hash, new hash, sealed key,
receiver key and a random nonce. It sees every plaintext it re-encrypts: in production this runs inside a
TEE whose attested key is the signer; here it is a local process you must trust.

HTTP (JSON):
    GET  /info       -> {"signer", "x25519PublicKey", "attestation", "chainId"}; attestation = the signer's
                        EIP-191 signature of keccak("deaios/inft/oracle-x25519/v1" ‖ chainId ‖ x25519 key)
    POST /reencrypt  {"tokenId"?, "receiverPubkey": "0x…32 bytes", "items": [{"dataHash", "sealedKey"}, …]}
                     -> {"proofs": [OwnershipProof JSON, …]}; bad input -> 400 {"error": "…"}
When the oracle knows the NFT contract and `tokenId` is given, the data hashes must be the token's current.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from eth_account import Account

from deaios import metrics
from deaios.inft import crypto
from deaios.inft.chain import InftChain, InftChainError
from deaios.inft.flows import Storage
from deaios.inft.proofs import ORACLE_KEY_LABEL, OwnershipProof, oracle_key_digest, sign_digest
from deaios.storage.client import StorageClientError

log = logging.getLogger(__name__)
MAX_ITEMS = 16
SESSION = web.AppKey("session", aiohttp.ClientSession)


REENCRYPTED = metrics.counter("inft_oracle", "reencryptions_total", "Data entries re-encrypted for a new owner "
                              "(each with a signed ownership proof).")


class BadRequest(ValueError):
    """The request is malformed or its data does not check out (answered with 400)."""


@dataclass
class OracleService:
    private_key: str
    storage: Storage
    chain_id: int
    chain: InftChain | None = None  # to check data hashes against the token (optional)

    def __post_init__(self) -> None:
        self.signer = Account.from_key(self.private_key).address
        self.keys = crypto.X25519Keys.derive(
            bytes.fromhex(self.private_key.removeprefix("0x")), ORACLE_KEY_LABEL
        )
        self.attestation = sign_digest(self.private_key, oracle_key_digest(self.keys.public, self.chain_id))
        self._upload_lock = asyncio.Lock()  # one Flow submission at a time (transaction nonces)

    def info(self) -> dict[str, Any]:
        return {
            "signer": self.signer,
            "x25519PublicKey": "0x" + self.keys.public.hex(),
            "attestation": "0x" + self.attestation.hex(),
            "chainId": self.chain_id,
        }

    async def reencrypt(
        self, session: aiohttp.ClientSession, request: dict[str, Any]
    ) -> list[OwnershipProof]:
        receiver = _hex_field(request, "receiverPubkey", 32)
        items = request.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
            raise BadRequest(f"items must be a list of 1..{MAX_ITEMS} entries")
        expected = self._token_hashes(request.get("tokenId"))
        if expected is not None and len(expected) != len(items):
            raise BadRequest(f"the token has {len(expected)} data entries, the request {len(items)}")
        proofs = []
        for i, item in enumerate(items):
            data_hash = _hex_field(item, "dataHash", 32)
            if expected is not None and expected[i] != data_hash:
                raise BadRequest(f"item {i}: 0x{data_hash.hex()} is not the token's current data hash")
            try:
                key = crypto.unseal(self.keys, _hex_field(item, "sealedKey"))
                plaintext = crypto.decrypt_data(key, await self.storage.get(session, data_hash))
            except crypto.CryptoError as exc:
                raise BadRequest(f"item {i}: {exc}") from None
            except StorageClientError as exc:
                raise BadRequest(f"item {i}: cannot fetch 0x{data_hash.hex()} from storage: {exc}") from None
            new_key = crypto.new_data_key()
            async with self._upload_lock:
                new_hash = await self.storage.put(session, crypto.encrypt_data(new_key, plaintext))
            proofs.append(
                OwnershipProof.create(
                    self.private_key, data_hash, new_hash, crypto.seal(receiver, new_key), receiver
                )
            )
            REENCRYPTED.inc()
            log.info("re-encrypted 0x%s -> 0x%s for %s", data_hash.hex(), new_hash.hex(), receiver.hex())
        return proofs

    def _token_hashes(self, token_id: Any) -> list[bytes] | None:
        if self.chain is None or token_id is None:
            return None
        try:
            return [d.data_hash for d in self.chain.datas(int(token_id))]
        except (InftChainError, ValueError) as exc:
            raise BadRequest(f"token {token_id}: {exc}") from None


def _hex_field(obj: Any, name: str, size: int | None = None) -> bytes:
    value = obj.get(name) if isinstance(obj, dict) else None
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raise BadRequest(f"{name} must be 0x-hex") from None
    if value is None or (size is not None and len(raw) != size):
        raise BadRequest(f"{name} must be {size} bytes of 0x-hex" if size else f"{name} is missing")
    return raw


def make_app(service: OracleService) -> web.Application:
    async def info(_: web.Request) -> web.Response:
        return web.json_response(service.info())

    async def reencrypt(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            proofs = await service.reencrypt(request.app[SESSION], body)
        except (ValueError, BadRequest) as exc:  # json errors are ValueErrors
            return web.json_response({"error": str(exc)}, status=400)
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
