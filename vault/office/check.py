"""``vault check``: verify every signature and ciphertext hash without keys; with keys, every byte."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections import deque
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vault.archive import audit, authority, checkcache, committed, members, recovery, replaypoint, searchcheck
from vault.crypto import age
from vault.store.counting import Progress, no_progress
from vault.archive.manifests import load_manifest, read_table
from vault.archive.states import DossierStatus
from vault.errors import VaultError
from vault.store.keytable import open_field
from vault.store import TMP_PREFIX, not_regular
from vault.store.tree import Tree
from vault.archive import destructions, grants, holds, reviews
from vault import forked
from vault.office import checkdocs, intake, invitations, paper, recoveryexport
from vault.office.holds import lifts
from vault.archive.backuptargets import known_targets
from vault.i18n import Message, N_

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from vault.archive.vault import Actor, Vault


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


_AHEAD = 8  # dossiers whose documents may be in flight
_SWITCH = 0.0005  # seconds: the GIL switch interval while the document threads run (see ``check``)
# Documents up to this size are read once into memory and hashed, parsed and decrypted from there;
# larger ones are hashed in one pass and decrypted in a second, so memory stays flat.
_IN_MEMORY = 16 << 20


def check(v: Vault, *, actor: Actor | None = None, progress: Progress | None = None,
          anchor: tuple[int, str] | None = None) -> Report:
    """Check the whole vault. With ``actor`` (``--read-data``) also decrypt everything; with
    ``anchor`` (count, head) also that the history extends a checkpoint kept offline."""
    rep = _check(v, actor, progress, anchor)
    # A file two parts read (a manifest is a record too, a ring record is read with the members) is
    # named once for what both find.
    rep.problems = list(dict.fromkeys(rep.problems))
    return rep


def _check(v: Vault, actor: Actor | None, progress: Progress | None, anchor: tuple[int, str] | None) -> Report:
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
        # One walk of the vault, whose listings every part below reads (each directory listed once).
        tree = Tree(v.root)
        rep.problems.extend(recovery.check_files(v, res.replay, verified if actor is None else None, tree))
        rep.notes.extend(recovery.interrupted(v, res.replay, tree))
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
        dirs = sorted((tree.listing.get("dossiers") or ([], []))[0])
        # Destructions under way, once: none starts while this holds the shared lock.
        executing = {d["dossier"] for d in authority.state(v)["destructions"].values() if d.get("state") == "executing"}
        # (the total for a bar costs a stat of every document: only when there is a bar to draw)
        step = progress(sum(_bytes_under(v.root / "dossiers" / d / "documents") for d in dirs)) if progress \
            else no_progress(0)
        # Dossiers are checked in worker processes (``vault.forked``), each whole, or, for a few of
        # them, here with their documents on threads (reading, hashing and decrypting release the
        # GIL): while the threads read one dossier's documents, this thread verifies the next
        # manifests. Results are taken in dossier order, a bounded number ahead: the report is stable.
        pending: deque[Callable[[], None]] = deque()
        with contextlib.ExitStack() as restore:
            pool = _Pool()
            restore.callback(pool.shutdown)
            # Each dossier, in order: a note, a count (settled whole) or a check. Those to check go to
            # worker processes when there are enough of them (``_start_workers``), else to ``pool``'s threads.
            plan: list[tuple[str, Any]] = []
            for did in dirs:
                names = _names(v, tree, did)
                if recovery.uncreated_dossier(v, st, did):
                    plan.append(("note", Message(N_("dossiers/{name}: left by a 'dossier create' that stopped before its "
                                                    "commit point (counts for nothing; 'vault repair' removes it)"), name=did)))
                elif ids is None and did not in executing \
                        and (hit := checkdocs.settled(v, did, names, mem, verified, st["files"])) is not None:
                    plan.append(("count", hit))
                else:
                    plan.append(("check", (did, names, did in executing)))
            todo = [x for kind, x in plan if kind == "check"]
            workers = _start_workers(v, mem, ids, verified, st["files"], todo)
            if workers is not None:
                restore.callback(workers.shutdown)
            else:
                # The threads hold the GIL between their system calls and AEAD calls; with the default
                # 5 ms switch interval this thread may wait that long after each of its own (every
                # listing, stat and signature check): in a profile of --read-data, 4 ms per listing.
                restore.callback(sys.setswitchinterval, sys.getswitchinterval())
                sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH))
            for kind, x in plan:
                if kind == "note":
                    pending.append(functools.partial(rep.notes.append, x))
                elif kind == "count":
                    pending.append(functools.partial(_count, rep, step, *x))
                elif workers is not None:
                    pending.append(functools.partial(_collect, workers, verified, rep, step))
                else:
                    did, names, shredding = x
                    pending.append(_check_dossier(v, did, mem, ids, rep, step, pool, shredding,
                                                  verified, st["files"], names))
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
        # What is neither a regular file nor a directory, wherever the walk found it (a directory
        # replaced by a link, a FIFO beside the records), unless a part above named it already.
        for rel in tree.odd:
            if not any(p.startswith((f"{rel}:", f"{rel} (")) for p in rep.problems):
                rep.problems.append(not_regular(rel).message)
        for rel in tree.temporaries():
            rep.notes.append(Message(N_("{relative_to}: temporary file left by an interrupted command (removed by the next write or 'vault repair')"), relative_to=rel))
    return rep


class _Pool:
    """The document threads, started for the first document that must be read (a warm check may read
    none: it then neither starts threads nor imports ``concurrent.futures``)."""

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., tuple[list, int, int]], *args: Any) -> Future[tuple[list, int, int]]:
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(forked.WORKERS, thread_name_prefix="vault-check")
        return self.pool.submit(fn, *args)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


# -- worker processes (``vault.forked``) -------------------------------------------------------------
# With at least ``_FORK_MIN`` dossiers to read, each goes to a forked worker (they inherit the
# replayed history, the members and the unlocked identities) and its findings come back in order.

_FORK_MIN = 16
_CHUNK = 4  # dossiers a worker is sent at a time
_KEPT = ("files", "manifests", "dossiers")  # what a worker's check adds to the cache, sent back with its findings


class _Inline:
    """``_Pool`` in a worker process: each document checked as it is submitted."""

    def submit(self, fn: Callable[..., tuple[list, int, int]], *args: Any) -> tuple[list, int, int]:
        return fn(*args)


def _in_worker(task: tuple[str, list[str], bool]) -> tuple[list, list, dict[str, int], dict[str, dict]]:
    """One dossier checked in a worker: (problems, notes, counts, what it adds to the cache)."""
    v, mem, ids, verified, files = forked.inherited()
    did, names, shredding = task
    for k in _KEPT:
        verified.new[k] = {}
    rep = Report()
    _check_dossier(v, did, mem, ids, rep, no_progress(0), _Inline(), shredding, verified, files, names)()
    return rep.problems, rep.notes, rep.counts, {k: verified.new[k] for k in _KEPT}


def _start_workers(v: Vault, mem: dict, ids: list[age.Identity] | None, verified: checkcache.Verified, files: dict,
                   todo: list[tuple[str, list[str], bool]]) -> forked.Forked | None:
    """Workers checking the dossiers of ``todo``, or None where threads will do (few of them, or no
    worker to be had: ``forked.Forked.start``)."""
    if len(todo) < _FORK_MIN:
        return None
    return forked.Forked.start(_in_worker, todo, (v, mem, ids, verified, files), workers=forked.WORKERS, chunk=_CHUNK,
                                what="vault check")


def _collect(workers: forked.Forked, verified: checkcache.Verified, rep: Report, step: Callable[[int], None]) -> None:
    """The next dossier's findings from the workers into ``rep`` and the cache."""
    problems, notes, counts, kept = workers.next()
    rep.problems.extend(problems)
    rep.notes.extend(notes)
    for k, n in counts.items():
        rep.counts[k] += n
    step(counts["bytes"])
    for k, d in kept.items():
        verified.new[k].update(d)


