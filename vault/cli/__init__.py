"""The ``vault`` command line: a thin skin over the library; every VaultError becomes one line.

This package is the only place that imports ``click``. The root group and the error
handling live here, the shared helpers in ``common``; each area's commands live in their own module
and are joined to ``cli`` at the end of this one.
"""

from __future__ import annotations

import os
from typing import Any

import click

from vault.cli import access, backup, core, export, hints, intake, maintenance, policy, retention, review
from vault.cli.common import Ctx
from vault.errors import VaultError


class VaultGroup(click.Group):
    """Turns library errors into one clear line (and a hint) with the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VaultError as e:
            click.echo(f"vault: error: {hints.message(e)}", err=True)
            if hints.hint(e):
                click.echo(f"vault: hint: {hints.hint(e)}", err=True)
            ctx.exit(hints.exit_code(e))
        except KeyboardInterrupt:
            click.echo("vault: interrupted; nothing was changed", err=True)
            ctx.exit(130)
        except OSError as e:
            click.echo(f"vault: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
            ctx.exit(1)


@click.group(cls=VaultGroup)
@click.option("--vault", "vault_dir", envvar="VAULT_DIR", type=click.Path(file_okay=False), help="Vault directory (env VAULT_DIR).")
@click.option("--identity", "identity_file", envvar="VAULT_IDENTITY", type=click.Path(dir_okay=False), help="Your identity file (env VAULT_IDENTITY).")
@click.version_option(package_name="vault")
@click.pass_context
def cli(ctx: click.Context, vault_dir: str | None, identity_file: str | None) -> None:
    """Keep customer dossiers encrypted and run the archive office's procedure on them."""
    ctx.obj = Ctx(vault_dir, identity_file)



def main() -> None:
    """Console-script entry point."""

    os.umask(0o077)  # nothing the vault writes is for other users
    cli(prog_name="vault")


# Each area's module defines its commands; they are joined to the root group here, in one place.
cli.add_command(core.keygen)
cli.add_command(core.init)
cli.add_command(core.member)
cli.add_command(core.dossier_grp)
cli.add_command(core.doc_grp)
cli.add_command(core.find)
cli.add_command(core.check)
cli.add_command(core.plugins_grp)
cli.add_command(core.demo)
cli.add_command(access.request_grp)
cli.add_command(access.grant_grp)
cli.add_command(access.audit_grp)
cli.add_command(backup.backup_grp)
cli.add_command(review.review_grp)
cli.add_command(retention.retention_grp)
cli.add_command(retention.hold_grp)
cli.add_command(retention.destroy_grp)
cli.add_command(intake.intake_grp)
cli.add_command(policy.policy_grp)
core.doc_grp.add_command(export.doc_export)
core.dossier_grp.add_command(export.dossier_export)
core.dossier_grp.add_command(maintenance.dossier_update)
core.dossier_grp.add_command(maintenance.dossier_history)
core.dossier_grp.add_command(review.dossier_completeness)
core.doc_grp.add_command(retention.doc_event)
core.dossier_grp.add_command(retention.dossier_close)
