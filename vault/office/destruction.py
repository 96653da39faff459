"""Destruction by procedure: request, approval by another supervisor, crypto-shredding, certificate [R-3.3.2].

Executing a destruction removes the destroyed keys from the key table (re-encrypted with a fresh
file key; the whole table for a dossier), overwrites and deletes the ciphertext, leaves a ghost in
the manifest, removes the mirrored key tables from every backup target the vault has used, and
writes a certificate signed by the executing supervisor.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any


from vault.archive import schedule

from vault.archive import grants
from vault import clock
from vault.store import ids, index, records
from vault.archive import members, searchindex
from vault.archive.manifests import load_manifest, resolve, write_manifest
from vault.errors import ConflictError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.archive.holds import held_dossiers
from vault.store.keytable import read_key_table
from vault.store import fsync_dir
from vault import backup
from vault.backup.mirror import DEFAULT_WINDOW
from vault.archive import trust

GHOST_KEYS = ("number", "id", "category", "date", "original", "version", "added_at", "added_by", "size",
              "sha256", "replaces", "superseded_by", "events", "status", "destroyed")


def _path(v, no: str, suffix: str = ""):
    return v.layout.destruction(no, suffix)


def _load(v, no: str, suffix: str = "") -> dict[str, Any]:
    ids.destruction_no(no)
    p = _path(v, no, suffix)
    if not p.exists():
        raise NotFoundError(f"no destruction {no}{' ' + suffix.strip('.') if suffix else ''}")
    schema = {"": "destruction", ".approval": "approval", ".certificate": "certificate"}[suffix]
    rec = records.load_toml(p, schema=schema, what=f"destructions/{p.name}")
    members.verify_by_member(v, rec, what=f"destructions/{p.name}")
    return rec


def _targets(v, target: str) -> tuple[dict, list[dict]]:
    """The manifest and the live documents a target (NO or DOCNO) covers."""
    m = load_manifest(v, resolve(v, target))
    if m["status"] == "destroyed":
        raise ConflictError(f"dossier {m['number']} has already been destroyed")
    live = [d for d in m["documents"] if d.get("status") != "destroyed"]
    if "/" in target:
        live = [d for d in live if d["number"] == target]
        if not live:
            raise NotFoundError(f"no live document {target}")
    return m, live


def request(actor, target: str, reason: str) -> str:
    """Ask for a dossier or a document to be destroyed; returns the destruction number."""
    actor.require("destroy.request", number=target)
    if not reason.strip():
        raise InputError("a destruction request needs a reason", param="reason")
    v = actor.vault
    m, _ = _targets(v, target)
    with v.lock(exclusive=True):
        no = f"D-{index.next_sequence(v.root, 'destructions'):06d}"
        (v.root / "destructions").mkdir(mode=0o700, exist_ok=True)
        sealed = members.seal_text(v, reason, [actor.name])
        records.write_toml(_path(v, no), actor.sign(
            {"format": 1, "number": no, "target": target, "dossier": m["id"], "requested_by": actor.name,
             "requested_at": clock.stamp(), "reason": sealed}))
        actor.audit("destroy.request", number=target, ref=no)
    return no


def approve(actor, no: str, *, override_retention: str | None = None) -> None:
    """Approve a destruction: a supervisor other than the requester. An approval may override an
    unfinished retention period only by saying why."""
    actor.require("destroy.approve")
    v = actor.vault
    req = _load(v, no)
    if req["requested_by"] == actor.name:
        actor.audit("destroy.approve", outcome="refused", number=req["target"], ref=no)
        raise PermissionDeniedError("you cannot approve your own destruction request",
                                    hint="another supervisor must approve it")
    with v.lock(exclusive=True):
        if _path(v, no, ".approval").exists():
            raise ConflictError(f"destruction {no} is already approved")
        rec = {"format": 1, "destruction": no, "request_sha256": hashlib.sha256(records.canonical(req)).hexdigest(),
               "by": actor.name, "at": clock.stamp()}
        if override_retention:
            rec["override_retention"] = members.seal_text(v, override_retention, [actor.name])
        records.write_toml(_path(v, no, ".approval"), actor.sign(rec))
        actor.audit("destroy.approve", number=req["target"], ref=no)


def _refuse(actor, req, no: str, message: str, hint: str) -> None:
    actor.audit("destroy.execute", outcome="refused", number=req["target"], ref=no)
    raise ConflictError(message, hint=hint)


def execute(actor, no: str) -> dict[str, Any]:
    """Crypto-shred what the approved request names; returns the signed certificate."""
    actor.require("destroy.execute")
    v = actor.vault
    req = _load(v, no)
    if _path(v, no, ".certificate").exists():
        raise ConflictError(f"destruction {no} has already been executed", hint=f"see 'vault destroy certificate {no}'")
    try:
        appr = _load(v, no, ".approval")
    except NotFoundError:
        _refuse(actor, req, no, f"destruction {no} is not approved", "a supervisor other than the requester approves it")
    if appr["request_sha256"] != hashlib.sha256(records.canonical(req)).hexdigest():
        raise IntegrityError(f"destructions/{no}.approval.toml approves another version of the request")
    approver = members.all_members(v)[appr["signature"]["by"]]
    if not trust.may_sign("destruction-approval", approver, requester=req["requested_by"]) \
            or approver["name"] != appr["by"]:
        # Only a supervisor other than the requester approves; a record signed by anyone
        # else, written straight into the directory, approves nothing.
        raise IntegrityError(f"destructions/{no}.approval.toml: not signed by a supervisor other than the requester")
    with v.lock(exclusive=True):
        m, docs = _targets(v, req["target"])
        if m["id"] in held_dossiers(v):
            _refuse(actor, req, no, f"dossier {m['number']} is under a legal hold", "lift the hold first ('vault hold remove')")
        sched = [schedule.schedule(m, d, v.policy.data) for d in docs]
        early = [s["number"] for s in sched if s["status"] != "due"]
        if early and "override_retention" not in appr:
            _refuse(actor, req, no, f"retention has not ended for {', '.join(early[:3])}{' …' if len(early) > 3 else ''}",
                    "wait until 'vault retention report --due' lists it, or approve with --override-retention REASON")
        whole = "/" not in req["target"]
        cert = _shred(actor, m, docs, whole=whole, no=no)
        cert.update(destruction=no, target=req["target"], requested_by=req["requested_by"],
                    requested_at=req["requested_at"], approved_by=appr["by"], approved_at=appr["at"],
                    retention=[{k: s[k] for k in ("number", "rule", "event", "event_date", "until", "status")
                                if s.get(k) is not None} for s in sched],
                    retention_overridden=bool(early), hold_checked_at=clock.stamp(), held=False)
        signed = actor.sign({"format": 1, **cert})
        records.write_toml(_path(v, no, ".certificate"), signed)
        actor.audit("destroy.execute", number=req["target"], ref=no, rev=cert["manifest_revision"])
    return signed


def _shred(actor, m: dict, docs: list[dict], *, whole: bool, no: str) -> dict[str, Any]:
    v = actor.vault
    kt_path = v.layout.key_table(m["id"])
    table = read_key_table(kt_path, actor.read_identities(), dossier=m["id"])
    gone = {d["key"] for d in docs} | {d["meta_key"] for d in docs}
    if whole:
        searchindex.forget(actor, m["id"])  # rotates the index key: keys/_index.age is shredded offsite below
        gone |= set(table.keys)
    # 1. Keys leave the key table first: from this instant nothing destroyed can be decrypted here.
    grant_files = sorted((v.root / "keys" / "grants").glob(f"{m['id']}.*.age")) if (v.root / "keys" / "grants").is_dir() else []
    if whole:
        os.unlink(kt_path)
        for g in grant_files:
            os.unlink(g)
        fsync_dir(kt_path.parent)
    else:
        for k in gone:
            table.keys.pop(k, None)
        grants.save_keys(actor, m["id"], table)
    # 2. Overwrite, then delete the ciphertext (media that do not overwrite in place: see SECURITY.md).
    destroyed = []
    for d in docs:
        p = v.layout.document(m["id"], d["id"])
        if p.exists():
            with open(p, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                while f.tell() < size:
                    f.write(os.urandom(min(1 << 20, size - f.tell())))
                f.flush()
                os.fsync(f.fileno())
            os.unlink(p)
        destroyed.append({"number": d["number"], "sha256": d["sha256"], "size": d["size"]})
    if (v.layout.dossier_dir(m["id"]) / "documents").is_dir():  # a dossier may have no document yet
        fsync_dir(v.layout.dossier_dir(m["id"]) / "documents")
    # 3. The manifest keeps ghosts: numbers, categories, dates, the rule, the approvals; no customer data.
    stamp = clock.stamp()
    for d in docs:
        ghost = {k: d[k] for k in GHOST_KEYS if k in d}
        ghost.update(status="destroyed", destroyed={"at": stamp, "certificate": no})
        d.clear()
        d.update(ghost)
    if whole:
        m["status"] = "destroyed"
        for p in m["profile"]:
            p.pop("sealed", None)
    m["revision"] += 1
    write_manifest(actor, m)
    # 4. Offsite: the mirrored key tables leave every backup target the vault has used.
    key_paths = [f"keys/{m['id']}.age", *(f"keys/grants/{g.name}" for g in grant_files)]
    if whole:
        key_paths.append("keys/_index.age")  # its old generations open the index files the dossier was in
    return {"dossier_number": m["number"], "destroyed": destroyed, "whole_dossier": whole,
            "manifest_revision": m["revision"], "executed_at": stamp, "executed_by": actor.name,
            **_offsite(v, key_paths, whole)}


def _offsite(v, key_paths: list[str], whole: bool) -> dict[str, Any]:
    # With ``current``, a table that still exists (a partly destroyed dossier's, the rotated index
    # key) is mirrored again; a deleted one is not.
    reports = [backup.shred_keys(url, key_paths, current=v).as_dict()
               for url in backup.known_targets(v)]
    now = clock.now()
    worst = now if all(r["reached"] for r in reports) else now + DEFAULT_WINDOW
    return {"backup_targets": reports,
            "undecryptable_from_backups_after": worst.strftime("%Y-%m-%dT%H:%M:%SZ")}


def certificate(v, no: str) -> dict[str, Any]:
    """The signed certificate of an executed destruction (signature verified)."""
    cert = _load(v, no, ".certificate")
    signer = members.all_members(v)[cert["signature"]["by"]]
    if not trust.may_sign("destruction-certificate", signer):
        raise IntegrityError(f"destructions/{no}.certificate.toml: not signed by a supervisor")
    return cert


def list_destructions(v) -> list[dict[str, Any]]:
    d = v.root / "destructions"
    rows = []
    for p in sorted(d.glob("D-*.toml")) if d.is_dir() else []:
        if "." in p.stem:
            continue
        req = _load(v, p.stem)
        state = ("executed" if _path(v, p.stem, ".certificate").exists()
                 else "approved" if _path(v, p.stem, ".approval").exists() else "requested")
        rows.append({"number": p.stem, "target": req["target"], "requested_by": req["requested_by"], "state": state})
    return rows
