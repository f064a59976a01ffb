"""The INFT flows on the client side: mint encrypted metadata, prepare a receiver's access proofs, transfer or
clone through the re-encryption oracle, and read (decrypt) a token's metadata.

Storage goes through `deaios.storage.client.StorageClient` (the ciphertext's 0G root is the data hash), the
chain through `InftChain`. The sender's data keys come from the last `PublishedSealedKey` event sealed to it.
Proofs are bound to one transfer (token id, current owner, receiver; `deaios.inft.proofs`): the receiver signs
its access proofs for the token's current owner, the owner signs its request to the oracle (`reencrypt`), and
the oracle's ownership proofs are checked against the verifier's oracle signer before they are used.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from deaios.inft import crypto
from deaios.inft.chain import DataEntry, InftChain
from deaios import eip712
from deaios.inft.proofs import (
    AccessProof,
    OwnershipProof,
    new_nonce,
    oracle_key_digest,
    recover_attestation,
    request_digest,
    transfer_proofs,
)
from deaios.storage.client import StorageClient

log = logging.getLogger(__name__)


class InftFlowError(RuntimeError):
    """A flow could not complete (no key for this token, the oracle refused, a check failed)."""


@dataclass
class Storage:
    """Where ciphertexts go: the storage nodes plus the chain/Flow/key that pays for submissions."""

    node_urls: list[str]
    rpc: str
    flow: str
    private_key: str | None

    def client(self, session: aiohttp.ClientSession) -> StorageClient:
        return StorageClient(
            session, self.node_urls, rpc=self.rpc, flow=self.flow, private_key=self.private_key
        )

    async def put(self, session: aiohttp.ClientSession, blob: bytes) -> bytes:
        """Store `blob` as a file; its 0G merkle root."""
        with tempfile.TemporaryDirectory(prefix="deaios-inft-") as tmp:
            path = Path(tmp) / "data.bin"
            path.write_bytes(blob)
            result = await self.client(session).upload(path)
        return bytes.fromhex(result.root.removeprefix("0x"))

    async def size(self, session: aiohttp.ClientSession, root: bytes) -> int:
        """The stored size of file `root` (from the storage nodes' log of the chain's submissions)."""
        return await self.client(session).file_size("0x" + root.hex())

    async def get(self, session: aiohttp.ClientSession, root: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="deaios-inft-") as tmp:
            path = Path(tmp) / "data.bin"
            await self.client(session).download("0x" + root.hex(), path)
            return path.read_bytes()


async def mint(
    session: aiohttp.ClientSession,
    chain: InftChain,
    storage: Storage,
    items: list[tuple[str, bytes]],
    to: str,
    to_public: bytes,
) -> dict[str, Any]:
    """Encrypt each (description, plaintext) under a fresh key, store the ciphertexts, mint with the keys
    sealed to `to_public`."""
    entries, sealed = [], []
    for description, plaintext in items:
        key = crypto.new_data_key()
        root = await storage.put(session, crypto.encrypt_data(key, plaintext))
        entries.append(DataEntry(description, root))
        sealed.append(crypto.seal(to_public, key))
    token_id = chain.mint(entries, to, sealed)
    return {"tokenId": token_id, "owner": to, "datas": [e.to_json() for e in entries]}


def data_keys(chain: InftChain, owner: str, token_id: int, keys: crypto.X25519Keys) -> list[bytes]:
    """The token's data keys, from the last PublishedSealedKey event for `owner`."""
    sealed = chain.sealed_keys_for(owner, token_id)
    if sealed is None:
        raise InftFlowError(f"no sealed keys were published to {owner} for token {token_id}")
    try:
        return [crypto.unseal(keys, s) for s in sealed]
    except crypto.CryptoError as exc:
        raise InftFlowError(f"cannot open the sealed keys of token {token_id}: {exc}") from None


def access_proofs(chain: InftChain, token_id: int, eth_key: str, target_public: bytes) -> list[AccessProof]:
    """The receiver's access proofs for every data entry of `token_id`, for a transfer from its current owner to
    the key's address (fresh random nonces)."""
    from eth_account import Account

    ctx = chain.context(token_id, chain.owner_of(token_id), Account.from_key(eth_key).address)
    return [AccessProof.create(eth_key, ctx, d.data_hash, target_public) for d in chain.datas(token_id)]


async def oracle_public_key(session: aiohttp.ClientSession, oracle_url: str, chain: InftChain) -> bytes:
    """The oracle's X25519 key from GET /info, checked against the verifier's on-chain oracle signer."""
    async with session.get(oracle_url.rstrip("/") + "/info") as resp:
        info = await resp.json()
    public = bytes.fromhex(info["x25519PublicKey"].removeprefix("0x"))
    attestation = bytes.fromhex(info["attestation"].removeprefix("0x"))
    signer = recover_attestation(oracle_key_digest(public, int(chain.w3.eth.chain_id)), attestation)
    expected = chain.oracle_signer()
    if signer != expected:
        raise InftFlowError(f"the oracle at {oracle_url} signs as {signer}, the verifier expects {expected}")
    return public


