"""Destruction by procedure: request, approval by another supervisor, cancel or deny, show [R-3.3.2].

Executing an approved destruction (the crypto-shredding and its certificate) is
``vault.office.destroyexec``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault.archive import destructions, members, numbering, schedule
from vault.archive.destructionrecords import Destruction
from vault.archive.holds import held_dossiers
from vault.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from vault.i18n import Message, N_
from vault.store import make_dir, records

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

def request(actor: Actor, target: str, reason: str) -> str:
    """Ask for a dossier or a document to be destroyed; returns the destruction number."""
    actor.require("destroy.request", number=target)
    if not reason.strip():
        raise InputError(N_("a destruction request needs a reason"), param="reason")
    v = actor.vault
    m, _ = destructions.targets(v, target)
    with v.lock(exclusive=True):
        no = numbering.next_number(v, "D")
        make_dir(v.root / "destructions")
        sealed = members.seal_text(v, reason, [actor.name])
        rec = actor.sign({"format": 1, "number": no, "target": target, "dossier": m.id, "requested_by": actor.name,
                          "requested_at": actor.clock.stamp(), "reason": sealed})
        actor.commit("destroy.request", {destructions.rel(no): records.dump_toml(rec)}, number=target, ref=no, obj=m.id)
    return no


def approve(actor: Actor, no: str, *, override_retention: str | None = None) -> list[str]:
    """Approve a destruction: a supervisor other than the requester. An approval may override an
    unfinished retention period only by saying why.

    Returns warnings: what would make ``execute`` refuse today (a legal hold, or retention not
    ended without an override), so the approver can cancel, deny or wait instead of approving
    something that cannot run.
    """
    actor.require("destroy.approve")
    v = actor.vault
    req = destructions.request(v, no)
    if destructions.fact(v, no)["by"] == actor.name:
        actor.audit("destroy.approve", outcome="refused", number=req.target, ref=no)
        raise PermissionDeniedError(N_("you cannot approve your own destruction request"),
                                    hint=N_("another supervisor must approve it"))
    with v.lock(exclusive=True):
        destructions.refuse_closed(v, no)
        if destructions.fact(v, no)["state"] != "requested":
            raise ConflictError(N_("destruction {no} is already {state}"), no=no, state=destructions.fact(v, no)['state'])
        warnings = _obstacles(v, req, override=bool(override_retention))
        rec = {"format": 1, "destruction": no, "request_sha256": destructions.request_sha256(req),
               "by": actor.name, "at": actor.clock.stamp()}
        if override_retention:
            rec["override_retention"] = members.seal_text(v, override_retention, [actor.name])
        actor.commit("destroy.approve", {destructions.rel(no, ".approval"): records.dump_toml(actor.sign(rec))},
                     number=req.target, ref=no, obj=no)
    return warnings


def _obstacles(v: Vault, req: Destruction, *, override: bool) -> list[str]:
    """Why an execution would be refused today, in words (empty when it would run)."""
    try:
        m, docs = destructions.targets(v, req.target, req.dossier)
    except (ConflictError, NotFoundError) as e:
        return [e.message]
    out: list[str] = []
    if m.id in held_dossiers(v):
        out.append(Message(N_("dossier {number} is under a legal hold: execution will be refused until it is lifted"),
                           number=m.number))
    early = [s for s in (schedule.schedule(m, d, v.policy.data, today=v.clock.today()) for d in docs) if s["status"] != "due"]
    if early and not override:
        numbers = ", ".join(s["number"] for s in early[:3]) + (" …" if len(early) > 3 else "")
        if all(s.get("until") for s in early):
            out.append(Message(N_("retention has not ended for {numbers}: execution will be refused until {until}, "
                                  "unless approved with an override"), numbers=numbers,
                               until=max(s["until"] for s in early)))
        else:
            out.append(Message(N_("retention has not ended for {numbers}: execution will be refused until its event "
                                  "is recorded, unless approved with an override"), numbers=numbers))
    return out


def close(actor: Actor, no: str, outcome: str, reason: str) -> None:
    """End a destruction that has not started executing: ``cancelled`` by its requester or a
    supervisor, or ``denied`` by a supervisor other than the requester. The reason is sealed to the
    archive ring, the requester and the closer."""
    assert outcome in ("cancelled", "denied")
    verb = "cancel" if outcome == "cancelled" else "deny"
    v = actor.vault
    req = destructions.request(v, no)
    mine, sup = actor.name == destructions.fact(v, no)["by"], "supervisor" in actor.roles
    if not ((mine or sup) if outcome == "cancelled" else (sup and not mine)):
        actor.audit(f"destroy.{verb}", outcome="refused", number=req.target, ref=no)
        if verb == "cancel":
            raise PermissionDeniedError(N_("you may not cancel destruction {no}"),
                                        hint=N_("its requester or a supervisor cancels it"), no=no)
        raise PermissionDeniedError(
            N_("you may not deny destruction {no}"),
            hint=N_("a supervisor other than the requester denies it; the requester cancels instead"), no=no)
    if not reason.strip():
        raise InputError(N_("cancelling a destruction needs a reason") if verb == "cancel"
                         else N_("denying a destruction needs a reason"), param="reason")
    with v.lock(exclusive=True):
        destructions.refuse_closed(v, no)
        if destructions.fact(v, no)["state"] in ("executing", "executed"):
            actor.audit(f"destroy.{verb}", outcome="refused", number=req.target, ref=no)
            raise ConflictError(N_("destruction {no} has started executing; it can only be finished"),
                                hint=N_("run 'vault destroy execute {no}'"), no=no)
        rec = {"format": 1, "destruction": no, "request_sha256": destructions.request_sha256(req),
               "outcome": outcome, "by": actor.name, "at": actor.clock.stamp(),
               "reason": members.seal_text(v, reason, [req.requested_by, actor.name])}
        actor.commit(f"destroy.{verb}", {destructions.rel(no, ".closed"): records.dump_toml(actor.sign(rec))},
                     number=req.target, ref=no, obj=no)


def show(v: Vault, no: str, actor: Actor | None = None) -> dict[str, Any]:
    """A destruction with its state and its sealed texts (reason, override, closing reason) for the
    members they were sealed to (see ``members.reveal``)."""
    req = destructions.request(v, no)
    row = next(r for r in destructions.list_destructions(v) if r["number"] == no)
    row["requested_at"] = req.requested_at
    texts = {"reason": (req.reason, f"destructions/{no}.toml reason")}
    if destructions.has(v, no, ".approval"):
        appr = destructions.approval(v, no)
        row.update(approved_by=appr.by, approved_at=appr.at)
        if appr.override_retention is not None:
            texts["override_reason"] = (appr.override_retention, f"destructions/{no}.approval.toml override")
        if row["state"] == "approved":
            row["warnings"] = _obstacles(v, req, override=appr.override_retention is not None)
    closed = destructions.closed(v, no, req)
    if closed is not None:
        row.update(closed_by=closed.by, closed_at=closed.at)
        texts["closing_reason"] = (closed.reason, f"destructions/{no}.closed.toml reason")
    if destructions.fact(v, no).get("certificate") is not None:
        cert = destructions.certificate(v, no)
        row.update(executed_by=cert["executed_by"], executed_at=cert["executed_at"],
                   destroyed=[d["number"] for d in cert["destroyed"]])
    members.reveal(actor, texts, row, number=req.target, ref=no)
    return row
