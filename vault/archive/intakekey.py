"""The intake identity: which public key submissions go to, and its rotation when a member leaves (FORMAT §19.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import base64
import io
import os
from dataclasses import replace
from pathlib import Path

from vault.archive import authority, keyfiles
from vault.archive.intakerecords import Submission
from vault.crypto import age
from vault.i18n import N_
from vault.errors import (AuthenticationError, FormatError, IntegrityError, NoIdentityMatchError, NotFoundError,
                          PermissionDeniedError)
from vault.store import atomic_writer, fsync_dir, records
from vault.store.hashing import HashingWriter, hash_file
from vault.store import NotRegularError, open_regular

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

ID_LEN = 32  # a submission id: 128 random bits in hex
REWRAP = ".rewrap.age"  # a pending submission being re-wrapped to a new intake key
KEY = "keys/_intake.age"


def _dir(v: Vault) -> Path:
    return v.root / "intake"


def key_path(v: Vault) -> Path:
    return v.layout.path("intake_key")


def recipient(v: Vault) -> str:
    """The vault's public intake key: the newest a member's removal named in the history (§19), else
    the genesis record's. Read through the history, so a removal's new key is used from then on."""
    r = authority.state(v).get("intake_recipient") or v.config.get("intake_recipient")
    if not r:
        raise NotFoundError(N_("this vault has no intake key"))
    return r


def _secrets(v: Vault, identities: list) -> list[str]:
    """The intake identities in ``keys/_intake.age`` (the current one first, then retired ones), as the
    history names it (``keyfiles``: an older key file put back, still holding an identity a former
    member copied, is refused)."""
    try:
        plain = age.decrypt_bytes(keyfiles.read(v, KEY), identities).decode()
    except NoIdentityMatchError:
        raise PermissionDeniedError(N_("you hold no key for the intake")) from None
    except (FormatError, AuthenticationError, UnicodeDecodeError):
        raise IntegrityError(N_("keys/_intake.age: damaged or tampered with")) from None
    return plain.split()


def identities(actor: Actor) -> list[age.Identity]:
    """Every intake identity, the current one first (retired ones open submissions encrypted to an
    older key: an upload under way during a removal, or a removal stopped before its entry)."""
    secrets_ = _secrets(actor.vault, actor.read_identities())
    rcpt = recipient(actor.vault)
    current = [x for x in secrets_ if age.recipient_of(x) == rcpt]
    if not current:
        raise IntegrityError(N_("keys/_intake.age does not hold the intake key the history names"))
    return [age.parse_identity(x) for x in [current[0], *(y for y in secrets_ if y != current[0])]]


def rotate(v: Vault, identities: list, recipients: list) -> tuple[str, list[age.Identity], bytes]:
    """A new intake identity for the removal entry that names its recipient (§19.3).

    Returns the new recipient, every intake identity, and the new ``keys/_intake.age`` (the new
    identity in front of the old ones, encrypted to ``recipients``, the new rings) for the removal's
    commit to stage: before the entry the old file stands, after it the new one. Every pending
    submission is re-wrapped now to the new key and to the current one — openable whether or not the
    entry is ever written; ``finish`` drops the current key's stanza after the entry. The caller holds
    the exclusive lock.
    """
    old = _secrets(v, identities)
    new = age.generate_identity("mlkem768x25519")
    data = age.encrypt_bytes("\n".join([new, *old]).encode(), recipients)
    ids = [age.parse_identity(x) for x in [new, *old]]
    rcpt = age.recipient_of(new)
    rewrap_pending(v, ids, [rcpt, recipient(v)])
    return rcpt, ids, data


def finish(v: Vault, identities: list, rcpt: str) -> None:
    """After the removal's entry: every pending submission re-wrapped to the new key alone, so that
    the old identity — which the leaver may have copied — opens none of them."""
    rewrap_pending(v, identities, [rcpt])


def rewrap_pending(v: Vault, identities: list, rcpts: list[str], *, unless_only: age.Identity | None = None) -> int:
    """Re-wrap every pending submission (file key and sealed facts) to ``rcpts``; the payload
    bytes are copied unchanged. Crash-safe per submission: the new file is written beside the old
    as ``<id>.rewrap.age``, then the record naming its hash, then the rename (``settle``). With
    ``unless_only``, a submission already wrapped to that identity alone is left as it is."""
    n = 0
    to = [age.parse_recipient(r) for r in rcpts]
    for rec_path in sorted(_dir(v).glob("*.toml")) if _dir(v).is_dir() else []:
        sid = rec_path.stem
        if len(sid) != ID_LEN:
            continue
        settle(v, sid)
        what = f"intake/{rec_path.name}"
        try:
            rec = Submission.from_record(records.load_toml(rec_path, what=what), what=what)
        except NotRegularError:
            continue  # (named by 'vault check', refused by 'intake accept')
        src, tmp = _dir(v) / f"{sid}.age", _dir(v) / f"{sid}{REWRAP}"
        if unless_only is not None and _only_to(src, unless_only):
            continue
        try:
            if hash_file(src) != (rec.sha256, rec.size):
                continue  # changed behind the record: left for 'intake accept' to refuse, never re-hashed
        except (FileNotFoundError, NotRegularError):
            continue  # (named by 'vault check', refused by 'intake accept')
        try:
            with open_regular(src) as fin, atomic_writer(tmp) as fout, HashingWriter(fout) as hw:
                age.rewrap(fin, hw, identities, to)
            out = io.BytesIO()
            age.rewrap(io.BytesIO(base64.b64decode(rec.sealed)), out, identities, to)
        except (FileNotFoundError, NotRegularError, FormatError, AuthenticationError, NoIdentityMatchError, ValueError):
            tmp.unlink(missing_ok=True)
            continue  # damaged or forged: accepting it fails on its own, and it holds nothing of ours
        rec = replace(rec, sha256=hw.h.hexdigest(), size=hw.size, sealed=base64.b64encode(out.getvalue()).decode())
        records.write_toml(rec_path, rec.to_record())
        os.replace(tmp, src)
        n += 1
    if n:
        fsync_dir(_dir(v))
    return n


def _only_to(path: Path, ident: age.Identity) -> bool:
    """Whether the age file at ``path`` has one recipient stanza, which ``ident`` opens."""
    try:
        with open_regular(path) as f:
            if len(age.read_header(f).stanzas) != 1:
                return False
            f.seek(0)
            age.open_payload(f, [ident])
        return True
    except (FileNotFoundError, NotRegularError, FormatError, AuthenticationError, NoIdentityMatchError):
        return False


def tidy(v: Vault, identities: list) -> int:
    """Re-wrap to the current intake key alone every pending submission still open to an older one
    (``identities`` from ``identities``, current first); run by each ``intake accept``."""
    return rewrap_pending(v, identities, [recipient(v)], unless_only=identities[0])


def settle(v: Vault, sid: str) -> None:
    """Finish or drop a re-wrap an interruption left: the record names the hash of the file to keep."""
    tmp = _dir(v) / f"{sid}{REWRAP}"
    if not tmp.exists():
        return
    try:
        what = f"intake/{sid}.toml"
        rec = Submission.from_record(records.load_toml(_dir(v) / f"{sid}.toml", what=what), what=what)
        done = hash_file(tmp) == (rec.sha256, rec.size)
    except (FileNotFoundError, FormatError):
        done = False
    if done:
        os.replace(tmp, _dir(v) / f"{sid}.age")
    else:
        tmp.unlink()
