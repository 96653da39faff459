"""The search index's engine: normalisation, n-gram keys, postings and ranking over shards loaded on demand.

Nothing here is ever a plaintext file: shards arrive as bytes the caller decrypted and leave as
bytes the caller encrypts (see ``vault.archive.searchindex`` and ``searchwrite``). Words of three or more characters
are found as substrings through their trigrams (every trigram at consecutive positions of one
value); two-character words through CJK character bigrams and the first two characters of other
words, because trigrams cannot answer a two-character query such as 小明 or 杭州. A query reads
only the gram shards holding its keys and the dossier shards of the rows that decide its page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import struct
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from vault.errors import FormatError, InputError
from vault.i18n import N_
from vault.store import searchlanes, searchrank
from vault.store.searchshards import MAX_ENTRIES, MAX_POS, DossierShard, GramShard, encode
from vault.store import jsontext
from vault.store.searchtext import (CONTACT_FIELDS, FIELD_RANK, FIELDS, NAME_FIELDS, entries, fold,  # noqa: F401
                                    fold_contact, grams_of, query_words)

MAGIC = b"vault-search-v1\n"
#: Shards a new index is split into: gram shards (by keyed hash of the key) and dossier shards (by id).
GRAM_SHARDS = 256
DOSSIER_SHARDS = 256

def dossier_shard(dossier: str, shards: int) -> int:
    """Which dossier shard holds a dossier: ids are public, so a plain hash of the id will do."""
    return int.from_bytes(hashlib.sha256(dossier.encode()).digest()[:4], "big") % shards


def postings_of(slot: int, rows: list) -> dict[str, list[int]]:
    """The postings per key of a dossier's (field, folded value) entries."""
    keyed: dict[str, list[int]] = {}
    for k, (f, v) in enumerate(rows):
        for key, occ in grams_of(v).items():
            keyed.setdefault(key, []).extend(encode(slot, k, FIELD_RANK[f], w, pos, len(v)) for pos, w in occ)
    return keyed


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


#: Loads a shard's body: ``loader("g" | "d", n)``; None when the shard holds nothing yet.
Loader = Callable[[str, int], "bytes | None"]
_VIRTUAL = 1 << 24  # slots of dossiers known only from deltas (never stored)
#: Rows tied on rank that are put in archive-number order; more stay in the index's order.
TIE_BY_NUMBER = 100
_NO_WS = ~(1 << 15)  # clears the word-start bit of a posting shifted right by 16


