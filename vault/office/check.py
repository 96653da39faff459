"""``vault check``: verify every signature and ciphertext hash without keys; with keys, every byte."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from vault.archive import audit, authority, members
from vault.crypto import age
from vault.store.hashing import hash_file
from vault.archive.manifests import load_manifest, read_table
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError, VaultError
from vault.store.keytable import KEYREF_TYPE, unseal
from vault.store import TMP_PREFIX, find_temporaries
from vault.archive import destructions, grants, holds, reviews
from vault.office import intake, paper, recoveryexport
from vault.office.holds import lifts


@dataclass
class Report:
    """What ``check`` found: problems name damaged files; notes are harmless leftovers."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"dossiers": 0, "documents": 0, "bytes": 0})

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes, **self.counts}


_WORKERS = max(2, min(4, os.cpu_count() or 1))
_AHEAD = 8  # dossiers whose documents may be in flight


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(b)


def check(v, *, actor=None, progress: Callable[[int], None] | None = None,
          anchor: tuple[int, str] | None = None) -> Report:
    """Check the whole vault. With ``actor`` (``--read-data``) also decrypt everything; with
    ``anchor`` (count, head) also that the history extends a checkpoint kept offline."""
    rep = Report()
    with v.lock(exclusive=False):
        # The history first: everything else is judged against it.
        res = audit.verify(v, anchor=anchor)
        rep.problems.extend(res.problems)
        if res.replay is None:
            return rep
        rep.problems.extend(authority.check_files(v, res.replay))
        try:
            mem = members.all_members(v)
            for ring in v.policy.data["rings"]:
                members.ring_record(v, ring)
        except VaultError as e:
            rep.problems.append(str(e))
            return rep
        ids = actor.read_identities() if actor else None
        # Documents are checked on threads: reading, hashing and decrypting release the GIL, so
        # both of a small machine's cores work. Results are taken in order: the report is stable.
        # While the workers read, hash and decrypt one dossier's documents, this thread goes on
        # verifying the next manifests; results are taken in dossier order, a bounded number ahead.
        pending: deque[Callable[[], None]] = deque()
        with ThreadPoolExecutor(_WORKERS, thread_name_prefix="vault-check") as pool:
            for ddir in sorted((v.root / "dossiers").iterdir()):
                if ddir.is_dir():
                    pending.append(_check_dossier(v, ddir.name, mem, ids, rep, pool))
                    while len(pending) > _AHEAD:
                        pending.popleft()()
                    if progress:
                        progress(1)
            while pending:
                pending.popleft()()
        _check_records(v, mem, rep)
        for p in find_temporaries(v.root):
            rep.notes.append(f"{p.relative_to(v.root)}: temporary file left by an interrupted command (removed by the next write)")
    return rep


def _check_dossier(v, dossier_id: str, mem: dict, ids, rep: Report, pool) -> Callable[[], None]:
    """Check a dossier's manifest, key table and sealed texts now; its documents on ``pool``. Returns
    what collects the documents' results into ``rep`` (and names leftover files), to call in order."""
    mine: list[str] = []  # this dossier's problems, added to the report in dossier order

    def report_only() -> None:
        rep.problems.extend(mine)

    try:
        m = load_manifest(v, dossier_id, member_records=mem)
    except VaultError as e:
        mine.append(str(e))
        return report_only
    rep.counts["dossiers"] += 1
    kt_path = v.layout.key_table(dossier_id)
    table = None
    if m["status"] != "destroyed":
        try:
            with open(kt_path, "rb") as f:
                age.read_header(f)
            if ids is not None:
                table = read_table(v, dossier_id, ids)
        except FileNotFoundError:
            mine.append(f"keys/{dossier_id}.age: missing")
        except (FormatError, AuthenticationError):
            mine.append(f"keys/{dossier_id}.age: damaged (header does not parse)")
        except VaultError as e:
            mine.append(str(e))
    if table is not None:
        for p in (x for x in m["profile"] if "sealed" in x):
            _try(mine, lambda p=p: unseal(base64.b64decode(p["sealed"]), table, what=f"{m['number']} profile v{p['version']}"))
    docs = [d for d in m["documents"] if d.get("status") != "destroyed"]
    referenced = {f"{d['id']}.age" for d in docs}
    futures = [pool.submit(_check_document, v, m, d, table) for d in docs]
    docdir = v.layout.dossier_dir(dossier_id) / "documents"

    def collect() -> None:
        rep.problems.extend(mine)
        for fut in futures:
            problems, size = fut.result()
            rep.counts["documents"] += 1
            rep.counts["bytes"] += size
            rep.problems.extend(problems)
        if docdir.is_dir():
            for p in docdir.iterdir():
                if p.name not in referenced and not p.name.startswith(TMP_PREFIX):
                    rep.notes.append(f"dossiers/{dossier_id}/documents/{p.name}: not in the manifest "
                                     "(left by an interrupted add)")

    return collect


