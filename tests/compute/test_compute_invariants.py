"""Stateful property test of the compute market against the real contracts on Anvil, from the money's point of
view: what each party put in, what it is owed, what it may take out and what it did take out.

Hypothesis drives random sequences of deposits, withdrawals, sub-account transfers, payments into sub-accounts
by a funder (the bundle market's path), refund requests and collections (with time travel past the lock), TEE
signer acknowledgements, receipts signed by users and by providers' TEE signers (including forged, replayed,
stale and cross-provider ones), batched settlements, earnings withdrawals, matches (request from the list head or
from the client's start, accept, decline, silence then finalize, cancel), providers re-pricing (increases
delayed) and pausing their services, strikes and their penalties, and fine-tuning deliverables (posted with a
committed secret, acknowledged, disputed, settled in full with the right or a junk secret, or for the penalty,
late acknowledgements), by three users, three providers (0 and 1 run inference services, 2 a fine-tuning
service) and a funder.

The model keeps its own books of money flows (what each party put in, paid to whom, received from whom, took
out), never the contracts' counters; the chain's per-account views are only compared with it.

MONEY INVARIANTS
  M1 conserved     after every step: ETH held by the ledger, the registry and the matcher == the sum over the
                   parties of what each is owed (put in + received from others - paid to others - taken out)
  M2 withdrawable  after every step: what each party can get out of the contracts (a user: ledger available +
                   reserved + its sub-accounts; a provider: stake + earnings; the funder: nothing) == what it is
                   owed
  M3 exact payouts what reached each wallet (its balance change net of value sent and gas, per transaction) ==
                   the payouts the model allows: nobody takes out more, or less, than it asked for and is owed
  M4 signed bound  a user never pays a provider more through receipts than the largest cumulative total it (or
                   the TEE signer it acknowledged) signed; a fine-tuning task never costs more than its signed
                   fee, and no more than the penalty share unless the user acknowledged it; a disputed task pays
                   no penalty
  M5 lock          a refund is never collected before its unlock time (and always can be after it)
  M6 pass-through  the matcher holds nothing: stake taken for a strike goes straight to the user's ledger
  M7 drained       at the end of every example every party takes out all it is owed (refund lock waited, services
                   removed): the contracts hold 0 and every party is owed 0
  also             a receipt (user, provider, nonce) is accepted at most once, nonces of a pair strictly increase

Transactions go through Anvil's JSON-RPC directly (one eth_call to learn the outcome, then the transaction when it
succeeds) because ape's per-transaction machinery would make the example budget too slow. Each example runs on an
Anvil snapshot restored at teardown. `DEAIOS_AUDIT_STEPS=N` makes it a campaign of >= N steps (see
`deaios.testing.audit_settings`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from compute_helpers import (
    ACK_WINDOW,
    DECLINE_WINDOW,
    FINE_TUNING,
    LOCK_TIME,
    MIN_DEPOSIT,
    MIN_STAKE,
    MIN_TRANSFER,
    PENALTY_BPS,
    ZERO_ADDRESS,
    request,
    service_params,
)
from deaios.compute.receipts import SettlementStatus as S
from deaios.compute.receipts import SignerKind, sign_digest, sign_receipt, task_digest
from deaios.testing import audit_settings
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

SETTINGS = audit_settings(max_examples=10, stateful_step_count=30)  # `make audit`: 10,000+ steps

N_USERS, N_PROVIDERS = 3, 3
MATCHABLE = 2  # providers 0 and 1 run inference services; provider 2 runs a fine-tuning service
FT = 2
#: listed (input, output) price levels of the inference services: all price keys distinct (no ties)
PRICE_LEVELS = [(1, 3, 5), (2, 4, 6)]
TIME_STEPS = (10, DECLINE_WINDOW + 5, LOCK_TIME // 2, LOCK_TIME + 1)
SLACK = 3  # seconds of wall-clock drift tolerated around time boundaries
MAX_STRIKES = 3
MAX_DECLINES = 4


ACTIONS = ["accept", "decline", "finalize", "cancel", "toggle", "reprice"]
#: what follows a request in `match_cycle` (declines and silence weighted up: they are the strike paths)
CYCLE_STEPS = ["accept", "decline", "decline", "finalize", "travel", "travel", "cancel", "toggle", "reprice"]
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
#: the fine-tuning provider's encrypted model key (per task: + the task id)
SECRET = b"\x04 the fine-tuned model's key, encrypted for the user "


def _abi_type(o: dict) -> str:
    if o["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in o["components"]) + ")" + o["type"][5:]
    return o["type"]


class Chain:
    """Thin web3 access to the deployed contracts: outcome by eth_call, then the transaction."""

    def __init__(self, w3, contracts: dict) -> None:
        self.w3 = w3
        self.c = {}
        #: wallets whose every inflow is measured (M3): address -> last known balance
        self.wallets: dict[str, int] = {}
        #: what reached each tracked wallet from the contracts, net of value sent and gas
        self.received: Counter = Counter()
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
        if sender in self.wallets:
            after = self.w3.eth.get_balance(sender)
            spent = rcpt.gasUsed * rcpt.effectiveGasPrice + (value if rcpt.status == 1 else 0)
            self.received[sender] += after - self.wallets[sender] + spent
            self.wallets[sender] = after
        if rcpt.status != 1 and timed:
            return False, "reverted", None
        assert rcpt.status == 1, (contract, fn, args)
        return True, rcpt, out

    def track(self, addresses: list[str]) -> None:
        """Start measuring what reaches these wallets."""
        self.received.clear()
        self.wallets = {a: self.w3.eth.get_balance(a) for a in addresses}

    def view(self, contract: str, fn: str, *args):
        return getattr(self.c[contract].functions, fn)(*args).call()

    def views(self, calls: list[tuple], balances: list[str] = ()) -> list:
        """Many eth_calls in one JSON-RPC batch: [(contract, fn, args), ...] -> decoded outputs, followed by the
        ETH balances of `balances`."""
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
        requests += [("eth_getBalance", [a, "latest"]) for a in balances]
        results = self.w3.provider.make_batch_request(requests)
        decoded = []
        for res, t in zip(results, types):
            values = decode(t, bytes.fromhex(res["result"][2:]))
            decoded.append(values[0] if len(values) == 1 else values)
        return decoded + [int(res["result"], 16) for res in results[len(types):]]

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
    price: int  # the listed input (= output) price the provider was matched at
    declined: list = field(default_factory=list)


@dataclass
class Service:
    level: int = 0  # index into PRICE_LEVELS[p] of the listed price
    stake: int = MIN_STAKE
    active: bool = True
    strikes: int = 0


@dataclass
class Task:
    user: int
    task_id: bytes
    fee: int
    signature: bytes
    posted_at: int
    acked: bool = False
    disputed: bool = False
    settled: bool = False
    paid: int = 0


@pytest.fixture
def stage(ledger, registry, matcher, fine_tuning, providers, users, owner, outsider, chain):
    """Providers 0 and 1 register inference services, provider 2 a fine-tuning service; the outsider is a
    funder (FUNDER_ROLE: pays into users' sub-accounts, as the bundle market does)."""
    provs = providers[:N_PROVIDERS]
    for p, levels in zip(provs[:MATCHABLE], PRICE_LEVELS):
        registry.addOrUpdateService(
            service_params(input_price=levels[0], output_price=levels[0]), ZERO_ADDRESS, sender=p, value=MIN_STAKE
        )
    registry.addOrUpdateService(
        service_params(service_type=FINE_TUNING, input_price=3, output_price=0), ZERO_ADDRESS, sender=provs[FT],
        value=MIN_STAKE,
    )
    ledger.grantRole(ledger.FUNDER_ROLE(), outsider, sender=owner)
    w3 = chain.provider.web3
    return {
        "chain": Chain(w3, {"ledger": ledger, "registry": registry, "matcher": matcher, "ft": fine_tuning}),
        "users": [u.address for u in users[:N_USERS]],
        "user_keys": [u.private_key for u in users[:N_USERS]],
        "providers": [p.address for p in provs],
        "funder": outsider.address,
        "chain_id": chain.chain_id,
        "ledger": ledger.address,
        "fine_tuning": fine_tuning.address,
        "contracts": [ledger.address, registry.address, matcher.address, fine_tuning.address],
        "strike_penalty": registry.strikePenalty(),
        "price_delay": registry.priceIncreaseDelay(),
    }


def test_compute_market_invariants(stage):
    ch: Chain = stage["chain"]
    USERS, PROVS, FUNDER = stage["users"], stage["providers"], stage["funder"]
    TEE = [Account.from_key(tee_key(p)).address for p in range(N_PROVIDERS)]
    PENALTY = stage["strike_penalty"]
    PARTIES = [*USERS, *PROVS, FUNDER]

    class ComputeMarket(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = ch.rpc("evm_snapshot", [])["result"]
            ch.start_clock()
            ch.track(PARTIES)
            # --- the model's books of money (never read from the contracts) ---
            self.put_in = Counter({p: MIN_STAKE for p in PROVS})  # the stakes, paid when the stage registered
            self.taken_out: Counter = Counter()  # payouts the model allows (M3 compares with the wallets)
            self.moved: Counter = Counter()  # + received from other parties, - paid to them
            # --- the model's view of each party's holdings (where what it is owed sits) ---
            self.available = [0] * N_USERS
            self.reserved = [0] * N_USERS
            self.accts = {(u, p): Acct() for u in range(N_USERS) for p in range(N_PROVIDERS)}
            self.earnings = [0] * N_PROVIDERS
            self.services = {p: Service() for p in range(N_PROVIDERS)}  # FT's `level` is unused
            self.requests: dict[int, Req] = {}
            self.issued: list[IssuedReceipt] = []
            self.next_nonce = {k: 1 for k in self.accts}
            self.signed_total = {k: 0 for k in self.accts}
            self.max_signed = {k: 0 for k in self.accts}
            self.paid_by_receipts = {k: 0 for k in self.accts}
            self.accepted: set = set()
            self.tasks: list[Task] = []
            assert sum(ch.w3.eth.get_balance(c) for c in stage["contracts"]) == sum(self.owed().values()), \
                "M1: money in the contracts that no party is owed"

        def teardown(self) -> None:
            try:
                self.drain()
            finally:
                assert ch.rpc("evm_revert", [self.snapshot])["result"] is True

        # --- money -----------------------------------------------------------------------------------------
        def owed(self) -> dict[str, int]:
            """M1/M2: what each party may still take out, from the model's books of flows."""
            return {a: self.put_in[a] + self.moved[a] - self.taken_out[a] for a in PARTIES}

        def pay(self, frm: str, to: str, amount: int) -> None:
            """`amount` of what `frm` is owed becomes `to`'s (a fee, a penalty, a gift)."""
            self.moved[frm] -= amount
            self.moved[to] += amount

        def take_from_account(self, k, amount: int) -> None:
            """Spend `amount` of sub-account k: free funds first, then the pending refund."""
            a = self.accts[k]
            from_free = min(amount, a.free)
            a.free -= from_free
            a.pending -= amount - from_free
            if a.pending == 0:
                a.unlock_at = 0

        def fund(self, u: int, p: int, amount: int) -> int:
            """Funding (u, p) with `amount`: the pending refund is cancelled first; returns the part taken from the
            ledger."""
            a = self.accts[(u, p)]
            cancelled = min(amount, a.pending)
            a.pending -= cancelled
            if a.pending == 0:
                a.unlock_at = 0
            a.free += amount
            return amount - cancelled

        # --- set-up ------------------------------------------------------------------------------------------
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

        # --- ledger: users -----------------------------------------------------------------------------------
        @rule(u=st.integers(0, N_USERS - 1), amount=st.integers(MIN_DEPOSIT - 1, 30_000))
        def deposit(self, u, amount):
            ok, res, _ = ch.send("ledger", "depositFund", sender=USERS[u], value=amount)
            if amount < MIN_DEPOSIT:
                assert not ok and res == "DepositBelowMinimum"
                return
            assert ok, res
            self.available[u] += amount
            self.put_in[USERS[u]] += amount

        @rule(u=st.integers(0, N_USERS - 1), amount=st.integers(0, 30_000))
        def withdraw(self, u, amount):
            ok, res, _ = ch.send("ledger", "refund", amount, sender=USERS[u])
            if amount == 0 or amount > self.available[u]:
                assert not ok and res == ("ZeroAmount" if amount == 0 else "InsufficientAvailable")
                return
            assert ok, res
            self.available[u] -= amount
            self.taken_out[USERS[u]] += amount

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1),
              amount=st.integers(MIN_TRANSFER - 1, 15_000))
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
            self.available[u] -= self.fund(u, p, amount)

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1),
              amount=st.integers(MIN_TRANSFER - 1, 5_000))
        def funder_pays(self, u, p, amount):
            """The funder (e.g. the bundle market) pays straight into (u, p): the user's money now, committed."""
            ok, res, _ = ch.send("ledger", "depositToAccount", USERS[u], PROVS[p], sender=FUNDER, value=amount)
            if amount < MIN_TRANSFER:
                assert not ok and res == "TransferBelowMinimum"
                return
            assert ok, res
            seen("funder paid into a sub-account")
            self.put_in[FUNDER] += amount
            self.pay(FUNDER, USERS[u], amount)
            self.accts[(u, p)].free += amount  # a pending refund is not cancelled

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
                # M5 (liveness side): a refund past its unlock time can always be collected
                assert res == "RefundLocked" and now < a.unlock_at + SLACK, ("M5: unlocked refund refused", res)
                seen("refund still locked")
                return
            # M5: never before the unlock time
            assert ch.timestamp(res) >= a.unlock_at, "M5: refund collected before its unlock time"
            seen("refund collected")
            self.available[u] += a.pending
            a.pending = 0
            a.unlock_at = 0

        @rule(u=st.integers(0, N_USERS - 1), p=st.integers(0, N_PROVIDERS - 1), amount=st.integers(1, 3_000),
              wait=st.sampled_from(TIME_STEPS), settle_first=st.booleans())
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
            if a.signer not in (ZERO_ADDRESS, signer) and a.free + a.pending != 0:
                assert not ok and res == "SignerChangeWithBalance"
                return
            assert ok, res
            a.signer = signer

        # --- receipts and settlement ---------------------------------------------------------------------
        def _issue(self, u, p, inc, kind, forged, skip) -> int:
            """The user or the provider's TEE signer signs the next cumulative total of (u, p) (forged: another
            key signs). Returns the receipt's index in the pool."""
            k = (u, p)
            nonce = self.next_nonce[k] + skip
            total = self.signed_total[k] + inc
            if forged:
                key = FORGER_KEY if kind == SignerKind.TEE else stage["user_keys"][(u + 1) % N_USERS]
            else:
                key = tee_key(p) if kind == SignerKind.TEE else stage["user_keys"][u]
                self.next_nonce[k] = nonce + 1
                self.signed_total[k] = total
                self.max_signed[k] = max(self.max_signed[k], total)
            r = sign_receipt(key, stage["chain_id"], stage["ledger"], USERS[u], PROVS[p], nonce, total,
                             keccak(text=f"requests {u} {p} {nonce}"), kind)
            self.issued.append(IssuedReceipt(u, p, nonce, total, kind, Account.from_key(key).address, r.as_abi()))
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
            self.take_from_account(k, pay)
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
                pool = own if own and data.draw(st.integers(0, 3), label="cross") else list(range(len(self.issued)))
                picks += data.draw(st.lists(st.sampled_from(pool), max_size=3), label="old receipts")
            self._settle(p, picks)

        def _settle(self, p: int, picks: list[int]) -> None:
            if not picks:
                return
            batch = [self.issued[i] for i in picks]
            ok, res, statuses = ch.send("ledger", "settleFees", [r.abi for r in batch], sender=PROVS[p])
            assert ok, res
            expected = [self._expect(r, p) for r in batch]
            assert list(statuses) == [int(st_) for st_, _ in expected]
            for status, _ in expected:
                seen(f"receipt {status.name}")
            events = ch.events("ledger", "ReceiptSettled", res)
            assert [(ev.args.status, ev.args.paid) for ev in events] == [(int(s_), paid) for s_, paid in expected]
            for r, (status, paid) in zip(batch, expected):
                if status in (S.SUCCESS, S.PARTIAL):
                    key = (r.user, p, r.nonce)
                    assert key not in self.accepted, "a receipt accepted twice"
                    assert all(n < r.nonce for (u2, p2, n) in self.accepted if (u2, p2) == (r.user, p)), \
                        "accepted nonces must strictly increase"
                    self.accepted.add(key)
                    self.paid_by_receipts[(r.user, p)] += paid
                    self.pay(USERS[r.user], PROVS[p], paid)
                    self.earnings[p] += paid

        @rule(p=st.integers(0, N_PROVIDERS - 1))
        def withdraw_earnings(self, p):
            ok, res, _ = ch.send("ledger", "withdrawEarnings", PROVS[p], sender=PROVS[p])
            if self.earnings[p] == 0:
                assert not ok and res == "NoEarnings"
                return
            assert ok, res
            self.taken_out[PROVS[p]] += self.earnings[p]
            self.earnings[p] = 0

        # --- matching ------------------------------------------------------------------------------------
        def price(self, p: int) -> int:
            return PRICE_LEVELS[p][self.services[p].level]

        def candidates(self, declined: list) -> list[int]:
            """Active inference services not declined, cheapest listed price first."""
            live = [p for p in range(MATCHABLE) if self.services[p].active and p not in declined]
            return sorted(live, key=self.price)

        @rule(u=st.integers(0, N_USERS - 1), deposit=st.integers(MIN_TRANSFER, 10_000), client=st.booleans())
        def request_match(self, u, deposit, client):
            self._request_match(u, deposit, client)

        def _request_match(self, u: int, deposit: int, client: bool = True) -> int | None:
            """`client`: start the scan where `findFirstMatch` says, as the client does; else at the list head."""
            req = request(deposit=deposit)
            if client:
                key = ch.view("registry", "listKeyOf", req[0], req[1])
                req = req[:-1] + (ch.view("registry", "findFirstMatch", key, *req[2:6]),)
            ok, res, out = ch.send("matcher", "requestService", req, sender=USERS[u])
            cands = self.candidates([])
            if not cands:
                assert not ok and res == "NoMatchingService"
                return None
            if deposit > self.available[u]:
                assert not ok and res == "InsufficientAvailable"
                return None
            assert ok, res
            rid, provider = out[0], to_checksum_address(out[1])
            assert PROVS.index(provider) == cands[0], "not the cheapest active service"
            self.available[u] -= deposit
            self.reserved[u] += deposit
            self.requests[rid] = Req(u, cands[0], deposit, ch.timestamp(res) + DECLINE_WINDOW, self.price(cands[0]))
            return rid

        def _close(self, rid: int, accepted: bool) -> None:
            seen("match accepted" if accepted else "match released")
            q = self.requests.pop(rid)
            self.reserved[q.user] -= q.deposit
            if accepted:
                self.available[q.user] += q.deposit - self.fund(q.user, q.provider, q.deposit)
                self.services[q.provider].strikes = 0
            else:
                self.available[q.user] += q.deposit

        def _strike(self, rid: int, res) -> None:
            """The matched provider declined or ignored the request: penalty to the user, then re-match."""
            q = self.requests[rid]
            svc = self.services[q.provider]
            penalty = min(PENALTY, svc.stake)
            svc.stake -= penalty
            svc.strikes += 1
            self.pay(PROVS[q.provider], USERS[q.user], penalty)
            self.available[q.user] += penalty
            if svc.active and (svc.strikes >= MAX_STRIKES or svc.stake < PENALTY):
                svc.active = False
                seen("service out after strikes")
            paid = [ev.args.amount for ev in ch.events("matcher", "UserCompensated", res)]
            assert paid == ([penalty] if penalty else []), "the strike's penalty did not reach the user"
            seen("strike")
            q.declined.append(q.provider)
            cands = self.candidates(q.declined)
            if not cands or len(q.declined) >= MAX_DECLINES:
                assert ch.events("matcher", "MatchFailed", res)
                self._close(rid, accepted=False)
            else:
                (ev,) = ch.events("matcher", "ServiceMatched", res)
                assert PROVS.index(ev.args.provider) == cands[0]
                q.provider, q.price = cands[0], self.price(cands[0])
                q.deadline = ch.timestamp(res) + DECLINE_WINDOW

        @rule(data=st.data(), action=st.sampled_from(ACTIONS))
        def respond(self, data, action):
            if not self.requests:
                p = data.draw(st.integers(0, MATCHABLE - 1), label="service")
                if action == "toggle":
                    self._toggle_service(p)
                elif action == "reprice":
                    self._reprice(p, data.draw(st.integers(0, 2), label="level"))
                return
            rid = data.draw(st.sampled_from(sorted(self.requests)), label="request")
            self._respond(rid, action, data.draw(st.integers(0, 2), label="level"))

        @rule(u=st.integers(0, N_USERS - 1), deposit=st.integers(MIN_TRANSFER, 10_000),
              steps=st.lists(st.sampled_from(CYCLE_STEPS), min_size=1, max_size=4), level=st.integers(0, 2))
        def match_cycle(self, u, deposit, steps, level):
            """A request followed by what the provider, the user or time do to it."""
            rid = self._request_match(u, deposit)
            for step in steps:
                if rid not in self.requests:
                    return
                if step == "travel":
                    self.travel(DECLINE_WINDOW + 5)
                else:
                    self._respond(rid, step, level)

        def _respond(self, rid: int, action: str, level: int) -> None:
            q = self.requests[rid]
            if action == "toggle":
                self._toggle_service(q.provider)
                return
            if action == "reprice":
                self._reprice(q.provider, level)
                return
            now = ch.timestamp()
            if action == "accept":
                ok, res, _ = ch.send("matcher", "acceptMatch", rid, sender=PROVS[q.provider], timed=True)
                if not self.services[q.provider].active:
                    assert not ok and res in ("ServiceNotActive", "DeclineWindowClosed")
                    return
                if self.price(q.provider) > q.price:
                    assert not ok and res in ("MatchTermsChanged", "DeclineWindowClosed")
                    seen("acceptance refused: terms changed")
                    return
                if not ok:
                    assert res in ("DeclineWindowClosed", "reverted") and now + SLACK > q.deadline
                    return
                assert now <= q.deadline + SLACK
                self._close(rid, accepted=True)
            elif action == "decline":
                ok, res, _ = ch.send("matcher", "declineMatch", rid, sender=PROVS[q.provider], timed=True)
                if not ok:
                    assert res in ("DeclineWindowClosed", "reverted") and now + SLACK > q.deadline
                    return
                assert now <= q.deadline + SLACK
                self._strike(rid, res)
            elif action == "finalize":
                ok, res, _ = ch.send("matcher", "finalizeMatch", rid, sender=USERS[q.user])
                if not ok:
                    assert res == "DeclineWindowOpen" and now <= q.deadline + SLACK
                    return
                assert now + SLACK > q.deadline
                seen("silence is a decline")
                self._strike(rid, res)
            else:
                ok, res, _ = ch.send("matcher", "cancelRequest", rid, sender=USERS[q.user])
                assert ok, res
                self._close(rid, accepted=False)

        def _toggle_service(self, p: int) -> None:
            """The provider pauses or resumes its service (matching skips paused services)."""
            svc = self.services[p]
            ok, res, _ = ch.send("registry", "setServiceActive", not svc.active, ZERO_ADDRESS, sender=PROVS[p])
            if not svc.active and svc.stake < PENALTY:
                assert not ok and res == "StakeTooLow"
                seen("stake exhausted: cannot resume")
                return
            assert ok, res
            svc.active = not svc.active
            if svc.active:
                svc.strikes = 0

        def _reprice(self, p: int, level: int) -> None:
            """The provider lists another price (an increase is billed later; matching uses it at once)."""
            price = PRICE_LEVELS[p][level]
            hint = ch.view("registry", "findInsertHint", ch.view("registry", "listKeyOf", 0, request()[1]),
                           price, price, PROVS[p])
            ok, res, _ = ch.send("registry", "addOrUpdateService",
                                 service_params(input_price=price, output_price=price), hint, sender=PROVS[p])
            assert ok, res
            if level > self.services[p].level:
                seen("price increase announced")
            self.services[p].level = level

        # --- fine-tuning (provider 2) --------------------------------------------------------------------
        @rule(u=st.integers(0, N_USERS - 1), fee=st.integers(0, 8_000))
        def ft_post(self, u, fee):
            """The user ordered a task (signing its fee); the provider posts the model and commits its secret."""
            task_id = keccak(text=f"task {len(self.tasks)}")
            digest = task_digest(stage["chain_id"], stage["fine_tuning"], USERS[u], PROVS[FT], task_id, fee)
            ok, res, _ = ch.send("ft", "addDeliverable", USERS[u], task_id, keccak(task_id), keccak(SECRET + task_id),
                                 sender=PROVS[FT])
            assert ok, res
            self.tasks.append(Task(u, task_id, fee, sign_digest(stage["user_keys"][u], digest), ch.timestamp(res)))

        @rule(k=st.integers(0, 1_000), action=st.sampled_from(["ack", "dispute"]))
        def ft_user(self, k, action):
            if not self.tasks:
                return
            t = self.tasks[k % len(self.tasks)]
            now = ch.timestamp()
            if action == "ack":
                ok, res, _ = ch.send("ft", "acknowledgeDeliverable", PROVS[FT], t.task_id, sender=USERS[t.user])
                if t.settled or t.acked:
                    assert not ok and res in ("AlreadySettled", "AlreadyAcknowledged")
                    return
                assert ok, res
                t.acked = True
                if t.paid:
                    seen("late acknowledgement after a penalty")
            else:
                ok, res, _ = ch.send("ft", "disputeDeliverable", PROVS[FT], t.task_id, sender=USERS[t.user],
                                     timed=True)
                if t.acked or t.disputed:
                    assert not ok and res in ("AlreadyAcknowledged", "AlreadyDisputed")
                    return
                if not ok:
                    assert res in ("AckWindowClosed", "reverted") and now + SLACK >= t.posted_at + ACK_WINDOW
                    return
                t.disputed = True
                seen("task disputed")

        @rule(k=st.integers(0, 1_000), junk=st.integers(0, 4).map(lambda x: x == 0))
        def ft_settle(self, k, junk):
            """The provider settles: with the secret if acknowledged (junk: a wrong one), else for the penalty."""
            if not self.tasks:
                return
            t = self.tasks[k % len(self.tasks)]
            secret = (b"junk" if junk else SECRET + t.task_id) if t.acked else b""
            s_ = (USERS[t.user], t.task_id, t.fee, secret, int(SignerKind.USER), t.signature)
            now = ch.timestamp()
            ok, res, _ = ch.send("ft", "settleDeliverable", s_, sender=PROVS[FT], timed=True)
            acct = self.accts[(t.user, FT)]
            if t.settled:
                assert not ok and res == "AlreadySettled"
                return
            if t.acked:
                if junk:
                    assert not ok and res == "SecretMismatch"
                    seen("junk secret refused")
                    return
                due = t.fee - t.paid
            else:
                if not ok and res in ("AckWindowOpen", "reverted"):
                    assert now <= t.posted_at + ACK_WINDOW + SLACK
                    return
                if t.disputed or t.paid:
                    assert not ok and res in ("DisputedDeliverable", "PenaltyAlreadyPaid")
                    return
                due = t.fee * PENALTY_BPS // 10_000
            if due > acct.free + acct.pending:
                assert not ok and res == "InsufficientAccountBalance"
                return
            assert ok, res
            seen("task settled in full" if t.acked else "task penalty")
            self.take_from_account((t.user, FT), due)
            self.pay(USERS[t.user], PROVS[FT], due)
            self.earnings[FT] += due
            t.paid += due
            t.settled = t.acked
            # M4: never above the signed fee, and the penalty share only without an acknowledgement
            assert t.paid <= t.fee
            assert t.acked or t.paid <= t.fee * PENALTY_BPS // 10_000
            assert not (t.disputed and not t.acked and t.paid)

        @rule(u=st.integers(0, N_USERS - 1), fee=st.integers(0, 6_000), ack=st.booleans(), dispute=st.booleans(),
              late_ack=st.booleans(), junk=st.integers(0, 3).map(lambda x: x == 0))
        def ft_cycle(self, u, fee, ack, dispute, late_ack, junk):
            """A task from posting to settlement: disputed or not, acknowledged in time or not (then the penalty,
            and maybe a late acknowledgement and the rest of the fee)."""
            self.ft_post(u, fee)
            k = len(self.tasks) - 1
            if dispute:
                self.ft_user(k, "dispute")
            if ack:
                self.ft_user(k, "ack")
                self.ft_settle(k, junk)
            else:
                self.travel(ACK_WINDOW + 1)
                self.ft_settle(k, False)
                if late_ack:
                    self.ft_user(k, "ack")
                    self.ft_settle(k, junk)

        # --- invariants ----------------------------------------------------------------------------------
        @invariant()
        def money(self):
            COVERAGE["steps"] += 1
            keys = list(self.accts)
            calls = [("ledger", "getLedger", (u,)) for u in USERS]
            calls += [("ledger", "getAccount", (USERS[u], PROVS[p])) for u, p in keys]
            calls += [("ledger", "earnings", (p,)) for p in PROVS]
            calls += [("registry", "getService", (p,)) for p in PROVS]
            out = ch.views(calls, balances=stage["contracts"])
            n, m, k = N_USERS, len(keys), len(stage["contracts"])
            ledgers, accounts = out[:n], dict(zip(keys, out[n:n + m]))
            earnings, services = out[n + m:n + m + N_PROVIDERS], out[n + m + N_PROVIDERS:-k]
            held = out[-k:]
            owed = self.owed()
            # M1 conserved: the money in the contracts is exactly what the parties are owed
            assert sum(held) == sum(owed.values()), ("M1", held, owed)
            # M6 pass-through: the matcher (and the fine-tuning contract) hold nothing
            assert held[2] == 0 and held[3] == 0, ("M6", held)
            # M2 withdrawable: each party can get out exactly what it is owed
            for u in range(N_USERS):
                mine = sum(ledgers[u]) + sum(accounts[(u, p)][0] for p in range(N_PROVIDERS))
                assert mine == owed[USERS[u]], ("M2 user", u, mine, owed[USERS[u]])
            for p in range(N_PROVIDERS):
                mine = services[p][12] + earnings[p]
                assert mine == owed[PROVS[p]], ("M2 provider", p, mine, owed[PROVS[p]])
            assert owed[FUNDER] == 0
            # M3 exact payouts: what reached every wallet is what the model paid out
            assert {a: ch.received[a] for a in PARTIES} == {a: self.taken_out[a] for a in PARTIES}, "M3"
            # M4 signed bound
            for k, paid in self.paid_by_receipts.items():
                assert paid <= self.max_signed[k], ("M4: paid above the signed total", k)
            # the chain's per-account views agree with the model (diagnostics: where a divergence starts)
            assert [tuple(x) for x in ledgers] == list(zip(self.available, self.reserved))
            for k, info in accounts.items():
                a = self.accts[k]
                assert tuple(info) == (a.free + a.pending, a.pending, a.unlock_at, a.nonce, a.charged,
                                       a.signer.lower()), k
            assert list(earnings) == self.earnings
            for p in range(N_PROVIDERS):
                assert (services[p][12], services[p][15]) == (self.services[p].stake, self.services[p].active), p

        def drain(self) -> None:
            """M7: every party takes out what it is owed; the contracts end empty."""
            for rid, q in list(self.requests.items()):
                ok, res, _ = ch.send("matcher", "cancelRequest", rid, sender=USERS[q.user])
                assert ok, res
                self._close(rid, accepted=False)
            for (u, p), a in self.accts.items():
                if a.free:
                    self.request_refund(u, p, a.free)
            self.travel(LOCK_TIME + 1)
            for (u, p), a in self.accts.items():
                if a.pending:
                    self.collect_refund(u, p)
            for u in range(N_USERS):
                if self.available[u]:
                    self.withdraw(u, self.available[u])
            for p in range(N_PROVIDERS):
                if self.earnings[p]:
                    self.withdraw_earnings(p)
                ok, res, _ = ch.send("registry", "removeService", sender=PROVS[p])
                assert ok, res
                self.taken_out[PROVS[p]] += self.services[p].stake
                self.services[p] = Service(stake=0, active=False)
            assert [ch.w3.eth.get_balance(c) for c in stage["contracts"]] == [0, 0, 0, 0], "M7: money left"
            assert all(v == 0 for v in self.owed().values()), ("M7: someone is still owed", self.owed())
            assert {a: ch.received[a] for a in PARTIES} == {a: self.taken_out[a] for a in PARTIES}, "M3 at the end"
            COVERAGE["drained to 0"] += 1

    COVERAGE.clear()
    run_state_machine_as_test(ComputeMarket, settings=SETTINGS)
    print("\nCOVERAGE " + ", ".join(f"{k}: {v}" for k, v in sorted(COVERAGE.items())))
