"""Legal holds: a held dossier is never destroyed, and backups never prune its data."""

from __future__ import annotations

from typing import Any

from vault import clock
from vault.archive import authority, members
from vault.errors import ConflictError, InputError, NotFoundError
from vault.office.dossier import load_manifest, resolve
from vault.store import records


def _rel(dossier_id: str) -> str:
    return f"holds/{dossier_id}.toml"


def held_dossiers(v) -> set[str]:
    """Opaque ids of every dossier under a legal hold: a fact of the history, whatever the files say
    (a deleted hold file frees nothing; ``vault check`` names it)."""
    return set(authority.state(v)["holds"])


def add(actor, number: str, reason: str) -> None:
    """Place a legal hold on a dossier (the reason is sealed to the archive ring)."""
    actor.require("hold.manage", number=number)
    if not reason.strip():
        raise InputError("a hold needs a reason", hint="pass --reason TEXT")
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        m = load_manifest(v, dossier_id)
        if dossier_id in held_dossiers(v):
            raise ConflictError(f"dossier {m['number']} is already on hold")
        sealed = members.seal_text(v, reason)
        (v.root / "holds").mkdir(mode=0o700, exist_ok=True)
        rec = actor.sign({"format": 1, "dossier": dossier_id, "number": m["number"], "at": clock.stamp(),
                          "by": actor.name, "reason": sealed})
        actor.commit("hold.add", {_rel(dossier_id): records.dump_toml(rec)}, number=m["number"], obj=dossier_id)


def remove(actor, number: str) -> None:
    """Lift the legal hold on a dossier."""
    actor.require("hold.manage", number=number)
    v = actor.vault
    with v.lock(exclusive=True):
        dossier_id = resolve(v, number)
        if dossier_id not in held_dossiers(v):
            raise NotFoundError(f"dossier {number} is not on hold")
        actor.commit("hold.remove", {_rel(dossier_id): None}, number=number, obj=dossier_id)


def list_holds(v) -> list[dict[str, Any]]:
    rows = []
    for dossier_id in sorted(held_dossiers(v)):
        rec = authority.load(v, _rel(dossier_id))
        rows.append({k: rec[k] for k in ("number", "at", "by")})
    return sorted(rows, key=lambda r: r["number"])
