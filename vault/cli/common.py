"""What every command module shares: the context object, passphrase prompting, output and progress."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from vault.archive.vault import Vault, dumps_json
from vault.errors import InputError
from vault.store import identity


class Ctx:
    """What the group hands to every command on ``ctx.obj``."""

    def __init__(self, vault_dir: str | None, identity_file: str | None) -> None:
        self.vault_dir = vault_dir
        self.identity_file = identity_file
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            if not self.vault_dir:
                raise InputError("no vault given", hint="pass --vault DIR or set VAULT_DIR")
            self._vault = Vault.open(Path(self.vault_dir))
        return self._vault

    def actor(self):
        if not self.identity_file:
            raise InputError("this command needs your identity", hint="pass --identity FILE or set VAULT_IDENTITY")
        path = Path(self.identity_file)
        if not path.is_file():
            raise InputError(f"identity file {path} not found", hint="pass --identity FILE or set VAULT_IDENTITY")
        ident = identity.load_identity(path, _passphrase(f"Passphrase for {path.name}"))
        return self.vault.act_as(ident)


def _passphrase(prompt: str, *, confirm: bool = False) -> str:
    p = identity.passphrase_from_env()
    if p is not None:
        return p
    if not sys.stdin.isatty():
        raise InputError("no passphrase available", hint="run on a terminal, or set VAULT_PASSPHRASE_FILE")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | str) -> None:
    """Print ``data`` as JSON or as human text."""
    if as_json:
        click.echo(dumps_json(data))
    else:
        click.echo(text(data) if callable(text) else text)


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); silent when piped."""
    if total > 1 and sys.stderr.isatty():
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda n: None


json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
