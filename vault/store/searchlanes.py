"""A one-word query's per-posting work at C speed: posting arrays read as one integer of 64-bit lanes.

A word that 60 % of the vault shares has tens of thousands of postings, and a Python loop over them
costs tens of milliseconds. Here that work is arithmetic on one big integer holding every posting in
a 64-bit lane (each operation one pass in C; masks keep every lane apart), byte slices, ``bytes``
searches and set operations. Postings are the integers of ``searchshards.encode`` and every array
here is in ascending order, as gram shards keep them — so a dossier's postings are contiguous and
found by bisection. ``SearchDB.search_page`` ranks a query of one word here, and narrows a query
of several to the dossiers that hold them all (``slots_of``, ``in_slots``); the ranking is the
one ``searchrank`` defines, and tests/test_find_ranking.py holds the two to the written-out order.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from itertools import compress
from typing import Iterable

from vault.store.searchrank import SUBSTRING
from vault.store.searchtext import FIELD_RANK

_LITTLE = sys.byteorder == "little"
_SLOT = (1 << 24) - 1
_CAND = ((1 << 48) - 1) & ~(1 << 15)  # ``p >> 16`` without the word-start bit: slot, entry, field, position
_GUARD = 1 << 48  # set in every candidate lane, so subtracting an offset never borrows from the next lane
_CONTACT = FIELD_RANK["contact"]

# Byte tables over one byte of each little-endian posting: 1 where the condition holds, else 0.
_WORD_START = bytes(int(b >= 0x80) for b in range(256))  # byte 3, bit 7: starts a word
_ZERO = bytes(int(b == 0) for b in range(256))  # byte 2 (position, low bits)
_ZERO_LOW7 = bytes(int(b & 0x7F == 0) for b in range(256))  # byte 3 (position, high bits)
_IS_CONTACT = bytes(int(b & 7 == _CONTACT) for b in range(256))  # byte 4: the field in its low three bits
_SUBSTRING_KEY = bytes(SUBSTRING << 3 | b & 7 for b in range(256))  # byte 4 -> (3, field)
_NONZERO = bytes(int(b != 0) for b in range(256))
_LOW3 = bytes(b & 7 for b in range(256))
_LOW7 = bytes(b & 0x7F for b in range(256))
_IS = [bytes(int(b == k) for b in range(256)) for k in range(256)]
_WORSE = bytes(255 * (b == 0) for b in range(256))


def _le(a: array) -> bytes:
    if _LITTLE:
        return a.tobytes()
    b = array("Q", a)
    b.byteswap()
    return b.tobytes()


def _array(raw: bytes) -> array:
    a = array("Q")
    a.frombytes(raw)
    if not _LITTLE:
        a.byteswap()
    return a


class _Lanes:
    """Constants over ``n`` lanes: ``rep(v)`` is ``v`` in every lane (one multiplication, not a copy)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.one = int.from_bytes(b"\1\0\0\0\0\0\0\0" * n, "little")

    def rep(self, value: int) -> int:
        return self.one * value

    def of(self, a: array) -> int:
        return int.from_bytes(_le(a), "little")

    def raw(self, x: int) -> bytes:
        return x.to_bytes(8 * self.n, "little")


def _candidates(a: array, offset: int) -> array:
    """Where a word starts if the trigram of each posting is at ``offset`` in it: ``(p >> 16)``
    without the word-start bit, minus ``offset``, with a guard bit. A posting at a position below
    ``offset`` gives a value whose bit 15 is set, which no offset-0 candidate has: it never matches."""
    ln = _Lanes(len(a))
    c = ((ln.of(a) >> 16) & ln.rep(_CAND)) | ln.rep(_GUARD)
    if offset:
        c -= ln.rep(offset)
    return _array(ln.raw(c))


def aligned(first: array, others: list[tuple[array, int]]) -> array:
    """The postings of a word's first trigram (``first``) at whose place each other trigram
    ``(postings, offset)`` occurs at its offset in the same entry: one per place the word starts."""
    if not first or not others:
        return first
    c0 = _candidates(first, 0)
    cands = [_candidates(a, i) for a, i in others]
    if all(c == c0 for c in cands):  # every occurrence continues (the word occurs once per entry)
        return first
    alive = set(c0)
    for c in cands:
        alive.intersection_update(c)
        if not alive:
            return array("Q")
    if len(alive) == len(c0):
        return first
    return array("Q", compress(first, map(alive.__contains__, c0)))


def in_fields(posts: array, fields: Iterable[int]) -> array:
    """The postings in one of ``fields`` (field ranks)."""
    wanted = set(fields)
    table = bytes(int(b & 7 in wanted) for b in range(256))
    keep = _le(posts)[4::8].translate(table)  # byte 4: the field in its low three bits
    return posts if keep.count(0) == 0 else array("Q", compress(posts, keep))


def _slot_column(posts: array) -> array:
    ln = _Lanes(len(posts))
    return _array(ln.raw((ln.of(posts) >> 40) & ln.rep(_SLOT)))


def slots_of(posts: array) -> set[int]:
    """The dossier slots ``posts`` name."""
    return set(_slot_column(posts)) if posts else set()


def in_slots(posts: array, slots: set[int]) -> array:
    """The postings of ``slots`` (a query of several words: the dossiers that hold every word)."""
    return array("Q", compress(posts, map(slots.__contains__, _slot_column(posts)))) if posts else posts


