"""Stateful property test of the alignment-node economy against the real contracts on Anvil, written from the
money's point of view.

Hypothesis drives random sequences of license purchases, transfers, delegations and undelegations (by the owner,
by the operator, by the wrong party, over the operator cap), commission changes, the passing of epochs, reward
records by "supervision" (the current epoch, a past one, twice, with an empty pool), pool top-ups, claims and
settlements, proposals and votes, by three holders and two operators.

The model does not read the contracts' accounting. It keeps only what the rules promise: a delegation (or its
end) takes effect at the next epoch, so the operator of a license *in* epoch e is the one it was delegated to
when e began, and so is its owner and the operator's commission; a record of (e, operator) pays each license the
operator ran in e one reward, the commission to the operator and the rest to the license's owner of that moment.
From that it knows what every account may claim.

MONEY INVARIANTS
  M1 one share per license per epoch   the licenses paid by the records of an epoch (OperatedRecorded.licenses)
                                       never exceed the licenses that had an operator at some moment of that
                                       epoch; and each record pays exactly the licenses its operator ran in it
  M2 what each party may claim         for every account: paid out + claimable now == what it earned by the
                                       rule above (never more: no double reward; never less: nothing lost)
  M3 solvency                          the rewards contract holds funded - paid out, which covers everything
                                       still claimable; all earnings <= funded
  M4 one vote per license              each license votes at most once per proposal, whoever owns it when
  M5 supply                            licenses minted <= the cap; every license has one owner
"""

from __future__ import annotations

from collections import Counter

import pytest
from alignment_econ_helpers import Rpc, deploy
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from deaios.testing import Outcomes, audit_settings

SETTINGS = audit_settings(max_examples=6, stateful_step_count=40)

SUPPLY, WALLET_CAP, MAX_PER_OP = 16, 7, 4
TIERS = ((5, 100), (SUPPLY, 200))
REWARD, FUNDING = 1_000, 9_000
COMMISSIONS = (1_500, 4_000)
MAX_COMMISSION = 5_000
MAX_PROPOSALS = 3
EPOCH_SECONDS = 1_000
N_HOLDERS, N_OPS = 3, 2
N_ACTORS = N_HOLDERS + N_OPS  # actors 0..2 holders, 3..4 operators
ACTOR = st.integers(0, N_ACTORS - 1)
OP = st.integers(0, N_OPS - 1)
TOKEN = st.integers(1, SUPPLY)  # may name a license not minted yet
PICKS = st.lists(st.integers(0, SUPPLY), min_size=1, max_size=3)
BPS = 10_000

OUTCOMES = Outcomes()


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
        epoch_seconds=EPOCH_SECONDS,
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


