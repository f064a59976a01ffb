"""Audit finding H1: an INFT sale where the buyer keeps the data and gets the price back.

`AgentMarket.settle` carries the oracle's sealed key for the buyer in its calldata (and the re-encrypted
ciphertext is already in storage), so a buyer who sees the seller's settle transaction can read the data even
if that transaction reverts; once the settlement deadline passes, anyone cancels the purchase and the buyer is
refunded. Each test makes settle revert in one of the three ways the audit found, then checks who ends up with
what: the attack fails when the token reached the buyer and the seller was paid.

(a) the buyer is a contract whose `onERC721Received` reverts;
(b) the buyer front-runs settle with `delegateAccess(0)`, so the assistant that signed its access proof is no
    longer accepted;
(c) the buyer mints a copy token with the same data hashes and spends the proofs' nonces on it first (nonces
    were keyed by (kind, nonce, token contract), not by token id).

Fixed: the token calls no receiver hook on iTransferFrom (a); a purchase freezes the buyer's access delegation
until its deadline (b); proofs are EIP-712 typed data naming the token contract, the token id, `from` and `to`,
and nonces are kept per token (c).
"""

from __future__ import annotations

import pytest
from deaios import testing
from eth_account import Account
from eth_utils import keccak
from market_helpers import SETTLE_WINDOW, context, mint, now, proofs_for, time_travel, token_proofs

PRICE = 10**18
ASSISTANT_KEY = "0x" + keccak(text="deaios audit h1 assistant").hex()
ASSISTANT = Account.from_key(ASSISTANT_KEY).address

REVERTING_BUYER = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
/// A buyer that is a contract: forwards its owner's calls, refuses every ERC-721 it is sent.
contract RevertingBuyer {
    address private immutable owner = msg.sender;
    function exec(address target, bytes calldata data) external payable returns (bytes memory) {
        require(msg.sender == owner, "owner");
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) assembly { revert(add(ret, 32), mload(ret)) }
        return ret;
    }
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        revert("no tokens, thanks");
    }
    receive() external payable {}
}
"""


@pytest.fixture
def token(nft, market, creator, seller):
    token_id = mint(nft, creator, seller)
    nft.setApprovalForAll(market.address, True, sender=seller)
    return token_id


def listing_of(market, token, seller) -> int:
    return int(market.list(token, PRICE, now() + 1_000, sender=seller).decode_logs(market.Listed)[0].listingId)


def settle_or_refund(market, pid, proofs, seller, other) -> bool:
    """The seller settles; when that reverts, the deadline passes and anyone cancels (the buyer is
    refunded). Whether the settlement went through."""
    if testing.revert_name(market, "settle", pid, proofs, sender=seller) is None:
        market.settle(pid, proofs, sender=seller)
        return True
    time_travel(SETTLE_WINDOW + 1)
    market.cancelPurchase(pid, sender=other)
    return False


def assert_sale_completed(market, nft, token, buyer_address, seller, settled):
    """The attack failed: the buyer holds the token, the seller was paid, the buyer has no refund."""
    assert settled, "settle reverted: the buyer read the sealed key in the calldata and is refunded"
    assert nft.ownerOf(token) == buyer_address
    assert market.credits(seller) > 0 and market.credits(buyer_address) == 0


def test_h1a_reverting_receiver_cannot_undo_the_sale(chain, market, nft, token, seller, buyer, other):
    contract = testing.deploy_inline(REVERTING_BUYER, "RevertingBuyer", buyer.address)
    # a contract cannot sign: it names an assistant that signs its access proofs
    contract.functions.exec(nft.address, nft.delegateAccess.encode_input(ASSISTANT)).transact({"from": buyer.address})
    listing = listing_of(market, token, seller)
    tx = contract.functions.exec(market.address, market.buy.encode_input(listing)).transact(
        {"from": buyer.address, "value": PRICE}
    )
    chain.provider.web3.eth.wait_for_transaction_receipt(tx)
    pid = market.purchaseCount()
    assert market.getPurchase(pid).buyer == contract.address
    hashes = [bytes(d.dataHash) for d in nft.intelligentDatasOf(token)]
    proofs = proofs_for(context(nft, token, seller.address, contract.address), hashes, ASSISTANT_KEY)
    settled = settle_or_refund(market, pid, proofs, seller, other)
    assert_sale_completed(market, nft, token, contract.address, seller, settled)


def test_h1b_buyer_cannot_drop_its_assistant_before_settlement(market, nft, token, seller, buyer, other):
    nft.delegateAccess(ASSISTANT, sender=buyer)
    pid = int(market.buy(listing_of(market, token, seller), sender=buyer, value=PRICE)
              .decode_logs(market.PurchaseCreated)[0].purchaseId)
    proofs = token_proofs(nft, token, buyer, ASSISTANT_KEY)  # signed by the buyer's assistant
    # front-run: the buyer removes its assistant (if the token contract lets it)
    refused = testing.revert_name(nft, "delegateAccess", "0x" + "00" * 20, sender=buyer)
    if refused is None:
        nft.delegateAccess("0x" + "00" * 20, sender=buyer)
    assert refused == "ERC7857DelegationLocked"
    settled = settle_or_refund(market, pid, proofs, seller, other)
    assert_sale_completed(market, nft, token, buyer.address, seller, settled)


def test_h1c_copy_token_cannot_spend_the_proofs(market, nft, verifier, token, seller, buyer, other):
    pid = int(market.buy(listing_of(market, token, seller), sender=buyer, value=PRICE)
              .decode_logs(market.PurchaseCreated)[0].purchaseId)
    datas = [(d.dataDescription, bytes(d.dataHash)) for d in nft.intelligentDatasOf(token)]
    proofs = token_proofs(nft, token, buyer)
    # front-run: a token of the buyer's own with the same data hashes, moved with the captured proofs
    copy = int(nft.mint(datas, buyer.address, sender=buyer).decode_logs(nft.Transfer)[0].tokenId)
    refused = testing.revert_name(nft, "iTransferFrom", buyer.address, buyer.address, copy, proofs, sender=buyer,
                                  source=verifier)
    if refused is None:
        nft.iTransferFrom(buyer.address, buyer.address, copy, proofs, sender=buyer)
    assert refused == "ERC7857InvalidOwnershipProof"  # the oracle signed for the listed token only
    settled = settle_or_refund(market, pid, proofs, seller, other)
    assert_sale_completed(market, nft, token, buyer.address, seller, settled)
