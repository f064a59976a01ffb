"""Contract ABIs shipped with the package, and custom-error decoding.

Each area that talks to its contracts from Python keeps the ABIs it needs in its own `abi.json` (a JSON
object: contract name -> ABI), exported from ape's build (`.build/__local__.json`) after `ape compile`, so
that the package works without the build. A test per area checks that the file is current. `ContractAbis` is
that file: load, render from the build, write, and turn revert data into `Name(arg=value, …)` using the
custom errors of those contracts.

This module only loads and decodes: it imports no area. `python -m deaios.abi` finds the areas' files by
their place (`deaios/<area>/abi.json`) and rewrites each with the contracts it already lists; a new area
starts its file as `{"SomeContract": []}` and lets the command fill it in.

    python -m deaios.abi            # rewrite every area's abi.json from the current build
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import is_address, keccak, to_checksum_address

ROOT = Path(__file__).resolve().parents[2]
BUILD_FILE = ROOT / ".build" / "__local__.json"


def canonical_type(item: dict) -> str:
    """The canonical ABI type of an input/output item (tuples spelled out)."""
    if item["type"].startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


@dataclass(frozen=True)
class CustomError:
    name: str
    arg_names: list[str]
    arg_types: list[str]


class ContractAbis:
    """The ABIs of `contracts`, stored in `file` (an area's abi.json)."""

    def __init__(self, file: Path, contracts: Sequence[str] | None = None) -> None:
        self.file = file
        #: the contracts the file holds (default: those it lists now)
        self.contracts = tuple(contracts) if contracts is not None else tuple(json.loads(file.read_text()))

    @cached_property
    def abis(self) -> dict[str, list]:
        """Contract name -> ABI list."""
        return json.loads(self.file.read_text())

    def __getitem__(self, contract: str) -> list:
        return self.abis[contract]

    def render(self, build_file: Path = BUILD_FILE) -> str:
        """The file's text for the compiled project in ape's `build_file`."""
        types = json.loads(build_file.read_text())["contractTypes"]
        return json.dumps({name: types[name]["abi"] for name in self.contracts}, sort_keys=True, indent=1) + "\n"

    def is_current(self, build_file: Path = BUILD_FILE) -> bool:
        return self.file.read_text() == self.render(build_file)

    def write(self, build_file: Path = BUILD_FILE) -> Path:
        self.file.write_text(self.render(build_file))
        self.__dict__.pop("abis", None)
        self.__dict__.pop("errors", None)
        return self.file

    @cached_property
    def errors(self) -> dict[bytes, CustomError]:
        """Selector -> custom error, over every contract of the file."""
        out = {}
        for abi in self.abis.values():
            for item in abi:
                if item.get("type") == "error":
                    types = [canonical_type(i) for i in item["inputs"]]
                    selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                    out[selector] = CustomError(item["name"], [i["name"] for i in item["inputs"]], types)
        return out

    def decode_error(self, data: str | bytes | None) -> str:
        """'Name(arg=value, ...)' for custom-error revert data, else a short description."""
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x")) if data.startswith("0x") else data.encode()
        if not data or len(data) < 4:
            return "reverted without a reason"
        known = self.errors.get(data[:4])
        if known is None:
            return "reverted with 0x" + data.hex()
        try:
            values = abi_decode(known.arg_types, data[4:])
        except Exception:  # noqa: BLE001 - malformed data: the name alone
            return known.name
        shown = ", ".join(f"{n}={self._show(v)}" for n, v in zip(known.arg_names, values))
        return f"{known.name}({shown})"

    def _show(self, value: Any) -> str:
        if isinstance(value, bytes):  # e.g. a governor's ExecutionFailed(returnData): the target's own error
            nested = len(value) % 32 == 4 and value[:4] in self.errors
            return self.decode_error(value) if nested else "0x" + value.hex()
        if isinstance(value, str) and is_address(value):
            return to_checksum_address(value)
        return str(value)

    def error_name(self, data: Any) -> str | None:
        """The custom error's name for revert data (hex string or bytes), None when unknown."""
        if isinstance(data, str):
            if not data.startswith("0x") or len(data) < 10:
                return None
            data = bytes.fromhex(data[2:10])
        if not isinstance(data, bytes | bytearray) or len(data) < 4:
            return None
        known = self.errors.get(bytes(data[:4]))
        return known.name if known else None


def registered() -> list[ContractAbis]:
    """Every area's ABI file (`deaios/<area>/abi.json`), each with the contracts it lists."""
    package = Path(__file__).resolve().parent
    return [ContractAbis(file) for file in sorted(package.glob("*/abi.json"))]


def main() -> None:
    for abis in registered():
        print(f"wrote {abis.write()}")


if __name__ == "__main__":
    main()
