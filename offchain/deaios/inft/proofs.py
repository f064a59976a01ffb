"""ERC-7857 transfer-validity proofs as `contracts/inft/DataVerifier.sol` checks them, and the owner's request
to the re-encryption oracle.

Every signature here is EIP-712 typed data (`deaios.eip712`) over a `TransferContext`: the chain, the verifier
(the domain's verifying contract), the token contract, the token id, the current owner `from` and the receiver
`to`. A proof therefore moves one token of one deployment from one owner to one receiver, once (audit H1: 0G's
format, an EIP-191 signature over abi.encodePacked(dataHash, …, nonce), named none of them, so a copy token
with the same data hashes could spend a sale's proofs):

* access proof, signed by the receiver (or its delegated assistant):
  `AccessProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes targetPubkey,
  bytes nonce)`, domain "deaios INFT DataVerifier" v1;
* ownership proof, signed by the oracle: `OwnershipProof(address token,uint256 tokenId,address from,address to,
  bytes32 dataHash,bytes32 newDataHash,bytes sealedKey,bytes targetPubkey,bytes nonce)`, same domain;
* re-encryption request, signed by the token's owner and checked by the oracle (audit H6):
  `ReencryptRequest(address token,uint256 tokenId,address from,address to,bytes receiverPubkey,bytes32 itemsHash,
  bytes32 nonce,uint256 deadline)`, domain "deaios INFT oracle" v1 (verifying contract: the verifier), with
  itemsHash = keccak256 of the items' (dataHash ‖ keccak256(sealedKey)) in order.

The oracle's X25519 encryption key is vouched for by its signer with an EIP-191 signature of
`oracle_key_digest(pub, chainId)` (its stand-in for a TEE attestation; not checked on chain).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

from deaios import eip712

TEE = 0
NONCE_SIZE = 32
ORACLE_KEY_LABEL = b"deaios/inft/oracle-x25519/v1"
VERIFIER_DOMAIN = ("deaios INFT DataVerifier", "1")
ORACLE_DOMAIN = ("deaios INFT oracle", "1")
ACCESS_TYPE = (
    "AccessProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes targetPubkey,"
    "bytes nonce)"
)
OWNERSHIP_TYPE = (
    "OwnershipProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes32 newDataHash,"
    "bytes sealedKey,bytes targetPubkey,bytes nonce)"
)
REQUEST_TYPE = (
    "ReencryptRequest(address token,uint256 tokenId,address from,address to,bytes receiverPubkey,"
    "bytes32 itemsHash,bytes32 nonce,uint256 deadline)"
)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class TransferContext:
    """The transfer a proof is for (see the module docstring); `verifier` is the EIP-712 verifying contract."""

    chain_id: int
    verifier: str
    token: str
    token_id: int
    from_: str
    to: str

    def _head(self) -> list[tuple[str, Any]]:
        return [("address", self.token), ("uint256", self.token_id), ("address", self.from_),
                ("address", self.to)]

    def digest(self, type_string: str, fields: list[tuple[str, Any]],
               domain: tuple[str, str] = VERIFIER_DOMAIN) -> bytes:
        separator = eip712.domain_separator(*domain, self.chain_id, self.verifier)
        return eip712.typed_digest(separator, eip712.struct_hash(type_string, self._head() + fields))

    def to_json(self) -> dict[str, Any]:
        return {"chainId": self.chain_id, "verifier": self.verifier, "token": self.token,
                "tokenId": self.token_id, "from": self.from_, "to": self.to}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TransferContext:
        return cls(int(d["chainId"]), to_checksum_address(d["verifier"]), to_checksum_address(d["token"]),
                   int(d["tokenId"]), to_checksum_address(d["from"]), to_checksum_address(d["to"]))


def access_digest(ctx: TransferContext, data_hash: bytes, target_pubkey: bytes, nonce: bytes) -> bytes:
    return ctx.digest(ACCESS_TYPE, [("bytes32", data_hash), ("bytes", target_pubkey), ("bytes", nonce)])


def ownership_digest(
    ctx: TransferContext,
    data_hash: bytes,
    new_data_hash: bytes,
    sealed_key: bytes,
    target_pubkey: bytes,
    nonce: bytes,
) -> bytes:
    return ctx.digest(
        OWNERSHIP_TYPE,
        [("bytes32", data_hash), ("bytes32", new_data_hash), ("bytes", sealed_key), ("bytes", target_pubkey),
         ("bytes", nonce)],
    )


def items_hash(items: list[tuple[bytes, bytes]]) -> bytes:
    """The `itemsHash` of a re-encryption request: keccak256 of (dataHash ‖ keccak256(sealedKey)) per item."""
    return keccak(b"".join(data_hash + keccak(sealed) for data_hash, sealed in items))


def request_digest(
    ctx: TransferContext, receiver_pubkey: bytes, items: list[tuple[bytes, bytes]], nonce: bytes, deadline: int
) -> bytes:
    """What the token's owner signs to have the oracle re-encrypt `items` (dataHash, sealedKey) for the receiver."""
    return ctx.digest(
        REQUEST_TYPE,
        [("bytes", receiver_pubkey), ("bytes32", items_hash(items)), ("bytes32", nonce), ("uint256", deadline)],
        domain=ORACLE_DOMAIN,
    )


def oracle_key_digest(x25519_public: bytes, chain_id: int) -> bytes:
    return keccak(ORACLE_KEY_LABEL + chain_id.to_bytes(32, "big") + x25519_public)


def sign_attestation(private_key: str | bytes, digest: bytes) -> bytes:
    """65-byte EIP-191 signature of the digest's hex string (the oracle's key attestation)."""
    return bytes(Account.sign_message(encode_defunct(text=_hex(digest)), private_key).signature)


def recover_attestation(digest: bytes, signature: bytes) -> str:
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
        cls,
        private_key: str | bytes,
        ctx: TransferContext,
        data_hash: bytes,
        target_pubkey: bytes,
        nonce: bytes | None = None,
    ) -> AccessProof:
        nonce = nonce or new_nonce()
        digest = access_digest(ctx, data_hash, target_pubkey, nonce)
        return cls(data_hash, target_pubkey, nonce, eip712.sign_digest(private_key, digest))

    def signer(self, ctx: TransferContext) -> str:
        return eip712.recover(access_digest(ctx, self.data_hash, self.target_pubkey, self.nonce), self.proof)

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
        ctx: TransferContext,
        data_hash: bytes,
        new_data_hash: bytes,
        sealed_key: bytes,
        target_pubkey: bytes,
        nonce: bytes | None = None,
    ) -> OwnershipProof:
        nonce = nonce or new_nonce()
        digest = ownership_digest(ctx, data_hash, new_data_hash, sealed_key, target_pubkey, nonce)
        return cls(
            data_hash, new_data_hash, sealed_key, target_pubkey, nonce, eip712.sign_digest(private_key, digest)
        )

    def signer(self, ctx: TransferContext) -> str:
        digest = ownership_digest(
            ctx, self.data_hash, self.new_data_hash, self.sealed_key, self.target_pubkey, self.nonce
        )
        return eip712.recover(digest, self.proof)

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
