"""A one-word query worked at C speed gives what the posting-at-a-time code gives, and shards keep postings in order [R-1.3.4].

``searchlanes`` does a one-word query's per-posting work as arithmetic over every posting at once
(lanes of one integer, byte columns); here each of its steps is held, over random postings — slots
at both ends of their range, positions 0 and the largest, contacts ending with the word, several
occurrences per dossier — to the plain definition one posting at a time (``searchrank`` and the
alignment of ``searchdb``). The gram shards keep every key's postings in ascending order through
any sequence of adds, removals and rewrites, and a shard written before that order was kept is read
in order. After any sequence of creates, profile changes, destructions and merges, a broad query's
total is the number of dossiers whose values hold the word, counted from the values themselves.
"""

from __future__ import annotations

import random
from array import array

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_find_ranking import _profile, reference
from vault.store import searchlanes, searchrank
from vault.store.searchdb import SearchDB, _aligned, entries
from vault.store.searchshards import MAX_LEN, MAX_POS, GramShard, encode

SLOTS = st.one_of(st.integers(0, 3), st.integers((1 << 24) - 4, (1 << 24) - 1), st.integers(0, (1 << 24) - 1))
POSTING = st.builds(encode, SLOTS, st.integers(0, 31), st.integers(0, 5), st.booleans(),
                    st.one_of(st.integers(0, 3), st.integers(0, MAX_POS), st.just(MAX_POS)),
                    st.one_of(st.integers(0, 12), st.integers(0, MAX_LEN)))
POSTINGS = st.lists(POSTING, max_size=200).map(lambda ps: array("Q", sorted(set(ps))))
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decoded(lanes: bytes, keys: bytes) -> list[tuple[int, int]]:
    return [(searchlanes.slot_at(lanes, j), k) for j, k in enumerate(keys) if k != 255]


@FAST
@given(POSTINGS, st.one_of(st.integers(2, 12), st.integers(2, MAX_POS)))
def test_each_dossiers_best_rank_is_the_one_posting_at_a_time_ranking(posts, lw):
    lanes, keys, count = searchlanes.best_single(posts, lw)
    plain = searchrank.best_per_slot([list(posts)], None, ["x" * lw], "x" * lw)
    assert _decoded(lanes, keys) == sorted(plain.items()) and count == len(plain)
    assert len(keys) == len(posts)


@FAST
@given(POSTINGS, st.lists(st.tuples(POSTINGS, st.integers(1, 7)), min_size=1, max_size=3), st.data())
def test_a_word_starts_where_every_trigram_follows_at_its_offset(first, others, data):
    # Postings of the other trigrams made from the first's, moved by their offset, so that some align.
    others = [(array("Q", sorted(set(a) | {p + (i << 16) for p in first if (p >> 16) & MAX_POS <= MAX_POS - i
                                          and data.draw(st.booleans())})), i) for a, i in others]
    want = _aligned(list(first), [(list(a), i) for a, i in others])
    assert list(searchlanes.aligned(first, others)) == want


@FAST
@given(POSTINGS, st.sets(st.integers(0, 5)), st.sets(SLOTS, max_size=5))
def test_fields_slots_and_removals(posts, fields, gone):
    assert list(searchlanes.in_fields(posts, fields)) == [p for p in posts if p >> 32 & 7 in fields]
    gone |= {p >> 40 for p in posts[:2]}
    assert searchlanes.slots_of(posts) == {p >> 40 for p in posts}
    assert list(searchlanes.in_slots(posts, gone)) == [p for p in posts if p >> 40 in gone]
    assert list(searchlanes.without_slots(posts, gone)) == [p for p in posts if p >> 40 not in gone]
    want: dict[int, set[int]] = {}
    for p in posts:
        if p >> 40 in gone:
            want.setdefault(p >> 40, set()).add(p >> 32 & 7)
    assert searchlanes.fields_of(posts, gone) == want


@FAST
@given(st.lists(st.tuples(st.sampled_from(["add", "drop", "rewrite"]), st.sampled_from(["ab", "abc", "有限"]), POSTING),
                max_size=60), st.randoms(use_true_random=False))
def test_a_gram_shard_keeps_every_keys_postings_in_order(ops, rnd):
    shard, model = GramShard(), {"ab": set(), "abc": set(), "有限": set()}
    for op, key, p in ops:
        if op == "add" and p not in model[key]:
            shard.add(key, p)
            model[key].add(p)
        elif op == "drop":
            shard.drop_slot(key, p >> 40)
            model[key] = {q for q in model[key] if q >> 40 != p >> 40}
        elif op == "rewrite":
            shard = GramShard(shard.body())
            assert all(shard.stored_in_order(k) for k in model)
        assert list(shard.get(key)) == sorted(model[key])
    # A shard an earlier version wrote: the same postings in any order, read in order and written in order.
    old = GramShard()
    for k, ps in model.items():
        for p in rnd.sample(sorted(ps), len(ps)):
            old._arrays.setdefault(k, array("Q")).append(p)
    again = GramShard(old.body(), ordered=False)
    assert all(list(again.get(k)) == sorted(ps) for k, ps in model.items())
    rewritten = GramShard(again.body())
    assert all(rewritten.stored_in_order(k) and list(rewritten.get(k)) == sorted(ps) for k, ps in model.items())


def _reload(db: SearchDB) -> SearchDB:
    """The index as a merge leaves it: the deltas folded in, every shard written and read back."""
    db.materialize()
    db.load_all()
    bodies = {("g", n): s.body() for n, s in db.g.items()} | {("d", n): s.body() for n, s in db.d.items()}
    return SearchDB(lambda kind, n: bodies.get((kind, n)), bucket_key=db.bucket_key, grams=db.n_grams,
                    dossiers=db.n_dossiers)


def _holding(db: SearchDB, profiles: dict[str, dict], word: str) -> int:
    """How many dossiers hold ``word`` in a value, from the values themselves (not from postings)."""
    return sum(1 for d, p in profiles.items() if any(word in v for _, v in entries(db.info(d)["number"], p)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["create", "change", "destroy", "delta", "merge"]), st.integers(0, 10**6)),
                min_size=1, max_size=40))
def test_a_broad_querys_total_is_the_count_of_dossiers_holding_it(ops):
    db = SearchDB(bucket_key=b"b" * 32, grams=5, dossiers=3)
    profiles: dict[str, dict] = {}
    made = 0
    for op, r in ops:
        rnd = random.Random(r)
        if op == "create" or not profiles:
            d = f"d{made:04d}"
            made += 1
            profiles[d] = _profile(rnd, made)
            db.put(d, number=f"E-2026-{made:06d}", version=1, sealed_sha256="0" * 64, by="bob", profile=profiles[d])
        elif op in ("change", "delta"):  # a profile change, in the shards or (until a merge) as a delta
            d = rnd.choice(sorted(profiles))
            profiles[d] = _profile(rnd, r)
            number = db.info(d)["number"]
            put = db.put if op == "change" else db.overlay_put
            if op == "change":
                db.materialize()
            put(d, number=number, version=2, sealed_sha256="1" * 64, by="bob", profile=profiles[d])
        elif op == "destroy":
            db.materialize()
            d = rnd.choice(sorted(profiles))
            db.remove(d)
            del profiles[d]
        else:
            db = _reload(db)
        for word in ("有限公司", "wang", "example", "86571"):
            total, page = db.search_page(word, None, 20)
            assert total == _holding(db, profiles, word), (word, ops)
            assert (total, [(h.dossier, h.number, h.field, h.fields, h.score) for h in page]) == \
                reference(db, word, None, 20)
