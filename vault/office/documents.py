"""Documents: streaming encrypted adds, versions that never overwrite, history and viewing [R-1.3.1, R-3.1.3]."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

import tomli_w

from vault import clock
from vault.crypto import age
from vault.office.dossier import load_manifest, manifest_file, parse_date, read_table, resolve, write_table
from vault.errors import (AuthenticationError, ConflictError, FormatError, InputError, IntegrityError,
                          NoIdentityMatchError, NotFoundError, PermissionDeniedError)
from vault.store.keytable import KeyRefRecipient, KeyTable, seal, unseal
from vault.office import access
from vault.store import atomic_writer, sync_files

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

CATEGORIES = ("basic-info", "contract", "service-record", "communication", "feedback", "other")


@dataclass(frozen=True)
class Stream:
    """Document content read from an open binary stream (``doc add -`` reads standard input).

    It is encrypted as it is read, like a file, so no plaintext copy is made; ``name`` is the file
    name recorded (sealed) for it.
    """

    name: str
    file: BinaryIO


class HashingWriter:
    """A write-only file that hashes and counts what passes through (the ciphertext hash).

    Large writes are hashed on a helper thread while the write system call runs (SHA-256 releases
    the GIL), and the call returns only when both are done, so the caller may reuse its buffer.
    """

    _PARALLEL = 1 << 16

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h, self.size = f, hashlib.sha256(), 0
        self._pool: ThreadPoolExecutor | None = None

    def write(self, b) -> int:
        self.size += len(b)
        if len(b) < self._PARALLEL:
            self.h.update(b)
            return self.f.write(b)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # large writes only: small commands skip it

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vault-hash")
        done = self._pool.submit(self.h.update, b)
        try:
            return self.f.write(b)
        finally:
            done.result()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in 1 MiB pieces."""
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def add(actor, number: str, files: list[Path], *, category: str, source: str, date: str,
        original: bool, copy_note: str | None = None, title: str | None = None, replaces: str | None = None,
        paper_location: str | None = None, progress: Callable[[int], None] | None = None) -> list[str]:
    """Encrypt and add ``files`` to a dossier; returns their document numbers.

    Documents are written first (unreferenced until the manifest names them), then the key table,
    then the signed manifest: the manifest rename is the commit point, so an interrupted add leaves
    the dossier exactly as it was.
    """
    actor.require("doc.add", number=number)
    v = actor.vault
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}", hint=f"categories: {', '.join(CATEGORIES)}")
    date = parse_date(date)
    if not source.strip():
        raise InputError("the source of the material is required [R-3.1.3]", hint="pass --source TEXT")
    if not original and not (copy_note or "").strip():
        raise InputError("a copy needs a note saying why the original could not be had [R-3.1.3]",
                         hint="pass --copy-note TEXT, or --original")
    if replaces and len(files) != 1:
        raise InputError("--replaces takes exactly one new file")
    for f in files:
        if not isinstance(f, Stream) and not Path(f).is_file():
            raise InputError(f"{f}: no such file", hint="check the path")
    dossier_id = resolve(v, number)
    added: list[str] = []
    with v.lock(exclusive=True):
        m = load_manifest(v, dossier_id)
        if m["status"] == "destroyed":
            raise ConflictError(f"dossier {m['number']} has been destroyed")
        old = _find_doc(m, replaces) if replaces else None
        if old is not None and old.get("superseded_by"):
            raise ConflictError(f"{replaces} is already replaced by {old['superseded_by']}",
                                hint="add the new version to the newest one")
        table = read_table(v, dossier_id, actor.read_identities())
        written = []
        for f in files:
            entry, path = _encrypt_one(v, m, table, f if isinstance(f, Stream) else Path(f), category=category, source=source, date=date,
                                       original=original, copy_note=copy_note, title=title,
                                       paper_location=paper_location, by=actor.name)
            written.append(path)
            if old is not None:
                entry["replaces"] = old["number"]
                entry["version"] = old.get("version", 1) + 1
                old["superseded_by"] = entry["number"]
            m["documents"].append(entry)
            added.append(entry["number"])
            if progress:
                progress(1)
        sync_files(written)
        m["revision"] += 1
        write_table(v, table)
        actor.commit("doc.add", manifest_file(actor, m), number=added[0],
                     ref=added[-1] if len(added) > 1 else None, obj=dossier_id, rev=m["revision"])
        access.refresh_grant_keys(actor, dossier_id, table)
    return added


