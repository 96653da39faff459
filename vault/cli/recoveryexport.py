"""``vault export disaster-recovery``: the whole vault as age files for a recovery key, approved by two supervisors."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli import Ctx, bars, cell, cli, emit, json_opt, render, report_lines, state
from vault.cli import options
from vault.i18n import _
from vault.office import recoveryexport


@cli.group("export")
def export_grp() -> None:
    """Whole-vault exports: disaster recovery to age files, approved by two supervisors."""


@export_grp.group("disaster-recovery")
def dr_grp() -> None:
    """Every live document as an age file for an offline recovery key (two supervisors approve)."""


@dr_grp.command("request")
@click.option("--recipient", "recipients", multiple=True, required=True,
              help="age recipient (age1… or age1pq1…) of the recovery key (repeatable).")
@options.valid_for(recoveryexport.MAX_HOURS, recoveryexport.DEFAULT_HOURS,
                 help="Hours the approvals stay usable.")
@json_opt
@click.pass_obj
def dr_request(obj: Ctx, recipients: tuple[str, ...], valid_for: int, as_json: bool) -> None:
    """Ask for an export to RECIPIENTs (a supervisor; this is its first approval)."""
    no = recoveryexport.request(obj.actor(), list(recipients), valid_hours=valid_for)
    emit({"number": no}, as_json, _("{no}: asked for; another supervisor approves it with "
                                    "'vault export disaster-recovery approve {no}'").format(no=no))


@dr_grp.command("approve")
@click.argument("number")
@options.valid_for(recoveryexport.MAX_HOURS, recoveryexport.DEFAULT_HOURS,
                 help="Hours this approval stays usable (never past the request's).")
@json_opt
@click.pass_obj
def dr_approve(obj: Ctx, number: str, valid_for: int, as_json: bool) -> None:
    """Approve export NUMBER: a supervisor other than the one who asked for it."""
    row = recoveryexport.approve(obj.actor(), number, valid_hours=valid_for)
    emit(row, as_json, _("{number}: approved by {first} and {second}, usable until {time}").format(
        number=number, first=obj.who(row["requested_by"]), second=obj.who(row["approved_by"]),
        time=obj.when(row["expires_at"])))


@dr_grp.command("run")
@click.argument("number")
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="The directory to create, outside the vault (must not exist).")
@json_opt
@click.pass_obj
def dr_run(obj: Ctx, number: str, output: str, as_json: bool) -> None:
    """Write approved export NUMBER to OUTPUT (one of its two approvers; once)."""
    with bars(_("exporting")) as bar:
        row = recoveryexport.run(obj.actor(), number, Path(output), progress=bar)
    emit(row, as_json, _("{number}: {documents} documents of {dossiers} dossiers written to {output}; check it with "
                         "'vault export disaster-recovery verify {output}'").format(
        number=number, documents=row["documents"], dossiers=row["dossiers"], output=row["output"]))


@dr_grp.command("verify")
@click.argument("directory", type=click.Path(file_okay=False))
@json_opt
@click.pass_obj
def dr_verify(obj: Ctx, directory: str, as_json: bool) -> None:
    """Check a written export: its signed manifest, the history's record of it, every file's hash."""
    rep = recoveryexport.verify(obj.vault, Path(directory))
    emit(rep, as_json, lambda r: "\n".join(
        [(_("{export}: {files} files, ok") if r["ok"] else _("{export}: {files} files, PROBLEMS")).format(
            export=r["export"], files=r["files"])]
        + report_lines(r["problems"])))
    if not rep["ok"]:
        raise SystemExit(1)


@dr_grp.command("show")
@click.argument("number")
@json_opt
@click.pass_obj
def dr_show(obj: Ctx, number: str, as_json: bool) -> None:
    """Show an export: who asked, who approved, recipients, expiry, state."""
    row = recoveryexport.show(obj.vault, number)
    emit(row, as_json, lambda r: render(r))


@dr_grp.command("list")
@json_opt
@click.pass_obj
def dr_list(obj: Ctx, as_json: bool) -> None:
    """List disaster-recovery exports and their state."""
    rows = recoveryexport.list_exports(obj.vault)
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['number']}  {cell(state(r['state']), 9)}  " + _("asked by {first}, approved by {second}, until {time}").format(
            first=obj.who(r["requested_by"]), second=obj.who(r["approved_by"]) or "-",
            time=obj.when(r["expires_at"]))
        for r in rs) or _("(no disaster-recovery exports)"))
