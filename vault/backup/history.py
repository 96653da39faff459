"""The backup target as a witness of the history: each run records the checkpoint, none goes back.

Someone who can write the vault directory can cut the history's tail or put an older copy of the
whole vault back, and re-sign the checkpoint with any member's key; they cannot rewrite what the
backup target recorded. A run therefore refuses a vault whose history does not extend the
checkpoint its target holds, unless the operator names the snapshot the vault was restored from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.backup.repo import REPO_FORMAT, SMALL_MAX, Repo
from vault.errors import IntegrityError, NotFoundError, VaultError
from vault.i18n import Message, N_
from vault.store import jsontext
from vault.store import read_regular

OBJECT = "history"
LOG = "audit/log.jsonl"
_VERIFY = N_("run 'vault backup verify'")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Point:
    """A checkpoint: the number of entries and the hash of the last (``head``); ``entry`` is its line."""

    count: int
    head: str
    entry: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "head": self.head}


class History:
    """The lines of a captured history, to test whether it extends a checkpoint."""

    def __init__(self, data: bytes) -> None:
        self.lines = data.splitlines()

    @classmethod
    def of_file(cls, path: Path | None) -> "History":
        return cls(read_regular(path) if path is not None else b"")

    def point(self) -> Point:
        if not self.lines:
            return Point(0, "")
        last = self.lines[-1]
        return Point(len(self.lines), hashlib.sha256(last).hexdigest(), last.decode("utf-8", "replace"))

    def extends(self, p: Point) -> bool:
        if p.count == 0:
            return True
        return len(self.lines) >= p.count and hashlib.sha256(self.lines[p.count - 1]).hexdigest() == p.head


def _point(d: Any, what: str) -> Point:
    if not (isinstance(d, dict) and type(d.get("count")) is int and d["count"] >= 0
            and isinstance(d.get("head"), str) and (_HEX64.match(d["head"]) or d["count"] == 0 and d["head"] == "")):
        raise IntegrityError(N_("{what}: not a checkpoint"), hint=_VERIFY, what=what)
    return Point(d["count"], d["head"], d.get("entry", "") if isinstance(d.get("entry"), str) else "")


def load(repo: Repo) -> dict[str, Any] | None:
    """The target's witness record, checked field by field (None before the first run)."""
    try:
        data = repo.get(OBJECT, limit=SMALL_MAX)
    except NotFoundError:
        return None
    try:
        rec = jsontext.loads(data)
    except ValueError:
        raise IntegrityError(N_("{name}: does not parse"), hint=_VERIFY, name=OBJECT) from None
    if not isinstance(rec, dict) or rec.get("format") != REPO_FORMAT:
        raise IntegrityError(N_("{name}: does not parse"), hint=_VERIFY, name=OBJECT)
    p = _point(rec, OBJECT)
    # The head entry is signed by its member; the record holds it so that it vouches for the head.
    if p.count and hashlib.sha256(p.entry.encode()).hexdigest() != p.head:
        raise IntegrityError(N_("{name}: its entry does not hash to its head (changed on the target)"),
                             hint=_VERIFY, name=OBJECT)
    rolls = rec.get("rollbacks", [])
    if not isinstance(rolls, list) or not all(isinstance(r, dict) for r in rolls):
        raise IntegrityError(N_("{name}: does not parse"), hint=_VERIFY, name=OBJECT)
    for r in rolls:
        _point(r.get("from"), f"{OBJECT} rollback"), _point(r.get("to"), f"{OBJECT} rollback")
    rec["point"] = p
    return rec


