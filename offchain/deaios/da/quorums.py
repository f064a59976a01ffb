"""Quorums of DA rows: the model of `DASigners._formQuorums` (contracts/da/libraries/QuorumMath.sol) and the
row ↔ signer mapping.

A quorum has ``rows`` rows (0G: 3072 "encoded slices"); each row belongs to one signer, and each signer
of a quorum holds one contiguous range of rows (a "member"). How an epoch's registrations become its quorum
(the contract does the same on chain, `tests/da` checks both agree), from the epoch's seed (fixed after
registration for the epoch closed, `DASigners.epochSeed`):

1. signers are ordered by keccak256(seed ‖ signer as a 32-byte word) (ties by address);
2. with V votes in all, cumulative votes c_j in that order and u = keccak256(seed ‖ "offset") mod V, signer j
   holds rows [⌊(c_{j-1}·R + u)/V⌋, ⌊(c_j·R + u)/V⌋): each signer ⌊v_j·R/V⌋ or ⌈v_j·R/V⌉ rows, exactly R in
   all; signers left with no row are not members;
3. every quorum of the epoch has these members; there are ⌈V/R⌉ quorums, at least 1 and at most
   ``max_quorums`` (0G's count).

So a party's rows in any quorum are at most the sum of its signers' quotas rounded up: its stake, not its keys,
addresses or registration order, decides (audit M1).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from deaios._keccak import keccak256


@dataclass(frozen=True)
class Quorum:
    """Members in row order; member i holds rows [ends[i-1], ends[i]) (ends[-1] = 0)."""

    members: tuple[str, ...]
    ends: tuple[int, ...]

    @property
    def rows(self) -> int:
        return self.ends[-1]

    def row_range(self, index: int) -> range:
        return range(self.ends[index - 1] if index else 0, self.ends[index])

    def rows_of(self, signer: str) -> range:
        """The rows of ``signer`` (empty if it is not a member)."""
        for i, member in enumerate(self.members):
            if member.lower() == signer.lower():
                return self.row_range(i)
        return range(0)

    def owner(self, row: int) -> str:
        if not 0 <= row < self.rows:
            raise IndexError(row)
        return self.members[bisect_right(self.ends, row)]

    def row_owners(self) -> list[str]:
        return [self.members[i] for i in range(len(self.members)) for _ in self.row_range(i)]


@dataclass(frozen=True)
class Registration:
    signer: str
    votes: int


def order_key(seed: bytes, signer: str) -> int:
    """keccak256(abi.encode(seed, signer)): a signer's place in the epoch's order."""
    return int.from_bytes(keccak256(seed + bytes(12) + bytes.fromhex(signer.removeprefix("0x"))), "big")


def rounding_offset(seed: bytes, total: int) -> int:
    """keccak256(abi.encode(seed, "offset")) mod total."""
    encoded = seed + (64).to_bytes(32, "big") + (6).to_bytes(32, "big") + b"offset".ljust(32, b"\0")
    return int.from_bytes(keccak256(encoded), "big") % total


def quorum_count(total_votes: int, rows: int, max_quorums: int) -> int:
    """⌈V/R⌉ quorums, at most ``max_quorums`` (0 without votes)."""
    return min(-(-total_votes // rows), max_quorums)


def form_quorums(registrations: Sequence[Registration], rows: int, max_quorums: int, seed: bytes) -> list[Quorum]:
    """The quorums `DASigners.makeEpoch` builds from an epoch's registrations and seed."""
    regs = sorted(registrations, key=lambda r: (order_key(seed, r.signer), int(r.signer, 16)))
    total = sum(r.votes for r in regs)
    if total == 0:
        return []
    u = rounding_offset(seed, total)
    members: list[str] = []
    ends: list[int] = []
    cum = prev = 0
    for r in regs:
        cum += r.votes
        end = (cum * rows + u) // total
        if end > prev:
            members.append(r.signer)
            ends.append(end)
            prev = end
    quorum = Quorum(tuple(members), tuple(ends))
    return [quorum] * quorum_count(total, rows, max_quorums)


def max_rows(votes: Sequence[int], total: int, rows: int) -> int:
    """The most rows signers with these `votes` (of `total`) can hold together in a quorum of `rows` rows."""
    return sum(-(-v * rows // total) for v in votes)
