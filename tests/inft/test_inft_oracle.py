"""The re-encryption oracle's logic without a network: an in-memory storage stands in for the storage nodes.
Re-encryption round trip, the signed proof, and every refusal (bad JSON, bad receiver key, wrong data key,
unknown data, too many items) through its HTTP app."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from deaios.inft import crypto
from deaios.inft.oracle import MAX_ITEMS, OracleService, make_app
from deaios.inft.proofs import OwnershipProof, oracle_key_digest, recover_digest
from deaios.storage.client import StorageClientError
from eth_account import Account
from eth_utils import keccak

ORACLE_KEY = "0x" + keccak(text="deaios test oracle service").hex()


class MemoryStorage:
    """Storage.put/get over a dict (root = keccak of the blob)."""

    def __init__(self) -> None:
        self.blobs: dict[bytes, bytes] = {}

    async def put(self, session: object, blob: bytes) -> bytes:
        root = keccak(blob)
        self.blobs[root] = blob
        return root

    async def get(self, session: object, root: bytes) -> bytes:
        if root not in self.blobs:
            raise StorageClientError("unknown root")
        return self.blobs[root]


def call(job) -> object:
    async def go():
        storage = MemoryStorage()
        service = OracleService(ORACLE_KEY, storage, 31337)  # type: ignore[arg-type]
        async with TestClient(TestServer(make_app(service))) as client:
            return await job(client, service, storage)

    return asyncio.run(go())


def test_reencrypt_round_trip() -> None:
    receiver = crypto.X25519Keys.generate()

    async def job(client: TestClient, service: OracleService, storage: MemoryStorage):
        info = await (await client.get("/info")).json()
        oracle_public = bytes.fromhex(info["x25519PublicKey"][2:])
        assert info["signer"] == Account.from_key(ORACLE_KEY).address
        assert (
            recover_digest(oracle_key_digest(oracle_public, 31337), bytes.fromhex(info["attestation"][2:]))
            == info["signer"]
        )
        key = crypto.new_data_key()
        old = await storage.put(None, crypto.encrypt_data(key, b"agent memory"))
        body = {
            "receiverPubkey": "0x" + receiver.public.hex(),
            "items": [
                {"dataHash": "0x" + old.hex(), "sealedKey": "0x" + crypto.seal(oracle_public, key).hex()}
            ],
        }
        resp = await client.post("/reencrypt", json=body)
        assert resp.status == 200
        (proof,) = [OwnershipProof.from_json(p) for p in (await resp.json())["proofs"]]
        assert (
            proof.signer() == info["signer"]
            and proof.data_hash == old
            and proof.target_pubkey == receiver.public
        )
        new_key = crypto.unseal(receiver, proof.sealed_key)
        assert crypto.decrypt_data(new_key, storage.blobs[proof.new_data_hash]) == b"agent memory"
        with pytest.raises(crypto.CryptoError):
            crypto.decrypt_data(key, storage.blobs[proof.new_data_hash])

        async def refused(payload: object) -> str:
            r = await client.post(
                "/reencrypt",
                data=payload if isinstance(payload, str) else None,
                json=None if isinstance(payload, str) else payload,
            )
            assert r.status == 400
            return (await r.json())["error"]

        item = body["items"][0]
        assert await refused("{not json")
        assert "receiverPubkey" in await refused({**body, "receiverPubkey": "0x1234"})
        assert "items" in await refused({**body, "items": []})
        assert "items" in await refused({**body, "items": [item] * (MAX_ITEMS + 1)})
        wrong = {**item, "sealedKey": "0x" + crypto.seal(oracle_public, crypto.new_data_key()).hex()}
        assert "does not open" in await refused({**body, "items": [wrong]})
        not_for_oracle = {**item, "sealedKey": "0x" + crypto.seal(receiver.public, key).hex()}
        assert "not for this X25519 key" in await refused({**body, "items": [not_for_oracle]})
        assert "cannot fetch" in await refused({**body, "items": [{**item, "dataHash": "0x" + "11" * 32}]})
        assert "dataHash" in await refused({**body, "items": [{**item, "dataHash": "zz"}]})

    call(job)
