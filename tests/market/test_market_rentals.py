"""AgentMarket rentals (usage authorization for a paid time, ended permissionlessly) and ComputeBundleMarket
(bundles paid into the buyer's ComputeLedger sub-account with the provider)."""

from __future__ import annotations

import ape
import pytest
from market_helpers import assert_reverts, mint, now, time_travel, token_proofs

PERIOD = 100
PRICE = 1_000  # per period


@pytest.fixture
def token(nft, market, creator, seller):
    token_id = mint(nft, creator, seller)
    nft.setApprovalForAll(market.address, True, sender=seller)
    return token_id


@pytest.fixture
def terms(market, token, seller):
    tx = market.listForRent(token, PRICE, PERIOD, 5, now() + 10_000, sender=seller)
    return int(tx.decode_logs(market.RentalTermsListed)[0].termsId)


def rent(market, terms, renter, periods=2):
    tx = market.rent(terms, periods, sender=renter, value=PRICE * periods)
    return int(tx.decode_logs(market.Rented)[0].rentalId), tx


def test_rent_authorizes_and_expiry_is_ended_by_anyone(market, nft, token, terms, seller, buyer, other):
    rid, tx = rent(market, terms, buyer)
    assert nft.isAuthorizedUser(token, buyer) is True
    assert market.escrowedRentals() == 2 * PRICE == market.balance
    assert market.rentalOf(token, buyer) == rid
    assert_reverts(market, "rent", terms, 1,
                   sender=buyer, value=PRICE,
                   error="AlreadyRenting", tokenId=token, renter=buyer, rentalId=rid)
    assert_reverts(market, "endRental", rid, sender=other, error="RentalNotOver")
    time_travel(2 * PERIOD)
    tx = market.endRental(rid, sender=other)
    ev = tx.decode_logs(market.RentalEnded)[0]
    assert (ev.toLessor, ev.toRenter, ev.revoked) == (2 * PRICE, 0, True)
    assert nft.isAuthorizedUser(token, buyer) is False
    assert market.credits(seller) == 2 * PRICE and market.escrowedRentals() == 0
    assert_reverts(market, "endRental", rid, sender=other, error="RentalNotActive", rentalId=rid)
    rent(market, terms, buyer, 1)  # may rent again once ended


def test_lessor_ends_early_pro_rata(market, nft, token, terms, seller, buyer):
    rid, tx = rent(market, terms, buyer, 4)
    start = tx.timestamp
    time_travel(PERIOD)
    tx = market.endRental(rid, sender=seller)
    used = 4 * PRICE * (tx.timestamp - start) // (4 * PERIOD)
    ev = tx.decode_logs(market.RentalEnded)[0]
    assert (ev.toLessor, ev.toRenter) == (used, 4 * PRICE - used)
    assert market.credits(buyer) == 4 * PRICE - used and market.credits(seller) == used
    assert nft.isAuthorizedUser(token, buyer) is False


def test_broken_rental_refunds_the_renter(market, nft, token, terms, seller, buyer, other):
    rid, _ = rent(market, terms, buyer, 3)
    # the lessor revokes the renter directly: anyone may end the rental, the unused time goes back
    nft.revokeAuthorization(token, buyer, sender=seller)
    tx = market.endRental(rid, sender=other)
    ev = tx.decode_logs(market.RentalEnded)[0]
    assert not ev.revoked and ev.toRenter > 0 and ev.toLessor + ev.toRenter == 3 * PRICE
    # the lessor sells the token: authorizations are cleared, the rental is broken too
    rid, _ = rent(market, terms, other, 2)
    nft.iTransferFrom(seller.address, buyer.address, token, token_proofs(nft, token, buyer), sender=seller)
    ev = market.endRental(rid, sender=other).decode_logs(market.RentalEnded)[0]
    assert ev.toRenter > 0 and ev.toLessor + ev.toRenter == 2 * PRICE
    assert market.escrowedRentals() == 0 and market.totalCredits() == market.balance == 5 * PRICE


