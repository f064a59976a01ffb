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
from eth_utils import is_hex_address

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


class DeployError(click.ClickException):
    """A deploy script's failure a user can fix (a missing dependency, a stack that is not running, …): one line
    on stderr, `error: …`, exit code 2, no traceback — as every `deaios` command."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _use_stack(ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    """`--stack`: point ape's foundry provider at the stack's Anvil (before ape connects: the option is eager)
    and remember the stack, whose contracts are then the dependencies (`dependency`)."""
    if value is None:
        return None
    from deaios.errors import UserError
    from deaios.procs import rpc_call
    from deaios.stack.config import load_stack

    try:
        stack = load_stack(value, require_running=False)
    except UserError as exc:
        raise DeployError(exc.format_message()) from None
    try:
        chain_id = int(rpc_call(stack.rpc, "eth_chainId", timeout=5.0), 16)
    except Exception as exc:  # noqa: BLE001  (refused, timed out, not JSON-RPC)
        raise DeployError(f"--stack {value}: its chain {stack.rpc} does not answer ({exc}); is the stack running? "
                          f"(`deaios up --dir {stack.dir or value}`)") from None
    if chain_id != stack.chain_id:
        raise DeployError(f"--stack {value}: {stack.rpc} is chain {chain_id}, the stack's is {stack.chain_id}")
    os.environ["APE_FOUNDRY_HOST"] = stack.rpc  # ape-foundry connects to a running Anvil at this URL
    ctx.meta["deaios_stack"] = stack
    return stack


def stack_option(f: Any) -> Any:
    """`--stack PATH` of every per-area deploy script: deploy onto a running `deaios up` stack's chain."""
    return click.option(
        "--stack", type=click.Path(path_type=Path), default=None, is_eager=True, expose_value=False,
        callback=_use_stack,
        help="Deploy onto the chain of a running `deaios up` stack (its stack.json or data directory): ape connects "
             "to the stack's Anvil (network ethereum:local:foundry, the default) as Anvil dev key 0, the stack's "
             "deployer, and the contracts this area builds on are the stack's.")(f)


def selected_stack() -> Any:
    """The stack given with `--stack` (deaios.stack.config.Stack), or None."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("deaios_stack") if ctx is not None else None


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


def check_stack_chain(provider: Any) -> None:
    """With `--stack`: ape is connected to the stack's chain (same genesis block), not to an Anvil of its own."""
    stack = selected_stack()
    if stack is None:
        return
    from deaios.procs import rpc_call

    ours = rpc_call(stack.rpc, "eth_getBlockByNumber", ["0x0", False], timeout=10.0)["hash"]
    connected = "0x" + bytes(provider.web3.eth.get_block(0)["hash"]).hex()
    if connected.lower() != str(ours).lower():
        raise DeployError(f"--stack {stack.path}: ape is connected to network {provider.network.name}, not to the "
                          f"stack's chain {stack.rpc}; leave --network out (or use --network ethereum:local:foundry)")


def deploying_account(provider: Any, account: Any, accounts: Any) -> Any:
    """`--account` (unlocked for the whole run), or test account 0 on a local (dev) network; a live network needs
    `--account`, and its node must report the configured chain id. With `--stack`, ape must be connected to the
    stack's chain."""
    check_chain_id(provider)
    check_stack_chain(provider)
    if account is not None:
        unlock(account)
        return account
    if not provider.network.is_dev:
        raise DeployError("--account is required on a live network (see `ape accounts import`).")
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


def stack_keys(record: Path, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The stack.json `contracts` keys of a record's `keys`: `<network>-<area>.json`'s "ledger" is the stack's
    "<area>_ledger" (`ape run deploy --all-areas` prefixes them so), `<network>.json`'s "flow" is "flow"."""
    _, _, area = record.stem.partition("-")
    return tuple(f"{area}_{k}" if area else k for k in keys)


def dependency(provider: Any, given: str | None, option: str, record: Path, keys: tuple[str, ...],
               deploy: Callable[[], str] | None, what: str) -> str | None:
    """The address of a contract a per-area deploy script builds on: `given` (its `option`), else the stack's
    (`--stack`), else the record an earlier `ape run deploy_<area>` wrote for this network (`record`, under one
    of `keys`).

    It must have code on this chain. The default local network is a throwaway Anvil per `ape run`, so an earlier
    run's record names contracts of a chain that is gone: there the dependency is deployed now, in this run, with
    `deploy` (which returns its address). Anywhere else a missing contract is a one-line error (`DeployError`)
    naming what to deploy or pass. None when nothing is given or recorded and `deploy` is None (an optional
    dependency)."""
    if given and not (given.startswith("0x") and is_hex_address(given)):
        raise DeployError(f"{option} {given}: not an address (0x and 40 hex digits)")
    stack = selected_stack()
    from_stack = None
    if stack is not None:
        from_stack = next((stack.contracts[k] for k in stack_keys(record, keys) if stack.contracts.get(k)), None)
    address = given or from_stack or recorded_address(record, keys)
    if address and len(provider.get_code(address)) > 0:
        return address
    if given:
        raise DeployError(f"{option} {given}: no contract there on {provider.network.name}")
    if deploy is not None and provider.network.is_dev:
        why = f"{record} is from an earlier chain" if address else f"no {record}"
        click.echo(f"deploying {what} first ({why}; this local network starts empty)", err=True)
        return deploy()
    if address:
        raise DeployError(f"{record} names {address} as {what}, but there is no contract there on "
                          f"{provider.network.name}: deploy {what} on this network first, or pass {option}")
    if deploy is not None:
        raise DeployError(f"{what} is needed: deploy it on {provider.network.name} first ({record}), or pass "
                          f"{option}")
    return None
