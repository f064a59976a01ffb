"""EIP-712 typed data: the one implementation of domain separators, struct hashes, digests and raw-hash
signatures that every area's signed formats use (compute receipts and fine-tuning fees in
`deaios.compute.receipts`, INFT transfer proofs and oracle requests in `deaios.inft.proofs`).

A domain is (name, version, chain id, verifying contract), as OpenZeppelin's `EIP712` builds it. A struct hash
is keccak256(typeHash ‖ encoded fields) where `bytes` and `string` fields are encoded as the keccak256 of their
contents (never packed next to each other: no two different messages share an encoding). Signatures are 65
bytes r ‖ s ‖ v (v = 27 or 28), what OpenZeppelin's ECDSA.recover expects.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=DOMAIN_TYPE),
                keccak(text=name),
                keccak(text=version),
                chain_id,
                to_checksum_address(verifying_contract),
            ],
        )
    )


def struct_hash(type_string: str, fields: list[tuple[str, Any]]) -> bytes:
    """keccak256 of the encoded struct `type_string` (e.g. "Mail(address to,bytes body)") with `fields` as
    (solidity type, value) in declaration order; `bytes`/`string` values are hashed, addresses checksummed."""
    types, values = ["bytes32"], [keccak(text=type_string)]
    for kind, value in fields:
        if kind == "bytes":
            kind, value = "bytes32", keccak(value)
        elif kind == "string":
            kind, value = "bytes32", keccak(text=value)
        elif kind == "address":
            value = to_checksum_address(value)
        types.append(kind)
        values.append(value)
    return keccak(encode(types, values))


def typed_digest(separator: bytes, struct: bytes) -> bytes:
    """The digest that is signed: keccak256("\\x19\\x01" ‖ domain separator ‖ struct hash)."""
    return keccak(b"\x19\x01" + separator + struct)


def sign_digest(private_key: str | bytes, digest: bytes) -> bytes:
    """65-byte r || s || v signature of a 32-byte digest."""
    signed = Account.unsafe_sign_hash(digest, private_key)
    return signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])


def recover(digest: bytes, signature: bytes) -> str:
    """The address that signed `digest` (raises ValueError-like errors on a malformed signature)."""
    return Account._recover_hash(digest, signature=signature)
