"""Requests and grants as recorded: their states, the key releases of active grants, and opening a dossier's keys [R-3.4.1, R-3.4.2]."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from vault import clock
from vault.archive import members, trust
from vault.crypto import age
from vault.errors import InputError, IntegrityError, NoIdentityMatchError, NotFoundError, PermissionDeniedError
from vault.store import ids, records, write_atomic
from vault.store.identity import PublicKey
from vault.store.keytable import KeyTable, read_key_table, write_key_table


def _req_path(v, no: str, suffix: str = "") -> Path:
    return v.layout.request(no, suffix)


def _grant_path(v, no: str, suffix: str = "") -> Path:
    return v.layout.grant(no, suffix)


def grant_key_path(v, dossier_id: str, grant_no: str) -> Path:
    return v.layout.grant_key(dossier_id, grant_no)


def _load(v, path: Path, what: str, mem: dict | None = None, *, schema: str | None = None) -> dict[str, Any]:
    try:
        rec = records.load_toml(path, schema=schema, what=what)
    except FileNotFoundError:
        raise NotFoundError(f"no {what}") from None
    members.verify_by_member(v, rec, what=what, members=mem)
    return rec


def status(v, no: str, *, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A request with its derived state: pending, approved, denied, granted, used.

    :param grants: ``list_grants(v)`` when the caller already has it (listing many requests).
    """
    ids.request_no(no)
    req = _load(v, _req_path(v, no), f"request {no}", schema="request")
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
        dec = _load(v, dec_path, f"decision on {no}", schema="decision")
        if dec["request_sha256"] != _digest(req):
            raise IntegrityError(f"requests/{no}.decision.toml: decides another version of the request")
        _check_decider(v, req, dec)
        out.update(state=dec["decision"], decided_by=dec["by"], decided_at=dec["at"])
    used_path = _req_path(v, no, ".used")
    if out["state"] == "approved" and used_path.exists():
        used = _load(v, used_path, f"use of {no}", schema="used")
        if used["request"] != no or used["signature"]["by"] != req["requester"]:
            raise IntegrityError(f"requests/{no}.used.toml: not the requester's use of this request")
        out["state"] = "used"
    if out["state"] == "approved" and req["kind"] == "access":
        for g in list_grants(v) if grants is None else grants:
            if g["request"] == no:
                out.update(state="granted", grant=g["number"])
    return out


def request_record(v, no: str) -> dict[str, Any]:
    """A request as its requester signed it (signature verified)."""
    return _load(v, _req_path(v, no), f"request {no}", schema="request")


def resolution(v, req: dict[str, Any]) -> dict[str, Any] | None:
    """The archivist's signed resolution of a request by customer name to one dossier, if made."""
    path = _req_path(v, req["number"], ".resolution")
    if not path.exists():
        return None
    what = f"requests/{req['number']}.resolution.toml"
    res = _load(v, path, f"resolution of {req['number']}", schema="resolution")
    signer = members.all_members(v)[res["signature"]["by"]]
    if res.get("request_sha256") != _digest(req) or res.get("by") != signer["name"] \
            or not v.policy.may(signer["roles"], "grant.manage"):
        raise IntegrityError(f"{what}: not a resolution of this request by a member who may grant it")
    return res


def customer_name(actor, no: str) -> str:
    """The customer name a request by name gives, for a member it was sealed to (the archive ring,
    the requester's department heads)."""
    req = _load(actor.vault, _req_path(actor.vault, no), f"request {no}", schema="request")
    if "customer" not in req:
        raise InputError(f"request {no} names an archive number, not a customer")
    try:
        return age.decrypt_bytes(base64.b64decode(req["customer"]), actor.read_identities()).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(f"the customer name in {no} is sealed to the archive and the department heads") from None


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


def _check_decider(v, req: dict[str, Any], dec: dict[str, Any]) -> None:
    """A decision counts only if its signer could make it: a validly signed record from a member
    who may not decide (written straight into the directory) must not unlock a grant or a copy."""
    signer = members.all_members(v)[dec["signature"]["by"]]
    kind = "access-decision" if req["kind"] == "access" else "copy-decision"
    if "approver_role" in req:  # a department head's own request, decided by the role the policy names
        ok = signer["name"] == dec["by"] != req["requester"] and req["approver_role"] in signer["roles"]
    else:
        ok = signer["name"] == dec["by"] and trust.may_sign(kind, signer, dept=req["dept"], requester=req["requester"])
    if not ok:
        raise IntegrityError(f"requests/{req['number']}.decision.toml: signed by {signer['name']}, "
                             "who may not decide this request")


def _digest(rec: dict[str, Any]) -> str:
    return hashlib.sha256(records.canonical(rec)).hexdigest()


def list_requests(v) -> list[dict[str, Any]]:
    d = v.root / "requests"
    if not d.is_dir():
        return []
    nos = sorted(p.stem for p in d.glob("R-*.toml") if "." not in p.stem)
    grants = list_grants(v)  # once, not once per request
    return [status(v, n, grants=grants) for n in nos]


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
        g = _load(v, p, f"grant {p.stem}", mem, schema="grant")
        if g["number"] != p.stem:
            raise IntegrityError(f"grants/{p.name}: holds grant {g['number']} (moved or forged)")
        granter = mem[g["signature"]["by"]]
        if not trust.may_sign("grant", granter):
            raise IntegrityError(f"grants/{p.name}: signed by {granter['name']}, who may not grant")
        closed = _grant_path(v, g["number"], ".closed")
        if closed.exists():
            c = _load(v, closed, f"closing of grant {g['number']}", mem, schema="closed")
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


def save_keys(actor, dossier_id: str, table: KeyTable) -> None:
    """Write a dossier's changed key table for the archive ring and re-issue every active grant's key
    release: the one way a changed table is saved, so no grantee keeps an outdated copy."""
    v = actor.vault
    write_key_table(v.layout.key_table(dossier_id), table, members.ring_recipients(v))
    refresh_grant_keys(actor, dossier_id, table)


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
            param="access_request")
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
                                param="copy_request")
