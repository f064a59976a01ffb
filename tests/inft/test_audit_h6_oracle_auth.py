"""Audit finding H6 (off-chain): the INFT re-encryption oracle serves anyone.

`POST /reencrypt` took an optional token id and no authentication, so anyone could

* have it re-encrypt any data whose sealed key they hold, for any receiver key (no token, no owner);
* replay a captured request (the owner's data key sealed to the oracle) with their own receiver key and read
  the plaintext;
* make it download a root of any size into memory (and upload 16 copies per request, paid by its key);
* call it as often as they like.

The oracle runs against the real AgentNFT/DataVerifier on ape's Anvil; an in-memory storage stands in for the
storage nodes (so sizes and downloads can be observed). The captured request is what the real client
(`deaios.inft.flows.reencrypt_request`) sends.
"""

from __future__ import annotations

from deaios.inft import crypto, flows
from deaios.inft.oracle import RateLimiter
from deaios.inft.proofs import OwnershipProof
from inft_helpers import inft_chain, run_oracle, stored_token

PLAINTEXT = b"agent weights: the secret sauce"
GENEROUS = {"per_client": RateLimiter(rate=100, burst=100)}


async def captured(service, nft, owner, receiver, storage, owner_keys, receiver_keys, plaintext=PLAINTEXT):
    """A token of `owner` and the request its client sends to move it to `receiver` (as an eavesdropper sees
    it): (token id, data hash, request)."""
    token, root = await stored_token(nft, owner, storage, owner_keys, plaintext)
    as_owner, as_receiver = inft_chain(nft, owner), inft_chain(nft, receiver)
    access = flows.access_proofs(as_receiver, token, receiver.private_key, receiver_keys.public)
    key = flows.data_keys(as_owner, owner.address, token, owner_keys)[0]
    items = [(root, crypto.seal(service.keys.public, key))]
    return token, root, flows.reencrypt_request(as_owner, token, receiver.address, receiver_keys.public, items,
                                                access)


def test_h6_unauthenticated_request_is_refused(nft, alice, bob):
    alice_keys, bob_keys, attacker = (crypto.X25519Keys.generate() for _ in range(3))

    async def job(client, url, service, storage):
        _, _, body = await captured(service, nft, alice, bob, storage, alice_keys, bob_keys)
        bare = {"receiverPubkey": "0x" + attacker.public.hex(), "items": body["items"]}
        resp = await client.post("/reencrypt", json=bare)
        assert resp.status != 200, "served without a token id or the owner's authorization"
        assert resp.status == 400 and "tokenId" in (await resp.json())["error"]
        assert storage.downloads == []

    run_oracle(nft, alice, job, **GENEROUS)


def test_h6_replayed_sealed_key_gives_the_attacker_nothing(nft, alice, bob):
    alice_keys, bob_keys, attacker = (crypto.X25519Keys.generate() for _ in range(3))

    async def job(client, url, service, storage):
        _, _, request = await captured(service, nft, alice, bob, storage, alice_keys, bob_keys)
        replay = {**request, "receiverPubkey": "0x" + attacker.public.hex()}
        resp = await client.post("/reencrypt", json=replay)
        if resp.status == 200:
            (proof,) = [OwnershipProof.from_json(p) for p in (await resp.json())["proofs"]]
            stolen = crypto.decrypt_data(crypto.unseal(attacker, proof.sealed_key), storage.blobs[proof.new_data_hash])
            assert stolen != PLAINTEXT, "the attacker read the plaintext"
        assert resp.status == 403 and storage.downloads == []
        # the genuine request is served once; played again it is refused
        assert (await client.post("/reencrypt", json=request)).status == 200
        assert (await client.post("/reencrypt", json=request)).status == 409

    run_oracle(nft, alice, job, **GENEROUS)


def test_h6_oversized_data_is_not_downloaded(nft, alice, bob, monkeypatch):
    from deaios.inft import oracle

    monkeypatch.setattr(oracle, "MAX_DATA_BYTES", 1 << 16, raising=False)
    alice_keys, bob_keys = crypto.X25519Keys.generate(), crypto.X25519Keys.generate()

    async def job(client, url, service, storage):
        _, root, request = await captured(service, nft, alice, bob, storage, alice_keys, bob_keys,
                                          plaintext=b"x" * (1 << 17))
        resp = await client.post("/reencrypt", json=request)
        assert root not in storage.downloads, "downloaded a root larger than the oracle's limit"
        assert resp.status == 413

    run_oracle(nft, alice, job, **GENEROUS)


def test_h6_requests_are_rate_limited(nft, alice):
    async def job(client, url, service, storage):
        statuses = [(await client.post("/reencrypt", json={"items": []})).status for _ in range(40)]
        assert 429 in statuses, "40 requests in a row, none limited"
        assert statuses[:5] == [400] * 5  # the first ones are answered (and refused for their content)

    run_oracle(nft, alice, job)
