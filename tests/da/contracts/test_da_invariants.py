"""Stateful property test of the DA signer registry (DASigners) on Anvil: registration, stake, epochs, quorums
and slashing, written from the money's and the power's point of view.

Three parties run signers: an honest one (three signers), a second one (two) and an attacker (three), all with
keys of their own. Hypothesis drives random sequences of signer registrations with stake, top-ups, epoch
registrations (before and after registration closes, into full epochs, twice, without stake), stake withdrawals
(locked or not, too much), blocks passing, epochs made by anyone and forced by the admin, equivocations
reported (and bogus reports), and the admin taking the slashed pool. The model keeps only the rules' promises.

INVARIANTS
  D1 stake in = withdrawable + slashed   every signer's deposits = what it may still withdraw (stakeOf) + what
                                         it withdrew + what was slashed from it; the registry holds exactly the
                                         stake still withdrawable plus the slashed pool not yet taken
  D2 slashed stake never returns         a signer's ETH balance = its start - deposits + withdrawals, and its
                                         withdrawals never exceed deposits - slashed
  D3 no party below a stake share        in every quorum of every epoch made, each signer holds its share of the
     holds a quorum                      rows rounded down or up (so a party's rows <= the sum of its signers'
                                         quotas rounded up: with less than 2/3 - (its signers)/rows of the
                                         epoch's votes it can never sign for 2/3 of a quorum alone); there are
                                         ceil(votes / rows) quorums, at most maxQuorums
  D4 selection by stake                  a full epoch takes a newcomer only in place of a registration with the
                                         fewest votes, and only if it has more
  D5 registration closes                 registering for the next epoch fails from `registrationClosesAt` on
"""

from __future__ import annotations

from collections import Counter

import ape
import pytest
from da_contract_helpers import TOKENS_PER_VOTE, deploy_da_module
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from deaios.da import bls
from deaios.testing import ChainRpc, Outcomes, audit_settings
from eth_utils import keccak

SETTINGS = audit_settings(max_examples=6, stateful_step_count=25)

ROWS, MAX_QUORUMS, EPOCH_BLOCKS, MAX_SIGNERS, LOCK_EPOCHS, MAX_VOTES = 12, 3, 24, 4, 1, 8
PARTIES = {"honest": 3, "second": 2, "attacker": 3}
SIGNERS = sum(PARTIES.values())
SIGNER = st.integers(0, SIGNERS - 1)
OUTCOMES = Outcomes()


@pytest.fixture
def registry_stage(owner, project):
    d = deploy_da_module.deploy_da(owner, project, tokens_per_vote=TOKENS_PER_VOTE, max_votes_per_signer=MAX_VOTES,
                                   max_quorums=MAX_QUORUMS, epoch_blocks=EPOCH_BLOCKS, encoded_slices=ROWS,
                                   max_signers_per_epoch=MAX_SIGNERS, stake_lock_epochs=LOCK_EPOCHS)
    registry = project.DASigners.at(d["da_signers"])
    rpc = ChainRpc(ape.chain.provider.web3, {"reg": registry})
    first = bls.BLSKey.generate(b"da-invariants")
    keys = [first]
    for _ in range(SIGNERS - 1):  # consecutive secrets: each key is the previous one plus the generator
        k = keys[-1]
        keys.append(bls.BLSKey(k.sk + 1, bls.g1_add(k.pk_g1, bls.G1), bls.g2_add(k.pk_g2, bls.G2)))
    addresses = [rpc.impersonate("0x" + keccak(b"da-invariants-%d" % i)[-20:].hex(), 10**21) for i in range(SIGNERS)]
    party = [name for name, n in PARTIES.items() for _ in range(n)]
    chain_id = ape.chain.chain_id
    pops = [k.pop(a, chain_id) for k, a in zip(keys, addresses)]
    return {"rpc": rpc, "keys": keys, "addresses": addresses, "party": party, "pops": pops,
            "admin": owner.address, "reporter": ape.accounts.test_accounts[1].address,
            "treasury": ape.accounts.test_accounts[2].address, "chain_id": chain_id}


