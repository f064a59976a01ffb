"""`deaios market ...`: the AI marketplace from the command line (INFT sales, offers, settlement, rentals,
compute bundles).

Every command prints JSON lines on stdout. The chain and contracts come from the stack (`--stack`, else
$DEAIOS_STACK, else the last `deaios up`; addresses under `contracts.agent_market` / `compute_bundles`), or
from `--rpc` + `--deployment deployments/<network>-market.json`. The key is `--key` (or $DEAIOS_KEY), else the
stack's dev key. Amounts are wei or a number with a unit (`0.5ether`, `10gwei`); durations are seconds or a
number with a unit (`90s`, `30m`, `12h`, `7d`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deaios.cli_context import ClientContext, ClientGroup, client_context, client_options
from deaios.errors import UserError
from deaios.units import AMOUNT

DEPLOYMENT_HELP = "deployments/<network>-market.json written by `ape run deploy_market`."

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> int:
    """Seconds from '3600', '90s', '30m', '12h', '7d'; a UserError otherwise."""
    t = text.strip().lower()
    scale = DURATION_UNITS.get(t[-1:], 1) if t else 1
    number = t[:-1] if t[-1:] in DURATION_UNITS else t
    if not number.isdigit() or int(number) == 0:
        raise UserError(f"not a duration: {text!r} (use seconds, or e.g. 30m, 12h, 7d)")
    return int(number) * scale


def proofs_from_json(data: Any, components: list[dict]) -> list[tuple]:
    """TransferValidityProof tuples from JSON objects keyed by the struct's field names (bytes as 0x-hex),
    following the ABI `components` of the struct so that it tracks the contract's definition."""

    def convert(value: Any, item: dict) -> Any:
        if item["type"] == "tuple":
            if not isinstance(value, dict):
                raise UserError(f"proof field {item['name']!r} must be an object")
            missing = [c["name"] for c in item["components"] if c["name"] not in value]
            if missing:
                raise UserError(f"proof field {item['name']!r} lacks {', '.join(missing)}")
            return tuple(convert(value[c["name"]], c) for c in item["components"])
        if item["type"].startswith("bytes"):
            if not isinstance(value, str) or not value.startswith("0x"):
                raise UserError(f"proof field {item['name']!r} must be 0x-hex")
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                raise UserError(f"proof field {item['name']!r} is not hex") from None
        return int(value)

    if not isinstance(data, list) or not data:
        raise UserError("the proofs file must hold a non-empty JSON list of TransferValidityProof objects")
    struct = {"type": "tuple", "name": "proof", "components": components}
    return [convert(p, struct) for p in data]


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj))


class Ctx:
    """Lazily connected market client for one command (its options: `deaios.cli_context`)."""

    def __init__(self, client: ClientContext) -> None:
        self.client = client
        self._chain: Any = None

    def chain(self, need_key: bool = True) -> Any:
        from deaios.market.chain import MarketAddresses, MarketChain, MarketError

        if self._chain is None:
            target = self.client.target(need_key=need_key, stack_entry="market")
            try:
                self._chain = MarketChain(target.rpc, MarketAddresses.from_mapping(target.contracts), target.key)
            except MarketError as exc:
                raise UserError(str(exc)) from None
        return self._chain

    def run(self, method: str, *args: Any, need_key: bool = True) -> Any:
        """Call `MarketChain.method`; chain errors become one-line user errors (exit 2)."""
        from deaios.market.chain import MarketError

        try:
            return getattr(self.chain(need_key), method)(*args)
        except MarketError as exc:
            raise UserError(str(exc)) from None

    def expiry(self, duration: str) -> int:
        return self.run("timestamp", need_key=False) + parse_duration(duration)


@click.group(cls=ClientGroup, chain=DEPLOYMENT_HELP, amounts=True)
@client_options(chain=DEPLOYMENT_HELP)
def market() -> None:
    """AI marketplace: sell, buy, bid for and rent INFT agents; buy compute bundles. Prices: 1ether, 0.5ether,
    10gwei, 100wei; a bare number is wei."""


