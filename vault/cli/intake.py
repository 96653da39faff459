"""Commands for write-only intake [R-3.1.2]."""

from __future__ import annotations

from pathlib import Path

import click

from vault.office import intake
from vault.cli import Ctx, cli, emit, json_opt
from vault.office.documents import CATEGORIES


@cli.group("intake")
def intake_grp() -> None:
    """Write-only intake: submit without read access; archivists accept or reject."""


@intake_grp.command("key")
@click.pass_obj
def intake_key(obj: Ctx) -> None:
    """Print the vault's public intake key."""
    click.echo(intake.recipient(obj.vault))


@intake_grp.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--for", "number", required=True, help="Archive number of the dossier it belongs to.")
@click.option("--category", required=True, help=f"One of: {', '.join(CATEGORIES)}.")
@click.option("--source", required=True, help="Where the material came from [R-3.1.3] (sealed).")
@click.option("--date", required=True, help="Date of the material, YYYY-MM-DD.")
@click.option("--original", is_flag=True, help="This is the original (default: a copy).")
@click.option("--title", help="Title (sealed).")
@click.option("--force-date", is_flag=True, help="Accept a date in the future or before 1900.")
@json_opt
@click.pass_obj
def intake_submit(obj: Ctx, files, number, category, source, date, original, title, force_date, as_json) -> None:
    """Submit material for a dossier; needs no identity and gives no read access."""
    ids = intake.submit(obj.vault, [Path(f) for f in files], number=number, category=category, source=source,
                        date=date, original=original, title=title, force_date=force_date)
    emit({"ids": ids}, as_json, "\n".join(ids))


@intake_grp.command("list")
@json_opt
@click.pass_obj
def intake_list(obj: Ctx, as_json: bool) -> None:
    """Submissions waiting for an archivist."""
    obj.actor().require("intake.manage")
    rows = intake.pending(obj.vault)
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['id']}  {r['for']:<20} {r['category']:<15} {r['date']}  {r['size']} bytes" for r in rs) or "(none)")


@intake_grp.command("accept")
@click.argument("id")
@json_opt
@click.pass_obj
def intake_accept(obj: Ctx, id: str, as_json: bool) -> None:
    """Add a submission to its dossier; prints the new document number."""
    number = intake.accept(obj.actor(), id)
    emit({"number": number}, as_json, number)


@intake_grp.command("reject")
@click.argument("id")
@click.option("--reason", required=True, help="Why (sealed).")
@click.pass_obj
def intake_reject(obj: Ctx, id: str, reason: str) -> None:
    """Delete a submission."""
    intake.reject(obj.actor(), id, reason)
    click.echo(f"rejected {id}")
