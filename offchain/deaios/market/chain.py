"""Client side of the market contracts: AgentMarket (INFT sales, offers, settlement, rentals) and
ComputeBundleMarket, through web3 with a local private key (web3's signing middleware), reverts decoded
into the contracts' custom error names.

Addresses come from a stack.json's `contracts` (keys `agent_market`, `compute_bundles`) or a
`deployments/<network>-market.json` written by `ape run deploy_market`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from deaios.chain_time import chain_now, connect
from deaios.eth import InsufficientFunds, TxSender
from deaios.market.abi import ABIS, load_abis

log = logging.getLogger(__name__)

OFFER_STATUS = ("none", "open", "accepted", "withdrawn")
PURCHASE_STATUS = ("none", "pending", "settled", "cancelled")
RENTAL_STATUS = ("none", "active", "ended")
#: Seconds before a purchase's deadline from which `settle` is refused (see MarketChain.settle).
SETTLE_MARGIN = 30


class MarketError(RuntimeError):
    """The chain rejected a call (the message names the custom error) or could not be reached."""


def explain_revert(data: str | bytes | None) -> str:
    """'Name(arg=value, …)' for revert data of a known custom error, else the raw selector."""
    return ABIS.decode_error(data)


@dataclass(frozen=True)
class MarketAddresses:
    agent_market: str
    compute_bundles: str | None = None

    @classmethod
    def from_mapping(cls, d: dict[str, Any]) -> MarketAddresses:
        market = d.get("agent_market")
        if not market:
            raise MarketError(
                "no agent_market address in this deployment (deploy it with `ape run deploy_market`)"
            )
        bundles = d.get("compute_bundles")
        return cls(to_checksum_address(market), to_checksum_address(bundles) if bundles else None)

    @classmethod
    def from_file(cls, path: Path) -> MarketAddresses:
        return cls.from_mapping(json.loads(Path(path).read_text()))


@dataclass
class ListingView:
    id: int
    seller: str
    token_id: int
    price: int
    expiry: int
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"kind": "listing", **asdict(self)}


@dataclass
class OfferView:
    id: int
    buyer: str
    token_id: int
    amount: int
    expiry: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "offer", **asdict(self)}


@dataclass
class PurchaseView:
    id: int
    buyer: str
    seller: str
    token_id: int
    price: int
    deadline: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "purchase", **asdict(self)}


class MarketChain:
    """The market as seen by one account (`private_key`; reads work without one)."""

    def __init__(self, rpc: str, addresses: MarketAddresses, private_key: str | None = None) -> None:
        self.w3 = connect(rpc)
        abis = load_abis()
        self.addresses = addresses
        self.market = self.w3.eth.contract(address=addresses.agent_market, abi=abis["AgentMarket"])
        self.bundles = (
            self.w3.eth.contract(address=addresses.compute_bundles, abi=abis["ComputeBundleMarket"])
            if addresses.compute_bundles
            else None
        )
        self.account = Account.from_key(private_key) if private_key else None
        self._sender = TxSender(self.w3, private_key, gas_margin=1.0, gas_headroom=0) if private_key else None
        self._nft: Any = None

    @property
    def address(self) -> str:
        if self.account is None:
            raise MarketError("this command needs a private key")
        return self.account.address

    @property
    def nft(self) -> Any:
        if self._nft is None:
            nft = to_checksum_address(self._call(self.market.functions.nft()))
            abis = load_abis()
            self._nft = self.w3.eth.contract(address=nft, abi=abis["IERC7857"] + abis["IERC7857Authorize"])
        return self._nft

    # --- plumbing -----------------------------------------------------------------------------------
    def _call(self, fn: Any) -> Any:
        try:
            return fn.call({"from": self.account.address} if self.account else {})
        except ContractCustomError as exc:
            raise MarketError(explain_revert(exc.data)) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise MarketError(f"call failed: {exc}") from exc

    def _send(self, fn: Any, value: int = 0) -> Any:
        """Send `fn` from the account (the shared `deaios.eth.TxSender`: gas estimated, so a revert surfaces
        before sending; the balance checked); the receipt."""
        self.address  # noqa: B018 - a MarketError without a key
        try:
            tx_hash, receipt = self._sender.send_call(fn, value)  # type: ignore[union-attr]
        except ContractCustomError as exc:
            raise MarketError(explain_revert(exc.data)) from None
        except InsufficientFunds as exc:
            raise MarketError(exc.message) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise MarketError(f"transaction failed: {exc}") from exc
        if receipt["status"] != 1:
            raise MarketError(f"transaction 0x{tx_hash.hex()} reverted")
        log.info("%s: tx 0x%s, gas %d", fn.fn_name, tx_hash.hex(), receipt["gasUsed"])
        return receipt

    def _event_arg(self, receipt: Any, event: str, arg: str, contract: Any = None) -> Any:
        from web3.logs import DISCARD

        events = getattr((contract or self.market).events, event)().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise MarketError(f"no {event} event in transaction {receipt['transactionHash'].hex()}")
        return events[0].args[arg]

    # --- reads --------------------------------------------------------------------------------------
    def listing(self, listing_id: int) -> ListingView:
        seller, expiry, active, token_id, price, _ = self._call(self.market.functions.getListing(listing_id))
        return ListingView(listing_id, seller, token_id, price, expiry, active)

    def offer(self, offer_id: int) -> OfferView:
        buyer, expiry, status, token_id, amount, _ = self._call(self.market.functions.getOffer(offer_id))
        return OfferView(offer_id, buyer, token_id, amount, expiry, OFFER_STATUS[status])

    def purchase(self, purchase_id: int) -> PurchaseView:
        p = self._call(self.market.functions.getPurchase(purchase_id))
        buyer, deadline, status, seller, token_id, price, _ = p
        return PurchaseView(purchase_id, buyer, seller, token_id, price, deadline, PURCHASE_STATUS[status])

    def listings(self, include_inactive: bool = False) -> list[ListingView]:
        """Open, unexpired listings (every listing with `include_inactive`)."""
        count = self._call(self.market.functions.listingCount())
        out = [self.listing(i) for i in range(1, count + 1)]
        if include_inactive:
            return out
        now = self.timestamp()
        return [x for x in out if x.active and x.expiry > now]

    def offers(self, include_closed: bool = False) -> list[OfferView]:
        count = self._call(self.market.functions.offerCount())
        out = [self.offer(i) for i in range(1, count + 1)]
        return out if include_closed else [x for x in out if x.status == "open"]

    def purchases(self, include_closed: bool = False) -> list[PurchaseView]:
        count = self._call(self.market.functions.purchaseCount())
        out = [self.purchase(i) for i in range(1, count + 1)]
        return out if include_closed else [x for x in out if x.status == "pending"]

    def credits(self, account: str) -> int:
        return int(self._call(self.market.functions.credits(to_checksum_address(account))))

    def timestamp(self) -> int:
        return chain_now(self.w3)

    # --- sales --------------------------------------------------------------------------------------
    def approve_market(self) -> bool:
        """setApprovalForAll(market, true) on the token contract unless already approved; whether it sent."""
        market = self.market.address
        if self._call(self.nft.functions.isApprovedForAll(self.address, market)):
            return False
        self._send(self.nft.functions.setApprovalForAll(market, True))
        return True

    def list_item(self, token_id: int, price: int, expiry: int) -> int:
        self.approve_market()
        receipt = self._send(self.market.functions.list(token_id, price, expiry))
        return int(self._event_arg(receipt, "Listed", "listingId"))

    def cancel_listing(self, listing_id: int) -> None:
        self._send(self.market.functions.cancelListing(listing_id))

    def buy(self, listing_id: int) -> int:
        price = self.listing(listing_id).price
        receipt = self._send(self.market.functions.buy(listing_id), value=price)
        return int(self._event_arg(receipt, "PurchaseCreated", "purchaseId"))

    def make_offer(self, token_id: int, amount: int, expiry: int) -> int:
        receipt = self._send(self.market.functions.makeOffer(token_id, expiry), value=amount)
        return int(self._event_arg(receipt, "OfferMade", "offerId"))

    def withdraw_offer(self, offer_id: int) -> None:
        self._send(self.market.functions.withdrawOffer(offer_id))

    def accept_offer(self, offer_id: int) -> int:
        self.approve_market()
        receipt = self._send(self.market.functions.acceptOffer(offer_id))
        return int(self._event_arg(receipt, "PurchaseCreated", "purchaseId"))

    def settle(self, purchase_id: int, proofs: list[Any]) -> dict[str, Any]:
        """Settle with ABI-shaped TransferValidityProof tuples; the PurchaseSettled event's fields.

        The transaction publishes the buyer's sealed keys: it is simulated first (a revert is reported without
        sending anything) and refused when it might be mined after the purchase's deadline, when it would
        revert and let the buyer be refunded after reading the keys."""
        deadline = self.purchase(purchase_id).deadline
        if deadline - self.timestamp() < SETTLE_MARGIN:
            raise MarketError(f"purchase {purchase_id} is due at {deadline}: less than {SETTLE_MARGIN} s left "
                              "to be mined before it, settling now could reveal the keys and still fail")
        receipt = self._send(self.market.functions.settle(purchase_id, proofs))
        from web3.logs import DISCARD

        ev = self.market.events.PurchaseSettled().process_receipt(receipt, errors=DISCARD)[0].args
        return {
            "purchase": purchase_id,
            "sellerProceeds": ev.sellerProceeds,
            "royaltyReceiver": ev.royaltyReceiver,
            "royalty": ev.royalty,
            "txHash": receipt["transactionHash"].to_0x_hex(),
            "gasUsed": receipt["gasUsed"],
        }

    def cancel_purchase(self, purchase_id: int) -> None:
        self._send(self.market.functions.cancelPurchase(purchase_id))

    def withdraw(self, to: str | None = None) -> int:
        receipt = self._send(self.market.functions.withdraw(to_checksum_address(to or self.address)))
        return int(self._event_arg(receipt, "Withdrawn", "amount"))

    # --- rentals ------------------------------------------------------------------------------------
    def list_for_rent(
        self, token_id: int, price_per_period: int, period: int, max_periods: int, expiry: int
    ) -> int:
        self.approve_market()
        fn = self.market.functions.listForRent(token_id, price_per_period, period, max_periods, expiry)
        return int(self._event_arg(self._send(fn), "RentalTermsListed", "termsId"))

    def rent(self, terms_id: int, periods: int) -> int:
        _, _, _, _, price_per_period, _, _ = self._call(self.market.functions.getRentalTerms(terms_id))
        receipt = self._send(self.market.functions.rent(terms_id, periods), value=price_per_period * periods)
        return int(self._event_arg(receipt, "Rented", "rentalId"))

    def end_rental(self, rental_id: int) -> None:
        self._send(self.market.functions.endRental(rental_id))

    # --- compute bundles ----------------------------------------------------------------------------
    def _bundle_market(self) -> Any:
        if self.bundles is None:
            raise MarketError("no compute_bundles address in this deployment")
        return self.bundles

    def list_bundle(self, price: int, supply: int, expiry: int, terms: str) -> int:
        b = self._bundle_market()
        receipt = self._send(b.functions.listBundle(price, supply, expiry, terms))
        return int(self._event_arg(receipt, "BundleListed", "listingId", b))

    def buy_bundles(self, listing_id: int, count: int) -> int:
        b = self._bundle_market()
        price = self._call(b.functions.getBundle(listing_id))[3]
        receipt = self._send(b.functions.buyBundles(listing_id, count), value=price * count)
        return int(self._event_arg(receipt, "BundlesPurchased", "amount", b))

    def bundles_listed(self) -> list[dict[str, Any]]:
        b = self._bundle_market()
        out = []
        for i in range(1, self._call(b.functions.listingCount()) + 1):
            provider, expiry, active, price, supply, sold, terms = self._call(b.functions.getBundle(i))
            if active:
                out.append({"kind": "bundle", "id": i, "provider": provider, "price": price, "supply": supply,
                            "sold": sold, "expiry": expiry, "terms": terms})
        return out
