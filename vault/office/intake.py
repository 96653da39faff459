"""Write-only intake: staff and customers submit material to the vault's public intake key [R-3.1.2].

A submission is an age file encrypted to the intake recipient plus a small record; submitting needs
no identity and gives no read access. Accepting re-wraps the file's key into the dossier's key table
(the payload bytes are moved unchanged) and adds it as a document; rejecting deletes it.
"""

from __future__ import annotations

import base64
import dataclasses
import contextlib
import io
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from vault.archive.states import DossierStatus
from vault.store import ids, make_dir, records, remove, replace, seam
from vault.archive import authority, intakekey, members
from vault.crypto import age
from vault.store.hashing import HashingWriter, hash_file
from vault.archive.manifests import CATEGORIES
from vault.archive.manifests import (append_document, load_manifest, manifest_file, out_of_range, parse_date, parse_record_date,
                                     read_table, resolve)
from vault.archive import invitations
from vault.archive.intakerecords import Submission
from vault.errors import (AuthenticationError, ConflictError, FormatError, InputError, IntegrityError,
                          NoIdentityMatchError, NotFoundError, VaultError)
from vault.store.keytable import KeyRefRecipient
from vault.store import NotRegularError, atomic_writer, fsync_dir, open_regular
from vault.archive import grants
from vault.i18n import Message, N_
from vault.store import tomlread

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault

ID_LEN = intakekey.ID_LEN
REWRAP = intakekey.REWRAP
key_path, recipient = intakekey.key_path, intakekey.recipient
UPLOAD_PREFIX = ".upload-"
STALE_UPLOAD = 24 * 3600  # an upload this old was left by a process that died; it is removed


def _dir(v: Vault) -> Path:
    return v.root / "intake"


def submit(v: Vault, files: list[Path], *, number: str, category: str, source: str, date: str,
           original: bool = False, title: str | None = None, force_date: bool = False) -> list[str]:
    """Encrypt ``files`` to the intake key for dossier ``number``; needs no identity. Returns ids."""
    _check_facts(category, source)
    date = parse_record_date(date, today=v.clock.today(), force=force_date)
    resolve(v, number)  # the number must exist; the dossier itself stays unreadable
    for f in files:
        if not Path(f).is_file():
            raise InputError(N_("{f}: no such file"), hint=N_("check the path"), f=f)
    ids = []
    for f in files:
        with open(f, "rb") as fin:
            sub = StreamedSubmission(v)
            try:
                while block := fin.read(1 << 20):
                    sub.write(block)
                sub.finish()
            except BaseException:
                sub.discard()
                raise
        meta = {"title": title or Path(f).name, "source": source, "filename": Path(f).name}
        ids.append(sub.commit(number=number, category=category, date=date, original=original, meta=meta))
    return ids


def _check_facts(category: str, source: str) -> None:
    if category not in CATEGORIES:
        raise InputError(N_("unknown category {category!r}"), hint=N_("categories: {CATEGORIES}"), category=category, CATEGORIES=', '.join(CATEGORIES))
    if not source.strip():
        raise InputError(N_("the source of the material is required [R-3.1.3]"), param="source")


