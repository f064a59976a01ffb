"""Register the npm solc-js shim (scripts/solc_shim.js) as solc 0.8.30 for py-solc-x / ape-solidity.

Native solc downloads are unreachable on our build machines, so py-solc-x's own installer cannot run.
This writes an executable `solc-v<version>` into py-solc-x's install folder (default `~/.solcx`,
overridable with the SOLCX_BINARY_PATH environment variable) that runs the shim with node. Idempotent:
the file is rewritten only when its content would change. `--print-path` prints only the registered file's path.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def solc_js_version() -> str:
    package = json.loads((REPO / "node_modules" / "solc" / "package.json").read_text())
    return str(package["version"])


def main(argv: list[str] | None = None) -> int:
    """Register the shim; with `--print-path`, print only its path (for tools that take a solc binary, such as
    `forge build --use` in `make audit`)."""
    print_path = "--print-path" in (sys.argv[1:] if argv is None else argv)
    import solcx  # imported here so that a missing virtualenv gives a clear error below

    node = shutil.which("node")
    if node is None:
        print("install_solc: node is not on PATH (install Node.js 20+)", file=sys.stderr)
        return 2
    shim = REPO / "scripts" / "solc_shim.js"
    version = solc_js_version()
    folder = Path(solcx.get_solcx_install_folder())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"solc-v{version}"
    script = f'#!/bin/sh\nexec "{node}" "{shim}" "$@"\n'
    if not target.exists() or target.read_text() != script:
        target.write_text(script)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    out = subprocess.run([str(target), "--version"], capture_output=True, text=True, check=True).stdout
    if f"Version: {version}" not in out:
        print(f"install_solc: {target} answered {out!r}", file=sys.stderr)
        return 1
    print(target if print_path else f"solc {version} (solc-js shim) registered at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
