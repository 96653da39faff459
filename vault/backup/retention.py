"""``backup prune``: forget snapshots by restic's keep rules, never the only copy of what a hold or retention keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Set as AbstractSet
from typing import Any

from vault import clock
from vault.backup.repo import INDEX, LOCK_STALE, SNAPSHOTS, TREES, Repo, data_name
from vault.errors import ConflictError, NotFoundError, UsageError
from vault.i18n import Message, N_

#: The keep rules and the calendar bucket of each (UTC): the newest snapshot of each of the last N
#: buckets that have a snapshot is kept, as ``restic forget --keep-*`` does.
RULES = {
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: "%04d-W%02d" % t.isocalendar()[:2],
    "monthly": lambda t: t.strftime("%Y-%m"),
    "yearly": lambda t: t.strftime("%Y"),
}


@dataclass
class PruneReport:
    kept: dict[str, list[str]] = field(default_factory=dict)  # snapshot id -> reasons
    forgotten: list[str] = field(default_factory=list)
    packs_deleted: int = 0
    bytes_freed: int = 0
    dry_run: bool = False
    temporaries_removed: int = 0  # left by puts a killed run never finished (targets that can tell: ``sweep``)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: Why prune keeps a snapshot the keep rules would forget (a held dossier's, or records still retained).
ONLY_COPY = (N_("holds the only copy of protected dossier {d}"),
             N_("holds the only copy of {count} record(s) of dossier {d} whose retention has not ended"))


def select(snaps: list[dict[str, Any]], keep: dict[str, int], protected: AbstractSet[str],
           retained: Mapping[str, AbstractSet[str] | None] | None = None) -> dict[str, list[str]]:
    """Which snapshots to keep (id -> reasons), newest first; ``snaps`` oldest first.

    :param protected: dossier ids under legal hold: every blob of theirs keeps a copy.
    :param retained: dossier id -> blob ids whose retention has not ended (None: all of the
        dossier's blobs), from ``vault.archive.schedule.retained_records``.
    """
    if not any(keep.get(r, 0) > 0 for r in RULES):
        raise UsageError(N_("no keep rule given: prune would forget every snapshot"),
                         param="keep")
    kept: dict[str, list[str]] = {}
    newest_first = sorted(snaps, key=lambda s: (s["time"], s.get("order", 0), s["id"]), reverse=True)
    for rule, bucket_of in RULES.items():
        left, last = keep.get(rule, 0), None
        for s in newest_first:
            if left <= 0:
                break
            bucket = bucket_of(clock.parse_stamp(s["time"]))
            if bucket != last:
                kept.setdefault(s["id"], []).append(f"{rule} {bucket}")
                last, left = bucket, left - 1
    # A legal hold and an unfinished retention outrank the schedule: a snapshot holding the only
    # copy of a held dossier's data, or of a record retention still keeps, stays whatever the rules say.
    retained = retained or {}
    whole = set(protected) | {d for d, b in retained.items() if b is None}
    partial = {d: set(b) for d, b in retained.items() if b is not None and d not in whole}

    def guarded(s: dict[str, Any]) -> dict[str, set[str]]:
        out = {d: set(s["dossiers"].get(d, ())) for d in whole}
        out.update({d: b & set(s["dossiers"].get(d, ())) for d, b in partial.items()})
        return {d: b for d, b in out.items() if b}

    have: set[str] = set()
    for s in newest_first:
        if s["id"] in kept:
            have.update(*guarded(s).values())
    for s in newest_first:
        if s["id"] in kept:
            continue
        only = {d: b - have for d, b in guarded(s).items() if b - have}
        if only:
            kept[s["id"]] = [Message(ONLY_COPY[0], d=d) if d in protected else Message(ONLY_COPY[1], count=len(b), d=d)
                             for d, b in sorted(only.items())]
            have.update(*only.values())
    return kept


def prune(repo: Repo, *, keep: dict[str, int], protected: AbstractSet[str] = frozenset(),
          retained: Mapping[str, AbstractSet[str] | None] | None = None, dry_run: bool = False) -> PruneReport:
    """Forget snapshots the rules do not keep, then delete packs that no kept snapshot references.

    Packs are not repacked: one that still holds a referenced blob stays whole.
    """
    repo.require_config()
    lock = repo.lock("prune") if not dry_run else None
    try:
        if lock and repo.live_locks(mine=[lock]):
            raise ConflictError(N_("{url}: a backup or prune is running on this target"),
                                hint=N_("retry when it has finished (a lock left by a dead run expires after 6 hours)"), url=repo.url)
        rep = _prune(repo, keep, protected, retained, dry_run)
        sweep = getattr(repo.target, "sweep", None)
        if lock and callable(sweep):
            # Alone on the target (no other live lock), and only what no put has written for as long
            # as a lock stays live: nothing a running put still needs.
            rep.temporaries_removed = len(sweep(LOCK_STALE.total_seconds()))
        return rep
    finally:
        if lock:
            repo.unlock(lock)


def _prune(repo: Repo, keep: dict[str, int], protected: AbstractSet[str],
           retained: Mapping[str, AbstractSet[str] | None] | None, dry_run: bool) -> PruneReport:
    snaps = repo.snapshots()
    rep = PruneReport(kept=select(snaps, keep, protected, retained), dry_run=dry_run)
    forget = [s for s in snaps if s["id"] not in rep.kept]
    rep.forgotten = [s["id"] for s in forget]
    index, pack_sizes, index_names = repo.load_index()
    referenced = set()
    for s in snaps:
        if s["id"] in rep.kept:
            referenced.update(s["other"])
            for bs in s["dossiers"].values():
                referenced.update(bs)
    by_pack: dict[str, list] = {}
    for b, (pack_id, off, ln) in index.items():
        by_pack.setdefault(pack_id, []).append([b, off, ln])
    # A pack whose blobs are all indexed elsewhere (two runs raced) is as dead as an unreferenced one.
    dead = sorted(p for p in pack_sizes if not any(e[0] in referenced for e in by_pack.get(p, ())))
    rep.packs_deleted, rep.bytes_freed = len(dead), sum(pack_sizes.get(p, 0) for p in dead)
    if dry_run:
        return rep
    kept_trees = {s["tree"] for s in snaps if s["id"] in rep.kept}
    # Order matters for a crash: snapshots go first (nothing listed may name a deleted pack), the new
    # index is written before the old ones go, and packs go last.
    for s in forget:
        _delete(repo, SNAPSHOTS + s["id"])
        if s["tree"] not in kept_trees:
            _delete(repo, TREES + s["tree"])
    live = {p: {"size": pack_sizes[p], "blobs": sorted(by_pack[p], key=lambda e: e[1])}
            for p in by_pack if p not in dead}
    new_index = repo.write_index(live)
    for name in index_names:
        if name != f"{INDEX}{new_index}":
            _delete(repo, name)
    for p in dead:
        _delete(repo, data_name(p))
    return rep


def _delete(repo: Repo, name: str) -> None:
    try:
        repo.delete(name)
    except NotFoundError:
        pass

