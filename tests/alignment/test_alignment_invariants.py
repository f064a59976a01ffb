"""Stateful property test of the alignment-node economy against the real contracts on Anvil.

Hypothesis drives random sequences of license purchases (over the wallet and supply caps), transfers (by the
owner or not), delegations and undelegations (by the owner, by the operator, by the wrong party, over the
operator cap, twice), commission changes, reward records by "supervision" (repeated epochs, an empty pool),
pool top-ups, claims (of own and foreign licenses, twice), proposals and votes (twice, with foreign or
too-new licenses), by three holders and two operators. Every call's outcome (success or the exact custom
error) is predicted by a Python model, and after every step the audit invariants below are checked against
the chain.

AUDIT INVARIANTS
  I1 supply            licenses minted <= max supply; the owners' balances sum to the licenses minted
  I2 delegation once   every license has at most one operator; per-operator counts equal the licenses whose
                       operatorOf is that operator and sum to totalDelegated; the getDelegatorInfo sets hold
                       every delegated license exactly once, under its (owner, operator)
  I3 no double reward  claimed + credited + pending of all licenses == rewards allocated by records <= funded;
                       per account: paid + credited + pending of its licenses == what the model says it
                       earned (owner share at record time to the owner of that moment, commissions to
                       operators); a claim that paid leaves nothing to claim; the contract holds
                       funded - claimed
  I4 one vote          each license votes at most once per proposal (votes tallied == (proposal, license)
                       flags set == the model's), whoever owns it when
"""

from __future__ import annotations

import pytest
from alignment_econ_helpers import Rpc, deploy
from collections import Counter

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

