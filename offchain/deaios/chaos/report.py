"""The record of a chaos run: one JSON line per fault case (what was injected, how many bytes were checked
byte-exact afterwards, what was lost, how long the case took), appended to a results file, and the Markdown table
docs/reliability.md shows (`python -m deaios.chaos.report FILE`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class CaseResult:
    """One fault case of the matrix."""

    case: str
    faults: str  # what was injected
    checked: str  # what was checked byte-exact (and how)
    checked_bytes: int
    lost: str = "nothing"
    seconds: float = 0.0
    notes: str = ""
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    def to_json(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 1)
        return out


def append(path: Path, result: CaseResult) -> None:
    """Add one case's line to the results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(result.to_json()) + "\n")


def load(path: Path) -> list[CaseResult]:
    """Every case recorded in a results file (the last line of a case wins)."""
    cases: dict[str, CaseResult] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            cases[data["case"]] = CaseResult(**data)
    return list(cases.values())


def markdown(results: list[CaseResult]) -> str:
    """The results as the Markdown table of docs/reliability.md."""
    rows = ["| case | faults injected | checked byte-exact | bytes checked | lost | wall time |",
            "| --- | --- | --- | ---: | --- | ---: |"]
    for r in results:
        lost = r.lost + (f" ({r.notes})" if r.notes else "")
        rows.append(f"| {r.case} | {r.faults} | {r.checked} | {r.checked_bytes:,} | {lost} | {r.seconds:.0f} s |")
    return "\n".join(rows)


if __name__ == "__main__":
    results = Path(sys.argv[1] if len(sys.argv) > 1 else ".chaos/results.jsonl")
    print(markdown(load(results)) if results.exists() else f"no results in {results}")
