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

from vault import clock
from vault.archive import authority, members, searchindex
from vault.office import access, retention
from vault.office.dossier import load_manifest, manifest_file, read_table, resolve, write_table
from vault.errors import ConflictError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.office.holds import held_dossiers
from vault.store import fsync_dir, index, records

GHOST_KEYS = ("number", "id", "category", "date", "original", "version", "added_at", "added_by", "size",
              "sha256", "replaces", "superseded_by", "events", "status", "destroyed")


def _rel(no: str, suffix: str = "") -> str:
    return f"destructions/{no}{suffix}.toml"


def _fact(v, no: str) -> dict[str, Any]:
    f = authority.state(v)["destructions"].get(no)
    if f is None:
        raise NotFoundError(f"no destruction {no}")
    return f


def _load(v, no: str, suffix: str = "") -> dict[str, Any]:
    """A committed destruction record, which must say what its history entry says."""
    f = _fact(v, no)
    rec = authority.load(v, _rel(no, suffix))
    if not suffix and (rec.get("number"), rec.get("dossier"), rec.get("target"), rec.get("requested_by")) != \
            (no, f["dossier"], f["target"], f["by"]):
        raise IntegrityError(f"destructions/{no}.toml: does not say what its history entry says")
    return rec


def _targets(v, dossier_id: str, target: str) -> tuple[dict, list[dict]]:
    """The manifest and the live documents a target (NO or DOCNO) of dossier ``dossier_id`` covers."""
    m = load_manifest(v, dossier_id)
    if m["number"] != target.split("/")[0]:
        raise IntegrityError(f"destruction target {target} is not in dossier {m['number']}")
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
        raise InputError("a destruction request needs a reason", hint="pass --reason TEXT")
    v = actor.vault
    m, _ = _targets(v, resolve(v, target), target)
    with v.lock(exclusive=True):
        no = f"D-{index.next_sequence(v.root, 'destructions'):06d}"
        (v.root / "destructions").mkdir(mode=0o700, exist_ok=True)
        sealed = members.seal_text(v, reason, [actor.name])
        rec = actor.sign({"format": 1, "number": no, "target": target, "dossier": m["id"], "requested_by": actor.name,
                          "requested_at": clock.stamp(), "reason": sealed})
        actor.commit("destroy.request", {_rel(no): records.dump_toml(rec)}, number=target, ref=no, obj=m["id"])
    return no


def approve(actor, no: str, *, override_retention: str | None = None) -> None:
    """Approve a destruction: a supervisor other than the requester. An approval may override an
    unfinished retention period only by saying why."""
    actor.require("destroy.approve")
    v = actor.vault
    req = _load(v, no)
    if _fact(v, no)["by"] == actor.name:
        actor.audit("destroy.approve", outcome="refused", number=req["target"], ref=no)
        raise PermissionDeniedError("you cannot approve your own destruction request",
                                    hint="another supervisor must approve it")
    with v.lock(exclusive=True):
        if _fact(v, no)["state"] != "requested":
            raise ConflictError(f"destruction {no} is already {_fact(v, no)['state']}")
        rec = {"format": 1, "destruction": no, "request_sha256": hashlib.sha256(records.canonical(req)).hexdigest(),
               "by": actor.name, "at": clock.stamp()}
        if override_retention:
            rec["override_retention"] = members.seal_text(v, override_retention, [actor.name])
        actor.commit("destroy.approve", {_rel(no, ".approval"): records.dump_toml(actor.sign(rec))},
                     number=req["target"], ref=no, obj=no)


def _refuse(actor, req, no: str, message: str, hint: str) -> None:
    actor.audit("destroy.execute", outcome="refused", number=req["target"], ref=no)
    raise ConflictError(message, hint=hint)


def execute(actor, no: str) -> dict[str, Any]:
    """Crypto-shred what the approved request names — the dossier by its permanent id, never
    re-resolved through the index — and return the signed certificate."""
    actor.require("destroy.execute")
    v = actor.vault
    req = _load(v, no)
    fact = _fact(v, no)
    if fact["state"] == "executed":
        raise ConflictError(f"destruction {no} has already been executed", hint=f"see 'vault destroy certificate {no}'")
    if fact["state"] != "approved":
        _refuse(actor, req, no, f"destruction {no} is not approved", "a supervisor other than the requester approves it")
    appr = _load(v, no, ".approval")
    if appr["request_sha256"] != hashlib.sha256(records.canonical(req)).hexdigest():
        raise IntegrityError(f"destructions/{no}.approval.toml approves another version of the request")
    with v.lock(exclusive=True):
        m, docs = _targets(v, fact["dossier"], fact["target"])
        if m["id"] in held_dossiers(v):
            _refuse(actor, req, no, f"dossier {m['number']} is under a legal hold", "lift the hold first ('vault hold remove')")
        sched = [retention.schedule(m, d, v.policy.data) for d in docs]
        early = [s["number"] for s in sched if s["status"] != "due"]
        if early and "override_retention" not in appr:
            _refuse(actor, req, no, f"retention has not ended for {', '.join(early[:3])}{' …' if len(early) > 3 else ''}",
                    "wait until 'vault retention report --due' lists it, or approve with --override-retention REASON")
        whole = "/" not in fact["target"]
        cert = _shred(actor, m, docs, whole=whole, no=no, req=req, appr=appr, sched=sched, early=early)
    return cert


