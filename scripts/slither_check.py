"""Compare slither's high and medium results with the committed triage (`make audit`).

Each result is keyed by detector, contract and function (or state variable): stable when lines move. The triage
file (`audit/slither-triage.json`) gives each key a verdict (`fixed`, `false-positive`, `accepted`) and a one-line
reason. Exit 0 when every high/medium result is triaged, 1 listing the untriaged ones, 2 on unusable input.

    python scripts/slither_check.py audit/out/slither.json audit/slither-triage.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKED_IMPACTS = ("High", "Medium")
VERDICTS = ("fixed", "false-positive", "accepted")


@dataclass(frozen=True)
class Key:
    """What a triage entry names: a detector's result in one contract member."""

    detector: str
    contract: str
    function: str

    def __str__(self) -> str:
        member = f".{self.function}" if self.function else ""
        return f"{self.detector} {self.contract}{member}"


@dataclass(frozen=True)
class Result:
    key: Key
    impact: str
    description: str


def _parent(element: dict[str, Any]) -> dict[str, Any]:
    return element.get("type_specific_fields", {}).get("parent", {})


def result_key(detector: str, element: dict[str, Any]) -> Key:
    """The key of a result from its first element: a function, a state or local variable, a node (a statement:
    its function), or a contract."""
    kind = element.get("type")
    if kind == "contract":
        return Key(detector, element["name"], "")
    if kind == "node":
        element = _parent(element)
        kind = element.get("type")
    parent = _parent(element)
    if kind == "variable" and parent.get("type") == "function":  # a local variable: its function
        return Key(detector, _parent(parent).get("name", ""), parent["name"])
    if kind in ("function", "variable", "event", "modifier", "struct", "enum") and parent.get("type") == "contract":
        return Key(detector, parent["name"], element["name"])
    return Key(detector, parent.get("name", ""), element.get("name", ""))


def load_results(path: Path) -> list[Result]:
    data = json.loads(path.read_text())
    if not data.get("success"):
        raise ValueError(f"{path}: slither did not succeed: {data.get('error')}")
    results = []
    for item in data.get("results", {}).get("detectors", []):
        elements = item.get("elements") or [{}]
        key = result_key(item["check"], elements[0])
        results.append(Result(key, item["impact"], " ".join(item["description"].split())))
    return results


def load_triage(path: Path) -> dict[Key, dict[str, str]]:
    entries = json.loads(path.read_text())["results"]
    triage: dict[Key, dict[str, str]] = {}
    for entry in entries:
        key = Key(entry["detector"], entry["contract"], entry.get("function", ""))
        if entry.get("verdict") not in VERDICTS:
            raise ValueError(f"{path}: {key}: verdict must be one of {', '.join(VERDICTS)}, got {entry.get('verdict')!r}")
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path}: {key}: a reason is required")
        if key in triage:
            raise ValueError(f"{path}: {key} is listed twice")
        triage[key] = entry
    return triage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slither_json", type=Path, help="slither's --json output")
    parser.add_argument("triage", type=Path, help="the triage file (audit/slither-triage.json)")
    args = parser.parse_args(argv)
    try:
        results = load_results(args.slither_json)
        triage = load_triage(args.triage)
    except (OSError, ValueError, KeyError) as exc:
        print(f"slither_check: {exc}", file=sys.stderr)
        return 2

    counts = Counter(r.impact for r in results)
    print("slither results by impact: " + ", ".join(f"{i} {counts.get(i, 0)}" for i in
                                                      ("High", "Medium", "Low", "Informational", "Optimization")))
    checked = [r for r in results if r.impact in CHECKED_IMPACTS]
    verdicts = Counter(triage[r.key]["verdict"] for r in checked if r.key in triage)
    print(f"high/medium: {len(checked)} results, " + ", ".join(f"{v} {verdicts.get(v, 0)}" for v in VERDICTS))

    seen = {r.key for r in checked}
    for key, entry in triage.items():
        if key not in seen and entry["verdict"] != "fixed":
            print(f"note: triage entry no longer reported: {key} ({entry['verdict']})")

    untriaged = [r for r in checked if r.key not in triage]
    for result in untriaged:
        print(f"UNTRIAGED {result.impact}: {result.key}\n    {result.description[:300]}")
    if untriaged:
        print(f"slither_check: {len(untriaged)} high/medium result(s) not in {args.triage}", file=sys.stderr)
        return 1
    print("slither_check: every high/medium result is triaged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
