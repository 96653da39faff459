"""``vault register``: the archive-wide list of dossiers as a table, CSV or JSON, streamed row by row [R-3.2.2]."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any, Iterator

import click

from vault.cli import Ctx, cell, cli, json_opt, state
from vault.cli import options
from vault.i18n import _, N_
from vault.cli.labels import cut
from vault.office import register as reg
from vault.store import csvcells

# Table columns: (title, row key, width); the last column takes what is left. The titles are shown in
# the reader's language; CSV and JSON keep the keys.
_TABLE = ((N_("number"), "number", 22), (N_("customer"), "customer", 28), (N_("class"), "class", 30),
          (N_("type"), "customer_type", 10), (N_("dept"), "dept", 12), (N_("status"), "status", 9),
          (N_("opened"), "opened", 10), (N_("closed"), "closed", 10), (N_("retention"), "retention_end", 10),
          (N_("docs"), "documents", 5), (N_("originals at"), "paper_locations", 0))


@cli.command("register")
@click.option("--class", "klass", metavar="PREFIX", help="Only classes under PREFIX (whole path segments).")
@click.option("--type", "customer_type", type=click.Choice(["enterprise", "individual"]), help="Only this customer type.")
@options.dept_filter
@click.option("--status", type=click.Choice(list(reg.STATUSES)), help="Only open, closed or destroyed dossiers.")
@click.option("--opened-from", metavar="DATE", help="Opened on or after DATE (YYYY-MM-DD).")
@click.option("--opened-to", metavar="DATE", help="Opened on or before DATE.")
@click.option("--closed-from", metavar="DATE", help="Closed on or after DATE.")
@click.option("--closed-to", metavar="DATE", help="Closed on or before DATE.")
@click.option("--retention-from", metavar="DATE", help="Retention ending on or after DATE.")
@click.option("--retention-to", metavar="DATE", help="Retention ending on or before DATE.")
@click.option("--include-destroyed", is_flag=True, help="List destroyed dossiers too (left out by default).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8 with a byte-order mark, cells safe for spreadsheets).")
@click.option("--no-bom", is_flag=True, help="With --csv: leave out the byte-order mark.")
@json_opt
@click.pass_obj
def register(obj: Ctx, klass: str | None, customer_type: str | None, dept: str | None, status: str | None,
             opened_from: str | None, opened_to: str | None, closed_from: str | None, closed_to: str | None,
             retention_from: str | None, retention_to: str | None, include_destroyed: bool, as_csv: bool,
             no_bom: bool, as_json: bool) -> None:
    """The archive-wide register: number, customer, class, dates, counts, paper locations (audited)."""
    if as_csv and as_json:
        raise click.UsageError(_("choose --csv or --json, not both"))
    if no_bom and not as_csv:
        raise click.UsageError(_("--no-bom is for --csv"))
    filters = reg.Filters(klass=obj.ident("class", klass), customer_type=customer_type,
                          dept=obj.ident("department", dept), status=status,
                          opened_from=opened_from, opened_to=opened_to, closed_from=closed_from, closed_to=closed_to,
                          retention_from=retention_from, retention_to=retention_to,
                          include_destroyed=include_destroyed)
    actor = obj.actor()
    terminal = sys.stdout.isatty()
    names = reg.names_shown(actor, to_terminal=terminal)
    rows = reg.rows(actor, filters, to_terminal=terminal)
    first = next(rows, None)  # permission and filters are checked (and the entry written) before any output
    if as_json:
        _json(first, rows, names)
    elif as_csv:
        _csv(first, rows, bom=not no_bom)
    else:
        _table(first, rows, names, obj)


def _each(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if first is not None:
        yield first
        yield from rest


def _json(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]], names: bool) -> None:
    # Streamed: one row in memory at a time, the whole still one JSON document.
    click.echo(f'{{"format": "{reg.REGISTER_FORMAT}", "names": {json.dumps(names)}, "rows": [', nl=False)
    for i, row in enumerate(_each(first, rest)):
        click.echo(("," if i else "") + "\n  " + json.dumps(row, sort_keys=True, ensure_ascii=False), nl=False)
    click.echo("\n]}")


def _csv(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]], *, bom: bool) -> None:
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\r\n")

    def flush() -> None:
        # Bytes, so that the CRLF of RFC 4180 reaches the file unchanged.
        click.echo(buf.getvalue().encode(), nl=False)
        buf.seek(0)
        buf.truncate()

    click.echo((csvcells.BOM if bom else "").encode(), nl=False)
    out.writerow(reg.COLUMNS)
    flush()
    for row in _each(first, rest):
        out.writerow([csvcells.cell(row[c]) for c in reg.COLUMNS])
        flush()


def _table(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]], names: bool, ctx: Ctx) -> None:
    def line(cells: list[str]) -> str:
        return " ".join(c if w == 0 else cell(cut(c, w), w) for c, (_t, _k, w) in zip(cells, _TABLE)).rstrip()

    click.echo(line([_(t) for t, _k, _w in _TABLE]))
    sealed = _("(sealed)")
    n = 0
    for row in _each(first, rest):
        cells = []
        for _t, key, _w in _TABLE:
            value = row[key]
            if key == "customer" and value is None:
                value = sealed if names and row["status"] != "destroyed" else "-"
            elif key == "status":
                value = state(value)
            elif key in ("class", "dept") and value:  # as the policy names them
                value = ctx.label("class" if key == "class" else "department", value)
            cells.append("; ".join(value) if isinstance(value, list) else "-" if value is None else str(value))
        click.echo(line(cells))
        n += 1
    if n == 0:
        click.echo(_("(no dossiers)"))
    elif not names:
        click.echo(_("customer names: only the archive department sees them, on a terminal or with doc.save"))
