"""Invitations to the online platform: a signed record per link, holding only the hash of its one-time token.

The token is 32 random bytes. Its SHA-256 is the verifier the portal compares (in constant time);
the same bytes are the seed of an age identity whose recipient the record carries, so a note
sealed to it opens only for whoever holds the link — not for the portal host at rest.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vault.archive.states import DossierStatus
from vault.crypto import age
from vault.archive.manifests import load_manifest, resolve
from vault.errors import (AuthenticationError, ConflictError, FormatError, InputError, IntegrityError,
                          NoIdentityMatchError, PermissionDeniedError)
from vault.store import fsync_dir, make_dir, records, remove, write_new
from vault.archive.invitations import MAX_DAYS, invitations_dir, may_invite, load
from vault.i18n import N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

TOKEN_BYTES = 32
MAX_USES = 100
MAX_NOTE = 2000
ID_LEN = 32
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_DURATION_RE = re.compile(r"(\d{1,4})([mhd])\Z")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def uses_dir(v: Vault, iid: str) -> Path:
    return v.root / "intake" / "uses" / iid


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``12h`` or ``7d``; at most MAX_DAYS days."""
    m = _DURATION_RE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InputError(N_("bad duration {text!r}"), hint=N_("use minutes, hours or days, e.g. 30m, 12h, 7d"), text=text)
    delta = dt.timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
    if delta > dt.timedelta(days=MAX_DAYS):
        raise InputError(N_("an invitation lasts at most {MAX_DAYS} days"), hint=N_("issue a new one when it expires"), MAX_DAYS=MAX_DAYS)
    return delta


def token_text(token: bytes) -> str:
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def token_bytes(text: str) -> bytes | None:
    """The token a link carries, or None when it cannot be one (never an exception for web input)."""
    if not isinstance(text, str) or not _TOKEN_RE.match(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == TOKEN_BYTES and token_text(raw) == text else None


def issue(actor: Actor, number: str, *, expires: str = "7d", uses: int = 1, note: str | None = None) -> dict[str, Any]:
    """Write a signed invitation for dossier ``number``; returns ``{"id", "token", "expires_at", ...}``.

    The token is returned once and stored nowhere: only its hash and the recipient it seeds are kept.
    """
    actor.require("intake.invite", number=number)
    v = actor.vault
    lifetime = parse_duration(expires)
    if not 1 <= uses <= MAX_USES:
        raise InputError(N_("--uses must be between 1 and {MAX_USES}"), MAX_USES=MAX_USES)
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(N_("the note is longer than {MAX_NOTE} characters"), hint=N_("shorten it"), MAX_NOTE=MAX_NOTE)
    dossier_id = resolve(v, number)
    m = load_manifest(v, dossier_id)
    if m.status != DossierStatus.OPEN:
        raise ConflictError(N_("dossier {number} is {status}"), hint=N_("invite only for an open dossier"), number=m.number, status=m.status.value)
    if not may_invite(v, actor.record, m.dept):
        actor.audit("intake.invite", outcome="refused", number=m.number)
        raise PermissionDeniedError(N_("dossier {number} belongs to department {dept}, not yours"),
                                    hint=N_("the liaison of that department, or an archivist, can invite"), number=m.number, dept=m.dept)
    token = secrets.token_bytes(TOKEN_BYTES)
    rcpt = age.identity_from_seed(token).recipient()
    iid = secrets.token_hex(16)
    now = actor.clock.now()
    rec: dict[str, Any] = {
        "format": 1, "id": iid, "dossier": dossier_id, "number": m.number, "dept": m.dept, "by": actor.name,
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "expires_at": (now + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ"), "uses": uses,
        "token_sha256": hashlib.sha256(token).hexdigest(), "recipient": str(rcpt)}
    if note:
        rec["note"] = base64.b64encode(age.encrypt_bytes(note.encode(), [rcpt])).decode()
    with v.lock(exclusive=True):
        make_dir(invitations_dir(v), parents=True)
        actor.commit("intake.invite", {f"intake/invitations/{iid}.toml": records.dump_toml(actor.sign(rec))},
                     number=m.number, ref=iid, obj=dossier_id)
    return {"id": iid, "token": token_text(token), "number": m.number, "expires_at": rec["expires_at"],
            "uses": uses}


def token_matches(rec: dict[str, Any], token: bytes | None) -> bool:
    """Constant-time comparison of hashes, so neither the token nor its hash leaks through timing."""
    presented = hashlib.sha256(token if token is not None else b"\0" * TOKEN_BYTES).digest()
    try:
        stored = bytes.fromhex(rec["token_sha256"])
    except (ValueError, TypeError):
        stored = b""
    return hmac.compare_digest(presented, stored) and token is not None


def open_note(rec: dict[str, Any], token: bytes) -> str | None:
    """The issuer's note, decrypted with the identity the token seeds (None when there is none)."""
    if "note" not in rec:
        return None
    try:
        return age.decrypt_bytes(base64.b64decode(rec["note"]), [age.identity_from_seed(token)]).decode()
    except (FormatError, AuthenticationError, NoIdentityMatchError, ValueError):
        raise IntegrityError(N_("intake/invitations/{id}.toml: note damaged"), id=rec['id']) from None


def uses_taken(v: Vault, iid: str) -> int:
    d = uses_dir(v, iid)
    return sum(1 for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else 0


def state(v: Vault, rec: dict[str, Any]) -> str:
    """``open``, ``expired``, ``used`` (every use taken) or ``closed`` (the dossier is no longer open)."""
    if rec.get("_status", "open") != "open":
        return "closed"
    if v.clock.stamp() >= rec["expires_at"]:
        return "expired"
    if uses_taken(v, rec["id"]) >= rec["uses"]:
        return "used"
    return "open"


def claim_use(v: Vault, rec: dict[str, Any], receipt: str) -> Path:
    """Take one use of the invitation (atomic: create-exclusive of the next free slot); ConflictError if none is left."""
    d = uses_dir(v, rec["id"])
    make_dir(d, parents=True)
    for k in range(1, rec["uses"] + 1):
        p = d / str(k)
        try:
            write_new(p, f"{receipt} {v.clock.stamp()}\n".encode(), mode=0o600, sync=True)
        except FileExistsError:
            continue
        fsync_dir(d)  # a use taken stays taken through a power cut
        return p
    raise ConflictError(N_("every use of this invitation has been taken"))


def release_use(slot: Path) -> None:
    """Give a use back after a failed upload: nothing was submitted with it."""
    remove(slot, missing_ok=True)


def list_invitations(v: Vault) -> list[dict[str, Any]]:
    """Every invitation with its state (for ``vault intake invitations``)."""
    d = invitations_dir(v)
    out = []
    for p in sorted(d.glob("*.toml")) if d.is_dir() else []:
        rec = load(v, p.stem)
        out.append({"id": rec["id"], "number": rec["number"], "by": rec["by"], "issued_at": rec["issued_at"],
                    "expires_at": rec["expires_at"], "uses": rec["uses"], "used": uses_taken(v, rec["id"]),
                    "state": state(v, rec)})
    return out
