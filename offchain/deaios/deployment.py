"""What every ape deploy script (scripts/deploy.py, deploy_da.py, deploy_compute.py) does around its own
deployment: pick the deploying account, check the chain id on the 0G testnet, and record the result in
deployments/. It takes ape's objects as arguments, so the package itself does not import ape."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import click


#: `--admin` of every deploy script.
ADMIN_OPTION = click.option("--admin", default=None, help="Admin address (default: the deployer).")


def out_dir_option(what: str) -> Any:
    """`--out-dir` of a deploy script that writes `what` (e.g. "<network>-compute.json")."""
    return click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("deployments"),
                        show_default=True, help=f"Directory for {what}.")


def deploying_account(provider: Any, account: Any, accounts: Any) -> Any:
    """`--account`, or test account 0 on a local (dev) network; a live network needs `--account`.
    On `zgtestnet`, $ZG_CHAIN_ID (when set) must match the node's chain id."""
    expected_chain = os.environ.get("ZG_CHAIN_ID")
    if provider.network.name == "zgtestnet" and expected_chain and int(expected_chain) != provider.chain_id:
        raise click.UsageError(f"ZG_CHAIN_ID={expected_chain} but the node at ZG_RPC_URL reports chain id "
                               f"{provider.chain_id} (edit chain_id in ape-config.yaml for another chain).")
    if account is not None:
        return account
    if not provider.network.is_dev:
        raise click.UsageError("--account is required on a live network (see `ape accounts import`).")
    return accounts.test_accounts[0]


def record_deployment(result: dict[str, Any], provider: Any, out_dir: Path, file_name: str) -> Path:
    """Add the network name to `result`, write it to out_dir/file_name as JSON and echo it."""
    result["network"] = provider.network.name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name
    path.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(json.dumps(result, indent=2))
    click.echo(f"wrote {path}")
    return path


def load_script(name: str, root: Path | None = None) -> ModuleType:
    """Import scripts/<name>.py of the project (e.g. "deploy_da") as a module, so that tests, other deploy
    scripts and the local stack can call its reusable deploy function. `root` defaults to the source tree
    this package lives in."""
    if root is None:
        root = Path(__file__).resolve().parents[2]
    path = root / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deaios_scripts_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
