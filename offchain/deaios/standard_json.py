"""Solidity standard-JSON inputs for block-explorer verification: one self-contained input per contract.

ape-solidity compiles the project with our solc-js shim, whose import callback finds `@openzeppelin/…` in
node_modules; an explorer compiles with a plain solc and no callback, so its input must carry every source the
contract imports, transitively, under the same source unit names the build used (the names and contents are
hashed into the bytecode's metadata, so anything else would not reproduce the deployed code). `sources_of` walks
the imports from the contract's source id: relative imports resolve against the importing unit's directory, other
paths are unit names as written (solc's rules without remappings); a unit's text comes from the project tree, else
from node_modules. `standard_input` adds the compiler settings of the build (optimizer, EVM version, via-IR: the
build manifest's compiler entry).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

_IMPORT = re.compile(r"""\bimport\s+(?:[^;"']*?\bfrom\s+)?["']([^"']+)["']""")
_STRING_OR_COMMENT = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|//[^\n]*|/\*.*?\*/""", re.S)
#: What an explorer needs from the compiler output (it does not change the bytecode).
OUTPUT_SELECTION = {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}}


def _without_comments(text: str) -> str:
    return _STRING_OR_COMMENT.sub(lambda m: m.group(1) or " ", text)


def imports_of(text: str) -> list[str]:
    """The import paths of a Solidity source, as written."""
    return _IMPORT.findall(_without_comments(text))


def resolve(unit: str, path: str) -> str:
    """The source unit name `path` imported from `unit` stands for."""
    if path.startswith("./") or path.startswith("../"):
        return posixpath.normpath(posixpath.join(posixpath.dirname(unit), path))
    return path


def read_unit(unit: str, root: Path) -> str:
    for candidate in (root / unit, root / "node_modules" / unit):
        if candidate.is_file():
            return candidate.read_text(encoding="utf8")
    raise FileNotFoundError(f"source unit {unit} is neither in {root} nor in {root / 'node_modules'}")


def sources_of(source_id: str, root: Path) -> dict[str, dict[str, str]]:
    """Every source unit `source_id` needs, itself included: {unit name: {"content": text}}, sorted by name."""
    found: dict[str, str] = {}
    todo = [source_id]
    while todo:
        unit = todo.pop()
        if unit in found:
            continue
        found[unit] = read_unit(unit, root)
        todo.extend(resolve(unit, path) for path in imports_of(found[unit]))
    return {unit: {"content": found[unit]} for unit in sorted(found)}


def standard_input(source_id: str, root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The standard-JSON input that compiles `source_id` as the build did (`settings`: the build's compiler
    settings; their outputSelection is replaced)."""
    clean = {k: v for k, v in settings.items() if k != "outputSelection"}
    return {"language": "Solidity", "sources": sources_of(source_id, root),
            "settings": {**clean, "outputSelection": OUTPUT_SELECTION}}
