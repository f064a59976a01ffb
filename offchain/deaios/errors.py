"""Errors shared by the CLI and libraries. A UserError is bad input: the CLI prints it and exits 2."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """Bad input from the user (missing file, malformed argument): message on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # type: ignore[override]
        click.echo(f"error: {self.format_message()}", err=True, file=file)
