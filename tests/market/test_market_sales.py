"""AgentMarket sales: listings, purchases, offers, settlement through iTransferFrom with oracle proofs,
royalties, cancellation and withdrawal; every custom error of these paths."""

from __future__ import annotations

import ape
import pytest
from market_helpers import (
    assert_reverts,
    SETTLE_WINDOW,
    ZERO_ADDRESS,
    mint,
    now,
    royalty_split,
    time_travel,
    token_proofs,
)

PRICE = 10**18
PENDING, SETTLED, CANCELLED = 1, 2, 3


@pytest.fixture
def token(nft, market, creator, seller):
    """A two-entry agent created by `creator`, owned by `seller`, who approved the market."""
    token_id = mint(nft, creator, seller, entries=2)
    nft.setApprovalForAll(market.address, True, sender=seller)
    return token_id


@pytest.fixture
def listing(market, token, seller):
    return list_token(market, token, seller, 1000)


@pytest.fixture
def purchase(market, listing, buyer):
    return buy(market, listing, buyer)


def list_token(market, token, seller, ttl=100) -> int:
    return int(market.list(token, PRICE, now() + ttl, sender=seller).decode_logs(market.Listed)[0].listingId)


def buy(market, listing, buyer) -> int:
    tx = market.buy(listing, sender=buyer, value=PRICE)
    return int(tx.decode_logs(market.PurchaseCreated)[0].purchaseId)


def make_offer(market, token, bidder, amount, ttl) -> int:
    tx = market.makeOffer(token, now() + ttl, sender=bidder, value=amount)
    return int(tx.decode_logs(market.OfferMade)[0].offerId)


def escrow_sum(market) -> int:
    parts = (market.escrowedOffers, market.escrowedPurchases, market.escrowedRentals, market.totalCredits)
    return sum(part() for part in parts)


def test_buy_then_settle_moves_token_and_credits_seller_and_creator(
    market, nft, token, listing, buyer, seller, creator, other
):
    tx = market.buy(listing, sender=buyer, value=PRICE)
    ev = tx.decode_logs(market.PurchaseCreated)[0]
    assert (ev.buyer, ev.seller, ev.tokenId, ev.price, ev.fromOffer) == (buyer, seller, token, PRICE, False)
    pid = int(ev.purchaseId)
    assert ev.deadline == now() + SETTLE_WINDOW
    assert market.getListing(listing).active is False
    assert market.escrowedPurchases() == PRICE == market.balance
    # anyone holding valid proofs for the buyer may settle (here: a third party)
    tx = market.settle(pid, token_proofs(nft, token, buyer), sender=other)
    proceeds, royalty = royalty_split(PRICE)
    ev = tx.decode_logs(market.PurchaseSettled)[0]
    assert (ev.sellerProceeds, ev.royaltyReceiver, ev.royalty) == (proceeds, creator, royalty)
    assert ev.sellerProceeds + ev.royalty == PRICE
    assert nft.ownerOf(token) == buyer
    assert market.getPurchase(pid).status == SETTLED
    assert (market.credits(seller), market.credits(creator)) == (proceeds, royalty)
    assert market.escrowedPurchases() == 0 and market.totalCredits() == PRICE == market.balance
    # no double settlement
    assert_reverts(market, "settle", pid, token_proofs(nft, token, buyer),
                   sender=seller, error="PurchaseNotPending", purchaseId=pid)
    # pull payments
    before = seller.balance
    tx = market.withdraw(seller.address, sender=seller)
    assert seller.balance == before + proceeds - tx.total_fees_paid
    market.withdraw(creator.address, sender=creator)
    assert market.balance == 0 == escrow_sum(market)
    assert_reverts(market, "withdraw", seller.address, sender=seller, error="NothingToWithdraw")


def test_list_errors(market, nft, token, seller, other, creator):
    assert_reverts(market, "list", token, 0, now() + 100, sender=seller, error="ZeroAmount")
    assert_reverts(market, "list", token, PRICE, now(), sender=seller, error="ExpiryInPast")
    assert_reverts(market, "list", token, PRICE, now() + 100,
                   sender=other, error="NotTokenOwner", tokenId=token, account=other)
    unapproved = mint(nft, creator, other)
    assert_reverts(market, "list", unapproved, PRICE, now() + 100,
                   sender=other, error="MarketNotApproved", tokenId=unapproved, owner=other)
    # a single-token approval is enough
    nft.approve(market.address, unapproved, sender=other)
    market.list(unapproved, PRICE, now() + 100, sender=other)


