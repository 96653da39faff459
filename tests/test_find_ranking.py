"""The engine's page is the page of the plain definition: every match scored and sorted, then cut [R-1.3.4].

``SearchDB.search_page`` scores only the occurrences that can rank above a substring and takes a page
without sorting every match. Here it is compared, over random vaults and queries (ties past
``TIE_BY_NUMBER``, word starts, contacts, other names, deltas on top of the shards, removed
dossiers, field restrictions, one-character words, pages of every size), with ``reference``: the
ranking written out directly — each word's entries found through all of its trigrams, every
entry scored, every dossier sorted — which is how the order is defined in docs/FORMAT.md §11.
"""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest

from vault.errors import InputError
from vault.store.searchdb import TIE_BY_NUMBER, SearchDB
from vault.store.searchshards import MAX_LEN, MAX_POS
from vault.store.searchtext import CONTACT_FIELDS, FIELD_RANK, FIELDS, NAME_FIELDS, query_words


def _reference_word(db: SearchDB, word: str, mask):
    if len(word) == 2:
        found: dict[int, list] = {}
        for p in db._postings(word):
            found.setdefault(p >> 32, []).append(((p >> 16) & MAX_POS, bool(p >> 31 & 1), p & MAX_LEN))
    else:
        alive = None
        first = {}
        for i in range(len(word) - 2):
            here = set()
            for p in db._postings(word[i:i + 3]):
                start = ((p >> 16) & MAX_POS) - i
                if start >= 0:
                    here.add(((p >> 32) << 16) | start)
                    if i == 0:
                        first[((p >> 32) << 16) | start] = p
            alive = here if alive is None else alive & here
        found = {}
        for c in alive or ():
            p = first[c]
            found.setdefault(c >> 16, []).append((c & 0xFFFF, bool(p >> 31 & 1), p & MAX_LEN))
    return {ek: v for ek, v in found.items() if mask is None or ek & 7 in mask}


def _reference_score(field, length, where, words, whole):
    if any(w is None for w in where):
        return 3
    at = [{s for s, _, _ in w} for w in where]
    starts = [{s for s, ws, _ in w if ws} for w in where]
    if length == len(whole) and all(starts):
        return 0
    offsets: dict[str, int] = {}
    off = 0
    for w in whole.split(" "):
        offsets.setdefault(w, off)
        off += len(w) + 1
    if all(offsets.get(w, -1) in a for w, a in zip(words, at)):
        return 1
    if FIELDS[field] == "contact" and all(length - len(whole) + offsets.get(w, -10**6) in a for w, a in zip(words, at)):
        return 1
    return 2 if all(starts) else 3


def reference(db: SearchDB, query: str, fields=None, first=None):
    """(total, [(dossier, number, field, fields, score)]): the ranking of FORMAT §11, written out."""
    words = query_words(query)
    long = sorted({w for w in words if len(w) >= 2}, key=len, reverse=True)
    if not long:
        raise InputError("a query needs a word of at least two characters")
    short = [w for w in words if len(w) < 2]
    mask = {FIELD_RANK[f] for f in fields} if fields is not None else None
    per_word = [_reference_word(db, w, mask) for w in long]
    slots = set.intersection(*({ek >> 8 for ek in found} for found in per_word))
    slots = {s for s in slots if all(any(c in v for _, v in db._slot_row(s)[2]) for c in short)}
    whole = " ".join(words)
    best: dict[int, tuple] = {}
    for ek in {ek for found in per_word for ek in found if ek >> 8 in slots}:
        where = [found.get(ek) for found in per_word]
        length = next(w for w in where if w)[0][2]
        key = (_reference_score(ek & 7, length, where, long, whole), ek & 7)
        old = best.get(ek >> 8)
        best[ek >> 8] = (min(key, old[0]), old[1] | {ek & 7}) if old else (key, {ek & 7})
    order = sorted(best, key=lambda s: (best[s][0], s))
    hits: list[tuple] = []
    for key, grp in itertools.groupby(order, key=lambda s: best[s][0]):
        if first is not None and len(hits) >= first:
            break
        group = list(grp)
        size = len(group)
        if size > TIE_BY_NUMBER and first is not None:
            group = group[:first - len(hits)]
        chunk = [(db._slot_row(s)[0], db._slot_row(s)[1][0], FIELDS[key[1]], [FIELDS[f] for f in sorted(best[s][1])], key[0])
                 for s in group]
        if size <= TIE_BY_NUMBER:  # a larger group stays in the index's order on every page
            chunk.sort(key=lambda h: (h[4], FIELD_RANK[h[2]], h[1]))
        hits.extend(chunk)
    return len(order), hits[:first] if first is not None else hits


