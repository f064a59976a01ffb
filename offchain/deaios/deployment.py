"""What every ape deploy script (scripts/deploy.py, deploy_<area>.py) does around its own deployment: its shared
options, picking and unlocking the deploying account, checking the chain id, and writing the result to
deployments/. It takes ape's objects as arguments, so the package itself does not import ape at module level.

The deploying account on a live network is an ape account (`--account ALIAS`, e.g. from `ape accounts import
ALIAS`). A keyfile account is unlocked once, before the first transaction, from ape's own environment variable
`APE_ACCOUNTS_<ALIAS>_PASSPHRASE` (ape 0.8: `KeyfileAccount.unlock` reads it), else by one prompt; it then signs
without asking per transaction (`set_autosign`). Without a terminal and without the variable the script stops
with a message naming it, instead of hanging on a prompt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from deaios.deployment_session import TxOptions
from deaios.units import AMOUNT


@dataclass(frozen=True)
class Area:
    """One area `ape run deploy --all-areas` deploys after storage (the list is `AREAS` in scripts/deploy.py):
    `scripts/<script>.py` defines `<script>(deployer, project, *, admin, …)`, the deploy function, and
    `check_deployment(check)`, what `ape run verify_deployment` expects of the result."""

    name: str  # step names "<name>:…", `areas.<name>` in the record, `--set <name>.param=…`
    script: str
    prefix: str  # flat record keys "<prefix>_<contract>" ("" when the area's own keys are distinct enough)
    #: keyword arguments computed from what the earlier areas deployed (the flat record so far)
    wiring: Callable[[dict[str, Any]], dict[str, Any]] = lambda deployed: {}
    #: parameters for a local (dev) network: short windows for a local stack and the demo
    local: dict[str, Any] = field(default_factory=dict)


#: `--admin` of every deploy script.
ADMIN_OPTION = click.option("--admin", default=None, help="Admin address (default: the deployer).")


def out_dir_option(what: str) -> Any:
    """`--out-dir` of a deploy script that writes `what` (e.g. "<network>-compute.json")."""
    return click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("deployments"),
                        show_default=True, help=f"Directory for {what}.")


def tx_options(f: Any) -> Any:
    """--gas-limit, --gas-price, --max-fee and --priority-fee; the command receives them as `tx_options`."""
    options = [
        click.option("--gas-limit", type=click.IntRange(21_000), default=None,
                     help="Gas limit of every transaction (default: estimated per transaction)."),
        click.option("--gas-price", default=None, type=AMOUNT,
                     help="Legacy gas price, wei or e.g. \"3 gwei\" (default: the node's EIP-1559 suggestion)."),
        click.option("--max-fee", default=None, type=AMOUNT, help="EIP-1559 max fee per gas (wei or \"N gwei\")."),
        click.option("--priority-fee", default=None, type=AMOUNT,
                     help="EIP-1559 priority fee per gas (wei or \"N gwei\")."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def tx_options_of(params: dict[str, Any]) -> TxOptions:
    """Pop the four gas options out of a command's keyword arguments."""
    gas_price, max_fee = params.pop("gas_price", None), params.pop("max_fee", None)
    priority_fee = params.pop("priority_fee", None)
    if gas_price is not None and (max_fee is not None or priority_fee is not None):
        raise click.UsageError("--gas-price (legacy transactions) and --max-fee/--priority-fee (EIP-1559) exclude "
                               "each other")
    return TxOptions(params.pop("gas_limit", None), gas_price, max_fee, priority_fee)


def check_chain_id(provider: Any) -> None:
    """On a live network: the node's chain id is the configured one (ape-config.yaml), and $ZG_CHAIN_ID when set."""
    if provider.network.is_dev:
        return
    actual = provider.chain_id
    expected_env = os.environ.get("ZG_CHAIN_ID")
    if expected_env and int(expected_env) != actual:
        raise click.UsageError(f"ZG_CHAIN_ID={expected_env} but the node at {getattr(provider, 'uri', '?')} reports "
                               f"chain id {actual} (edit chain_id in ape-config.yaml for another chain).")
    configured = getattr(provider.network, "chain_id", None)
    if isinstance(configured, int) and configured != actual:
        raise click.UsageError(f"network {provider.network.name} is configured with chain id {configured}, but the "
                               f"node reports {actual}: wrong RPC URL?")


def unlock(account: Any) -> None:
    """Let a keyfile account sign the deployment's transactions without a prompt per transaction."""
    if not hasattr(account, "set_autosign") or not hasattr(account, "keyfile_path"):
        return  # test accounts and plugin accounts sign on their own terms
    variable = f"APE_ACCOUNTS_{account.alias}_PASSPHRASE"
    if variable not in os.environ and not sys.stdin.isatty():
        raise click.UsageError(f"account {account.alias!r} is locked and there is no terminal to ask for its "
                               f"passphrase: set {variable}")
    account.set_autosign(True)


def deploying_account(provider: Any, account: Any, accounts: Any) -> Any:
    """`--account` (unlocked for the whole run), or test account 0 on a local (dev) network; a live network needs
    `--account`, and its node must report the configured chain id."""
    check_chain_id(provider)
    if account is not None:
        unlock(account)
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


def recorded_address(path: Path, keys: tuple[str, ...]) -> str | None:
    """The first of `keys` in the deployment record at `path` (None without the file or the keys)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return next((data[k] for k in keys if isinstance(data, dict) and data.get(k)), None)


def dependency(provider: Any, given: str | None, option: str, record: Path, keys: tuple[str, ...],
               deploy: Callable[[], str] | None, what: str) -> str | None:
    """The address of a contract a per-area deploy script builds on: `given` (its `option`), else the record an
    earlier `ape run deploy_<area>` wrote for this network (`record`, under one of `keys`).

    It must have code on this chain. The default local network is a throwaway Anvil per `ape run`, so an earlier
    run's record names contracts of a chain that is gone: there the dependency is deployed now, in this run, with
    `deploy` (which returns its address). Anywhere else a missing contract is a one-line error naming what to
    deploy or pass. None when nothing is given or recorded and `deploy` is None (an optional dependency)."""
    address = given or recorded_address(record, keys)
    if address and len(provider.get_code(address)) > 0:
        return address
    if given:
        raise click.ClickException(f"{option} {given}: no contract there on {provider.network.name}")
    if deploy is not None and provider.network.is_dev:
        why = f"{record} is from an earlier chain" if address else f"no {record}"
        click.echo(f"deploying {what} first ({why}; this local network starts empty)", err=True)
        return deploy()
    if address:
        raise click.ClickException(f"{record} names {address} as {what}, but there is no contract there on "
                                   f"{provider.network.name}: deploy {what} on this network first, or pass {option}")
    if deploy is not None:
        raise click.ClickException(f"{what} is needed: deploy it on {provider.network.name} first ({record}), or "
                                   f"pass {option}")
    return None