def test_rent_errors(market, nft, token, terms, seller, buyer, other):
    assert_reverts(market, "rent", terms, 0,
                   sender=buyer, value=0, error="BadPeriods", periods=0, maxPeriods=5)
    assert_reverts(market, "rent", terms, 6,
                   sender=buyer, value=6 * PRICE, error="BadPeriods", periods=6, maxPeriods=5)
    assert_reverts(market, "rent", terms, 2,
                   sender=buyer, value=PRICE, error="WrongPayment", sent=PRICE, price=2 * PRICE)
    assert_reverts(market, "rent", terms, 1, sender=seller, value=PRICE, error="SelfTrade")
    assert_reverts(market, "listForRent", token, 0, PERIOD, 5, now() + 100, sender=seller, error="ZeroAmount")
    assert_reverts(market, "listForRent", token, PRICE, PERIOD, 5, now() + 100,
                   sender=other, error="NotTokenOwner", tokenId=token, account=other)
    assert_reverts(market, "cancelRentalTerms", terms, sender=other, error="Unauthorized", caller=other)
    market.cancelRentalTerms(terms, sender=seller)
    assert_reverts(market, "rent", terms, 1,
                   sender=buyer, value=PRICE, error="RentalTermsNotActive", termsId=terms)
    short = market.listForRent(token, PRICE, PERIOD, 5, now() + 50, sender=seller)
    short_id = int(short.decode_logs(market.RentalTermsListed)[0].termsId)
    time_travel(60)
    assert_reverts(market, "rent", short_id, 1, sender=buyer, value=PRICE, error="RentalTermsExpired")


# --- compute bundles ------------------------------------------------------------------------------------
@pytest.fixture
def provider(registry, other):
    params = (0, "qwen", "http://127.0.0.1:1", "H100", 1, 1024, 1, 1, "none", "0x" + "00" * 20, "")
    registry.addOrUpdateService(params, "0x" + "00" * 20, sender=other, value=10**17)
    return other


def test_bundle_purchase_deposits_into_the_buyers_sub_account(bundles, ledger, provider, buyer):
    tx = bundles.listBundle(5_000, 3, now() + 1000, "100k tokens of qwen", sender=provider)
    lid = int(tx.decode_logs(bundles.BundleListed)[0].listingId)
    tx = bundles.buyBundles(lid, 2, sender=buyer, value=10_000)
    ev = tx.decode_logs(bundles.BundlesPurchased)[0]
    args = ev.event_arguments  # (`ev.provider` is ape's chain provider)
    assert (args["buyer"], args["provider"], args["count"], args["amount"]) == (buyer, provider, 2, 10_000)
    assert ledger.getLedger(buyer)[0] == 0 and ledger.getAccount(buyer, provider).balance == 10_000
    assert tx.decode_logs(ledger.AccountDeposited)[0].payer == bundles.address
    assert bundles.balance == 0
    assert_reverts(bundles, "buyBundles", lid, 2,
                   sender=buyer, value=10_000, error="SoldOut", listingId=lid, requested=2, left=1)
    bundles.buyBundles(lid, 1, sender=buyer, value=5_000)
    assert bundles.getBundle(lid).active is False  # sold out
    assert_reverts(bundles, "buyBundles", lid, 1,
                   sender=buyer, value=5_000, error="BundleNotActive", listingId=lid)


def test_bundle_errors(bundles, registry, provider, buyer):
    assert_reverts(bundles, "listBundle", 5_000, 3, now() + 1000, "",
                   sender=buyer, error="NoActiveService", provider=buyer)
    assert_reverts(bundles, "listBundle", 0, 3, now() + 1000, "", sender=provider, error="ZeroAmount")
    assert_reverts(bundles, "listBundle", 5_000, 3, now(), "", sender=provider, error="ExpiryInPast")
    assert_reverts(bundles, "listBundle", 5_000, 3, now() + 1000, "x" * 257,
                   sender=provider, error="TermsTooLong", length=257, max=256)
    tx = bundles.listBundle(5_000, 3, now() + 100, "", sender=provider)
    lid = int(tx.decode_logs(bundles.BundleListed)[0].listingId)
    assert_reverts(bundles, "buyBundles", lid, 1,
                   sender=buyer, value=1, error="WrongPayment", sent=1, price=5_000)
    assert_reverts(bundles, "buyBundles", lid, 0, sender=buyer, value=0, error="ZeroAmount")
    assert_reverts(bundles, "cancelBundle", lid, sender=buyer, error="Unauthorized", caller=buyer)
    registry.setServiceActive(False, "0x" + "00" * 20, sender=provider)
    assert_reverts(bundles, "buyBundles", lid, 1,
                   sender=buyer, value=5_000, error="NoActiveService", provider=provider)
    time_travel(200)
    assert_reverts(bundles, "buyBundles", lid, 1, sender=buyer, value=5_000, error="BundleExpired")
    bundles.cancelBundle(lid, sender=provider)
    with ape.reverts(bundles.DirectPaymentsDisabled):
        buyer.transfer(bundles.address, 1)


def test_rental_end_overflow_reverts(market, token, seller, buyer):
    """An end time beyond uint64 reverts (it would otherwise wrap and make the rental unendable)."""
    tx = market.listForRent(token, 1, 2**64 - 1, 2, now() + 100, sender=seller)
    terms = int(tx.decode_logs(market.RentalTermsListed)[0].termsId)
    assert_reverts(market, "rent", terms, 2, sender=buyer, value=2, error="SafeCastOverflowedUintDowncast")