SETTINGS = settings(
    max_examples=15,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SUPPLY, WALLET_CAP, MAX_PER_OP = 16, 7, 4
TIERS = ((5, 100), (SUPPLY, 200))
REWARD, FUNDING = 1_000, 9_000
COMMISSIONS = (1_500, 4_000)
MAX_COMMISSION = 5_000
MAX_PROPOSALS = 3
N_HOLDERS, N_OPS = 3, 2
N_ACTORS = N_HOLDERS + N_OPS  # actors 0..2 holders, 3..4 operators
ACTOR = st.integers(0, N_ACTORS - 1)
OP = st.integers(0, N_OPS - 1)
TOKEN = st.integers(1, SUPPLY)  # may name a license not minted yet
PICKS = st.lists(st.integers(0, SUPPLY), min_size=1, max_size=3)


COVERAGE: Counter = Counter()


def seen(label: str) -> None:
    """Count an outcome (printed with -s: evidence that the examples reach every path)."""
    event(label)
    COVERAGE[label] += 1


def price(token_id: int) -> int:
    return next(p for up_to, p in TIERS if token_id <= up_to)


@pytest.fixture
def stage(project, accounts, chain):
    admin, supervisor = accounts[0], accounts[9]
    actors = accounts[1 : 1 + N_ACTORS]
    d = deploy(
        admin,
        project,
        max_supply=SUPPLY,
        tier_up_to=[t[0] for t in TIERS],
        tier_prices=[t[1] for t in TIERS],
        wallet_cap=WALLET_CAP,
        transfer_lock=0,
        max_licenses_per_operator=MAX_PER_OP,
        max_commission_bps=MAX_COMMISSION,
        reward_per_license=REWARD,
        reward_funding=FUNDING,
        voting_period=10**6,
    )
    lic = project.AlignmentLicense.at(d["license"])
    dlg = project.AlignmentDelegation.at(d["delegation"])
    rew = project.AlignmentRewards.at(d["rewards"])
    gov = project.AlignmentGovernor.at(d["governor"])
    rew.grantRole(rew.SUPERVISION_ROLE(), supervisor, sender=admin)
    for op, bps in zip(actors[N_HOLDERS:], COMMISSIONS):  # each operator owns license 1 or 2
        lic.buy(1, sender=op, value=lic.quote(1))
        dlg.registerOperator(bps, sender=op)
    rpc = Rpc(chain.provider.web3, {"lic": lic, "dlg": dlg, "rew": rew, "gov": gov})
    return {
        "rpc": rpc,
        "admin": admin.address,
        "supervisor": supervisor.address,
        "actors": [a.address for a in actors],
        "reward_call": rpc.c["rew"].encode_abi("setRewardPerLicense", args=[REWARD]),
        "rewards": rew.address,
    }


def test_alignment_economy_invariants(stage):
    ch: Rpc = stage["rpc"]
    A = stage["actors"]
    OPS = A[N_HOLDERS:]
    ADMIN, SUP = stage["admin"], stage["supervisor"]

    class Economy(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = ch.rpc("evm_snapshot", [])["result"]
            self.owner = {1: OPS[0], 2: OPS[1]}  # token -> owner address
            self.purchased = {a: 0 for a in A}
            self.purchased[OPS[0]] = self.purchased[OPS[1]] = 1
            self.operator: dict[int, str] = {}
            self.commission = dict(zip(OPS, COMMISSIONS))
            self.recorded: set[tuple[int, str]] = set()
            self.funded, self.allocated = FUNDING, 0
            self.earned = {a: 0 for a in A}  # what each account earned (owner shares + commissions)
            self.paid = {a: 0 for a in A}
            self.snapshots: list[int] = []  # proposal id - 1 -> licenses minted at proposal time
            self.voted: set[tuple[int, int]] = set()

        def teardown(self) -> None:
            assert ch.rpc("evm_revert", [self.snapshot])["result"] is True

        @property
        def minted(self) -> int:
            return len(self.owner)

        def count(self, op: str) -> int:
            return sum(1 for o in self.operator.values() if o == op)

        def pick(self, account: str, picks: list[int], raw: bool) -> list[int]:
            """Licenses of `account` chosen by `picks` (or, when `raw` or it owns none, any token ids)."""
            owned = sorted(t for t, o in self.owner.items() if o == account)
            if raw or not owned:
                return [p % SUPPLY + 1 for p in picks]
            return [owned[p % len(owned)] for p in picks]

        def holder(self, a: int, pick: int) -> str:
            """A[a] if it owns a license, else the owner of a license chosen by `pick`."""
            if A[a] in self.owner.values():
                return A[a]
            return self.owner[pick % self.minted + 1]

        def expect(self, what: str, ok: bool, res, error: str | None) -> bool:
            """Check a call's outcome against the model's expected error (None: success)."""
            seen(f"{what}: {error or 'ok'}")
            if error is None:
                assert ok, res
                return True
            assert not ok and res == error, (res, error)
            return False

        # --- license ----------------------------------------------------------------------------
        @initialize(qs=st.lists(st.integers(1, 3), min_size=N_HOLDERS, max_size=N_HOLDERS), to=OP)
        def first_sale(self, qs, to):
            """Every holder buys 1-3 licenses and delegates its first to an operator; the operators
            self-operate their own license (so that records pay from the first step)."""
            for a, q in enumerate(qs):
                self.buy(a, q)
                self.delegate(a, (a + to) % N_OPS, [0], 1)
            for i, op in enumerate(OPS):
                self.delegate(N_HOLDERS + i, i, [0], 1)

        @rule(a=ACTOR, q=st.integers(1, 5))
        def buy(self, a, q):
            buyer = A[a]
            cost = sum(price(i) for i in range(self.minted + 1, min(self.minted + q, SUPPLY) + 1))
            ok, res = ch.send("lic", "buy", q, sender=buyer, value=cost)
            if q > SUPPLY - self.minted:
                error = "SoldOut"
            elif self.purchased[buyer] + q > WALLET_CAP:
                error = "WalletCapExceeded"
            else:
                error = None
            if self.expect("buy", ok, res, error):
                for t in range(self.minted + 1, self.minted + q + 1):
                    self.owner[t] = buyer
                self.purchased[buyer] += q

        @rule(t=TOKEN, to=ACTOR, by_owner=st.booleans())
        def transfer(self, t, to, by_owner):
            if t not in self.owner:
                return
            frm = self.owner[t]
            sender = frm if by_owner else A[(A.index(frm) + 1) % N_ACTORS]
            ok, res = ch.send("lic", "transferFrom", frm, A[to], t, sender=sender)
            if self.expect("transfer", ok, res, None if by_owner else "ERC721InsufficientApproval"):
                self.owner[t] = A[to]
                self.operator.pop(t, None)  # the transfer clears the delegation (pending settled)

        # --- delegation ----------------------------------------------------------------------------
        @rule(a=ACTOR, op=st.integers(0, N_OPS), picks=PICKS, raw=st.integers(0, 3))
        def delegate(self, a, op, picks, raw):
            operator = OPS[op] if op < N_OPS else A[0]  # A[0] is not an operator
            account = self.holder(a, picks[0]) if raw else A[a]
            tokens = self.pick(account, picks, raw == 0)
            ok, res = ch.send("dlg", "delegateNfts", operator, tokens, sender=account)
            error, model = None, dict(self.operator)
            if operator not in OPS:
                error = "OperatorNotRegistered"
            elif self.count(operator) + len(tokens) > MAX_PER_OP:
                error = "OperatorCapExceeded"
            else:
                for t in tokens:
                    if t not in self.owner:
                        error = "ERC721NonexistentToken"
                    elif self.owner[t] != account:
                        error = "NotLicenseOwner"
                    elif t in model:
                        error = "AlreadyDelegated"
                    if error:
                        break
                    model[t] = operator
            if self.expect("delegate", ok, res, error):
                self.operator = model

        @rule(pick=st.integers(0, SUPPLY), mode=st.sampled_from(["right", "right", "owner", "operator"]),
              by_operator=st.booleans())
        def undelegate(self, pick, mode, by_operator):
            if not self.operator:
                return
            t = sorted(self.operator)[pick % len(self.operator)]
            delegator, operator = self.owner[t], self.operator[t]
            if mode == "owner":
                delegator = A[(A.index(delegator) + 1) % N_ACTORS]
            elif mode == "operator":
                operator = OPS[(OPS.index(operator) + 1) % N_OPS]
            sender, address = (operator, delegator) if by_operator else (delegator, operator)
            ok, res = ch.send("dlg", "undelegateNfts", address, [t], by_operator, sender=sender)
            if self.expect("undelegate", ok, res, None if mode == "right" else "NotDelegated"):
                del self.operator[t]

        @rule(op=OP, bps=st.integers(0, MAX_COMMISSION + 1_000))
        def set_commission(self, op, bps):
            ok, res = ch.send("dlg", "setCommission", bps, sender=OPS[op])
            if self.expect("commission", ok, res, "CommissionTooHigh" if bps > MAX_COMMISSION else None):
                self.commission[OPS[op]] = bps

        # --- rewards ---------------------------------------------------------------------------------
        @rule(epoch=st.integers(1, 4), op=OP)
        def record(self, epoch, op):
            operator = OPS[op]
            ok, res = ch.send("rew", "recordOperated", epoch, operator, sender=SUP)
            n = self.count(operator)
            if (epoch, operator) in self.recorded:
                error = "AlreadyRecorded"
            elif n * REWARD > self.funded - self.allocated:
                error = "InsufficientRewardFunds"
            else:
                error = None
            if self.expect("record", ok, res, error):
                self.recorded.add((epoch, operator))
                commission = REWARD * self.commission[operator] // 10_000
                for t, o in self.operator.items():
                    if o == operator:
                        self.earned[self.owner[t]] += REWARD - commission
                self.earned[operator] += commission * n
                self.allocated += n * REWARD

        @precondition(lambda self: self.funded - self.allocated < 3 * REWARD)
        @rule(amount=st.integers(1, 6_000))
        def fund(self, amount):
            ok, res = ch.send("rew", "fundRewards", sender=ADMIN, value=amount)
            self.expect("fund", ok, res, None)
            self.funded += amount

        @precondition(lambda self: any(self.earned[a] > self.paid[a] for a in A))
        @rule(a=ACTOR, richest=st.booleans(), foreign=st.sampled_from([False, False, False, True]))
        def claim(self, a, richest, foreign):
            if richest:  # the account owed most, so that claims often pay
                a = max(range(N_ACTORS), key=lambda i: self.earned[A[i]] - self.paid[A[i]])
            owned = [t for t, o in self.owner.items() if o == A[a]]
            others = [t for t, o in self.owner.items() if o != A[a]]
            tokens = owned + (others[:1] if foreign else [])
            ok, res = ch.send("rew", "claim", tokens, sender=A[a])
            if foreign and others:
                self.expect("claim", ok, res, "NotLicenseOwner")
                return
            if not ok:
                assert res == "NothingToClaim", res
                seen("claim: NothingToClaim")
                assert ch.views([("rew", "claimable", (A[a], tuple(tokens)))])[0] == 0
                return
            (ev,) = ch.events("rew", "RewardsClaimed", res)
            assert ev.args.amount > 0
            seen("claim: paid")
            self.paid[A[a]] += ev.args.amount
            # I3: claiming twice pays nothing
            assert ch.error_of("rew", "claim", tokens, sender=A[a]) == "NothingToClaim"

        # --- governance ------------------------------------------------------------------------------
        @rule(a=ACTOR)
        def propose(self, a):
            if len(self.snapshots) >= MAX_PROPOSALS:
                return
            ok, res = ch.send("gov", "propose", stage["rewards"], stage["reward_call"], "p", sender=A[a])
            owns = any(o == A[a] for o in self.owner.values())
            if self.expect("propose", ok, res, None if owns else "BelowProposalThreshold"):
                self.snapshots.append(self.minted)

        @rule(a=ACTOR, p=st.integers(0, MAX_PROPOSALS - 1), picks=PICKS, raw=st.integers(0, 3),
              support=st.integers(0, 2))
        def vote(self, a, p, picks, raw, support):
            if p >= len(self.snapshots):
                return
            account = self.holder(a, picks[0]) if raw else A[a]
            tokens = self.pick(account, picks, raw == 0)
            pid = p + 1
            ok, res = ch.send("gov", "castVote", pid, support, tokens, sender=account)
            error, flags = None, set(self.voted)
            for t in tokens:
                if t > self.snapshots[p]:
                    error = "LicenseNotEligible"
                elif self.owner[t] != account:
                    error = "NotLicenseOwner"
                elif (pid, t) in flags:
                    error = "AlreadyVoted"
                if error:
                    break
                flags.add((pid, t))
            if self.expect("vote", ok, res, error):
                self.voted = flags

        # --- invariants ------------------------------------------------------------------------------
        @invariant()
        def audit(self):
            tokens = list(range(1, self.minted + 1))
            calls = [("lic", "totalMinted", ()), ("dlg", "totalDelegated", ())]
            calls += [("rew", n, ()) for n in ("totalAllocated", "totalClaimed", "totalFunded")]
            calls += [("lic", "ownerOf", (t,)) for t in tokens]
            calls += [("dlg", "operatorOf", (t,)) for t in tokens]
            calls += [("rew", "pendingOf", (t,)) for t in tokens]
            calls += [("lic", "balanceOf", (a,)) for a in A]
            calls += [("rew", "credited", (a,)) for a in A]
            calls += [("dlg", "operatedCount", (o,)) for o in OPS]
            calls += [("dlg", "getDelegatorInfo", (a, o)) for a in A for o in OPS]
            pids = range(1, len(self.snapshots) + 1)
            calls += [("gov", "getProposal", (pid,)) for pid in pids]
            calls += [("gov", "hasVoted", (pid, t)) for pid in pids for t in tokens]
            out = iter(ch.views(calls))
            minted, delegated, allocated, claimed, funded = (next(out) for _ in range(5))
            owners = [next(out) for _ in tokens]
            operators = [next(out) for _ in tokens]
            pending = [next(out) for _ in tokens]
            balances = [next(out) for _ in A]
            credited = dict(zip(A, (next(out) for _ in A)))
            counts = [next(out) for _ in OPS]
            info = {(a, o): list(next(out)) for a in A for o in OPS}
            proposals = [next(out) for _ in pids]
            flags = {(pid, t) for pid in pids for t in tokens if next(out)}

            # I1 supply
            assert minted == self.minted <= SUPPLY
            assert sum(balances) == minted
            assert owners == [self.owner[t] for t in tokens]

            # I2 each license counted once
            zero = "0x" + "00" * 20
            assert operators == [self.operator.get(t, zero) for t in tokens]
            assert counts == [operators.count(o) for o in OPS]
            assert sum(counts) == delegated == len(self.operator)
            listed = [t for ts in info.values() for t in ts]
            assert sorted(listed) == sorted(self.operator)
            for (a, o), ts in info.items():
                assert all(self.owner[t] == a and self.operator[t] == o for t in ts)

            # I3 no double reward
            assert claimed + sum(credited.values()) + sum(pending) == allocated == self.allocated
            assert allocated <= funded == self.funded
            for a in A:
                mine = sum(p for t, p in zip(tokens, pending) if self.owner[t] == a)
                assert self.paid[a] + credited[a] + mine == self.earned[a], a
            assert ch.w3.eth.get_balance(stage["rewards"]) == funded - claimed

            # I4 one vote per license per proposal
            assert flags == self.voted
            for pid, prop in zip(pids, proposals):
                for_votes, against, abstain = prop[6], prop[7], prop[8]
                assert for_votes + against + abstain == sum(1 for (p, _) in flags if p == pid)

    Economy.TestCase.settings = SETTINGS
    run_state_machine_as_test(Economy, settings=SETTINGS)
    print("\ncoverage:", dict(sorted(COVERAGE.items())))
