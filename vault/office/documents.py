"""Documents: streaming encrypted adds, versions that never overwrite, history and viewing [R-1.3.1, R-3.1.3]."""

from __future__ import annotations

import os
import contextlib
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Sequence


from vault.crypto import age
from vault.archive.manifests import append_document, load_manifest, manifest_file, parse_record_date, read_table, resolve
from vault.errors import (AuthenticationError, ConflictError, FormatError, InputError, IntegrityError,
                          NoIdentityMatchError, PermissionDeniedError)
from vault.store.keytable import KeyRefRecipient, KeyTable, open_values
from vault.archive import grants, members
from vault.store import atomic_writer, make_dir
from vault.store.directio import DirectWriter
from vault.store.syncing import WritebackWriter
from vault.archive.manifests import CATEGORIES
from vault.archive.manifestrecord import Document, Manifest
from vault.archive.states import DossierStatus
from vault.store.hashing import HashingWriter
from vault.store.counting import Progress, counting, no_progress
from vault.i18n import Message, N_
from vault.store import open_regular

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault


@dataclass(frozen=True)
class Stream:
    """Document content read from an open binary stream (``doc add -`` reads standard input).

    It is encrypted as it is read, like a file, so no plaintext copy is made; ``name`` is the file
    name recorded (sealed) for it.
    """

    name: str
    file: BinaryIO


def add(actor: Actor, number: str, files: Sequence[Path | Stream], *, category: str, source: str, date: str,
        original: bool, copy_note: str | None = None, title: str | None = None, replaces: str | None = None,
        paper_location: str | None = None, progress: Progress | None = None,
        force_date: bool = False) -> list[str]:
    """Encrypt and add ``files`` to a dossier; returns their document numbers.

    Documents are written first (unreferenced until the manifest names them), then the manifest, the
    key table and the grants' key releases are staged and committed by one entry, so an interrupted
    add leaves the dossier exactly as it was, or is finished by the next command (FORMAT §18.5).
    """
    return add_many(actor, [(number, files)], category=category, source=source, date=date, original=original,
                    copy_note=copy_note, title=title, replaces=replaces, paper_location=paper_location,
                    progress=progress, force_date=force_date)[0]


