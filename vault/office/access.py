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
from vault.store import index, records
from vault.archive import members
from vault.crypto import age
from vault.errors import ConflictError, InputError, IntegrityError, NoIdentityMatchError, NotFoundError, PermissionDeniedError
from vault.store.identity import PublicKey
from vault.store.keytable import KeyTable, read_key_table
from vault.store import fsync_dir, write_atomic

MAX_GRANT_HOURS = 24 * 30


def _req_path(v, no: str, suffix: str = "") -> Path:
    return v.root / "requests" / f"{no}{suffix}.toml"


def _grant_path(v, no: str, suffix: str = "") -> Path:
    return v.root / "grants" / f"{no}{suffix}.toml"


def grant_key_path(v, dossier_id: str, grant_no: str) -> Path:
    return v.root / "keys" / "grants" / f"{dossier_id}.{grant_no}.age"


def _load(v, path: Path, what: str, mem: dict | None = None) -> dict[str, Any]:
    try:
        rec = records.load_toml(path, what=what)
    except FileNotFoundError:
        raise NotFoundError(f"no {what}") from None
    members.verify_by_member(v, rec, what=what, members=mem)
    return rec


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
    heads = [n for n, r in mem.items() if "dept-head" in r["roles"] and r["dept"] == actor.record["dept"]]
    with v.lock(exclusive=True):
        no = f"R-{index.next_sequence(v.root, 'requests'):06d}"
        rec = {"format": 1, "number": no, "kind": kind, "target": target, "dossier": dossier_id,
               "requester": actor.name, "dept": actor.record["dept"], "created_at": clock.stamp(),
               "purpose": members.seal_text(v, purpose, [actor.name, *heads], mem)}
        if kind == "access" and "dept-head" in actor.roles:
            # No one approves their own request: a head's own goes up to the role the policy names.
            rec["approver_role"] = v.policy.head_request_approver()
        if customer is not None:
            rec["customer"] = members.seal_text(v, customer.strip(), heads, mem)
        (v.root / "requests").mkdir(mode=0o700, exist_ok=True)
        records.write_toml(_req_path(v, no), actor.sign(rec))
        actor.audit(f"request.{kind}", number=target or None, ref=no)
    return no


