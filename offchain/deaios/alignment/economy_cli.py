"""`deaios alignment buy|licenses|register-operator|delegate|undelegate|rewards|claim|propose|vote|execute|
proposals`: the alignment-node economy (licenses, delegation, rewards, governance) from the command line.

Every command prints JSON lines on stdout (notes on stderr). The chain and contracts come from the stack
(`--stack`, else $DEAIOS_STACK, else the last `deaios up`: `contracts.alignment_license`, …), or from
`--rpc` + `--deployment deployments/<network>-alignment.json`. The key is `--key` (or $DEAIOS_KEY), else the
stack's dev key; `--stack`, `--key`, `--json` go after the verb as on every command (`deaios.cli_context`).
Contract reverts are reported by their custom error (exit 2).

`register(group)` attaches the commands to the `deaios alignment` click group (deaios/alignment/cli.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from deaios.cli_context import ClientContext, client_context, client_options
from deaios.errors import UserError


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj))


def say(text: str) -> None:
    click.echo(text, err=True)


def note_clock(w3: Any) -> None:
    """Say on stderr when the chain's latest block is old: states are shown as of now (deaios.chain_time)."""
    from deaios.chain_time import clock_lag, lag_note

    try:
        note = lag_note(clock_lag(w3))
    except Exception:  # noqa: BLE001  (the view itself reports an unreachable chain)
        return
    if note:
        say(note)


