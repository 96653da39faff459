"""``vault check`` of one dossier's manifest and documents: read, or settled from what this client verified."""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from vault.archive import checkcache
from vault.archive.manifestrecord import Manifest
from vault.archive.manifests import load_manifest
from vault.crypto import age
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError, VaultError
from vault.i18n import Message, N_
from vault.store.keytable import KEYREF_TYPE, open_field
from vault.store.hashing import hash_open
from vault.store.layout import PATHS
from vault.store import NotRegularError, not_regular, open_regular

if TYPE_CHECKING:
    from vault.archive.vault import Vault
    from vault.store.keytable import KeyTable


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any, /) -> int:
        return len(b)


# ``_unchanged`` spells a document's path without pathlib (10,000 stats a check); it is this one.
assert PATHS["document"] == "dossiers/<dossier-id>/documents/<doc-id>.age"

# What a keyless check reads of a manifest's document (all it keeps of one in ``checkcache``).
_DOC_FIELDS = ("id", "number", "sha256", "size", "key", "status")


class ReadDoc(NamedTuple):
    """What check reads of a document: ``_DOC_FIELDS`` (a row of ``checkcache``), and its sealed
    metadata when the whole manifest was read."""

    id: str
    number: str
    sha256: str
    size: int
    key: str | None
    status: str | None
    meta: str | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """What check reads of a manifest: the whole of it (``of``), or what ``checkcache`` kept of it."""

    id: str
    status: str
    number: str
    documents: tuple[ReadDoc, ...]

    @classmethod
    def of(cls, m: Manifest) -> Read:
        return cls(m.id, m.status.value, m.number,
                   tuple(ReadDoc(d.id, d.number, d.sha256, d.size, d.key, d.status, d.meta) for d in m.documents))


def manifest(v: Vault, dossier_id: str, mem: dict, verified: checkcache.Verified, files: dict) -> Read:
    """The manifest as ``load_manifest`` gives it, or what a keyless check reads of it from
    ``verified`` when this client verified the file with its status now, the hash the history names
    and its signer's key; a manifest it verifies here is remembered."""
    rel = f"dossiers/{dossier_id}/manifest.toml"
    h = (files.get(rel) or (None,))[0]
    path = os.path.join(v.root, rel)
    if h is not None:
        try:
            got = verified.manifest(rel, checkcache.status(os.stat(path)), h)
        except OSError:
            got = None
        if got is not None and got[0] in mem and checkcache.key_id(mem[got[0]]["key"]) == got[1]:
            m = _cached_fields(got[2], dossier_id)
            if m is not None:
                return m
    try:
        f = open_regular(path)
    except OSError:
        f = None
    if f is not None:
        with f:
            at = time.time_ns()
            seen = checkcache.status(os.fstat(f.fileno()))
            data = f.read()
    m = Read.of(full := load_manifest(v, dossier_id, member_records=mem))
    by = full.signature.by  # (``load_manifest`` verified the signature under this member's key)
    if f is not None and h is not None and hashlib.sha256(data).hexdigest() == h:
        fields = {"id": m.id, "status": m.status, "number": m.number,
                  "documents": [list(d[:len(_DOC_FIELDS)]) for d in m.documents]}
        verified.put_manifest(rel, seen, h, by, mem[by]["key"], fields, at=at)
    return m


def _cached_fields(fields: Any, dossier_id: str) -> Read | None:
    """The manifest fields ``_manifest`` remembered, or None if they are not of that shape (a damaged
    cache is read past, never believed)."""
    def row_ok(row: Any) -> bool:
        return isinstance(row, list) and len(row) == len(_DOC_FIELDS) and all(
            isinstance(x, str) for x in (row[0], row[1], row[2], row[4])) \
            and type(row[3]) is int and (row[5] is None or isinstance(row[5], str))

    if not (isinstance(fields, dict) and fields.get("id") == dossier_id and isinstance(fields.get("status"), str)
            and isinstance(fields.get("number"), str) and isinstance(fields.get("documents"), list)
            and all(row_ok(r) for r in fields["documents"])):
        return None
    return Read(fields["id"], fields["status"], fields["number"], tuple(ReadDoc(*row) for row in fields["documents"]))


def unchanged(v: Vault, m: Read, d: ReadDoc, verified: checkcache.Verified) -> tuple[list, int, int] | None:
    """The result for a document whose status is one this client saw when it verified its hash and
    key reference (those the manifest names now), else None."""
    rel = f"dossiers/{m.id}/documents/{d.id}.age"  # (layout.PATHS["document"], without pathlib)
    try:
        st = checkcache.status(os.stat(os.path.join(v.root, rel)))
    except OSError:
        return None  # missing or unreadable: the worker names it
    ok = verified.get(rel, st, d.sha256, d.key or "")
    return ([], d.size, 1) if ok else None


