"""The re-encryption oracle's logic over an in-memory storage (standing in for the storage nodes) and the real
AgentNFT/DataVerifier: a whole transfer through the client flow (`deaios.inft.flows.reencrypt`), the signed
proofs it returns, the transfer they allow, and the refusals of malformed or wrong requests."""

from __future__ import annotations

import aiohttp
from deaios.inft import crypto, flows
from deaios.inft.oracle import MAX_ITEMS, RateLimiter
from deaios.inft.proofs import oracle_key_digest, recover_attestation, transfer_proofs
from eth_account import Account
from inft_helpers import ORACLE_KEY, inft_chain, run_oracle, stored_token


def test_reencrypt_round_trip(nft, alice, bob) -> None:
    alice_keys, bob_keys = crypto.X25519Keys.generate(), crypto.X25519Keys.generate()
    as_alice, as_bob = inft_chain(nft, alice), inft_chain(nft, bob)

    async def job(client, url, service, storage):
        info = await (await client.get("/info")).json()
        oracle_public = bytes.fromhex(info["x25519PublicKey"][2:])
        assert info["signer"] == Account.from_key(ORACLE_KEY).address == as_alice.oracle_signer()
        assert recover_attestation(oracle_key_digest(oracle_public, info["chainId"]),
                                   bytes.fromhex(info["attestation"][2:])) == info["signer"]
        token, old = await stored_token(nft, alice, storage, alice_keys, b"agent memory")
        access = flows.access_proofs(as_bob, token, bob.private_key, bob_keys.public)
        async with aiohttp.ClientSession() as session:
            ownership = await flows.reencrypt(session, as_alice, url, token, bob.address, bob_keys.public, access,
                                              alice_keys)
            (proof,) = ownership
            assert proof.data_hash == old and proof.target_pubkey == bob_keys.public
            new_key = crypto.unseal(bob_keys, proof.sealed_key)
            assert crypto.decrypt_data(new_key, storage.blobs[proof.new_data_hash]) == b"agent memory"
            nft.iTransferFrom(alice, bob, token, transfer_proofs(access, ownership), sender=alice)
            assert nft.ownerOf(token) == bob.address

            # refusals: what the client sends, spoiled one way at a time
            key = flows.data_keys(as_bob, bob.address, token, bob_keys)[0]
            items = [(proof.new_data_hash, crypto.seal(oracle_public, key))]
            back = flows.access_proofs(as_alice, token, alice.private_key, alice_keys.public)
            good = flows.reencrypt_request(as_bob, token, alice.address, alice_keys.public, items, back)

            async def refused(payload: object, status: int = 400) -> str:
                r = await client.post("/reencrypt", data=payload if isinstance(payload, str) else None,
                                      json=None if isinstance(payload, str) else payload)
                assert r.status == status, (r.status, await r.text())
                return (await r.json())["error"]

            item = good["items"][0]
            assert await refused("{not json")
            assert "tokenId" in await refused({**good, "tokenId": "1"})
            assert "receiverPubkey" in await refused({**good, "receiverPubkey": "0x1234"})
            assert "items" in await refused({**good, "items": []})
            assert "items" in await refused({**good, "items": [item] * (MAX_ITEMS + 1)})
            assert "accessProofs" in await refused({**good, "accessProofs": []})
            assert "deadline" in await refused({**good, "deadline": good["deadline"] + 10**6})
            assert "belongs to" in await refused({**good, "from": alice.address}, 403)
            wrong = {**item, "sealedKey": "0x" + crypto.seal(oracle_public, crypto.new_data_key()).hex()}
            signed = flows.reencrypt_request(as_bob, token, alice.address, alice_keys.public,
                                             [(proof.new_data_hash, bytes.fromhex(wrong["sealedKey"][2:]))], back)
            assert "does not open" in await refused(signed)
            assert "not signed by the token's owner" in await refused({**good, "items": [wrong]}, 403)
            stranger = flows.access_proofs(as_alice, token, bob.private_key, alice_keys.public)
            spoofed = flows.reencrypt_request(as_bob, token, alice.address, alice_keys.public, items, stranger)
            assert "access proof" in await refused(spoofed, 403)
            ok = await client.post("/reencrypt", json=good)
            assert ok.status == 200
            assert "already served" in await refused(good, 409)

    run_oracle(nft, alice, job, per_client=RateLimiter(rate=100, burst=100))