def reencrypt_request(
    chain: InftChain,
    token_id: int,
    to: str,
    receiver_public: bytes,
    items: list[tuple[bytes, bytes]],
    proofs: list[AccessProof],
    ttl: int = 600,
) -> dict[str, Any]:
    """The oracle request moving `token_id` from its owner (the chain's account, which signs it) to `to`:
    `items` are (dataHash, data key sealed to the oracle), `proofs` the receiver's access proofs."""
    owner = chain.address
    ctx = chain.context(token_id, owner, to)
    nonce, deadline = new_nonce(), chain.timestamp() + ttl
    signature = eip712.sign_digest(chain.account.key, request_digest(ctx, receiver_public, items, nonce, deadline))
    return {
        "tokenId": token_id,
        "from": owner,
        "to": ctx.to,
        "receiverPubkey": "0x" + receiver_public.hex(),
        "items": [{"dataHash": "0x" + h.hex(), "sealedKey": "0x" + k.hex()} for h, k in items],
        "accessProofs": [p.to_json() for p in proofs],
        "nonce": "0x" + nonce.hex(),
        "deadline": deadline,
        "signature": "0x" + signature.hex(),
    }


async def reencrypt(
    session: aiohttp.ClientSession,
    chain: InftChain,
    oracle_url: str,
    token_id: int,
    to: str,
    receiver_public: bytes,
    proofs: list[AccessProof],
    keys: crypto.X25519Keys,
) -> list[OwnershipProof]:
    """Have the oracle re-encrypt `token_id`'s data for `to` (X25519 key `receiver_public`): seal the owner's
    data keys to the oracle, sign the request with the owner's key (the chain's account) and return the
    oracle's ownership proofs (one per data entry, matching the receiver's access `proofs`), checked."""
    owner = chain.owner_of(token_id)
    if owner != chain.address:
        raise InftFlowError(f"token {token_id} belongs to {owner}, not to {chain.address}")
    datas = chain.datas(token_id)
    if [p.data_hash for p in proofs] != [d.data_hash for d in datas]:
        raise InftFlowError("the access proofs do not match the token's current data hashes")
    oracle_public = await oracle_public_key(session, oracle_url, chain)
    keys_now = data_keys(chain, owner, token_id, keys)
    items = [(d.data_hash, crypto.seal(oracle_public, k)) for d, k in zip(datas, keys_now)]
    request = reencrypt_request(chain, token_id, to, receiver_public, items, proofs)
    async with session.post(oracle_url.rstrip("/") + "/reencrypt", json=request) as resp:
        answer = await resp.json()
        if resp.status != 200:
            raise InftFlowError(f"the oracle refused: {answer.get('error', answer)}")
    ownership = [OwnershipProof.from_json(p) for p in answer["proofs"]]
    ctx, signer = chain.context(token_id, owner, to), chain.oracle_signer()
    if len(ownership) != len(datas) or any(p.signer(ctx) != signer for p in ownership):
        raise InftFlowError("the oracle's answer does not carry valid proofs for this transfer")
    return ownership


async def move(
    session: aiohttp.ClientSession,
    chain: InftChain,
    oracle_url: str,
    token_id: int,
    to: str,
    receiver_public: bytes,
    proofs: list[AccessProof],
    keys: crypto.X25519Keys,
    clone: bool = False,
) -> dict[str, Any]:
    """Transfer (or clone) `token_id` to `to`: the oracle's ownership proofs for `receiver_public` (see
    `reencrypt`), then iTransferFrom / iCloneFrom with the receiver's access proofs."""
    owner = chain.owner_of(token_id)
    ownership = await reencrypt(session, chain, oracle_url, token_id, to, receiver_public, proofs, keys)
    args = transfer_proofs(proofs, ownership)
    out: dict[str, Any] = {
        "tokenId": token_id,
        "from": owner,
        "to": to,
        "newDataHashes": ["0x" + o.new_data_hash.hex() for o in ownership],
    }
    if clone:
        out["newTokenId"] = chain.clone(owner, to, token_id, args)
    else:
        receipt = chain.transfer(owner, to, token_id, args)
        out["txHash"] = "0x" + bytes(receipt["transactionHash"]).hex()
    return out


async def read(
    session: aiohttp.ClientSession,
    chain: InftChain,
    storage: Storage,
    token_id: int,
    keys: crypto.X25519Keys,
    owner: str | None = None,
) -> list[bytes]:
    """Download and decrypt every data entry of `token_id` with the keys sealed to `owner` (default: the
    current owner)."""
    owner = owner or chain.owner_of(token_id)
    out = []
    for entry, key in zip(chain.datas(token_id), data_keys(chain, owner, token_id, keys)):
        blob = await storage.get(session, entry.data_hash)
        try:
            out.append(crypto.decrypt_data(key, blob))
        except crypto.CryptoError as exc:
            raise InftFlowError(f"{entry.description!r}: {exc}") from None
    return out
