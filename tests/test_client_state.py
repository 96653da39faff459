"""The client's remembered state grows with the vault but is read a key at a time; listing pages [R-3.2]."""

from __future__ import annotations

import json

import pytest

from vault.archive import authority, statestore, witness
from vault.archive.vault import Vault


@pytest.fixture
def office(office):
    office.made = [office.create(name=f"Listing Customer {i}") for i in range(5)]
    return office


def test_a_later_command_reads_only_the_keys_it_asks_for(office):
    office.run("dossier", "list", who="bob")  # this client now remembers the state
    v = Vault.open(office.vault_dir)
    st = authority.state(v)
    assert isinstance(st["files"], statestore.LazyMap) and st["count"] > 5
    number = office.made[2]
    dossier = st["numbers"][number]
    assert st["dossiers"][dossier]["number"] == number
    assert not st["files"]._all and not st["numbers"]._all and len(st["numbers"]._vals) == 1
    assert st["dossiers"].count() == 5 and sorted(st["numbers"]) == sorted(office.made)


def test_a_state_that_does_not_match_its_checkpoint_is_replayed_afresh(office):
    office.run("dossier", "list", who="bob")
    v = Vault.open(office.vault_dir)
    store = witness._store(v)
    store.close()
    import sqlite3

    db = sqlite3.connect(store.path, isolation_level=None)
    db.execute("UPDATE meta SET count = count - 1")  # the database and its own record disagree
    db.execute("DELETE FROM kv WHERE m = 'numbers'")
    db.close()
    assert json.loads(office.run("dossier", "list", "--json", who="bob").stdout)[4]["number"] == sorted(office.made)[4]


def test_the_history_cut_below_what_this_client_verified_is_still_refused(office):
    office.run("dossier", "list", who="bob")
    log = office.vault_dir / "audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-2]))
    res = office.run("dossier", "list", who="bob", ok=False)
    assert res.exit_code == 1 and "history cut or rolled back" in res.stderr


def test_dossier_list_pages_in_number_order(office):
    everyone = sorted(office.made)
    page = json.loads(office.run("dossier", "list", "--limit", "2", "--offset", "2", "--json", who="bob").stdout)
    assert [r["number"] for r in page] == everyone[2:4]
    text = office.run("dossier", "list", "--limit", "2", who="bob").stdout
    assert "1-2 of 5; next page: --offset 2" in text
    assert [r["number"] for r in json.loads(office.run("dossier", "list", "--all", "--json", who="bob").stdout)] == everyone
    bad = office.run("dossier", "list", "--limit", "0", who="bob", ok=False)
    assert bad.exit_code == 1 and "vault: error: --limit must be at least 1" in bad.stderr


def test_a_command_never_reads_a_state_saved_after_the_one_it_loaded(office):
    # This command loads the state, saves its own step, then another command creates a dossier and
    # saves a later state. Replaying the creation on top of keys read from that later state would
    # find the dossier already there and count the entry for nothing.
    from office import PASSPHRASE
    from vault.store import identity

    office.run("dossier", "list", who="bob")
    v = Vault.open(office.vault_dir)
    bob = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    bob.audit("find")  # saved by this command
    later = office.create(name="Created Meanwhile")  # another command, a later saved state
    st = authority.state(v)
    assert st["problems"] == [] and st["numbers"][later] in st["dossiers"]
    assert not st["dossiers"][st["numbers"][later]]["destroyed"]


def _count_rows(v, m: str) -> int:
    import sqlite3

    db = sqlite3.connect(witness._store(v).path, isolation_level=None)
    try:
        return db.execute("SELECT count(*) FROM kv WHERE m = ?", (m,)).fetchone()[0]
    finally:
        db.close()


def test_the_kept_sizes_of_the_maps_equal_their_rows_across_commands(office):
    # Each map's size is kept beside it instead of counted (counting reads the whole map); after
    # creations by other commands and a destruction-free history it must equal the rows.
    office.run("dossier", "list", who="bob")
    for i in range(3):
        office.create(name=f"Later Customer {i}")
        office.run("dossier", "list", who="bob")
    v = Vault.open(office.vault_dir)
    st = authority.state(v)
    for m in statestore.BIG:
        assert isinstance(st[m], statestore.LazyMap)
        assert st[m].count() == _count_rows(v, m) == len(list(st[m]))
    assert st["dossiers"].count() == 8


def test_a_size_left_behind_by_a_writer_that_does_not_keep_it_is_counted_afresh(office):
    # A client program of an earlier version writes the maps and the checkpoint but not the sizes:
    # a size written for another count is not trusted (else the search index could be taken for
    # complete while it lacks a dossier).
    office.run("dossier", "list", who="bob")
    v = Vault.open(office.vault_dir)
    store = witness._store(v)
    store.close()
    import sqlite3

    db = sqlite3.connect(store.path, isolation_level=None)
    db.execute("UPDATE sizes SET n = n + 7")  # wrong, but for the current count
    db.execute("UPDATE sizes SET at = at - 1")  # ... and now for another count: not trusted
    db.close()
    v = Vault.open(office.vault_dir)
    assert authority.state(v)["dossiers"].count() == 5


def test_listing_a_prefix_reads_its_range_not_the_whole_map(tmp_path):
    # A query lists the search index's deltas among every record path of the vault: the stored
    # state answers from an index range, with this command's changes (added, deleted) on top.
    store = statestore.Store(tmp_path / "state.db")
    files = {f"dossiers/{i:04d}/manifest.toml": ["h", 1, "bob"] for i in range(300)}
    files.update({f"index/search/delta/{i:010d}.age": ["h", 1, "bob"] for i in range(1, 6)})
    files.update({"index/search/head.age": ["h", 1, "bob"], "index/search/deltas": ["h", 1, "bob"]})
    assert store.save({"count": 1, "head": "x", "files": files, "dossiers": {}, "numbers": {}})
    store.close()
    st = statestore.Store(tmp_path / "state.db").load()
    assert st is not None
    lazy = st["files"]
    del lazy["index/search/delta/0000000002.age"]
    lazy["index/search/delta/0000000009.age"] = ["h", 2, "bob"]
    got = lazy.keys_with_prefix("index/search/delta/")
    assert not lazy._all  # the whole map was not read
    assert got == [f"index/search/delta/{i:010d}.age" for i in (1, 3, 4, 5, 9)]
    assert got == sorted(k for k in lazy if k.startswith("index/search/delta/"))
    assert lazy.keys_with_prefix("index/search/delta/") == got  # and, the map read whole, the same
