"""``vault completion SHELL``: the shell completion script, for bash, zsh and fish."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from vault.cli import cli

COMPLETE_VAR = "_VAULT_COMPLETE"


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (see the README for where to put it)."""
    cls = get_completion_class(shell)
    assert cls is not None  # the choice above lists only shells click supports
    click.echo(cls(cli, {}, "vault", COMPLETE_VAR).source())
