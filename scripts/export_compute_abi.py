"""Regenerate offchain/deaios/compute/abi.json from the compiled contracts (run `ape compile` first).

    python scripts/export_compute_abi.py

`tests/compute/offchain/test_broker.py::test_abi_file_is_current` fails when the file is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ("ComputeLedger", "ServiceRegistry", "ComputeMatcher", "FineTuningServing")


def main() -> None:
    build = json.loads((ROOT / ".build" / "__local__.json").read_text())["contractTypes"]
    lines = [json.dumps(name) + ": " + json.dumps(build[name]["abi"], separators=(",", ":"), sort_keys=True)
             for name in CONTRACTS]
    out = ROOT / "offchain" / "deaios" / "compute" / "abi.json"
    out.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