def _address(text: str, what: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise UserError(f"{what} must be a 0x-prefixed 20-byte address, got {text!r}")
    return to_checksum_address(text)


class EconomyContext:
    """Where the contracts are and who signs (the command's `deaios.cli_context` options), resolved lazily."""

    def __init__(self, client: ClientContext) -> None:
        self.client = client
        self._economy: Any = None

    def economy(self, need_key: bool = True) -> Any:
        from deaios.alignment.economy import Economy, EconomyAddresses, EconomyError

        if self._economy is None:
            target = self.client.target(need_key=need_key)
            try:
                addresses = EconomyAddresses.from_mapping(
                    target.contracts, from_block=target.stack.deploy_block if target.stack else 0)
            except EconomyError as exc:
                raise UserError(str(exc)) from None
            self._economy = Economy(target.rpc, addresses, target.key)
        return self._economy


def economy_options(f: Callable) -> Callable:
    """Adds the client options (--stack/--key/--json, --rpc/--deployment) and passes an EconomyContext `c`."""

    @client_options(chain="deployments/<network>-alignment.json written by `ape run deploy_alignment`.")
    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        return f(EconomyContext(client_context()), **kw)

    return wrapper


def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call into the chain, turning its errors (and bad values) into one-line user errors (exit 2)."""
    from deaios.alignment.economy import EconomyError

    try:
        return fn(*args, **kwargs)
    except (EconomyError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _own_licenses(economy: Any, token_ids: Sequence[int], account: str) -> list[int]:
    """The TOKEN_IDs given, else every license `account` holds."""
    return list(token_ids) if token_ids else run(economy.licenses_of, account)


TOKEN_IDS = click.argument("token_ids", metavar="TOKEN_ID...", nargs=-1, type=click.IntRange(1))


# --- licenses -----------------------------------------------------------------------------------------------
@click.command()
@click.option("--count", default=1, show_default=True, type=click.IntRange(1), help="Licenses to buy.")
@economy_options
def buy(c: EconomyContext, count: int) -> None:
    """Buy licenses at the current tier price (paid exactly; ids follow the sale order)."""
    economy = c.economy()
    bought = run(economy.buy, count)
    say(f"bought {len(bought['tokenIds'])} license(s) for {bought['paid']} wei")
    emit(bought)


@click.command()
@click.option("--owner", default=None, help="Licenses of this address (default: your own).")
@click.option("--all", "all_", is_flag=True, help="Every license sold, whoever holds it.")
@economy_options
def licenses(c: EconomyContext, owner: str | None, all_: bool) -> None:
    """Licenses, one JSON line each: tokenId, owner, operator, transferLockedUntil (unix time)."""
    if all_ and owner:
        raise UserError("--owner and --all exclude each other")
    economy = c.economy(need_key=not (owner or all_))
    if all_:
        token_ids = range(1, run(economy.total_minted) + 1)
    else:
        token_ids = run(economy.licenses_of, _address(owner, "--owner") if owner else economy.address)
    for token_id in token_ids:
        emit(run(economy.license_info, token_id).to_json())


# --- delegation ---------------------------------------------------------------------------------------------
@click.command("register-operator")
@click.option("--commission-bps", required=True, type=click.IntRange(0, 10_000),
              help="Your commission on your licenses' rewards, basis points (≤ the contract's maximum).")
@economy_options
def register_operator(c: EconomyContext, commission_bps: int) -> None:
    """Register as an operator (you must own a license; delegate it to yourself to run it)."""
    economy = c.economy()
    tx = run(economy.register_operator, commission_bps)
    emit({**run(economy.operator_info, economy.address), "tx": tx})


@click.command()
@click.argument("operator")
@TOKEN_IDS
@economy_options
def delegate(c: EconomyContext, operator: str, token_ids: tuple[int, ...]) -> None:
    """Delegate your licenses TOKEN_IDs to OPERATOR (an address, or `self` to run them yourself), from the next
    epoch on."""
    if not token_ids:
        raise UserError("give the TOKEN_IDs to delegate")
    economy = c.economy()
    operator = economy.address if operator == "self" else _address(operator, "OPERATOR")
    tx = run(economy.delegate, operator, token_ids)
    emit({"delegator": economy.address, "operator": operator, "tokenIds": list(token_ids), "tx": tx,
          "effectiveEpoch": run(economy.current_epoch) + 1})


@click.command()
@click.argument("address", metavar="OPERATOR")
@TOKEN_IDS
@click.option("--by-operator", is_flag=True,
              help="You are the operator handing licenses back: OPERATOR is then the licenses' owner.")
@economy_options
def undelegate(c: EconomyContext, address: str, token_ids: tuple[int, ...], by_operator: bool) -> None:
    """End delegations of TOKEN_IDs to OPERATOR from the next epoch (rewards are settled to the owner first)."""
    if not token_ids:
        raise UserError("give the TOKEN_IDs to undelegate")
    economy = c.economy()
    other = _address(address, "the owner" if by_operator else "OPERATOR")
    tx = run(economy.undelegate, other, token_ids, by_operator)
    owner, operator = (other, economy.address) if by_operator else (economy.address, other)
    emit({"delegator": owner, "operator": operator, "tokenIds": list(token_ids), "tx": tx,
          "effectiveEpoch": run(economy.current_epoch) + 1})


# --- rewards ------------------------------------------------------------------------------------------------
@click.command()
@TOKEN_IDS
@click.option("--account", default=None, help="Whose rewards (default: yours).")
@economy_options
def rewards(c: EconomyContext, token_ids: tuple[int, ...], account: str | None) -> None:
    """Show what a claim would pay you: credited + pending of TOKEN_IDs (default: all your licenses)."""
    economy = c.economy(need_key=account is None)
    who = _address(account, "--account") if account else economy.address
    note_clock(economy.w3)
    emit(run(economy.rewards_of, who, _own_licenses(economy, token_ids, who)))


@click.command()
@TOKEN_IDS
@economy_options
def claim(c: EconomyContext, token_ids: tuple[int, ...]) -> None:
    """Claim your rewards: licenses TOKEN_IDs (default: all yours) and operator commissions."""
    economy = c.economy()
    emit(run(economy.claim, _own_licenses(economy, token_ids, economy.address)))


# --- governance ---------------------------------------------------------------------------------------------
@click.command()
@click.argument("target")
@click.argument("signature")
@click.argument("args", nargs=-1)
@click.option("--description", default=None, help="What the proposal does (default: the call itself).")
@economy_options
def propose(c: EconomyContext, target: str, signature: str, args: tuple[str, ...],
            description: str | None) -> None:
    """Propose a call of SIGNATURE with ARGS on TARGET (an address, or a contract name of the deployment such
    as `market`, `da_entrance`, `rewards`), e.g. `propose market "setPricePerSector(uint256)" 1000`."""
    from deaios.alignment.economy import encode_call

    economy = c.economy()
    address = run(economy.addresses.resolve, target)
    calldata = run(encode_call, signature, list(args))
    if not run(economy.is_allowed, address, calldata):
        raise UserError(f"{signature} on {target} ({address}) is not on the governor's allowlist "
                        "(proposals may call only allowlisted parameter setters)")
    text = description if description is not None else f"{target}.{signature} {' '.join(args)}".strip()
    out = run(economy.propose, address, calldata, text)
    emit({**out, "targetName": economy.addresses.name_of(address), "signature": signature, "args": list(args),
          "description": text})


@click.command()
@click.argument("proposal_id", type=click.IntRange(1))
@TOKEN_IDS
@click.option("--support", required=True, type=click.Choice(["yes", "no", "abstain"]), help="Your vote.")
@economy_options
def vote(c: EconomyContext, proposal_id: int, token_ids: tuple[int, ...], support: str) -> None:
    """Vote on PROPOSAL_ID with your licenses TOKEN_IDs (default: all yours that may still vote on it)."""
    from deaios.alignment.economy import VOTE_TYPES

    economy = c.economy()
    ids = list(token_ids)
    if not ids:
        (proposal,) = run(economy.proposals, [proposal_id])
        ids = [t for t in run(economy.licenses_of, economy.address)
               if t <= proposal.snapshot_supply and not run(economy.has_voted, proposal_id, t)]
        if not ids:
            raise UserError(f"none of your licenses can vote on proposal {proposal_id} (licenses bought "
                            "after it was made do not vote; each license votes once)")
    tx = run(economy.vote, proposal_id, VOTE_TYPES[support], ids)
    (after,) = run(economy.proposals, [proposal_id])
    emit({"proposalId": proposal_id, "voter": economy.address, "support": support, "tokenIds": ids, "tx": tx,
          "forVotes": after.for_votes, "againstVotes": after.against_votes,
          "abstainVotes": after.abstain_votes})


@click.command()
@click.argument("proposal_id", type=click.IntRange(1))
@economy_options
def execute(c: EconomyContext, proposal_id: int) -> None:
    """Execute a succeeded proposal once its timelock has elapsed (anyone may)."""
    economy = c.economy()
    tx = run(economy.execute, proposal_id)
    (after,) = run(economy.proposals, [proposal_id])
    emit({**after.to_json(), "tx": tx})


@click.command()
@click.option("--id", "ids", multiple=True, type=click.IntRange(1), help="Only these proposals (repeatable).")
@economy_options
def proposals(c: EconomyContext, ids: tuple[int, ...]) -> None:
    """Proposals, one JSON line each: state, target, calldata, votes, quorum, voteEnd, eta, description."""
    economy = c.economy(need_key=False)
    note_clock(economy.w3)
    for proposal in run(economy.proposals, list(ids) or None):
        emit(proposal.to_json())


COMMANDS = (buy, licenses, register_operator, delegate, undelegate, rewards, claim, propose, vote, execute,
            proposals)


def register(group: click.Group) -> None:
    """Attach the economy commands to the `deaios alignment` group."""
    for command in COMMANDS:
        group.add_command(command)
