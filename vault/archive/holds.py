"""Legal holds as recorded: which dossiers are held (never destroyed, never pruned from backups)."""

from __future__ import annotations

from vault.archive import members
from vault.store import records


def _path(v, dossier_id: str):
    return v.layout.hold(dossier_id)


def held_dossiers(v) -> set[str]:
    """Opaque ids of every dossier under a verified legal hold."""
    d = v.root / "holds"
    if not d.is_dir():
        return set()
    mem = members.all_members(v)
    out = set()
    for p in d.glob("*.toml"):
        rec = records.load_toml(p, what=f"holds/{p.name}")
        members.verify_by_member(v, rec, what=f"holds/{p.name}", members=mem)
        if rec["dossier"] != p.stem:
            continue  # a hold record moved to another file holds nothing
        out.add(rec["dossier"])
    return out
