"""Legal holds as the history records them: which dossiers are held (never destroyed, never pruned from backups)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from vault.archive import authority, committed, members
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


def check_written(v: Vault, what: str, rec: Mapping[str, Any], dossier_id: str) -> None:
    """A hold or lift record must say what its history entry says: the dossier's own number, and in
    ``by`` the member who signed both it and the entry (a record adopted by ``vault migrate`` was
    signed by ``by`` and verified when it was adopted). IntegrityError otherwise."""
    st = authority.state(v)
    if rec["number"] != st["dossiers"][dossier_id]["number"]:
        raise IntegrityError(N_("{what}: names number {number}, not its dossier's"), what=what, number=rec["number"])
    signer = st["files"][what][2]
    if rec["signature"]["by"] != rec["by"] or (signer != rec["by"] and not committed.adopted(v, what)):
        raise IntegrityError(N_("{what}: says {by} wrote it, but {signer} signed its history entry"),
                             what=what, by=rec["by"], signer=signer)
    members.verify_by_member(v, dict(rec), what=what)


def verified_holds(v: Vault) -> dict[str, Hold]:
    """Every hold in force by dossier id, with the record its history entry committed (schema-checked;
    it must name the dossier the entry holds, that dossier's number, and its signer as ``by``)."""
    out = {}
    for dossier_id in sorted(held_dossiers(v)):
        rec = committed.load_record(v, _rel(dossier_id), Hold)
        if rec.dossier != dossier_id:
            raise IntegrityError(N_("{rel}: holds another dossier than its history entry"), rel=_rel(dossier_id))
        check_written(v, _rel(dossier_id), rec.to_record(), dossier_id)
        out[dossier_id] = rec
    return out
