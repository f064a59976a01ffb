"""The one transaction sender (`deaios.eth.TxSender`) on ape's local Anvil: an account that cannot pay gets the
figures in words (a UserError: exit code 2 in the CLI) before anything is signed, and every area's client sends
through it (~3 s)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from deaios.errors import UserError
from deaios.eth import InsufficientFunds, TxSender, format_eth


@pytest.fixture(scope="module")
def w3(chain) -> Web3:
    return Web3(Web3.HTTPProvider(chain.provider.http_uri))


def test_an_empty_account_is_told_what_it_has_and_what_it_needs(w3: Web3) -> None:
    key = Account.create().key.hex()
    sender = TxSender(w3, key)
    with pytest.raises(InsufficientFunds) as caught:
        sender.send(sender.address, b"", 0)
    assert isinstance(caught.value, UserError) and caught.value.exit_code == 2
    message = caught.value.message
    assert re.search(rf"account {sender.address} has 0 ETH; the transaction needs ~0\.0000\d+ ETH", message), message
    assert w3.eth.get_transaction_count(sender.address) == 0  # nothing was sent


def test_value_beyond_the_balance_is_refused_with_both_figures(w3: Web3, accounts) -> None:
    key = Account.create().key.hex()
    sender = TxSender(w3, key)
    accounts[0].transfer(sender.address, 10**16)  # 0.01 ETH
    with pytest.raises(InsufficientFunds, match=r"has 0\.01 ETH; the transaction needs ~1 ETH"):
        sender.send(accounts[1].address, b"", 10**18)
    tx_hash, receipt = sender.send(accounts[1].address, b"", 10**15)  # what it can pay goes through
    assert receipt["status"] == 1 and w3.eth.get_transaction(tx_hash)["value"] == 10**15


def test_figures_read_well() -> None:
    assert format_eth(0) == "0 ETH"
    assert format_eth(2 * 10**15) == "0.002 ETH"
    assert format_eth(10**18) == "1 ETH"
    assert format_eth(15 * 10**17) == "1.5 ETH"


def test_every_area_sends_through_the_shared_sender() -> None:
    """No area signs transactions itself (deployment scripts aside): one sender, one balance check."""
    root = Path(__import__("deaios").__file__).parent
    signing = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "sign_transaction(" in p.read_text() or "SignAndSendRawMiddleware" in p.read_text())
    assert signing == ["deployment_session.py", "eth.py"], signing
