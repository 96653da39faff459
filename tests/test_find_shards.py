"""The sharded search index against someone who can write the vault directory: swapped, replayed and forged shards [R-1.3.4]."""

from __future__ import annotations

import json
import shutil

import pytest

from backup_helpers import actor
from vault.archive import searchindex, searchseal, searchwrite
from vault.archive.manifests import load_manifest, resolve
from vault.archive.vault import Vault
from vault.crypto import age
from vault.store import index, searchdb
from vault.store.searchdb import pack
from vault.store.searchshards import PAD


@pytest.fixture
def office(office):
    office.first = office.create(name="Zebulon Quartzmeyer Holdings", contact="+86 10 5555 0001")
    office.run("find", "zebulon", who="bob")  # builds the index
    return office


def _shards(o, kind="g"):
    return sorted((o.vault_dir / "index" / "search" / kind).glob("*.age"))


def _check(o, *args) -> dict:
    res = o.run("check", *args, "--json", who="alice", ok=False)
    assert res.exit_code == 1, res.output
    return json.loads(res.stdout)


def _found(o, query) -> list[str]:
    res = o.run("find", query, "--json", who="bob", ok=False)
    return [r["number"] for r in json.loads(res.stdout)] if res.exit_code == 0 else []


def test_every_shard_exists_from_the_start_and_is_padded(office):
    # A holder of the directory sees the same files whatever the vault holds: every gram and dossier
    # shard, each padded, so which shards hold anything — and how much, below a page — is not shown.
    g, d = _shards(office, "g"), _shards(office, "d")
    assert len(g) == searchdb.GRAM_SHARDS and len(d) == searchdb.DOSSIER_SHARDS
    assert len({p.stat().st_size for p in g + d}) == 1  # one dossier: every shard is one padded page
    ident = age.parse_identity(searchseal.identity_text(
        index.read_index_key(office.vault_dir, actor(office).read_identities())))
    assert all(len(age.decrypt_bytes(p.read_bytes(), [ident])) % PAD == 0 for p in g[:5] + d[:5])


def test_a_shard_swapped_for_another_is_refused(office):
    files = _shards(office, "g")
    data = [p.read_bytes() for p in files]
    for p, other in zip(files, data[1:] + data[:1]):  # every gram shard now holds its neighbour's file
        p.write_bytes(other)
    res = office.run("find", "zebulon", who="bob", ok=False)
    # Shards are history records: other bytes are refused before the head's per-shard hash is checked.
    assert res.exit_code == 1 and "not the file the history names" in res.stderr
    assert "vault index rebuild" in res.stderr


def test_a_shard_replayed_from_before_a_merge_is_refused(office, monkeypatch):
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", 1)
    before = {p.name.split(".")[0]: p.read_bytes() for p in _shards(office, "g")}
    office.create(name="Newcomer Trading")
    assert _found(office, "newcomer")  # the delta made a merge due: the shards it touched were rewritten
    changed = [p for p in _shards(office, "g") if p.read_bytes() != before[p.name.split(".")[0]]]
    assert changed and len(changed) < searchdb.GRAM_SHARDS  # only the shards of its n-grams
    for p in changed:  # the older, validly sealed and once-named version put back under the new name
        p.write_bytes(before[p.name.split(".")[0]])
    res = office.run("find", "newcomer", who="bob", ok=False)
    assert res.exit_code == 1 and "not the file the history names" in res.stderr


def test_the_whole_index_rolled_back_is_refused_and_rebuilt(office, monkeypatch):
    # Head and shards put back together from an older copy are consistent and well signed; the
    # history is what tells: it names the newer head, so the old one is refused and check names it.
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", 1)
    old = office.vault_dir.parent / "old-index"
    shutil.copytree(office.vault_dir / "index" / "search", old)
    newcomer = office.create(name="Newcomer Trading")
    assert _found(office, "newcomer") == [newcomer]
    shutil.rmtree(office.vault_dir / "index" / "search")
    shutil.copytree(old, office.vault_dir / "index" / "search")
    res = office.run("find", "newcomer", who="bob", ok=False)
    assert res.exit_code == 1 and "index/search/head.age" in res.stderr and "not the file the history names" in res.stderr
    assert not json.loads(office.run("check", "--json", ok=False).stdout)["ok"]
    office.run("index", "rebuild", who="bob")
    assert _found(office, "newcomer") == [newcomer]


