"""Quorums of DA rows: the model of `DASigners._formQuorums` and the row ↔ signer mapping.

A quorum has ``rows`` rows (0G: 3072 "encoded slices"); each row belongs to one signer, and each signer
of a quorum holds one contiguous range of rows (a "member"). How registrations become quorums (the
contract does the same on chain, `tests/da` checks both agree):

1. registrations are sorted by their ballot = the high 192 bits of keccak256(sig.X ‖ sig.Y) of the
   epoch-registration signature (ties by address); signer j contributes ``votes_j`` ballots in a row;
2. with V ballots and R rows: if V >= R, quorum k holds ballots [k·R, (k+1)·R), plus, when V mod R ≠ 0,
   one more quorum with the last R ballots (``max_quorums`` in all at most); if V < R, a single quorum in
   which signer j (cumulative votes c_j) holds rows [⌊c_{j-1}·R/V⌋, ⌊c_j·R/V⌋).
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
    signature: tuple[int, int]

    @property
    def ballot(self) -> int:
        return int.from_bytes(keccak256(self.signature[0].to_bytes(32, "big")
                                        + self.signature[1].to_bytes(32, "big")), "big") >> 64


def form_quorums(registrations: Sequence[Registration], rows: int, max_quorums: int) -> list[Quorum]:
    """The quorums `DASigners.makeEpoch` builds from an epoch's registrations."""
    regs = sorted(registrations, key=lambda r: (r.ballot, int(r.signer, 16)))
    if not regs:
        return []
    cum: list[int] = []
    total = 0
    for r in regs:
        total += r.votes
        cum.append(total)
    if total < rows:
        return [Quorum(tuple(r.signer for r in regs), tuple(c * rows // total for c in cum))]

    def build(start: int) -> Quorum:
        end = start + rows
        members, ends = [], []
        for j, r in enumerate(regs):
            if j > 0 and cum[j - 1] >= end:
                break
            if cum[j] > start:
                members.append(r.signer)
                ends.append(min(cum[j], end) - start)
        return Quorum(tuple(members), tuple(ends))

    full = total // rows
    count = min(full, max_quorums)
    quorums = [build(k * rows) for k in range(count)]
    if total % rows and count < max_quorums:
        quorums.append(build(total - rows))
    return quorums