def economy_machine(stage) -> type[RuleBasedStateMachine]:
    """The state machine class over one deployment (`stage`)."""
    ch: Rpc = stage["rpc"]
    A = stage["actors"]
    OPS = A[N_HOLDERS:]
    ADMIN, SUP = stage["admin"], stage["supervisor"]

    class Economy(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = ch.rpc("evm_snapshot", [])["result"]
            self.owner = {1: OPS[0], 2: OPS[1]}  # token -> owner address
            self.owners_ever = {1: {OPS[0]}, 2: {OPS[1]}}  # token -> every account that owned it
            self.purchased = {a: 0 for a in A}
            self.purchased[OPS[0]] = self.purchased[OPS[1]] = 1
            self.assigned: dict[int, str] = {}  # token -> operator it is delegated to now (from next epoch)
            self.commission = dict(zip(OPS, COMMISSIONS))  # as last set (from next epoch)
            self.epoch = self.chain_epoch()
            self.begin_epoch()
            self.recorded: set[tuple[int, str]] = set()
            self.funded, self.allocated = FUNDING, 0
            self.earned = {a: 0 for a in A}  # what each account may claim in total, by the rules
            self.paid = {a: 0 for a in A}
            self.paid_by_epoch: Counter = Counter()  # epoch -> licenses paid by its records
            self.snapshots: list[int] = []  # proposal id - 1 -> licenses minted at proposal time
            self.voted: set[tuple[int, int]] = set()

        def teardown(self) -> None:
            assert ch.rpc("evm_revert", [self.snapshot])["result"] is True

        def chain_epoch(self) -> int:
            return ch.views([("dlg", "currentEpoch", ())])[0]

        def begin_epoch(self) -> None:
            """What holds during the epoch that starts now: who runs which license, who owns it, commissions."""
            self.runs = dict(self.assigned)
            self.owner_at_start = dict(self.owner)
            self.commission_at_start = dict(self.commission)
            self.had_operator = set(self.assigned)  # licenses with an operator at some moment of the epoch

        @property
        def minted(self) -> int:
            return len(self.owner)

        def count(self, op: str) -> int:
            return sum(1 for o in self.assigned.values() if o == op)

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
            return OUTCOMES.expect(what, ok, res, error)

        # --- time ------------------------------------------------------------------------------------
        @rule()
        def next_epoch(self):
            ch.rpc("evm_increaseTime", [EPOCH_SECONDS])
            ch.rpc("evm_mine", [])
            self.epoch = self.chain_epoch()
            self.begin_epoch()
            OUTCOMES.seen("epoch")

        # --- license ----------------------------------------------------------------------------
        @initialize(qs=st.lists(st.integers(1, 3), min_size=N_HOLDERS, max_size=N_HOLDERS), to=OP)
        def first_sale(self, qs, to):
            """Every holder buys 1-3 licenses and delegates its first to an operator; the operators
            self-operate their own license; then an epoch passes, so that records pay from the first step."""
            for a, q in enumerate(qs):
                self.buy(a, q)
                self.delegate(a, (a + to) % N_OPS, [0], 1)
            for i, _ in enumerate(OPS):
                self.delegate(N_HOLDERS + i, i, [0], 1)
            self.next_epoch()

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
                    self.owners_ever[t] = {buyer}
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
                self.owners_ever[t].add(A[to])
                self.assigned.pop(t, None)  # the transfer ends the delegation (from the next epoch)

        # --- delegation ----------------------------------------------------------------------------
        @rule(a=ACTOR, op=st.integers(0, N_OPS), picks=PICKS, raw=st.integers(0, 3))
        def delegate(self, a, op, picks, raw):
            operator = OPS[op] if op < N_OPS else A[0]  # A[0] is not an operator
            account = self.holder(a, picks[0]) if raw else A[a]
            tokens = self.pick(account, picks, raw == 0)
            ok, res = ch.send("dlg", "delegateNfts", operator, tokens, sender=account)
            error, model = None, dict(self.assigned)
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
                self.assigned = model
                self.had_operator |= set(tokens)

        @rule(pick=st.integers(0, SUPPLY), mode=st.sampled_from(["right", "right", "owner", "operator"]),
              by_operator=st.booleans())
        def undelegate(self, pick, mode, by_operator):
            if not self.assigned:
                return
            t = sorted(self.assigned)[pick % len(self.assigned)]
            delegator, operator = self.owner[t], self.assigned[t]
            if mode == "owner":
                delegator = A[(A.index(delegator) + 1) % N_ACTORS]
            elif mode == "operator":
                operator = OPS[(OPS.index(operator) + 1) % N_OPS]
            sender, address = (operator, delegator) if by_operator else (delegator, operator)
            ok, res = ch.send("dlg", "undelegateNfts", address, [t], by_operator, sender=sender)
            if self.expect("undelegate", ok, res, None if mode == "right" else "NotDelegated"):
                del self.assigned[t]

        @rule(pick=st.integers(0, SUPPLY))
        def switch_operator(self, pick):
            """An owner moves a delegated license to the other operator (undelegate, delegate)."""
            if not self.assigned:
                return
            t = sorted(self.assigned)[pick % len(self.assigned)]
            owner, old = self.owner[t], self.assigned[t]
            new = OPS[(OPS.index(old) + 1) % N_OPS]
            ok, res = ch.send("dlg", "undelegateNfts", old, [t], False, sender=owner)
            self.expect("switch: undelegate", ok, res, None)
            del self.assigned[t]
            ok, res = ch.send("dlg", "delegateNfts", new, [t], sender=owner)
            if self.expect("switch: delegate", ok, res, "OperatorCapExceeded" if self.count(new) >= MAX_PER_OP
                           else None):
                self.assigned[t] = new
                self.had_operator.add(t)

        @rule(op=OP, bps=st.integers(0, MAX_COMMISSION + 1_000))
        def set_commission(self, op, bps):
            ok, res = ch.send("dlg", "setCommission", bps, sender=OPS[op])
            if self.expect("commission", ok, res, "CommissionTooHigh" if bps > MAX_COMMISSION else None):
                self.commission[OPS[op]] = bps

        # --- rewards ---------------------------------------------------------------------------------
        @rule(op=OP, past=st.sampled_from([False, False, False, True]))
        def record(self, op, past):
            operator = OPS[op]
            epoch = self.epoch - 1 if past else self.epoch
            ok, res = ch.send("rew", "recordOperated", epoch, operator, sender=SUP)
            run = [t for t, o in self.runs.items() if o == operator]
            if past:
                error = "EpochNotCurrent"
            elif (epoch, operator) in self.recorded:
                error = "AlreadyRecorded"
            elif len(run) * REWARD > self.funded - self.allocated:
                error = "InsufficientRewardFunds"
            else:
                error = None
            if ok:  # M1: a record pays licenses, count them per epoch whatever the rules predicted
                (ev,) = ch.events("rew", "OperatedRecorded", res)
                self.paid_by_epoch[ev.args.epoch] += ev.args.licenses
                assert self.paid_by_epoch[self.epoch] <= len(self.had_operator), \
                    f"M1: epoch {self.epoch} paid {self.paid_by_epoch[self.epoch]} licenses, " \
                    f"only {len(self.had_operator)} had an operator in it"
            if self.expect("record", ok, res, error):
                self.recorded.add((epoch, operator))
                commission = REWARD * self.commission_at_start[operator] // BPS
                for t in run:
                    self.earned[self.owner_at_start[t]] += REWARD - commission
                self.earned[operator] += commission * len(run)
                self.allocated += len(run) * REWARD

        @precondition(lambda self: self.funded - self.allocated < 3 * REWARD)
        @rule(amount=st.integers(1, 6_000))
        def fund(self, amount):
            ok, res = ch.send("rew", "fundRewards", sender=ADMIN, value=amount)
            self.expect("fund", ok, res, None)
            self.funded += amount

        @rule(a=ACTOR)
        def settle(self, a):
            """Anyone settles every license: credits move to the entitled accounts, nothing is paid."""
            before = ch.w3.eth.get_balance(stage["rewards"])
            ok, res = ch.send("rew", "settle", list(self.owner), sender=A[a])
            self.expect("settle", ok, res, None)
            assert ch.w3.eth.get_balance(stage["rewards"]) == before

        @precondition(lambda self: any(self.earned[a] > self.paid[a] for a in A))
        @rule(a=ACTOR, richest=st.booleans(), foreign=st.sampled_from([False, False, False, True]))
        def claim(self, a, richest, foreign):
            if richest:  # the account owed most, so that claims often pay
                a = max(range(N_ACTORS), key=lambda i: self.earned[A[i]] - self.paid[A[i]])
            owned = [t for t, o in self.owner.items() if o == A[a]]
            others = [t for t, o in self.owner.items() if o != A[a]]
            tokens = owned + (others[:1] if foreign else [])
            ok, res = ch.send("rew", "claim", tokens, sender=A[a])
            if foreign and others and A[a] not in self.owners_ever[others[0]]:
                self.expect("claim", ok, res, "NotLicenseOwner")
                return
            # a license the caller owned before may owe it the share of the epoch it left in (or no longer)
            past_owner = foreign and bool(others)
            if not ok and res == "NotLicenseOwner" and past_owner:
                OUTCOMES.seen("claim: NotLicenseOwner (former owner)")
                return
            if not ok:
                assert res == "NothingToClaim", res
                OUTCOMES.seen("claim: NothingToClaim")
                assert ch.views([("rew", "claimable", (A[a], tuple(tokens)))])[0] == 0
                return
            (ev,) = ch.events("rew", "RewardsClaimed", res)
            assert ev.args.amount > 0
            OUTCOMES.seen("claim: paid")
            self.paid[A[a]] += ev.args.amount
            # claiming twice pays nothing
            assert ch.error_of("rew", "claim", tokens, sender=A[a]) in (
                ("NothingToClaim", "NotLicenseOwner") if past_owner else ("NothingToClaim",))

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
        def money(self):
            OUTCOMES.steps += 1
            tokens = tuple(range(1, self.minted + 1))
            calls = [("lic", "totalMinted", ())]
            calls += [("lic", "ownerOf", (t,)) for t in tokens]
            calls += [("lic", "balanceOf", (a,)) for a in A]
            calls += [("rew", "claimable", (a, tokens)) for a in A]
            pids = range(1, len(self.snapshots) + 1)
            calls += [("gov", "getProposal", (pid,)) for pid in pids]
            calls += [("gov", "hasVoted", (pid, t)) for pid in pids for t in tokens]
            out = iter(ch.views(calls))
            minted = next(out)
            owners = [next(out) for _ in tokens]
            balances = [next(out) for _ in A]
            claimable = dict(zip(A, (next(out) for _ in A)))
            proposals = [next(out) for _ in pids]
            flags = {(pid, t) for pid in pids for t in tokens if next(out)}
            held = ch.w3.eth.get_balance(stage["rewards"])

            # M5 supply
            assert minted == self.minted <= SUPPLY
            assert sum(balances) == minted and owners == [self.owner[t] for t in tokens]

            # M2 what each party may claim: never more than it earned (no double reward) ...
            for a in A:
                assert self.paid[a] + claimable[a] <= self.earned[a], \
                    f"M2: {a} was paid {self.paid[a]} and may claim {claimable[a]}, earned only {self.earned[a]}"
            # ... and nothing it earned is lost
            for a in A:
                assert self.paid[a] + claimable[a] >= self.earned[a], \
                    f"M2: {a} was paid {self.paid[a]} and may claim {claimable[a]}, but earned {self.earned[a]}"

            # M3 solvency
            paid = sum(self.paid.values())
            assert held == self.funded - paid
            assert sum(claimable.values()) <= held
            assert sum(self.earned.values()) <= self.funded

            # M4 one vote per license per proposal
            assert flags == self.voted
            for pid, prop in zip(pids, proposals):
                for_votes, against, abstain = prop[6], prop[7], prop[8]
                assert for_votes + against + abstain == sum(1 for (p, _) in flags if p == pid)

    return Economy


def test_alignment_economy_invariants(stage):
    economy = economy_machine(stage)
    economy.TestCase.settings = SETTINGS
    run_state_machine_as_test(economy, settings=SETTINGS)
    print("\n" + OUTCOMES.report())


def test_invariants_catch_license_hopping(stage):
    """The H2 attack as one fixed sequence of the machine's rules: a license earns with one operator, moves to
    the other in the same epoch and earns again; M1 or M2 must reject it (this test shows the machine catches
    H2, whatever Hypothesis happens to shrink the random runs to)."""
    machine = economy_machine(stage)()
    try:
        machine.first_sale(qs=[1, 1, 1], to=0)  # holder 0's license runs with operator 0
        machine.money()
        machine.record(op=0, past=False)
        machine.money()
        hopper = min(t for t, o in machine.assigned.items() if o == stage["actors"][N_HOLDERS])
        machine.switch_operator(pick=sorted(machine.assigned).index(hopper))
        machine.money()
        machine.record(op=1, past=False)
        machine.money()
    finally:
        machine.teardown()
