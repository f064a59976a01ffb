"""Helpers shared by the compute market tests (a uniquely named module: several test folders have a
`conftest`, so tests must not import from `conftest`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deaios.deployment import load_script
from deaios.compute.receipts import (
    ZERO32,
    Receipt,
    SignerKind,
    deliverable_digest,
    sign_digest,
    sign_receipt,
    task_digest,
)
from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[2]
ZERO_ADDRESS = "0x" + "00" * 20

# Small round parameters so that test arithmetic is readable.
LOCK_TIME = 3600
MIN_DEPOSIT = 1_000
MIN_TRANSFER = 100
MIN_STAKE = 10**17
DECLINE_WINDOW = 60
PENALTY_BPS = 3000
ACK_WINDOW = 3600

INFERENCE, FINE_TUNING = 0, 1
MODEL = "qwen2.5-0.5b-instruct"

#: A fixed key for "TEE signers" (they never send transactions).
TEE_KEY = "0x" + keccak(text="deaios test tee signer").hex()
OTHER_KEY = "0x" + keccak(text="deaios test other signer").hex()


deploy_compute_module = load_script("deploy_compute")


def deploy(owner: Any, project: Any, **overrides: Any) -> dict[str, Any]:
    params = dict(
        lock_time=LOCK_TIME,
        min_deposit=MIN_DEPOSIT,
        min_transfer=MIN_TRANSFER,
        min_stake=MIN_STAKE,
        decline_window=DECLINE_WINDOW,
        penalty_bps=PENALTY_BPS,
        ack_window=ACK_WINDOW,
    )
    params.update(overrides)
    return deploy_compute_module.deploy_compute(owner, project, **params)


def address_of(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


TEE_SIGNER = address_of(TEE_KEY)
OTHER_SIGNER = address_of(OTHER_KEY)


def service_params(
    model: str = MODEL,
    *,
    service_type: int = INFERENCE,
    input_price: int = 10,
    output_price: int = 20,
    gpu_count: int = 1,
    memory_mib: int = 16_384,
    signer: str = TEE_SIGNER,
    url: str = "http://127.0.0.1:9000",
    gpu_type: str = "H100",
    verifiability: str = "TeeML",
    info: str = "",
) -> tuple:
    """The ServiceParams tuple, in field order."""
    return (
        service_type,
        model,
        url,
        gpu_type,
        gpu_count,
        memory_mib,
        input_price,
        output_price,
        verifiability,
        signer,
        info,
    )


def request(
    model: str = MODEL,
    *,
    deposit: int = 1_000,
    service_type: int = INFERENCE,
    min_gpu: int = 0,
    min_memory: int = 0,
    max_input: int = 10**9,
    max_output: int = 10**9,
    start: str = ZERO_ADDRESS,
) -> tuple:
    """The ServiceRequest tuple, in field order (`start`: where the list scan begins, zero = its head)."""
    return (service_type, model, min_gpu, min_memory, max_input, max_output, deposit, start)


def user_receipt(
    ledger: Any, user: Any, provider: Any, nonce: int, total_fee: int, requests_hash: bytes = ZERO32
) -> Receipt:
    """A receipt signed by the user's own key."""
    return sign_receipt(
        user.private_key,
        chain_id(),
        ledger.address,
        user.address,
        _addr(provider),
        nonce,
        total_fee,
        requests_hash,
        SignerKind.USER,
    )


def tee_receipt(
    ledger: Any,
    user: Any,
    provider: Any,
    nonce: int,
    total_fee: int,
    key: str = TEE_KEY,
    requests_hash: bytes = ZERO32,
) -> Receipt:
    """A receipt signed by a TEE signer key."""
    return sign_receipt(
        key,
        chain_id(),
        ledger.address,
        _addr(user),
        _addr(provider),
        nonce,
        total_fee,
        requests_hash,
        SignerKind.TEE,
    )


def chain_id() -> int:
    from ape import chain

    return chain.chain_id


def _addr(x: Any) -> str:
    return x if isinstance(x, str) else x.address


def task_signature(ft: Any, user: Any, provider: Any, task_id: bytes, fee: int) -> bytes:
    return sign_digest(
        user.private_key, task_digest(chain_id(), ft.address, user.address, _addr(provider), task_id, fee)
    )


def deliverable_signature(
    ft: Any,
    user: Any,
    provider: Any,
    task_id: bytes,
    root: bytes,
    fee: int,
    secret: bytes,
    key: str = TEE_KEY,
) -> bytes:
    return sign_digest(
        key,
        deliverable_digest(chain_id(), ft.address, _addr(user), _addr(provider), task_id, root, fee, secret),
    )


def abi(receipts: list[Receipt]) -> list[tuple]:
    return [r.as_abi() for r in receipts]


def settle(ledger: Any, provider: Any, receipts: list[Receipt]) -> tuple[list[int], Any]:
    """Send settleFees; return (statuses from the ReceiptSettled events, tx receipt)."""
    tx = ledger.settleFees(abi(receipts), sender=provider)
    events = tx.events.filter(ledger.ReceiptSettled)
    return [int(e.status) for e in events], tx


def time_travel(seconds: int) -> None:
    """Advance the chain clock: the next block's timestamp is now + seconds."""
    from ape import chain

    chain.pending_timestamp += seconds
    chain.mine()
