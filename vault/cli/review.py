"""Commands for periodic review, completeness reports and review notifications [R-3.5.1, R-1.3.2]."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from vault.archive import completeness
from vault.office import review
from vault.archive import reviews
from vault.cli import NUMBER, Ctx, cli, current, emit, json_opt, pad, state
from vault.cli import options
from vault.cli.access import text_lines
from vault.cli.core import dossier_grp
from vault.errors import InputError, UsageError
from vault.store import tomlread
from vault.i18n import _, N_

#: Where ``--smtp-user``'s password is read from; never from the command line (it would show in ps).
SMTP_PASSWORD_ENV = "VAULT_SMTP_PASSWORD"


@cli.group("review")
def review_grp() -> None:
    """Periodic review: what is stale or incomplete, recording reviews, telling departments."""


def _gaps(r: dict) -> str:
    parts = []
    if r["missing_categories"]:
        parts.append(_("categories {names}").format(names=", ".join(r["missing_categories"])))
    if r["missing_fields"]:
        parts.append(_("fields {names}").format(names=", ".join(r["missing_fields"])))
    if not r["fields_checked"]:
        parts.append(_("fields not checked: no read access"))
    return _("missing {what}").format(what="; ".join(parts)) if r["missing_categories"] or r["missing_fields"] else parts[-1]


def _due_line(r: dict) -> str:
    why = []
    if r["stale"]:
        why.append(_("stale since {date}").format(date=r["stale_since"]))
    if r["needs_update"]:
        why.append(_("needs update since {date}").format(date=r["needs_update_since"]))
    if r["incomplete"]:
        why.append(_("incomplete since {date}: {gaps}").format(date=r["incomplete_since"], gaps=_gaps(r)))
    elif not r["fields_checked"]:
        why.append(_("fields not checked: no read access"))
    c = current()
    return (f"{r['number']:<20} {pad(c.label('department', r['dept']), 12)} {pad(c.label('class', r['class']), 36)} "
            f"{'; '.join(why)}")


@review_grp.command("due")
@options.dept_filter
@json_opt
@click.pass_obj
def review_due(obj: Ctx, dept: str | None, as_json: bool) -> None:
    """List open dossiers that are due for review, waiting for an update, or incomplete."""
    rows = reviews.list_due(obj.actor(), dept=obj.ident("department", dept))
    emit(rows, as_json, lambda rs: "\n".join(_due_line(r) + text_lines(r, ("last_note",)) for r in rs)
         or _("(nothing due)"))


@review_grp.command("done")
@click.argument("number", type=NUMBER)
@click.option("--verified", is_flag=True, help="The dossier is correct and current.")
@click.option("--needs-update", is_flag=True, help="The department must update it (with --note).")
@click.option("--note", help="What needs updating (sealed to the archive department).")
@json_opt
@click.pass_obj
def review_done(obj: Ctx, number: str, verified: bool, needs_update: bool, note: str | None, as_json: bool) -> None:
    """Record a review of dossier NUMBER (signed); restarts its review interval."""
    if verified == needs_update:
        raise UsageError(N_("say how the review went: --verified or --needs-update, one of them"),
                         hint=N_("pass --verified, or --needs-update --note TEXT"))
    rec = review.done(obj.actor(), number, "verified" if verified else "needs-update", note)
    emit(rec, as_json, _("recorded review {seq} of {number}: {outcome}").format(seq=rec["seq"], number=rec["number"],
                                                                           outcome=state(rec["outcome"])))


def _addresses(to: tuple[str, ...], addresses_file: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if addresses_file:
        try:
            data = tomlread.loads(Path(addresses_file).read_text(encoding="utf-8"))
        except (OSError, tomlread.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InputError(N_("cannot read addresses file {addresses_file}: {e}"),
                             hint=N_('write one line per department: sales = "sales@example.com"'), addresses_file=addresses_file, e=e) from None
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            raise InputError(N_("{addresses_file}: {bad} is not an address"),
                             hint=N_('write one line per department: sales = "sales@example.com"'), addresses_file=addresses_file, bad=bad[0])
        out.update(data)
    for item in to:
        dept, sep, addr = item.partition("=")
        out.update({dept.strip(): addr.strip()} if sep else {"*": item.strip()})
    return out


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(N_("--option {pair!r} is not KEY=VALUE"), pair=pair)
        out[key.strip()] = value
    return out


@review_grp.command("notify")
@click.option("--notifier", default="report", show_default=True, help="report, smtp, or a plugin's notifier.")
@click.option("--dept", help="Only this department.")
@click.option("--report-dir", type=click.Path(file_okay=False), help="report: directory for one file per department.")
@click.option("--smtp-host", default="localhost", show_default=True, help="smtp: mail server.")
@click.option("--smtp-port", type=int, help="smtp: port (default 25, or 587 with --starttls).")
@click.option("--starttls/--no-starttls", default=False, help="smtp: upgrade the connection with STARTTLS.")
@click.option("--smtp-user", help=f"smtp: log in as this user; the password is read from {SMTP_PASSWORD_ENV}.")
@click.option("--from", "sender", help="smtp: sender address.")
@click.option("--to", multiple=True, help="smtp: DEPT=ADDRESS (repeatable), or ADDRESS for every department.")
@click.option("--addresses", "addresses_file", type=click.Path(dir_okay=False),
              help='smtp: TOML file of department addresses (sales = "sales@example.com"; "*" for the rest).')
@click.option("--option", "extra", multiple=True, help="KEY=VALUE for a plugin's notifier (repeatable).")
@json_opt
@click.pass_obj
def review_notify(obj: Ctx, notifier: str, dept: str | None, report_dir: str | None, smtp_host: str,
                  smtp_port: int | None, starttls: bool, smtp_user: str | None, sender: str | None,
                  to: tuple[str, ...], addresses_file: str | None, extra: tuple[str, ...], as_json: bool) -> None:
    """Send each department its list of stale and incomplete dossiers (numbers and names of gaps only)."""
    options = _options(extra)
    if notifier == "report":
        if not report_dir:
            raise UsageError(N_("--notifier report needs --report-dir DIR"))
        options["dir"] = report_dir
    elif notifier == "smtp":
        if not sender:
            raise UsageError(N_("--notifier smtp needs --from ADDRESS"))
        options.update({"host": smtp_host, "port": smtp_port, "starttls": starttls, "from": sender,
                        # A department may be named as the office writes it (销售部 = "…").
                        "to": {k if k == "*" else obj.ident("department", k): a
                               for k, a in _addresses(to, addresses_file).items()}})
        if smtp_user:
            options.update(user=smtp_user, password=os.environ.get(SMTP_PASSWORD_ENV, ""))
    from vault.office import notify  # here: it loads the plugin host, which other dossier commands do not need

    sent = notify.send(obj.actor(), notifier, options, dept=obj.ident("department", dept))
    emit(sent, as_json, lambda s: "\n".join(_("notified {dept}: {count} dossiers").format(dept=obj.label("department", x["dept"]), count=len(x["numbers"]))
                                            for x in s) or _("(nothing to notify)"))


def _completeness_line(r: dict) -> str:
    state = _("complete") if r["complete"] else _("incomplete since {date}: {gaps}").format(
        date=r["incomplete_since"], gaps=_gaps(r))
    if r["complete"] and not r["fields_checked"]:
        state = _("categories complete (fields not checked: no read access)")
    return f"{r['number']:<20} {pad(current().label('department', r['dept']), 12)} {r['customer_type']:<11} {state}"


@dossier_grp.command("completeness")
@click.argument("number", required=False)
@click.option("--dept", help="Only this department's open dossiers.")
@json_opt
@click.pass_obj
def dossier_completeness(obj: Ctx, number: str | None, dept: str | None, as_json: bool) -> None:
    """What a dossier (or every open one) lacks per the policy's completeness rules, and since when."""
    if number and dept:
        raise UsageError(N_("give a dossier NUMBER or --dept, not both"))
    rows = completeness.report(obj.actor(), number=number, dept=obj.ident("department", dept))
    emit(rows, as_json, lambda rs: "\n".join(_completeness_line(r) for r in rs) or _("(no dossiers)"))
