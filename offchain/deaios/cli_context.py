"""The one CLI context every `deaios <area>` client command resolves its stack, key and output through.

Every client command takes the same three options, after its verb:

    --stack PATH   the stack's stack.json or data dir; else ./deaios-data, $DEAIOS_STACK, the last stack started
                   (`deaios.stack.config.resolve_stack_path`; an implicit choice is announced on stderr)
    --key HEX      the private key that signs; else $DEAIOS_KEY, else the stack's dev key 0
    --json         machine-readable output: JSON lines on stdout (commands that print JSON anyway accept it)

and chain commands also `--rpc URL --deployment FILE` (a chain deaios did not start: the contracts of the JSON
record an `ape run deploy_<area>` script wrote). Areas that took these options before the verb (`deaios compute
--key K deposit 1ether`) keep accepting them there; a value after the verb wins.

Use:

    @group.command()
    @client_options                      # or @client_options(chain="deployments/<network>-x.json …")
    @pass_client                         # the command receives a ClientContext as its first argument
    def verb(client: ClientContext, …): client.stack(), client.key(), client.target(), client.emit(obj)

    @client_options(stack_arg="stack")   # or: the loaded, running Stack as the keyword argument `stack`

The options record their values in the click context's `meta` (shared by a group and its subcommand), so the
decorator adds no parameters to the function. Every problem (no stack, a malformed key, --rpc without
--deployment) is a `UserError`: one line, exit code 2.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from deaios.errors import UserError

ENV_KEY = "DEAIOS_KEY"
_META = "deaios.client"
STACK_HELP = ("The stack's stack.json (or its data dir). Default: ./deaios-data, else $DEAIOS_STACK, else the last "
              "stack started by `deaios up`.")
KEY_HELP = f"Private key that signs (0x + 64 hex). Default: ${ENV_KEY}, else the stack's dev key 0."
JSON_HELP = "Machine-readable output: JSON lines on stdout."


@dataclass
class ChainTarget:
    rpc: str
    #: contract addresses: the stack's `contracts` (plus an area's own stack entry), or the deployment record
    contracts: dict[str, Any]
    key: str | None
    stack: Any  # deaios.stack.config.Stack | None


def normalize_key(text: str) -> str:
    """A 0x-prefixed 32-byte hex private key, or a UserError."""
    from deaios.stack.keys import normalize

    return normalize(text, "--key")


@dataclass
class ClientContext:
    """The resolved options of one client command (resolved lazily: `--help` touches no stack)."""

    stack_arg: str | Path | None = None
    key_arg: str | None = None
    as_json: bool = False
    rpc: str | None = None
    deployment: Path | None = None
    _stack: Any = field(default=None, repr=False)

    def stack(self, require_running: bool = True) -> Any:
        """The stack (`deaios.stack.config.Stack`) of --stack or the implicit choice."""
        from deaios.stack.config import load_stack

        if self._stack is None:
            self._stack = load_stack(self.stack_arg, require_running=require_running)
        return self._stack

    def explicit_key(self) -> str | None:
        """--key, else $DEAIOS_KEY (normalized), else None: no stack is read."""
        chosen = self.key_arg or os.environ.get(ENV_KEY)
        return normalize_key(chosen) if chosen else None

    def key(self, required: bool = True) -> str | None:
        """--key, else $DEAIOS_KEY, else the stack's dev key; a UserError when `required` and there is none."""
        chosen = self.explicit_key()
        if chosen is None and not (self.rpc or self.deployment):
            chosen = normalize_key(self.stack().private_key) if self.stack().private_key else None
        if required and chosen is None:
            raise UserError(f"this command needs a key: --key HEX or ${ENV_KEY}")
        return chosen

    def target(self, need_key: bool = True, stack_entry: str | None = None) -> ChainTarget:
        """The chain, contracts and key: --rpc + --deployment, else the stack. `stack_entry`: a stack.json object
        whose keys are added to the contracts (areas that list addresses of their own there)."""
        from deaios.deployment_record import DeploymentRecord, RecordError

        stack = None
        if self.rpc or self.deployment:
            if not (self.rpc and self.deployment):
                raise UserError("--rpc and --deployment go together")
            try:
                contracts = DeploymentRecord.load(Path(self.deployment)).data
            except RecordError as exc:
                raise UserError(str(exc)) from None
            rpc = self.rpc
        else:
            stack = self.stack()
            rpc = stack.rpc
            own = stack.extra.get(stack_entry) if stack_entry else None
            contracts = {**stack.contracts, **(own if isinstance(own, dict) else {})}
        return ChainTarget(rpc, contracts, self.key(required=need_key), stack)

    def emit(self, obj: Any, text: str | None = None) -> None:
        """One JSON line, or `text` (when given) unless --json."""
        click.echo(json.dumps(obj, default=str) if self.as_json or text is None else text)