def add_many(actor: Actor, batch: Sequence[tuple[str, Sequence[Path | Stream]]], *, category: str, source: str, date: str,
             original: bool, copy_note: str | None = None, title: str | None = None, replaces: str | None = None,
             paper_location: str | None = None, progress: Progress | None = None,
             force_date: bool = False) -> list[list[str]]:
    """A bulk add: ``(number, files)`` for several dossiers under one lock; the numbers per item.

    Every document file and key table of the batch is written unsynced, then all of them and the
    staged manifests are made durable together (one ``syncfs`` on Linux), then one history entry per
    dossier is appended — all with one fsync — as the commit point (``audit.commit_many``). Nothing
    is written before every dossier of the batch has been checked, and a dossier named twice takes
    all its files in one manifest revision.
    """
    if not batch:
        return []
    actor.require("doc.add", number=batch[0][0])
    v = actor.vault
    if category not in CATEGORIES:
        raise InputError(N_("unknown category {category!r}"), hint=N_("categories: {CATEGORIES}"), category=category,
                         CATEGORIES=', '.join(CATEGORIES))
    date = parse_record_date(date, today=v.clock.today(), force=force_date)
    if not source.strip():
        raise InputError(N_("the source of the material is required [R-3.1.3]"), param="source")
    if not original and not (copy_note or "").strip():
        raise InputError(N_("a copy needs a note saying why the original could not be had [R-3.1.3]"),
                         param="copy_note")
    if replaces and (len(batch) != 1 or len(batch[0][1]) != 1):
        raise InputError(N_("replaces takes exactly one new file"), param="replaces")
    groups: dict[str, list[Path | Stream]] = {}
    order: list[tuple[str, str]] = []  # (dossier id, number as given), in the caller's order
    for number, files in batch:
        for f in files:
            if not isinstance(f, Stream) and not Path(f).is_file():
                raise InputError(N_("{f}: no such file"), hint=N_("check the path"), f=f)
        dossier_id = resolve(v, number)
        if dossier_id not in groups:
            groups[dossier_id] = []
        groups[dossier_id].extend(files)
        order.append((dossier_id, number))
    added: dict[str, list[str]] = {}
    with v.lock(exclusive=True):
        manifests = {}
        for dossier_id in groups:
            m = load_manifest(v, dossier_id)
            if m.status == DossierStatus.DESTROYED:
                raise ConflictError(N_("dossier {number} has been destroyed"), number=m.number)
            if m.status == DossierStatus.CLOSED:
                actor.audit("doc.add", outcome="refused", number=m.number)
                raise ConflictError(N_("dossier {number} was closed on {closed}"),
                                    hint=N_("reopen it first: 'vault dossier reopen {number}'"), number=m.number,
                                    closed=m.closed)
            manifests[dossier_id] = m
        old = manifests[order[0][0]].require_document(replaces) if replaces else None
        if old is not None and old.superseded_by:
            raise ConflictError(N_("{replaces} is already replaced by {superseded_by}"),
                                hint=N_("add the new version to the newest one"), replaces=replaces,
                                superseded_by=old.superseded_by)
        idents = actor.read_identities()
        recipients, active = members.ring_recipients(v), grants.list_grants(v)
        # Bytes read from the files given; standard input counts towards a total of 0 (unknown).
        step = (progress or no_progress)(sum(Path(f).stat().st_size for fs in groups.values() for f in fs
                                             if not isinstance(f, Stream)))
        written: list[Path] = []
        commits = []
        for dossier_id, files in groups.items():
            m = manifests[dossier_id]
            table = read_table(v, dossier_id, idents)
            mine = added[dossier_id] = []
            for f in files:
                # (``replaces`` takes one file, of one dossier: the one ``old`` is of)
                m, entry, path = _encrypt_one(v, m, table, f if isinstance(f, Stream) else Path(f), category=category,
                                              source=source, date=date, original=original, copy_note=copy_note,
                                              title=title, paper_location=paper_location, by=actor.name, step=step,
                                              replaces=old)
                written.append(path)
                mine.append(entry.number)
            if not mine:
                continue
            m = replace(m, revision=m.revision + 1)
            # The key table and the grants' key releases are staged and committed with the manifest
            # (FORMAT §18.5): an interruption before the entry changes none of them.
            files_out = {**manifest_file(actor, m),
                         **grants.key_files(actor, dossier_id, table, recipients=recipients, active=active)}
            commits.append(dict(action="doc.add", files=files_out, number=mine[0],
                                ref=mine[-1] if len(mine) > 1 else None, obj=dossier_id, rev=m.revision))
        if commits:
            actor.commit_many(commits, synced=written)
    out, taken = [], {d: 0 for d in groups}
    for (dossier_id, _), (_, files) in zip(order, batch):
        k = taken[dossier_id]
        out.append(added[dossier_id][k : k + len(files)])
        taken[dossier_id] = k + len(files)
    return out


def _encrypt_one(v: Vault, m: Manifest, table: KeyTable, src: Path | Stream, *, category: str, source: str, date: str,
                 original: bool, copy_note: str | None, title: str | None, paper_location: str | None,
                 by: str, step: Callable[[int], None], replaces: Document | None) -> tuple[Manifest, Document, Path]:
    doc_id = secrets.token_hex(16)
    kid = secrets.token_hex(16)
    rcpt = KeyRefRecipient(kid)
    path = v.layout.document(m.id, doc_id)
    make_dir(path.parent)
    source_file = contextlib.nullcontext(src.file) if isinstance(src, Stream) else open(src, "rb")
    # A large document goes to the disk with direct I/O (DirectWriter); a small one, or one on a file
    # system without it, through the page cache, its write-back started early (WritebackWriter).
    with source_file as fin, atomic_writer(path, sync=False) as fout, WritebackWriter(fout) as wb, \
            DirectWriter(fout, wb) as dw, HashingWriter(dw) as hw:
        age.encrypt(counting(fin, step), hw, [rcpt])
    assert rcpt.file_key is not None
    table.keys[kid] = rcpt.file_key
    meta = {"title": title or src.name, "source": source, "filename": src.name}
    if copy_note:
        meta["copy_note"] = copy_note
    m, entry = append_document(m, table, doc_id=doc_id, key=kid, category=category, date=date, original=original,
                               by=by, at=v.clock.stamp(), size=hw.size, sha256=hw.h.hexdigest(), meta=meta,
                               paper_location=paper_location, replaces=replaces)
    return m, entry, path


_PUBLIC = ("number", "category", "date", "original", "version", "added_at", "added_by", "size",
           "replaces", "superseded_by", "paper_location", "status")


def _public(d: Document) -> dict[str, Any]:
    rec = d.to_record()
    return {k: rec[k] for k in _PUBLIC if k in rec}


