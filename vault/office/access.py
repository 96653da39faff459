"""Consultation and copy requests, approvals, and grants that release a dossier's keys [R-3.4.1, R-3.4.2].

A request is signed by its requester; a decision by the approver; a grant by the archivist who
made it. A grant is a *key release*: ``keys/grants/<dossier>.<grant>.age`` holds the dossier's key
table encrypted to the grantee alone. It is written when granted, re-written when the dossier gets
new keys, and deleted when the grant is revoked or swept after expiry — so access ends by
decryption failing, and sweeping needs no key (an operator can run it from cron).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from vault import clock
from vault.archive import authority, members
from vault.crypto import age
from vault.errors import (ConflictError, InputError, IntegrityError, NoIdentityMatchError, NotFoundError,
                          PermissionDeniedError)
from vault.store import fsync_dir, index, records, write_atomic
from vault.store.identity import PublicKey
from vault.store.keytable import KeyTable, read_key_table

MAX_GRANT_HOURS = 24 * 30


def _req_rel(no: str, suffix: str = "") -> str:
    return f"requests/{no}{suffix}.toml"


def _grant_rel(no: str, suffix: str = "") -> str:
    return f"grants/{no}{suffix}.toml"


def grant_key_path(v, dossier_id: str, grant_no: str) -> Path:
    return v.root / "keys" / "grants" / f"{dossier_id}.{grant_no}.age"


def _fact(v, table: str, no: str, what: str) -> dict[str, Any]:
    f = authority.state(v)[table].get(no)
    if f is None:
        raise NotFoundError(f"no {what} {no}")
    return f


def _request(v, no: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the history's facts, the committed request record) — the record must say what the history says."""
    fact = _fact(v, "requests", no, "request")
    rec = authority.load(v, _req_rel(no))
    if (rec.get("number"), rec.get("kind"), rec.get("dossier") or None, rec.get("requester"),
            rec.get("target") or None) != (no, fact["kind"], fact["dossier"], fact["by"], fact["target"] or None):
        raise IntegrityError(f"requests/{no}.toml: does not say what its history entry says")
    return fact, rec


def create_request(actor, kind: str, target: str | None, purpose: str, *, customer: str | None = None) -> str:
    """File a consultation (``access``) or copy (``copy``) request; returns its number.

    A consultation may name the customer instead of the archive number [R-3.4.1]: ``customer`` is
    sealed to the archive ring (which resolves it when granting) and the requester's department
    heads (who approve it); ``target`` and ``dossier`` stay empty until the grant resolves it.
    """
    from vault.office.dossier import load_manifest, resolve

    actor.require("request.create", number=target)
    v = actor.vault
    if not purpose.strip():
        raise InputError("a request needs a purpose [R-3.4.1]", hint="pass --purpose TEXT")
    if customer is not None:
        if kind != "access" or target or not customer.strip():
            raise InputError("a request names either an archive number or a customer's name",
                             hint="'vault request access NO …' or 'vault request access --customer NAME …'")
        target, dossier_id = "", ""
    else:
        dossier_id = resolve(v, target or "")
        m = load_manifest(v, dossier_id)
        if m["status"] == "destroyed":
            actor.audit(f"request.{kind}", outcome="refused", number=target)
            raise ConflictError(f"dossier {m['number']} has been destroyed", hint="nothing left to consult")
        if kind == "copy" and "/" in target and not any(d["number"] == target for d in m["documents"]):
            raise NotFoundError(f"no document {target}")
    mem = members.all_members(v)
    dept = mem[actor.name]["dept"]
    heads = [n for n, r in mem.items() if "dept-head" in r["roles"] and r["dept"] == dept and r["status"] == "active"]
    with v.lock(exclusive=True):
        no = f"R-{index.next_sequence(v.root, 'requests'):06d}"
        rec = {"format": 1, "number": no, "kind": kind, "target": target, "dossier": dossier_id,
               "requester": actor.name, "dept": dept, "created_at": clock.stamp(),
               "purpose": members.seal_text(v, purpose, [actor.name, *heads], mem)}
        if customer is not None:
            rec["customer"] = members.seal_text(v, customer.strip(), heads, mem)
        (v.root / "requests").mkdir(mode=0o700, exist_ok=True)
        actor.commit(f"request.{kind}", {_req_rel(no): records.dump_toml(actor.sign(rec))}, number=target or None,
                     ref=no, obj=dossier_id or None)
    return no


