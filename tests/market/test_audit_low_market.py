"""Audit lows in the marketplace:

* `ComputeBundleMarket` listings emptied for free: the buyer of a provider's whole supply got the payment into
  its own ComputeLedger ledger, from which `refund` withdraws at once, so the listing was sold out at no cost;
* the seller `update`s the token's data while it is listed or sold (after the buyer paid), and delivers
  something else than what the buyer paid for.
"""

from __future__ import annotations

import os

import pytest
from deaios import testing
from market_helpers import mint, now, proofs_for

PRICE = 10**18
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def provider(registry, other):
    params = (0, "qwen", "http://127.0.0.1:1", "H100", 1, 1024, 1, 1, "none", ZERO_ADDRESS, "")
    registry.addOrUpdateService(params, ZERO_ADDRESS, sender=other, value=10**17)
    return other


@pytest.mark.xfail(strict=True, reason="exploit low: a bundle listing is emptied and the money taken back at once")
def test_emptying_a_bundle_listing_commits_the_money(bundles, ledger, provider, buyer):
    lid = int(bundles.listBundle(5_000, 10, now() + 1000, "10 x 1M tokens", sender=provider)
              .decode_logs(bundles.BundleListed)[0].listingId)
    bundles.buyBundles(lid, 10, sender=buyer, value=50_000)
    assert bundles.getBundle(lid).active is False  # sold out: nobody else can buy
    # the attack: take the money straight back; it fails when the purchase is committed to the provider
    assert testing.revert_name(ledger, "refund", 50_000, sender=buyer) is not None, "refunded at once"
    assert ledger.getAccount(buyer, provider).balance == 50_000


@pytest.fixture
def token(nft, market, creator, seller):
    token_id = mint(nft, creator, seller)
    nft.setApprovalForAll(market.address, True, sender=seller)
    return token_id


def junk_update(nft, token, seller) -> list[bytes]:
    junk = [os.urandom(32)]
    nft.update(token, [("agent part 0", junk[0])], sender=seller)
    return junk


@pytest.mark.xfail(strict=True, reason="exploit low: the seller updates the data after the buyer paid")
def test_update_after_purchase_cannot_be_settled(market, nft, token, seller, buyer):
    lid = int(market.list(token, PRICE, now() + 1000, sender=seller).decode_logs(market.Listed)[0].listingId)
    pid = int(market.buy(lid, sender=buyer, value=PRICE).decode_logs(market.PurchaseCreated)[0].purchaseId)
    junk = junk_update(nft, token, seller)
    # the oracle re-encrypts whatever the token now holds: settling delivers junk for the buyer's money
    assert testing.revert_name(market, "settle", pid, proofs_for(junk, buyer.private_key), sender=seller) \
        is not None, "settled with data the buyer never saw"


@pytest.mark.xfail(strict=True, reason="exploit low: the seller updates the data of a listed token")
def test_update_while_listed_cannot_be_bought(market, nft, token, seller, buyer):
    lid = int(market.list(token, PRICE, now() + 1000, sender=seller).decode_logs(market.Listed)[0].listingId)
    junk_update(nft, token, seller)
    assert testing.revert_name(market, "buy", lid, sender=buyer, value=PRICE) is not None, \
        "bought a listing whose data changed"
