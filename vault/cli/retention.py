"""Commands for retention schedules, legal holds and destruction [R-3.3.2]."""

from __future__ import annotations

import hashlib
from typing import Callable

import click

from vault.archive import destructions
from vault.office import destroyexec, destruction, holds, retention
from vault.archive import schedule
from vault.cli import NUMBER, Ctx, cell, cli, emit, field, json_opt, local_time, render, state
from vault.cli import options
from vault.i18n import _
from vault.i18n import render as tr
from vault.cli.access import text_lines
from vault.cli.core import doc_grp, dossier_grp
from vault.store.records import canonical


@doc_grp.command("event")
@click.argument("docno", type=NUMBER)
@click.argument("event")
@click.option("--date", required=True, help="When it happened, YYYY-MM-DD.")
@options.force_date
@json_opt
@click.pass_obj
def doc_event(obj: Ctx, docno: str, event: str, date: str, force_date: bool, as_json: bool) -> None:
    """Record a retention trigger event (e.g. contract-fulfilled) for a document."""
    retention.record_event(obj.actor(), docno, event, date, force_date=force_date)
    emit({"document": docno, "event": event, "date": date}, as_json, _("{docno}: {event} on {date}").format(docno=docno, event=event, date=date))


@dossier_grp.command("close")
@click.argument("number", type=NUMBER)
@click.option("--date", required=True, help="When the relationship ended, YYYY-MM-DD.")
@options.force_date
@json_opt
@click.pass_obj
def dossier_close(obj: Ctx, number: str, date: str, force_date: bool, as_json: bool) -> None:
    """Close a dossier; schedules counting from 'dossier-closed' start; it takes no new documents."""
    retention.close_dossier(obj.actor(), number, date, force_date=force_date)
    emit({"closed": number, "date": date}, as_json, _("closed {number}").format(number=number))


@dossier_grp.command("reopen")
@click.argument("number", type=NUMBER)
@json_opt
@click.pass_obj
def dossier_reopen(obj: Ctx, number: str, as_json: bool) -> None:
    """Reopen a closed dossier: it takes documents again; its closing date is cancelled (kept in the manifest)."""
    retention.reopen_dossier(obj.actor(), number)
    emit({"reopened": number}, as_json, _("reopened {number}").format(number=number))


@cli.group("retention")
def retention_grp() -> None:
    """Retention schedules."""


@retention_grp.command("report")
@click.option("--due", is_flag=True, help="Only what may be destroyed now.")
@click.option("--upcoming", type=click.IntRange(0, 36500), help="Only what becomes due within DAYS.")
@json_opt
@click.pass_obj
def retention_report(obj: Ctx, due: bool, upcoming: int | None, as_json: bool) -> None:
    """What is due, when, and why (which rule)."""
    obj.actor().require("retention.read")
    rows = schedule.report(obj.vault, due=due, upcoming=upcoming)
    waiting = _("waiting")
    emit(rows, as_json, lambda rs: "\n".join(
        f"{r['number']:<26} {r['category']:<15} {r.get('rule') or '-':<10} {r.get('event') or '-':<20} "
        f"{cell(r.get('until') or waiting, 10)} {state(r['status'])}" for r in rs) or _("(nothing)"))


@cli.group("hold")
def hold_grp() -> None:
    """Legal holds: block destruction and backup pruning."""


