"""Stateful property test of AgentMarket (and ComputeBundleMarket) against the real INFT (AgentNFT +
DataVerifier) on Anvil, from the money's point of view: what each party put in, what it is owed, what it may
take out and what it did take out.

Hypothesis drives random sequences of listings, purchases, offers (made, withdrawn, accepted, expired),
settlements with valid proofs (signed by the buyer or by its delegated assistant) and invalid ones, purchase
cancellations (seller, after the deadline, after a lost approval), rentals (rented, ended on time, early by the
lessor, broken by a sale), data updates by the owner (audit: a listing, offer or purchase made before an update
can no longer be bought, accepted or settled), access delegations (a buyer's delegation is frozen while its
purchase may settle, audit H1), bundle purchases (paid into the buyer's ComputeLedger sub-account), approval
toggles, withdrawals and time travel, by three traders; a fourth account is the tokens' creator (royalty
receiver). A Python model written from the specification predicts every outcome; the chain must agree. The model
keeps its own books of money flows, never the contract's counters (escrowed*, totalCredits).

MONEY INVARIANTS
  M1 conserved     after every step: market ETH == the sum over the parties of what each is owed (put in +
                   received from other parties - paid to other parties - taken out)
  M2 withdrawable  after every step: each party's credits on chain + what it paid into escrows still open (offers,
                   pending purchases, active rentals) == what it is owed
  M3 exact payouts what reached each wallet (its balance change net of value sent and gas, per transaction) ==
                   the withdrawals the model allows: nobody takes out more, or less, than it is owed
  M4 split         a settlement moves exactly the price: seller proceeds + royalty == price, royalty 5 % to the
                   creator
  M5 once          a purchase settles at most once; a purchase whose data changed after payment never settles
  M6 bundles       the bundle market holds nothing; each buyer's sub-account with the provider holds exactly what
                   it paid for bundles, never more bundles sold than listed
  M7 drained       at the end of every example, after the deadlines pass, every pending purchase is cancelled,
                   every open offer withdrawn, every rental ended and every account withdrew: market ETH == 0 and
                   every party is owed 0

Transactions go through Anvil's eth_sendTransaction with a fixed gas limit and a block timestamp set by the
test (so examples replay exactly); a predicted failure must be a mined, reverted transaction.
`DEAIOS_AUDIT_STEPS=N` makes it a campaign of >= N steps (see `deaios.testing.audit_settings`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import pytest
from deaios.testing import audit_settings
from eth_account import Account
from eth_utils import keccak
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from market_helpers import ROYALTY_BPS, SETTLE_WINDOW, context, mint, proofs_for
from web3.logs import DISCARD

SETTINGS = audit_settings(max_examples=4, stateful_step_count=30)
N_TRADERS, N_TOKENS = 3, 3
PERIOD, RENT_PRICE, MAX_PERIODS = 50, 1_000, 4
TTLS = (40, 400, 5_000)
TICKS = (1, 30, 200, SETTLE_WINDOW + 1)
PRICES = st.integers(0, 8).map(lambda x: x * 10_000)
K = st.integers(0, 1_000)  # index into a list (modulo its length)
AS_PARTY = st.integers(0, 4).map(lambda x: x != 0)  # mostly act as the party entitled to
T = st.integers(0, N_TRADERS - 1)
TOKEN = st.integers(0, N_TOKENS - 1)
ZERO_ADDRESS = "0x" + "00" * 20
#: each trader's access assistant (fixed keys that never send transactions)
ASSISTANT_KEYS = ["0x" + keccak(text=f"deaios market invariant assistant {i}").hex() for i in range(N_TRADERS)]
ASSISTANTS = [Account.from_key(k).address for k in ASSISTANT_KEYS]
BUNDLE_PRICE, BUNDLE_SUPPLY = 100, 12
COVERAGE: Counter = Counter()


@dataclass
class MListing:
    seller: int
    token: int
    price: int
    expiry: int
    version: int
    active: bool = True


@dataclass
class MOffer:
    buyer: int
    token: int
    amount: int
    expiry: int
    version: int
    open: bool = True


@dataclass
class MPurchase:
    buyer: int
    seller: int
    token: int
    price: int
    deadline: int
    version: int
    pending: bool = True
    settled: bool = False


@dataclass
class MTerms:
    lessor: int
    token: int
    expiry: int
    active: bool = True


@dataclass
class MRental:
    renter: int
    lessor: int
    token: int
    amount: int
    start: int
    end: int
    active: bool = True


class Driver:
    """web3 access to the deployed market, bundles, ledger and INFT through Anvil's unlocked dev accounts; measures
    what reaches the tracked wallets."""

    def __init__(self, w3, market, nft, bundles, ledger) -> None:
        self.w3 = w3
        self.market = self._contract(market)
        self.nft = self._contract(nft)
        self.bundles = self._contract(bundles)
        self.ledger = self._contract(ledger)
        self.chain_id = w3.eth.chain_id
        self.verifier = nft.verifier()
        self.clock = w3.eth.get_block("latest").timestamp
        self.wallets: dict[str, int] = {}
        self.received: Counter = Counter()
        self.nonces: dict[str, int] = {}

    def _contract(self, ape_contract):
        abi = [a.model_dump(mode="json", by_alias=True) for a in ape_contract.contract_type.abi]
        return self.w3.eth.contract(address=ape_contract.address, abi=abi)

    def rpc(self, method: str, params: list):
        return self.w3.provider.make_request(method, params)

    def track(self, addresses: list[str]) -> None:
        self.received.clear()
        self.nonces.clear()
        self.wallets = {a: self.w3.eth.get_balance(a) for a in addresses}

    def send(self, fn, sender: str, expect: bool, value: int = 0, label: str = ""):
        """Mine `fn` at clock + 1; its status must be `expect`. The receipt."""
        self.clock += 1
        self.rpc("evm_setNextBlockTimestamp", [self.clock])
        if sender not in self.nonces:
            self.nonces[sender] = self.w3.eth.get_transaction_count(sender)
        tx = {"from": sender, "to": fn.address, "data": fn._encode_transaction_data(), "value": hex(value),
              "gas": hex(3_000_000), "maxFeePerGas": hex(10**11), "maxPriorityFeePerGas": "0x0",
              "nonce": hex(self.nonces[sender])}
        sent = self.rpc("eth_sendTransaction", [tx])
        self.nonces[sender] += 1
        assert "result" in sent, sent
        receipt = self.w3.eth.wait_for_transaction_receipt(sent["result"], poll_latency=0.001)
        COVERAGE[f"{label or fn.fn_name}: {'ok' if receipt.status else 'reverted'}"] += 1
        if sender in self.wallets:
            after = self.w3.eth.get_balance(sender)
            spent = receipt.gasUsed * receipt.effectiveGasPrice + (value if receipt.status else 0)
            self.received[sender] += after - self.wallets[sender] + spent
            self.wallets[sender] = after
        assert receipt.status == int(expect), (fn.fn_name, fn.args, "expected", expect)
        return receipt

    def views(self, fns: list, balances: list[str] = ()) -> list:
        """Many eth_calls (the first output word of each, as an int or address) and ETH balances in one JSON-RPC
        batch."""
        from eth_abi import decode

        calls = [("eth_call", [{"to": fn.address, "data": fn._encode_transaction_data()}, "latest"])
                 for fn in fns] + [("eth_getBalance", [a, "latest"]) for a in balances]
        results = self.w3.provider.make_batch_request(calls)
        types = [["address" if fn.abi["outputs"][0]["type"] == "address" else "uint256"] for fn in fns]
        out = [decode(t, bytes.fromhex(r["result"][2:66]))[0] for t, r in zip(types, results)]
        return out + [int(r["result"], 16) for r in results[len(fns):]]

    def event(self, name: str, receipt):
        return getattr(self.market.events, name)().process_receipt(receipt, errors=DISCARD)[0].args


@pytest.fixture
def stage(market, nft, bundles, ledger, registry, accounts, creator, other, chain):
    traders = accounts[2 : 2 + N_TRADERS]
    tokens = [mint(nft, creator, traders[i % N_TRADERS]) for i in range(N_TOKENS)]
    for t in traders:
        nft.setApprovalForAll(market.address, True, sender=t)
    params = (0, "qwen", "http://127.0.0.1:1", "H100", 1, 1024, 1, 1, "none", ZERO_ADDRESS, "")
    registry.addOrUpdateService(params, ZERO_ADDRESS, sender=other, value=10**17)
    expiry = chain.blocks.head.timestamp + 10**8
    bundles.listBundle(BUNDLE_PRICE, BUNDLE_SUPPLY, expiry, "100k tokens", sender=other)
    driver = Driver(chain.provider.web3, market, nft, bundles, ledger)
    return driver, traders, tokens, creator.address, other.address, bundles.listingCount()


def test_market_invariants(stage):
    d, traders, tokens, creator, provider, bundle_id = stage
    addrs = [t.address for t in traders]
    keys = [t.private_key for t in traders]
    parties = [*addrs, creator]
    f = d.market.functions

    class Market(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = d.rpc("evm_snapshot", [])["result"]
            d.clock = d.w3.eth.get_block("latest").timestamp
            d.track(parties)
            # the model's books of money (never read from the contracts)
            self.put_in: Counter = Counter()
            self.taken_out: Counter = Counter()
            self.moved: Counter = Counter()  # + received from other parties, - paid to them
            self.bundles_paid: Counter = Counter()  # paid into the ledger for bundles, per trader
            self.bundles_sold = 0
            self.ledger_base = self.bundle_balances()
            # the market's state as the specification describes it
            self.owner = {t: i % N_TRADERS for i, t in enumerate(tokens)}
            self.version = {t: 0 for t in tokens}
            self.approved = [True] * N_TRADERS
            self.assistant = [ZERO_ADDRESS] * N_TRADERS
            self.locked_until = [0] * N_TRADERS
            self.authorized: dict[int, set] = {t: set() for t in tokens}
            self.listings: list[MListing] = []
            self.listing_of: dict[int, int] = {}
            self.offers: list[MOffer] = []
            self.purchases: list[MPurchase] = []
            self.purchase_of: dict[int, int] = {}
            self.terms: list[MTerms] = []
            self.rentals: list[MRental] = []
            self.rental_of: dict[tuple, int] = {}
            self.credits: Counter = Counter()
            assert d.w3.eth.get_balance(d.market.address) == 0, "M1: money in the market nobody is owed"

        # --- model helpers ------------------------------------------------------------------------------
        @staticmethod
        def bundle_balances() -> list[int]:
            """Each trader's sub-account balance with the bundle provider, in the ledger."""
            return d.views([d.ledger.functions.getAccount(a, provider) for a in addrs])

        def now(self) -> int:
            return d.clock + 1  # the timestamp of the next transaction

        def who(self, key) -> str:
            return creator if key == "creator" else addrs[key]

        def owed(self) -> dict[str, int]:
            return {a: self.put_in[a] + self.moved[a] - self.taken_out[a] for a in parties}

        def pay(self, frm: str, to: str, amount: int) -> None:
            self.moved[frm] -= amount
            self.moved[to] += amount

        def can_sell(self, token: int, who: int) -> bool:
            return self.owner[token] == who and self.approved[who]

        def live_purchase(self, token: int) -> bool:
            k = self.purchase_of.get(token)
            return k is not None and self.purchases[k].pending and self.now() <= self.purchases[k].deadline

        def credit(self, who, amount: int) -> None:
            if amount:
                self.credits[who] += amount

        @staticmethod
        def pick(items: list, k: int, live) -> int:
            """Mostly (4 in 5) an index of a live item when there is one, else any index."""
            alive = [i for i, x in enumerate(items) if live(x)]
            return alive[k % len(alive)] if alive and k % 5 else k % len(items)

        def close_listing(self, token: int) -> None:
            k = self.listing_of.pop(token, None)
            if k is not None:
                self.listings[k].active = False

        def open_purchase(self, buyer: int, seller: int, token: int, price: int, version: int) -> None:
            self.purchase_of[token] = len(self.purchases)
            deadline = d.clock + SETTLE_WINDOW  # called after `send`: d.clock is the transaction's time
            self.purchases.append(MPurchase(buyer, seller, token, price, deadline, version))
            self.locked_until[buyer] = max(self.locked_until[buyer], deadline)

        # --- sales --------------------------------------------------------------------------------------
        @initialize(prices=st.lists(PRICES, min_size=N_TOKENS, max_size=N_TOKENS))
        def list_all(self, prices):
            for token, price in enumerate(prices):
                self.list(0, token, price, max(TTLS), True)

        @rule(who=T, token=TOKEN, price=PRICES, ttl=st.sampled_from(TTLS), owner=AS_PARTY)
        def list(self, who, token, price, ttl, owner):
            t = tokens[token]
            who = self.owner[t] if owner else who
            ok, expiry = price > 0 and self.can_sell(t, who), self.now() + ttl
            d.send(f.list(t, price, expiry), addrs[who], ok)
            if ok:
                self.close_listing(t)
                self.listing_of[t] = len(self.listings)
                self.listings.append(MListing(who, t, price, expiry, self.version[t]))

        @precondition(lambda self: self.listings)
        @rule(k=K, who=T)
        def cancel_listing(self, k, who):
            k %= len(self.listings)
            lst = self.listings[k]
            ok = lst.active and lst.seller == who
            d.send(f.cancelListing(k + 1), addrs[who], ok)
            if ok:
                self.close_listing(lst.token)

        @precondition(lambda self: self.listings)
        @rule(k=K, who=T, underpay=st.integers(0, 5).map(lambda x: x == 0))
        def buy(self, k, who, underpay):
            k = self.pick(self.listings, k, lambda x: x.active)
            lst = self.listings[k]
            value = lst.price - (1 if underpay else 0)
            ok = (lst.active and self.now() < lst.expiry and not underpay and who != lst.seller
                  and self.can_sell(lst.token, lst.seller) and not self.live_purchase(lst.token)
                  and self.version[lst.token] == lst.version)
            if lst.active and self.version[lst.token] != lst.version:
                COVERAGE["buy blocked: data changed since listed"] += 1
            d.send(f.buy(k + 1), addrs[who], ok, value=value)
            if ok:
                self.put_in[addrs[who]] += value
                self.close_listing(lst.token)
                self.open_purchase(who, lst.seller, lst.token, lst.price, lst.version)

        @rule(who=T, token=TOKEN, amount=PRICES, ttl=st.sampled_from(TTLS))
        def offer(self, who, token, amount, ttl):
            t = tokens[token]
            ok, expiry = amount > 0 and self.owner[t] != who, self.now() + ttl
            d.send(f.makeOffer(t, expiry), addrs[who], ok, value=amount)
            if ok:
                self.put_in[addrs[who]] += amount
                self.offers.append(MOffer(who, t, amount, expiry, self.version[t]))

        @precondition(lambda self: self.offers)
        @rule(k=K, who=T)
        def withdraw_offer(self, k, who):
            self.do_withdraw_offer(self.pick(self.offers, k, lambda x: x.open), who)

        def do_withdraw_offer(self, k, who):
            o = self.offers[k]
            ok = o.open and (who == o.buyer or self.now() >= o.expiry)
            d.send(f.withdrawOffer(k + 1), addrs[who], ok)
            if ok:
                o.open = False
                self.credit(o.buyer, o.amount)

        @precondition(lambda self: self.offers)
        @rule(k=K, who=T, owner=AS_PARTY)
        def accept(self, k, who, owner):
            k = self.pick(self.offers, k, lambda x: x.open)
            o = self.offers[k]
            who = self.owner[o.token] if owner else who
            ok = (o.open and self.now() < o.expiry and o.buyer != who and self.can_sell(o.token, who)
                  and self.version[o.token] == o.version and not self.live_purchase(o.token))
            d.send(f.acceptOffer(k + 1), addrs[who], ok)
            if ok:
                o.open = False
                self.close_listing(o.token)
                self.open_purchase(o.buyer, who, o.token, o.amount, o.version)

        @precondition(lambda self: self.purchases)
        @rule(k=K, who=T, valid=AS_PARTY, by_assistant=st.booleans())
        def settle(self, k, who, valid, by_assistant):
            self.do_settle(self.pick(self.purchases, k, lambda x: x.pending), who, valid, by_assistant)

        def do_settle(self, k, who, valid, by_assistant=False):
            """Settle with the oracle's proofs for the buyer: its access proofs signed by itself or (when it has
            one) its assistant; invalid: signed by another trader."""
            p = self.purchases[k]
            data_hash = bytes(d.nft.functions.intelligentDatasOf(p.token).call()[0][1])
            assistant = self.assistant[p.buyer]
            if not valid:
                signer = keys[(p.buyer + 1) % N_TRADERS]
            elif by_assistant and assistant != ZERO_ADDRESS:
                signer = ASSISTANT_KEYS[ASSISTANTS.index(assistant)]
                COVERAGE["settle with the assistant's proofs"] += 1
            else:
                signer = keys[p.buyer]
            ctx = context(d.nft, p.token, addrs[p.seller], addrs[p.buyer], d.chain_id, d.verifier)
            proofs = proofs_for(ctx, [data_hash], signer)
            checks = {"closed": not p.pending, "late": self.now() > p.deadline, "bad proofs": not valid,
                      "no approval": not self.can_sell(p.token, p.seller),
                      "data changed": self.version[p.token] != p.version}
            why = [name for name, bad in checks.items() if bad]
            ok = not why
            if why:
                COVERAGE[f"settle blocked: {', '.join(why)}"] += 1
            receipt = d.send(f.settle(k + 1, proofs), addrs[who], ok)
            if ok:
                ev = d.event("PurchaseSettled", receipt)
                royalty = p.price * ROYALTY_BPS // 10_000
                assert ev.sellerProceeds + ev.royalty == p.price  # M4
                assert (ev.royalty, ev.royaltyReceiver if royalty else creator) == (royalty, creator)
                p.pending, p.settled = False, True
                self.pay(addrs[p.buyer], addrs[p.seller], p.price - royalty)
                self.pay(addrs[p.buyer], creator, royalty)
                self.credit(p.seller, p.price - royalty)
                self.credit("creator", royalty)
                self.owner[p.token] = p.buyer
                self.authorized[p.token] = set()
                assert d.nft.functions.ownerOf(p.token).call() == addrs[p.buyer]

        @precondition(lambda self: self.purchases)
        @rule(k=K, who=T)
        def cancel_purchase(self, k, who):
            self.do_cancel_purchase(self.pick(self.purchases, k, lambda x: x.pending), who)

        def do_cancel_purchase(self, k, who):
            p = self.purchases[k]
            entitled = who == p.seller or self.now() > p.deadline or not self.can_sell(p.token, p.seller)
            ok = p.pending and entitled
            d.send(f.cancelPurchase(k + 1), addrs[who], ok)
            if ok:
                p.pending = False
                self.credit(p.buyer, p.price)

        # --- the token's data and the buyers' delegations -----------------------------------------------
        @rule(token=TOKEN, owner=AS_PARTY, who=T)
        def update(self, token, owner, who):
            """The owner replaces the token's data (one entry): what was listed, bid for or bought changed."""
            t = tokens[token]
            who = self.owner[t] if owner else who
            ok = self.owner[t] == who
            entry = [("agent part 0", os.urandom(32))]
            d.send(d.nft.functions.update(t, entry), addrs[who], ok, label="update")
            if ok:
                self.version[t] += 1

        @rule(who=T, drop=st.booleans())
        def delegate(self, who, drop):
            """The trader sets (or drops) its access assistant: refused while a purchase of its may settle."""
            assistant = ZERO_ADDRESS if drop else ASSISTANTS[who]
            ok = self.now() > self.locked_until[who]
            if not ok:
                COVERAGE["delegation frozen by a pending purchase"] += 1
            d.send(d.nft.functions.delegateAccess(assistant), addrs[who], ok, label="delegateAccess")
            if ok:
                self.assistant[who] = assistant

        # --- rentals ------------------------------------------------------------------------------------
        @rule(who=T, token=TOKEN, ttl=st.sampled_from(TTLS), owner=AS_PARTY)
        def rent_out(self, who, token, ttl, owner):
            t = tokens[token]
            who = self.owner[t] if owner else who
            ok, expiry = self.can_sell(t, who), self.now() + ttl
            d.send(f.listForRent(t, RENT_PRICE, PERIOD, MAX_PERIODS, expiry), addrs[who], ok)
            if ok:
                self.terms.append(MTerms(who, t, expiry))

        @precondition(lambda self: self.terms)
        @rule(k=K, who=T, periods=st.integers(1, MAX_PERIODS))
        def rent(self, k, who, periods):
            k = self.pick(self.terms, k, lambda x: x.active)
            tm = self.terms[k]
            ok = (tm.active and self.now() < tm.expiry and who != tm.lessor
                  and self.can_sell(tm.token, tm.lessor) and (tm.token, who) not in self.rental_of
                  and who not in self.authorized[tm.token])
            d.send(f.rent(k + 1, periods), addrs[who], ok, value=RENT_PRICE * periods)
            if ok:
                self.put_in[addrs[who]] += RENT_PRICE * periods
                self.rental_of[(tm.token, who)] = len(self.rentals)
                # after `send`, d.clock is the transaction's block time
                self.rentals.append(MRental(who, tm.lessor, tm.token, RENT_PRICE * periods, d.clock,
                                            d.clock + PERIOD * periods))
                self.authorized[tm.token].add(who)

        @precondition(lambda self: self.rentals)
        @rule(k=K, who=T)
        def end_rental(self, k, who):
            self.do_end_rental(self.pick(self.rentals, k, lambda x: x.active), who)

        def do_end_rental(self, k, who):
            r = self.rentals[k]
            now = self.now()
            broken = self.owner[r.token] != r.lessor or r.renter not in self.authorized[r.token]
            ok = r.active and (now >= r.end or who == r.lessor or broken)
            receipt = d.send(f.endRental(k + 1), addrs[who], ok)
            if ok:
                to_lessor = r.amount if now >= r.end else r.amount * (now - r.start) // (r.end - r.start)
                revoked = r.renter in self.authorized[r.token] and self.approved[self.owner[r.token]]
                ev = d.event("RentalEnded", receipt)
                assert (ev.toLessor, ev.toRenter, ev.revoked) == (to_lessor, r.amount - to_lessor, revoked)
                r.active = False
                del self.rental_of[(r.token, r.renter)]
                self.pay(addrs[r.renter], addrs[r.lessor], to_lessor)
                self.credit(r.lessor, to_lessor)
                self.credit(r.renter, r.amount - to_lessor)
                if revoked:
                    self.authorized[r.token].discard(r.renter)

        # --- compute bundles ----------------------------------------------------------------------------
        @rule(who=T, count=st.integers(1, 5))
        def buy_bundles(self, who, count):
            """Bundles are paid into the buyer's sub-account with the provider (not the market's money)."""
            ok = self.bundles_sold + count <= BUNDLE_SUPPLY
            d.send(d.bundles.functions.buyBundles(bundle_id, count), addrs[who], ok, value=BUNDLE_PRICE * count,
                   label="buyBundles")
            if ok:
                self.bundles_sold += count
                self.bundles_paid[addrs[who]] += BUNDLE_PRICE * count

        # --- accounts and time --------------------------------------------------------------------------
        @rule(who=T, really=st.integers(0, 3).map(lambda x: x == 0))
        def toggle_approval(self, who, really):
            if not really:
                return
            self.approved[who] = not self.approved[who]
            d.send(d.nft.functions.setApprovalForAll(d.market.address, self.approved[who]), addrs[who], True,
                   label="setApprovalForAll")

        @precondition(lambda self: sum(self.credits.values()))
        @rule(who=st.integers(0, N_TRADERS))
        def withdraw(self, who):
            key = "creator" if who == N_TRADERS else who
            sender = self.who(key)
            ok = self.credits[key] > 0
            receipt = d.send(f.withdraw(sender), sender, ok)
            if ok:
                assert d.event("Withdrawn", receipt).amount == self.credits[key]
                self.taken_out[sender] += self.credits[key]
                self.credits[key] = 0

        @rule(seconds=st.sampled_from(TICKS))
        def tick(self, seconds):
            d.clock += seconds
            d.rpc("evm_setNextBlockTimestamp", [d.clock])
            d.rpc("evm_mine", [])

        # --- invariants ---------------------------------------------------------------------------------
        @invariant()
        def money(self):
            COVERAGE["steps"] += 1
            reads = d.views([f.credits(a) for a in parties]
                            + [d.ledger.functions.getAccount(a, provider) for a in addrs],
                            balances=[d.market.address, d.bundles.address])
            n = len(parties)
            credits, accounts, (held, bundles_held) = reads[:n], reads[n:n + N_TRADERS], reads[n + N_TRADERS:]
            owed = self.owed()
            # M1 conserved: the market holds exactly what the parties are owed
            assert held == sum(owed.values()), ("M1", held, owed)
            # M2 withdrawable: credits on chain + own open escrows == owed
            escrow: Counter = Counter()
            for o in self.offers:
                if o.open:
                    escrow[addrs[o.buyer]] += o.amount
            for p in self.purchases:
                if p.pending:
                    escrow[addrs[p.buyer]] += p.price
            for r in self.rentals:
                if r.active:
                    escrow[addrs[r.renter]] += r.amount
            for a, c in zip(parties, credits):
                assert c + escrow[a] == owed[a], ("M2", a, c, escrow[a], owed[a])
            assert credits == [self.credits[i] for i in range(N_TRADERS)] + [self.credits["creator"]]
            # M3 exact payouts
            assert {a: d.received[a] for a in parties} == {a: self.taken_out[a] for a in parties}, "M3"
            # M6 bundles: the bundle market holds nothing, the ledger holds each buyer's payments
            assert bundles_held == 0
            assert [now - base for now, base in zip(accounts, self.ledger_base)] == \
                [self.bundles_paid[a] for a in addrs], "M6"
            assert self.bundles_sold <= BUNDLE_SUPPLY

        def teardown(self) -> None:
            try:
                self.drain()
            finally:
                assert d.rpc("evm_revert", [self.snapshot])["result"] is True

        def drain(self) -> None:
            """M7: once everything expired, every path returns the funds; the market ends empty."""
            self.tick(SETTLE_WINDOW + max(TTLS) + PERIOD * MAX_PERIODS)
            for k, p in enumerate(self.purchases):
                if p.settled:
                    self.do_settle(k, p.seller, True)  # M5: fails (predicted by the model)
                if p.pending:
                    self.do_cancel_purchase(k, (p.buyer + 1) % N_TRADERS)
            for k, o in enumerate(self.offers):
                if o.open:
                    self.do_withdraw_offer(k, (o.buyer + 1) % N_TRADERS)
            for k, r in enumerate(self.rentals):
                if r.active:
                    self.do_end_rental(k, r.renter)
            for who in range(N_TRADERS + 1):
                if self.credits["creator" if who == N_TRADERS else who]:
                    self.withdraw(who)
            assert d.w3.eth.get_balance(d.market.address) == 0, "M7: money left in the market"
            assert all(v == 0 for v in self.owed().values()), ("M7: someone is still owed", self.owed())
            self.money()
            COVERAGE["drained to 0"] += 1

    run_state_machine_as_test(Market, settings=SETTINGS)
    print("\ncoverage:", dict(sorted(COVERAGE.items())))
