"""Legal holds as the history records them: which dossiers are held (never destroyed, never pruned from backups)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.archive import authority, committed
from vault.archive.holdrecords import Hold
from vault.errors import IntegrityError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Vault


def _rel(dossier_id: str) -> str:
    return f"holds/{dossier_id}.toml"


def held_dossiers(v: Vault) -> set[str]:
    """Opaque ids of every dossier under a legal hold: a fact of the history, whatever the files say
    (a deleted hold file frees nothing; ``vault check`` names it)."""
    return set(authority.state(v)["holds"])


def verified_holds(v: Vault) -> dict[str, Hold]:
    """Every hold in force by dossier id, with the record its history entry committed (schema-checked;
    it must name the dossier the entry holds)."""
    out = {}
    for dossier_id in sorted(held_dossiers(v)):
        rec = committed.load_record(v, _rel(dossier_id), Hold)
        if rec.dossier != dossier_id:
            raise IntegrityError(N_("{rel}: holds another dossier than its history entry"), rel=_rel(dossier_id))
        out[dossier_id] = rec
    return out