def check_document(v: Vault, m: Read, d: ReadDoc, table: KeyTable | None, verified: checkcache.Verified,
                   in_memory: int) -> tuple[list, int, int]:
    """(problems, bytes, 1 if unchanged since verified else 0) for one document: its ciphertext hash,
    its header, and with ``table`` its metadata and payload; one of up to ``in_memory`` bytes is read
    once and parsed from memory. Runs on the check's worker threads (hashing and the AEAD drop the GIL)."""
    rel = f"dossiers/{m.id}/documents/{d.id}.age"
    where = f"{rel} ({d.number})"
    path = os.path.join(v.root, rel)  # (layout.PATHS["document"], without pathlib)
    try:
        f = open_regular(path)
    except FileNotFoundError:
        return [Message(N_("{rel}: missing"), rel=where)], 0, 0
    except NotRegularError:  # a FIFO would stop the check, a symbolic link name what is not the vault's
        return [not_regular(where).message], 0, 0
    with f:
        # The status as it was before the first byte was read: a write after this changes it.
        at = time.time_ns()
        seen = checkcache.status(os.fstat(f.fileno()))
        if d.size <= in_memory:
            # All of it, or a byte more than the manifest names or than the in-memory limit (then a
            # mismatch): asking for the limit of every small file costs an allocation of that size.
            data = f.read(min(in_memory, max(d.size, seen[2])) + 1)
            size = len(data)
            digest = hashlib.sha256(data).hexdigest() if size <= in_memory else ""
            src: Any = None
        else:
            digest, size = hash_open(f)  # this file, not whatever the path names by now
            src = f
        if (digest, size) != (d.sha256, d.size):
            return [Message(N_("{rel}: ciphertext hash does not match the manifest (damaged or tampered with)"), rel=where)], size, 0
        try:
            if src is None:
                hdr, start = age.read_header_bytes(data)
            else:
                hdr = age.read_header(src)
            if [s.type for s in hdr.stanzas] != [KEYREF_TYPE] or hdr.stanzas[0].args != (d.key,):
                return [Message(N_("{rel}: header does not refer to its key-table entry"), rel=where)], size, 0
        except (FormatError, AuthenticationError):
            return [Message(N_("{rel}: age header does not parse"), rel=where)], size, 0
        verified.put(rel, seen, d.sha256, d.key or "", at=at)
        if table is None:
            return [], size, 0
        problems: list = []
        _try(problems, lambda: open_field(d.meta or "", table, what=Message(N_("{number} metadata"), number=d.number)))
        try:
            if src is None:  # read into memory: its payload checked in place, not parsed again
                age.authenticate(hdr, memoryview(data)[start:], [table.identity()])
            else:
                src.seek(0)
                age.decrypt(src, _Null(), [table.identity()])
        except NoIdentityMatchError:
            problems.append(Message(N_("{rel}: its key is missing from the key table"), rel=where))
        except (FormatError, AuthenticationError):
            problems.append(Message(N_("{rel}: payload fails authentication (damaged or tampered with)"), rel=where))
        return problems, size, 0


def _try(problems: list, fn: Any) -> None:
    try:
        fn()
    except VaultError as e:
        problems.append(e.message)


# -- a dossier settled whole -------------------------------------------------------------------------
# A keyless check that finds a dossier as this client left it — its manifest with the status, hash
# and signer's key it was verified with, and its documents directory holding exactly the documents
# that manifest names, each with the status it had when its hash was verified (and what is remembered
# of each, unchanged) — counts it with one listing (the check's walk) and one stat per file, without
# reading the manifest's documents one by one.

def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _line(name: str, st: tuple | list, e: list) -> str:
    """A document's name, its status now and what is remembered of it (``e``: status, hash, key)."""
    return f"{name}:{st[0]}:{st[1]}:{st[2]}:{st[3]}:{st[4]}:{e[5]}:{e[6]}"


def settled(v: Vault, dossier_id: str, names: list[str], mem: dict, verified: checkcache.Verified,
            files: dict) -> tuple[int, int] | None:
    """(documents, bytes) of a dossier exactly as this client settled it, whose documents directory
    lists ``names``; None when anything differs (then it is checked document by document)."""
    e = verified.dossier(dossier_id)
    if e is None:
        return None
    status, sha, by, key, digest, count, size, word = e[:5], e[5], e[6], e[7], e[8], e[9], e[10], e[11]
    if (files.get(f"dossiers/{dossier_id}/manifest.toml") or (None,))[0] != sha:
        return None
    if word != "destroyed" and (files.get(f"keys/{dossier_id}.age") or (None,))[0] is None:
        return None  # the history names no key table now: named by the document-by-document path
    if by not in mem or checkcache.key_id(mem[by]["key"]) != key:
        return None
    base = os.path.join(v.root, "dossiers", dossier_id)
    lines = []
    remembered = verified.old["files"]
    rel = f"dossiers/{dossier_id}/documents/"
    docdir = base + "/documents/"
    try:
        seen = verified.statuses.get(f"dossiers/{dossier_id}/manifest.toml") \
            or checkcache.status(os.stat(os.path.join(base, "manifest.toml")))
        if seen != tuple(status):
            return None
        # (spelt out, not through ``_line``: this runs for every document of the vault)
        for n in sorted(names):
            fe = remembered.get(rel + n)
            if type(fe) is not list or len(fe) != 7:
                return None
            st = os.stat(docdir + n)
            lines.append(f"{n}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{fe[5]}:{fe[6]}")
    except OSError:
        return None
    if _digest(lines) != digest:
        return None
    verified.keep_dossier(dossier_id, e, names)
    return count, size


def settle(m: Read, docs: list[ReadDoc], names: list[str], verified: checkcache.Verified) -> None:
    """Remember dossier ``m`` as settled, if this check verified (or found verified) its manifest and
    each of its documents ``docs`` with a status old enough to remember, and its documents directory
    lists exactly those (``names``). Call only when the dossier had no problem and no note."""
    did = m.id
    me = verified.new["manifests"].get(f"dossiers/{did}/manifest.toml")
    names = sorted(names)
    if me is None or names != sorted(f"{d.id}.age" for d in docs):
        return
    lines = []
    for n in names:
        fe = verified.new["files"].get(f"dossiers/{did}/documents/{n}")
        if fe is None:
            return  # not remembered (changed too recently): checked document by document next time
        lines.append(_line(n, fe, fe))
    verified.put_dossier(did, [*me[:8], _digest(lines), len(docs), sum(d.size for d in docs), m.status])