def check(repo: Repo, hist: History, restored_from: str | None, *, now: dt.datetime) -> dict[str, Any] | None:
    """Refuse a captured history that does not extend what the target recorded; returns the rollback
    to record when ``restored_from`` (a snapshot id prefix) explains one, else None."""
    damaged = None
    try:
        rec = load(repo)
    except IntegrityError as e:
        rec, damaged = None, e
    recorded = rec["point"] if rec is not None else None
    if restored_from is not None:
        snap = repo.resolve(restored_from)
        then = _point(snap.get("history"), f"snapshot {snap['id'][:8]}") if "history" in snap else None
        if then is None or not hist.extends(then):
            raise IntegrityError(N_("this vault's history does not extend snapshot {id}'s"), id=snap["id"][:8],
                                 hint=N_("name the snapshot this vault was restored from ('vault backup list')"))
        if damaged is None and (recorded is None or hist.extends(recorded)):
            return None
        frm = recorded.as_dict() if recorded is not None else {"count": 0, "head": ""}
        return {"from": frm, "to": then.as_dict(), "snapshot": snap["id"], "time": _stamp(now)}
    if damaged is not None:
        raise IntegrityError(N_("{why}: the backup target's witness of the history is damaged"), why=str(damaged),
                             hint=N_("run 'vault backup verify'; to go on, name with --restored-from the "
                                     "snapshot this vault extends"))
    if recorded is not None and not hist.extends(recorded):
        raise IntegrityError(
            N_("{log}: history cut or rolled back: the backup target {url} recorded entry {count} "
               "with hash {head}…, which this vault's history does not have"),
            log=LOG, url=repo.url, count=recorded.count, head=recorded.head[:16],
            hint=N_("restore the vault from a backup that extends it; if it was restored from an older "
                    "snapshot on purpose, run again with --restored-from SNAPSHOT"))
    return None


def record(repo: Repo, vault_id: str, point: Point, snapshot: str, rollback: dict[str, Any] | None, *,
           now: dt.datetime) -> None:
    """Overwrite the target's witness record with ``point`` (after the snapshot that holds it)."""
    try:
        old = load(repo)
    except VaultError:
        old = None  # refused before, unless the operator named the snapshot restored from
    if old is not None and rollback is None and old["point"].count > point.count:
        return  # a run that captured more finished first: the witness never goes back
    rolls = [*(old.get("rollbacks", []) if old else []), *([rollback] if rollback else [])]
    rec = {"format": REPO_FORMAT, "vault_id": vault_id, "count": point.count, "head": point.head,
           "entry": point.entry, "snapshot": snapshot, "time": _stamp(now), "rollbacks": rolls}
    repo.put(OBJECT, json.dumps(rec, sort_keys=True, separators=(",", ":")).encode(), create_only=False)


def report(repo: Repo, snapshots: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """For ``verify``: the recorded checkpoint, problems and notes (no key needed)."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        rec = load(repo)
    except VaultError as e:
        return None, [str(e)], notes
    with_history = [s for s in snapshots if "history" in s]
    if rec is None:
        if with_history:
            problems.append(Message(N_("{object}: missing, but snapshots record the history (deleted on the target)"),
                                    object=OBJECT))
        return None, problems, notes
    p = rec["point"]
    for r in rec.get("rollbacks", []):
        notes.append(Message(N_("history went back from entry {before} to snapshot {snapshot}'s entry {after} at "
                                "{time} (a restore the operator named)"), before=r['from']['count'],
                             snapshot=str(r.get('snapshot'))[:8], after=r['to']['count'], time=r.get('time')))
    newest = with_history[-1] if with_history else None
    if newest is not None and newest["id"] == rec.get("snapshot") and newest["history"].get("head") != p.head:
        problems.append(Message(N_("{object}: does not match snapshot {snapshot}, which it names"), object=OBJECT,
                                snapshot=newest['id'][:8]))
    elif newest is not None and isinstance(newest["history"].get("count"), int) and newest["history"]["count"] > p.count:
        # Every run records at least what its snapshot holds: an older record was put back (the next
        # run would then accept a vault rolled back to it).
        problems.append(Message(N_("{object}: records entry {count}, older than snapshot {snapshot}'s entry {newer} "
                                   "(an older record put back)"), object=OBJECT, count=p.count,
                                snapshot=newest['id'][:8], newer=newest['history']['count']))
    out = {"count": p.count, "head": p.head, "time": rec.get("time"), "snapshot": rec.get("snapshot"),
           "rollbacks": rec.get("rollbacks", [])}
    return out, problems, notes


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
