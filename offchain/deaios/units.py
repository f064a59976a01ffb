"""Amounts of the chain's native token on the command line, the same on every command.

An amount is a number with a unit — `1ether`, `0.5ether`, `5gwei`, `100wei` (`eth` and `0g` are `ether`) —
or a bare whole number, which is **wei** (the chain's smallest unit; every help text says so). Negative
amounts, fractions of a wei and absurd amounts (more than `MAX_ETHER` ether) are refused with a one-line
message. Commands declare amount arguments with `type=AMOUNT` and `cls=AmountCommand` (so that `-1ether` is
refused as a negative amount, instead of as an unknown option `-1`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click

UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18, "0g": 10**18}
#: More than this many ether is a typo, not a payment (the whole supply of ETH is ~1.2e8 ether).
MAX_ETHER = 10**9
#: What every help text says about amounts.
AMOUNT_HELP = "an amount: 1ether, 0.5ether, 5gwei, 100wei; a bare number is wei"


class AmountError(ValueError):
    """Not an amount a user can mean."""


def parse_amount(text: str) -> int:
    """Wei from '123', '1.5ether', '10gwei'; AmountError (with the reason) otherwise."""
    t = str(text).strip().lower().replace("_", "")
    for unit in sorted(UNITS, key=len, reverse=True):
        if t.endswith(unit) and t[: -len(unit)]:
            number, scale = t[: -len(unit)].strip(), UNITS[unit]
            break
    else:
        number, scale = t, 1
    try:
        value = Decimal(number) * scale
    except InvalidOperation:
        raise AmountError(f"not an amount: {text!r} ({AMOUNT_HELP})") from None
    if not value.is_finite():
        raise AmountError(f"not an amount: {text!r} ({AMOUNT_HELP})")
    if value < 0:
        raise AmountError(f"an amount cannot be negative: {text!r}")
    if value != value.to_integral_value():
        raise AmountError(f"{text!r} is not a whole number of wei (1 wei = 1e-18 ether)")
    if value > MAX_ETHER * UNITS["ether"]:
        raise AmountError(f"{text!r} is more than {MAX_ETHER:,} ether: not a real amount")
    return int(value)


def format_amount(wei: int) -> str:
    """'1.5 ether (1500000000000000000 wei)' style, short for small amounts."""
    if wei >= 10**15:
        ether = (Decimal(wei) / UNITS["ether"]).normalize()
        return f"{ether:f} ether ({wei} wei)"
    return f"{wei} wei"


class AmountType(click.ParamType):
    """A click parameter type for amounts; the value is wei (int)."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_amount(value)
        except AmountError as exc:
            self.fail(str(exc), param, ctx)


AMOUNT = AmountType()


class AmountCommand(click.Command):
    """A command with amount arguments: a negative number (`-1ether`) is refused as a negative amount, where
    click would otherwise call it an unknown option `-1`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not any(isinstance(p.type, AmountType) for p in self.params):  # e.g. a chat message "-1 …"
            return super().parse_args(ctx, args)
        for arg in args:
            if arg == "--":
                break
            if len(arg) > 1 and arg[0] == "-" and (arg[1].isdigit() or arg[1] == "."):
                raise click.UsageError(f"an amount cannot be negative: {arg!r}", ctx)
        return super().parse_args(ctx, args)
