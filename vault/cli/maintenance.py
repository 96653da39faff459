"""Commands that keep dossiers current: profile updates and their history [R-3.5.2]."""

from __future__ import annotations

import click

from vault.office import maintenance
from vault.cli import NUMBER, Ctx, emit, json_opt
from vault.cli import options
from vault.i18n import _
from vault.cli.core import dossier_grp


@dossier_grp.command("update")
@click.argument("number", type=NUMBER)
@click.option("--name", help="Customer name (sealed).")
@options.address
@click.option("--alias", multiple=True, help="Other names (trade, English, pinyin); replaces the list (sealed; repeatable).")
@click.option("--contact", multiple=True, help="Contacts; replaces the list (sealed; repeatable).")
@options.legal_rep
@click.option("--business", help="Business type (cleartext; re-classifies the dossier).")
@options.note
@json_opt
@click.pass_obj
def dossier_update(obj: Ctx, number: str, name: str | None, address: str | None, alias: tuple[str, ...],
                   contact: tuple[str, ...], legal_rep: str | None, business: str | None, note: str | None,
                   as_json: bool) -> None:
    """Write a new version of a dossier's profile; old versions are kept."""
    changes = {"name": name, "address": address, "aliases": list(alias), "contact": list(contact),
               "legal_rep": legal_rep, "notes": note}
    version = maintenance.update(obj.actor(), number, changes, business=business)
    emit({"number": number, "version": version}, as_json, _("{number}: profile version {version}").format(number=number, version=version))


@dossier_grp.command("history")
@click.argument("number", type=NUMBER)
@json_opt
@click.pass_obj
def dossier_history(obj: Ctx, number: str, as_json: bool) -> None:
    """Profile versions: who, when, which fields (values only for members who may read)."""
    rows = maintenance.history(obj.actor(), number)
    emit(rows, as_json, lambda rs: "\n".join(
        f"v{r['version']}  " + _("{time} by {member:<14} changed: {fields}").format(
            time=obj.when(r["at"]), member=obj.who(r["by"]), fields=", ".join(r["fields"]) or "-")
        + (f"\n    {r['values']}" if "values" in r else "") for r in rs))
