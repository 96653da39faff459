"""Consultation and copy requests, approvals, and grants that release a dossier's keys [R-3.4.1, R-3.4.2].

A request is signed by its requester; a decision by the approver; a grant by the archivist who
made it. A grant is a *key release*: ``keys/grants/<dossier>.<grant>.age`` holds the dossier's key
table encrypted to the grantee alone. It is written when granted, re-written when the dossier gets
new keys, and deleted when the grant is revoked or swept after expiry — so access ends by
decryption failing, and sweeping needs no key (an operator can run it from cron).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from vault.archive.states import DossierStatus
from vault.archive import grants, keyfiles, members, numbering
from vault.archive.grants import (MAX_GRANT_HOURS, _digest, _fact, _grant_rel, _req_rel, _request, _write_grant_key, grant_key_rel,
                                  list_grants, status)
from vault.archive.manifests import load_manifest, read_table, resolve
from vault.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from vault.i18n import N_
from vault.store import ids, make_dir, records

if TYPE_CHECKING:
    from vault.archive.vault import Actor



def create_request(actor: Actor, kind: str, target: str | None, purpose: str, *, customer: str | None = None) -> str:
    """File a consultation (``access``) or copy (``copy``) request; returns its number.

    A consultation may name the customer instead of the archive number [R-3.4.1]: ``customer`` is
    sealed to the archive ring (which resolves it when granting) and the requester's department
    heads (who approve it); ``target`` and ``dossier`` stay empty until the grant resolves it.
    """
    actor.require("request.create", number=target)
    v = actor.vault
    if not purpose.strip():
        raise InputError(N_("a request needs a purpose [R-3.4.1]"), param="purpose")
    if customer is not None:
        if kind != "access" or target or not customer.strip():
            raise InputError(N_("a request names either an archive number or a customer's name"),
                             param="request_target")
        target, dossier_id = "", ""
    else:
        dossier_id = resolve(v, target or "")
        m = load_manifest(v, dossier_id)
        if m.status == DossierStatus.DESTROYED:
            actor.audit(f"request.{kind}", outcome="refused", number=target)
            raise ConflictError(N_("dossier {number} has been destroyed"), hint=N_("nothing left to consult"), number=m.number)
        if "/" in (target or ""):
            m.require_document(target or "")
    mem = members.all_members(v)
    dept = mem[actor.name]["dept"]
    # The purpose is sealed to the requester and to whoever may decide an access request of their department.
    heads = [n for n, r in mem.items() if "dept-head" in r["roles"] and r["dept"] == dept and r["status"] == "active"]
    with v.lock(exclusive=True):
        no = numbering.next_number(v, "R")
        rec = {"format": 1, "number": no, "kind": kind, "target": target, "dossier": dossier_id,
               "requester": actor.name, "dept": dept, "created_at": actor.clock.stamp(),
               "purpose": members.seal_text(v, purpose, [actor.name, *heads], mem)}
        if customer is not None:
            rec["customer"] = members.seal_text(v, customer.strip(), heads, mem)
        subject = None
        if kind == "access" and "dept-head" in actor.roles:
            # No one approves their own request: a head's own goes up to the role the policy names,
            # and the history binds that role, so a typed field cannot pick the decider.
            rec["approver_role"] = v.policy.head_request_approver()
            subject = {"approver_role": rec["approver_role"]}
        make_dir((v.root / "requests"))
        actor.commit(f"request.{kind}", {_req_rel(no): records.dump_toml(actor.sign(rec))}, number=target or None,
                     ref=no, obj=dossier_id or None, subject=subject)
    return no


def decide(actor: Actor, no: str, *, approve: bool, reason: str | None = None) -> dict[str, Any]:
    """Approve or deny a request: access by a department head of the requester's department, copy
    by the archive head; never by the requester."""
    v = actor.vault
    ids.request_no(no)
    fact, req = _request(v, no)
    action = "request.approve-access" if fact["kind"] == "access" else "request.approve-copy"
    verb = "approve" if approve else "deny"
    actor.require(action, number=fact["target"] or None)
    if fact["by"] == actor.name:
        actor.audit(f"request.{verb}", outcome="refused", number=fact["target"] or None, ref=no)
        raise PermissionDeniedError(N_("you cannot decide your own request"), hint=N_("another approver must decide it"))
    if fact.get("approver_role") and fact["approver_role"] not in actor.roles:
        actor.audit(f"request.{verb}", outcome="refused", number=fact["target"] or None, ref=no)
        raise PermissionDeniedError(N_("request {no} is a department head's own: a {approver_role} decides it"),
                                    hint=N_("see [requests] in 'vault policy show'"), no=no, approver_role=fact['approver_role'])
    if fact["kind"] == "access" and not fact.get("approver_role") \
            and members.all_members(v)[actor.name]["dept"] != fact["dept"]:
        actor.audit(f"request.{verb}", outcome="refused", number=fact["target"] or None, ref=no)
        raise PermissionDeniedError(N_("request {no} is from department {dept}, not yours"),
                                    hint=N_("the head of the requester's department decides it"), no=no, dept=fact['dept'])
    if not approve and not (reason or "").strip():
        raise InputError(N_("a denial needs a reason"), param="reason")
    with v.lock(exclusive=True):
        if _fact(v, "requests", no, "request")["decision"] is not None:
            raise ConflictError(N_("request {no} has already been decided"), no=no)
        dec = {"format": 1, "request": no, "request_sha256": _digest(req),
               "decision": "approved" if approve else "denied", "by": actor.name, "at": actor.clock.stamp()}
        if reason:
            dec["reason"] = members.seal_text(v, reason, [fact["by"], actor.name])
        actor.commit(f"request.{verb}", {_req_rel(no, ".decision"): records.dump_toml(actor.sign(dec))},
                     number=fact["target"] or None, ref=no, obj=no)
    return status(v, no)


def grant(actor: Actor, no: str, *, hours: int = 24, resolved: tuple[str, str] | None = None) -> str:
    """Release the dossier's keys to the requester of an approved access request until expiry.

    :param resolved: for a request by customer name, the (dossier id, archive number) the granting
        archivist resolved it to (``vault.office.find.resolve_customer``); committed, signed, as
        ``requests/<R>.resolution.toml`` in the grant's own history entry.
    """
    actor.require("grant.manage")
    v = actor.vault
    ids.request_no(no)
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise InputError(N_("hours must be between 1 and {MAX_GRANT_HOURS}"), param="hours", MAX_GRANT_HOURS=MAX_GRANT_HOURS)
    # Every decision is made under the exclusive lock, on the state as it is then: two archivists
    # granting one approval at once must not both see it "approved" (one approval, at most one
    # grant), and a requester removed meanwhile must get no key release.
    with v.lock(exclusive=True):
        st = status(v, no)
        fact, req = _request(v, no)
        if st["state"] == "granted" and grants.reissue_releases(actor, only=st["grant"]):
            return st["grant"]  # a grant stopped after its entry: its release is written now
        if fact["kind"] != "access":
            raise ConflictError(N_("{no} is a copy request; copies are made with 'vault doc export'"), no=no)
        if st["state"] != "approved":
            actor.audit("grant.create", outcome="refused", number=fact["target"] or None, ref=no)
            raise ConflictError(N_("request {no} is {state}, not approved"), hint=N_("a department head must approve it first"), no=no, state=st['state'])
        mem = members.all_members(v)
        grantee = mem.get(fact["by"])
        if grantee is None or grantee["status"] != "active":
            raise ConflictError(N_("requester {by} is no longer a member"), by=fact['by'])
        dec = grants.decision(v, no)
        dossier_id, target = fact["dossier"], fact["target"]
        if req.by_name:
            if resolved is None:
                raise ConflictError(N_("request {no} names a customer, not a dossier"),
                                    hint=N_("'vault grant {no}' resolves the name through the search index"), no=no)
            dossier_id, target = resolved
        elif resolved is not None:
            raise InputError(N_("request {no} names its dossier already"), no=no)
        m = load_manifest(v, dossier_id)
        if m.status == DossierStatus.DESTROYED:
            actor.audit("grant.create", outcome="refused", number=m.number, ref=no)
            raise ConflictError(N_("dossier {number} has been destroyed"), hint=N_("nothing left to consult"),
                                number=m.number)
        files: dict[str, bytes | None] = {}
        if req.by_name:
            files[_req_rel(no, ".resolution")] = records.dump_toml(actor.sign(
                {"format": 1, "request": no, "request_sha256": _digest(req), "dossier": dossier_id,
                 "number": target, "by": actor.name, "at": actor.clock.stamp()}))
        gno = numbering.next_number(v, "G")
        now = actor.clock.now()
        rec = {"format": 1, "number": gno, "request": no, "dossier": dossier_id, "target": target,
               "grantee": fact["by"], "granted_at": actor.clock.stamp(),
               "expires_at": (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "approval_sha256": _digest(dec)}
        table = read_table(v, dossier_id, actor.read_identities())
        make_dir(v.root / "grants")
        files[_grant_rel(gno)] = records.dump_toml(actor.sign(rec))
        actor.commit("grant.create", files, number=target, ref=gno, obj=no)
        # The key release only once the grant counts, so that none exists (even staged) that no
        # grant names; committed, named by hash, by its own entry (a stop between the two is
        # noted by 'check' and finished by the retry or 'vault repair').
        _write_grant_key(v, rec, table, mem)
        actor.commit("grant.reissue", {}, number=target, obj=gno)
    return gno


def _close(actor: Actor, g: dict[str, Any], reason: str) -> None:
    v = actor.vault
    rec = actor.sign({"format": 1, "grant": g["number"], "reason": reason, "by": actor.name, "at": actor.clock.stamp()})
    files: dict[str, bytes | None] = {_grant_rel(g["number"], ".closed"): records.dump_toml(rec)}
    release = grant_key_rel(g["dossier"], g["number"])
    if keyfiles.exists(v, release):
        files[release] = None  # the key release goes with the closing, in the same entry
    actor.commit(f"grant.{'revoke' if reason == 'revoked' else 'sweep'}", files, number=g["target"],
                 ref=g["number"], obj=g["number"])


def revoke(actor: Actor, gno: str) -> None:
    """End a grant now: its key release is deleted."""
    actor.require("grant.manage")
    v = actor.vault
    ids.grant_no(gno)
    with v.lock(exclusive=True):
        g = next((x for x in list_grants(v) if x["number"] == gno), None)
        if g is None:
            raise NotFoundError(N_("no grant {gno}"), gno=gno)
        if g["state"] in ("revoked", "expired-swept"):
            raise ConflictError(N_("grant {gno} is already closed"), gno=gno)
        _close(actor, g, "revoked")


def sweep(actor: Actor) -> list[str]:
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
