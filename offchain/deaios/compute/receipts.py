"""The one module for the compute market's signed formats (EIP-712), shared by tests, brokers and clients.

- `Receipt` (ComputeLedger, domain "deaios Compute Ledger" v1): a cumulative spend receipt of one
  (user, provider) pair, `Receipt(address user,address provider,uint256 nonce,uint256 totalFee,
  bytes32 requestsHash)`, signed by the user (`SignerKind.USER`) or by the provider's TEE signer
  (`SignerKind.TEE`). `totalFee` is the user's total spend with the provider so far; settling pays the
  increase over what the ledger already charged.
- `ServiceRequest` (off-chain only, same domain as receipts): a user's signature on one request to a
  provider's broker, `ServiceRequest(address user,address provider,uint256 nonce,bytes32 bodyHash)`, sent
  in the request's headers (see `deaios.compute.broker`).
- `FineTuningTask` / `DeliverableSettlement` (FineTuningServing, domain "deaios Fine-Tuning" v1): a user's fee
  authorization for a fine-tuning task / a TEE signer's settlement of a deliverable.

Signatures are 65 bytes r || s || v (v = 27 or 28), as OpenZeppelin's ECDSA expects; the EIP-712 machinery
itself is `deaios.eip712`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from deaios.eip712 import domain_separator, recover, sign_digest, typed_digest  # noqa: F401 (re-exported)

LEDGER_DOMAIN = ("deaios Compute Ledger", "1")
FINE_TUNING_DOMAIN = ("deaios Fine-Tuning", "1")

RECEIPT_TYPE = "Receipt(address user,address provider,uint256 nonce,uint256 totalFee,bytes32 requestsHash)"
TASK_TYPE = "FineTuningTask(address user,address provider,bytes32 taskId,uint256 taskFee)"
DELIVERABLE_TYPE = (
    "DeliverableSettlement(address user,address provider,bytes32 taskId,bytes32 modelRootHash,"
    "uint256 taskFee,bytes32 secretHash)"
)
REQUEST_TYPE = "ServiceRequest(address user,address provider,uint256 nonce,bytes32 bodyHash)"
RECEIPT_TYPEHASH = keccak(text=RECEIPT_TYPE)
REQUEST_TYPEHASH = keccak(text=REQUEST_TYPE)
TASK_TYPEHASH = keccak(text=TASK_TYPE)
DELIVERABLE_TYPEHASH = keccak(text=DELIVERABLE_TYPE)
ZERO32 = bytes(32)


class SignerKind(enum.IntEnum):
    TEE = 0
    USER = 1


class SettlementStatus(enum.IntEnum):
    SUCCESS = 0
    PARTIAL = 1
    INVALID_NONCE = 2
    INVALID_SIGNATURE = 3
    SIGNER_NOT_ACKNOWLEDGED = 4
    FEE_BELOW_CHARGED = 5


def receipt_digest(
    chain_id: int,
    ledger: str,
    user: str,
    provider: str,
    nonce: int,
    total_fee: int,
    requests_hash: bytes = ZERO32,
) -> bytes:
    struct = keccak(
        encode(
            ["bytes32", "address", "address", "uint256", "uint256", "bytes32"],
            [
                RECEIPT_TYPEHASH,
                to_checksum_address(user),
                to_checksum_address(provider),
                nonce,
                total_fee,
                requests_hash,
            ],
        )
    )
    return typed_digest(domain_separator(*LEDGER_DOMAIN, chain_id, ledger), struct)


def request_digest(
    chain_id: int, ledger: str, user: str, provider: str, nonce: int, body_hash: bytes
) -> bytes:
    struct = keccak(
        encode(
            ["bytes32", "address", "address", "uint256", "bytes32"],
            [REQUEST_TYPEHASH, to_checksum_address(user), to_checksum_address(provider), nonce, body_hash],
        )
    )
    return typed_digest(domain_separator(*LEDGER_DOMAIN, chain_id, ledger), struct)


def next_requests_hash(previous: bytes, body_hash: bytes, response_hash: bytes) -> bytes:
    """The receipt's `requestsHash` after one more request: keccak(previous || bodyHash || responseHash)."""
    return keccak(previous + body_hash + response_hash)


def task_digest(
    chain_id: int, fine_tuning: str, user: str, provider: str, task_id: bytes, task_fee: int
) -> bytes:
    struct = keccak(
        encode(
            ["bytes32", "address", "address", "bytes32", "uint256"],
            [TASK_TYPEHASH, to_checksum_address(user), to_checksum_address(provider), task_id, task_fee],
        )
    )
    return typed_digest(domain_separator(*FINE_TUNING_DOMAIN, chain_id, fine_tuning), struct)


def deliverable_digest(
    chain_id: int,
    fine_tuning: str,
    user: str,
    provider: str,
    task_id: bytes,
    model_root_hash: bytes,
    task_fee: int,
    encrypted_secret: bytes,
) -> bytes:
    struct = keccak(
        encode(
            ["bytes32", "address", "address", "bytes32", "bytes32", "uint256", "bytes32"],
            [
                DELIVERABLE_TYPEHASH,
                to_checksum_address(user),
                to_checksum_address(provider),
                task_id,
                model_root_hash,
                task_fee,
                keccak(encrypted_secret),
            ],
        )
    )
    return typed_digest(domain_separator(*FINE_TUNING_DOMAIN, chain_id, fine_tuning), struct)


@dataclass(frozen=True)
class Receipt:
    """A signed cumulative receipt, as `settleFees` takes it (the provider is the sender)."""

    user: str
    provider: str
    nonce: int
    total_fee: int
    requests_hash: bytes
    signer_kind: SignerKind
    signature: bytes

    def as_abi(self) -> tuple:
        return (
            to_checksum_address(self.user),
            self.nonce,
            self.total_fee,
            self.requests_hash,
            int(self.signer_kind),
            self.signature,
        )

    def to_json(self) -> dict:
        return {
            "user": self.user,
            "provider": self.provider,
            "nonce": self.nonce,
            "totalFee": self.total_fee,
            "requestsHash": "0x" + self.requests_hash.hex(),
            "signerKind": self.signer_kind.name,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Receipt:
        return cls(
            user=d["user"],
            provider=d["provider"],
            nonce=int(d["nonce"]),
            total_fee=int(d["totalFee"]),
            requests_hash=bytes.fromhex(d["requestsHash"].removeprefix("0x")),
            signer_kind=SignerKind[d["signerKind"]],
            signature=bytes.fromhex(d["signature"].removeprefix("0x")),
        )


def sign_receipt(
    private_key: str | bytes,
    chain_id: int,
    ledger: str,
    user: str,
    provider: str,
    nonce: int,
    total_fee: int,
    requests_hash: bytes = ZERO32,
    signer_kind: SignerKind = SignerKind.USER,
) -> Receipt:
    """A receipt signed with `private_key` (the user's for USER, the TEE signer's for TEE)."""
    digest = receipt_digest(chain_id, ledger, user, provider, nonce, total_fee, requests_hash)
    return Receipt(
        user=to_checksum_address(user),
        provider=to_checksum_address(provider),
        nonce=nonce,
        total_fee=total_fee,
        requests_hash=requests_hash,
        signer_kind=SignerKind(signer_kind),
        signature=sign_digest(private_key, digest),
    )
