"""The `deaios` command line: `deaios <area> <verb>`.

Each area lives in its own module (`deaios/<area>/cli.py`) and is imported only when used, so that
`deaios storage root` does not pay for importing web3. Register a new area in AREAS.

Errors look the same on every command: one line on stderr starting with `error: `, exit code 2 for bad
input (a UserError, a usage mistake such as an unknown option or a missing argument, an account without
the funds a transaction needs), 1 for a failure of the system (a service that did not come up).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from deaios import __version__

# area name -> "module:click object"
AREAS: dict[str, str] = {
    "storage": "deaios.storage.cli:storage",
    "da": "deaios.da.cli:da",
    "kv": "deaios.kv.cli:kv",
    "bench": "deaios.bench:bench",
    "up": "deaios.stack.cli:up",
    "down": "deaios.stack.cli:down",
    "compute": "deaios.compute.cli:compute",
    "inft": "deaios.inft.cli:inft",
    "alignment": "deaios.alignment.cli:alignment",
    "market": "deaios.market.cli:market",
    "dashboard": "deaios.dashboard.cli:dashboard",
    "status": "deaios.dashboard.cli:status",
    "train": "deaios.training.cli:train",
}


class LazyGroup(click.Group):
    """A click group whose subcommands ("module:attribute" strings) are imported on first use."""

    def __init__(self, *args: object, lazy_commands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:  # unknown option, missing argument, bad value: one line, exit 2
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            _fail(f"{exc.format_message().rstrip('.')}{hint}", 2)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 130)
        except Exception as exc:  # noqa: BLE001 - only the ones a user causes are turned into messages
            message = user_facing(exc)
            if message is None:
                raise
            _fail(message, 2)
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def user_facing(exc: Exception) -> str | None:
    """A one-line message for an exception the user caused (not a bug), else None."""
    text = str(exc)
    if "insufficient funds" in text.lower():
        return ("the paying account has too little ETH for this transaction (gas × price + value); fund it or "
                "choose another --key")
    return None


@click.group(cls=LazyGroup, lazy_commands=AREAS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deaios")
def main() -> None:
    """deaios: a complete local 0G network (storage, KV, DA, compute, INFT) and its clients."""


if __name__ == "__main__":
    main()
