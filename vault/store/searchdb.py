"""The search index's engine: normalisation, n-grams and an SQLite database that lives only in memory.

The database is never a plaintext file: it is built or ``deserialize``d in memory and leaves the
process only as bytes that the caller encrypts (see ``vault.archive.searchindex``). Words of three or more
characters are found as substrings through FTS5's ``trigram`` tokenizer; two-character words
through a second FTS5 table holding CJK character bigrams and the other words whole (matched as
prefixes), because a trigram index cannot answer a two-character query such as 小明 or 杭州.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import unicodedata
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from vault.errors import FormatError, InputError
from vault.i18n import N_

#: Indexed fields, in the order they rank when a query matches several.
FIELDS = ("name", "aliases", "legal_rep", "contact", "address", "number")
FIELD_RANK = {f: i for i, f in enumerate(FIELDS)}
#: The fields ``--name`` and ``--contact`` restrict a query to.
NAME_FIELDS = ("name", "aliases")
CONTACT_FIELDS = ("contact",)
SCHEMA_VERSION = 1
MAGIC = b"vault-search-v1\n"

# Han (with extensions and compatibility ideographs), kana and hangul: scripts written without spaces,
# so a "word" is a run of them and is indexed by character bigrams.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")
_RUN = re.compile(r"(?P<cjk>" + _CJK.pattern + r"+)|(?P<word>(?:(?!" + _CJK.pattern + r")[^\W_])+)")
_PHONE = re.compile(r"^[+\d][\d\s\-().]*$")
_SEPARATORS = re.compile(r"[\s\-().]")

_SCHEMA = f"""
PRAGMA user_version = {SCHEMA_VERSION};
CREATE TABLE dossier(id TEXT PRIMARY KEY, number TEXT NOT NULL, version INTEGER NOT NULL,
                     sealed_sha256 TEXT NOT NULL, by TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE entry(rowid INTEGER PRIMARY KEY, dossier TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX entry_dossier ON entry(dossier);
CREATE VIRTUAL TABLE tri USING fts5(value, content='entry', content_rowid='rowid', tokenize='trigram');
CREATE VIRTUAL TABLE words USING fts5(w, content='', tokenize='unicode61 remove_diacritics 0');
"""


def fold(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: full-width and compatibility forms meet their plain ones."""
    v = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(v.split())


def fold_contact(text: str) -> str:
    """A contact as indexed: folded; a phone number (no ``@``) without spaces, ``-``, ``(``, ``)``, ``.``."""
    v = fold(text)
    return v if "@" in v else _SEPARATORS.sub("", v)


def query_words(text: str) -> list[str]:
    """The words of a query, folded; a phone-like query is one word without separators."""
    v = fold(text)
    if _PHONE.match(v) and sum(c.isdigit() for c in v) >= 3:
        return [_SEPARATORS.sub("", v)]
    return v.split()


def word_tokens(value: str) -> str:
    """What the two-character table holds for a folded value: CJK runs as bigrams, other words whole."""
    out = []
    for m in _RUN.finditer(value):
        run = m.group("cjk")
        if run:
            out.extend([run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)])
        else:
            out.append(m.group("word"))
    return " ".join(out)


def entries(number: str, profile: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (field, folded value) rows a dossier is found by."""
    rows = [("number", fold(number))]
    for f in ("name", "legal_rep", "address"):
        if profile.get(f):
            rows.append((f, fold(profile[f])))
    rows += [("aliases", fold(a)) for a in profile.get("aliases") or [] if a.strip()]
    rows += [("contact", fold_contact(c)) for c in profile.get("contact") or [] if c.strip()]
    return [(f, v) for f, v in rows if v]


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


@dataclass
class Hit:
    """One dossier a query matched: the best field, every field that matched, and a rank (lower is better)."""

    dossier: str
    number: str
    field: str
    fields: list[str] = dataclasses.field(default_factory=list)  # (a field named 'field' shadows field())
    score: int = 3

    def key(self) -> tuple:
        return (self.score, FIELD_RANK[self.field], self.number)


class SearchDB:
    """The index as an in-memory SQLite database: rows per dossier, found through two FTS5 tables."""

    def __init__(self, image: bytes | None = None) -> None:
        self.conn = sqlite3.connect(":memory:")
        if image is None:
            try:
                self.conn.executescript(_SCHEMA)
            except sqlite3.OperationalError as e:  # an SQLite built without FTS5, or older than 3.34
                raise FormatError(N_("this Python's SQLite {sqlite_version} cannot hold the search index ({e})"),
                                  hint=N_("the search index needs SQLite 3.34 or later with FTS5"), sqlite_version=sqlite3.sqlite_version, e=e) from None
            return
        try:
            self.conn.deserialize(image)
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise FormatError(N_("search index: not a database ({e})"), e=e) from None
        if version != SCHEMA_VERSION:
            raise FormatError(N_("search index: unsupported schema version {version}"), version=version)

    def serialize(self) -> bytes:
        """The database image. FTS5 keeps deleted postings in older segments until they are merged:
        'optimize' merges them away and VACUUM drops freed pages, so a forgotten value leaves no trace."""
        for t in ("tri", "words"):
            self.conn.execute(f"INSERT INTO {t}({t}) VALUES ('optimize')")
        self.conn.commit()
        self.conn.execute("VACUUM")
        return self.conn.serialize()

    def __len__(self) -> int:
        return self.conn.execute("SELECT count(*) FROM dossier").fetchone()[0]

    def put(self, dossier: str, *, number: str, version: int, sealed_sha256: str, by: str,
            profile: Mapping[str, Any]) -> None:
        """Index (or re-index) one dossier's newest profile version."""
        self.remove(dossier)
        c = self.conn
        present = sorted(k for k, x in profile.items() if x)
        c.execute("INSERT INTO dossier VALUES (?,?,?,?,?,?)",
                  (dossier, number, version, sealed_sha256, by, ",".join(present)))
        for f, value in entries(number, profile):
            rowid = c.execute("INSERT INTO entry(dossier, field, value) VALUES (?,?,?)", (dossier, f, value)).lastrowid
            c.execute("INSERT INTO tri(rowid, value) VALUES (?,?)", (rowid, value))
            c.execute("INSERT INTO words(rowid, w) VALUES (?,?)", (rowid, word_tokens(value)))

    def remove(self, dossier: str) -> bool:
        """Forget a dossier; True if it was indexed. FTS5 needs the old text to delete its postings."""
        c = self.conn
        for rowid, value in c.execute("SELECT rowid, value FROM entry WHERE dossier = ?", (dossier,)).fetchall():
            c.execute("INSERT INTO tri(tri, rowid, value) VALUES ('delete', ?, ?)", (rowid, value))
            c.execute("INSERT INTO words(words, rowid, w) VALUES ('delete', ?, ?)", (rowid, word_tokens(value)))
        c.execute("DELETE FROM entry WHERE dossier = ?", (dossier,))
        return c.execute("DELETE FROM dossier WHERE id = ?", (dossier,)).rowcount > 0

    def info(self, dossier: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT number, version, sealed_sha256, by, fields FROM dossier WHERE id = ?",
                                (dossier,)).fetchone()
        if row is None:
            return None
        return {"number": row[0], "version": row[1], "sealed_sha256": row[2], "by": row[3],
                "fields": [f for f in row[4].split(",") if f]}

    def ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM dossier")]

    def _rows(self, word: str, fields: Iterable[str] | None) -> list[tuple[int, str, str, str]]:
        if len(word) >= 3:
            sql = "SELECT e.rowid, e.dossier, e.field, e.value FROM tri JOIN entry e ON e.rowid = tri.rowid WHERE tri MATCH ?"
            arg = _phrase(word)
        else:
            sql = "SELECT e.rowid, e.dossier, e.field, e.value FROM words JOIN entry e ON e.rowid = words.rowid WHERE words MATCH ?"
            arg = _phrase(word) if _CJK.search(word) else _phrase(word) + " *"
        params: list[Any] = [arg]
        if fields is not None:
            fields = list(fields)
            sql += f" AND e.field IN ({','.join('?' * len(fields))})"
            params += fields
        return self.conn.execute(sql, params).fetchall()

    def search(self, query: str, fields: Iterable[str] | None = None) -> list[Hit]:
        """Every dossier in which each word of ``query`` occurs (in any of ``fields``), best first.

        Rank: the whole query equal to a value, then a value starting with it (a contact ending
        with it: a phone's last digits, an e-mail's domain), then every word at a word start, then
        substrings; ties by field (name first), then archive number.
        """
        words = query_words(query)
        long = sorted({w for w in words if len(w) >= 2}, key=len, reverse=True)
        if not long:
            raise InputError(N_("a query needs a word of at least two characters"), hint=N_("e.g. 小明, 杭州 or north"))
        short = [w for w in words if len(w) < 2]
        fields = list(fields) if fields is not None else None
        matched: dict[str, list[tuple[str, str]]] | None = None
        for w in long:  # longest (most selective) first; stop as soon as nothing is left
            found: dict[str, list[tuple[str, str]]] = {}
            for _, dossier, f, value in self._rows(w, fields):
                if matched is None or dossier in matched:
                    found.setdefault(dossier, []).append((f, value))
            if matched is not None:
                for d in found:
                    found[d] = matched[d] + found[d]
            matched = found
            if not matched:
                return []
        assert matched is not None
        if short:  # one-character words only narrow what the others found
            matched = {d: rows for d, rows in matched.items() if all(any(s in v for _, v in rows) for s in short)}
        whole = " ".join(words)
        numbers = dict(self.conn.execute(
            f"SELECT id, number FROM dossier WHERE id IN ({','.join('?' * len(matched))})", list(matched))) \
            if len(matched) < 30000 else dict(self.conn.execute("SELECT id, number FROM dossier"))
        hits = []
        for d, rows in matched.items():
            best = min(((_score(f, v, whole, words), FIELD_RANK[f], f) for f, v in rows))
            hits.append(Hit(d, numbers[d], best[2], sorted({f for f, _ in rows}, key=FIELD_RANK.__getitem__), best[0]))
        return sorted(hits, key=Hit.key)


def _score(field: str, value: str, whole: str, words: list[str]) -> int:
    if value == whole or sorted(value.split()) == sorted(words):
        return 0
    if value.startswith(whole) or (field == "contact" and value.endswith(whole)):
        return 1
    if all(_at_word_start(value, w) for w in words):
        return 2
    return 3


def _at_word_start(value: str, word: str) -> bool:
    i = value.find(word)
    while i >= 0:
        if i == 0 or not value[i - 1].isalnum():
            return True
        i = value.find(word, i + 1)
    return False


def pack(header: Mapping[str, Any], body: bytes) -> bytes:
    """An index file's plaintext: ``MAGIC || u32 length || header JSON || body``."""
    h = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return MAGIC + struct.pack(">I", len(h)) + h + body


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split an index file's plaintext; FormatError if it is not one."""
    n = len(MAGIC)
    if data[:n] != MAGIC or len(data) < n + 4:
        raise FormatError(N_("not a search index file"))
    (hlen,) = struct.unpack(">I", data[n:n + 4])
    try:
        header = json.loads(data[n + 4:n + 4 + hlen])
    except (ValueError, UnicodeDecodeError):
        raise FormatError(N_("search index file: bad header")) from None
    if not isinstance(header, dict):
        raise FormatError(N_("search index file: bad header"))
    return header, data[n + 4 + hlen:]
