"""Commands for consultation and copy requests, grants, and the audit trail [R-3.4.1, R-3.4.2]."""

from __future__ import annotations

import click

from vault.cli.localised import LocalisedGroup

from vault.office import access, find

from vault.archive import grants
from vault.archive import audit
from vault import clock
from vault.archive import members
from vault.cli import NUMBER, Ctx, cli, current, emit, field, json_opt, one_line, pad, state
from vault.cli import options
from vault.archive.manifests import parse_date
from vault.errors import IntegrityError, UsageError
from vault.i18n import _, N_, render


@cli.group("request")
def request_grp() -> None:
    """Consultation and copy requests."""


def _req_line(r: dict) -> str:
    target = r["target"] or _("(customer name)")
    return f"{r['number']}  {r['kind']:<6} {target:<22} {pad(current().who(r['requester']), 14)} {state(r['state'])}"


def text_lines(r: dict, keys: tuple[str, ...], indent: str = "  ") -> str:
    """Sealed free texts as lines: the text where this member may read it, else "(sealed)"."""
    sealed = _("(sealed)")
    return "".join(f"\n{indent}{field(k)}: {sealed if r[k] is None else r[k]}" for k in keys if k in r)



def _req_text(r: dict) -> str:
    return _req_line(r) + text_lines(r, ("purpose", "reason"))


@request_grp.command("access")
@click.argument("number", type=NUMBER, required=False)
@click.option("--customer", help="The customer's name, when you do not know the archive number (sealed).")
@click.option("--purpose", required=True, help="Why you need to consult it (sealed).")
@json_opt
@click.pass_obj
def request_access(obj: Ctx, number: str | None, customer: str | None, purpose: str, as_json: bool) -> None:
    """Ask to consult a dossier, by archive number or by customer name; your department head approves."""
    if (number is None) == (customer is None):
        raise click.UsageError(_("give the archive number or --customer NAME"))
    no = access.create_request(obj.actor(), "access", number, purpose, customer=customer)
    emit({"number": no}, as_json, no)


@request_grp.command("copy")
@click.argument("docno", type=NUMBER)
@click.option("--purpose", required=True, help="Why you need a copy (sealed).")
@json_opt
@click.pass_obj
def request_copy(obj: Ctx, docno: str, purpose: str, as_json: bool) -> None:
    """Ask for one copy (export) of a document or dossier; the archive head approves."""
    no = access.create_request(obj.actor(), "copy", docno, purpose)
    emit({"number": no}, as_json, no)


@request_grp.command("list")
@click.option("--mine", is_flag=True, help="Only your requests.")
@click.option("--pending", is_flag=True, help="Only requests waiting for a decision.")
@json_opt
@click.pass_obj
def request_list(obj: Ctx, mine: bool, pending: bool, as_json: bool) -> None:
    """List requests."""
    rows = grants.list_requests(obj.vault)
    me = obj.actor() if mine else None
    actor = me if me is not None else obj.maybe_actor()
    if me is not None:
        rows = [r for r in rows if r["requester"] == me.name]
    if pending:
        rows = [r for r in rows if r["state"] == "pending"]
    if mine or pending:  # where people decide or follow their own: the texts they may read
        for r in rows:
            r.update(grants.texts(obj.vault, r["number"], actor))
    emit(rows, as_json, lambda rs: "\n".join(_req_text(r) for r in rs) or _("(no requests)"))


@request_grp.command("show")
@click.argument("req")
@click.option("--customer", "reveal", is_flag=True,
              help="Also show the customer name of a request by name (needs your identity; the archive and the department heads).")
@json_opt
@click.pass_obj
def request_show(obj: Ctx, req: str, as_json: bool, reveal: bool) -> None:
    """Show a request and its state."""
    st = grants.status(obj.vault, req)
    st.update(grants.texts(obj.vault, req, obj.maybe_actor()))
    if reveal:
        st["customer"] = grants.customer_name(obj.actor(), req)
    emit(st, as_json, lambda r: _req_text(r) + (f"\n{field('customer')}: {r['customer']}" if "customer" in r else ""))


@request_grp.command("approve")
@click.argument("req")
@json_opt
@click.pass_obj
def request_approve(obj: Ctx, req: str, as_json: bool) -> None:
    """Approve a request (signed)."""
    emit(access.decide(obj.actor(), req, approve=True), as_json, _req_line)


@request_grp.command("deny")
@click.argument("req")
@options.reason
@json_opt
@click.pass_obj
def request_deny(obj: Ctx, req: str, reason: str, as_json: bool) -> None:
    """Deny a request (signed)."""
    emit(access.decide(obj.actor(), req, approve=False, reason=reason), as_json, _req_line)