def status(v, no: str, *, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A request with its state from the history: pending, approved, denied, granted, used.

    Decisions, uses and grants are facts of the history: deleting their files reverts nothing.
    """
    fact, req = _request(v, no)
    out = {k: req[k] for k in ("number", "kind", "target", "requester", "created_at")}
    out["dept"] = fact["dept"]  # the requester's member record's, never a typed field
    out["state"] = fact["decision"] or "pending"
    if "customer" in req:
        out["by_name"] = True
        if fact.get("resolved"):
            out.update(target=fact["resolved"]["number"], resolved_by=fact["resolved"]["by"])
    if fact["decision"]:
        dec = authority.load(v, _req_rel(no, ".decision"))
        out.update(decided_by=fact["decided_by"], decided_at=dec["at"])
    if fact["used"]:
        out["state"] = "used"
    if fact["grant"]:
        out.update(state="granted", grant=fact["grant"])
    return out


def request_record(v, no: str) -> dict[str, Any]:
    """A request as its requester signed it, checked against the history."""
    return _request(v, no)[1]


def resolution(v, req: dict[str, Any]) -> dict[str, Any] | None:
    """The granting archivist's resolution of a request by customer name (committed with the grant)."""
    res = _fact(v, "requests", req["number"], "request").get("resolved")
    return None if res is None else authority.load(v, _req_rel(req["number"], ".resolution"))


def customer_name(actor, no: str) -> str:
    """The customer name a request by name gives, for a member it was sealed to (the archive ring,
    the requester's department heads)."""
    import base64

    req = _request(actor.vault, no)[1]
    if "customer" not in req:
        raise InputError(f"request {no} names an archive number, not a customer")
    try:
        return age.decrypt_bytes(base64.b64decode(req["customer"]), actor.read_identities()).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(f"the customer name in {no} is sealed to the archive and the department heads") from None


def _digest(rec: dict[str, Any]) -> str:
    return hashlib.sha256(records.canonical(rec)).hexdigest()


def decide(actor, no: str, *, approve: bool, reason: str | None = None) -> dict[str, Any]:
    """Approve or deny a request: access by a department head of the requester's department, copy
    by the archive head; never by the requester."""
    v = actor.vault
    fact, req = _request(v, no)
    action = "request.approve-access" if fact["kind"] == "access" else "request.approve-copy"
    verb = "approve" if approve else "deny"
    actor.require(action, number=fact["target"] or None)
    if fact["by"] == actor.name:
        actor.audit(f"request.{verb}", outcome="refused", number=fact["target"] or None, ref=no)
        raise PermissionDeniedError("you cannot decide your own request", hint="another approver must decide it")
    if fact["kind"] == "access" and members.all_members(v)[actor.name]["dept"] != fact["dept"]:
        actor.audit(f"request.{verb}", outcome="refused", number=fact["target"] or None, ref=no)
        raise PermissionDeniedError(f"request {no} is from department {fact['dept']}, not yours",
                                    hint="the head of the requester's department decides it")
    if not approve and not (reason or "").strip():
        raise InputError("a denial needs a reason", hint="pass --reason TEXT")
    with v.lock(exclusive=True):
        if _fact(v, "requests", no, "request")["decision"] is not None:
            raise ConflictError(f"request {no} has already been decided")
        dec = {"format": 1, "request": no, "request_sha256": _digest(req),
               "decision": "approved" if approve else "denied", "by": actor.name, "at": clock.stamp()}
        if reason:
            dec["reason"] = members.seal_text(v, reason, [fact["by"], actor.name])
        actor.commit(f"request.{verb}", {_req_rel(no, ".decision"): records.dump_toml(actor.sign(dec))},
                     number=fact["target"] or None, ref=no, obj=no)
    return status(v, no)


def list_requests(v) -> list[dict[str, Any]]:
    return [status(v, n) for n in sorted(authority.state(v)["requests"])]


def grant(actor, no: str, *, hours: int = 24, resolved: tuple[str, str] | None = None) -> str:
    """Release the dossier's keys to the requester of an approved access request until expiry.

    :param resolved: for a request by customer name, the (dossier id, archive number) the granting
        archivist resolved it to (``vault.office.find.resolve_customer``); committed, signed, as
        ``requests/<R>.resolution.toml`` in the grant's own history entry.
    """
    from vault.office.dossier import read_table

    actor.require("grant.manage")
    v = actor.vault
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise InputError(f"--hours must be between 1 and {MAX_GRANT_HOURS}")
    st = status(v, no)
    fact, req = _request(v, no)
    if fact["kind"] != "access":
        raise ConflictError(f"{no} is a copy request; copies are made with 'vault doc export'")
    if st["state"] != "approved":
        actor.audit("grant.create", outcome="refused", number=fact["target"] or None, ref=no)
        raise ConflictError(f"request {no} is {st['state']}, not approved", hint="a department head must approve it first")
    mem = members.all_members(v)
    grantee = mem.get(fact["by"])
    if grantee is None or grantee["status"] != "active":
        raise ConflictError(f"requester {fact['by']} is no longer a member")
    dec = authority.load(v, _req_rel(no, ".decision"))
    dossier_id, target = fact["dossier"], fact["target"]
    if "customer" in req:
        if resolved is None:
            raise ConflictError(f"request {no} names a customer, not a dossier",
                                hint=f"'vault grant {no}' resolves the name through the search index")
        dossier_id, target = resolved
    elif resolved is not None:
        raise InputError(f"request {no} names its dossier already")
    with v.lock(exclusive=True):
        files = {}
        if "customer" in req:
            files[_req_rel(no, ".resolution")] = records.dump_toml(actor.sign(
                {"format": 1, "request": no, "request_sha256": _digest(req), "dossier": dossier_id,
                 "number": target, "by": actor.name, "at": clock.stamp()}))
        gno = f"G-{index.next_sequence(v.root, 'grants'):06d}"
        now = clock.now()
        rec = {"format": 1, "number": gno, "request": no, "dossier": dossier_id, "target": target,
               "grantee": fact["by"], "granted_at": clock.stamp(),
               "expires_at": (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "approval_sha256": _digest(dec)}
        table = read_table(v, dossier_id, actor.read_identities())
        (v.root / "grants").mkdir(mode=0o700, exist_ok=True)
        files[_grant_rel(gno)] = records.dump_toml(actor.sign(rec))
        actor.commit("grant.create", files, number=target, ref=gno, obj=no)
        _write_grant_key(v, rec, table, mem)
    return gno


def _write_grant_key(v, rec: dict[str, Any], table: KeyTable, mem: dict) -> None:
    if mem[rec["grantee"]]["status"] != "active":
        return  # no key release is ever written to a member who is not active
    rcpt = age.parse_recipient(PublicKey.parse(mem[rec["grantee"]]["key"]).recipient)
    p = grant_key_path(v, rec["dossier"], rec["number"])
    p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(p, age.encrypt_bytes(table.to_bytes(), [rcpt]), mode=0o600)


def list_grants(v) -> list[dict[str, Any]]:
    """Every grant with its state from the history: active, expired (until swept), or how it closed."""
    out = []
    now = clock.stamp()
    for gno, fact in sorted(authority.state(v)["grants"].items()):
        g = authority.load(v, _grant_rel(gno))
        if (g.get("number"), g.get("request"), g.get("dossier"), g.get("grantee")) != \
                (gno, fact["request"], fact["dossier"], fact["grantee"]):
            raise IntegrityError(f"grants/{gno}.toml: does not say what its history entry says")
        state = fact["closed"] or ("active" if now < g["expires_at"] else "expired")
        out.append({**{k: g[k] for k in ("number", "request", "dossier", "target", "grantee", "granted_at",
                                         "expires_at")}, "state": state})
    return out


def active_grant(v, dossier_id: str, member: str) -> dict[str, Any] | None:
    for g in list_grants(v):
        if g["dossier"] == dossier_id and g["grantee"] == member and g["state"] == "active":
            return g
    return None


def _close(actor, g: dict[str, Any], reason: str) -> None:
    v = actor.vault
    rec = actor.sign({"format": 1, "grant": g["number"], "reason": reason, "by": actor.name, "at": clock.stamp()})
    actor.commit(f"grant.{'revoke' if reason == 'revoked' else 'sweep'}",
                 {_grant_rel(g["number"], ".closed"): records.dump_toml(rec)}, number=g["target"],
                 ref=g["number"], obj=g["number"])
    p = grant_key_path(v, g["dossier"], g["number"])
    if p.exists():
        p.unlink()
        fsync_dir(p.parent)
def revoke(actor, gno: str) -> None:
    """End a grant now: its key release is deleted."""
    actor.require("grant.manage")
    v = actor.vault
    with v.lock(exclusive=True):
        g = next((x for x in list_grants(v) if x["number"] == gno), None)
        if g is None:
            raise NotFoundError(f"no grant {gno}")
        if g["state"] in ("revoked", "expired-swept"):
            raise ConflictError(f"grant {gno} is already closed")
        _close(actor, g, "revoked")


def sweep(actor) -> list[str]:
    """Close every expired grant (deletes its key release); safe to run from cron. Needs no dossier key."""
    actor.require("grant.sweep")
    v = actor.vault
    swept = []
    with v.lock(exclusive=True):
        for g in list_grants(v):
            if g["state"] == "expired":
                _close(actor, g, "expired-swept")
                swept.append(g["number"])
    return swept


def refresh_grant_keys(actor, dossier_id: str, table: KeyTable) -> None:
    """Re-issue the key release of every active grant on a dossier after its key table changed
    (never for a grant the history closed, nor to a member who is not active)."""
    grants = [g for g in list_grants(actor.vault) if g["dossier"] == dossier_id and g["state"] == "active"]
    if grants:
        mem = members.all_members(actor.vault)
        for g in grants:
            _write_grant_key(actor.vault, {"dossier": dossier_id, "number": g["number"], "grantee": g["grantee"]},
                             table, mem)


def open_key_table(actor, dossier_id: str, *, number: str) -> KeyTable:
    """The dossier's key table for this member: through the archive ring, or an active grant."""
    from vault.office.dossier import read_table

    v = actor.vault
    if v.policy.may(actor.roles, "dossier.read"):
        return read_table(v, dossier_id, actor.read_identities())
    g = active_grant(v, dossier_id, actor.name)
    if g is None:
        actor.audit("dossier.read", outcome="refused", number=number)
        raise PermissionDeniedError(
            f"you have no active grant for dossier {number.split('/')[0]}",
            hint="file 'vault request access NO --purpose …'; your department head approves, the archive grants")
    return read_key_table(grant_key_path(v, dossier_id, g["number"]), [actor.identity.age_identity()],
                          dossier=dossier_id)


def consume_copy_approval(actor, target: str) -> str:
    """Use up the approved copy request of this member for ``target``; returns its number [R-3.4.2]."""
    v = actor.vault
    with v.lock(exclusive=True):
        for no, f in sorted(authority.state(v)["requests"].items()):
            if f["kind"] == "copy" and f["by"] == actor.name and f["target"] == target \
                    and f["decision"] == "approved" and not f["used"]:
                rec = actor.sign({"format": 1, "request": no, "at": clock.stamp()})
                actor.commit("request.use", {_req_rel(no, ".used"): records.dump_toml(rec)}, number=target,
                             ref=no, obj=no)
                return no
    actor.audit("doc.export", outcome="refused", number=target)
    raise PermissionDeniedError(f"no approved copy request of yours for {target}",
                                hint="file 'vault request copy DOCNO --purpose …'; the archive head approves it")
