"""Audit lows in the marketplace:

* `ComputeBundleMarket` listings emptied for free: the buyer of a provider's whole supply got the payment into
  its own ComputeLedger ledger, from which `refund` withdraws at once, so the listing was sold out at no cost;
* the seller `update`s the token's data while it is listed or sold (after the buyer paid), and delivers
  something else than what the buyer paid for.

Fixed: bundles are paid into the buyer's sub-account with the provider (`ComputeLedger.depositToAccount`), so
the money comes back only through the refund lock; the market records the token's data version (bumped by
every `update`) in listings, offers and purchases, and refuses to sell, accept or settle after a change.
"""

from __future__ import annotations

import os

import pytest
from deaios import testing
from market_helpers import context, mint, now, proofs_for

PRICE = 10**18
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def provider(registry, other):
    params = (0, "qwen", "http://127.0.0.1:1", "H100", 1, 1024, 1, 1, "none", ZERO_ADDRESS, "")
    registry.addOrUpdateService(params, ZERO_ADDRESS, sender=other, value=10**17)
    return other


def test_emptying_a_bundle_listing_commits_the_money(bundles, ledger, provider, buyer):
    lid = int(bundles.listBundle(5_000, 10, now() + 1000, "10 x 1M tokens", sender=provider)
              .decode_logs(bundles.BundleListed)[0].listingId)
    bundles.buyBundles(lid, 10, sender=buyer, value=50_000)
    assert bundles.getBundle(lid).active is False  # sold out: nobody else can buy
    # the attack: take the money straight back; it fails when the purchase is committed to the provider
    assert testing.revert_name(ledger, "refund", 50_000, sender=buyer) is not None, "refunded at once"
    assert ledger.getAccount(buyer, provider).balance == 50_000
    # it comes back, but only after the lock (meanwhile the provider may settle what it served)
    ledger.requestRefund(provider, 50_000, sender=buyer)
    assert testing.revert_name(ledger, "collectRefund", provider, sender=buyer) == "RefundLocked"


@pytest.fixture
def token(nft, market, creator, seller):
    token_id = mint(nft, creator, seller)
    nft.setApprovalForAll(market.address, True, sender=seller)
    return token_id


def junk_update(nft, token, seller) -> list[bytes]:
    junk = [os.urandom(32)]
    nft.update(token, [("agent part 0", junk[0])], sender=seller)
    return junk


def test_update_after_purchase_cannot_be_settled(market, nft, token, seller, buyer):
    lid = int(market.list(token, PRICE, now() + 1000, sender=seller).decode_logs(market.Listed)[0].listingId)
    pid = int(market.buy(lid, sender=buyer, value=PRICE).decode_logs(market.PurchaseCreated)[0].purchaseId)
    junk = junk_update(nft, token, seller)
    # the oracle re-encrypts whatever the token now holds: settling delivers junk for the buyer's money
    proofs = proofs_for(context(nft, token, seller.address, buyer.address), junk, buyer.private_key)
    assert testing.revert_name(market, "settle", pid, proofs, sender=seller) is not None, \
        "settled with data the buyer never saw"
    testing.assert_reverts(market, "settle", pid, proofs, sender=seller, error="TokenDataChanged", tokenId=token,
                           expectedVersion=0, currentVersion=1)
    market.cancelPurchase(pid, sender=seller)  # the seller can only give the money back
    assert market.credits(buyer) == PRICE


def test_update_while_listed_cannot_be_bought(market, nft, token, seller, buyer):
    lid = int(market.list(token, PRICE, now() + 1000, sender=seller).decode_logs(market.Listed)[0].listingId)
    junk_update(nft, token, seller)
    assert testing.revert_name(market, "buy", lid, sender=buyer, value=PRICE) is not None, \
        "bought a listing whose data changed"
    assert testing.revert_name(market, "buy", lid, sender=buyer, value=PRICE) == "TokenDataChanged"
    # an offer made before the update cannot be accepted either; one made after can
    old = int(market.makeOffer(token, now() + 1000, sender=buyer, value=PRICE).decode_logs(market.OfferMade)[0].offerId)
    junk_update(nft, token, seller)
    assert testing.revert_name(market, "acceptOffer", old, sender=seller) == "TokenDataChanged"
    new = int(market.makeOffer(token, now() + 1000, sender=buyer, value=PRICE).decode_logs(market.OfferMade)[0].offerId)
    market.acceptOffer(new, sender=seller)
