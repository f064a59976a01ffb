"""A stand-in for a live testnet: a separate Anvil with 0G Galileo's chain id and a fresh (non-dev) mnemonic, and
helpers to fund and use accounts on it the way an operator would — raw signed transactions from the chain's own
mnemonic accounts, never Anvil's public dev keys."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from web3 import Web3

from deaios.procs import find_tool, free_ports, rpc_call, spawn, stop_pids, wait_until
from deaios.stack.config import DEV_MNEMONIC

GALILEO_CHAIN_ID = 16602
ETHER = 10**18


@dataclass
class RemoteChain:
    rpc: str
    mnemonic: str
    proc: subprocess.Popen

    @property
    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.rpc, request_kwargs={"timeout": 30}))

    def funder(self, index: int = 0) -> Account:
        """Account `index` of the chain's own mnemonic (funded by Anvil at genesis)."""
        Account.enable_unaudited_hdwallet_features()
        return Account.from_mnemonic(self.mnemonic, account_path=f"m/44'/60'/0'/0/{index}")

    def send(self, key: str, to: str | None, value: int = 0, data: bytes = b"", gas: int = 21_000) -> dict:
        """Sign and send a transaction with `key`; wait for its receipt (raises if it reverted)."""
        w3 = self.web3
        sender = Account.from_key(key)
        tx = {"to": to, "value": value, "data": data, "gas": gas, "gasPrice": w3.eth.gas_price * 2,
              "nonce": w3.eth.get_transaction_count(sender.address), "chainId": GALILEO_CHAIN_ID}
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction), timeout=60)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {receipt['transactionHash'].hex()} reverted")
        return receipt

    def fund(self, addresses: list[str], value: int) -> None:
        funder = self.funder(0)
        for address in addresses:
            self.send(funder.key.hex(), address, value)


def new_mnemonic() -> str:
    Account.enable_unaudited_hdwallet_features()
    while True:
        _, mnemonic = Account.create_with_mnemonic()
        if mnemonic != DEV_MNEMONIC:
            return mnemonic


def new_key() -> str:
    return "0x" + secrets.token_bytes(32).hex()


@contextlib.contextmanager
def remote_chain(logs: Path) -> Iterator[RemoteChain]:
    """A separate Anvil on chain id 16602 with a fresh mnemonic; stopped when the block exits."""
    mnemonic = new_mnemonic()
    port = free_ports("127.0.0.1", 1)[0]
    rpc = f"http://127.0.0.1:{port}"
    log = logs / "remote-anvil.log"
    proc = spawn([find_tool("anvil"), "--host", "127.0.0.1", "--port", str(port), "--chain-id",
                  str(GALILEO_CHAIN_ID), "--mnemonic", mnemonic, "--accounts", "2"], log)
    try:
        wait_until(lambda: int(rpc_call(rpc, "eth_chainId"), 16) == GALILEO_CHAIN_ID, 30, "remote anvil", log=log)
        yield RemoteChain(rpc, mnemonic, proc)
    finally:
        stop_pids({"remote-anvil": proc.pid}, procs={"remote-anvil": proc})
