"""Commands for write-only intake [R-3.1.2]."""

from __future__ import annotations

from pathlib import Path

import click

from vault.office import intake
from vault.cli import NUMBER, Ctx, cell, cli, emit, json_opt, state
from vault.cli import options
from vault.archive.manifests import CATEGORIES
from vault.errors import InputError
from vault.i18n import _, N_


@cli.group("intake")
def intake_grp() -> None:
    """Write-only intake: submit without read access; archivists accept or reject."""


@intake_grp.command("key")
@json_opt
@click.pass_obj
def intake_key(obj: Ctx, as_json: bool) -> None:
    """Print the vault's public intake key."""
    key = intake.recipient(obj.vault)
    emit({"recipient": key}, as_json, key)


@intake_grp.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--for", "number", type=NUMBER, required=True, help="Archive number of the dossier it belongs to.")
@click.option("--category", required=True, help=f"One of: {', '.join(CATEGORIES)}.")
@click.option("--source", required=True, help="Where the material came from [R-3.1.3] (sealed).")
@options.material_date
@click.option("--original", is_flag=True, help="This is the original (default: a copy).")
@options.title
@options.force_date
@json_opt
@click.pass_obj
def intake_submit(obj: Ctx, files: tuple[str, ...], number: str, category: str, source: str, date: str, original: bool,
                  title: str | None, force_date: bool, as_json: bool) -> None:
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
        f"{r['id']}  {r['for']:<20} {r['category']:<15} {r['date']}  " + _("{size} bytes").format(size=r["size"])
        + (_("  receipt {receipt} (invitation {invitation})").format(receipt=r["receipt"], invitation=r["invitation"])
           if "invitation" in r else "")
        for r in rs) or _("(none)"))


@intake_grp.command("invite")
@click.argument("number")
@click.option("--expires", default="7d", show_default=True, help="How long the link works: 30m, 12h, 7d (at most 90d).")
@click.option("--uses", default=1, show_default=True, type=int, help="How many submissions the link allows.")
@click.option("--note", help="What you ask for; shown only to whoever holds the link (sealed to its token).")
@click.option("--base-url", envvar="VAULT_PORTAL_URL", help="The portal's public address (env VAULT_PORTAL_URL).")
@json_opt
@click.pass_obj
def intake_invite(obj: Ctx, number: str, expires: str, uses: int, note: str | None, base_url: str | None,
                  as_json: bool) -> None:
    """Invite a customer to submit material for dossier NUMBER online; prints the link once [R-3.1.2]."""
    from vault.office import invitations

    if not base_url:
        raise InputError(N_("no portal address"), hint=N_("pass --base-url https://portal.example.com or set VAULT_PORTAL_URL"))
    if not base_url.startswith(("https://", "http://")):
        raise InputError(N_("bad portal address {base_url!r}"), hint=N_("give the full address, e.g. https://portal.example.com"), base_url=base_url)
    inv = invitations.issue(obj.actor(), number, expires=expires, uses=uses, note=note)
    link = f"{base_url.rstrip('/')}/i/{inv['id']}/{inv.pop('token')}"
    emit(inv | {"link": link}, as_json,
         link + "\n" + _("(invitation {id} for {number}, {uses} use(s), expires {expires}; the link is shown only now)")
         .format(id=inv["id"], number=inv["number"], uses=uses, expires=obj.when(inv["expires_at"])))


@intake_grp.command("invitations")
@json_opt
@click.pass_obj
def intake_invitations(obj: Ctx, as_json: bool) -> None:
    """Invitations to the online platform and how many of their uses are taken."""
    from vault.office import invitations

    obj.actor().require("intake.manage")
    rows = invitations.list_invitations(obj.vault)
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['id']}  {r['number']:<20} {cell(state(r['state']), 8)} " + _("{used}/{uses} used  expires {expires}  by {member}").format(
            used=r["used"], uses=r["uses"], expires=obj.when(r["expires_at"]), member=obj.who(r["by"]))
        for r in rs) or _("(none)"))


@intake_grp.command("accept")
@click.argument("id")
@options.force_date
@json_opt
@click.pass_obj
def intake_accept(obj: Ctx, id: str, force_date: bool, as_json: bool) -> None:
    """Add a submission to its dossier; prints the new document number."""
    number = intake.accept(obj.actor(), id, force_date=force_date)
    emit({"number": number}, as_json, number)


@intake_grp.command("reject")
@click.argument("id")
@options.reason
@json_opt
@click.pass_obj
def intake_reject(obj: Ctx, id: str, reason: str, as_json: bool) -> None:
    """Delete a submission."""
    intake.reject(obj.actor(), id, reason)
    emit({"rejected": id}, as_json, _("rejected {id}").format(id=id))
