"""Finding customers: ``vault find`` with filters and paging, and ``vault index`` to rebuild the sealed index."""

from __future__ import annotations

import sys

import click


from vault.archive import manifests
from vault.office import find as finder
from vault.cli import NUMBER, Ctx, cell, cli, current, emit, field, json_opt, pad, state
from vault.cli import options
from vault.i18n import _


def _line(r: dict) -> str:
    return (f"{r['rank']:>5}  {r['number']:<20} {pad(current().label('class', r['class']), 36)} {r['customer_type']:<11} {cell(state(r['status']), 7)} "
            f"{field(r['field'])}")


@cli.command()
@click.argument("text", required=False)
@click.option("--name", help="Look in names and other names only.")
@click.option("--contact", help="Look in contacts only: a phone's last digits, an e-mail or its domain.")
@click.option("--number", type=NUMBER, help="An exact archive number (needs no index key).")
@click.option("--class", "klass", help="Class path prefix, e.g. enterprise/network-services.")
@click.option("--type", "customer_type", type=click.Choice(manifests.CUSTOMER_TYPES), help="Customer type.")
@click.option("--business", help="Business type.")
@click.option("--dept", help="Department in charge.")
@click.option("--created-from", help="Created on or after this date (YYYY-MM-DD).")
@click.option("--created-to", help="Created on or before this date (YYYY-MM-DD).")
@click.option("--open", "status", flag_value="open", help="Open dossiers only.")
@click.option("--closed", "status", flag_value="closed", help="Closed dossiers only.")
@click.option("--due", is_flag=True, help="Due for review only.")
@click.option("--incomplete", is_flag=True, help="Incomplete dossiers only.")
@options.paging(finder.DEFAULT_LIMIT)
@json_opt
@click.pass_obj
def find(obj: Ctx, text: str | None, name: str | None, contact: str | None, number: str | None, klass: str | None,
         customer_type: str | None, business: str | None, dept: str | None, created_from: str | None,
         created_to: str | None, status: str | None, due: bool, incomplete: bool, limit: int, offset: int,
         as_json: bool) -> None:
    """Find dossiers by name (any script, any order, parts of words), contact, number or filters.

    Best matches first; exit code 1 when nothing matches."""
    if sum(x is not None for x in (text, name, contact, number)) > 1:
        raise click.UsageError(_("give one of TEXT, --name, --contact, --number"))
    filters = finder.Filters(klass=obj.ident("class", klass), customer_type=customer_type,
                             business=obj.ident("business type", business), dept=obj.ident("department", dept),
                             created_from=created_from and manifests.parse_date(created_from),
                             created_to=created_to and manifests.parse_date(created_to),
                             status=status, due=due, incomplete=incomplete)
    res = finder.find(obj.actor(), text, name=name, contact=contact, number=number, filters=filters,
                      limit=limit, offset=offset)
    rows = [dict(r, total=res["total"]) for r in res["rows"]]

    def text_out(rs: list) -> str:
        if not rs:
            return _("(nothing found)")
        more = res["total"] - (offset + len(rs))
        tail = "\n" + _("{first}-{last} of {total}").format(first=offset + 1, last=offset + len(rs), total=res["total"]) + (
            _("; next page: --offset {offset}").format(offset=offset + limit) if more > 0 else "")
        return "\n".join(_line(r) for r in rs) + tail

    emit(rows, as_json, text_out)
    if res["stale"]:
        click.echo(_("vault: note: {count} index entries did not match their dossier's signed manifest "
                     "and were not shown").format(count=res["stale"]), err=True)
    if not rows:
        sys.exit(1)


@cli.group("index")
def index_grp() -> None:
    """The sealed search index."""


@index_grp.command("rebuild")
@json_opt
@click.pass_obj
def index_rebuild(obj: Ctx, as_json: bool) -> None:
    """Rebuild the search index from every dossier's sealed profile (archive department)."""
    n = finder.rebuild(obj.actor())
    emit({"dossiers": n}, as_json, _("search index rebuilt: {count} dossiers").format(count=n))
