"""Commands for paper originals: locations, loans against approved consultations, returns, inventories [R-3.2.3, R-3.4.2]."""

from __future__ import annotations

from pathlib import Path

import click

from vault.archive import members
from vault.cli import Ctx, cli, emit, json_opt, pad
from vault.errors import InputError
from vault.i18n import _, N_
from vault.office import paper


@cli.group("paper")
def paper_grp() -> None:
    """Paper originals: where they are, who has one out, what an inventory found."""


@paper_grp.command("locate")
@click.argument("docno")
@click.option("--location", required=True, help="Where the original is kept (room, shelf, box).")
@json_opt
@click.pass_obj
def paper_locate(obj: Ctx, docno: str, location: str, as_json: bool) -> None:
    """Record where a paper original is kept."""
    paper.locate(obj.actor(), docno, location)
    emit({"document": docno, "location": location}, as_json, _("{docno}: kept at {location}").format(docno=docno, location=location))


@paper_grp.command("lend")
@click.argument("docno")
@click.option("--to", "to", required=True, help="The member who takes it.")
@click.option("--request", required=True, help="Their approved consultation request (R-…).")
@click.option("--due", required=True, help="When it is due back, YYYY-MM-DD (at most 90 days).")
@json_opt
@click.pass_obj
def paper_lend(obj: Ctx, docno: str, to: str, request: str, due: str, as_json: bool) -> None:
    """Lend a paper original out of the archive room (needs the borrower's approved consultation)."""
    no = paper.lend(obj.actor(), docno, to=members.resolve_member(obj.vault, to), request=request, due=due)
    emit({"number": no}, as_json, no)


@paper_grp.command("return")
@click.argument("loan")
@click.option("--location", help="Where it is put back (default: where it came from).")
@json_opt
@click.pass_obj
def paper_return(obj: Ctx, loan: str, location: str | None, as_json: bool) -> None:
    """Record that a lent original is back."""
    row = paper.give_back(obj.actor(), loan, location=location)
    emit(row, as_json, _("{document} back at {location}").format(document=row["document"], location=row["location"]))


@paper_grp.command("out")
@click.option("--overdue", is_flag=True, help="Only loans past their due date.")
@json_opt
@click.pass_obj
def paper_out(obj: Ctx, overdue: bool, as_json: bool) -> None:
    """Originals out of the archive room: who has them, since when, due when."""
    obj.actor().require("dossier.list")
    rows = [r for r in paper.out(obj.vault) if r["overdue"] or not overdue]
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['number']}  {r['document']:<26} {pad(obj.who(r['borrower']), 14)} "
        + _("since {date} due {due}").format(date=obj.when(r["at"])[:10], due=r["due"])
        + (_("  OVERDUE") if r["overdue"] else "") for r in rs) or _("(nothing out)"))


def _pairs(found: tuple[str, ...], from_file: str | None, obj_root: Path | None = None) -> list[tuple[str, str]]:
    lines = list(found)
    if from_file and obj_root is not None and Path(from_file).resolve().is_relative_to(obj_root.resolve()):
        raise InputError(N_("the inventory list is not read from inside the vault"), hint=N_("keep it outside the vault directory"))
    if from_file:
        lines += [ln for ln in Path(from_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
    out = []
    for ln in lines:
        docno, sep, where = ln.partition("=")
        if not sep:
            raise InputError(N_("bad inventory line {ln!r}"), hint=N_("write DOCNO=LOCATION"), ln=ln)
        out.append((docno.strip(), where.strip()))
    return out


@paper_grp.command("inventory")
@click.option("--found", multiple=True, metavar="DOCNO=LOCATION", help="An original found, and where.")
@click.option("--from-file", type=click.Path(dir_okay=False, exists=True), help="One DOCNO=LOCATION per line.")
@json_opt
@click.pass_obj
def paper_inventory(obj: Ctx, found: tuple[str, ...], from_file: str | None, as_json: bool) -> None:
    """Record an inventory of the originals; report the missing and the misplaced (signed)."""
    rep = paper.inventory(obj.actor(), _pairs(found, from_file, obj.vault.root))
    emit(rep, as_json, lambda r: "\n".join([
        _("inventory {number}: {found} found, {misplaced} misplaced, {missing} missing, {out} out on loan").format(
            number=r["number"], found=len(r["found"]), misplaced=len(r["misplaced"]), missing=len(r["missing"]),
            out=len(r["out"])),
        *(_("missing    {document}").format(document=n) for n in r["missing"]),
        *(_("misplaced  {document} found at {location}, recorded at {recorded}").format(
            document=x["document"], location=x["location"], recorded=x["recorded"] or _("(none)"))
          for x in r["misplaced"]),
        *(_("unknown    {document} (not a live original)").format(document=n) for n in r["unknown"])]))