def test_relisting_replaces_the_listing_and_cancel(market, token, listing, seller, buyer, other):
    tx = market.list(token, 2 * PRICE, now() + 100, sender=seller)
    new = int(tx.decode_logs(market.Listed)[0].listingId)
    assert [int(e.listingId) for e in tx.decode_logs(market.ListingCancelled)] == [listing]
    assert market.listingOf(token) == new
    assert_reverts(market, "buy", listing,
                   sender=buyer, value=PRICE, error="ListingNotActive", listingId=listing)
    assert_reverts(market, "cancelListing", new, sender=other, error="Unauthorized", caller=other)
    market.cancelListing(new, sender=seller)
    assert market.listingOf(token) == 0
    assert_reverts(market, "cancelListing", new, sender=seller, error="ListingNotActive", listingId=new)


def test_buy_errors(market, nft, token, listing, seller, buyer, other):
    assert_reverts(market, "buy", listing,
                   sender=buyer, value=PRICE - 1, error="WrongPayment", sent=PRICE - 1, price=PRICE)
    assert_reverts(market, "buy", listing, sender=seller, value=PRICE, error="SelfTrade")
    assert_reverts(market, "buy", 999, sender=buyer, value=PRICE, error="ListingNotActive", listingId=999)
    nft.setApprovalForAll(market.address, False, sender=seller)
    assert_reverts(market, "buy", listing,
                   sender=buyer, value=PRICE, error="MarketNotApproved", tokenId=token, owner=seller)
    nft.setApprovalForAll(market.address, True, sender=seller)
    time_travel(1000)
    assert_reverts(market, "buy", listing, sender=buyer, value=PRICE, error="ListingExpired")


def test_stale_listing_after_direct_transfer(market, nft, token, listing, seller, buyer, other):
    """The seller moves the token itself (with its own proofs): the listing can no longer be bought."""
    nft.iTransferFrom(seller.address, other.address, token, token_proofs(nft, token, other), sender=seller)
    assert_reverts(market, "buy", listing,
                   sender=buyer, value=PRICE, error="NotTokenOwner", tokenId=token, account=seller)


def test_one_live_purchase_per_token(market, token, purchase, seller, buyer, other):
    tx = market.list(token, PRICE, now() + 10_000, sender=seller)
    again = int(tx.decode_logs(market.Listed)[0].listingId)
    assert_reverts(market, "buy", again,
                   sender=other, value=PRICE, error="PurchasePending", tokenId=token, purchaseId=purchase)
    time_travel(SETTLE_WINDOW + 1)  # the first purchase can no longer settle: a new one may start
    market.buy(again, sender=other, value=PRICE)


def test_settle_errors_leave_state_unchanged(market, nft, verifier, token, purchase, seller, buyer, other):
    # proofs for the wrong receiver: the oracle's signature names another transfer, nothing changes
    assert_reverts(market, "settle", purchase, token_proofs(nft, token, other), sender=seller,
                   error="ERC7857InvalidOwnershipProof", source=verifier)
    assert_reverts(market, "settle", purchase, [], sender=seller, error="ERC7857EmptyProof", source=nft)
    assert market.getPurchase(purchase).status == PENDING and market.totalCredits() == 0
    time_travel(SETTLE_WINDOW + 1)
    assert_reverts(market, "settle", purchase, token_proofs(nft, token, buyer),
                   sender=seller, error="SettleDeadlinePassed")
    assert_reverts(market, "settle", 999, [], sender=seller, error="PurchaseNotPending", purchaseId=999)


def test_cancel_purchase_paths(market, nft, token, purchase, seller, buyer, other):
    assert_reverts(market, "cancelPurchase", purchase,
                   sender=buyer, error="PurchaseNotCancellable", purchaseId=purchase)
    # the seller declines to deliver: the buyer is refunded at once
    market.cancelPurchase(purchase, sender=seller)
    assert market.credits(buyer) == PRICE and market.getPurchase(purchase).status == CANCELLED
    assert_reverts(market, "cancelPurchase", purchase,
                   sender=seller, error="PurchaseNotPending", purchaseId=purchase)
    market.withdraw(buyer.address, sender=buyer)
    assert market.balance == 0


def test_cancel_after_deadline_or_lost_approval_by_anyone(market, nft, token, seller, buyer, other):
    pid = buy(market, list_token(market, token, seller), buyer)
    nft.setApprovalForAll(market.address, False, sender=seller)  # the seller can no longer deliver
    market.cancelPurchase(pid, sender=other)
    nft.setApprovalForAll(market.address, True, sender=seller)
    pid = buy(market, list_token(market, token, seller), buyer)
    time_travel(SETTLE_WINDOW + 1)
    market.cancelPurchase(pid, sender=other)
    assert market.credits(buyer) == 2 * PRICE == market.balance