def test_a_head_anyone_could_encrypt_is_not_trusted(office):
    v = Vault.open(office.vault_dir)
    rcpt = searchseal.read_recipient(v)
    # The recipient is public: a head naming shards of the writer's choosing, encrypted to it, but
    # not signed by a member of the archive department.
    forged = pack({"kind": "head", "format": 1, "by": "bob", "at": "2026-01-01T00:00:00Z", "through": 0,
                   "grams": 1, "dossier_shards": 1, "dossiers": 0, "bucket": "00" * 32, "body_sha256": "x",
                   "signature": {"by": "bob", "ed25519": "AAAA"}}, b"{}")
    (office.vault_dir / "index" / "search" / "head.age").write_bytes(age.encrypt_bytes(forged, [rcpt]))
    res = office.run("find", "zebulon", who="bob", ok=False)
    assert res.exit_code == 1 and "index/search/head.age" in res.stderr and "not the file the history names" in res.stderr


def test_a_leftover_shard_is_ignored_by_readers_and_swept_by_the_next_write(office, monkeypatch):
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", 1)
    stray = office.vault_dir / "index" / "search" / "g" / "0001.deadbeef.age"
    stray.write_bytes(b"left by an interrupted merge")
    assert _found(office, "zebulon") == [office.first]
    office.create(name="Another Customer")
    assert _found(office, "another")  # merged: the head moved, and what it does not name is gone
    assert not stray.exists()


def test_destruction_removes_the_dossiers_postings_from_every_shard(office):
    keep = office.create(name="Keeper Customer Ltd")
    v = Vault.open(office.vault_dir)
    gone = resolve(v, office.first)
    no = office.json("destroy", "request", office.first, "--reason", "erasure", who="alice")["number"]
    office.add_member("sam", "supervisor", dept="archive")
    office.run("destroy", "approve", no, "--override-retention", "customer asked", who="sam")
    office.run("destroy", "execute", no, who="alice")
    idx = searchindex.open_index(actor(office))
    idx.db.load_all()
    slots = {p >> 40 for shard in idx.db.g.values() for k in shard.keys() for p in shard.get(k)}
    assert gone not in idx.db.ids() and len(slots) == 1  # only the keeper's postings are left
    assert _found(office, "keeper") == [keep] and _found(office, "quartzmeyer") == []


def test_the_format_states_the_shard_constants():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    assert "a new index has `G` = `D` = 256 ✓" in doc and searchdb.GRAM_SHARDS == searchdb.DOSSIER_SHARDS == 256
    assert "to a length that is a multiple of 4096 ✓" in doc and PAD == 4096


def test_check_without_the_key_names_an_index_file_that_is_not_one(office):
    assert office.json("check")["ok"]
    shard = _shards(office, "d")[3]
    shard.write_bytes(b"not an age file at all")
    (office.vault_dir / "index" / "search" / "g" / "notes.txt").write_text("planted")
    rep = _check(office)
    assert not rep["ok"]
    assert any(f"index/search/d/{shard.name}: not an age file" in p for p in rep["problems"])
    assert any("index/search/g/notes.txt: not a file of the search index" in p for p in rep["problems"])