def _one_with_reason(name: str, kind: click.ParamType | None = None, *,
                     help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The parameters of a command on one request or dossier that takes a reason (sealed), and ``--json``."""
    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        return click.argument(name, type=kind)(click.option("--reason", required=True, help=help)(
            json_opt(click.pass_obj(fn))))
    return wrap


@hold_grp.command("add")
@_one_with_reason("number", NUMBER, help="Why (sealed).")
def hold_add(obj: Ctx, number: str, reason: str, as_json: bool) -> None:
    """Place a legal hold on a dossier."""
    holds.add(obj.actor(), number, reason)
    emit({"held": number}, as_json, _("{number} is on hold").format(number=number))


@hold_grp.command("remove")
@_one_with_reason("number", NUMBER, help="Why the hold ends (sealed).")
def hold_remove(obj: Ctx, number: str, reason: str, as_json: bool) -> None:
    """Lift a legal hold (a supervisor, with a reason)."""
    holds.remove(obj.actor(), number, reason)
    emit({"lifted": number}, as_json, _("hold on {number} lifted").format(number=number))


@hold_grp.command("list")
@click.option("--lifted", is_flag=True, help="Holds lifted in the past, by whom and why.")
@json_opt
@click.pass_obj
def hold_list(obj: Ctx, lifted: bool, as_json: bool) -> None:
    """List legal holds (with their reasons, for the archive department)."""
    actor = obj.maybe_actor()
    if lifted:
        rows = holds.lifts(obj.vault, actor)
        emit(rows, as_json, lambda rs: "\n".join(
            f"{r['number']:<20} " + _("held {held_at} by {held_by}, lifted {at} by {by}").format(
                held_at=obj.when(r["hold_at"]), held_by=obj.who(r["hold_by"]), at=obj.when(r["at"]),
                by=obj.who(r["by"]))
            + text_lines(r, ("reason",)) for r in rs) or _("(no lifted holds)"))
        return
    rows = holds.list_holds(obj.vault, actor)
    emit(rows, as_json, lambda rs: "\n".join(f"{r['number']:<20} " + _("since {at} by {by}").format(at=r["at"], by=r["by"])
                                              + text_lines(r, ("reason",)) for r in rs) or _("(no holds)"))


@cli.group("destroy")
def destroy_grp() -> None:
    """Destruction by procedure: request, approve, execute, certificate."""


@destroy_grp.command("request")
@click.argument("target", type=NUMBER)
@options.reason
@json_opt
@click.pass_obj
def destroy_request(obj: Ctx, target: str, reason: str, as_json: bool) -> None:
    """Ask for a dossier (NO) or a document (DOCNO) to be destroyed."""
    no = destruction.request(obj.actor(), target, reason)
    emit({"number": no}, as_json, no)


@destroy_grp.command("approve")
@click.argument("id")
@click.option("--override-retention", metavar="REASON", help="Approve before retention ends, saying why (sealed).")
@json_opt
@click.pass_obj
def destroy_approve(obj: Ctx, id: str, override_retention: str | None, as_json: bool) -> None:
    """Approve a destruction (a supervisor other than the requester); warns when execution would be refused."""
    warnings = destruction.approve(obj.actor(), id, override_retention=override_retention)
    for w in warnings:
        click.echo(_("vault: warning: {warning}").format(warning=tr(w)), err=True)
    if warnings:
        click.echo(_("vault: hint: {hint}").format(hint=_(
            "'vault destroy cancel {id} --reason …' or 'vault destroy deny {id} --reason …' withdraws it").format(id=id)),
            err=True)
    emit({"number": id, "warnings": warnings}, as_json, _("approved {id}").format(id=id))


def _end(obj: Ctx, id: str, reason: str, as_json: bool, outcome: str, message: str) -> None:
    destruction.close(obj.actor(), id, outcome, reason)
    emit({outcome: id}, as_json, message.format(id=id))


@destroy_grp.command("cancel")
@_one_with_reason("id", help="Why (sealed).")
def destroy_cancel(obj: Ctx, id: str, reason: str, as_json: bool) -> None:
    """Withdraw a destruction that has not started (its requester or a supervisor)."""
    _end(obj, id, reason, as_json, "cancelled", _("cancelled {id}"))


@destroy_grp.command("deny")
@_one_with_reason("id", help="Why (sealed).")
def destroy_deny(obj: Ctx, id: str, reason: str, as_json: bool) -> None:
    """Refuse a destruction that has not started (a supervisor other than the requester)."""
    _end(obj, id, reason, as_json, "denied", _("denied {id}"))


@destroy_grp.command("show")
@click.argument("id")
@json_opt
@click.pass_obj
def destroy_show(obj: Ctx, id: str, as_json: bool) -> None:
    """A destruction's state and history; its reasons for the members they were sealed to."""
    row = destruction.show(obj.vault, id, obj.maybe_actor())
    keys = ("reason", "override_reason", "closing_reason")
    emit(row, as_json, lambda r: "\n".join(
        f"{field(k)}: {', '.join(v) if isinstance(v, list) else state(v) if k == 'state' else local_time(v) if isinstance(v, str) else v}"
        for k, v in obj.humane(r).items() if k not in (*keys, "sealed_texts")) + text_lines(r, keys, indent=""))


@destroy_grp.command("execute")
@click.argument("id")
@json_opt
@click.pass_obj
def destroy_execute(obj: Ctx, id: str, as_json: bool) -> None:
    """Crypto-shred what an approved request names, and sign the certificate."""
    cert = destroyexec.execute(obj.actor(), id)
    emit(cert, as_json, lambda c: _("destroyed {count} document(s) of {number}; no backup can decrypt them after {after}\n"
                                    "certificate: vault destroy certificate {id}").format(
        count=len(c["destroyed"]), number=c["dossier_number"], after=obj.when(c["undecryptable_from_backups_after"]), id=id))


@destroy_grp.command("list")
@json_opt
@click.pass_obj
def destroy_list(obj: Ctx, as_json: bool) -> None:
    """List destruction requests and their state."""
    rows = destructions.list_destructions(obj.vault)
    emit(rows, as_json, lambda rs: "\n".join(f"{r['number']}  {r['target']:<26} {state(r['state'])}" for r in rs) or _("(none)"))


@destroy_grp.command("certificate")
@click.argument("id")
@json_opt
@click.pass_obj
def destroy_certificate(obj: Ctx, id: str, as_json: bool) -> None:
    """Print a destruction certificate."""
    cert = destructions.certificate(obj.vault, id)
    emit(cert, as_json, lambda c: render({k: v for k, v in c.items() if k != "signature"}))


@destroy_grp.command("verify")
@click.argument("id")
@json_opt
@click.pass_obj
def destroy_verify(obj: Ctx, id: str, as_json: bool) -> None:
    """Check a certificate's signature (needs no key)."""
    cert = destructions.certificate(obj.vault, id)
    digest = hashlib.sha256(canonical(cert)).hexdigest()
    emit({"certificate": id, "valid": True, "signed_by": cert["signature"]["by"], "sha256": digest}, as_json,
         _("certificate {id} is valid, signed by {by} (digest {digest})").format(
             id=id, by=obj.who(cert["signature"]["by"]), digest=digest[:16]))
