"""``vault check``: verify every signature and ciphertext hash without keys; with keys, every byte."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vault.archive import audit, authority, checkcache, committed, members, recovery, replaypoint, searchcheck
from vault.crypto import age
from vault.store.counting import Progress, no_progress
from vault.archive.manifests import load_manifest, read_table
from vault.errors import AuthenticationError, FormatError, NoIdentityMatchError, VaultError
from vault.store.keytable import KEYREF_TYPE, open_field
from vault.store.layout import PATHS
from vault.store import TMP_PREFIX, find_temporaries
from vault.archive import destructions, grants, holds, reviews
from vault.office import intake, paper, recoveryexport
from vault.office.holds import lifts
from vault.backup.targets_record import known_targets
from vault.i18n import Message, N_

if TYPE_CHECKING:
    from vault.archive.vault import Actor, Vault
    from vault.store.keytable import KeyTable


@dataclass
class Report:
    """What ``check`` found: problems name damaged files; notes are harmless leftovers."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"dossiers": 0, "documents": 0, "bytes": 0, "unchanged": 0})

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes, **self.counts}


_WORKERS = max(2, min(4, os.cpu_count() or 1))
_AHEAD = 8  # dossiers whose documents may be in flight
_SWITCH = 0.0005  # seconds: the GIL switch interval while the workers run (see ``check``)


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any, /) -> int:
        return len(b)


def check(v: Vault, *, actor: Actor | None = None, progress: Progress | None = None,
          anchor: tuple[int, str] | None = None) -> Report:
    """Check the whole vault. With ``actor`` (``--read-data``) also decrypt everything; with
    ``anchor`` (count, head) also that the history extends a checkpoint kept offline."""
    rep = Report()
    # Without a key, what this client verified before and whose file status has not changed since
    # is not read again (``checkcache``: documents, records, manifests, the history's signatures);
    # ``--read-data`` reads and verifies everything.
    verified = checkcache.Verified.load(v) if actor is None else checkcache.Verified(v, {})
    with v.lock(exclusive=False):
        # The history first: everything else is judged against it.
        authority.remember_signatures(verified.signatures())
        res = audit.verify(v, anchor=anchor, resume=verified.history())
        rep.problems.extend(res.problems)
        rep.notes.extend(res.notes)
        if res.replay is None:
            return rep
        verified.put_signatures(authority.verified_signatures(res.replay.lines or []))
        rep.problems.extend(recovery.check_files(v, res.replay, verified if actor is None else None))
        rep.notes.extend(recovery.interrupted(v, res.replay))
        try:
            mem = members.all_members(v)
            for ring in v.policy.data["rings"]:
                members.ring_record(v, ring)
        except VaultError as e:
            rep.problems.append(e.message)
            return rep
        ids = actor.read_identities() if actor else None
        st = res.replay.state
        # (the directory's entries say which are directories: no stat per dossier)
        dirs = sorted(Path(e.path) for e in os.scandir(v.root / "dossiers") if e.is_dir())
        # Destructions under way, once: none starts while this holds the shared lock.
        executing = {d["dossier"] for d in authority.state(v)["destructions"].values() if d.get("state") == "executing"}
        # (the total for a bar costs a stat of every document: only when there is a bar to draw)
        step = progress(sum(_bytes_under(p / "documents") for p in dirs)) if progress else no_progress(0)
        # Documents are checked on threads: reading, hashing and decrypting release the GIL, so
        # both of a small machine's cores work. While the workers read, hash and decrypt one
        # dossier's documents, this thread goes on verifying the next manifests; results are taken
        # in dossier order, a bounded number ahead, so the report is stable.
        pending: deque[Callable[[], None]] = deque()
        # The workers hold the GIL between their system calls and AEAD calls; with the default 5 ms
        # switch interval this thread may wait that long after each of its own (every listing, stat
        # and signature check): in a profile of --read-data, 4 ms per listing of a documents directory.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, _SWITCH))
        with contextlib.ExitStack() as restore, ThreadPoolExecutor(_WORKERS, thread_name_prefix="vault-check") as pool:
            restore.callback(sys.setswitchinterval, interval)
            for ddir in dirs:
                if recovery.uncreated_dossier(v, st, ddir.name):
                    note = Message(N_("dossiers/{name}: left by a 'dossier create' that stopped before its "
                                      "commit point (counts for nothing; 'vault repair' removes it)"), name=ddir.name)
                    pending.append(functools.partial(rep.notes.append, note))
                else:
                    pending.append(_check_dossier(v, ddir.name, mem, ids, rep, step, pool, ddir.name in executing,
                                                  verified, st["files"]))
                while len(pending) > _AHEAD:
                    pending.popleft()()
            while pending:
                pending.popleft()()
        verified.put_history(replaypoint.take(v, res.replay))
        verified.save()
        _check_records(v, mem, rep)
        problems, notes = searchcheck.check(v, actor)
        rep.problems.extend(problems)
        rep.notes.extend(notes)
        for p in find_temporaries(v.root):
            rep.notes.append(Message(N_("{relative_to}: temporary file left by an interrupted command (removed by the next write or 'vault repair')"), relative_to=p.relative_to(v.root)))
    return rep