def test_offer_accept_settle(market, nft, token, listing, seller, buyer, creator):
    amount = PRICE // 2
    tx = market.makeOffer(token, now() + 500, sender=buyer, value=amount)
    oid = int(tx.decode_logs(market.OfferMade)[0].offerId)
    assert market.escrowedOffers() == amount == market.balance
    tx = market.acceptOffer(oid, sender=seller)
    pid = int(tx.decode_logs(market.OfferAccepted)[0].purchaseId)
    ev = tx.decode_logs(market.PurchaseCreated)[0]
    assert (ev.fromOffer, ev.sourceId, ev.price) == (True, oid, amount)
    assert market.getListing(listing).active is False  # the token's listing closes
    assert market.escrowedOffers() == 0 and market.escrowedPurchases() == amount
    market.settle(pid, token_proofs(nft, token, buyer), sender=seller)
    proceeds, royalty = royalty_split(amount)
    assert (market.credits(seller), market.credits(creator)) == (proceeds, royalty)
    assert nft.ownerOf(token) == buyer


def test_offer_errors_and_withdrawal(market, nft, token, seller, buyer, other):
    assert_reverts(market, "makeOffer", token, now() + 500, sender=buyer, value=0, error="ZeroAmount")
    assert_reverts(market, "makeOffer", token, now(), sender=buyer, value=1, error="ExpiryInPast")
    assert_reverts(market, "makeOffer", token, now() + 500, sender=seller, value=1, error="SelfTrade")
    oid = make_offer(market, token, buyer, 100, 500)
    assert_reverts(market, "acceptOffer", oid,
                   sender=other, error="NotTokenOwner", tokenId=token, account=other)
    assert_reverts(market, "withdrawOffer", oid, sender=other, error="Unauthorized", caller=other)
    market.withdrawOffer(oid, sender=buyer)
    assert market.credits(buyer) == 100 and market.escrowedOffers() == 0
    assert_reverts(market, "acceptOffer", oid, sender=seller, error="OfferNotOpen", offerId=oid)
    assert_reverts(market, "withdrawOffer", oid, sender=buyer, error="OfferNotOpen", offerId=oid)


def test_expired_offer_is_reclaimable_by_anyone(market, token, seller, buyer, other):
    oid = make_offer(market, token, buyer, 100, 50)
    time_travel(60)
    assert_reverts(market, "acceptOffer", oid, sender=seller, error="OfferExpired")
    market.withdrawOffer(oid, sender=other)
    assert market.credits(buyer) == 100


def test_accept_own_offer_is_self_trade(market, nft, token, seller, buyer, other):
    """An offer made before the bidder became the owner cannot be accepted by that bidder."""
    oid = make_offer(market, token, buyer, 100, 500)
    nft.iTransferFrom(seller.address, buyer.address, token, token_proofs(nft, token, buyer), sender=seller)
    nft.setApprovalForAll(market.address, True, sender=buyer)
    assert_reverts(market, "acceptOffer", oid, sender=buyer, error="SelfTrade")


def test_withdraw_errors_and_direct_payments(market, owner, token, purchase, seller, buyer):
    market.cancelPurchase(purchase, sender=seller)
    assert_reverts(market, "withdraw", ZERO_ADDRESS, sender=buyer, error="ZeroAddress")
    # the market itself refuses plain payments
    assert_reverts(market, "withdraw", market.address, sender=buyer, error="TransferFailed")
    with ape.reverts(market.DirectPaymentsDisabled):
        owner.transfer(market.address, 1)


def test_pause_stops_new_business_but_not_exits(market, owner, nft, token, purchase, seller, buyer, other):
    oid = make_offer(market, token, other, 7, 500)
    assert_reverts(market, "pause", sender=other, error="AccessControlUnauthorizedAccount")
    market.pause(sender=owner)
    assert_reverts(market, "list", token, PRICE, now() + 100, sender=seller, error="EnforcedPause")
    assert_reverts(market, "makeOffer", token, now() + 500, sender=other, value=1, error="EnforcedPause")
    market.settle(purchase, token_proofs(nft, token, buyer), sender=seller)
    market.withdrawOffer(oid, sender=other)
    market.withdraw(seller.address, sender=seller)
    market.unpause(sender=owner)


def test_settle_window_admin(market, owner, other):
    assert_reverts(market, "setSettleWindow", 59, sender=owner, error="SettleWindowOutOfRange")
    assert_reverts(market, "setSettleWindow", 120, sender=other, error="AccessControlUnauthorizedAccount")
    tx = market.setSettleWindow(120, sender=owner)
    assert tx.decode_logs(market.SettleWindowUpdated)[0].newWindow == 120
    assert market.settleWindow() == 120


def test_constructor_checks_and_royalty_detection(project, owner, market, ledger):
    assert market.royaltiesSupported() is True
    no_royalties = project.AgentMarket.deploy(ledger.address, owner.address, 3600, sender=owner)
    assert no_royalties.royaltiesSupported() is False  # an ERC-165 contract without ERC-2981: no royalty
    with ape.reverts(market.ZeroAddress):
        project.AgentMarket.deploy(ZERO_ADDRESS, owner.address, 3600, sender=owner)
    with ape.reverts(market.SettleWindowOutOfRange):
        project.AgentMarket.deploy(ledger.address, owner.address, 31 * 86_400, sender=owner)