def _shred(actor, m: dict, docs: list[dict], *, whole: bool, no: str, req: dict, appr: dict, sched: list,
           early: list) -> dict[str, Any]:
    v = actor.vault
    if whole and not v.layout.key_table(m["id"]).exists():
        table = None  # an execution interrupted after the keys went: finish it
    else:
        table = read_table(v, m["id"], actor.read_identities())
    gone = {d["key"] for d in docs} | {d["meta_key"] for d in docs}
    if whole:
        if table is not None:
            searchindex.forget(actor, m["id"])  # rotates the index key: keys/_index.age is shredded offsite below
            gone |= set(table.keys)
    grant_dir = v.root / "keys" / "grants"
    grant_files = sorted(grant_dir.glob(f"{m['id']}.*.age")) if grant_dir.is_dir() else []
    stamp = clock.stamp()
    destroyed = [{"number": d["number"], "sha256": d["sha256"], "size": d["size"]} for d in docs]
    paths = [v.layout.document(m["id"], d["id"]) for d in docs]
    # The manifest keeps ghosts: numbers, categories, dates, the rule, the approvals; no customer data.
    for d in docs:
        ghost = {k: d[k] for k in GHOST_KEYS if k in d}
        ghost.update(status="destroyed", destroyed={"at": stamp, "certificate": no})
        d.clear()
        d.update(ghost)
    if whole:
        m["status"] = "destroyed"
        for p in m["profile"]:
            p.pop("sealed", None)
    else:
        for k in gone:
            table.keys.pop(k, None)
    m["revision"] += 1
    # 1. The keys leave the key table first (the whole table, and its key releases, for a dossier):
    # from this instant nothing destroyed can be decrypted here. Then one entry turns the manifest
    # to ghosts; run again after an interruption, an execution finds the keys already gone.
    kt = v.layout.key_table(m["id"])
    if whole:
        for p in [kt, *grant_files]:
            p.unlink(missing_ok=True)
        fsync_dir(kt.parent)
        if grant_files:
            fsync_dir(grant_dir)
    else:
        write_table(v, table)
        access.refresh_grant_keys(actor, m["id"], table)
    actor.commit("destroy.execute", manifest_file(actor, m), number=req["target"], ref=no, obj=no,
                 rev=m["revision"])
    # 2. Overwrite, then delete the ciphertext (media that do not overwrite in place: see SECURITY.md).
    for p in paths:
        if p.exists():
            with open(p, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                while f.tell() < size:
                    f.write(os.urandom(min(1 << 20, size - f.tell())))
                f.flush()
                os.fsync(f.fileno())
            os.unlink(p)
    if paths and paths[0].parent.is_dir():
        fsync_dir(paths[0].parent)
    # 3. Offsite: the mirrored key tables leave every backup target the vault has used.
    key_paths = [f"keys/{m['id']}.age", *(f"keys/grants/{g.name}" for g in grant_files)]
    if whole:
        key_paths.append("keys/_index.age")  # its old generations open the index files the dossier was in
    cert = {"dossier_number": m["number"], "destroyed": destroyed, "whole_dossier": whole,
            "manifest_revision": m["revision"], "executed_at": stamp, "executed_by": actor.name,
            **_offsite(v, key_paths, whole)}
    cert.update(destruction=no, target=req["target"], requested_by=_fact(v, no)["by"],
                requested_at=req["requested_at"], approved_by=_fact(v, no)["approved_by"], approved_at=appr["at"],
                retention=[{k: s[k] for k in ("number", "rule", "event", "event_date", "until", "status")
                            if s.get(k) is not None} for s in sched],
                retention_overridden=bool(early), hold_checked_at=stamp, held=False)
    # 4. The certificate, signed by the executor, in its own entry.
    signed = actor.sign({"format": 1, **cert})
    actor.commit("destroy.certify", {_rel(no, ".certificate"): records.dump_toml(signed)}, number=req["target"],
                 ref=no, obj=no)
    return signed


def _offsite(v, key_paths: list[str], whole: bool) -> dict[str, Any]:
    from vault import backup
    from vault.backup.mirror import DEFAULT_WINDOW

    # With ``current``, a table that still exists (a partly destroyed dossier's, the rotated index
    # key) is mirrored again; a deleted one is not.
    reports = [backup.shred_keys(url, key_paths, current=v).as_dict()
               for url in backup.known_targets(v)]
    now = clock.now()
    worst = now if all(r["reached"] for r in reports) else now + DEFAULT_WINDOW
    return {"backup_targets": reports,
            "undecryptable_from_backups_after": worst.strftime("%Y-%m-%dT%H:%M:%SZ")}


def certificate(v, no: str) -> dict[str, Any]:
    """The certificate of an executed destruction: the file the history wrote for this number,
    naming this destruction and the dossier its approved request names."""
    f = _fact(v, no)
    if f.get("certificate") is None:
        raise NotFoundError(f"no destruction {no} certificate")
    cert = _load(v, no, ".certificate")
    number = authority.state(v)["dossiers"][f["dossier"]]["number"]
    if cert.get("destruction") != no or cert.get("dossier_number") != number:
        raise IntegrityError(f"destructions/{no}.certificate.toml: certifies another destruction")
    return cert


def list_destructions(v) -> list[dict[str, Any]]:
    return [{"number": no, "target": f["target"], "requested_by": f["by"], "state": f["state"]}
            for no, f in sorted(authority.state(v)["destructions"].items())]