SYL = ["wang", "wei", "li", "na", "zhang", "min", "north", "wind", "ltd", "co"]
HAN = "杭州上海有限公司科技标记小明王东方电器"


def _value(rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        return "".join(rnd.choice(HAN) for _ in range(rnd.randint(2, 9)))
    return " ".join(rnd.choice(SYL) for _ in range(rnd.randint(1, 4)))


def _profile(rnd: random.Random, i: int) -> dict:
    p: dict = {"name": _value(rnd) + ("有限公司" if rnd.random() < 0.6 else "")}
    if rnd.random() < 0.5:
        p["aliases"] = [_value(rnd) for _ in range(rnd.randint(1, 2))]
    if rnd.random() < 0.7:
        p["contact"] = [f"+86 571 {rnd.randrange(10**4):04d} {i % 97:04d}", f"{rnd.choice(SYL)}@{rnd.choice(SYL)}.example"]
    if rnd.random() < 0.4:
        p["address"] = _value(rnd) + f" {i % 13} 号"
    return p


def _queries(rnd: random.Random, db: SearchDB, n: int) -> list[str]:
    values = [v for _, _, ents in db.rows() for _, v in ents]
    out = ["有限公司", "有限", "杭州", "wang", "wa", "wang wei", "wei wang", "example", "0001", "86 571",
           "杭州 有限公司", "小明", "north wind", "w 有限", "na li"]
    while len(out) < n:
        v = rnd.choice(values)
        a = rnd.randrange(len(v))
        q = v[a:a + rnd.randint(2, 8)]
        if rnd.random() < 0.3:
            q += " " + rnd.choice(values)[:rnd.randint(1, 4)]
        out.append(q)
    return out


def _vault(seed: int, n: int) -> SearchDB:
    rnd = random.Random(seed)
    db = SearchDB(bucket_key=rnd.randbytes(32), grams=7, dossiers=5)
    for i in range(n):
        db.put(f"d{i:05d}", number=f"E-2026-{rnd.randrange(10**6):06d}", version=1, sealed_sha256="0" * 64, by="bob",
               profile=_profile(rnd, i))
    for i in rnd.sample(range(n), n // 20):  # destroyed: row and postings gone
        db.remove(f"d{i:05d}")
    return db


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_page_is_the_page_of_the_plain_ranking(seed):
    db = _vault(seed, 400)
    rnd = random.Random(seed)
    for q in _queries(rnd, db, 60):
        for fields in (None, NAME_FIELDS, CONTACT_FIELDS):
            for first in (None, 1, 7, 20, 150):
                try:
                    want = reference(db, q, fields, first)
                except InputError:
                    with pytest.raises(InputError):
                        db.search_page(q, fields, first)
                    continue
                total, hits = db.search_page(q, fields, first)
                assert (total, [(h.dossier, h.number, h.field, h.fields, h.score) for h in hits]) == want, (q, fields, first)


def test_deltas_on_top_of_the_shards_rank_as_the_plain_ranking_says():
    db = _vault(4, 300)
    rnd = random.Random(4)
    for i in rnd.sample(range(300), 40):  # updated dossiers (their stored postings hidden) and new ones
        db.overlay_put(f"d{i:05d}", number=f"E-2026-{i:06d}", version=2, sealed_sha256="1" * 64, by="bob",
                       profile=_profile(rnd, i))
    for i in range(300, 330):
        db.overlay_put(f"d{i:05d}", number=f"E-2026-{i:06d}", version=1, sealed_sha256="1" * 64, by="bob",
                       profile=_profile(rnd, i))
    for q in _queries(rnd, db, 40):
        for first in (None, 5, 20):
            try:
                want = reference(db, q, None, first)
            except InputError:
                continue
            total, hits = db.search_page(q, None, first)
            assert (total, [(h.dossier, h.number, h.field, h.fields, h.score) for h in hits]) == want, (q, first)


def test_a_broad_page_reads_only_its_own_rows():
    """A query matching far more than TIE_BY_NUMBER tied rows: the page reads the dossier shards of its
    rows and no others, and the next page continues where the first stopped."""
    db = SearchDB(bucket_key=b"k" * 32, grams=16, dossiers=64)
    for i in range(3000):
        db.put(f"id{i}", number=f"E-2026-{i:06d}", version=1, sealed_sha256="0" * 64, by="bob",
               profile={"name": f"上海客户{i:05d}有限公司"})
    bodies = {(k, n): (db._gs(n) if k == "g" else db._ds(n)).body() for k, n in db.dirty}
    read: list = []

    def load(kind, n):
        read.append((kind, n))
        return bodies.get((kind, n))

    again = SearchDB(load, bucket_key=db.bucket_key, grams=16, dossiers=64)
    total, page = again.search_page("有限公司", None, 20)
    assert total == 3000 and len(page) == 20
    assert len({n for k, n in read if k == "d"}) <= 20
    _, two = again.search_page("有限公司", None, 40)
    assert [h.number for h in two[:20]] == [h.number for h in page]
    assert not {h.number for h in two[20:]} & {h.number for h in page}
    assert (total, [(h.dossier, h.number, h.field, h.fields, h.score) for h in two]) == reference(again, "有限公司", None, 40)


def test_paging_a_query_that_matches_more_than_the_tie_limit(office):
    """``vault find`` of a word that 130 customers share: the best match first, pages of ``--limit``
    that never repeat or skip a row, the total on every row and in the text, the next page named
    until the last."""
    from vault.office import dossier

    bob = office.actor("bob")
    made = [dossier.create(bob, customer_type="enterprise", business="network-services", dept="sales",
                           profile={"name": f"上海云帆{i:03d}有限公司"}) for i in range(TIE_BY_NUMBER + 29)]
    made.append(office.create(name="有限公司上海代表处"))  # a name starting with the query ranks first
    total = len(made)
    seen: list[str] = []
    for offset in range(0, total, 25):
        rows = json.loads(office.run("find", "有限公司", "--limit", "25", "--offset", str(offset), "--json",
                                     who="bob").stdout)
        assert [r["rank"] for r in rows] == list(range(offset + 1, offset + len(rows) + 1))
        assert all(r["total"] == total for r in rows) and len(rows) == min(25, total - offset)
        seen += [r["number"] for r in rows]
    assert seen[0] == made[-1] and sorted(seen) == sorted(made) and len(set(seen)) == total
    first = office.run("find", "有限公司", "--limit", "25", who="bob").stdout
    assert re.search(rf"1-25 of {total}; next page: --offset 25$", first.strip())
    last = office.run("find", "有限公司", "--limit", "25", "--offset", "125", who="bob").stdout
    assert last.strip().endswith(f"126-{total} of {total}") and "next page" not in last
    everything = json.loads(office.run("find", "有限公司", "--limit", str(total), "--json", who="bob").stdout)
    assert [r["number"] for r in everything] == seen  # pages are slices of the one ranking
