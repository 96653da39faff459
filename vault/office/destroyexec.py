"""Executing a destruction [R-3.3.2]: the signed plan, then each idempotent step of the crypto-shredding.

``execute`` removes the destroyed keys from the key table (re-encrypted with a fresh file key; the
whole table for a dossier), overwrites and deletes the ciphertext, leaves a ghost in the manifest,
removes the mirrored key tables from every backup target the vault has used, and writes a
certificate signed by the executing supervisor. Requests, approvals and closings are
``vault.office.destruction``'s.
"""

from __future__ import annotations

from dataclasses import replace
import contextlib
import os
from typing import TYPE_CHECKING, Any

from vault.archive.manifestrecord import Destroyed
from vault import backup
from vault.archive import destructions, grants, keyfiles, schedule, searchwrite
from vault.archive.destructionrecords import Destruction, DestructionApproval
from vault.archive.holds import held_dossiers
from vault.archive.states import DossierStatus
from vault.archive.manifests import load_manifest, manifest_file, read_table
from vault.backup.mirror import DEFAULT_WINDOW
from vault.errors import ConflictError, IntegrityError
from vault.i18n import N_
from vault.store import NotRegularError, fsync_dir, make_dir, open_regular_to_update, records, remove, seam

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

GHOST_KEYS = ("number", "id", "category", "date", "original", "version", "added_at", "added_by", "size",
              "sha256", "replaces", "superseded_by", "events", "status", "destroyed")


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
    m, docs = destructions.targets(v, req.target, req.dossier)
    if m.id in held_dossiers(v):
        _refuse(actor, req, no, N_("dossier {number} is under a legal hold"), N_("lift the hold first ('vault hold remove')"),
                number=m.number)
    sched = [schedule.schedule(m, d, v.policy.data, today=v.clock.today()) for d in docs]
    early = [s["number"] for s in sched if s["status"] != "due"]
    if early and appr.override_retention is None:
        _refuse(actor, req, no, N_("retention has not ended for {numbers}"),
                N_("wait until 'vault retention report --due' lists it, or approve with --override-retention REASON"),
                numbers=", ".join(early[:3]) + (" …" if len(early) > 3 else ""))
    run = {"format": 1, "destruction": no, "target": req.target, "dossier": m.id, "dossier_number": m.number,
           "whole_dossier": "/" not in req.target, "started_at": actor.clock.stamp(), "started_by": actor.name,
           "documents": [{"number": d.number, "id": d.id, "key": d.key, "meta_key": d.meta_key, "sha256": d.sha256,
                          "size": d.size} for d in docs],
           "grant_keys": sorted(r.rsplit("/", 1)[1] for r in keyfiles.listing(v, f"keys/grants/{m.id}.")),
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
        if os.path.lexists(p):
            seam.step("overwrite", p)
            # Never through a link (it would overwrite what it names) nor into a FIFO: what is no
            # regular file holds none of the document's bytes, and only goes.
            with contextlib.suppress(NotRegularError), open_regular_to_update(p) as f:
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
    docs = [d for d in m.documents if d.number in wanted]
    done = [d.destroyed for d in docs if d.destroyed is not None and d.destroyed.certificate == no]
    if len(done) == len(docs) and (not run["whole_dossier"] or m.status == DossierStatus.DESTROYED):
        return {"manifest_revision": m.revision, "executed_at": done[0].at if done else m.updated_at}
    stamp = actor.clock.stamp()
    # A ghost keeps GHOST_KEYS, in that order: its keys, sealed metadata and shelf are gone.
    gone = Destroyed(at=stamp, certificate=no)
    m = m.with_documents(*(replace(d, key=None, meta_key=None, meta=None, paper_location=None, status="destroyed",
                                   destroyed=gone, keys_=GHOST_KEYS) for d in docs))
    if run["whole_dossier"]:
        m = replace(m, status=DossierStatus.DESTROYED, profile=tuple(replace(p, sealed=None) for p in m.profile))
    m = replace(m, revision=m.revision + 1)
    # The entry that turns the manifest to ghosts is the destruction's own (destroy.execute).
    actor.commit("destroy.execute", manifest_file(actor, m), number=req.target, ref=no, obj=no,
                 rev=m.revision)
    return {"manifest_revision": m.revision, "executed_at": stamp}


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