def pass_ctx(f: Any) -> Any:
    """Passes a Ctx on the command's client options as the first argument."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(Ctx(client_context()), *args, **kwargs)

    return wrapper
EXPIRES = click.option(
    "--expires-in", default="7d", show_default=True, help="Validity (e.g. 3600, 30m, 12h, 7d)."
)


# --- reads ----------------------------------------------------------------------------------------------
@market.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include closed listings, offers and purchases.")
@click.option("--offers/--no-offers", default=True, show_default=True)
@click.option("--purchases/--no-purchases", default=True, show_default=True)
@click.option(
    "--bundles/--no-bundles", default=True, show_default=True, help="Compute bundles (if deployed)."
)
@pass_ctx
def list_cmd(c: Ctx, show_all: bool, offers: bool, purchases: bool, bundles: bool) -> None:
    """Listings (then offers, pending purchases, compute bundles) as JSON lines with a "kind" key."""
    chain = c.chain(need_key=False)
    items = [x.to_json() for x in c.run("listings", show_all, need_key=False)]
    if offers:
        items += [x.to_json() for x in c.run("offers", show_all, need_key=False)]
    if purchases:
        items += [x.to_json() for x in c.run("purchases", show_all, need_key=False)]
    if bundles and chain.bundles is not None:
        items += c.run("bundles_listed", need_key=False)
    for item in items:
        emit(item)


@market.command()
@click.argument("account", required=False)
@pass_ctx
def credits(c: Ctx, account: str | None) -> None:
    """Withdrawable credits of ACCOUNT (default: yours)."""
    account = account or c.chain().address
    emit({"account": account, "credits": c.run("credits", account, need_key=False)})


# --- sales ----------------------------------------------------------------------------------------------
@market.command("sell")
@click.argument("token_id", type=int)
@click.argument("price", type=AMOUNT)
@EXPIRES
@pass_ctx
def sell(c: Ctx, token_id: int, price: int, expires_in: str) -> None:
    """List TOKEN_ID for PRICE (approves the market as your operator first if needed). PRICE: 1ether,
    0.5ether, 5gwei, 100wei; a bare number is wei."""
    expiry = c.expiry(expires_in)
    listing = c.run("list_item", token_id, price, expiry)
    emit({"listing": listing, "tokenId": token_id, "price": price, "expiry": expiry})


market.add_command(sell, "list-item")


@market.command()
@click.argument("listing_id", type=int)
@pass_ctx
def unlist(c: Ctx, listing_id: int) -> None:
    """Cancel your listing LISTING_ID."""
    c.run("cancel_listing", listing_id)
    emit({"listing": listing_id, "cancelled": True})


@market.command()
@click.argument("listing_id", type=int)
@pass_ctx
def buy(c: Ctx, listing_id: int) -> None:
    """Pay listing LISTING_ID's price into escrow: a pending purchase for the seller to settle."""
    purchase = c.run("buy", listing_id)
    emit(c.run("purchase", purchase).to_json())


@market.command()
@click.argument("token_id", type=int)
@click.argument("price", type=AMOUNT)
@EXPIRES
@pass_ctx
def offer(c: Ctx, token_id: int, price: int, expires_in: str) -> None:
    """Bid PRICE (escrowed) for TOKEN_ID. PRICE: 1ether, 0.5ether, 5gwei, 100wei; a bare number is wei."""
    offer_id = c.run("make_offer", token_id, price, c.expiry(expires_in))
    emit(c.run("offer", offer_id).to_json())


@market.command("withdraw-offer")
@click.argument("offer_id", type=int)
@pass_ctx
def withdraw_offer(c: Ctx, offer_id: int) -> None:
    """Close an open offer (yours, or anyone's once expired); its amount is credited to the bidder."""
    c.run("withdraw_offer", offer_id)
    emit(c.run("offer", offer_id).to_json())


@market.command()
@click.argument("offer_id", type=int)
@pass_ctx
def accept(c: Ctx, offer_id: int) -> None:
    """Accept OFFER_ID for your token: a pending purchase for you to settle."""
    purchase = c.run("accept_offer", offer_id)
    emit(c.run("purchase", purchase).to_json())