def status(v, no: str, *, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A request with its derived state: pending, approved, denied, granted, used.

    :param grants: ``list_grants(v)`` when the caller already has it (listing many requests).
    """
    req = _load(v, _req_path(v, no), f"request {no}")
    out = {k: req[k] for k in ("number", "kind", "target", "requester", "dept", "created_at")}
    if "approver_role" in req:
        out["approver_role"] = req["approver_role"]
    out["state"] = "pending"
    if "customer" in req:
        out["by_name"] = True
        res = resolution(v, req)
        if res is not None:
            out.update(target=res["number"], resolved_by=res["by"])
    dec_path = _req_path(v, no, ".decision")
    if dec_path.exists():
        dec = _load(v, dec_path, f"decision on {no}")
        if dec["request_sha256"] != _digest(req):
            raise IntegrityError(f"requests/{no}.decision.toml: decides another version of the request")
        _check_decider(v, req, dec)
        out.update(state=dec["decision"], decided_by=dec["by"], decided_at=dec["at"])
    if out["state"] == "approved" and _req_path(v, no, ".used").exists():
        out["state"] = "used"
    if out["state"] == "approved" and req["kind"] == "access":
        for g in list_grants(v) if grants is None else grants:
            if g["request"] == no:
                out.update(state="granted", grant=g["number"])
    return out


def request_record(v, no: str) -> dict[str, Any]:
    """A request as its requester signed it (signature verified)."""
    return _load(v, _req_path(v, no), f"request {no}")


def texts(v, no: str, actor=None) -> dict[str, Any]:
    """A request's sealed texts — its ``purpose`` and a denial's ``reason`` — for a member they were
    sealed to (the requester, the department heads, the deciders, the archive ring); see
    ``members.reveal``. ``actor`` None (no identity given) reveals nothing."""
    req = _load(v, _req_path(v, no), f"request {no}")
    found = {"purpose": (req["purpose"], f"requests/{no}.toml purpose")}
    dec_path = _req_path(v, no, ".decision")
    if dec_path.exists():
        dec = _load(v, dec_path, f"decision on {no}")
        if "reason" in dec:
            found["reason"] = (dec["reason"], f"requests/{no}.decision.toml reason")
    out: dict[str, Any] = {}
    members.reveal(actor, found, out, number=req["target"] or None, ref=no)
    return out


def resolution(v, req: dict[str, Any]) -> dict[str, Any] | None:
    """The archivist's signed resolution of a request by customer name to one dossier, if made."""
    path = _req_path(v, req["number"], ".resolution")
    if not path.exists():
        return None
    what = f"requests/{req['number']}.resolution.toml"
    res = _load(v, path, f"resolution of {req['number']}")
    signer = members.all_members(v)[res["signature"]["by"]]
    if res.get("request_sha256") != _digest(req) or res.get("by") != signer["name"] \
            or not v.policy.may(signer["roles"], "grant.manage"):
        raise IntegrityError(f"{what}: not a resolution of this request by a member who may grant it")
    return res


def customer_name(actor, no: str) -> str:
    """The customer name a request by name gives, for a member it was sealed to (the archive ring,
    the requester's department heads)."""
    import base64

    req = _load(actor.vault, _req_path(actor.vault, no), f"request {no}")
    if "customer" not in req:
        raise InputError(f"request {no} names an archive number, not a customer")
    try:
        return age.decrypt_bytes(base64.b64decode(req["customer"]), actor.read_identities()).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(f"the customer name in {no} is sealed to the archive and the department heads") from None


def _check_decider(v, req: dict[str, Any], dec: dict[str, Any]) -> None:
    """A decision counts only if its signer could make it: a validly signed record from a member
    who may not decide (written straight into the directory) must not unlock a grant or a copy."""
    signer = members.all_members(v)[dec["signature"]["by"]]
    ok = signer["name"] == dec["by"] != req["requester"] and (
        req["approver_role"] in signer["roles"] if "approver_role" in req
        else ("dept-head" in signer["roles"] and signer["dept"] == req["dept"]) if req["kind"] == "access"
        else "supervisor" in signer["roles"])
    if not ok:
        raise IntegrityError(f"requests/{req['number']}.decision.toml: signed by {signer['name']}, "
                             "who may not decide this request")


def _digest(rec: dict[str, Any]) -> str:
    return hashlib.sha256(records.canonical(rec)).hexdigest()


def decide(actor, no: str, *, approve: bool, reason: str | None = None) -> dict[str, Any]:
    """Approve or deny a request: access by a department head of the requester's department, copy
    by the archive head; never by the requester."""
    v = actor.vault
    req = _load(v, _req_path(v, no), f"request {no}")
    action = "request.approve-access" if req["kind"] == "access" else "request.approve-copy"
    verb = "approve" if approve else "deny"
    actor.require(action, number=req["target"] or None)
    if req["requester"] == actor.name:
        actor.audit(f"request.{verb}", outcome="refused", number=req["target"] or None, ref=no)
        raise PermissionDeniedError("you cannot decide your own request", hint="another approver must decide it")
    if "approver_role" in req and req["approver_role"] not in actor.roles:
        actor.audit(f"request.{verb}", outcome="refused", number=req["target"] or None, ref=no)
        raise PermissionDeniedError(f"request {no} is a department head's own: a {req['approver_role']} decides it",
                                    hint="see [requests] in 'vault policy show'")
    if req["kind"] == "access" and "approver_role" not in req and actor.record["dept"] != req["dept"]:
        actor.audit(f"request.{verb}", outcome="refused", number=req["target"] or None, ref=no)
        raise PermissionDeniedError(f"request {no} is from department {req['dept']}, not yours",
                                    hint="the head of the requester's department decides it")
    if not approve and not (reason or "").strip():
        raise InputError("a denial needs a reason", hint="pass --reason TEXT")
    with v.lock(exclusive=True):
        if _req_path(v, no, ".decision").exists():
            raise ConflictError(f"request {no} has already been decided")
        dec = {"format": 1, "request": no, "request_sha256": _digest(req),
               "decision": "approved" if approve else "denied", "by": actor.name, "at": clock.stamp()}
        if reason:
            dec["reason"] = members.seal_text(v, reason, [req["requester"], actor.name])
        records.write_toml(_req_path(v, no, ".decision"), actor.sign(dec))
        actor.audit(f"request.{verb}", number=req["target"] or None, ref=no)
    return status(v, no)


def list_requests(v) -> list[dict[str, Any]]:
    d = v.root / "requests"
    if not d.is_dir():
        return []
    nos = sorted(p.stem for p in d.glob("R-*.toml") if "." not in p.stem)
    grants = list_grants(v)  # once, not once per request
    return [status(v, n, grants=grants) for n in nos]


def grant(actor, no: str, *, hours: int = 24, resolved: tuple[str, str] | None = None) -> str:
    """Release the dossier's keys to the requester of an approved access request until expiry.

    :param resolved: for a request by customer name, the (dossier id, archive number) the granting
        archivist resolved it to (``vault.office.find.resolve_customer``); recorded, signed, as
        ``requests/<R>.resolution.toml`` before the grant.
    """
    actor.require("grant.manage")
    v = actor.vault
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise InputError(f"--hours must be between 1 and {MAX_GRANT_HOURS}")
    st = status(v, no)
    req = _load(v, _req_path(v, no), f"request {no}")
    if req["kind"] != "access":
        raise ConflictError(f"{no} is a copy request; copies are made with 'vault doc export'")
    if st["state"] != "approved":
        actor.audit("grant.create", outcome="refused", number=req["target"] or None, ref=no)
        raise ConflictError(f"request {no} is {st['state']}, not approved", hint="a department head must approve it first")
    mem = members.all_members(v)
    grantee = mem.get(req["requester"])
    if grantee is None or grantee["status"] != "active":
        raise ConflictError(f"requester {req['requester']} is no longer a member")
    dec = _load(v, _req_path(v, no, ".decision"), f"decision on {no}")
    dossier_id, target = req["dossier"], req["target"]
    earlier = resolution(v, req) if "customer" in req else None
    if earlier is not None:  # resolved by a grant that did not complete: the signed resolution stands
        dossier_id, target = earlier["dossier"], earlier["number"]
    elif "customer" in req:
        if resolved is None:
            raise ConflictError(f"request {no} names a customer, not a dossier",
                                hint=f"'vault grant {no}' resolves the name through the search index")
        dossier_id, target = resolved
    elif resolved is not None:
        raise InputError(f"request {no} names its dossier already")
    with v.lock(exclusive=True):
        if "customer" in req and earlier is None:
            records.write_toml(_req_path(v, no, ".resolution"), actor.sign(
                {"format": 1, "request": no, "request_sha256": _digest(req), "dossier": dossier_id,
                 "number": target, "by": actor.name, "at": clock.stamp()}))
        gno = f"G-{index.next_sequence(v.root, 'grants'):06d}"
        now = clock.now()
        rec = {"format": 1, "number": gno, "request": no, "dossier": dossier_id, "target": target,
               "grantee": req["requester"], "granted_at": clock.stamp(),
               "expires_at": (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "approval_sha256": _digest(dec)}
        table = read_key_table(v.layout.key_table(dossier_id), actor.read_identities(), dossier=dossier_id)
        _write_grant_key(v, rec, table, mem)
        (v.root / "grants").mkdir(mode=0o700, exist_ok=True)
        records.write_toml(_grant_path(v, gno), actor.sign(rec))
        actor.audit("grant.create", number=target, ref=gno)
    return gno


def _write_grant_key(v, rec: dict[str, Any], table: KeyTable, mem: dict) -> None:
    rcpt = age.parse_recipient(PublicKey.parse(mem[rec["grantee"]]["key"]).recipient)
    p = grant_key_path(v, rec["dossier"], rec["number"])
    p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(p, age.encrypt_bytes(table.to_bytes(), [rcpt]), mode=0o600)


def list_grants(v) -> list[dict[str, Any]]:
    """Every grant with its state: active, expired (until swept), closed."""
    d = v.root / "grants"
    if not d.is_dir():
        return []
    out = []
    now = clock.stamp()
    mem = members.all_members(v)
    for p in sorted(d.glob("G-*.toml")):
        if "." in p.stem:
            continue
        g = _load(v, p, f"grant {p.stem}", mem)
        granter = mem[g["signature"]["by"]]
        if not {"archivist", "supervisor"} & set(granter["roles"]):
            raise IntegrityError(f"grants/{p.name}: signed by {granter['name']}, who may not grant")
        closed = _grant_path(v, g["number"], ".closed")
        if closed.exists():
            c = _load(v, closed, f"closing of grant {g['number']}", mem)
            state = c["reason"]
        else:
            state = "active" if now < g["expires_at"] else "expired"
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
    p = grant_key_path(v, g["dossier"], g["number"])
    if p.exists():
        p.unlink()
        fsync_dir(p.parent)
    records.write_toml(_grant_path(v, g["number"], ".closed"),
                       actor.sign({"format": 1, "grant": g["number"], "reason": reason, "by": actor.name,
                                   "at": clock.stamp()}))
    actor.audit(f"grant.{'revoke' if reason == 'revoked' else 'sweep'}", number=g["target"], ref=g["number"])


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
    """Re-issue the key release of every active grant on a dossier after its key table changed."""
    grants = [g for g in list_grants(actor.vault) if g["dossier"] == dossier_id and g["state"] == "active"]
    if grants:
        mem = members.all_members(actor.vault)
        for g in grants:
            _write_grant_key(actor.vault, {"dossier": dossier_id, "number": g["number"], "grantee": g["grantee"]},
                             table, mem)


def open_key_table(actor, dossier_id: str, *, number: str) -> KeyTable:
    """The dossier's key table for this member: through the archive ring, or an active grant."""
    v = actor.vault
    if v.policy.may(actor.roles, "dossier.read"):
        return read_key_table(v.layout.key_table(dossier_id), actor.read_identities(), dossier=dossier_id)
    g = active_grant(v, dossier_id, actor.name)
    if g is None:
        actor.audit("dossier.read", outcome="refused", number=number)
        raise PermissionDeniedError(
            f"you have no active grant for dossier {number.split('/')[0]}",
            hint="file 'vault request access NO --purpose …'; your department head approves, the archive grants")
    return read_key_table(grant_key_path(v, dossier_id, g["number"]), [actor.identity.age_identity()],
                          dossier=dossier_id)


def consume_copy_approval(actor, target: str, *, action: str = "doc.export") -> str:
    """Use up the approved copy request of this member for ``target``; returns its number [R-3.4.2]."""
    v = actor.vault
    for st in list_requests(v):
        if st["kind"] == "copy" and st["requester"] == actor.name and st["target"] == target \
                and st["state"] == "approved":
            with v.lock(exclusive=True):
                if _req_path(v, st["number"], ".used").exists():
                    continue
                records.write_toml(_req_path(v, st["number"], ".used"),
                                   actor.sign({"format": 1, "request": st["number"], "at": clock.stamp()}))
            return st["number"]
    actor.audit(action, outcome="refused", number=target)
    raise PermissionDeniedError(f"no approved copy request of yours for {target}",
                                hint="file 'vault request copy DOCNO --purpose …'; the archive head approves it")