def _bytes_under(d: Path) -> int:
    """The bytes of the files directly in ``d`` (a dossier's documents), for the progress bar."""
    try:
        return sum(e.stat().st_size for e in os.scandir(d) if e.is_file(follow_symlinks=False))
    except OSError:
        return 0


def _check_dossier(v: Vault, dossier_id: str, mem: dict, ids: list[age.Identity] | None, rep: Report, step: Callable[[int], None],
                   pool: ThreadPoolExecutor, shredding: bool, verified: checkcache.Verified,
                   files: dict) -> Callable[[], None]:
    """Check a dossier's manifest, key table and sealed texts now; its documents on ``pool``. Returns
    what collects the documents' results into ``rep`` (and names leftover files), to call in order."""
    mine: list = []  # this dossier's problems, added to the report in dossier order

    def report_only() -> None:
        rep.problems.extend(mine)

    try:
        m = _manifest(v, dossier_id, mem, verified, files) if ids is None \
            else load_manifest(v, dossier_id, member_records=mem)
    except VaultError as e:
        mine.append(e.message)
        return report_only
    rep.counts["dossiers"] += 1
    table = None
    if m["status"] != "destroyed":
        # Its bytes against the history were checked with every record (``recovery.check_files``).
        # (the replay just verified, in memory: ``committed.exists`` would ask the client's state database)
        if (files.get(f"keys/{dossier_id}.age") or (None,))[0] is None:
            if not shredding:  # an unfinished execution is named on its own
                mine.append(Message(N_("keys/{dossier_id}.age: the history names no key table for dossier {number}"),
                                    dossier_id=dossier_id, number=m["number"]))
        elif ids is not None:
            try:
                table = read_table(v, dossier_id, ids)
            except VaultError as e:
                mine.append(e.message)
    if table is not None:
        for p in (x for x in m["profile"] if "sealed" in x):
            _try(mine, lambda p=p: open_field(p["sealed"], table, what=Message(N_("{number} profile v{version}"), number=m['number'], version=p['version'])))
    # A destruction under way (``shredding``) overwrites and deletes ciphertext step by step; until it
    # finishes, the unfinished execution is what check names, not each document it has reached.
    docs = [] if shredding else [d for d in m["documents"] if d.get("status") != "destroyed"]
    referenced = {f"{d['id']}.age" for d in m["documents"] if d.get("status") != "destroyed"}
    # A document this client verified with the status it has now is settled here, with one stat;
    # the rest go to the workers.
    settled = [_unchanged(v, m, d, verified) if table is None else None for d in docs]
    futures: list[tuple[list, int, int] | Future[tuple[list, int, int]]] = [
        f or pool.submit(_check_document, v, m, d, table, verified) for f, d in zip(settled, docs)]
    docdir = v.layout.dossier_dir(dossier_id) / "documents"

    def collect() -> None:
        rep.problems.extend(mine)
        for fut in futures:
            problems, size, unchanged = fut if isinstance(fut, tuple) else fut.result()
            rep.counts["documents"] += 1
            rep.counts["bytes"] += size
            rep.counts["unchanged"] += unchanged
            rep.problems.extend(problems)
            step(size)
        try:  # (one listing, no stat: a missing directory lists nothing)
            names = [] if shredding else os.listdir(docdir)
        except (FileNotFoundError, NotADirectoryError):
            names = []
        for name in names:
            if name not in referenced and not name.startswith(TMP_PREFIX):
                rep.notes.append(Message(N_("dossiers/{dossier_id}/documents/{name}: not in the manifest (left by an "
                                            "interrupted add; 'vault repair' removes it)"), dossier_id=dossier_id,
                                         name=name))

    return collect