def without_slots(posts: array, slots: Iterable[int]) -> array:
    """``posts`` without the postings of ``slots`` (each a contiguous run: found by bisection)."""
    out = posts
    for s in sorted(slots, reverse=True):
        lo = bisect_left(out, s << 40)
        hi = bisect_left(out, (s + 1) << 40, lo)
        if hi > lo:
            if out is posts:
                out = array("Q", posts)
            del out[lo:hi]
    return out


def fields_of(posts: array, slots: Iterable[int]) -> dict[int, set[int]]:
    """The fields each of ``slots`` has a posting in (slots with none are left out)."""
    out: dict[int, set[int]] = {}
    for s in slots:
        lo = bisect_left(posts, s << 40)
        hi = bisect_left(posts, (s + 1) << 40, lo)
        if hi > lo:
            out[s] = {p >> 32 & 7 for p in posts[lo:hi]}
    return out


def _int(b: bytes | bytearray) -> int:
    return int.from_bytes(b, "little")


def _firsts(raw: bytes, n: int) -> bytes:
    """For each lane of ``raw``: 1 if its slot (bytes 5-7) differs from the previous lane's, else 0
    (1 in lane 0)."""
    d = 0
    for i in (5, 6, 7):
        col = raw[i::8]
        d |= _int(col) ^ _int(bytes([col[0] ^ 1]) + col[:-1])
    return d.to_bytes(n, "little").translate(_NONZERO)


def _ranks(raw: bytes, n: int, lw: int) -> bytes:
    """Each occurrence's ``rank << 3 | field`` (a byte each), as ``searchrank._single_word_keys``
    scores it: 0 at a word start in an entry as long as the word; 1 at the start of the entry, or
    (a contact) ending it; 2 at a word start; 3 inside a word. Worked a byte per occurrence: every
    column below is ``n`` bytes of 0 or 1, combined as integers (no carry crosses a byte)."""
    ones = _int(b"\1" * n)
    b0, b1, b2, b3, b4 = (raw[i::8] for i in range(5))
    ws = _int(b3.translate(_WORD_START))
    r0 = ws & _int(b0.translate(_IS[lw & 0xFF])) & _int(b1.translate(_IS[lw >> 8]))
    r1 = _int(b2.translate(_ZERO)) & _int(b3.translate(_ZERO_LOW7))
    contact = _int(b4.translate(_IS_CONTACT))
    if contact:  # a contact ending with the word: position + lw == length, in 16-bit lanes (no carry: both < 2 ** 15)
        pos, length = bytearray(2 * n), bytearray(2 * n)
        pos[0::2], pos[1::2], length[0::2], length[1::2] = b2, b3.translate(_LOW7), b0, b1
        end = ((_int(pos) + _int(lw.to_bytes(2, "little") * n)) ^ _int(length)).to_bytes(2 * n, "little")
        r1 |= contact & _int(end[0::2].translate(_ZERO)) & _int(end[1::2].translate(_ZERO))
    r1 &= r0 ^ ones
    r2 = ws & ((r0 | r1) ^ ones)
    rank = 3 * ones - 3 * r0 - 2 * r1 - r2  # a byte each, 0 to 3: nothing borrows from the next
    return ((rank << 3) | _int(b4.translate(_LOW3))).to_bytes(n, "little")


def slot_at(raw: bytes, j: int) -> int:
    """The slot in lane ``j`` of ``best_single``'s lanes."""
    return int.from_bytes(raw[8 * j + 5:8 * j + 8], "little")


def best_single(posts: array, lw: int) -> tuple[bytes, bytes, int]:
    """A one-word query of length ``lw``: each dossier's best ``rank << 3 | field`` over the
    occurrences ``posts`` (one per place the word starts) — ``(lanes, keys, count)``: 8-byte lanes
    in slot order (``slot_at``), a key byte per lane (255 in the lanes of a dossier's worse
    occurrences, which count for nothing) and how many dossiers.

    Only when some occurrence starts a word or an entry or is in a contact can it rank above a
    substring (3): otherwise every key is (3, field), read off the postings' bytes.
    """
    n = len(posts)
    if not n:
        return b"", b"", 0
    raw = _le(posts)
    b3, b4 = raw[3::8], raw[4::8]
    special = _int(b3.translate(_WORD_START)) | _int(b4.translate(_IS_CONTACT)) \
        | (_int(raw[2::8].translate(_ZERO)) & _int(b3.translate(_ZERO_LOW7)))
    keys = _ranks(raw, n, lw) if special else b4.translate(_SUBSTRING_KEY)
    first = _firsts(raw, n)
    if first.count(0):  # a dossier with several occurrences: sorted, its best (smallest) key first
        lanes = bytearray(raw)  # slot in bytes 5-7, the key in byte 4, the rest zero
        lanes[4::8] = keys
        for i in range(4):
            lanes[i::8] = bytes(n)
        raw = _le(array("Q", sorted(_array(bytes(lanes)))))  # (in slot order: only each run is out of order)
        first, keys = _firsts(raw, n), raw[4::8]
    return raw, (_int(keys) | _int(first.translate(_WORSE))).to_bytes(n, "little"), first.count(1)