def client_context(ctx: click.Context | None = None) -> ClientContext:
    """The merged client options of the running command (those after the verb win over those before it)."""
    ctx = ctx or click.get_current_context()
    values = ctx.meta.get(_META, {})
    return ClientContext(values.get("stack"), values.get("key"), bool(values.get("json")), values.get("rpc"),
                         values.get("deployment"))


#: the options' internal names: distinct from any command's own parameters (`kv put STREAM KEY VALUE`)
_PREFIX = "deaios_client_"


def _record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value not in (None, False, ""):
        ctx.meta.setdefault(_META, {})[str(param.name).removeprefix(_PREFIX)] = value
    return value


def _options(chain: str | None, rpc: bool = True) -> list[Callable]:
    def option(name: str, **kwargs: Any) -> Callable:
        return click.option(f"--{name}", _PREFIX + name, expose_value=False, callback=_record, **kwargs)

    options = [
        option("stack", type=click.Path(path_type=Path), default=None, metavar="PATH", help=STACK_HELP),
        option("key", default=None, metavar="HEX", help=KEY_HELP),
        option("json", is_flag=True, default=False, help=JSON_HELP),
    ]
    if chain is not None and rpc:
        options.append(option("rpc", default=None, metavar="URL",
                              help="Chain JSON-RPC URL (with --deployment, instead of a stack)."))
    if chain is not None:
        options.append(option("deployment", type=click.Path(dir_okay=False, path_type=Path), default=None,
                              help=chain))
    return options


def client_options(func: Callable | None = None, *, chain: str | None = None, rpc: bool = True,
                   stack_arg: str | None = None, require_running: bool = True) -> Callable:
    """Adds --stack, --key and --json (and with `chain`, the help of --deployment: --deployment and, unless
    `rpc=False`, --rpc) to a click command or group. With `stack_arg`, the function receives the loaded stack as
    that keyword argument."""

    def decorate(f: Callable) -> Callable:
        target = f if stack_arg is None else _with_stack(f, stack_arg, require_running)
        for option in reversed(_options(chain, rpc)):
            target = option(target)
        return target

    return decorate(func) if func is not None else decorate


def _with_stack(f: Callable, name: str, require_running: bool) -> Callable:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs[name] = client_context().stack(require_running=require_running)
        return f(*args, **kwargs)

    return wrapper


def pass_client(f: Callable) -> Callable:
    """Passes the command's ClientContext as the first argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(client_context(), *args, **kwargs)

    return wrapper


def resolve_target(stack_arg: str | Path | None, rpc: str | None, deployment: Path | None, key: str | None,
                   *, need_key: bool = True, stack_entry: str | None = None) -> ChainTarget:
    """`ClientContext(...).target(...)` for code that has the option values at hand."""
    return ClientContext(stack_arg, key, False, rpc, deployment).target(need_key, stack_entry)


class ClientGroup(click.Group):
    """A click group whose verbs all take the client options after the verb (`@group.command(client=False)` for
    a service process that has options of its own). `chain`/`rpc`: as for `client_options`; `amounts`: verbs
    refuse `-1ether` as a negative amount (`deaios.units.AmountCommand`) rather than as an unknown option."""

    def __init__(self, *args: Any, chain: str | None = None, rpc: bool = True, amounts: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chain_help, self.rpc, self.amounts = chain, rpc, amounts

    def command(self, *args: Any, client: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        from deaios.units import AmountCommand

        if client and self.amounts:
            kwargs.setdefault("cls", AmountCommand)
        decorate = super().command(*args, **kwargs)
        if not client:
            return decorate
        return lambda f: decorate(client_options(f, chain=self.chain_help, rpc=self.rpc))

    def group(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", ClientGroup)
        if kwargs["cls"] is ClientGroup:
            kwargs.update(chain=self.chain_help, rpc=self.rpc, amounts=self.amounts)
        return super().group(*args, **kwargs)