def test_check_with_the_key_holds_the_index_to_the_signed_records(office):
    assert office.json("check", "--read-data", who="alice")["ok"]
    v = Vault.open(office.vault_dir)
    bob = actor(office)
    m = load_manifest(v, resolve(v, office.first))
    with v.lock(exclusive=True):  # signed by the profile's own writer, same version and digest, other values
        searchwrite.add_profile(bob, m, {"name": "Somebody Else Entirely"})
        bob.audit("index.repair", number=m.number)  # the entry that commits the delta
    rep = _check(office, "--read-data")
    assert any(f"the values indexed for {office.first} are not its sealed profile's" in p for p in rep["problems"])
    assert office.json("check")["ok"]  # without the key, nothing shows it
    office.run("index", "rebuild", who="bob")
    assert office.json("check", "--read-data", who="alice")["ok"]
    # An index put back from before a dossier was created: the history has one it does not hold.
    old = office.vault_dir.parent / "old-index"
    shutil.copytree(office.vault_dir / "index" / "search", old)
    later = office.create(name="Later Customer")
    office.run("index", "rebuild", who="bob")
    shutil.rmtree(office.vault_dir / "index" / "search")
    shutil.copytree(old, office.vault_dir / "index" / "search")
    # The history names the newer head and shards: check names the old ones, with or without the key.
    for args in ((), ("--read-data",)):
        rep = _check(office, *args)
        assert any(p.startswith("index/search/head.age") for p in rep["problems"]), rep["problems"]
    office.run("index", "rebuild", who="bob")
    assert office.json("check", "--read-data", who="alice")["ok"]
    assert later
    files = _shards(office, "g")
    files[0].write_bytes(files[1].read_bytes())
    rep = _check(office)  # keyless: the shard is not the file the history names
    assert any(p.startswith(f"index/search/g/{files[0].name}") for p in rep["problems"]), rep["problems"]


def _remove_stopped_before_its_entry(office, who: str) -> None:
    """``member remove`` in a forked child that the crash seam stops just before its history entry:
    the index re-sealed to a new key that was never committed is left behind."""
    import os

    from vault.store import seam

    office.add_member(who, "archivist", dept="archive")
    state_dir = os.environ["VAULT_STATE_DIR"]
    trial = office.vault_dir.parent / "trial"
    shutil.copytree(office.vault_dir, trial / "vault", symlinks=True)
    shutil.copytree(state_dir, trial / "state", symlinks=True)
    trace: list = []
    seam.arm(0, trace=trace)
    office.run("member", "remove", who, who="alice")
    seam.disarm()
    at = next(i for i, (k, _) in enumerate(trace, 1) if k == "append")
    for src, dst in ((trial / "vault", office.vault_dir), (trial / "state", state_dir)):
        shutil.rmtree(dst)
        shutil.copytree(src, dst, symlinks=True)
    pid = os.fork()
    if pid == 0:
        seam.arm(at)
        try:
            office.run("member", "remove", who, who="alice")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == seam.CRASH_EXIT


def test_shards_of_an_interrupted_removal_are_dropped_and_stray_ones_named_and_removed(office):
    """A removal stages the whole index re-sealed to a new key before its entry (the staging journal
    names every file); stopped there, those shards are ``.pending`` files no entry names: ``check``
    notes them, readers never open them, the next writer drops them. A shard file no entry names at
    all (dropped in by hand, or an earlier version's leftover) is named by ``check`` and removed by
    ``vault repair``."""
    before = {p.name for p in _shards(office, "g") + _shards(office, "d")}
    _remove_stopped_before_its_entry(office, "carl")
    staged = sorted((office.vault_dir / "index" / "search").glob("[gd]/*.age.pending"))
    assert len(staged) == searchdb.GRAM_SHARDS + searchdb.DOSSIER_SHARDS
    rep = office.json("check")
    assert rep["ok"] and any("index/search/g/" in n and "stopped before its commit point" in n for n in rep["notes"])
    assert _found(office, "zebulon") == [office.first]
    office.create(name="Next Writer Ltd")  # the next writer drops what the journal names
    assert not any(p.exists() for p in staged)
    assert {p.name for p in _shards(office, "g") + _shards(office, "d")} == before
    assert office.json("check")["ok"]
    stray = office.vault_dir / "index" / "search" / "d" / "0007.0badc0de.age"
    stray.write_bytes(_shards(office, "d")[7].read_bytes())
    rep = _check(office)
    assert any(f"index/search/d/{stray.name}: no history entry names" in p for p in rep["problems"]), rep["problems"]
    out = office.json("repair", who="bob")
    assert out["index_files_removed"] == [f"index/search/d/{stray.name}"] and not stray.exists()
    assert office.json("check", "--read-data", who="alice")["ok"]
    office.run("member", "remove", "carl", who="alice")  # the removal, run again, goes through
    assert _found(office, "zebulon") == [office.first]
    assert office.json("check", "--read-data", who="alice")["ok"]


