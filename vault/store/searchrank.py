"""The search index's ranking: each matching dossier's best (rank, field) from its postings, and a page of them.

A query that matches much of the vault must cost about what its page costs, not what sorting every
match would: almost every occurrence of a broad query is a plain substring (rank 3), and only the
few at a word start, at the start of a value or at the end of a contact can rank better, so only
those are scored one by one (a query of one word is ranked at C speed by ``searchlanes``, to the
same definition). The page is then taken group by group (rank, field) in the order of
``SearchDB.search_page``, from one key byte per matching dossier in slot order: a group that fills
it yields only its first rows, found by ``bytes.find``. Postings are the integers of
``searchshards.encode``.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

from vault.store.searchshards import MAX_LEN, MAX_POS
from vault.store.searchtext import FIELD_RANK, FIELDS

WS = 1 << 31  # the posting's "starts a word" bit
POSITION = MAX_POS << 16  # the posting's position bits
CONTACT = FIELD_RANK["contact"]
SUBSTRING = 3  # the worst rank: a word found inside a value


def score(field: int, length: int, where: list[list[tuple[int, bool]] | None], words: list[str], whole: str) -> int:
    """An entry's rank from where each word occurs in it (see ``SearchDB.search_page``)."""
    if any(w is None for w in where):
        return 3
    at = [{s for s, _ in w} for w in where]  # type: ignore[union-attr]
    starts = [{s for s, ws in w if ws} for w in where]  # type: ignore[union-attr]
    if length == len(whole) and all(starts):
        return 0  # the same words, in this order or another
    offsets = _offsets(whole)
    if all(offsets.get(w, -1) in a for w, a in zip(words, at)):
        return 1
    if FIELDS[field] == "contact" and all(length - len(whole) + offsets.get(w, -10**6) in a for w, a in zip(words, at)):
        return 1
    if all(starts):
        return 2
    return 3


def _offsets(whole: str) -> dict[str, int]:
    """Where each word first starts in the whole query."""
    offsets: dict[str, int] = {}
    off = 0
    for w in whole.split(" "):
        offsets.setdefault(w, off)
        off += len(w) + 1
    return offsets


def best_per_slot(per_word: list[Sequence[int]], slots: set[int] | None, words: list[str], whole: str) -> dict[int, int]:
    """Each matching dossier slot's best ``rank << 3 | field`` over its entries, the slots in
    descending order (``groups`` walks them backwards).

    ``per_word[j]`` holds the postings of word ``words[j]``'s occurrences (one per place it starts);
    ``slots`` the dossiers that hold every word (None: all of them, for one word). An entry missing a
    word, or holding every word only inside other words, ranks 3 (``score``), so every entry starts
    at (3, its field) with no scoring, and only entries in which every word has an occurrence that
    could rank better — at a word start, at the word's place in the query, or (a contact) at that
    place counted from the end — are scored.
    """
    if len(per_word) == 1 and words[0] == whole:
        keys = _single_word_keys(per_word[0], slots, len(whole))
    else:
        sub = SUBSTRING << 3
        keys = [(p >> 40 << 5) | (p >> 32 & 7) | sub for occ in per_word for p in occ if slots is None or p >> 40 in slots]
        keys += _scored_keys(per_word, slots, words, whole)
    keys.sort(reverse=True)  # per slot, the smallest key comes last and wins
    return {k >> 5: k & 31 for k in keys}


def _single_word_keys(occ: Sequence[int], slots: set[int] | None, lw: int) -> list[int]:
    """One word: an entry's rank is its best occurrence's, so each occurrence gives its own key
    (``score`` for one word, written out so that it runs as one comprehension)."""
    return [(p >> 40 << 5) | (p >> 32 & 7) | (
        0 if p & WS and p & MAX_LEN == lw else
        8 if not p & POSITION or ((p >> 32) & 7 == CONTACT and (p >> 16) & MAX_POS == (p & MAX_LEN) - lw) else
        16 if p & WS else 24) for p in occ if slots is None or p >> 40 in slots]


def _scored_keys(per_word: list[Sequence[int]], slots: set[int] | None, words: list[str], whole: str) -> Iterator[int]:
    offsets = _offsets(whole)
    lw = len(whole)
    hopeful: set[int] | None = None
    for w, occ in zip(words, per_word):
        off = offsets.get(w, -1)
        here = {p >> 32 for p in occ if p & WS or (p >> 16) & MAX_POS == off
                or ((p >> 32) & 7 == CONTACT and (p >> 16) & MAX_POS == (p & MAX_LEN) - lw + off)}
        hopeful = here if hopeful is None else hopeful & here
    entries = {ek for ek in hopeful or () if slots is None or ek >> 8 in slots}
    if not entries:
        return
    where: dict[int, list[list[tuple[int, bool]]]] = {ek: [[] for _ in words] for ek in entries}
    length: dict[int, int] = {}
    for j, occ in enumerate(per_word):
        for p in occ:
            lst = where.get(p >> 32)
            if lst is not None:
                lst[j].append(((p >> 16) & MAX_POS, bool(p & WS)))
                length[p >> 32] = p & MAX_LEN
    for ek, lists in where.items():
        rank = score(ek & 7, length[ek], list(lists), words, whole)
        if rank < SUBSTRING:
            yield (ek >> 8 << 5) | (rank << 3) | (ek & 7)


def fields_of(per_word: list[Sequence[int]], page: set[int]) -> dict[int, set[int]]:
    """The fields in which a page's dossiers matched a word (each hit lists them)."""
    out: dict[int, set[int]] = {s: set() for s in page}
    for occ in per_word:
        for p in [p for p in occ if p >> 40 in page]:
            out[p >> 40].add(p >> 32 & 7)
    return out


def groups(keys: bytes, first: int | None, tie_limit: int) -> Iterator[tuple[int, list[int], int]]:
    """(key, positions, the group's size) of each (rank, field) group in order, as far as a page of
    ``first`` needs (every group when None), ``keys`` holding each matching dossier's best key in slot
    order: a whole group, or — for a group of more than ``tie_limit`` that fills the page — only its
    first positions, as many as the page still needs (found by ``bytes.find``, not by a walk)."""
    taken = 0
    for key in range(32):  # rank << 3 | field, best first
        if key not in keys:  # (a memchr; most keys are absent)
            continue
        size = keys.count(key)
        if first is not None and taken >= first:
            return
        if first is not None and size > tie_limit:
            at, j = [], -1
            for _ in range(min(first - taken, size)):
                j = keys.find(key, j + 1)
                at.append(j)
        else:
            at = list(itertools.compress(range(len(keys)), keys.translate(_IS[key])))
        yield key, at, size
        taken += len(at)


_IS = [bytes(int(b == k) for b in range(256)) for k in range(32)]  # (``bytes.translate`` tables)
