"""ERC-7857 transfer-validity proofs as `contracts/inft/DataVerifier.sol` checks them.

Both signatures are EIP-191 personal signatures over the 66-character hex string ("0x" + 64 lowercase hex)
of a keccak digest (0G's message format):

* access proof (by the receiver, or its delegated assistant): keccak(dataHash ‖ targetPubkey ‖ nonce);
* ownership proof (by the oracle): keccak(dataHash ‖ newDataHash ‖ sealedKey ‖ targetPubkey ‖ nonce).

The oracle's X25519 encryption key is vouched for by its signer: `oracle_key_digest(pub)` signed the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

TEE = 0
NONCE_SIZE = 32
ORACLE_KEY_LABEL = b"deaios/inft/oracle-x25519/v1"


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


def access_digest(data_hash: bytes, target_pubkey: bytes, nonce: bytes) -> bytes:
    return keccak(data_hash + target_pubkey + nonce)


def ownership_digest(
    data_hash: bytes, new_data_hash: bytes, sealed_key: bytes, target_pubkey: bytes, nonce: bytes
) -> bytes:
    return keccak(data_hash + new_data_hash + sealed_key + target_pubkey + nonce)


def oracle_key_digest(x25519_public: bytes, chain_id: int) -> bytes:
    return keccak(ORACLE_KEY_LABEL + chain_id.to_bytes(32, "big") + x25519_public)


def sign_digest(private_key: str | bytes, digest: bytes) -> bytes:
    """65-byte EIP-191 signature of the digest's hex string."""
    return bytes(Account.sign_message(encode_defunct(text=_hex(digest)), private_key).signature)


def recover_digest(digest: bytes, signature: bytes) -> str:
    return Account.recover_message(encode_defunct(text=_hex(digest)), signature=signature)


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


@dataclass(frozen=True)
class AccessProof:
    data_hash: bytes
    target_pubkey: bytes
    nonce: bytes
    proof: bytes

    @classmethod
    def create(
        cls, private_key: str | bytes, data_hash: bytes, target_pubkey: bytes, nonce: bytes | None = None
    ) -> AccessProof:
        nonce = nonce or new_nonce()
        return cls(
            data_hash,
            target_pubkey,
            nonce,
            sign_digest(private_key, access_digest(data_hash, target_pubkey, nonce)),
        )

    def signer(self) -> str:
        return recover_digest(access_digest(self.data_hash, self.target_pubkey, self.nonce), self.proof)

    def as_abi(self) -> tuple:
        return (self.data_hash, self.target_pubkey, self.nonce, self.proof)

    def to_json(self) -> dict[str, str]:
        return {
            "dataHash": _hex(self.data_hash),
            "targetPubkey": _hex(self.target_pubkey),
            "nonce": _hex(self.nonce),
            "proof": _hex(self.proof),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AccessProof:
        return cls(_bytes(d["dataHash"]), _bytes(d["targetPubkey"]), _bytes(d["nonce"]), _bytes(d["proof"]))


@dataclass(frozen=True)
class OwnershipProof:
    data_hash: bytes
    new_data_hash: bytes
    sealed_key: bytes
    target_pubkey: bytes
    nonce: bytes
    proof: bytes
    oracle_type: int = TEE

    @classmethod
    def create(
        cls,
        private_key: str | bytes,
        data_hash: bytes,
        new_data_hash: bytes,
        sealed_key: bytes,
        target_pubkey: bytes,
        nonce: bytes | None = None,
    ) -> OwnershipProof:
        nonce = nonce or new_nonce()
        digest = ownership_digest(data_hash, new_data_hash, sealed_key, target_pubkey, nonce)
        return cls(
            data_hash, new_data_hash, sealed_key, target_pubkey, nonce, sign_digest(private_key, digest)
        )

    def signer(self) -> str:
        return recover_digest(
            ownership_digest(
                self.data_hash, self.new_data_hash, self.sealed_key, self.target_pubkey, self.nonce
            ),
            self.proof,
        )

    def as_abi(self) -> tuple:
        return (
            self.oracle_type,
            self.data_hash,
            self.new_data_hash,
            self.sealed_key,
            self.target_pubkey,
            self.nonce,
            self.proof,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "oracleType": self.oracle_type,
            "dataHash": _hex(self.data_hash),
            "newDataHash": _hex(self.new_data_hash),
            "sealedKey": _hex(self.sealed_key),
            "targetPubkey": _hex(self.target_pubkey),
            "nonce": _hex(self.nonce),
            "proof": _hex(self.proof),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OwnershipProof:
        return cls(
            _bytes(d["dataHash"]),
            _bytes(d["newDataHash"]),
            _bytes(d["sealedKey"]),
            _bytes(d["targetPubkey"]),
            _bytes(d["nonce"]),
            _bytes(d["proof"]),
            int(d.get("oracleType", TEE)),
        )


def transfer_proofs(access: list[AccessProof], ownership: list[OwnershipProof]) -> list[tuple]:
    """The `TransferValidityProof[]` argument of iTransferFrom / iCloneFrom."""
    if len(access) != len(ownership):
        raise ValueError(f"{len(access)} access proofs but {len(ownership)} ownership proofs")
    return [(a.as_abi(), o.as_abi()) for a, o in zip(access, ownership)]