# ``_unchanged`` spells a document's path without pathlib (10,000 stats a check); it is this one.
assert PATHS["document"] == "dossiers/<dossier-id>/documents/<doc-id>.age"

# What a keyless check reads of a manifest (all it keeps of one in ``checkcache``).
_DOC_FIELDS = ("id", "number", "sha256", "size", "key", "status")


def _manifest(v: Vault, dossier_id: str, mem: dict, verified: checkcache.Verified, files: dict) -> dict:
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
        f = open(path, "rb")
    except OSError:
        f = None
    if f is not None:
        with f:
            at = time.time_ns()
            seen = checkcache.status(os.fstat(f.fileno()))
            data = f.read()
    m = load_manifest(v, dossier_id, member_records=mem)
    by = m["signature"]["by"]  # (``load_manifest`` verified the signature under this member's key)
    if f is not None and h is not None and hashlib.sha256(data).hexdigest() == h:
        fields = {"id": m["id"], "status": m["status"], "number": m["number"],
                  "documents": [[d.get(k) for k in _DOC_FIELDS] for d in m["documents"]]}
        verified.put_manifest(rel, seen, h, by, mem[by]["key"], fields, at=at)
    return m


def _cached_fields(fields: Any, dossier_id: str) -> dict | None:
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
    return {**fields, "documents": [dict(zip(_DOC_FIELDS, row)) for row in fields["documents"]]}


# Documents up to this size are read once into memory and hashed, parsed and decrypted from there;
# larger ones are hashed in one pass and decrypted in a second, so memory stays flat.
_IN_MEMORY = 16 << 20


def _unchanged(v: Vault, m: dict, d: dict, verified: checkcache.Verified) -> tuple[list, int, int] | None:
    """The result for a document whose status is one this client saw when it verified its hash and
    key reference (those the manifest names now), else None."""
    rel = f"dossiers/{m['id']}/documents/{d['id']}.age"  # (layout.PATHS["document"], without pathlib)
    try:
        st = checkcache.status(os.stat(os.path.join(v.root, rel)))
    except OSError:
        return None  # missing or unreadable: the worker names it
    ok = verified.get(rel, st, d["sha256"], d["key"])
    return ([], d["size"], 1) if ok else None


