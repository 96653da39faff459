"""Invitations as recorded: where they live and a verified invitation (signed by a member who could issue it)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive import committed, members, recordtimes
from vault.archive.manifests import load_manifest
from vault.errors import IntegrityError, NotFoundError
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Vault

#: The longest an invitation lasts (``vault intake invite --expires``); one signed to last longer is
#: an integrity error (``recordtimes``) and opens nothing.
MAX_DAYS = 90
_ID_RE = re.compile(r"[0-9a-f]{32}\Z")


_FIELDS = {"format", "id", "dossier", "number", "dept", "by", "issued_at", "expires_at", "uses", "token_sha256",
           "recipient", "note", "signature"}


def invitations_dir(v: Vault) -> Path:
    return v.root / "intake" / "invitations"


def may_invite(v: Vault, signer: dict[str, Any], dept: str) -> bool:
    """An issuer with ``intake.invite`` may invite for their own department's dossiers; one who also
    manages the intake (the archive department) for every dossier."""
    roles = signer["roles"]
    if signer.get("status") != "active" or not v.policy.may(roles, "intake.invite"):
        return False
    return v.policy.may(roles, "intake.manage") or signer["dept"] == dept


def load(v: Vault, iid: str) -> dict[str, Any]:
    """A verified invitation: signed by a member who could issue it, for a dossier of that department.

    NotFoundError for an id that names nothing (web input is checked before it touches a path).
    """
    if not isinstance(iid, str) or not _ID_RE.match(iid):
        raise NotFoundError(N_("no such invitation"))
    what = f"intake/invitations/{iid}.toml"
    if committed.committed(v, what) is None:  # only an invitation the history issued exists
        raise NotFoundError(N_("no such invitation"))
    rec = committed.load(v, what)
    if set(rec) - _FIELDS or rec.get("id") != iid or rec.get("format") != 1:
        raise IntegrityError(N_("{what}: not an invitation record"), what=what)
    signer = members.verify_by_member(v, rec, what=what)
    # (one ``vault migrate`` adopted was issued under version 1: its own signature names its issuer)
    by_entry = committed.signer_of(v, what) == rec["by"] or committed.adopted(v, what)
    if signer["name"] != rec["by"] or not by_entry or not may_invite(v, signer, rec["dept"]):
        # A validly signed record by someone who may not invite (written into the directory) opens nothing.
        raise IntegrityError(N_("{what}: signed by {name}, who may not issue it"), what=what, name=signer['name'])
    recordtimes.check(v, what, rec["issued_at"], rec["expires_at"], dt.timedelta(days=MAX_DAYS))
    m = load_manifest(v, rec["dossier"])
    if m.dept != rec["dept"] or m.number != rec["number"]:
        raise IntegrityError(N_("{what}: does not match dossier {number}"), what=what, number=m.number)
    rec["_status"] = m.status.value
    return rec
