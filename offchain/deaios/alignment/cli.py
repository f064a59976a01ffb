"""`deaios alignment ...`: alignment nodes. `deaios alignment node` is the operator process that supervises
the stack's storage nodes (docs/alignment.md, "Supervision"); it prints one JSON line per node checked or
result finalized."""

from __future__ import annotations

import json
import os
import time

import click

from deaios.errors import UserError
from deaios.stack.config import Stack, stack_option

#: stack.json `contracts` keys under which the supervision contract may be recorded (first found wins)
SUPERVISION_KEYS = ("alignment_supervision", "supervision")


@click.group()
def alignment() -> None:
    """0G alignment nodes: supervise storage and DA nodes for the licenses an operator runs."""


def supervision_address(stack: Stack, override: str | None) -> str:
    """The AlignmentSupervision address: --supervision, else the stack's contracts."""
    from eth_utils import is_address

    address = override or next((stack.contracts[k] for k in SUPERVISION_KEYS if k in stack.contracts), None)
    if address is None:
        raise UserError("the stack has no AlignmentSupervision contract (contracts.alignment_supervision); "
                        "deploy it (scripts/deploy_supervision.py) or pass --supervision")
    if not is_address(address):
        raise UserError(f"supervision address must be a 0x-prefixed 20-byte address, got {address!r}")
    return address


def _key(value: str | None) -> str:
    key = value or os.environ.get("DEAIOS_KEY")
    if not key:
        raise UserError("--key (or $DEAIOS_KEY) is required: the alignment operator's private key")
    try:
        raw = bytes.fromhex(key.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError("--key must be a 32-byte hex private key")
    return "0x" + raw.hex()


@alignment.command("node")
@stack_option()
@click.option("--key", default=None, help="The operator's private key (hex); default $DEAIOS_KEY.")
@click.option("--supervision", default=None, help="AlignmentSupervision address (default: from the stack).")
@click.option("--once", is_flag=True, help="One pass (finalize the previous epoch, attest this one), then exit.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between checks for a new epoch.")
@click.option("--timeout", default=None, type=click.FloatRange(0.1),
              help="Seconds one try of a challenged node may take (default: a sixth of the epoch, 2 to 60 s). A "
                   "node fails only when every try failed, the tries spread over the contract's minimum span.")
@click.option("--log-level", default="WARNING", show_default=True)
def node(stack: Stack, key: str | None, supervision: str | None, once: bool, poll: float, timeout: float | None,
         log_level: str) -> None:
    """Run an alignment node: challenge every supervised node each epoch and attest the results on chain."""
    import asyncio
    import logging

    from deaios.alignment.chain import SupervisionChainError
    from deaios.alignment.operator import Operator, OperatorConfig

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s alignment %(levelname)s %(name)s: %(message)s")
    config = OperatorConfig(stack.rpc, supervision_address(stack, supervision), _key(key),
                            [n["url"] for n in stack.storage_nodes], stack.deploy_block, timeout,
                            stack.contracts.get("da_entrance"))
    operator = Operator(config)
    last_epoch = -1
    while True:
        try:
            epoch = operator.chain.current_epoch()
            if epoch != last_epoch:
                for outcome in asyncio.run(operator.run_once()):
                    click.echo(json.dumps(outcome.to_json()))
                last_epoch = epoch
        except SupervisionChainError as exc:
            if once:
                raise UserError(str(exc)) from None
            logging.getLogger(__name__).warning("%s (retrying)", exc)
        except Exception:  # keep supervising whatever one pass ran into
            if once:
                raise
            logging.getLogger(__name__).exception("supervision pass failed (retrying)")
        if once:
            return
        time.sleep(poll)


# licenses, delegation, rewards and governance: `deaios alignment buy|delegate|claim|vote|…` (economy_cli.py)
from deaios.alignment.economy_cli import register as _register_economy  # noqa: E402

_register_economy(alignment)