def _names(v: Vault, tree: Tree, dossier_id: str) -> list[str]:
    """Every name in a dossier's documents directory, as the walk listed it (a directory the walk did
    not enter, a dossier directory that is a symbolic link, is listed here; a missing one lists nothing)."""
    names = tree.names(f"dossiers/{dossier_id}/documents")
    if names is not None:
        return names
    try:
        return os.listdir(v.root / "dossiers" / dossier_id / "documents")
    except (FileNotFoundError, NotADirectoryError):
        return []


def _count(rep: Report, step: Callable[[int], None], documents: int, size: int) -> None:
    """A dossier settled whole (``checkdocs.settled``): its documents counted, none read again."""
    rep.counts["dossiers"] += 1
    rep.counts["documents"] += documents
    rep.counts["bytes"] += size
    rep.counts["unchanged"] += documents
    step(size)


def _bytes_under(d: Path) -> int:
    """The bytes of the files directly in ``d`` (a dossier's documents), for the progress bar."""
    try:
        return sum(e.stat().st_size for e in os.scandir(d) if e.is_file(follow_symlinks=False))
    except OSError:
        return 0


def _check_dossier(v: Vault, dossier_id: str, mem: dict, ids: list[age.Identity] | None, rep: Report, step: Callable[[int], None],
                   pool: _Pool | _Inline, shredding: bool, verified: checkcache.Verified,
                   files: dict, names: list[str]) -> Callable[[], None]:
    """Check a dossier's manifest, key table and sealed texts now; its documents on ``pool``. Returns
    what collects the documents' results into ``rep`` (and names leftover files), to call in order."""
    mine: list = []  # this dossier's problems, added to the report in dossier order

    def report_only() -> None:
        rep.problems.extend(mine)

    full = None  # the whole manifest: a check with keys reads the profile too
    try:
        if ids is None:
            m = checkdocs.manifest(v, dossier_id, mem, verified, files)
        else:
            full = load_manifest(v, dossier_id, member_records=mem)
            m = checkdocs.Read.of(full)
    except VaultError as e:
        mine.append(e.message)
        return report_only
    rep.counts["dossiers"] += 1
    table = None
    if m.status != DossierStatus.DESTROYED:
        # Its bytes against the history were checked with every record (``recovery.check_files``).
        # (the replay just verified, in memory: ``committed.exists`` would ask the client's state database)
        if (files.get(f"keys/{dossier_id}.age") or (None,))[0] is None:
            if not shredding:  # an unfinished execution is named on its own
                mine.append(Message(N_("keys/{dossier_id}.age: the history names no key table for dossier {number}"),
                                    dossier_id=dossier_id, number=m.number))
        elif ids is not None:
            try:
                table = read_table(v, dossier_id, ids)
            except VaultError as e:
                mine.append(e.message)
    if table is not None and full is not None:
        for p in full.profile:
            if p.sealed is not None:
                _try(mine, lambda p=p: open_field(p.sealed, table, what=Message(N_("{number} profile v{version}"), number=m.number, version=p.version)))
    # A destruction under way (``shredding``) overwrites and deletes ciphertext step by step; until it
    # finishes, the unfinished execution is what check names, not each document it has reached.
    docs = [] if shredding else [d for d in m.documents if d.status != "destroyed"]
    referenced = {f"{d.id}.age" for d in m.documents if d.status != "destroyed"}
    # A document this client verified with the status it has now is settled here, with one stat;
    # the rest go to the workers.
    settled = [checkdocs.unchanged(v, m, d, verified) if table is None else None for d in docs]
    futures: list[tuple[list, int, int] | Future[tuple[list, int, int]]] = [
        f or pool.submit(checkdocs.check_document, v, m, d, table, verified, _IN_MEMORY) for f, d in zip(settled, docs)]

    def collect() -> None:
        rep.problems.extend(mine)
        clean = not mine and not shredding
        for fut in futures:
            problems, size, unchanged = fut if isinstance(fut, tuple) else fut.result()
            rep.counts["documents"] += 1
            rep.counts["bytes"] += size
            rep.counts["unchanged"] += unchanged
            rep.problems.extend(problems)
            clean = clean and not problems
            step(size)
        for name in sorted([] if shredding else names):
            if name not in referenced and not name.startswith(TMP_PREFIX):
                clean = False
                rep.notes.append(Message(N_("dossiers/{dossier_id}/documents/{name}: not in the manifest (left by an "
                                            "interrupted add; 'vault repair' removes it)"), dossier_id=dossier_id,
                                         name=name))
        if clean:
            checkdocs.settle(m, docs, names, verified)

    return collect


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
    _try(rep, lambda: invitations.list_invitations(v))
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
