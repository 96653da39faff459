"""The search index's ranking: each matching dossier's best (rank, field) from its postings, and a page of them.

A query that matches much of the vault must cost about what its page costs, not what sorting every
match would: almost every occurrence of a broad query is a plain substring (rank 3), and only the
few at a word start, at the start of a value or at the end of a contact can rank better, so only
those are scored one by one. The page is then taken group by group (rank, field) in the order of
``SearchDB.search_page``: a group that fills it yields only its first rows, found by walking the
dossiers in slot order until the page is full. Postings are the integers of ``searchshards.encode``.
"""

from __future__ import annotations

import itertools
from collections import Counter
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


def groups(best: dict[int, int], first: int | None, tie_limit: int) -> Iterator[tuple[int, list[int], int]]:
    """(key, slots, the group's size) of each (rank, field) group in order, as far as a page of ``first``
    needs (every group when None): a whole group in slot order, or — for a group of more than
    ``tie_limit`` that fills the page — only its smallest slots, as many as the page still needs."""
    sizes = Counter(best.values())
    small: dict[int, list[int]] | None = None
    taken = 0
    for key in sorted(sizes):
        if first is not None and taken >= first:
            return
        if first is not None and sizes[key] > tie_limit:
            need = first - taken
            chosen = list(itertools.islice((s for s, k in reversed(best.items()) if k == key), need))
            yield key, chosen, sizes[key]
            taken += len(chosen)
            continue
        if small is None:  # every group the page may read whole, collected in one walk
            wanted = {k for k, n in sizes.items() if first is None or n <= tie_limit}
            small = {k: [] for k in wanted}
            for s, k in reversed(best.items()):
                if k in wanted:
                    small[k].append(s)
        yield key, small[key], sizes[key]
        taken += sizes[key]
