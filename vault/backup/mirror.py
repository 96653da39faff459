"""The key mirror: every key table's latest generation plus a short window of older ones, apart from snapshots.

Data snapshots are never rewritten, so what a destruction removes must be removable elsewhere: key
tables live only here, and deleting a table's generations (``shred``) makes every snapshot's copy of
what it opened unreadable at once (DESIGN §4, crypto-shredding).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from vault.backup.packs import sha256_hex
from vault.backup.repo import KEYS, Repo
from vault.errors import NotFoundError

#: How long a superseded generation stays in the mirror unless ``--key-window`` says otherwise.
DEFAULT_WINDOW = _dt.timedelta(days=7)
TOMBSTONE = "deleted"
_TABLE = re.compile(r"[0-9a-z_]+\.age\Z")
_GEN = re.compile(r"(\d{8}T\d{6}Z)-([0-9a-f]{64}|deleted)\Z")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, order=True)
class Generation:
    """One mirrored generation of a key table: when it was first mirrored and its SHA-256 (or a tombstone)."""

    stamp: str
    sha256: str
    table: str = field(compare=False)

    @property
    def name(self) -> str:
        return f"{KEYS}{self.table}/{self.stamp}-{self.sha256}"

    @property
    def deleted(self) -> bool:
        return self.sha256 == TOMBSTONE

    @property
    def time(self) -> _dt.datetime:
        return _dt.datetime.strptime(self.stamp, _STAMP).replace(tzinfo=_dt.timezone.utc)


def is_table_name(name: str) -> bool:
    """Whether ``name`` is a key table's file name (``<dossier-id>.age``, ``_index.age``, ...)."""
    return bool(_TABLE.match(name))


def generations(repo: Repo) -> dict[str, list[Generation]]:
    """Mirrored generations per key table (``<dossier-id>.age``), oldest first."""
    out: dict[str, list[Generation]] = {}
    for name in repo.list(KEYS):
        parts = name[len(KEYS):].split("/")
        m = _GEN.match(parts[-1]) if len(parts) == 2 and _TABLE.match(parts[0]) else None
        if m:
            out.setdefault(parts[0], []).append(Generation(m[1], m[2], parts[0]))
    return {t: sorted(g) for t, g in out.items()}


@dataclass
class MirrorReport:
    uploaded: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # tables kept (``keep``) that the vault lacks
    holding: dict[str, Generation] = field(default_factory=dict)  # each table given: the generation holding its bytes now


def sync(repo: Repo, tables: dict[str, bytes], *, now: _dt.datetime, window: _dt.timedelta,
         keep: AbstractSet[str] = frozenset()) -> MirrorReport:
    """Mirror the current ``tables`` (name -> bytes), mark vanished ones deleted, expire old generations.

    :param keep: tables the vault must still have (its history destroyed no such dossier): one that
        vanished from the directory is lost or tampered with, not destroyed, so it gets no tombstone
        and its latest generation — the last copy of the keys that open its records — stays.
    """
    rep = MirrorReport()
    gens = generations(repo)
    todo = []
    for table in sorted(set(tables) | set(gens)):
        have = gens.get(table, [])
        latest = have[-1] if have else None
        data = tables.get(table)
        if data is None and table in keep:
            rep.missing.append(table)
            continue
        want = sha256_hex(data) if data is not None else TOMBSTONE
        if latest is not None and latest.sha256 == want:
            if data is not None:
                rep.holding[table] = latest
            continue
        if latest is None and data is None:
            continue
        todo.append((table, data, latest))
    # Each generation is its own small object: all are put at once (on a local file system durable
    # together, one sync for the batch, instead of two fsyncs each) before sync returns.
    done = [next_generation(table, data, latest=latest, now=now) for table, data, latest in todo]
    repo.put_many([(gen.name, data or b"") for (_, data, _), gen in zip(todo, done)])
    for (table, data, _), gen in zip(todo, done):
        rep.uploaded.append(gen.name)
        rep.bytes += len(data or b"")
        if data is not None:
            rep.holding[table] = gen
        gens[table] = [*gens.get(table, []), gen]
    for have in gens.values():
        for older, newer in zip(have, have[1:]):
            # A generation stays for ``window`` after the one that replaced it was mirrored.
            if now - newer.time > window:
                _delete(repo, older.name, rep.expired)
        last = have[-1]
        if last.deleted and now - last.time > window:
            _delete(repo, last.name, rep.expired)
    return rep


def next_generation(table: str, data: bytes | None, *, latest: Generation | None, now: _dt.datetime) -> Generation:
    """The generation that mirrors ``data`` (``None``: a tombstone) after ``latest`` of ``table``."""
    # Names sort by time; a generation is never stamped before the one it supersedes.
    stamp = now if latest is None else max(now, latest.time + _dt.timedelta(seconds=1))
    return Generation(stamp.strftime(_STAMP), sha256_hex(data) if data is not None else TOMBSTONE, table)


def put_generation(repo: Repo, table: str, data: bytes | None, *, latest: Generation | None,
                   now: _dt.datetime) -> Generation:
    """Mirror ``data`` (``None``: a tombstone) as the newest generation of ``table``."""
    gen = next_generation(table, data, latest=latest, now=now)
    repo.put(gen.name, data or b"")
    return gen


def _delete(repo: Repo, name: str, into: list[str]) -> None:
    try:
        repo.delete(name)
        into.append(name)
    except NotFoundError:
        pass


def latest(repo: Repo) -> dict[str, Generation]:
    """The newest generation of every mirrored key table that is not deleted."""
    return {t: g[-1] for t, g in generations(repo).items() if not g[-1].deleted}