def _totals(o, *query) -> tuple[int, list[str]]:
    rows = json.loads(o.run("find", *query, "--limit", "500", "--json", who="bob").stdout)
    assert len({r["total"] for r in rows}) == 1
    return rows[0]["total"], [r["number"] for r in rows]


def _paged(o, query, limit: int) -> list[str]:
    seen: list[str] = []
    while True:
        res = o.run("find", query, "--limit", str(limit), "--offset", str(len(seen)), "--json", who="bob", ok=False)
        if res.exit_code != 0:
            return seen
        seen += [r["number"] for r in json.loads(res.stdout)]


def test_an_index_an_earlier_version_wrote_is_read_in_order_and_rewritten_by_the_next_write(office, monkeypatch):
    """Postings kept in the order they were added and a head without ``sorted`` (an earlier
    version's index): every query answers as from an index in order, ``check`` passes, and the next
    write of the shards (a merge) rewrites every shard in order, once."""
    from vault.store import searchshards

    made = [office.create(name=f"上海云帆{i:02d}有限公司", contact=f"+86 21 5555 {i:04d}") for i in range(12)]
    made.append(office.create(name="有限公司上海代表处"))
    queries = ("有限公司", "上海", "5555", "云帆03", "zebulon")
    want = {q: _totals(office, q) for q in queries}
    assert want["有限公司"] == (13, [made[-1], *made[:-1]])
    # The earlier version's writer: postings in the order added (here: reversed), no ``sorted``.
    body, head = searchshards.GramShard.body, searchwrite._head_sealed

    def unordered(self):
        for k in list(self.keys()):
            self._arrays[k] = self.get(k)[::-1]
        return body(self)

    def old_head(actor, idx, rcpt, files, through):
        seal = searchwrite.seal
        monkeypatch.setattr(searchwrite, "seal", lambda a, r, h, b: seal(a, r, {k: x for k, x in h.items()
                                                                           if k != "sorted"}, b))
        try:
            return head(actor, idx, rcpt, files, through)
        finally:
            monkeypatch.setattr(searchwrite, "seal", seal)
    with monkeypatch.context() as m:
        m.setattr(searchshards.GramShard, "body", unordered)
        m.setattr(searchwrite, "_head_sealed", old_head)
        office.run("index", "rebuild", who="bob")
    idx = searchindex.open_index(actor(office))
    assert not idx.db.ordered
    idx.db.load_all()
    assert any(not s.stored_in_order(k) for s in idx.db.g.values() for k in s.keys())
    assert {q: _totals(office, q) for q in queries} == want
    assert _paged(office, "有限公司", 5) == want["有限公司"][1]
    assert office.json("check", "--read-data", who="alice")["ok"]
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", 1)
    old = {p.name for p in _shards(office, "g")}
    made.append(office.create(name="杭州新来有限公司"))
    assert _totals(office, "新来") == (1, [made[-1]])  # the merge: every shard rewritten, in order
    assert not old & {p.name for p in _shards(office, "g")}
    idx = searchindex.open_index(actor(office))
    idx.db.load_all()
    assert idx.db.ordered and all(s.stored_in_order(k) for s in idx.db.g.values() for k in s.keys())
    assert _totals(office, "有限公司") == (14, [made[-2], *made[:-2], made[-1]])
    assert office.json("check", "--read-data", who="alice")["ok"]
    old = {p.name for p in _shards(office, "g")}
    office.create(name="Only Some Shards Ltd")
    _totals(office, "shards")  # the next merge writes only the shards it touches again
    assert 0 < len(old - {p.name for p in _shards(office, "g")}) < searchdb.GRAM_SHARDS


