"""Helpers shared by the INFT tests (a uniquely named module: tests must not import from `conftest`)."""

from __future__ import annotations

from typing import Any

from deaios.deployment import load_script
from deaios.inft.crypto import X25519Keys
from deaios.inft.proofs import AccessProof, OwnershipProof, TransferContext, transfer_proofs
from eth_account import Account
from eth_utils import keccak

#: Fixed keys that never send transactions: the oracle's signer, another signer, a receiver's assistant.
ORACLE_KEY = "0x" + keccak(text="deaios test inft oracle").hex()
OTHER_KEY = "0x" + keccak(text="deaios test inft other signer").hex()
ASSISTANT_KEY = "0x" + keccak(text="deaios test inft assistant").hex()
ORACLE = Account.from_key(ORACLE_KEY).address
ASSISTANT = Account.from_key(ASSISTANT_KEY).address
ROYALTY_BPS = 500
ZERO_ADDRESS = "0x" + "00" * 20

deploy_inft_module = load_script("deploy_inft")


def deploy(owner: Any, project: Any, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"oracle_signer": ORACLE, "royalty_bps": ROYALTY_BPS}
    params.update(overrides)
    return deploy_inft_module.deploy_inft(owner, project, **params)


def h(label: str) -> bytes:
    """A made-up 32-byte data hash."""
    return keccak(text=label)


def datas(*labels: str) -> list[tuple[str, bytes]]:
    return [(f"entry {label}", h(label)) for label in labels]


def x25519_pub(label: str) -> bytes:
    return X25519Keys.derive(label.encode(), b"deaios test").public


def ctx_for(nft: Any, token_id: int, sender: Any, receiver: Any) -> TransferContext:
    """The transfer of `token_id` from `sender` to `receiver` (accounts or addresses) that proofs name."""
    from ape import chain

    return TransferContext(chain.chain_id, nft.verifier(), nft.address, token_id,
                           getattr(sender, "address", sender), getattr(receiver, "address", receiver))


def proofs_for(
    ctx: TransferContext,
    data_hashes: list[bytes],
    receiver_key: str,
    *,
    target: bytes | None = None,
    wanted: bytes | None = None,
    oracle_key: str = ORACLE_KEY,
    new_hashes: list[bytes] | None = None,
    oracle_type: int = 0,
) -> list[tuple]:
    """Valid-looking TransferValidityProof tuples for transfer `ctx`: access proofs signed by `receiver_key`,
    ownership proofs by `oracle_key`, sealing for `target` (default: an X25519 key of the receiver); `wanted`
    is the access proof's targetPubkey (default = target)."""
    target = x25519_pub(receiver_key) if target is None else target
    wanted = target if wanted is None else wanted
    new_hashes = new_hashes or [keccak(b"new" + d) for d in data_hashes]
    access = [AccessProof.create(receiver_key, ctx, d, wanted) for d in data_hashes]
    own = []
    for d, n in zip(data_hashes, new_hashes):
        p = OwnershipProof.create(oracle_key, ctx, d, n, b"sealed:" + n, target)
        own.append(
            OwnershipProof(
                p.data_hash, p.new_data_hash, p.sealed_key, p.target_pubkey, p.nonce, p.proof, oracle_type
            )
        )
    return transfer_proofs(access, own)


def eth_pubkey(private_key: str) -> bytes:
    """The 64-byte uncompressed secp256k1 public key of an Ethereum key."""
    from eth_keys import keys

    return keys.PrivateKey(bytes.fromhex(private_key.removeprefix("0x"))).public_key.to_bytes()


def revert_name(fn: Any, sender: str) -> str | None:
    """The custom error an eth_call of the web3 function call `fn` reverts with, None if it succeeds.

    Used for reverts raised inside the verifier under the token's call: ape's own revert decoding of nested
    custom errors takes ~20 s per revert (it traces the call); web3 + the ABIs' selectors take ms."""
    from deaios.inft.chain import explain
    from web3.exceptions import ContractCustomError, ContractLogicError

    try:
        fn.call({"from": sender})
    except (ContractCustomError, ContractLogicError) as exc:
        return explain(exc).removeprefix("reverted: ").split(" ")[0]
    return None


# --- the re-encryption oracle over an in-memory storage and the real contracts ---------------------------------
class MemoryStorage:
    """Storage.put/size/get over a dict (root = keccak of the blob); records what was downloaded."""

    def __init__(self) -> None:
        self.blobs: dict[bytes, bytes] = {}
        self.downloads: list[bytes] = []

    async def put(self, session: object, blob: bytes) -> bytes:
        root = keccak(blob)
        self.blobs[root] = blob
        return root

    async def size(self, session: object, root: bytes) -> int:
        from deaios.storage.client import StorageClientError

        if root not in self.blobs:
            raise StorageClientError("unknown root")
        return len(self.blobs[root])

    async def get(self, session: object, root: bytes) -> bytes:
        from deaios.storage.client import StorageClientError

        if root not in self.blobs:
            raise StorageClientError("unknown root")
        self.downloads.append(root)
        return self.blobs[root]


def inft_chain(nft: Any, account: Any) -> Any:
    """`deaios.inft.chain.InftChain` on ape's Anvil, as `account` (an ape test account) sees it."""
    from ape import chain

    from deaios.inft.chain import InftAddresses, InftChain

    return InftChain(chain.provider.http_uri, InftAddresses(nft.address, nft.verifier()), account.private_key)


def run_oracle(nft: Any, owner: Any, job: Any, **service_options: Any) -> Any:
    """Run `await job(client, url, service, storage)` against an oracle (signer ORACLE_KEY, the deployment's
    oracle signer) serving the real contracts, with an in-memory storage."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from deaios.inft.oracle import OracleService, make_app

    async def go() -> Any:
        storage = MemoryStorage()
        chain = inft_chain(nft, owner)
        service = OracleService(ORACLE_KEY, storage, chain.w3.eth.chain_id, chain, **service_options)  # type: ignore[arg-type]
        async with TestClient(TestServer(make_app(service))) as client:
            return await job(client, str(client.make_url("")).rstrip("/"), service, storage)

    return asyncio.run(go())


async def stored_token(nft: Any, owner: Any, storage: MemoryStorage, keys: X25519Keys, plaintext: bytes) -> tuple[int, bytes]:
    """A token of `owner` whose one entry is `plaintext` encrypted in `storage`, its key sealed to `keys`
    (published on chain): (token id, data hash)."""
    from deaios.inft import crypto

    key = crypto.new_data_key()
    root = await storage.put(None, crypto.encrypt_data(key, plaintext))
    tx = nft.mintWithSealedKeys([("agent", root)], owner.address, [crypto.seal(keys.public, key)], sender=owner)
    return int(tx.decode_logs(nft.Transfer)[0].tokenId), root
