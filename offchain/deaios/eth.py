"""Sending a transaction from a local key: the one sender every area's client uses.

`TxSender(w3, private_key).send(to, data, value)` fills in what a transaction needs — the sender's next
nonce (counting its pending transactions), a gas estimate with a margin (against the next block, stamped with
the current time even when the chain's latest block is old: deaios.chain_time), EIP-1559 fees from the latest
block's base fee (2 × base fee + 1 gwei, tip 1 gwei; the node's gas price on a chain without base fees) —
checks that the account can pay for it (gas × max fee + value) before signing, signs locally, sends, and
waits for the receipt. Nonce, signing and sending happen under one lock, so threads sharing a sender never
reuse a nonce.

An account that cannot pay gets `InsufficientFunds`, a `UserError` with the figures ("account 0x… has 0 ETH;
the transaction needs ~0.002 ETH") instead of the node's raw JSON-RPC error object. A call that would revert
surfaces from the gas estimate as web3's `ContractCustomError` / `ContractLogicError`, and a mined revert as a
receipt with status 0: the area clients (compute, DA, INFT, market, storage Flow, alignment) name their own
contracts' custom errors, so they handle both. Areas whose services must keep running (DA nodes, the compute
broker) catch `InsufficientFunds` and re-raise it as their own error type with the same message.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3RPCError

from deaios.chain_time import NEXT_BLOCK
from deaios.errors import UserError

GWEI = 10**9
#: what a plain transfer costs in gas: the least any transaction needs (used when the estimate itself fails)
MIN_GAS = 21_000


class InsufficientFunds(UserError):
    """The paying account cannot cover gas × price + value. The message names the account and the figures."""


def format_eth(wei: int) -> str:
    """'0 ETH', '0.0021 ETH', '1.5 ETH': a short, readable figure (two significant digits below 1 ETH)."""
    if wei == 0:
        return "0 ETH"
    value = Decimal(wei) / 10**18
    text = f"{value:.2g}" if value < 1 else f"{value:.4f}".rstrip("0").rstrip(".")
    if "e" in text:
        text = f"{value:.{max(2, -value.adjusted() + 1)}f}"
    return f"{text} ETH"


def insufficient_funds(account: str, balance: int, needed: int) -> InsufficientFunds:
    return InsufficientFunds(
        f"account {account} has {format_eth(balance)}; the transaction needs ~{format_eth(needed)} "
        f"(gas × price + value): fund it, or sign with another --key")


class TxSender:
    """Signs and sends transactions from one private key over `w3`."""

    def __init__(self, w3: Web3, private_key: str, *, gas_margin: float = 1.2, gas_headroom: int = 20_000,
                 receipt_timeout: float = 120, poll_latency: float = 0.05) -> None:
        self.w3 = w3
        self.account = Account.from_key(private_key)
        self.gas_margin, self.gas_headroom = gas_margin, gas_headroom
        self.receipt_timeout, self.poll_latency = receipt_timeout, poll_latency
        self._chain_id: int | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def fees(self) -> dict[str, int]:
        """EIP-1559 fee fields (or a legacy gas price on a chain without base fees)."""
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        return {"maxFeePerGas": 2 * int(base) + GWEI, "maxPriorityFeePerGas": GWEI}

    def send_call(self, fn: Any, value: int = 0) -> tuple[bytes, Any]:
        """`send` for a web3 contract function object."""
        return self.send(fn.address, fn._encode_transaction_data(), value)

    def send(self, to: str, data: bytes | str, value: int = 0) -> tuple[bytes, Any]:
        """Send `data` to `to` with `value` wei; (tx hash, receipt). InsufficientFunds before signing when the
        account cannot pay; web3's revert errors from the gas estimate; the caller checks the receipt's status."""
        sender = self.account.address
        tx: dict[str, Any] = {"from": sender, "to": Web3.to_checksum_address(to), "data": data, "value": value,
                              "chainId": self.chain_id}
        with self._lock:
            balance = int(self.w3.eth.get_balance(sender))
            fees = self.fees()
            price = fees.get("maxFeePerGas", fees.get("gasPrice", 0))
            if balance < value + MIN_GAS * price:
                raise insufficient_funds(sender, balance, value + MIN_GAS * price)
            tx["nonce"] = self.w3.eth.get_transaction_count(sender, "pending")
            try:
                tx["gas"] = int(self.w3.eth.estimate_gas(tx, NEXT_BLOCK) * self.gas_margin) + self.gas_headroom  # type: ignore[arg-type]
            except Web3RPCError as exc:
                if "insufficient funds" in str(exc).lower():
                    raise insufficient_funds(sender, balance, value + MIN_GAS * price) from None
                raise
            if balance < tx["gas"] * price + value:
                raise insufficient_funds(sender, balance, tx["gas"] * price + value)
            tx.update(fees)
            signed = self.account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout,
                                                           poll_latency=self.poll_latency)
        return bytes(tx_hash), receipt
