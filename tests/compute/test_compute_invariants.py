"""Stateful property test of the compute market against the real contracts on Anvil.

Hypothesis drives random sequences of deposits, withdrawals, sub-account transfers, refund requests and
collections (with time travel past the lock), TEE signer acknowledgements, receipts signed by users and by
providers' TEE signers (including forged, replayed, stale and cross-provider ones), batched settlements,
earnings withdrawals, matches (request / accept / decline / finalize / cancel) and services pausing, by three
users and three providers. After every step the named audit invariants below are checked against the chain,
and every balance is compared with a reference model written in Python from the specification.

AUDIT INVARIANTS
  I1 conservation      sum of all balances (ledgers available + reserved, sub-accounts, unpaid earnings)
                       + everything paid out == everything deposited == ledger ETH + paid out
  I2 no double pay     a receipt (user, provider, nonce) is accepted at most once; accepted nonces of a
                       (user, provider) pair strictly increase
  I3 signed bound      what a user paid a provider through receipts never exceeds the largest cumulative total
                       signed for that pair by the user or by the provider's TEE signer
  I4 own funds only    a provider's earnings (unpaid + withdrawn) equal what its own sub-accounts paid, and
                       each sub-account paid only out of what its user put in
                       (funded == balance + refunded + paid)
  I5 lock respected    a refund is never collected before its unlock time (and always can be after it)

Transactions go through web3 directly (one eth_call to learn the outcome, then the transaction when it
succeeds) because ape's per-transaction machinery would make the example budget too slow. Each example
runs on an Anvil snapshot restored at teardown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from compute_helpers import (
    DECLINE_WINDOW,
    LOCK_TIME,
    MIN_DEPOSIT,
    MIN_STAKE,
    MIN_TRANSFER,
    ZERO_ADDRESS,
    request,
    service_params,
)
from deaios.compute.receipts import SettlementStatus as S
from deaios.compute.receipts import SignerKind, sign_receipt
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

N_USERS, N_PROVIDERS = 3, 3
MATCHABLE = 2  # providers 0 and 1 run inference services (prices 1+1 and 2+2); provider 2 has none
TIME_STEPS = (10, DECLINE_WINDOW + 5, LOCK_TIME // 2, LOCK_TIME + 1)
SLACK = 3  # seconds of wall-clock drift tolerated around time boundaries


ACTIONS = ["accept", "decline", "finalize", "cancel", "toggle"]
#: (user, fee increase, signer kind, forged, nonce gap) of a receipt to issue
RECEIPT = st.tuples(
    st.integers(0, N_USERS - 1),
    st.integers(0, 1_500),
    st.sampled_from(SignerKind),
    st.integers(0, 4).map(lambda x: x == 0),
    st.integers(0, 2),
)

COVERAGE: Counter = Counter()


def seen(label: str) -> None:
    """Count a notable outcome (printed with -s: evidence that the examples reach every path)."""
    event(label)
    COVERAGE[label] += 1


def tee_key(p: int) -> str:
    return "0x" + keccak(text=f"deaios invariant tee {p}").hex()


FORGER_KEY = "0x" + keccak(text="deaios invariant forger").hex()


def _abi_type(o: dict) -> str:
    if o["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in o["components"]) + ")" + o["type"][5:]
    return o["type"]


class Chain:
    """Thin web3 access to the deployed contracts: outcome by eth_call, then the transaction."""

    def __init__(self, w3, contracts: dict) -> None:
        self.w3 = w3
        self.c = {}
        self.errors: dict[bytes, str] = {}
        self._encoded: dict[tuple, tuple] = {}
        self._functions: dict[tuple, tuple] = {}
        for name, ape_contract in contracts.items():
            abi = [a.model_dump(mode="json", by_alias=True) for a in ape_contract.contract_type.abi]
            self.c[name] = w3.eth.contract(address=ape_contract.address, abi=abi)
            for err in ape_contract.contract_type.errors:
                self.errors[keccak(text=err.selector)[:4]] = err.name

    def _function(self, contract: str, fn: str) -> tuple:
        """(address, selector, input types, output types) of a function, cached."""
        key = (contract, fn)
        if key not in self._functions:
            c = self.c[contract]
            abi = c.get_function_by_name(fn).abi
            ins = [_abi_type(i) for i in abi["inputs"]]
            outs = [_abi_type(o) for o in abi["outputs"]]
            selector = keccak(text=f"{fn}({','.join(ins)})")[:4]
            self._functions[key] = (c.address, selector, ins, outs)
        return self._functions[key]

    def send(self, contract: str, fn: str, *args, sender: str, value: int = 0, timed: bool = False):
        """(True, tx receipt, return value) or (False, error name, None).

        Raw JSON-RPC (eth_abi encoding, eth_call, eth_sendTransaction from Anvil's unlocked dev accounts):
        web3's contract layer costs more than Anvil. `timed`: the outcome depends on block.timestamp, which
        may pass a deadline between the eth_call and the transaction's block: a transaction reverting then is
        reported as (False, "reverted", None).
        """
        from eth_abi import decode, encode

        to, selector, ins, outs = self._function(contract, fn)
        tx = {
            "from": sender,
            "to": to,
            "value": hex(value),
            "data": "0x" + (selector + encode(ins, args)).hex(),
        }
        res = self.rpc("eth_call", [tx, "latest"])
        if "error" in res:
            data = res["error"].get("data") or ""
            name = self.errors.get(bytes.fromhex(data[2:10]), data[:10]) if len(data) >= 10 else "revert"
            COVERAGE[f"{fn}: {name}"] += 1
            return False, name, None
        COVERAGE[f"{fn}: ok"] += 1
        values = decode(outs, bytes.fromhex(res["result"][2:]))
        out = values[0] if len(values) == 1 else values
        self.tick(1)
        sent = self.rpc(
            "eth_sendTransaction",
            [{**tx, "gas": hex(5_000_000), "maxFeePerGas": hex(10**11), "maxPriorityFeePerGas": "0x0"}],
        )
        assert "result" in sent, sent
        rcpt = self.w3.eth.wait_for_transaction_receipt(sent["result"], poll_latency=0.001)
        if rcpt.status != 1 and timed:
            return False, "reverted", None
        assert rcpt.status == 1, (contract, fn, args)
        return True, rcpt, out

    def view(self, contract: str, fn: str, *args):
        return getattr(self.c[contract].functions, fn)(*args).call()

    def views(self, calls: list[tuple]) -> list:
        """Many eth_calls in one JSON-RPC batch: [(contract, fn, args), ...] -> decoded outputs."""
        from eth_abi import decode

        requests, types = [], []
        for call in calls:
            if call not in self._encoded:  # web3's encoder is slow: the same reads repeat every step
                contract, fn, args = call
                c = self.c[contract]
                out = c.get_function_by_name(fn).abi["outputs"]
                self._encoded[call] = (
                    {"to": c.address, "data": c.encode_abi(fn, args=list(args))},
                    [_abi_type(o) for o in out],
                )
            tx, t = self._encoded[call]
            requests.append(("eth_call", [tx, "latest"]))
            types.append(t)
        results = self.w3.provider.make_batch_request(requests)
        decoded = []
        for res, t in zip(results, types):
            values = decode(t, bytes.fromhex(res["result"][2:]))
            decoded.append(values[0] if len(values) == 1 else values)
        return decoded

    def events(self, contract: str, name: str, rcpt) -> list:
        from web3.logs import DISCARD

        return list(getattr(self.c[contract].events, name)().process_receipt(rcpt, errors=DISCARD))

    def timestamp(self, rcpt=None) -> int:
        """The block time of a receipt, or of the latest block (both are the clock: see `tick`)."""
        if rcpt is None and self.clock is None:
            return self.w3.eth.get_block("latest").timestamp
        return self.clock

    def rpc(self, method: str, params: list):
        return self.w3.provider.make_request(method, params)

    def start_clock(self) -> None:
        self.clock = None
        self.clock = self.timestamp()

    def tick(self, seconds: int) -> None:
        """The next block is mined `seconds` after the previous one: block times do not depend on the wall
        clock, so an example replays identically (Hypothesis needs that to shrink)."""
        self.clock += seconds
        self.rpc("evm_setNextBlockTimestamp", [self.clock])


@dataclass
class Acct:
    free: int = 0
    pending: int = 0
    unlock_at: int = 0
    nonce: int = 0
    charged: int = 0
    signer: str = ZERO_ADDRESS


@dataclass
class IssuedReceipt:
    user: int
    provider: int  # the provider in the signed message
    nonce: int
    total: int
    kind: SignerKind
    signer: str  # address of the key that signed
    abi: tuple


@dataclass
class Req:
    user: int
    provider: int
    deposit: int
    deadline: int
    declined: list = field(default_factory=list)


@pytest.fixture
def stage(ledger, registry, matcher, providers, users, owner, chain):
    """Providers 0 and 1 register inference services; returns what the machine needs."""
    provs = providers[:N_PROVIDERS]
    for p, price in zip(provs[:MATCHABLE], (1, 2)):
        registry.addOrUpdateService(
            service_params(input_price=price, output_price=price), ZERO_ADDRESS, sender=p, value=MIN_STAKE
        )
    w3 = chain.provider.web3
    return {
        "chain": Chain(w3, {"ledger": ledger, "registry": registry, "matcher": matcher}),
        "users": [u.address for u in users[:N_USERS]],
        "user_keys": [u.private_key for u in users[:N_USERS]],
        "providers": [p.address for p in provs],
        "chain_id": chain.chain_id,
        "ledger": ledger.address,
    }


def test_compute_market_invariants(stage):
    ch: Chain = stage["chain"]
    USERS, PROVS = stage["users"], stage["providers"]
    TEE = [Account.from_key(tee_key(p)).address for p in range(N_PROVIDERS)]

    class ComputeMarket(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = ch.rpc("evm_snapshot", [])["result"]
            ch.start_clock()
            # reference model
            self.available = [0] * N_USERS
            self.reserved = [0] * N_USERS
            self.accts = {(u, p): Acct() for u in range(N_USERS) for p in range(N_PROVIDERS)}
            self.earnings = [0] * N_PROVIDERS
            self.active = [True] * MATCHABLE
            self.requests: dict[int, Req] = {}
            self.issued: list[IssuedReceipt] = []
            self.next_nonce = {k: 1 for k in self.accts}
            self.signed_total = {k: 0 for k in self.accts}
            # ghost counters from events
            self.deposited = 0
            self.paid_out = 0
            self.withdrawn_earnings = [0] * N_PROVIDERS
            self.funded = {k: 0 for k in self.accts}
            self.refunded = {k: 0 for k in self.accts}
            self.paid = {k: 0 for k in self.accts}
            self.accepted: dict = {}
            self.max_authorized = {k: 0 for k in self.accts}

        def teardown(self) -> None:
            assert ch.rpc("evm_revert", [self.snapshot])["result"] is True

        # --- helpers --------------------------------------------------------------------------------
        def _balance(self, k) -> int:
            return self.accts[k].free + self.accts[k].pending

        def _record_funded(self, rcpt) -> None:
            for ev in ch.events("ledger", "AccountFunded", rcpt):
                k = (USERS.index(ev.args.user), PROVS.index(ev.args.provider))
                self.funded[k] += ev.args.fromLedger

        def _fund(self, u: int, p: int, amount: int) -> int:
            """Model of funding `amount` into (u, p): the pending refund is cancelled first; returns the
            part taken from the ledger."""
            a = self.accts[(u, p)]
            cancelled = min(amount, a.pending)
            a.pending -= cancelled
            if a.pending == 0:
                a.unlock_at = 0
            a.free += amount
            return amount - cancelled

        def _candidates(self, declined: list) -> list[int]:
            return [p for p in range(MATCHABLE) if self.active[p] and p not in declined]

        @initialize(
            amounts=st.lists(
                st.integers(0, 6_000), min_size=N_USERS * N_PROVIDERS, max_size=N_USERS * N_PROVIDERS
            ),
            trust=st.lists(st.booleans(), min_size=N_USERS, max_size=N_USERS),
        )
        def fund_everyone(self, amounts, trust):
            """Every user deposits and funds some sub-accounts; some trust their providers' TEE signers."""
            for u in range(N_USERS):
                self.deposit(u, 20_000)
                for p in range(N_PROVIDERS):
                    if amounts[u * N_PROVIDERS + p] >= MIN_TRANSFER:
                        self.transfer(u, p, amounts[u * N_PROVIDERS + p])
                    if trust[u]:
                        self.acknowledge(u, p, True)

        # --- ledger: users ----------------------------------------------------------------------------
        @rule(u=st.integers(0, N_USERS - 1), amount=st.integers(MIN_DEPOSIT - 1, 30_000))
        def deposit(self, u, amount):
            ok, res, _ = ch.send("ledger", "depositFund", sender=USERS[u], value=amount)
            if amount < MIN_DEPOSIT:
                assert not ok and res == "DepositBelowMinimum"
                return
            assert ok, res
            self.available[u] += amount
            self.deposited += amount

        @rule(u=st.integers(0, N_USERS - 1), amount=st.integers(0, 30_000))
        def withdraw(self, u, amount):
            ok, res, _ = ch.send("ledger", "refund", amount, sender=USERS[u])
            if amount == 0 or amount > self.available[u]:
                assert not ok and res == ("ZeroAmount" if amount == 0 else "InsufficientAvailable")
                return
            assert ok, res
            self.available[u] -= amount
            self.paid_out += amount

        @rule(
            u=st.integers(0, N_USERS - 1),
            p=st.integers(0, N_PROVIDERS - 1),
            amount=st.integers(MIN_TRANSFER - 1, 15_000),
        )
        def transfer(self, u, p, amount):
            ok, res, _ = ch.send("ledger", "transferFund", PROVS[p], amount, sender=USERS[u])
            a = self.accts[(u, p)]
            if amount < MIN_TRANSFER:
                assert not ok and res == "TransferBelowMinimum"
                return
            if amount - min(amount, a.pending) > self.available[u]:
                assert not ok and res == "InsufficientAvailable"
                return
            assert ok, res
            self.available[u] -= self._fund(u, p, amount)
            self._record_funded(res)

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1), amount=st.integers(0, 15_000))
        def request_refund(self, u, p, amount):
            ok, res, _ = ch.send("ledger", "requestRefund", PROVS[p], amount, sender=USERS[u])
            a = self.accts[(u, p)]
            if amount == 0 or amount > a.free:
                assert not ok and res == ("ZeroAmount" if amount == 0 else "InsufficientFree")
                return
            assert ok, res
            a.free -= amount
            a.pending += amount
            a.unlock_at = ch.timestamp(res) + LOCK_TIME

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1))
        def collect_refund(self, u, p):
            a = self.accts[(u, p)]
            now = ch.timestamp()
            ok, res, _ = ch.send("ledger", "collectRefund", PROVS[p], sender=USERS[u])
            if a.pending == 0:
                assert not ok and res == "NoPendingRefund"
                return
            if not ok:
                # I5 (liveness side): a refund past its unlock time can always be collected
                assert res == "RefundLocked" and now < a.unlock_at + SLACK, (
                    "I5: unlocked refund refused",
                    res,
                    now,
                )
                seen("refund still locked")
                return
            # I5: never before the unlock time
            assert ch.timestamp(res) >= a.unlock_at, "I5: refund collected before its unlock time"
            assert now + SLACK >= a.unlock_at
            (ev,) = ch.events("ledger", "RefundCollected", res)
            assert ev.args.amount == a.pending
            seen("refund collected")
            self.available[u] += a.pending
            self.refunded[(u, p)] += a.pending
            a.pending = 0
            a.unlock_at = 0

        @rule(
            u=st.integers(0, N_USERS - 1),
            p=st.integers(0, N_PROVIDERS - 1),
            amount=st.integers(1, 3_000),
            wait=st.sampled_from(TIME_STEPS),
            settle_first=st.booleans(),
        )
        def refund_cycle(self, u, p, amount, wait, settle_first):
            """Request a refund, let time pass (maybe the provider settles meanwhile), try to collect."""
            self.request_refund(u, p, amount)
            self.travel(wait)
            if settle_first:
                self._settle(p, [self._issue(u, p, amount, SignerKind.USER, False, 0)])
            self.collect_refund(u, p)

        @rule(seconds=st.sampled_from(TIME_STEPS))
        def travel(self, seconds):
            ch.tick(seconds)
            ch.rpc("evm_mine", [])

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1), trust=st.booleans())
        def acknowledge(self, u, p, trust):
            signer = TEE[p] if trust else ZERO_ADDRESS
            a = self.accts[(u, p)]
            ok, res, _ = ch.send("ledger", "acknowledgeSigner", PROVS[p], signer, sender=USERS[u])
            if a.signer not in (ZERO_ADDRESS, signer) and self._balance((u, p)) != 0:
                assert not ok and res == "SignerChangeWithBalance"
                return
            assert ok, res
            a.signer = signer

        # --- receipts and settlement -------------------------------------------------------------------
        def _issue(self, u, p, inc, kind, forged, skip) -> int:
            """The user or the provider's TEE signer signs the next cumulative total of (u, p) (forged:
            another key signs). Returns the receipt's index in the pool."""
            k = (u, p)
            nonce = self.next_nonce[k] + skip
            total = self.signed_total[k] + inc
            if forged:
                key = FORGER_KEY if kind == SignerKind.TEE else stage["user_keys"][(u + 1) % N_USERS]
            else:
                key = tee_key(p) if kind == SignerKind.TEE else stage["user_keys"][u]
                self.next_nonce[k] = nonce + 1
                self.signed_total[k] = total
                self.max_authorized[k] = max(self.max_authorized[k], total)
            r = sign_receipt(
                key,
                stage["chain_id"],
                stage["ledger"],
                USERS[u],
                PROVS[p],
                nonce,
                total,
                keccak(text=f"requests {u} {p} {nonce}"),
                kind,
            )
            self.issued.append(
                IssuedReceipt(u, p, nonce, total, kind, Account.from_key(key).address, r.as_abi())
            )
            return len(self.issued) - 1

        @rule(p=st.integers(0, N_PROVIDERS - 1), receipt=RECEIPT)
        def issue_receipt(self, p, receipt):
            """A receipt is signed but kept (settled later, or never, or replayed)."""
            self._issue(receipt[0], p, *receipt[1:])

        def _expect(self, r: IssuedReceipt, p: int):
            """Reference model of one receipt settled by provider p: (status, paid); applies it."""
            k = (r.user, p)
            a = self.accts[k]
            if r.nonce <= a.nonce or r.nonce >= 2**64:
                return S.INVALID_NONCE, 0
            expected = USERS[r.user] if r.kind == SignerKind.USER else a.signer
            if expected == ZERO_ADDRESS:
                return S.SIGNER_NOT_ACKNOWLEDGED, 0
            if r.provider != p or r.signer != expected:
                return S.INVALID_SIGNATURE, 0
            if r.total < a.charged:
                return S.FEE_BELOW_CHARGED, 0
            due = r.total - a.charged
            pay = min(due, a.free + a.pending)
            from_free = min(pay, a.free)
            a.free -= from_free
            a.pending -= pay - from_free
            if a.pending == 0:
                a.unlock_at = 0
            a.charged += pay
            a.nonce = r.nonce
            return (S.SUCCESS if pay == due else S.PARTIAL), pay

        @rule(p=st.integers(0, N_PROVIDERS - 1), fresh=st.lists(RECEIPT, max_size=3), data=st.data())
        def settle(self, p, fresh, data):
            """Provider p settles receipts just signed for it plus old ones from the pool (its own mostly:
            replays and stale totals; sometimes other providers' receipts)."""
            picks = [self._issue(r[0], p, *r[1:]) for r in fresh]
            if self.issued:
                own = [i for i, r in enumerate(self.issued) if r.provider == p]
                pool = (
                    own
                    if own and data.draw(st.integers(0, 3), label="cross")
                    else list(range(len(self.issued)))
                )
                picks += data.draw(st.lists(st.sampled_from(pool), max_size=3), label="old receipts")
            self._settle(p, picks)

        def _settle(self, p: int, picks: list[int]) -> None:
            if not picks:
                return
            batch = [self.issued[i] for i in picks]
            ok, res, statuses = ch.send("ledger", "settleFees", [r.abi for r in batch], sender=PROVS[p])
            assert ok, res
            expected = [self._expect(r, p) for r in batch]
            assert list(statuses) == [int(s) for s, _ in expected]
            for status, _ in expected:
                seen(f"receipt {status.name}")
            events = ch.events("ledger", "ReceiptSettled", res)
            assert [(ev.args.status, ev.args.paid) for ev in events] == [
                (int(s), paid) for s, paid in expected
            ]
            for r, ev in zip(batch, events):
                if ev.args.status in (S.SUCCESS, S.PARTIAL):
                    key = (r.user, p, r.nonce)
                    # I2: a receipt is accepted at most once, nonces strictly increase
                    assert key not in self.accepted, "I2: receipt accepted twice"
                    prior = [n for (u2, p2, n) in self.accepted if (u2, p2) == (r.user, p)]
                    assert all(n < r.nonce for n in prior), "I2: accepted nonces must strictly increase"
                    self.accepted[key] = ev.args.paid
                    self.paid[(r.user, p)] += ev.args.paid
            self.earnings[p] += sum(paid for _, paid in expected)

        @rule(p=st.integers(0, N_PROVIDERS - 1))
        def withdraw_earnings(self, p):
            ok, res, _ = ch.send("ledger", "withdrawEarnings", PROVS[p], sender=PROVS[p])
            if self.earnings[p] == 0:
                assert not ok and res == "NoEarnings"
                return
            assert ok, res
            self.paid_out += self.earnings[p]
            self.withdrawn_earnings[p] += self.earnings[p]
            self.earnings[p] = 0

        # --- matching ------------------------------------------------------------------------------------
        @rule(u=st.integers(0, N_USERS - 1), deposit=st.integers(MIN_TRANSFER, 10_000))
        def request_match(self, u, deposit):
            self._request_match(u, deposit)

        def _request_match(self, u: int, deposit: int) -> int | None:
            ok, res, out = ch.send("matcher", "requestService", request(deposit=deposit), sender=USERS[u])
            cands = self._candidates([])
            if not cands:
                assert not ok and res == "NoMatchingService"
                return
            if deposit > self.available[u]:
                assert not ok and res == "InsufficientAvailable"
                return
            assert ok, res
            rid, provider = out[0], to_checksum_address(out[1])
            assert PROVS.index(provider) == cands[0], "not the cheapest active service"
            self.available[u] -= deposit
            self.reserved[u] += deposit
            self.requests[rid] = Req(u, cands[0], deposit, ch.timestamp(res) + DECLINE_WINDOW)
            return rid

        def _close(self, rid: int, accepted: bool) -> None:
            seen("match accepted" if accepted else "match released")
            q = self.requests.pop(rid)
            self.reserved[q.user] -= q.deposit
            if accepted:
                self.available[q.user] += q.deposit - self._fund(q.user, q.provider, q.deposit)
            else:
                self.available[q.user] += q.deposit

        def _rematch(self, rid: int, res) -> None:
            q = self.requests[rid]
            q.declined.append(q.provider)
            cands = self._candidates(q.declined)
            seen("re-match after decline")
            if not cands or len(q.declined) >= 4:
                assert ch.events("matcher", "MatchFailed", res)
                self._close(rid, accepted=False)
            else:
                (ev,) = ch.events("matcher", "ServiceMatched", res)
                assert PROVS.index(ev.args.provider) == cands[0]
                q.provider = cands[0]
                q.deadline = ch.timestamp(res) + DECLINE_WINDOW

        @rule(data=st.data(), action=st.sampled_from(ACTIONS))
        def respond(self, data, action):
            if not self.requests:
                if action == "toggle":
                    self._toggle_service(data.draw(st.integers(0, MATCHABLE - 1), label="service"))
                return
            self._respond(data.draw(st.sampled_from(sorted(self.requests)), label="request"), action)

        @rule(
            u=st.integers(0, N_USERS - 1),
            deposit=st.integers(MIN_TRANSFER, 10_000),
            steps=st.lists(st.sampled_from(ACTIONS + ["travel"]), min_size=1, max_size=4),
        )
        def match_cycle(self, u, deposit, steps):
            """A request followed by what the provider, the user or time do to it."""
            rid = self._request_match(u, deposit)
            for step in steps:
                if rid not in self.requests:
                    return
                if step == "travel":
                    self.travel(DECLINE_WINDOW + 5)
                else:
                    self._respond(rid, step)

        def _respond(self, rid: int, action: str) -> None:
            q = self.requests[rid]
            if action == "toggle":
                self._toggle_service(q.provider)
                return
            now = ch.timestamp()
            if action == "accept":
                ok, res, _ = ch.send("matcher", "acceptMatch", rid, sender=PROVS[q.provider])
                if not self.active[q.provider]:
                    assert not ok and res == "ServiceNotActive"
                    return
                assert ok, res
                self._close(rid, accepted=True)
                self._record_funded(res)
            elif action == "decline":
                ok, res, _ = ch.send("matcher", "declineMatch", rid, sender=PROVS[q.provider], timed=True)
                if not ok:
                    assert res in ("DeclineWindowClosed", "reverted") and now + SLACK > q.deadline
                    return
                assert now <= q.deadline + SLACK
                self._rematch(rid, res)
            elif action == "finalize":
                ok, res, _ = ch.send("matcher", "finalizeMatch", rid, sender=USERS[q.user])
                if not ok:
                    assert res == "DeclineWindowOpen" and now <= q.deadline + SLACK
                    return
                assert now + SLACK > q.deadline
                if self.active[q.provider]:
                    self._close(rid, accepted=True)
                    self._record_funded(res)
                else:
                    self._rematch(rid, res)
            else:
                ok, res, _ = ch.send("matcher", "cancelRequest", rid, sender=USERS[q.user])
                assert ok, res
                self._close(rid, accepted=False)

        def _toggle_service(self, p: int) -> None:
            """The provider pauses or resumes its service (matching skips paused services)."""
            ok, res, _ = ch.send(
                "registry", "setServiceActive", not self.active[p], ZERO_ADDRESS, sender=PROVS[p]
            )
            assert ok, res
            self.active[p] = not self.active[p]

        # --- invariants ------------------------------------------------------------------------------------
        def _read_chain(self) -> dict:
            keys = list(self.accts)
            calls = [("ledger", "getLedger", (u,)) for u in USERS]
            calls += [("ledger", "getAccount", (USERS[u], PROVS[p])) for u, p in keys]
            calls += [("ledger", "earnings", (p,)) for p in PROVS]
            calls += [("ledger", "totalDeposited", ()), ("ledger", "totalWithdrawn", ())]
            out = ch.views(calls)
            n, m = N_USERS, len(keys)
            return {
                "ledgers": [tuple(x) for x in out[:n]],
                "accounts": {k: tuple(x) for k, x in zip(keys, out[n : n + m])},
                "earnings": list(out[n + m : n + m + N_PROVIDERS]),
                "deposited": out[-2],
                "paid_out": out[-1],
                "eth": ch.w3.eth.get_balance(stage["ledger"]),
            }

        @invariant()
        def audit(self):
            COVERAGE["steps"] += 1
            state = self._read_chain()
            self.chain_matches_model(state)
            self.I1_conservation(state)
            self.I3_no_user_pays_more_than_signed(state)
            self.I4_no_provider_paid_from_another_users_funds(state)
            # I2 and I5 are checked where receipts are settled and refunds collected (settle, collect_refund)

        def chain_matches_model(self, state):
            assert state["ledgers"] == list(zip(self.available, self.reserved))
            for k, info in state["accounts"].items():
                a = self.accts[k]
                assert info == (
                    a.free + a.pending,
                    a.pending,
                    a.unlock_at,
                    a.nonce,
                    a.charged,
                    a.signer.lower(),
                ), k
            assert state["earnings"] == self.earnings

        def I1_conservation(self, state):
            assert (state["deposited"], state["paid_out"]) == (self.deposited, self.paid_out)
            held = sum(a + r for a, r in state["ledgers"])
            held += sum(info[0] for info in state["accounts"].values())
            held += sum(state["earnings"])
            assert held + state["paid_out"] == state["deposited"], "I1: balances + paid out != deposits"
            assert state["eth"] + state["paid_out"] == state["deposited"], (
                "I1: ledger ETH + paid out != deposits"
            )

        def I3_no_user_pays_more_than_signed(self, state):
            for k, info in state["accounts"].items():
                charged = info[4]
                assert charged == self.paid[k], k
                assert charged <= self.max_authorized[k], ("I3: paid above the signed total", k)

        def I4_no_provider_paid_from_another_users_funds(self, state):
            for k, info in state["accounts"].items():
                assert self.funded[k] == info[0] + self.refunded[k] + self.paid[k], ("I4: account flow", k)
            for p in range(N_PROVIDERS):
                income = state["earnings"][p] + self.withdrawn_earnings[p]
                assert income == sum(self.paid[(u, p)] for u in range(N_USERS)), ("I4: provider income", p)

    COVERAGE.clear()
    run_state_machine_as_test(ComputeMarket, settings=SETTINGS)
    print("\nCOVERAGE " + ", ".join(f"{k}: {v}" for k, v in sorted(COVERAGE.items())))
