"""Audit finding H6 (off-chain): the INFT re-encryption oracle serves anyone.

`POST /reencrypt` took an optional token id and no authentication, so anyone could

* have it re-encrypt any data whose sealed key they hold, for any receiver key (no token, no owner);
* replay a captured request (the owner's data key sealed to the oracle) with their own receiver key and read
  the plaintext;
* make it download a root of any size into memory (and upload 16 copies per request, paid by its key);
* call it as often as they like.

The oracle runs against the real AgentNFT/DataVerifier on ape's Anvil; an in-memory storage stands in for the
storage nodes (so sizes and downloads can be observed).
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from deaios.inft import crypto
from deaios.inft.chain import InftAddresses, InftChain
from deaios.inft.oracle import OracleService, make_app
from deaios.inft.proofs import OwnershipProof
from deaios.storage.client import StorageClientError
from eth_utils import keccak
from inft_helpers import ORACLE_KEY

PLAINTEXT = b"agent weights: the secret sauce"


class MemoryStorage:
    """Storage.put/get over a dict (root = keccak of the blob); records what was downloaded."""

    def __init__(self) -> None:
        self.blobs: dict[bytes, bytes] = {}
        self.downloads: list[bytes] = []

    async def put(self, session: object, blob: bytes) -> bytes:
        root = keccak(blob)
        self.blobs[root] = blob
        return root

    async def size(self, session: object, root: bytes) -> int:
        if root not in self.blobs:
            raise StorageClientError("unknown root")
        return len(self.blobs[root])

    async def get(self, session: object, root: bytes) -> bytes:
        if root not in self.blobs:
            raise StorageClientError("unknown root")
        self.downloads.append(root)
        return self.blobs[root]


@pytest.fixture
def inft_chain(chain, nft, verifier, alice):
    return InftChain(chain.provider.http_uri, InftAddresses(nft.address, verifier.address), alice.private_key)


def run(inft_chain, job, **service_options):
    async def go():
        storage = MemoryStorage()
        service = OracleService(ORACLE_KEY, storage, inft_chain.w3.eth.chain_id, inft_chain, **service_options)
        async with TestClient(TestServer(make_app(service))) as client:
            return await job(client, service, storage)

    return asyncio.run(go())


async def minted_token(nft, alice, storage, plaintext=PLAINTEXT) -> tuple[int, bytes, bytes]:
    """Alice's token whose one entry is `plaintext` encrypted in `storage`: (token id, data hash, data key)."""
    key = crypto.new_data_key()
    root = await storage.put(None, crypto.encrypt_data(key, plaintext))
    tx = nft.mint([("agent", root)], alice.address, sender=alice)
    return int(tx.decode_logs(nft.Transfer)[0].tokenId), root, key


def captured_request(service, token: int, root: bytes, key: bytes, receiver_public: bytes) -> dict:
    """What the owner's client sends to move `token` to a receiver (as an eavesdropper sees it)."""
    return {
        "tokenId": token,
        "receiverPubkey": "0x" + receiver_public.hex(),
        "items": [{"dataHash": "0x" + root.hex(), "sealedKey": "0x" + crypto.seal(service.keys.public, key).hex()}],
    }


@pytest.mark.xfail(strict=True, reason="exploit H6: the oracle re-encrypts for anyone, without token or owner")
def test_h6_unauthenticated_request_is_refused(inft_chain, nft, alice):
    attacker = crypto.X25519Keys.generate()

    async def job(client, service, storage):
        _, root, key = await minted_token(nft, alice, storage)
        body = captured_request(service, 0, root, key, attacker.public)
        del body["tokenId"]
        resp = await client.post("/reencrypt", json=body)
        assert resp.status != 200, "served without a token id or the owner's authorization"

    run(inft_chain, job)


@pytest.mark.xfail(strict=True, reason="exploit H6: a captured request replayed with another receiver key")
def test_h6_replayed_sealed_key_gives_the_attacker_nothing(inft_chain, nft, alice):
    receiver, attacker = crypto.X25519Keys.generate(), crypto.X25519Keys.generate()

    async def job(client, service, storage):
        token, root, key = await minted_token(nft, alice, storage)
        captured = captured_request(service, token, root, key, receiver.public)
        replay = {**captured, "receiverPubkey": "0x" + attacker.public.hex()}
        resp = await client.post("/reencrypt", json=replay)
        if resp.status == 200:
            (proof,) = [OwnershipProof.from_json(p) for p in (await resp.json())["proofs"]]
            stolen = crypto.decrypt_data(crypto.unseal(attacker, proof.sealed_key), storage.blobs[proof.new_data_hash])
            assert stolen != PLAINTEXT, "the attacker read the plaintext"

    run(inft_chain, job)


@pytest.mark.xfail(strict=True, reason="exploit H6: the oracle downloads data of any size")
def test_h6_oversized_data_is_not_downloaded(inft_chain, nft, alice, monkeypatch):
    from deaios.inft import oracle

    monkeypatch.setattr(oracle, "MAX_DATA_BYTES", 1 << 16, raising=False)

    async def job(client, service, storage):
        token, root, key = await minted_token(nft, alice, storage, plaintext=b"x" * (1 << 17))
        await client.post("/reencrypt", json=captured_request(service, token, root, key, alice_keys.public))
        assert root not in storage.downloads, "downloaded a root larger than the oracle's limit"

    alice_keys = crypto.X25519Keys.generate()
    run(inft_chain, job)


@pytest.mark.xfail(strict=True, reason="exploit H6: no rate limit")
def test_h6_requests_are_rate_limited(inft_chain):
    async def job(client, service, storage):
        statuses = [(await client.post("/reencrypt", json={"items": []})).status for _ in range(40)]
        assert 429 in statuses, "40 requests in a row, none limited"

    run(inft_chain, job)