class StreamedSubmission:
    """One file entering the intake as it arrives: encrypted on the way in, its record written last.

    The ciphertext goes to ``intake/.upload-<id>.age`` (a name the vault's temporary-file sweep
    leaves alone, since an upload may outlive a command's lock); ``commit`` renames it and writes the
    record, ``discard`` removes it. Plaintext never touches the disk and is never held whole.
    """

    def __init__(self, v: Vault) -> None:
        self.v, self.id, self.size = v, secrets.token_hex(16), 0
        make_dir(_dir(v))
        self._tmp = _dir(v) / f"{UPLOAD_PREFIX}{self.id}.age"
        seam.step("create", self._tmp)
        self._file = os.fdopen(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._hw = HashingWriter(self._file)
        self._enc = age.Encryptor(self._hw, [age.parse_recipient(recipient(v))])

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self._enc.write(data)

    def finish(self) -> None:
        """End the age file and make it durable (still under its upload name)."""
        self._enc.close()
        self._file.flush()
        seam.step("fsync", self._tmp)
        os.fsync(self._file.fileno())
        self._hw.close()
        self._file.close()

    def discard(self) -> None:
        """Drop the partial ciphertext: a cut upload leaves nothing that looks like a submission."""
        with contextlib.suppress(Exception):
            self._hw.close()
        with contextlib.suppress(Exception):
            self._file.close()
        remove(self._tmp, missing_ok=True)

    def commit(self, *, number: str, category: str, date: str, original: bool, meta: dict[str, Any],
               invitation: str | None = None, receipt: str | None = None) -> str:
        """Rename the finished ciphertext into place and write the record (last); returns the id."""
        _check_facts(category, meta.get("source", ""))
        rcpt = [age.parse_recipient(recipient(self.v))]
        rec: dict[str, Any] = {
            "format": 1, "id": self.id, "for": number, "category": category, "date": parse_date(date),
            "original": original, "submitted_at": self.v.clock.stamp(), "size": self._hw.size,
            "sha256": self._hw.h.hexdigest(),
            "sealed": base64.b64encode(age.encrypt_bytes(tomli_w.dumps(meta).encode(), rcpt)).decode()}
        if invitation:
            rec["invitation"] = invitation
        if receipt:
            rec["receipt"] = receipt
        replace(self._tmp, _dir(self.v) / f"{self.id}.age")
        records.write_toml(_dir(self.v) / f"{self.id}.toml", rec)  # the record last: complete once listed
        return self.id


def sweep_uploads(v: Vault, *, older_than: float) -> int:
    """Remove upload ciphertext left by a process that died mid-upload (older than ``older_than`` s)."""
    d, n = _dir(v), 0
    now = time.time()
    for p in d.glob(f"{UPLOAD_PREFIX}*") if d.is_dir() else []:
        with contextlib.suppress(FileNotFoundError):
            if now - p.stat().st_mtime > older_than and remove(p, missing_ok=True):
                n += 1
    return n


def pending(v: Vault) -> list[dict[str, Any]]:
    """Submissions waiting for an archivist (cleartext facts only)."""
    d = _dir(v)
    rows = []
    for p in sorted(d.glob("*.toml")) if d.is_dir() else []:
        if len(p.stem) != ID_LEN:
            continue
        rec = _read(p)
        row: dict[str, Any] = {"id": rec.id, "for": rec.for_, "category": rec.category, "date": rec.date,
                               "original": rec.original, "submitted_at": rec.submitted_at, "size": rec.size}
        rows.append(row | {k: x for k, x in (("invitation", rec.invitation), ("receipt", rec.receipt)) if x is not None})
    return rows


def verify_pending(v: Vault) -> tuple[list[str], list[str]]:
    """What a keyless check can say of the pending submissions: (problems, notes).

    Submissions are unsigned — anyone may submit — so a changed one is a different submission; what
    is checked is that each is whole and consistent: its record parses and names itself, a dossier
    the history created and a ciphertext of its size and hash whose age headers parse. A ciphertext
    with no record is the leftover of an interrupted submission (the record is written last).
    """
    d = _dir(v)
    problems: list[str] = []
    notes: list[str] = []
    if not d.is_dir():
        return problems, notes
    numbers = authority.state(v)["numbers"]
    seen = set()
    for p in sorted(d.glob("*.toml")):
        if len(p.stem) != ID_LEN or p.name.endswith(".rejected.toml"):
            continue
        what = f"intake/{p.name}"
        seen.add(p.stem)
        try:
            rec = _read(p)
            if rec.id != p.stem:
                raise IntegrityError(N_("{what}: describes submission {id} (moved or forged)"), what=what, id=rec.id)
            if rec.for_.split("/")[0] not in numbers:
                raise IntegrityError(N_("{what}: filed for {number}, which is no dossier of this vault"), what=what,
                                     number=rec.for_)
            age.read_header(io.BytesIO(base64.b64decode(rec.sealed, validate=True)))
        except (VaultError, ValueError) as e:
            problems.append(e.message if isinstance(e, VaultError) else Message(N_("{what}: damaged"), what=what))
            continue
        src = d / f"{p.stem}.age"
        try:
            if hash_file(src, name=f"intake/{src.name}") != (rec.sha256, rec.size):
                problems.append(Message(N_("intake/{name}: does not match its record intake/{record} (damaged or tampered with)"),
                                        name=src.name, record=p.name))
        except FileNotFoundError:
            problems.append(Message(N_("intake/{name}: missing (its record intake/{record} is there)"),
                                    name=src.name, record=p.name))
        except NotRegularError as e:
            problems.append(e.message)
    for p in sorted(d.glob("*.age")):
        if len(p.stem) == ID_LEN and p.stem not in seen:
            notes.append(Message(N_("intake/{name}: a submission without its record (an interrupted submission; "
                                    "'vault intake list' does not show it)"), name=p.name))
    return problems, notes


def _read(p: Path) -> Submission:
    return Submission.from_record(records.load_toml(p, what=f"intake/{p.name}"), what=f"intake/{p.name}")


def _load(v: Vault, sid: str) -> Submission:
    ids.intake_id(sid)
    intakekey.settle(v, sid)  # the callers hold the exclusive lock
    p = _dir(v) / f"{sid}.toml"
    if not p.exists():
        raise NotFoundError(N_("no intake submission {sid}"), hint=N_("see 'vault intake list'"), sid=sid)
    rec = _read(p)
    if rec.id != sid:
        raise IntegrityError(N_("intake/{sid}.toml: describes submission {id} (moved or forged)"), sid=sid, id=rec.id)
    return rec


def accept(actor: Actor, sid: str, *, force_date: bool = False) -> str:
    """Move a submission into its dossier as a document; returns the document number. A date in the
    future or before 1900 (anyone who can write ``intake/`` chooses it) is refused unless ``force_date``."""
    actor.require("intake.manage")
    v = actor.vault
    with v.lock(exclusive=True):
        _undecided(v, sid)
        rec = _load(v, sid)
        _check_date(rec, today=actor.clock.today(), force=force_date)
        src = _dir(v) / f"{sid}.age"
        if hash_file(src, name=f"intake/{sid}.age") != (rec.sha256, rec.size):
            raise IntegrityError(N_("intake/{sid}.age does not match its record (damaged or tampered with)"), sid=sid)
        ident = intakekey.identities(actor)
        # An upload that was encrypting to the old key during a removal goes to the new one now.
        intakekey.tidy(v, ident)
        rec = _load(v, sid)  # its hash changed if it was re-wrapped just now
        try:
            meta = tomlread.loads(age.decrypt_bytes(base64.b64decode(rec.sealed), ident).decode())
        except (FormatError, AuthenticationError, NoIdentityMatchError, ValueError):
            raise IntegrityError(N_("intake/{sid}.toml: sealed part damaged"), sid=sid) from None
        dossier_id = resolve(v, rec.for_)
        if rec.invitation is not None:
            _check_invitation(v, rec.invitation, rec, dossier_id)
        m = load_manifest(v, dossier_id)
        if m.status == DossierStatus.DESTROYED:
            raise ConflictError(N_("dossier {number} has been destroyed"), hint=N_("reject the submission"), number=m.number)
        if m.status == DossierStatus.CLOSED:
            raise ConflictError(N_("dossier {number} is closed"), hint=N_("reopen it first: 'vault dossier reopen {number}'"), number=m.number)
        table = read_table(v, dossier_id, actor.read_identities())
        doc_id, kid = secrets.token_hex(16), secrets.token_hex(16)
        rcpt = KeyRefRecipient(kid)
        dst = v.layout.document(dossier_id, doc_id)
        make_dir(dst.parent)
        with open_regular(src, name=f"intake/{sid}.age") as fin, atomic_writer(dst) as fout, HashingWriter(fout) as hw:
            try:
                age.rewrap(fin, hw, ident, [rcpt])  # new header, same payload bytes
            except (FormatError, AuthenticationError, NoIdentityMatchError):
                raise IntegrityError(N_("intake/{sid}.age: not a valid submission"), sid=sid) from None
        assert rcpt.file_key is not None  # set by the rewrap above
        table.keys[kid] = rcpt.file_key
        if not rec.original:
            meta.setdefault("copy_note", "submitted through intake")
        m, entry = append_document(m, table, doc_id=doc_id, key=kid, category=rec.category, date=rec.date,
                                   original=rec.original, by=actor.name, at=actor.clock.stamp(), size=hw.size,
                                   sha256=hw.h.hexdigest(), meta=meta)
        number = entry.number
        m = dataclasses.replace(m, revision=m.revision + 1)
        actor.commit("intake.accept", {**manifest_file(actor, m), **grants.key_files(actor, dossier_id, table)},
                     number=number, ref=sid, obj=dossier_id, rev=m.revision)
        _remove(v, sid)
        sweep_uploads(v, older_than=STALE_UPLOAD)
    return number


def _check_date(rec: Submission, *, today: str, force: bool) -> None:
    # The same check as a member's own dates (docs/FORMAT.md §9), made again here: the date was chosen
    # by whoever submitted, and a mistyped year would start or stop a retention clock.
    if force or not (wrong := out_of_range(rec.date, today)):
        return
    msg = N_("intake submission {sid} is dated {date}, in the future") if wrong == "future" else \
        N_("intake submission {sid} is dated {date}, before 1900")
    raise InputError(msg, hint=N_("reject it, or pass --force-date if the date is really meant"), sid=rec.id, date=rec.date)


def _check_invitation(v: Vault, iid: str, rec: Submission, dossier_id: str) -> None:
    # A record that names an invitation must match it: the portal cannot file a customer's material
    # under another dossier than the one the invitation (signed by its issuer) names.
    inv = invitations.load(v, iid)
    if inv["dossier"] != dossier_id:
        raise IntegrityError(N_("intake/{id}.toml: filed for {for_}, its invitation names {number}"), id=rec.id, for_=rec.for_, number=inv['number'])


def reject(actor: Actor, sid: str, reason: str) -> None:
    """Delete a submission; the reason is sealed to the archive ring in a signed record."""
    actor.require("intake.manage")
    if not reason.strip():
        raise InputError(N_("a rejection needs a reason"), param="reason")
    v = actor.vault
    with v.lock(exclusive=True):
        _undecided(v, sid)
        rec = _load(v, sid)
        sealed = members.seal_text(v, reason)
        signed = actor.sign({"format": 1, "id": sid, "for": rec.for_, "by": actor.name, "at": actor.clock.stamp(),
                             "reason": sealed})
        actor.commit("intake.reject", {f"intake/{sid}.rejected.toml": records.dump_toml(signed)}, number=rec.for_,
                     ref=sid)
        _remove(v, sid)


def _undecided(v: Vault, sid: str) -> None:
    """Refuse a submission the history has decided: a decision interrupted after its entry (the
    files not yet removed) is finished by the lock's recovery, never taken a second time."""
    ids.intake_id(sid)
    done = authority.state(v)["intake"].get(sid)
    if done is not None:
        msg = N_("intake submission {sid} was already accepted") if done == "accept" else \
            N_("intake submission {sid} was already rejected")
        raise ConflictError(msg, hint=N_("see 'vault intake list'"), sid=sid)


def _remove(v: Vault, sid: str) -> None:
    for suffix in (".age", ".toml", REWRAP):
        p = _dir(v) / f"{sid}{suffix}"
        remove(p, missing_ok=True)
    fsync_dir(_dir(v))
