"""What the command lines of the contract areas share: where the chain and the contracts are, and which key
signs.

A command finds them in a running stack (`--stack PATH`, else $DEAIOS_STACK, else the last `deaios up`; see
`deaios.stack.config`), or — for a chain deaios did not start, e.g. a testnet — in `--rpc URL` plus
`--deployment FILE`, the JSON record an `ape run deploy_<area>` script wrote. The signing key is `--key`, else
$DEAIOS_KEY, else the stack's dev key. `chain_options` adds the four options; `resolve_target` turns them into a
`ChainTarget`, with every problem a `UserError` (one line, exit code 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from deaios.deployment_record import DeploymentRecord, RecordError
from deaios.errors import UserError
from deaios.stack.config import Stack
from deaios.stack.keys import normalize


@dataclass
class ChainTarget:
    rpc: str
    #: contract addresses: the stack's `contracts` (plus an area's own stack entry), or the deployment record
    contracts: dict[str, Any]
    key: str | None
    stack: Stack | None


def normalize_key(text: str) -> str:
    """A 0x-prefixed 32-byte hex private key, or a UserError."""
    return normalize(text, "--key")


def resolve_target(stack_arg: str | Path | None, rpc: str | None, deployment: Path | None, key: str | None,
                   *, need_key: bool = True, stack_entry: str | None = None) -> ChainTarget:
    """The chain, contracts and key of a command's options. `stack_entry`: a stack.json object whose keys
    are added to the contracts (areas that list addresses of their own there)."""
    from deaios.stack.config import load_stack

    stack: Stack | None = None
    stack_key: str | None = None
    if rpc or deployment:
        if not (rpc and deployment):
            raise UserError("--rpc and --deployment go together")
        try:
            contracts = DeploymentRecord.load(Path(deployment)).data
        except RecordError as exc:
            raise UserError(str(exc)) from None
    else:
        stack = load_stack(stack_arg)
        rpc, stack_key = stack.rpc, stack.private_key
        own = stack.extra.get(stack_entry) if stack_entry else None
        contracts = {**stack.contracts, **(own if isinstance(own, dict) else {})}
    chosen = key or os.environ.get("DEAIOS_KEY") or stack_key
    if need_key and not chosen:
        raise UserError("this command needs a key: --key HEX or $DEAIOS_KEY")
    return ChainTarget(rpc, contracts, normalize_key(chosen) if chosen else None, stack)


def chain_options(deployment_help: str) -> Callable[[Callable], Callable]:
    """--stack, --rpc, --deployment and --key, for a group or a command (they reach it as keyword arguments
    `stack`, `rpc`, `deployment`, `key`)."""

    def decorate(f: Callable) -> Callable:
        for option in reversed([
            click.option("--stack", default=None, metavar="PATH",
                         help="The stack's stack.json (or its data dir). Default: $DEAIOS_STACK, else the last "
                              "stack started."),
            click.option("--rpc", default=None, help="Chain JSON-RPC URL (with --deployment, instead of a stack)."),
            click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help=deployment_help),
            click.option("--key", default=None, help="Private key (default $DEAIOS_KEY, else the stack's dev key)."),
        ]):
            f = option(f)
        return f

    return decorate