class SearchDB:
    """The index as shards loaded on demand: a query reads only the gram shards of its keys and the
    dossier shards of the rows it ranks; changes are made to loaded shards and saved by the caller."""

    def __init__(self, loader: Loader | None = None, *, bucket_key: bytes = b"", grams: int = GRAM_SHARDS,
                 dossiers: int = DOSSIER_SHARDS, ordered: bool = True) -> None:
        self.loader = loader or (lambda kind, n: None)
        self.bucket_key, self.n_grams, self.n_dossiers = bucket_key, grams, dossiers
        self.ordered = ordered  # the loader's gram shards keep postings in order (``GramShard``)
        self.g: dict[int, GramShard] = {}
        self.d: dict[int, DossierShard] = {}
        self.dirty: set[tuple[str, int]] = set()
        self.grown = 0  # dossiers added to the shards minus dossiers removed, since loaded
        self.overlay: dict[str, tuple[int, list[Any], dict[str, Any]]] = {}  # id -> (virtual slot, row, profile)
        self.hidden: set[int] = set()  # stored slots a newer delta replaces

    # -- shards ----------------------------------------------------------------------------------

    def gram_shard(self, key: str) -> int:
        h = hmac.new(self.bucket_key, key.encode(), hashlib.sha256).digest()
        return int.from_bytes(h[:4], "big") % self.n_grams

    def _gs(self, n: int) -> GramShard:
        s = self.g.get(n)
        if s is None:
            s = self.g[n] = GramShard(self.loader("g", n), ordered=self.ordered)
        return s

    def _ds(self, n: int) -> DossierShard:
        s = self.d.get(n)
        if s is None:
            s = self.d[n] = DossierShard(self.loader("d", n))
        return s

    def load_all(self) -> None:
        for n in range(self.n_grams):
            self._gs(n)
        for n in range(self.n_dossiers):
            self._ds(n)

    # -- changes (a merge, a build, a destruction) -----------------------------------------------

    def put(self, dossier: str, *, number: str, version: int, sealed_sha256: str, by: str,
            profile: Mapping[str, Any]) -> None:
        """Index (or re-index) one dossier's newest profile version in the shards."""
        present = sorted(k for k, x in profile.items() if x)
        self.put_row(dossier, [number, version, sealed_sha256, by, present], entries(number, profile))

    def put_row(self, dossier: str, row: list[Any], rows: list) -> None:
        """Index a dossier from its row ``[number, version, digest, by, fields]`` and folded entries."""
        self.remove(dossier)
        self.grown += 1
        n = dossier_shard(dossier, self.n_dossiers)
        rows = [tuple(r) for r in rows[:MAX_ENTRIES]]
        slot = (n << 16) | self._ds(n).put(dossier, [*row, [list(r) for r in rows]])
        self.dirty.add(("d", n))
        for key, posts in postings_of(slot, rows).items():
            g = self.gram_shard(key)
            shard = self._gs(g)
            for p in posts:
                shard.add(key, p)
            self.dirty.add(("g", g))

    def rows(self) -> Iterator[tuple[str, list[Any], list]]:
        """Every stored dossier: (id, row, entries), in slot order per shard (loads every dossier shard)."""
        for n in range(self.n_dossiers):
            for d, r in sorted(self._ds(n).rows.items(), key=lambda t: t[1][0]):
                yield d, r[1:6], [tuple(e) for e in r[6]]

    def remove(self, dossier: str) -> bool:
        """Forget a dossier: its row and every posting of its values; True if it was indexed."""
        n = dossier_shard(dossier, self.n_dossiers)
        row = self._ds(n).remove(dossier)
        if row is None:
            return False
        self.grown -= 1
        self.dirty.add(("d", n))
        slot = (n << 16) | row[0]
        for _, value in row[6]:
            for key in grams_of(value):
                g = self.gram_shard(key)
                self._gs(g).drop_slot(key, slot)
                self.dirty.add(("g", g))
        return True

    def overlay_put(self, dossier: str, *, number: str, version: int, sealed_sha256: str, by: str,
                    profile: Mapping[str, Any]) -> None:
        """Apply a delta for queries only: the dossier's stored row and postings are hidden, its new
        values matched from memory. ``materialize`` writes the overlay into the shards."""
        n = dossier_shard(dossier, self.n_dossiers)
        old = self._ds(n).rows.get(dossier)
        if old is not None:
            self.hidden.add((n << 16) | old[0])
        present = sorted(k for k, x in profile.items() if x)
        vslot = self.overlay[dossier][0] if dossier in self.overlay else _VIRTUAL + len(self.overlay)
        self.overlay[dossier] = (vslot, [number, version, sealed_sha256, by, present], dict(profile))

    def overlay_new(self) -> Iterator[str]:
        """Dossiers the overlay holds that the shards do not (new since the last merge)."""
        for d in self.overlay:
            if d not in self._ds(dossier_shard(d, self.n_dossiers)).rows:
                yield d

    def materialize(self) -> None:
        for dossier, (_, row, profile) in list(self.overlay.items()):
            self.put(dossier, number=row[0], version=row[1], sealed_sha256=row[2], by=row[3], profile=profile)
        self.overlay.clear()
        self.hidden.clear()

    # -- reading ---------------------------------------------------------------------------------

    def info(self, dossier: str) -> dict[str, Any] | None:
        if dossier in self.overlay:
            row = self.overlay[dossier][1]
        else:
            r = self._ds(dossier_shard(dossier, self.n_dossiers)).rows.get(dossier)
            if r is None:
                return None
            row = r[1:]
        return {"number": row[0], "version": row[1], "sealed_sha256": row[2], "by": row[3], "fields": list(row[4])}

    def ids(self) -> list[str]:
        out = set(self.overlay)
        for n in range(self.n_dossiers):
            out.update(self._ds(n).rows)
        return sorted(out)

    def __len__(self) -> int:
        return len(self.ids())

    def _overlay_postings(self, key: str) -> list[int]:
        """Postings of ``key`` in the dossiers only deltas hold: found by substring first, so only the
        values that contain the key are split into n-grams."""
        out: list[int] = []
        for vslot, row, profile in self.overlay.values():
            for k, (f, v) in enumerate(entries(row[0], profile)[:MAX_ENTRIES]):
                if key in v:
                    out.extend(encode(vslot, k, FIELD_RANK[f], w, pos, len(v)) for pos, w in grams_of(v).get(key, ()))
        return out

    def _stored(self, key: str) -> array:
        """The stored postings of ``key`` (ascending), without those of dossiers a delta replaces."""
        arr = self._gs(self.gram_shard(key)).get(key)
        return searchlanes.without_slots(arr, self.hidden) if self.hidden and arr else arr

    def _postings(self, key: str) -> list[int] | array:
        """Every posting of ``key``: the stored ones, then those of the deltas."""
        kept = self._stored(key)
        extra = self._overlay_postings(key) if self.overlay else None
        return list(kept) + extra if extra else kept

    def _slot_row(self, slot: int) -> tuple[str, list[Any], list]:
        """(id, [number, version, digest, by, fields], [(field, value), ...]) of a slot."""
        if slot >= _VIRTUAL:
            for d, (vs, row, profile) in self.overlay.items():
                if vs == slot:
                    return d, row, entries(row[0], profile)[:MAX_ENTRIES]
        found = self._ds(slot >> 16).by_index(slot & 0xFFFF)
        if found is None:
            raise FormatError(N_("search index: a posting names no dossier"))
        d, r = found
        return d, r[1:6], [tuple(e) for e in r[6]]

    def _word_parts(self, word: str, mask: set[int] | None) -> tuple[array, list[int]]:
        """The occurrences of ``word`` — for each place it starts in an entry, the posting of its first
        n-gram there (which carries the entry, the position, the word-start bit and the length) —
        in the shards (ascending) and in the deltas."""
        over = self._overlay_postings if self.overlay else lambda key: []
        if len(word) == 2:
            stored, extra = self._stored(word), over(word)
        else:
            # Trigrams that cover the word (every third, and the last) say as much as all of them.
            cover = sorted({*range(3, len(word) - 2, 3), len(word) - 3} - {0})
            stored, extra = self._stored(word[:3]), over(word[:3])
            if stored:
                stored = searchlanes.aligned(stored, [(self._stored(word[i:i + 3]), i) for i in cover])
            if extra:
                extra = _aligned(extra, [(over(word[i:i + 3]), i) for i in cover])
        if mask is not None:
            stored = searchlanes.in_fields(stored, mask)
            extra = [p for p in extra if p >> 32 & 7 in mask]
        return stored, extra

    def search(self, query: str, fields: Iterable[str] | None = None) -> list[Hit]:
        """Every dossier in which each word of ``query`` occurs (in any of ``fields``), best first."""
        return self.search_page(query, fields)[1]

    def search_page(self, query: str, fields: Iterable[str] | None = None,
                    first: int | None = None) -> tuple[int, list[Hit]]:
        """(how many dossiers match, the best ``first`` of them — all when None).

        Rank: the whole query equal to a value, then a value starting with it (a contact ending
        with it: a phone's last digits, an e-mail's domain), then every word at a word start, then
        substrings; ties by field (name first), then archive number (beyond ``TIE_BY_NUMBER``
        tied rows, the index's order). Only the dossier shards of the rows that decide the page
        are read, and only the occurrences that could rank above a substring are scored
        (``searchrank``); a query of one word — the broad ones — is worked over every posting at
        once (``searchlanes``), so its exact count and page cost a few passes in C, not a Python
        loop over tens of thousands of postings.
        """
        words = query_words(query)
        long = sorted({w for w in words if len(w) >= 2}, key=len, reverse=True)
        if not long:
            raise InputError(N_("a query needs a word of at least two characters"), hint=N_("e.g. 小明, 杭州 or north"))
        short = [w for w in words if len(w) < 2]
        mask = {FIELD_RANK[f] for f in fields} if fields is not None else None
        if len(long) == 1 and not short and len(long[0]) <= MAX_POS:
            return self._one_word(long[0], mask, first)
        parts = []
        common: set[int] | None = None
        for w in long:
            stored, extra = self._word_parts(w, mask)
            if not stored and not extra:
                return 0, []
            parts.append((stored, extra))
        if len(parts) > 1:  # only the dossiers that hold every word count: narrowed at C speed first
            common = set.intersection(*(searchlanes.slots_of(st) | {p >> 40 for p in ex} for st, ex in parts))
            parts = [(searchlanes.in_slots(st, common), [p for p in ex if p >> 40 in common]) for st, ex in parts]
        per_word: list[Sequence[int]] = [list(st) + ex if ex else st for st, ex in parts]
        if not all(per_word):
            return 0, []
        # None: every dossier the one word occurs in; several words: those that hold them all (``common``)
        slots = common if common is not None else {p >> 40 for p in per_word[0]} if short else None
        rows: dict[int, tuple] = {}
        if slots is not None and short:  # one-character words only narrow what the others found: read the values
            for s in list(slots):
                rows[s] = self._slot_row(s)
                if not all(any(c in v for _, v in rows[s][2]) for c in short):
                    slots.discard(s)
        best = searchrank.best_per_slot(per_word, slots, long, " ".join(words))
        order = list(reversed(best))  # (slots ascending)
        return len(best), self._page(order.__getitem__, bytes(best[s] for s in order), first,
                                     lambda page: searchrank.fields_of(per_word, page), rows)

    def _one_word(self, word: str, mask: set[int] | None, first: int | None) -> tuple[int, list[Hit]]:
        """``search_page`` of one word: the stored occurrences ranked at C speed (``searchlanes``),
        those of the deltas (few) one by one."""
        stored, extra = self._word_parts(word, mask)
        lanes, keys, total = searchlanes.best_single(stored, len(word))
        n = len(stored)
        more: list[int] = []
        if extra:  # dossiers that deltas hold: their slots come after every stored one
            best = searchrank.best_per_slot([extra], None, [word], word)
            more = list(reversed(best))
            keys += bytes(best[s] for s in more)
            total += len(more)

        def slot(j: int) -> int:
            return searchlanes.slot_at(lanes, j) if j < n else more[j - n]

        def matched(page: set[int]) -> dict[int, set[int]]:
            out = searchlanes.fields_of(stored, page)
            out.update(searchrank.fields_of([extra], {s for s in page if s >= _VIRTUAL}))
            return out
        return total, self._page(slot, keys, first, matched, {})

    def _page(self, slot: Callable[[int], int], keys: bytes, first: int | None,
              matched_of: Callable[[set[int]], dict[int, set[int]]], rows: dict[int, tuple]) -> list[Hit]:
        """The hits of the best ``first`` (all when None) of the matching dossiers: ``keys`` holds each
        one's best ``rank << 3 | field`` in slot order (255: ignored), ``slot(j)`` the slot of ``keys[j]``."""
        page = [(key, [slot(j) for j in at], size) for key, at, size in searchrank.groups(keys, first, TIE_BY_NUMBER)]
        matched = matched_of({s for _, group, _ in page for s in group})
        hits: list[Hit] = []
        for key, group, size in page:
            # Ties in archive-number order need every tied row's number, i.e. its dossier shard; past
            # TIE_BY_NUMBER tied rows (a query matching much of the vault) they stay in index order,
            # so a page still reads only the dossier shards of its own rows — decided by the whole
            # group's size, so that every page is a slice of the same order.
            chunk = []
            for s in group:
                d, row, _ = rows.get(s) or self._slot_row(s)
                chunk.append(Hit(d, row[0], FIELDS[key & 7], [FIELDS[x] for x in sorted(matched[s])], key >> 3))
            if size <= TIE_BY_NUMBER:
                chunk.sort(key=Hit.key)
            hits.extend(chunk)
        return hits[:first] if first is not None else hits


def _aligned(found: list[int], others: list[tuple[list[int], int]]) -> list[int]:
    """``searchlanes.aligned`` one posting at a time, for the few postings of the deltas.

    Candidates are (entry << 16 | start): the posting shifted right by 16 without its word-start
    bit is (entry << 16 | position), so a trigram at offset i of the word says the word starts i
    earlier. The first trigram's postings are kept where every other trigram gives the candidate.
    """
    alive: set[int] | None = None
    for posts, i in sorted(others, key=lambda t: len(t[0])):
        here = {c - i for p in posts if (c := (p >> 16) & _NO_WS) & MAX_POS >= i}
        alive = here if alive is None else alive & here
        if not alive:
            return []
    return found if alive is None else [p for p in found if (p >> 16) & _NO_WS in alive]


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
        header = jsontext.loads(data[n + 4:n + 4 + hlen])
    except (ValueError, UnicodeDecodeError):
        raise FormatError(N_("search index file: bad header")) from None
    if not isinstance(header, dict):
        raise FormatError(N_("search index file: bad header"))
    return header, data[n + 4 + hlen:]
