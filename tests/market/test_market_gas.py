"""Gas of the market's main transactions (printed with -s; bounds catch regressions)."""

from __future__ import annotations

import json

from market_helpers import mint, now, time_travel, token_proofs

#: measured + ~15 % (the measured values are in docs/market.md)
BOUNDS = {
    "list": 175_000,
    "buy": 275_000,
    "makeOffer": 170_000,
    "acceptOffer": 240_000,
    "settle (1 data entry)": 335_000,
    "settle (4 data entries)": 590_000,
    "withdraw": 45_000,
    "listForRent": 150_000,
    "rent": 320_000,
    "endRental": 100_000,
}


def test_gas(market, nft, creator, seller, buyer, other):
    gas = {}
    one, four = mint(nft, creator, seller, 1), mint(nft, creator, seller, 4)
    nft.setApprovalForAll(market.address, True, sender=seller)
    tx = market.list(one, 1000, now() + 1000, sender=seller)
    gas["list"] = tx.gas_used
    tx = market.buy(tx.decode_logs(market.Listed)[0].listingId, sender=buyer, value=1000)
    gas["buy"] = tx.gas_used
    tx = market.settle(tx.decode_logs(market.PurchaseCreated)[0].purchaseId, token_proofs(nft, one, buyer),
                       sender=seller)
    gas["settle (1 data entry)"] = tx.gas_used
    tx = market.makeOffer(four, now() + 1000, sender=buyer, value=1000)
    gas["makeOffer"] = tx.gas_used
    tx = market.acceptOffer(tx.decode_logs(market.OfferMade)[0].offerId, sender=seller)
    gas["acceptOffer"] = tx.gas_used
    tx = market.settle(tx.decode_logs(market.PurchaseCreated)[0].purchaseId, token_proofs(nft, four, buyer),
                       sender=seller)
    gas["settle (4 data entries)"] = tx.gas_used
    gas["withdraw"] = market.withdraw(seller.address, sender=seller).gas_used
    token = mint(nft, creator, seller)
    tx = market.listForRent(token, 10, 100, 5, now() + 1000, sender=seller)
    gas["listForRent"] = tx.gas_used
    tx = market.rent(tx.decode_logs(market.RentalTermsListed)[0].termsId, 2, sender=other, value=20)
    gas["rent"] = tx.gas_used
    time_travel(300)
    gas["endRental"] = market.endRental(tx.decode_logs(market.Rented)[0].rentalId, sender=buyer).gas_used
    print("\n" + json.dumps({"market_gas": gas}))
    for name, bound in BOUNDS.items():
        assert gas[name] <= bound, (name, gas[name])