@market.command()
@click.argument("purchase_id", type=int)
@click.option(
    "--proofs",
    "proofs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON list of TransferValidityProof objects for the buyer (from the INFT oracle).",
)
@pass_ctx
def settle(c: Ctx, purchase_id: int, proofs_file: Path) -> None:
    """Settle PURCHASE_ID: the token moves to the buyer with PROOFS, proceeds and royalty are credited."""
    chain = c.chain()
    try:
        data = json.loads(proofs_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read proofs from {proofs_file}: {exc}") from None
    abi = chain.market.get_function_by_name("settle").abi
    proofs = proofs_from_json(data, abi["inputs"][1]["components"])
    emit(c.run("settle", purchase_id, proofs))


@market.command()
@click.argument("purchase_id", type=int)
@pass_ctx
def cancel(c: Ctx, purchase_id: int) -> None:
    """Refund a pending purchase to its buyer (seller: any time; anyone: after the deadline)."""
    c.run("cancel_purchase", purchase_id)
    emit(c.run("purchase", purchase_id).to_json())


@market.command()
@click.option("--to", default=None, help="Recipient (default: yourself).")
@pass_ctx
def withdraw(c: Ctx, to: str | None) -> None:
    """Withdraw all your credits (proceeds, royalties, refunds, rent)."""
    emit({"withdrawn": c.run("withdraw", to), "to": to or c.chain().address})


# --- rentals --------------------------------------------------------------------------------------------
@market.command("rent-out")
@click.argument("token_id", type=int)
@click.argument("price_per_period", type=AMOUNT)
@click.option("--period", default="1d", show_default=True, help="Length of one period.")
@click.option("--max-periods", type=int, default=30, show_default=True)
@EXPIRES
@pass_ctx
def rent_out(
    c: Ctx, token_id: int, price_per_period: int, period: str, max_periods: int, expires_in: str
) -> None:
    """Offer TOKEN_ID for rent at PRICE_PER_PERIOD (1ether, 0.5ether, 5gwei, 100wei; a bare number is wei)."""
    args = (token_id, price_per_period, parse_duration(period), max_periods, c.expiry(expires_in))
    emit({"terms": c.run("list_for_rent", *args), "tokenId": token_id})


@market.command()
@click.argument("terms_id", type=int)
@click.argument("periods", type=int)
@pass_ctx
def rent(c: Ctx, terms_id: int, periods: int) -> None:
    """Rent under TERMS_ID for PERIODS periods (paid into escrow; you are authorized at once)."""
    emit({"rental": c.run("rent", terms_id, periods), "terms": terms_id})


@market.command("end-rental")
@click.argument("rental_id", type=int)
@pass_ctx
def end_rental(c: Ctx, rental_id: int) -> None:
    """End RENTAL_ID (anyone after its end) and credit lessor and renter."""
    c.run("end_rental", rental_id)
    emit({"rental": rental_id, "ended": True})


# --- compute bundles ------------------------------------------------------------------------------------
@market.command("bundle-list")
@click.argument("price", type=AMOUNT)
@click.argument("supply", type=int)
@click.option("--terms", default="", help="What a bundle is (free text, ≤ 256 bytes).")
@EXPIRES
@pass_ctx
def bundle_list(c: Ctx, price: int, supply: int, terms: str, expires_in: str) -> None:
    """List SUPPLY compute bundles of your registered service at PRICE each (1ether, 0.5ether, 5gwei, 100wei; a
    bare number is wei)."""
    emit({"bundle": c.run("list_bundle", price, supply, c.expiry(expires_in), terms)})


@market.command("bundle-buy")
@click.argument("listing_id", type=int)
@click.argument("count", type=int, default=1)
@pass_ctx
def bundle_buy(c: Ctx, listing_id: int, count: int) -> None:
    """Buy COUNT bundles: the payment is deposited into your ComputeLedger account."""
    emit({"bundle": listing_id, "count": count, "deposited": c.run("buy_bundles", listing_id, count)})
