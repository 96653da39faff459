"""Placing and lifting legal holds: a held dossier is never destroyed, and backups never prune its data."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from vault import clock
from vault.archive import members
from vault.store import records
from vault.archive.manifests import load_manifest, resolve
from vault.errors import ConflictError, FormatError, InputError, IntegrityError, NotFoundError, PermissionDeniedError
from vault.store import fsync_dir
from vault.archive.holds import _path, verified_holds


def add(actor, number: str, reason: str) -> None:
    """Place a legal hold on a dossier (the reason is sealed to the archive ring)."""
    actor.require("hold.manage", number=number)
    if not reason.strip():
        raise InputError("a hold needs a reason", param="reason")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        m = load_manifest(v, dossier_id)
        if _path(v, dossier_id).exists():
            raise ConflictError(f"dossier {m['number']} is already on hold")
        sealed = members.seal_text(v, reason)
        (v.root / "holds").mkdir(mode=0o700, exist_ok=True)
        records.write_toml(_path(v, dossier_id), actor.sign(
            {"format": 1, "dossier": dossier_id, "number": m["number"], "at": clock.stamp(), "by": actor.name,
             "reason": sealed}))
        actor.audit("hold.add", number=m["number"])


def remove(actor, number: str, reason: str) -> str:
    """Lift the legal hold on a dossier: a supervisor, saying why (sealed to the archive ring).

    The signed lift record ``holds/lifted/<dossier-id>.<n>.toml`` is written before the hold is
    deleted, so an interrupted lift leaves the hold in force and its record explains nothing
    away: a lift record counts only together with the hold's absence. Returns the lift record's name.
    """
    actor.require("hold.manage", number=number)
    if "supervisor" not in actor.roles:
        # Lifting frees a dossier for destruction: the same rank that approves a destruction.
        actor.audit("hold.remove", outcome="refused", number=number)
        raise PermissionDeniedError("only a supervisor lifts a legal hold", hint="ask an archive supervisor")
    if not reason.strip():
        raise InputError("lifting a hold needs a reason", hint="pass --reason TEXT")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        p = _path(v, dossier_id)
        if not p.exists():
            raise NotFoundError(f"dossier {number} is not on hold")
        hold = records.load_toml(p, what=f"holds/{p.name}")
        lifted = v.root / "holds" / "lifted"
        lifted.mkdir(mode=0o700, exist_ok=True)
        n = 1 + max((int(q.name.split(".")[1]) for q in lifted.glob(f"{dossier_id}.*.toml")
                     if q.name.split(".")[1].isdigit()), default=0)
        rec = {"format": 1, "dossier": dossier_id, "number": hold["number"], "seq": n,
               "hold_at": hold["at"], "hold_by": hold["by"],
               "hold_sha256": hashlib.sha256(records.canonical(hold)).hexdigest(),
               "at": clock.stamp(), "by": actor.name, "reason": members.seal_text(v, reason)}
        signed = actor.sign(rec)
        records.validate(signed, "holdlift", what=f"lift of the hold on {hold['number']}")
        records.write_toml(lifted / f"{dossier_id}.{n}.toml", signed)
        os.unlink(p)
        fsync_dir(p.parent)
        actor.audit("hold.remove", number=number, ref=f"lift-{n}")
    return f"{dossier_id}.{n}"


def list_holds(v, actor=None) -> list[dict[str, Any]]:
    """Holds in force; with ``actor``, each hold's reason where it was sealed to them (the ring)."""
    rows = []
    for dossier_id, rec in sorted(verified_holds(v).items()):
        row = {k: rec[k] for k in ("number", "at", "by")}
        members.reveal(actor, {"reason": (rec["reason"], f"holds/{dossier_id}.toml reason")}, row,
                       number=rec["number"], ref="hold")
        rows.append(row)
    return sorted(rows, key=lambda r: r["number"])


def lifts(v, actor=None) -> list[dict[str, Any]]:
    """Every lifted hold, verified (signed by a supervisor), oldest first; reasons as in ``list_holds``."""
    d = v.root / "holds" / "lifted"
    rows = []
    for p in sorted(d.glob("*.toml")) if d.is_dir() else []:
        what = f"holds/lifted/{p.name}"
        try:
            rec = records.load_toml(p, schema="holdlift", what=what)
        except FormatError as e:
            raise IntegrityError(str(e)) from None
        members.verify_by_supervisor(v, rec, what=what)
        if p.name != f"{rec['dossier']}.{rec['seq']}.toml" or rec["signature"]["by"] != rec["by"]:
            raise IntegrityError(f"{what}: belongs to another place or signer")
        row = {k: rec[k] for k in ("number", "hold_at", "hold_by", "at", "by")}
        members.reveal(actor, {"reason": (rec["reason"], f"{what} reason")}, row, number=rec["number"], ref="hold-lift")
        rows.append(row)
    return sorted(rows, key=lambda r: r["at"])
