"""`scripts/slither_check.py` (the gate of `make audit`): slither's high and medium results are keyed by detector,
contract and function (or state variable), a result missing from the triage fails with exit code 1 naming it, a
triaged one passes, Low/Informational results are not gated, and a malformed triage is exit code 2. Runs on JSON
shaped like slither 0.11.6's output (no slither or forge needed: under a second)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slither_check.py"


def _contract(name: str) -> dict:
    return {"type": "contract", "name": name}


def _function(name: str, contract: str) -> dict:
    return {"type": "function", "name": name, "type_specific_fields": {"parent": _contract(contract)}}


def _result(check: str, impact: str, element: dict) -> dict:
    return {"check": check, "impact": impact, "confidence": "Medium", "description": f"{check} in {element['name']}\n",
            "elements": [element]}


RESULTS = [
    _result("arbitrary-send-eth", "High", _function("withdrawFees", "DAEntrance")),
    _result("uninitialized-state", "High", {"type": "variable", "name": "_datas",
                                             "type_specific_fields": {"parent": _contract("AgentNFT")}}),
    _result("uninitialized-local", "Medium", {"type": "variable", "name": "total",
                                              "type_specific_fields": {"parent": _function("batchSubmit", "Flow")}}),
    _result("locked-ether", "Medium", _contract("Flow")),
    _result("calls-loop", "Low", _function("claim", "AlignmentRewards")),
]
TRIAGE = [
    ("arbitrary-send-eth", "DAEntrance", "withdrawFees"),
    ("uninitialized-state", "AgentNFT", "_datas"),
    ("uninitialized-local", "Flow", "batchSubmit"),
    ("locked-ether", "Flow", ""),
]


def _run(tmp_path: Path, triage: list[dict]) -> subprocess.CompletedProcess:
    out, tri = tmp_path / "slither.json", tmp_path / "triage.json"
    out.write_text(json.dumps({"success": True, "error": None, "results": {"detectors": RESULTS}}))
    tri.write_text(json.dumps({"results": triage}))
    return subprocess.run([sys.executable, str(SCRIPT), str(out), str(tri)], capture_output=True, text=True)


def _entries(keys: list[tuple[str, str, str]], verdict: str = "false-positive") -> list[dict]:
    return [{"detector": d, "contract": c, "function": f, "verdict": verdict, "reason": "why"} for d, c, f in keys]


def test_every_high_and_medium_result_triaged_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, _entries(TRIAGE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "High 2, Medium 2, Low 1" in done.stdout


def test_an_untriaged_result_fails_naming_it(tmp_path: Path) -> None:
    done = _run(tmp_path, _entries(TRIAGE[1:]))
    assert done.returncode == 1
    assert "UNTRIAGED High: arbitrary-send-eth DAEntrance.withdrawFees" in done.stdout
    assert done.stdout.count("UNTRIAGED") == 1


def test_a_malformed_triage_is_exit_code_2(tmp_path: Path) -> None:
    assert _run(tmp_path, _entries(TRIAGE, verdict="wontfix")).returncode == 2
    no_reason = _entries(TRIAGE)
    no_reason[0]["reason"] = " "
    assert _run(tmp_path, no_reason).returncode == 2