class _GrantGroup(LocalisedGroup):
    """``vault grant REQ`` creates a grant; ``vault grant list|revoke|sweep`` manage them."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["create", *args]
        return super().resolve_command(ctx, args)


@cli.group("grant", cls=_GrantGroup)
def grant_grp() -> None:
    """Grants: REQ [--hours N] releases the keys for an approved request; list, revoke, sweep."""


@grant_grp.command("create", hidden=True)
@click.argument("req")
@click.option("--hours", default=24, show_default=True, type=int, help="Validity of the grant.")
@click.option("--number", help="For a request by customer name: the dossier to grant, among those the name matches.")
@json_opt
@click.pass_obj
def grant_create(obj: Ctx, req: str, hours: int, as_json: bool, number: str | None) -> None:
    """Grant an approved access request; a request by customer name is resolved to one dossier first."""
    actor = obj.actor()
    by_name = grants.status(obj.vault, req).get("by_name")
    if number is not None and not by_name:  # not silently ignored: the granter meant something by it
        raise UsageError(N_("request {req} names its dossier already"), hint=N_("leave out --number"), req=req)
    resolved = find.resolve_customer(actor, req, choose=number) if by_name else None
    gno = access.grant(actor, req, hours=hours, resolved=resolved)
    emit({"number": gno}, as_json, gno)


@grant_grp.command("list")
@json_opt
@click.pass_obj
def grant_list(obj: Ctx, as_json: bool) -> None:
    """List grants and their state."""
    rows = grants.list_grants(obj.vault)
    emit(rows, as_json, lambda rs: "\n".join(
        f"{g['number']}  {g['target']:<22} {pad(obj.who(g['grantee']), 14)} "
        + _("until {time}").format(time=obj.when(g["expires_at"])) + f"  {state(g['state'])}" for g in rs)
        or _("(no grants)"))


@grant_grp.command("revoke")
@click.argument("grant")
@json_opt
@click.pass_obj
def grant_revoke(obj: Ctx, grant: str, as_json: bool) -> None:
    """Revoke a grant now."""
    access.revoke(obj.actor(), grant)
    emit({"revoked": grant}, as_json, _("revoked {grant}").format(grant=grant))


@grant_grp.command("sweep")
@json_opt
@click.pass_obj
def grant_sweep(obj: Ctx, as_json: bool) -> None:
    """Close every expired grant (safe to run from cron; needs no dossier key)."""
    swept = access.sweep(obj.actor())
    emit({"swept": swept}, as_json, _("swept {count} expired grant(s)").format(count=len(swept)))


@cli.group("audit")
def audit_grp() -> None:
    """The signed audit trail."""


@audit_grp.command("log")
@click.option("--dossier", "number", type=NUMBER, help="Only entries about this archive number.")
@click.option("--member", help="Only entries by this member.")
@click.option("--since", help="Only entries from this date (YYYY-MM-DD).")
@json_opt
@click.pass_obj
def audit_log(obj: Ctx, number: str | None, member: str | None, since: str | None, as_json: bool) -> None:
    """Show the audit trail (verified first)."""
    actor = obj.actor()
    actor.require("audit.read")
    res = audit.verify(obj.vault)
    if not res.ok:
        raise IntegrityError(res.problems[0], hint=N_("run 'vault audit verify' for details"))
    # A date is a day in the office's time zone: entries from its local midnight on.
    since = clock.day_start(parse_date(since)) if since else None
    member = members.resolve_member(obj.vault, member) if member else None
    rows = [e for e in audit.entries(obj.vault)
            if (not number or e.get("number", "").split("/")[0] == number.split("/")[0])
            and (not member or e["member"] == member) and (not since or e["at"] >= since)]
    rows = [{k: v for k, v in e.items() if k not in ("sig", "prev")} for e in rows]
    actor.audit("audit.read")
    emit(rows, as_json, lambda rs: "\n".join(one_line(
        f"{e['seq']:>6} {obj.when(e['at'])} {pad(obj.who(e['member']), 14)} {e['action']:<22} {e['outcome']:<8} "
        f"{e.get('number', '')} {obj.who(e.get('ref')) if e['action'].startswith('member.') else e.get('ref', '')}"
        .rstrip(), limit=1000) for e in rs) or _("(no entries)"))


@audit_grp.command("verify")
@json_opt
@click.pass_obj
def audit_verify(obj: Ctx, as_json: bool) -> None:
    """Verify every entry, the chain and the checkpoint; name where it breaks. Needs no key."""
    res = audit.verify(obj.vault)
    data = {"ok": res.ok, "entries": res.count, "problems": res.problems, "notes": res.notes,
            "checked_at": obj.clock.stamp()}
    emit(data, as_json, lambda d: "\n".join([*(_("problem: {problem}").format(problem=render(p)) for p in d["problems"]),
                                             *(_("note: {note}").format(note=render(n)) for n in d["notes"]),
                                             (_("{count} entries; intact") if d["ok"] else _("{count} entries; BROKEN"))
                                             .format(count=d["entries"])]))
    if not res.ok:
        raise SystemExit(1)


@audit_grp.command("anchor")
@json_opt
@click.pass_obj
def audit_anchor(obj: Ctx, as_json: bool) -> None:
    """Print a line to keep offline beside the fingerprint; 'vault check --anchor LINE' verifies
    that the vault's history extends it. Needs no key."""
    from vault.archive import witness

    res = audit.verify(obj.vault)
    if not res.ok:
        raise IntegrityError(res.problems[0], hint=N_("run 'vault audit verify' for details"))
    line = witness.anchor_line(obj.vault, res.replay.state)
    emit({"anchor": line, "entries": res.count}, as_json, line)
