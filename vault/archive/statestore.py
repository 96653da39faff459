"""The client's replayed state on disk: small facts as JSON, the maps that grow with the vault in SQLite, read lazily.

A replayed state (``authority``) holds, besides members, policy and procedure facts, three maps
whose size is the vault's: ``files`` (every record path), ``dossiers`` and ``numbers``. Loading
them whole made every command pay for the vault's size; here they live in an SQLite database in
the client's state directory and a command reads only the keys it asks for, inside the read
snapshot (WAL) it loaded the state from, so it never sees a state newer than the one it replays from. Saving writes only
the keys the command changed (or handed out, since values are mutated in place). The database is
the client's own cache of what it verified — no secret and nothing the vault directory does not
show in clear — and is thrown away (the history replayed afresh) whenever it does not match.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Iterator

#: The maps of a state kept in the database; the rest of the state is one JSON value.
BIG = ("files", "dossiers", "numbers")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv(m TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (m, k)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, head TEXT NOT NULL,
                                small TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sizes(m TEXT PRIMARY KEY, n INTEGER NOT NULL, at INTEGER NOT NULL);
"""
_MISSING = object()


def _dump(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), sort_keys=True)


class Store:
    """A client's state database: one connection holding the read snapshot the state was loaded from
    (for the command's whole life), another for saving.

    Lazy reads must come from the loaded snapshot: the in-memory state is that snapshot plus every
    entry replayed since, and a key read from a newer snapshot would already hold the effect of
    entries the replay applies again. A save writes, on top of whatever the database holds (never
    a later state), every key this command changed since it loaded or last saved — a superset of
    what any other command changed up to an earlier count — so the result is this command's state.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.conn = self._connect()
        self.conn.executescript(_SCHEMA)
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT count(*) FROM meta").fetchone()  # the snapshot is taken here, not at BEGIN
        self._writer: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # A cache of verified state, thrown away when it does not match (and the checkpoint beside it
        # is written unsynced too): a commit need not wait for the disk. WAL keeps it consistent.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        with self.lock:
            self.conn.close()
            if self._writer is not None:
                self._writer.close()

    def load(self) -> dict[str, Any] | None:
        """The state as stored, with its big maps lazy; None if there is none."""
        with self.lock:
            row = self.conn.execute("SELECT count, head, small FROM meta WHERE id = 1").fetchone()
        if row is None:
            return None
        st = json.loads(row[2])
        if st.get("count") != row[0] or st.get("head") != row[1]:
            return None
        for m in BIG:
            st[m] = LazyMap(self, m)
        return st

    def point(self) -> tuple[int, str] | None:
        """(count, head) of the state as stored, or None."""
        with self.lock:
            row = self.conn.execute("SELECT count, head FROM meta WHERE id = 1").fetchone()
        return None if row is None else (row[0], row[1])

    def save(self, st: dict[str, Any]) -> bool:
        """Write ``st`` unless the database already holds a later state. True if written."""
        small = {k: x for k, x in st.items() if k not in BIG}
        with self.lock:
            if self._writer is None:
                self._writer = self._connect()
            c = self._writer
            try:
                c.execute("BEGIN IMMEDIATE")
                row = c.execute("SELECT count FROM meta WHERE id = 1").fetchone()
                if row is not None and row[0] > st["count"]:
                    c.execute("ROLLBACK")
                    return False
                for m in BIG:
                    mp = st[m]
                    if isinstance(mp, LazyMap) and mp.store is self:
                        # Each map's size is kept beside it (counting rows reads the whole map:
                        # ~7 ms at 100,000 dossiers), changed by what each statement did to the rows
                        # the database holds now — exact even where another command saved first —
                        # and trusted only at the count it was written for (a writer that does not
                        # know the table leaves it behind: then it is counted afresh).
                        grown = 0
                        for k, x in mp.changes():
                            if x is _MISSING:
                                grown -= c.execute("DELETE FROM kv WHERE m = ? AND k = ?", (m, k)).rowcount
                            elif c.execute("UPDATE kv SET v = ? WHERE m = ? AND k = ?", (x, m, k)).rowcount == 0:
                                c.execute("INSERT INTO kv VALUES (?,?,?)", (m, k, x))
                                grown += 1
                        if row is None or c.execute("UPDATE sizes SET n = n + ?, at = ? WHERE m = ? AND at = ?",
                                                    (grown, st["count"], m, row[0])).rowcount == 0:
                            c.execute("INSERT OR REPLACE INTO sizes SELECT ?, count(*), ? FROM kv WHERE m = ?",
                                      (m, st["count"], m))
                    else:  # a state replayed from scratch: the whole map
                        c.execute("DELETE FROM kv WHERE m = ?", (m,))
                        c.executemany("INSERT INTO kv VALUES (?,?,?)", ((m, k, _dump(x)) for k, x in mp.items()))
                        c.execute("INSERT OR REPLACE INTO sizes VALUES (?, ?, ?)", (m, len(mp), st["count"]))
                c.execute("INSERT OR REPLACE INTO meta VALUES (1, ?, ?, ?)", (st["count"], st["head"], _dump(small)))
                c.execute("COMMIT")
            except sqlite3.OperationalError:  # busy for 30 s: the state is only a cache
                if c.in_transaction:
                    c.execute("ROLLBACK")
                return False
        for m in BIG:
            if isinstance(st[m], LazyMap) and st[m].store is self:
                st[m].saved()
        return True


class LazyMap(MutableMapping):
    """One big map of a state: keys read from the store's snapshot on first use, changes kept in memory."""

    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name
        self._vals: dict[str, Any] = {}  # values handed out or set (mutable: compared when saved)
        self._orig: dict[str, str | None] = {}  # their stored JSON (None: not stored)
        self._all = False

    def _fetch(self, k: str) -> Any:
        if k in self._vals:
            return self._vals[k]
        if self._all:
            return _MISSING
        with self.store.lock:
            row = self.store.conn.execute("SELECT v FROM kv WHERE m = ? AND k = ?", (self.name, k)).fetchone()
        if row is None:
            return _MISSING
        self._orig[k] = row[0]
        x = self._vals[k] = json.loads(row[0])
        return x

    def _load_all(self) -> None:
        if self._all:
            return
        with self.store.lock:
            rows = self.store.conn.execute("SELECT k, v FROM kv WHERE m = ?", (self.name,)).fetchall()
        for k, raw in rows:
            if k not in self._vals and k not in self._orig:
                self._orig[k] = raw
                self._vals[k] = json.loads(raw)
        self._all = True

    def __getitem__(self, k: str) -> Any:
        x = self._fetch(k)
        if x is _MISSING:
            raise KeyError(k)
        return x

    def __contains__(self, k: object) -> bool:
        return isinstance(k, str) and self._fetch(k) is not _MISSING

    def __setitem__(self, k: str, x: Any) -> None:
        if k not in self._orig:
            self._fetch(k)
            self._orig.setdefault(k, None)
        self._vals[k] = x

    def __delitem__(self, k: str) -> None:
        if self._fetch(k) is _MISSING:
            raise KeyError(k)
        self._vals[k] = _MISSING

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter([k for k, x in self._vals.items() if x is not _MISSING])

    def __len__(self) -> int:
        self._load_all()
        return sum(1 for x in self._vals.values() if x is not _MISSING)

    def count(self) -> int:
        """How many keys, without reading the map."""
        if self._all:
            return len(self)
        with self.store.lock:
            row = self.store.conn.execute("SELECT n FROM sizes WHERE m = ? AND at = (SELECT count FROM meta WHERE id = 1)",
                                          (self.name,)).fetchone()
            (n,) = row or self.store.conn.execute("SELECT count(*) FROM kv WHERE m = ?", (self.name,)).fetchone()
        added = sum(1 for k, x in self._vals.items() if x is not _MISSING and self._orig.get(k) is None)
        gone = sum(1 for k, x in self._vals.items() if x is _MISSING and self._orig.get(k) is not None)
        return n + added - gone

    def keys_sorted(self, offset: int, limit: int) -> list[str]:
        """Keys in order, a page at a time, without reading the whole map (changes since the snapshot
        included)."""
        changed = [k for k, x in self._vals.items() if self._orig.get(k) is None and x is not _MISSING]
        gone = {k for k, x in self._vals.items() if x is _MISSING}
        with self.store.lock:
            rows = self.store.conn.execute("SELECT k FROM kv WHERE m = ? ORDER BY k LIMIT ?",
                                           (self.name, offset + limit + len(gone))).fetchall()
        keys = sorted({r[0] for r in rows} - gone | set(changed))
        return keys[offset:offset + limit]

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix``, in order, from an index range of the database instead of
        the whole map (a query lists the search index's deltas among every record path of the vault);
        changes since the snapshot included."""
        if self._all or not prefix:
            return sorted(k for k in self if k.startswith(prefix))
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # (text compares as UTF-8 bytes: code point order)
        with self.store.lock:
            rows = self.store.conn.execute("SELECT k FROM kv WHERE m = ? AND k >= ? AND k < ?",
                                           (self.name, prefix, upper)).fetchall()
        keys = {r[0] for r in rows if r[0].startswith(prefix)}
        for k, x in self._vals.items():
            if k.startswith(prefix):
                (keys.discard if x is _MISSING else keys.add)(k)
        return sorted(keys)

    def changes(self) -> Iterator[tuple[str, Any]]:
        for k, x in self._vals.items():
            if x is _MISSING:
                if self._orig.get(k) is not None:
                    yield k, _MISSING
                continue
            raw = _dump(x)
            if raw != self._orig.get(k):
                yield k, raw

    def saved(self) -> None:
        for k, x in list(self._vals.items()):
            if x is _MISSING:
                del self._vals[k]
                self._orig.pop(k, None)
            else:
                self._orig[k] = _dump(x)