@pytest.mark.parametrize("merge_after", [1, 64])
def test_totals_and_pages_stay_right_through_every_write_of_the_index(office, monkeypatch, merge_after):
    """A word many customers share, after creates, a profile change, a destruction and a member
    removal (which re-seals the index to a new key and re-spreads it): the total is the number of
    dossiers holding it, and pages of any size are slices of the one order — with the changes still
    in deltas (merge after 64) and merged at once (after 1)."""
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", merge_after)
    made = [office.create(name=f"杭州云帆{i:02d}有限公司") for i in range(8)]
    office.create(name="Plain Trading")
    assert _totals(office, "有限公司") == (8, made)
    made.append(office.create(name="有限公司杭州代表处"))  # starts with the word: ranks first
    assert _totals(office, "有限公司") == (9, [made[-1], *made[:-1]])
    office.run("dossier", "update", made[3], "--name", "杭州云帆 Trading", who="bob")  # no longer holds it
    assert _totals(office, "有限公司") == (8, [made[-1], *made[:3], *made[4:-1]])
    assert _totals(office, "云帆") == (8, made[:-1])
    office.add_member("sam", "supervisor", dept="archive")
    no = office.json("destroy", "request", made[5], "--reason", "erasure", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "customer asked", who="sam")
    office.run("destroy", "execute", no, who="alice")
    after = [made[-1], *made[:3], made[4], *made[6:-1]]
    assert _totals(office, "有限公司") == (7, after)
    key = (office.vault_dir / "keys" / "_index.age").read_bytes()
    office.run("member", "remove", "sam", who="alice")
    assert (office.vault_dir / "keys" / "_index.age").read_bytes() != key  # re-keyed
    assert _totals(office, "有限公司") == (7, after)
    assert _totals(office, "--name", "有限公司") == (7, after)
    for limit in (1, 2, 3, 7):
        assert _paged(office, "有限公司", limit) == after
    assert office.json("check", "--read-data", who="alice")["ok"]


def test_check_names_postings_out_of_the_order_the_head_states(office, monkeypatch):
    from vault.store import searchshards

    office.create(name="Zebulon Second Holdings")
    body = searchshards.GramShard.body

    def unordered(self):
        for k in list(self.keys()):
            self._arrays[k] = self.get(k)[::-1]
        return body(self)
    with monkeypatch.context() as m:
        m.setattr(searchshards.GramShard, "body", unordered)
        office.run("index", "rebuild", who="bob")  # (a writer that says ``sorted`` and did not sort)
    rep = _check(office, "--read-data")
    assert any("are not in ascending order, as the head says" in p for p in rep["problems"]), rep["problems"]
    office.run("index", "rebuild", who="bob")
    assert office.json("check", "--read-data", who="alice")["ok"]


def test_what_an_earlier_version_left_beside_the_head_is_noted_never_read_and_removed_by_repair(office):
    """``head.next.age`` and ``base.next.age``: an earlier version's index write staged them there.
    No reader opens them (one holding a head of its own changes no answer), ``check`` notes each —
    with or without the key, the vault still checks — and ``vault repair`` removes them."""
    top = office.vault_dir / "index" / "search"
    (top / "head.next.age").write_bytes((top / "head.age").read_bytes())
    (top / "base.next.age").write_bytes(b"not even an age file")
    assert _found(office, "zebulon") == [office.first]
    for args in ((), ("--read-data",)):
        rep = office.json("check", *args, who="alice")
        assert rep["ok"], rep["problems"]
        assert [n for n in rep["notes"] if ".next.age" in n] == [
            f"index/search/{n}: left by an earlier version's index write (never read; 'vault repair' removes it)"
            for n in ("base.next.age", "head.next.age")]
    out = office.json("repair", who="bob")
    assert out["index_files_removed"] == ["index/search/head.next.age", "index/search/base.next.age"]
    assert not (top / "head.next.age").exists() and not (top / "base.next.age").exists()
    rep = office.json("check", "--read-data", who="alice")
    assert rep["ok"] and not [n for n in rep["notes"] if ".next.age" in n]
    assert _found(office, "zebulon") == [office.first]