def list_docs(actor: Actor, number: str, *, with_meta: bool = False) -> list[dict[str, Any]]:
    """Documents of a dossier (cleartext facts; titles and sources too for a member who may read)."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    out = [_public(d) for d in m.documents]
    for o, d in zip(out, m.documents):
        if d.destroyed:
            o["destroyed"] = d.destroyed.to_record()
    if m.status == DossierStatus.DESTROYED:
        return out  # its keys are gone: the ghosts say by which destruction
    if with_meta and (v.policy.may(actor.roles, "dossier.read") or grants.active_grant(v, m.id, actor.name)):
        actor.audit("dossier.read", number=m.number)
        table = grants.open_key_table(actor, m.id, number=m.number)
        for o, d in zip(out, m.documents):
            if not d.is_destroyed:
                o.update(read_meta(d, table))
    return out


def read_meta(d: Document, table: KeyTable) -> dict[str, Any]:
    """A document's sealed metadata (title, source, file name, copy note)."""
    if d.meta is None:  # its keys went with it
        raise ConflictError(N_("document {docno} has been destroyed"), docno=d.number)
    return open_values(d.meta, table, what=Message(N_("document {number} metadata"), number=d.number))


def history(actor: Actor, docno: str) -> list[dict[str, Any]]:
    """Every version in the chain ``docno`` belongs to, oldest first."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, docno))
    d = m.require_document(docno)
    by_no = {x.number: x for x in m.documents}
    while d.replaces:
        d = by_no[d.replaces]
    chain = [d]
    while (newer := chain[-1].superseded_by):
        chain.append(by_no[newer])
    return [_public(x) for x in chain]


def require_save(actor: Actor, docno: str) -> str:
    """Writing plaintext anywhere but a terminal (a file, a pipe) is a copy [R-3.4.2]: allowed to
    roles the policy grants ``doc.save`` (the archive department), to anyone else once per approved
    copy request of theirs, which this uses up. Returns what allowed it, for the audit entry:
    ``doc.save`` or the request number."""
    actor.require("doc.view", number=docno)
    if actor.vault.policy.may(actor.roles, "doc.save"):
        return "doc.save"
    try:
        return grants.consume_copy_approval(actor, docno, action="doc.save")
    except grants.CopyApprovalExpired:
        raise
    except PermissionDeniedError:
        raise PermissionDeniedError(N_("you may view this document on a terminal only"), param="copy_export") from None


def check_output(v: Vault, output: Path) -> Path:
    """Refuse a plaintext output inside the vault directory, symbolic links resolved: from there it
    would be backed up, and it could replace a vault file."""
    dest = Path(os.path.abspath(output))
    real = dest.parent.resolve() / dest.name
    root = v.root.resolve()
    if real == root or real.is_relative_to(root) or (dest.is_symlink() and dest.resolve().is_relative_to(root)):
        raise PermissionDeniedError(N_("refusing to write plaintext inside the vault directory"),
                                    hint=N_("choose an output path outside the vault"))
    return dest


def view(actor: Actor, docno: str, dst: BinaryIO, *, copy_ref: str | None = None,
         progress: Progress | None = None) -> dict[str, Any]:
    """Decrypt a document to ``dst``; ``copy_ref`` (from ``require_save``) when ``dst`` is not a terminal.

    The payload's AEAD already authenticates every byte under a key only this document's key-table
    entry holds, so viewing does not hash the file first (that would read it twice); ``check``
    compares ciphertext hashes for those who hold no key.
    """
    actor.require("doc.view", number=docno)
    v = actor.vault
    m = load_manifest(v, resolve(v, docno))
    d = m.require_document(docno)
    if d.is_destroyed:
        actor.audit("doc.view", outcome="refused", number=docno)
        raise ConflictError(N_("document {docno} has been destroyed"), docno=docno)
    table = grants.open_key_table(actor, m.id, number=docno)
    path = v.layout.document(m.id, d.id)
    what = f"dossiers/{m.id}/documents/{d.id}.age ({docno})"
    # Recorded before a byte is shown; plaintext leaving for a file or pipe is a copy.
    if copy_ref is not None:
        actor.audit("doc.copy", number=docno, ref=copy_ref)
    else:
        actor.audit("doc.view", number=docno)
    try:
        f = open_regular(path, name=what)
    except FileNotFoundError:
        raise IntegrityError(N_("{what}: missing"), what=what) from None
    with f:
        src = counting(f, progress(os.fstat(f.fileno()).st_size)) if progress else f
        try:
            age.decrypt(src, dst, [table.identity()])
        except NoIdentityMatchError:
            raise IntegrityError(N_("{what}: its key is not in the key table"), what=what) from None
        except (FormatError, AuthenticationError):
            raise IntegrityError(N_("{what}: damaged or tampered with"), what=what) from None
    return _public(d)
