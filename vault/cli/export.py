"""Export commands: ``doc export`` (one document's plaintext) and ``dossier export`` (through an export format)."""

from __future__ import annotations

import click

from vault.cli import NUMBER, Ctx, bars, emit, json_opt
from vault.i18n import _
from vault.cli.core import doc_grp, dossier_grp


@doc_grp.command("export")
@click.argument("docno", type=NUMBER)
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="The file to write (must not exist).")
@json_opt
@click.pass_obj
def doc_export(obj: Ctx, docno: str, output: str, as_json: bool) -> None:
    """Write a document's plaintext to FILE; uses up your approved copy request for it [R-3.4.2]."""
    from vault.office import export  # here, not above: `doc view` loads this module and needs no plugins

    with bars(_("exporting")) as bar:
        done = export.export_document(obj.actor(), docno, output, progress=bar)
    emit(done, as_json, _("exported {docno} to {output} (copy request {request})").format(
        docno=docno, output=done["output"], request=done["request"]))


@dossier_grp.command("export")
@click.argument("number", type=NUMBER)
@click.option("--format", "fmt", required=True, help="Export format: json, csv, bagit, age, or a plugin's.")
@click.option("--output", required=True, type=click.Path(), help="File or directory to create (must not exist).")
@click.option("--recipient", "recipients", multiple=True, help="age recipient age1… for --format age (repeatable).")
@click.option("--no-sealed", is_flag=True, help="Cleartext facts only, even if you may read (no copy approval needed).")
@click.option("--no-bom", is_flag=True, help="CSV without the UTF-8 byte-order mark (spreadsheets need it; scripts may not).")
@json_opt
@click.pass_obj
def dossier_export(obj: Ctx, number: str, fmt: str, output: str, recipients: tuple[str, ...], no_sealed: bool,
                   no_bom: bool, as_json: bool) -> None:
    """Export a dossier; content or sealed fields need your approved copy request for it [R-3.4.2]."""
    from vault.office import export

    options: dict = {"recipients": list(recipients)} if recipients else {}
    if no_bom:
        if fmt != "csv":
            raise click.UsageError(_("--no-bom is for --format csv"))
        options["bom"] = False
    with bars(_("exporting")) as bar:
        done = export.export_dossier(obj.actor(), number, fmt, output, options=options, sealed=not no_sealed,
                                     progress=bar)
    text = (_("exported {number} as {fmt} to {output} ({count} documents, with sealed fields)") if done["sealed"]
            else _("exported {number} as {fmt} to {output} ({count} documents, cleartext facts only)"))
    text = text.format(number=done["number"], fmt=fmt, output=done["output"], count=done["documents"])
    if done["left_out"]:
        text += "\n" + _("left out, added after copy request {request} was approved (it covers the dossier as it "
                         "was then; a new copy request covers them): {numbers}").format(
            request=done["request"], numbers=", ".join(done["left_out"]))
    emit(done, as_json, text)
