"""``vault export disaster-recovery``: the whole vault as age files for a recovery key, approved by two supervisors."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli import Ctx, cli, emit, json_opt, render
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
@click.option("--valid-for", type=click.IntRange(1, recoveryexport.MAX_HOURS), default=recoveryexport.DEFAULT_HOURS,
              show_default=True, help="Hours the approvals stay usable.")
@json_opt
@click.pass_obj
def dr_request(obj: Ctx, recipients: tuple[str, ...], valid_for: int, as_json: bool) -> None:
    """Ask for an export to RECIPIENTs (a supervisor; this is its first approval)."""
    no = recoveryexport.request(obj.actor(), list(recipients), valid_hours=valid_for)
    emit({"number": no}, as_json, f"{no}: asked for; another supervisor approves it with "
                                  f"'vault export disaster-recovery approve {no}'")


@dr_grp.command("approve")
@click.argument("number")
@click.option("--valid-for", type=click.IntRange(1, recoveryexport.MAX_HOURS), default=recoveryexport.DEFAULT_HOURS,
              show_default=True, help="Hours this approval stays usable (never past the request's).")
@json_opt
@click.pass_obj
def dr_approve(obj: Ctx, number: str, valid_for: int, as_json: bool) -> None:
    """Approve export NUMBER: a supervisor other than the one who asked for it."""
    row = recoveryexport.approve(obj.actor(), number, valid_hours=valid_for)
    emit(row, as_json, f"{number}: approved by {row['requested_by']} and {row['approved_by']}, "
                       f"usable until {row['expires_at']}")


@dr_grp.command("run")
@click.argument("number")
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="The directory to create, outside the vault (must not exist).")
@json_opt
@click.pass_obj
def dr_run(obj: Ctx, number: str, output: str, as_json: bool) -> None:
    """Write approved export NUMBER to OUTPUT (one of its two approvers; once)."""
    row = recoveryexport.run(obj.actor(), number, Path(output))
    emit(row, as_json, f"{number}: {row['documents']} documents of {row['dossiers']} dossiers written to "
                       f"{row['output']}; check it with 'vault export disaster-recovery verify {row['output']}'")


@dr_grp.command("verify")
@click.argument("directory", type=click.Path(file_okay=False))
@json_opt
@click.pass_obj
def dr_verify(obj: Ctx, directory: str, as_json: bool) -> None:
    """Check a written export: its signed manifest, the history's record of it, every file's hash."""
    rep = recoveryexport.verify(obj.vault, Path(directory))
    emit(rep, as_json, lambda r: "\n".join(
        [f"{r['export']}: {r['files']} files, {'ok' if r['ok'] else 'PROBLEMS'}"]
        + [f"problem: {p}" for p in r["problems"]]))
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
        f"{r['number']}  {r['state']:<9}  asked by {r['requested_by']}, approved by {r['approved_by'] or '-'}, "
        f"until {r['expires_at']}" for r in rs) or "(no disaster-recovery exports)")
