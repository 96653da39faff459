"""Legal holds as recorded: which dossiers are held (never destroyed, never pruned from backups)."""

from __future__ import annotations

from typing import Any

from vault.archive import members
from vault.errors import IntegrityError
from vault.store import records


def _path(v, dossier_id: str):
    return v.layout.hold(dossier_id)


def held_dossiers(v) -> set[str]:
    """Opaque ids of every dossier under a verified legal hold."""
    return set(verified_holds(v))


def verified_holds(v) -> dict[str, dict[str, Any]]:
    """Every hold record by dossier id: schema-checked (another kind of signed record that merely has
    a ``dossier`` field is no hold) and signed by the member it names as having placed it."""
    d = v.root / "holds"
    if not d.is_dir():
        return {}
    mem = members.all_members(v)
    out = {}
    for p in sorted(d.glob("*.toml")):
        what = f"holds/{p.name}"
        rec = records.load_toml(p, schema="hold", what=what)
        signer = members.verify_by_member(v, rec, what=what, members=mem)
        if signer["name"] != rec["by"]:
            raise IntegrityError(f"{what}: signed by {signer['name']}, not by {rec['by']} who it says placed it")
        if rec["dossier"] != p.stem:
            continue  # a hold record moved to another file holds nothing
        out[rec["dossier"]] = rec
    return out