def test_da_signer_invariants(registry_stage):
    ch: ChainRpc = registry_stage["rpc"]
    keys, addrs, party = registry_stage["keys"], registry_stage["addresses"], registry_stage["party"]
    w3 = ch.w3
    registry_address = ch.c["reg"].address
    epoch_sigs: dict[tuple[int, int], tuple[int, int]] = {}
    index_of = {a.lower(): i for i, a in enumerate(addrs)}

    def epoch_signature(i: int, epoch: int) -> tuple[int, int]:
        if (i, epoch) not in epoch_sigs:
            epoch_sigs[(i, epoch)] = keys[i].sign(bls.epoch_digest(addrs[i], epoch, registry_stage["chain_id"]))
        return epoch_sigs[(i, epoch)]

    class Registry(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = ch.rpc("evm_snapshot", [])["result"]
            self.registered = [False] * SIGNERS
            self.stake = [0] * SIGNERS  # what each signer may still withdraw, by the rules
            self.deposited = [0] * SIGNERS
            self.withdrawn = [0] * SIGNERS
            self.slashed = [0] * SIGNERS
            self.fees = [0] * SIGNERS  # gas the signers paid
            self.balance0 = [w3.eth.get_balance(a) for a in addrs]
            self.pool_taken = 0
            self.epoch = self.view("epochNumber")
            self.last_epoch = [0] * SIGNERS  # the last epoch each signer registered for
            self.next_regs: dict[int, int] = {}  # signer -> votes registered for the next epoch

        def teardown(self) -> None:
            assert ch.rpc("evm_revert", [self.snapshot])["result"] is True

        def view(self, fn: str, *args):
            return ch.views([("reg", fn, args)])[0]

        def send(self, fn: str, *args, signer: int, value: int = 0):
            """A transaction from signer `signer` (its gas is counted: the balances are exact)."""
            ok, res = ch.send("reg", fn, *args, sender=addrs[signer], value=value)
            if ok:
                self.fees[signer] += res["gasUsed"] * res["effectiveGasPrice"]
            return ok, res

        def expect(self, what: str, ok: bool, res, error: str | None) -> bool:
            return OUTCOMES.expect(what, ok, res, error)

        # --- signers and stake -----------------------------------------------------------------------
        @initialize(votes=st.lists(st.integers(0, MAX_VOTES + 2), min_size=SIGNERS - 2, max_size=SIGNERS - 2))
        def signers_register(self, votes):
            """All signers but two register with some stake (the rules still register the others)."""
            for i, v in enumerate(votes):
                self.register_signer(i, v)
            for i, v in enumerate(votes[:MAX_SIGNERS + 1]):  # and most join the next epoch: it gets full
                self.register_next(i)

        @rule(i=SIGNER, votes=st.integers(0, MAX_VOTES + 2))
        def register_signer(self, i, votes):
            detail = (addrs[i], "10.0.0.%d:34000" % i, keys[i].pk_g1, bls.g2_signer_order(keys[i].pk_g2))
            value = votes * TOKENS_PER_VOTE
            ok, res = self.send("registerSigner", detail, registry_stage["pops"][i], signer=i, value=value)
            if self.expect("registerSigner", ok, res, "SignerExists" if self.registered[i] else None):
                self.registered[i] = True
                self.stake[i] += value
                self.deposited[i] += value

        @rule(i=SIGNER, votes=st.integers(1, 4))
        def add_stake(self, i, votes):
            ok, res = self.send("addStake", signer=i, value=votes * TOKENS_PER_VOTE)
            if self.expect("addStake", ok, res, None if self.registered[i] else "SignerNotFound"):
                self.stake[i] += votes * TOKENS_PER_VOTE
                self.deposited[i] += votes * TOKENS_PER_VOTE

        @rule(i=SIGNER, part=st.sampled_from([1, 2, 1, 0]))
        def withdraw(self, i, part):
            amount = self.stake[i] // 2 if part == 1 else self.stake[i] if part == 2 else self.stake[i] + 1
            ok, res = self.send("withdrawStake", amount, addrs[i], signer=i)
            unlock = self.last_epoch[i] + LOCK_EPOCHS + 1 if self.last_epoch[i] else 0
            if self.epoch < unlock:
                error = "StakeLocked"
            elif amount > self.stake[i]:
                error = "InsufficientStake"
            else:
                error = None
            if self.expect("withdrawStake", ok, res, error):
                self.stake[i] -= amount
                self.withdrawn[i] += amount

        # --- epochs ----------------------------------------------------------------------------------
        @rule(i=SIGNER)
        def register_next(self, i):
            next_epoch = self.epoch + 1
            closes = self.view("registrationClosesAt")
            if closes - 2 <= w3.eth.block_number < closes:  # not on the edge: the call and the transaction agree
                ch.rpc("anvil_mine", ["0x2"])
            head = w3.eth.block_number
            ok, res = self.send("registerNextEpoch", epoch_signature(i, next_epoch), signer=i)
            votes = min(self.stake[i] // TOKENS_PER_VOTE, MAX_VOTES)
            if not self.registered[i]:
                error = "SignerNotFound"
            elif head >= closes:  # D5
                error = "RegistrationClosed"
            elif i in self.next_regs:
                error = "AlreadyRegistered"
            elif votes == 0:
                error = "NotEligibleToVote"
            elif len(self.next_regs) >= MAX_SIGNERS and votes <= min(self.next_regs.values()):
                error = "EpochFull"
            else:
                error = None
            if not self.expect("registerNextEpoch", ok, res, error):
                return
            removed = [e.args for e in ch.events("reg", "RegistrationRemoved", res)]
            if len(self.next_regs) >= MAX_SIGNERS:  # D4: the newcomer replaced a lowest registration
                (gone,) = removed
                j = index_of[gone.signer.lower()]
                lowest = min(self.next_regs.values())
                assert gone.votes == self.next_regs[j] == lowest < votes, (gone, self.next_regs, votes)
                del self.next_regs[j]
                OUTCOMES.seen("registerNextEpoch: evicted a lower registration")
            else:
                assert not removed
            self.next_regs[i] = votes
            self.last_epoch[i] = next_epoch

        @rule(blocks=st.integers(1, EPOCH_BLOCKS))
        def mine(self, blocks):
            ch.rpc("anvil_mine", [hex(blocks)])

        @rule(force=st.booleans())
        def make_epoch(self, force):
            due = w3.eth.block_number + 1 >= self.view("epochStartBlock") + EPOCH_BLOCKS
            if force:
                ok, res = ch.send("reg", "forceMakeEpoch", sender=registry_stage["admin"])
                assert ok, res
            else:
                ok, res = ch.send("reg", "makeEpoch", sender=registry_stage["reporter"])  # anyone
                assert ok, res
                if not due:
                    assert self.view("epochNumber") == self.epoch
                    OUTCOMES.seen("makeEpoch: too early")
                    return
            self.epoch += 1
            assert self.view("epochNumber") == self.epoch
            OUTCOMES.seen("epoch made" + (" (forced)" if force else ""))
            self.check_quorums(self.epoch, self.next_regs)
            self.next_regs = {}

        def check_quorums(self, epoch: int, regs: dict[int, int]) -> None:
            """D3 for a new epoch, from the registrations the model knows."""
            total = sum(regs.values())
            count = self.view("quorumCount", epoch)
            assert count == (min(-(-total // ROWS), MAX_QUORUMS) if total else 0)
            if not total:
                return
            OUTCOMES.seen(f"quorums: {len(regs)} signers")
            by_party: Counter = Counter()
            for q in range(count):
                members, ends, _ = self.view("getQuorumMembers", epoch, q)
                rows = {index_of[m.lower()]: e - (ends[k - 1] if k else 0) for k, (m, e) in enumerate(zip(members, ends))}
                assert ends[-1] == ROWS and set(rows) <= set(regs)
                for i, v in regs.items():
                    held = rows.get(i, 0)
                    assert v * ROWS // total <= held <= -(-v * ROWS // total), (i, v, total, held)
                    if q == 0:
                        by_party[party[i]] += held
            for name in PARTIES:
                votes = [v for i, v in regs.items() if party[i] == name]
                bound = sum(-(-v * ROWS // total) for v in votes)
                assert by_party[name] <= bound
                if 3 * bound < 2 * ROWS:  # its stake is too small: it cannot sign for 2/3 of a quorum alone
                    assert 3 * by_party[name] < 2 * ROWS

        # --- slashing --------------------------------------------------------------------------------
        @rule(i=SIGNER, bogus=st.sampled_from([False, False, True]), salt=st.integers(0, 3))
        def equivocate(self, i, bogus, salt):
            root = keccak(b"blob-%d" % salt)
            c1, c2 = bls.hash_to_g1(keccak(b"c1-%d" % salt)), bls.hash_to_g1(keccak(b"c2-%d" % salt))
            if bogus:
                c2 = c1
            sig = lambda c: keys[i].sign(bls.commit_digest(root, self.epoch, 0, c))  # noqa: E731
            ok, res = ch.send("reg", "slashEquivocation", addrs[i], root, self.epoch, 0, c1, sig(c1), c2, sig(c2),
                              sender=registry_stage["reporter"])
            if not self.registered[i]:
                error = "SignerNotFound"
            elif bogus:
                error = "NotEquivocation"
            elif self.stake[i] == 0:
                error = "NothingToSlash"
            else:
                error = None
            if self.expect("slashEquivocation", ok, res, error):
                self.slashed[i] += self.stake[i]
                self.stake[i] = 0
                if i in self.next_regs:  # dropped from the next epoch
                    del self.next_regs[i]
                    assert [e.args.signer.lower() for e in ch.events("reg", "RegistrationRemoved", res)] == \
                        [addrs[i].lower()]

        @precondition(lambda self: sum(self.slashed) > self.pool_taken)
        @rule()
        def take_slashed(self):
            amount = sum(self.slashed) - self.pool_taken
            ok, res = ch.send("reg", "withdrawSlashed", registry_stage["treasury"], amount,
                              sender=registry_stage["admin"])
            self.expect("withdrawSlashed", ok, res, None)
            self.pool_taken += amount

        # --- invariants ------------------------------------------------------------------------------
        @invariant()
        def money(self):
            OUTCOMES.steps += 1
            *stakes, pool = ch.views([("reg", "stakeOf", (a,)) for a in addrs] + [("reg", "slashedPool", ())])
            replies = w3.provider.make_batch_request([("eth_getBalance", [a, "latest"])
                                                      for a in (*addrs, registry_address)])
            *balances, held = (int(r["result"], 16) for r in replies)
            for i in range(SIGNERS):
                # D1: deposits = withdrawable + withdrawn + slashed
                assert stakes[i] == self.stake[i]
                assert self.deposited[i] == stakes[i] + self.withdrawn[i] + self.slashed[i]
                # D2: the signer's own ETH: nothing slashed came back
                assert balances[i] == self.balance0[i] - self.deposited[i] + self.withdrawn[i] - self.fees[i]
                assert self.withdrawn[i] <= self.deposited[i] - self.slashed[i]
            assert held == sum(stakes) + pool and pool == sum(self.slashed) - self.pool_taken

    Registry.TestCase.settings = SETTINGS
    run_state_machine_as_test(Registry, settings=SETTINGS)
    print("\n" + OUTCOMES.report())
