"""The `deaios` command line: `deaios <area> <verb>`.

Each area lives in its own module (`deaios/<area>/cli.py`) and is imported only when used, so that
`deaios storage root` does not pay for importing web3. Register a new area in AREAS.
"""

from __future__ import annotations

import importlib

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


@click.group(cls=LazyGroup, lazy_commands=AREAS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deaios")
def main() -> None:
    """deaios: a complete local 0G network (storage, KV, DA, compute, INFT) and its clients."""


if __name__ == "__main__":
    main()