# Documents up to this size are read once into memory and hashed, parsed and decrypted from there;
# larger ones are hashed in one pass and decrypted in a second, so memory stays flat.
_IN_MEMORY = 16 << 20


def _check_document(v, m: dict, d: dict, table) -> tuple[list[str], int]:
    """(problems, bytes) for one document: its ciphertext hash, its header, and with ``table`` its
    metadata and payload. Runs on the check's worker threads (hashing and the AEAD drop the GIL)."""
    rel = f"dossiers/{m['id']}/documents/{d['id']}.age ({d['number']})"
    path = v.layout.document(m["id"], d["id"])
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return [f"{rel}: missing"], 0
    with f:
        if d.get("size", 0) <= _IN_MEMORY:
            data = f.read(_IN_MEMORY + 1)
            size = len(data)
            digest = hashlib.sha256(data).hexdigest() if size <= _IN_MEMORY else ""
            src: Any = io.BytesIO(data)
        else:
            digest, size = hash_file(path)
            src = f
        if (digest, size) != (d["sha256"], d["size"]):
            return [f"{rel}: ciphertext hash does not match the manifest (damaged or tampered with)"], size
        try:
            hdr = age.read_header(src)
            if [s.type for s in hdr.stanzas] != [KEYREF_TYPE] or hdr.stanzas[0].args != (d["key"],):
                return [f"{rel}: header does not refer to its key-table entry"], size
        except (FormatError, AuthenticationError):
            return [f"{rel}: age header does not parse"], size
        if table is None:
            return [], size
        problems: list[str] = []
        _try(problems, lambda: unseal(base64.b64decode(d["meta"]), table, what=f"{d['number']} metadata"))
        src.seek(0)
        try:
            age.decrypt(src, _Null(), [table.identity()])
        except NoIdentityMatchError:
            problems.append(f"{rel}: its key is missing from the key table")
        except (FormatError, AuthenticationError):
            problems.append(f"{rel}: payload fails authentication (damaged or tampered with)")
        return problems, size


def _try(rep: Report | list[str], fn) -> None:
    try:
        fn()
    except VaultError as e:
        (rep.problems if isinstance(rep, Report) else rep).append(str(e))


def _check_records(v, mem: dict, rep: Report) -> None:
    """Procedure records: each must say what its history entry says (requests, grants, holds,
    destructions, reviews, intake, paper originals, recovery exports); the facts themselves come from the history,
    which ``check`` verified first."""
    for fn in (grants.list_requests, grants.list_grants, holds.verified_holds, lifts, destructions.list_destructions,
               intake.pending, paper.loans, paper.inventories, recoveryexport.list_exports):
        _try(rep, lambda fn=fn: fn(v))
    for no, f in sorted(authority.state(v)["destructions"].items()):
        if f.get("certificate") is not None:
            _try(rep, lambda no=no: destructions.certificate(v, no))
    # Only dossiers the history wrote reviews for: asking every dossier would walk every record path
    # once per dossier (quadratic in a large vault) to find none.
    reviewed = {rel.split("/")[1] for rel, (h, *_) in authority.state(v)["files"].items()
                if rel.startswith("reviews/") and h is not None and rel.count("/") == 2}
    for d in sorted(authority.state(v)["dossiers"]):
        if d in reviewed:
            _try(rep, lambda d=d: reviews.history(v, d, member_records=mem))
    _try(rep, lambda: rep.problems.extend(
        f"destructions/{u['number']}.execution.toml: destruction {u['number']} of {u['target']} started at "
        f"{u['started_at']} did not finish (next step: {u['next']}); run 'vault destroy execute {u['number']}'"
        for u in destructions.unfinished(v)))
