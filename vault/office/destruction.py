"""Destruction by procedure: request, approval by another supervisor, crypto-shredding, certificate [R-3.3.2].

Executing a destruction removes the destroyed keys from the key table (re-encrypted with a fresh
file key; the whole table for a dossier), overwrites and deletes the ciphertext, leaves a ghost in
the manifest, removes the mirrored key tables from every backup target the vault has used, and
writes a certificate signed by the executing supervisor.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from vault import backup
from vault.archive import destructions, grants, keyfiles, members, numbering, schedule, searchwrite
from vault.archive.destructionrecords import Destruction, DestructionApproval
from vault.archive.holds import held_dossiers
from vault.archive.states import DossierStatus
from vault.archive.manifests import load_manifest, manifest_file, read_table, resolve
from vault.backup.mirror import DEFAULT_WINDOW
from vault.errors import ConflictError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.i18n import Message, N_
from vault.store import fsync_dir, make_dir, records, remove, seam

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

GHOST_KEYS = ("number", "id", "category", "date", "original", "version", "added_at", "added_by", "size",
              "sha256", "replaces", "superseded_by", "events", "status", "destroyed")



def _targets(v: Vault, target: str, dossier_id: str | None = None) -> tuple[dict, list[dict]]:
    """The manifest and the live documents a target (NO or DOCNO) covers; with ``dossier_id`` (a
    request's permanent id) the target is never re-resolved through the index."""
    m = load_manifest(v, dossier_id or resolve(v, target))
    if m["number"] != target.split("/")[0]:
        raise IntegrityError(N_("destruction target {target} is not in dossier {number}"), target=target, number=m['number'])
    if m["status"] == "destroyed":
        raise ConflictError(N_("dossier {number} has already been destroyed"), number=m['number'])
    live = [d for d in m["documents"] if d.get("status") != "destroyed"]
    if "/" in target:
        live = [d for d in live if d["number"] == target]
        if not live:
            raise NotFoundError(N_("no live document {target}"), target=target)
    return m, live


def request(actor: Actor, target: str, reason: str) -> str:
    """Ask for a dossier or a document to be destroyed; returns the destruction number."""
    actor.require("destroy.request", number=target)
    if not reason.strip():
        raise InputError(N_("a destruction request needs a reason"), param="reason")
    v = actor.vault
    m, _ = _targets(v, target)
    with v.lock(exclusive=True):
        no = numbering.next_number(v, "D")
        make_dir(v.root / "destructions")
        sealed = members.seal_text(v, reason, [actor.name])
        rec = actor.sign({"format": 1, "number": no, "target": target, "dossier": m["id"], "requested_by": actor.name,
                          "requested_at": actor.clock.stamp(), "reason": sealed})
        actor.commit("destroy.request", {destructions.rel(no): records.dump_toml(rec)}, number=target, ref=no, obj=m["id"])
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
        m, docs = _targets(v, req.target, req.dossier)
    except (ConflictError, NotFoundError) as e:
        return [e.message]
    out: list[str] = []
    if m["id"] in held_dossiers(v):
        out.append(Message(N_("dossier {number} is under a legal hold: execution will be refused until it is lifted"),
                           number=m["number"]))
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


def _refuse(actor: Actor, req: Destruction, no: str, message: str, hint: str, **params: Any) -> None:
    actor.audit("destroy.execute", outcome="refused", number=req.target, ref=no)
    raise ConflictError(message, hint=hint, no=no, **params)


def execute(actor: Actor, no: str) -> dict[str, Any]:
    """Crypto-shred what the approved request names; returns the signed certificate.

    Execution is a journal of idempotent steps (``STEPS``): the plan is signed into
    ``destructions/<no>.execution.toml`` before anything is destroyed, and each step is recorded
    there when it is done. A run that fails or is killed between (or inside) steps leaves a state
    the next ``destroy execute`` resumes from, and ``vault check`` names it until then.
    """
    actor.require("destroy.execute")
    v = actor.vault
    req = destructions.request(v, no)
    closed = destructions.closed(v, no, req)
    if closed is not None:
        _refuse(actor, req, no, N_("destruction {no} was cancelled by {by}") if closed.outcome == "cancelled"
                else N_("destruction {no} was denied by {by}"),
                N_("file a new destruction request if it is still wanted"), by=closed.by)
    appr = _approval(actor, req, no)
    with v.lock(exclusive=True):
        run = destructions.journal(v, no, req)
        if run is None:
            if destructions.fact(v, no)["state"] == "executed":
                raise ConflictError(N_("destruction {no} has already been executed"),
                                    hint=N_("see 'vault destroy certificate {no}'"), no=no)
            closed = destructions.closed(v, no, req)
            if closed is not None:
                _refuse(actor, req, no, N_("destruction {no} was cancelled by {by}") if closed.outcome == "cancelled"
                        else N_("destruction {no} was denied by {by}"),
                        N_("file a new destruction request if it is still wanted"), by=closed.by)
            run = _plan(actor, req, appr, no)
        elif "audit" in run["steps"]:
            raise ConflictError(N_("destruction {no} has already been executed"), hint=N_("see 'vault destroy certificate {no}'"), no=no)
        for step in destructions.STEPS:
            if step not in run["steps"]:
                run.update(_STEP_FNS[step](actor, run, req, appr) or {})
                _checkpoint(step)
                run["steps"].append(step)
                run = destructions.record_journal(actor, run)
                _checkpoint(f"{step}:recorded")
    return destructions.certificate(v, no)


#: A test seam: called with a step name when the step's work is done and again (``<step>:recorded``)
#: when the journal says so. Production code never sets it; tests kill the process there.
_interrupt: Any = None


def _checkpoint(where: str) -> None:
    if _interrupt is not None:
        _interrupt(where)


def _approval(actor: Actor, req: Destruction, no: str) -> DestructionApproval:
    v = actor.vault
    # Only a supervisor other than the requester approves: the history's rule for the
    # destroy.approve entry; an approval written straight into the directory approves nothing.
    if destructions.fact(v, no)["state"] not in ("approved", "executing", "executed"):
        _refuse(actor, req, no, N_("destruction {no} is not approved"), N_("a supervisor other than the requester approves it"))
    appr = destructions.approval(v, no)
    if appr.request_sha256 != destructions.request_sha256(req):
        raise IntegrityError(N_("destructions/{no}.approval.toml approves another version of the request"), no=no)
    return appr


def _plan(actor: Actor, req: Destruction, appr: DestructionApproval, no: str) -> dict[str, Any]:
    """Check the hold and retention, then sign the plan: what will be destroyed, before any of it is."""
    v = actor.vault
    m, docs = _targets(v, req.target, req.dossier)
    if m["id"] in held_dossiers(v):
        _refuse(actor, req, no, N_("dossier {number} is under a legal hold"), N_("lift the hold first ('vault hold remove')"),
                number=m["number"])
    sched = [schedule.schedule(m, d, v.policy.data, today=v.clock.today()) for d in docs]
    early = [s["number"] for s in sched if s["status"] != "due"]
    if early and appr.override_retention is None:
        _refuse(actor, req, no, N_("retention has not ended for {numbers}"),
                N_("wait until 'vault retention report --due' lists it, or approve with --override-retention REASON"),
                numbers=", ".join(early[:3]) + (" …" if len(early) > 3 else ""))
    run = {"format": 1, "destruction": no, "target": req.target, "dossier": m["id"], "dossier_number": m["number"],
           "whole_dossier": "/" not in req.target, "started_at": actor.clock.stamp(), "started_by": actor.name,
           "documents": [{k: d[k] for k in ("number", "id", "key", "meta_key", "sha256", "size")} for d in docs],
           "grant_keys": sorted(r.rsplit("/", 1)[1] for r in keyfiles.listing(v, f"keys/grants/{m['id']}.")),
           "retention": [{k: s[k] for k in ("number", "rule", "event", "event_date", "until", "status")
                          if s.get(k) is not None} for s in sched],
           "retention_overridden": bool(early), "steps": []}
    make_dir(v.root / "destructions")
    run = destructions.record_journal(actor, run, "destroy.start")
    _checkpoint("planned")
    return run


def _step_unindex(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> None:
    if run["whole_dossier"]:
        searchwrite.forget(actor, run["dossier"])  # rotates the index key: keys/_index.age is shredded offsite


def _step_keys(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> None:
    """Keys leave the key table first: from this instant nothing destroyed can be decrypted here."""
    v = actor.vault
    if run["whole_dossier"]:
        # Deleted by the step's own entry (``keyfiles``): from its commit on, no table opens them.
        for rel in [f"keys/{run['dossier']}.age", *(f"keys/grants/{g}" for g in run["grant_keys"])]:
            if keyfiles.exists(v, rel):
                keyfiles.stage(v, rel, None)
        return
    table = read_table(v, run["dossier"], actor.read_identities())
    gone = {d["key"] for d in run["documents"]} | {d["meta_key"] for d in run["documents"]}
    if gone & set(table.keys):
        for k in gone:
            table.keys.pop(k, None)
        grants.save_keys(actor, run["dossier"], table)
    else:
        grants.refresh_grant_keys(actor, run["dossier"], table)


def _step_ciphertext(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> None:
    """Overwrite, then delete the ciphertext (media that do not overwrite in place: see SECURITY.md)."""
    v = actor.vault
    for d in run["documents"]:
        p = v.layout.document(run["dossier"], d["id"])
        if p.exists():
            seam.step("overwrite", p)
            with open(p, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                while f.tell() < size:
                    f.write(os.urandom(min(1 << 20, size - f.tell())))
                f.flush()
                seam.step("fsync", p)
                os.fsync(f.fileno())
            remove(p)
    docdir = v.layout.dossier_dir(run["dossier"]) / "documents"
    if docdir.is_dir():  # a dossier that never had a document has no documents/ directory
        fsync_dir(docdir)


def _step_manifest(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> dict[str, Any]:
    """The manifest keeps ghosts: numbers, categories, dates, the rule, the approvals; no customer data."""
    v = actor.vault
    no = run["destruction"]
    m = load_manifest(v, run["dossier"])
    wanted = {d["number"] for d in run["documents"]}
    docs = [d for d in m["documents"] if d["number"] in wanted]
    if all(d.get("destroyed", {}).get("certificate") == no for d in docs) \
            and (not run["whole_dossier"] or m["status"] == "destroyed"):
        return {"manifest_revision": m["revision"], "executed_at": docs[0]["destroyed"]["at"] if docs else
                m.get("updated_at", actor.clock.stamp())}
    stamp = actor.clock.stamp()
    for d in docs:
        ghost = {k: d[k] for k in GHOST_KEYS if k in d}
        ghost.update(status="destroyed", destroyed={"at": stamp, "certificate": no})
        d.clear()
        d.update(ghost)
    if run["whole_dossier"]:
        m["status"] = DossierStatus.DESTROYED
        for p in m["profile"]:
            p.pop("sealed", None)
    m["revision"] += 1
    # The entry that turns the manifest to ghosts is the destruction's own (destroy.execute).
    actor.commit("destroy.execute", manifest_file(actor, m), number=req.target, ref=no, obj=no,
                 rev=m["revision"])
    return {"manifest_revision": m["revision"], "executed_at": stamp}


def _step_offsite(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> dict[str, Any]:
    """Offsite: the mirrored key tables leave every backup target the vault has used."""
    key_paths = [f"keys/{run['dossier']}.age", *(f"keys/grants/{g}" for g in run["grant_keys"])]
    if run["whole_dossier"]:
        key_paths.append("keys/_index.age")  # its old generations open the index files the dossier was in
    return {"offsite": _offsite(actor.vault, key_paths, run["whole_dossier"])}


def _step_certificate(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> None:
    v = actor.vault
    no = run["destruction"]
    if destructions.fact(v, no).get("certificate") is not None:
        return
    cert = {"format": 1, "dossier_number": run["dossier_number"],
            "destroyed": [{k: d[k] for k in ("number", "sha256", "size")} for d in run["documents"]],
            "whole_dossier": run["whole_dossier"], "manifest_revision": run["manifest_revision"],
            "executed_at": run["executed_at"], "executed_by": actor.name, **run["offsite"],
            "destruction": no, "target": req.target, "requested_by": req.requested_by,
            "requested_at": req.requested_at, "approved_by": appr.by, "approved_at": appr.at,
            "retention": run["retention"], "retention_overridden": run["retention_overridden"],
            "hold_checked_at": run["started_at"], "held": False}
    actor.commit("destroy.certify", {destructions.rel(no, ".certificate"): records.dump_toml(actor.sign(cert))},
                 number=req.target, ref=no, obj=no)


def _step_audit(actor: Actor, run: dict[str, Any], req: Destruction, appr: DestructionApproval) -> None:
    """Nothing left to write: the manifest step's destroy.execute entry is the audit entry, and the
    journal's closing entry (recorded after this step) marks the execution finished."""


_STEP_FNS = {"unindex": _step_unindex, "keys": _step_keys, "ciphertext": _step_ciphertext,
             "manifest": _step_manifest, "offsite": _step_offsite, "certificate": _step_certificate,
             "audit": _step_audit}


def _offsite(v: Vault, key_paths: list[str], whole: bool) -> dict[str, Any]:
    # With ``current``, a table that still exists (a partly destroyed dossier's, the rotated index
    # key) is mirrored again; a deleted one is not.
    reports = [backup.shred_keys(url, key_paths, current=v).as_dict()
               for url in backup.known_targets(v)]
    now = v.clock.now()
    worst = now if all(r["reached"] for r in reports) else now + DEFAULT_WINDOW
    return {"backup_targets": reports,
            "undecryptable_from_backups_after": worst.strftime("%Y-%m-%dT%H:%M:%SZ")}


