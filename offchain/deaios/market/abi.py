"""ABIs of the market contracts (and of the ERC-7857 interfaces it drives), kept in `abi.json`.

Regenerate after `ape compile` with `python -m deaios.market.abi` (or `python -m deaios.abi` for every
area); `tests/market/test_market_cli.py` fails when the file is stale.
"""

from __future__ import annotations

from pathlib import Path

from deaios.abi import ContractAbis

ABI_FILE = Path(__file__).with_name("abi.json")
CONTRACTS = ("AgentMarket", "ComputeBundleMarket", "IERC7857", "IERC7857Authorize")
ABIS = ContractAbis(ABI_FILE, CONTRACTS)


def load_abis() -> dict[str, list]:
    """Contract name -> ABI list."""
    return ABIS.abis


def render(build_file: Path) -> str:
    """The abi.json text for the compiled project in ape's `build_file` (.build/__local__.json)."""
    return ABIS.render(build_file)


def main() -> None:
    print(f"wrote {ABIS.write()}")


if __name__ == "__main__":
    main()
