"""Helpers shared by the INFT tests (a uniquely named module: tests must not import from `conftest`)."""

from __future__ import annotations

from typing import Any

from deaios.deployment import load_script
from deaios.inft.crypto import X25519Keys
from deaios.inft.proofs import AccessProof, OwnershipProof, transfer_proofs
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


def proofs_for(
    data_hashes: list[bytes],
    receiver_key: str,
    *,
    target: bytes | None = None,
    wanted: bytes | None = None,
    oracle_key: str = ORACLE_KEY,
    new_hashes: list[bytes] | None = None,
    oracle_type: int = 0,
) -> list[tuple]:
    """Valid-looking TransferValidityProof tuples: access proofs signed by `receiver_key`, ownership proofs
    by `oracle_key`, sealing for `target` (default: an X25519 key of the receiver); `wanted` is the access
    proof's targetPubkey (default = target)."""
    target = x25519_pub(receiver_key) if target is None else target
    wanted = target if wanted is None else wanted
    new_hashes = new_hashes or [keccak(b"new" + d) for d in data_hashes]
    access = [AccessProof.create(receiver_key, d, wanted) for d in data_hashes]
    own = []
    for d, n in zip(data_hashes, new_hashes):
        p = OwnershipProof.create(oracle_key, d, n, b"sealed:" + n, target)
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
