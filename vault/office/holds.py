"""Placing and lifting legal holds: a held dossier is never destroyed, and backups never prune its data."""

from __future__ import annotations

import os
from typing import Any

from vault import clock
from vault.archive import members
from vault.store import records
from vault.archive.manifests import load_manifest, resolve
from vault.errors import ConflictError, InputError, NotFoundError
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


def remove(actor, number: str) -> None:
    """Lift the legal hold on a dossier."""
    actor.require("hold.manage", number=number)
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        p = _path(v, dossier_id)
        if not p.exists():
            raise NotFoundError(f"dossier {number} is not on hold")
        os.unlink(p)
        fsync_dir(p.parent)
        actor.audit("hold.remove", number=number)


def list_holds(v) -> list[dict[str, Any]]:
    rows = []
    for rec in verified_holds(v).values():
        rows.append({k: rec[k] for k in ("number", "at", "by")})
    return sorted(rows, key=lambda r: r["number"])