def _encrypt_one(v, m: dict, table: KeyTable, src: Path | Stream, *, category: str, source: str, date: str,
                 original: bool, copy_note: str | None, title: str | None, paper_location: str | None,
                 by: str) -> tuple[dict[str, Any], Path]:
    doc_id = secrets.token_hex(16)
    kid = secrets.token_hex(16)
    rcpt = KeyRefRecipient(kid)
    path = v.layout.document(m["id"], doc_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    source_file = contextlib.nullcontext(src.file) if isinstance(src, Stream) else open(src, "rb")
    with source_file as fin, atomic_writer(path, sync=False) as fout, HashingWriter(fout) as hw:
        age.encrypt(fin, hw, [rcpt])
    assert rcpt.file_key is not None
    table.keys[kid] = rcpt.file_key
    meta = {"title": title or src.name, "source": source, "filename": src.name}
    if copy_note:
        meta["copy_note"] = copy_note
    meta_kid, meta_blob = seal(tomli_w.dumps(meta).encode(), table)
    number = f"{m['number']}/{m['next_doc']:04d}"
    m["next_doc"] += 1
    entry = {
        "number": number, "id": doc_id, "key": kid, "category": category, "date": date,
        "original": original, "version": 1, "added_at": clock.stamp(), "added_by": by,
        "size": hw.size, "sha256": hw.h.hexdigest(),
        "meta_key": meta_kid, "meta": base64.b64encode(meta_blob).decode(),
    }
    if paper_location:
        entry["paper_location"] = paper_location
    return entry, path


def _find_doc(m: dict, docno: str) -> dict[str, Any]:
    for d in m["documents"]:
        if d["number"] == docno:
            return d
    raise NotFoundError(f"no document {docno}", hint=f"see 'vault doc list {m['number']}'")


def _public(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("number", "category", "date", "original", "version", "added_at", "added_by", "size",
            "replaces", "superseded_by", "paper_location", "status")
    return {k: d[k] for k in keys if k in d}


def list_docs(actor, number: str, *, with_meta: bool = False) -> list[dict[str, Any]]:
    """Documents of a dossier (cleartext facts; titles and sources too for a member who may read)."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, number))
    out = [_public(d) for d in m["documents"]]
    if with_meta and (v.policy.may(actor.roles, "dossier.read") or access.active_grant(v, m["id"], actor.name)):
        actor.audit("dossier.read", number=m["number"])
        table = access.open_key_table(actor, m["id"], number=m["number"])
        for o, d in zip(out, m["documents"]):
            if d.get("status") != "destroyed":
                o.update(read_meta(d, table))
    return out


def read_meta(d: dict[str, Any], table: KeyTable) -> dict[str, Any]:
    plain = unseal(base64.b64decode(d["meta"]), table, what=f"document {d['number']} metadata")
    return tomllib.loads(plain.decode())


def history(actor, docno: str) -> list[dict[str, Any]]:
    """Every version in the chain ``docno`` belongs to, oldest first."""
    actor.require("dossier.list")
    v = actor.vault
    m = load_manifest(v, resolve(v, docno))
    d = _find_doc(m, docno)
    by_no = {x["number"]: x for x in m["documents"]}
    while d.get("replaces"):
        d = by_no[d["replaces"]]
    chain = [d]
    while chain[-1].get("superseded_by"):
        chain.append(by_no[chain[-1]["superseded_by"]])
    return [_public(x) for x in chain]


def require_save(actor, docno: str) -> None:
    """Writing plaintext to a file or a pipe is for the archive department; others view on a
    terminal, or export once with an approved copy request [R-3.4.2]."""
    actor.require("doc.view", number=docno)
    if not actor.vault.policy.may(actor.roles, "doc.save"):
        actor.audit("doc.save", outcome="refused", number=docno)
        raise PermissionDeniedError(
            "you may view this document on a terminal only",
            hint="to get a copy, file 'vault request copy DOCNO --purpose …' and use 'vault doc export'")


def view(actor, docno: str, dst: BinaryIO) -> dict[str, Any]:
    """Decrypt a document to ``dst``.

    The payload's AEAD already authenticates every byte under a key only this document's key-table
    entry holds, so viewing does not hash the file first (that would read it twice); ``check``
    compares ciphertext hashes for those who hold no key.
    """
    actor.require("doc.view", number=docno)
    v = actor.vault
    m = load_manifest(v, resolve(v, docno))
    d = _find_doc(m, docno)
    if d.get("status") == "destroyed":
        actor.audit("doc.view", outcome="refused", number=docno)
        raise ConflictError(f"document {docno} has been destroyed")
    table = access.open_key_table(actor, m["id"], number=docno)
    path = v.layout.document(m["id"], d["id"])
    what = f"dossiers/{m['id']}/documents/{d['id']}.age ({docno})"
    actor.audit("doc.view", number=docno)  # recorded before a byte is shown
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise IntegrityError(f"{what}: missing") from None
    with f:
        try:
            age.decrypt(f, dst, [table.identity()])
        except NoIdentityMatchError:
            raise IntegrityError(f"{what}: its key is not in the key table") from None
        except (FormatError, AuthenticationError):
            raise IntegrityError(f"{what}: damaged or tampered with") from None
    return _public(d)