def _check_document(v: Vault, m: dict, d: dict, table: KeyTable | None, verified: checkcache.Verified) -> tuple[list, int, int]:
    """(problems, bytes, 1 if unchanged since verified else 0) for one document: its ciphertext hash,
    its header, and with ``table`` its metadata and payload. Runs on the check's worker threads
    (hashing and the AEAD drop the GIL)."""
    rel = f"dossiers/{m['id']}/documents/{d['id']}.age"
    where = f"{rel} ({d['number']})"
    path = v.layout.document(m["id"], d["id"])
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return [Message(N_("{rel}: missing"), rel=where)], 0, 0
    with f:
        # The status as it was before the first byte was read: a write after this changes it.
        at = time.time_ns()
        seen = checkcache.status(os.fstat(f.fileno()))
        if d.get("size", 0) <= _IN_MEMORY:
            data = f.read(_IN_MEMORY + 1)
            size = len(data)
            digest = hashlib.sha256(data).hexdigest() if size <= _IN_MEMORY else ""
            src: Any = io.BytesIO(data)
        else:
            digest, size = _hash_open(f)  # this file, not whatever the path names by now
            src = f
        if (digest, size) != (d["sha256"], d["size"]):
            return [Message(N_("{rel}: ciphertext hash does not match the manifest (damaged or tampered with)"), rel=where)], size, 0
        try:
            hdr = age.read_header(src)
            if [s.type for s in hdr.stanzas] != [KEYREF_TYPE] or hdr.stanzas[0].args != (d["key"],):
                return [Message(N_("{rel}: header does not refer to its key-table entry"), rel=where)], size, 0
        except (FormatError, AuthenticationError):
            return [Message(N_("{rel}: age header does not parse"), rel=where)], size, 0
        verified.put(rel, seen, d["sha256"], d["key"], at=at)
        if table is None:
            return [], size, 0
        problems: list = []
        _try(problems, lambda: open_field(d["meta"], table, what=Message(N_("{number} metadata"), number=d['number'])))
        src.seek(0)
        try:
            age.decrypt(src, _Null(), [table.identity()])
        except NoIdentityMatchError:
            problems.append(Message(N_("{rel}: its key is missing from the key table"), rel=where))
        except (FormatError, AuthenticationError):
            problems.append(Message(N_("{rel}: payload fails authentication (damaged or tampered with)"), rel=where))
        return problems, size, 0


def _hash_open(f: io.BufferedReader) -> tuple[str, int]:
    """SHA-256 and size of the rest of the open file ``f``, read in 1 MiB pieces (then back at 0)."""
    h, n = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while k := f.readinto(buf):
        h.update(view[:k])
        n += k
    f.seek(0)
    return h.hexdigest(), n


def _try(rep: Report | list, fn: Callable[..., object]) -> None:
    try:
        fn()
    except VaultError as e:
        (rep.problems if isinstance(rep, Report) else rep).append(e.message)


def _check_records(v: Vault, mem: dict, rep: Report) -> None:
    """Procedure records: each must say what its history entry says (requests, grants, holds,
    destructions, reviews, intake, paper originals, recovery exports); the facts themselves come from the history,
    which ``check`` verified first."""
    for fn in (grants.list_requests, grants.list_grants, holds.verified_holds, lifts, destructions.list_destructions,
               paper.loans, paper.inventories, recoveryexport.list_exports):
        _try(rep, lambda fn=fn: fn(v))
    _try(rep, lambda: known_targets(v))
    if (v.root / "backups.toml").exists() and not committed.committed(v, "backups.toml"):
        rep.notes.append(Message(N_("backups.toml: not bound to the history (every backup target was added by a run "
                                    "without an identity): a deleted or older one would go unnoticed; run the next "
                                    "backup with your identity to bind it")))
    problems, notes = intake.verify_pending(v)
    rep.problems.extend(problems)
    rep.notes.extend(notes)
    # A note: a restore leaves this (backups leave key releases out, and the restore's entry drops
    # them); the grantee reads nothing until the release is re-issued.
    _try(rep, lambda: rep.notes.extend(
        Message(N_("keys/grants/{dossier}.{grant}.age: none in the history, and grant {grant} is active (the grantee reads "
                   "nothing until 'vault repair' or 'vault grant {request}' re-issues it)"),
                dossier=g["dossier"], grant=g["number"], request=g["request"])
        for g in grants.missing_releases(v)))
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
        Message(N_("destructions/{number}.execution.toml: destruction {number} of {target} started at {started_at} did not finish (next step: {next}); run 'vault destroy execute {number}'"), number=u['number'], target=u['target'], started_at=u['started_at'], next=u['next'])
        for u in destructions.unfinished(v)))
