"""The sealed search index against its attackers: the directory's holder, a tamperer, a liaison, a backup's owner."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from backup_helpers import actor
from office import MARKERS, PASSPHRASE, SAM, make_office
from vault import backup
from vault.archive import searchindex, searchseal, searchwrite
from vault.store import identity, index
from vault.backup.repo import KEYS, Repo
from vault.crypto import age
from vault.archive.manifests import load_manifest, resolve
from vault.errors import NoIdentityMatchError
from vault.store import searchdb
from vault.store.searchdb import pack, unpack
from vault.archive.vault import Vault


pytestmark = pytest.mark.office(SAM, ("lia", "liaison", "sales"), ("head", "dept-head", "sales"),
                                dossier={"name": MARKERS["name"], "contact": MARKERS["contact"],
                                         "legal_rep": MARKERS["legal_rep"]})


def _index_listing(root) -> list[tuple[str, int]]:
    """Index files and sizes; a shard's generation (random, in its name) is left out."""
    base = root / "index"
    return sorted((re.sub(r"\.[0-9a-f]{8}\.age$", ".age", str(p.relative_to(base))), p.stat().st_size)
                  for p in base.rglob("*") if p.is_file())


def test_the_directory_does_not_show_which_dossiers_share_a_name(tmp_path, monkeypatch):
    # Two vaults: one where two customers share a name and a contact, one where they share neither
    # (values of the same lengths). Index files must not tell the two apart: same names, same sizes.
    listings = []
    for case, names in (("same", ["Li Na Trading", "Li Na Trading"]), ("diff", ["Li Na Trading", "Wu Ke Holding"])):
        o = make_office(tmp_path / case, monkeypatch)
        o.create(name="Seed Customer")
        o.run("find", "seed", who="bob")  # the index exists before the two are added
        for i, n in enumerate(names):
            o.create(name=n, contact="+86 10 5555 0001" if case == "same" else f"+86 10 5555 000{i}")
        listings.append(_index_listing(o.vault_dir))
        assert not (o.vault_dir / "index" / "blind").exists()
    assert listings[0] == listings[1]
    assert [n for n, _ in listings[0] if n.startswith("search/delta/")] == \
        ["search/delta/0000000001.age", "search/delta/0000000002.age"]


def test_an_older_vaults_blind_indexes_go_when_the_index_is_built(office):
    blind = office.vault_dir / "index" / "blind" / "ab"
    blind.mkdir(parents=True)
    (blind / "abcdef01").write_text("0123\n")
    office.run("index", "rebuild", who="bob")
    assert not (office.vault_dir / "index" / "blind").exists()
    assert json.loads(office.run("find", "quartzmeyer", "--json", who="bob").stdout)[0]["number"] == office.number


def test_a_tampered_index_file_is_named_and_rebuilt_from_the_sealed_profiles(office):
    office.run("find", "zebulon", who="bob")
    head = office.vault_dir / "index" / "search" / "head.age"
    saved = head.read_bytes()
    data = bytearray(saved)
    data[-40] ^= 1
    head.write_bytes(bytes(data))
    res = office.run("find", "zebulon", who="bob", ok=False)
    assert res.exit_code == 1 and "index/search/head.age: damaged or tampered with" in res.stderr
    assert "vault index rebuild" in res.stderr
    head.write_bytes(saved)
    # A shard: which one a query opens depends on the secret spread of n-grams, so damage them all.
    for p in (office.vault_dir / "index" / "search" / "g").glob("*.age"):
        data = bytearray(p.read_bytes())
        data[-40] ^= 1
        p.write_bytes(bytes(data))
    res = office.run("find", "zebulon", who="bob", ok=False)
    # Shards are history records: bytes the history does not name are refused before the head's hash.
    assert res.exit_code == 1 and "index/search/g/" in res.stderr and "not the file the history names" in res.stderr
    assert office.json("index", "rebuild", who="bob") == {"dossiers": 1}
    assert office.run("find", "zebulon", who="bob").exit_code == 0


def test_a_delta_anyone_could_encrypt_is_not_trusted(office):
    office.run("find", "zebulon", who="bob")
    v = Vault.open(office.vault_dir)
    rcpt = searchseal.read_recipient(v)
    # The recipient is public: someone who can write the directory encrypts a delta to it, claiming
    # the dossier is called "Forged Name" — but cannot sign it as a member.
    body = json.dumps({"put": [{"dossier": resolve(v, office.number), "number": office.number, "version": 1,
                                "sealed_sha256": "0" * 64, "profile": {"name": "Forged Name"}}]}).encode()
    forged = pack({"kind": "delta", "seq": 2, "format": 1, "by": "bob", "at": "2026-01-01T00:00:00Z",
                   "body_sha256": "x", "signature": {"by": "bob", "ed25519": "AAAA"}}, body)
    d = office.vault_dir / "index" / "search" / "delta"
    d.mkdir(exist_ok=True)
    (d / "0000000002.age").write_bytes(age.encrypt_bytes(forged, [rcpt]))
    # No history entry names it: the reader never opens it, and 'vault check' names it.
    res = office.run("find", "forged", who="bob", ok=False)
    assert res.exit_code == 1 and "Forged" not in res.stdout
    assert office.run("find", "zebulon", who="bob").exit_code == 0
    problems = json.loads(office.run("check", "--json", ok=False).stdout)["problems"]
    assert problems == ["index/search/delta/0000000002.age: no history entry names this record (it counts for nothing)"]


def test_a_liaisons_lying_delta_is_confirmed_against_the_signed_manifest(office):
    office.run("find", "zebulon", who="bob")
    v = Vault.open(office.vault_dir)
    lia = actor(office, "lia")
    m = load_manifest(v, resolve(v, office.number))
    with v.lock(exclusive=True):  # a valid delta, signed by a member who may write deltas, but false
        assert searchwrite.add_profile(lia, m, {"name": "Forged Name"})
        lia.commit("dossier.update", {}, obj=m.id, number=m.number)  # committed by an entry of hers
    res = office.run("find", "forged", who="bob", ok=False)
    assert res.exit_code == 1  # the manifest's newest profile is bob's: the row is re-indexed, not shown
    assert office.run("find", "zebulon", who="bob").exit_code == 0
    assert any(e["action"] == "index.repair" for e in office.json("audit", "log", who="alice"))


def test_a_recipient_record_not_signed_by_the_archive_stops_a_write_before_it_commits(office):
    office.run("find", "zebulon", who="bob")
    v = Vault.open(office.vault_dir)
    lia = actor(office, "lia")
    mine = age.generate_identity()
    rec = lia.sign({"format": 1, "recipient": age.recipient_of(mine), "at": "2026-01-01T00:00:00Z", "by": "lia"})
    from vault.store import records

    records.write_toml(office.vault_dir / "index" / "search" / "recipient.toml", rec)  # put in place by hand
    req = office.json("request", "access", office.number, "--purpose", "fix", who="lia")["number"]
    office.run("request", "approve", req, who="head")
    office.run("grant", req, who="bob")
    before = load_manifest(v, resolve(v, office.number)).revision
    res = office.run("dossier", "update", office.number, "--address", "Somewhere New", who="lia", ok=False)
    assert res.exit_code == 1 and "index/search/recipient.toml: does not match history entry" in res.stderr
    assert load_manifest(v, resolve(v, office.number)).revision == before
    assert not list((office.vault_dir / "index" / "search").rglob("0000000002.age"))


def _markers_absent(root) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for m in MARKERS.values():
                assert m.encode() not in data and m.lower().encode() not in data, (m, p)


def test_destruction_removes_the_dossier_from_the_index_and_from_backups(office, tmp_path):
    keep = office.create(name="Keeper Customer Ltd")
    office.run("find", "zebulon", who="bob")
    office.run("dossier", "update", office.number, "--address", MARKERS["address"], who="bob")  # a delta
    url = f"file://{tmp_path / 'offsite'}"
    office.run("backup", "run", url)
    before_dir = tmp_path / "index-before"
    shutil.copytree(office.vault_dir / "index" / "search", before_dir)
    old_key = (office.vault_dir / "keys" / "_index.age").read_bytes()

    no = office.json("destroy", "request", office.number, "--reason", "erasure", who="alice")["number"]
    office.run("destroy", "approve", no, "--override-retention", "customer asked", who="sam")
    cert = office.json("destroy", "execute", no, who="alice")
    assert (office.vault_dir / "keys" / "_index.age").read_bytes() != old_key  # rotated
    (rep,) = cert["backup_targets"]
    assert rep["reached"] and any("_index.age" in n for n in rep["removed"]) and \
        any("_index.age" in n for n in rep["remirrored"])

    assert office.run("find", "zebulon", who="bob", ok=False).exit_code == 1
    assert json.loads(office.run("find", "keeper", "--json", who="bob").stdout)[0]["number"] == keep
    assert not list((office.vault_dir / "index" / "search").glob("delta/*.age"))
    # The current index, opened with the current key, holds nothing of the destroyed dossier.
    v = Vault.open(office.vault_dir)
    bob = actor(office)
    key = index.read_index_key(v.root, bob.read_identities())
    ident = age.parse_identity(searchseal.identity_text(key))
    shards = list((v.root / "index" / "search").rglob("*.age"))
    assert len(shards) == 1 + searchdb.GRAM_SHARDS + searchdb.DOSSIER_SHARDS  # the head and every shard
    for p in shards:
        _, plain = unpack(age.decrypt_bytes(p.read_bytes(), [ident]))
        for m in (MARKERS["name"], MARKERS["contact"], MARKERS["address"]):
            assert m.lower().encode() not in plain and m.encode() not in plain, p
    assert len(searchindex.open_index(bob).db) == 1
    # Index files from before (in the vault directory then, in every snapshot since) open with no
    # key that exists now: not the current one, not any generation left on the backup target.
    keys = [key]
    repo = Repo(url)
    for name in repo.list(KEYS):
        if "_index.age" in name:
            keys.append(age.decrypt_bytes(repo.get(name), bob.read_identities()))
    assert len(keys) == 2 and keys[1] == key
    old_files = list(before_dir.rglob("*.age"))
    assert len(old_files) == 2 + searchdb.GRAM_SHARDS + searchdb.DOSSIER_SHARDS  # head, shards, the delta
    for k in keys:
        for p in old_files:
            with pytest.raises(NoIdentityMatchError):
                age.decrypt_bytes(p.read_bytes(), [age.parse_identity(searchseal.identity_text(k))])
    _markers_absent(office.vault_dir)
    _markers_absent(tmp_path / "offsite")
    backup.run(v, url)
    _markers_absent(tmp_path / "offsite")
    assert office.json("check", "--read-data", who="alice")["ok"] and office.json("audit", "verify")["ok"]


def test_deltas_are_padded_and_merged(office, monkeypatch):
    monkeypatch.setattr(searchwrite, "MERGE_AFTER", 3)
    office.run("find", "zebulon", who="bob")
    d = office.vault_dir / "index" / "search" / "delta"
    office.create(name="A")
    office.create(name="B" * 900)
    sizes = sorted(p.stat().st_size for p in d.glob("*.age"))
    assert len(sizes) == 2 and sizes[0] == sizes[1] - 1024 or sizes[0] == sizes[1]
    office.create(name="C")
    assert len(list(d.glob("*.age"))) == 3
    office.run("find", "zebulon", who="bob")  # the third delta makes a merge due
    assert not list(d.glob("*.age"))
    assert office.run("find", "bbbb", who="bob").exit_code == 0


def test_identity_from_the_index_key_is_not_a_members(office):
    v = Vault.open(office.vault_dir)
    key = index.read_index_key(v.root, actor(office).read_identities())
    ident = age.parse_identity(searchseal.identity_text(key))
    for who in ("alice", "bob", "lia"):
        mine = identity.load_identity(office.ident(who), PASSPHRASE).age_identity()
        assert str(ident.recipient()) != str(mine.recipient())  # type: ignore[attr-defined]


@pytest.mark.parametrize("stop_at", ["stage_key", "write_recipient", "commit"])
def test_an_interrupted_rotation_leaves_the_index_as_it_was(office, monkeypatch, stop_at):
    """The new shards, head, key and recipient are staged and committed by one entry: an interruption
    anywhere before it leaves the old index in force, whole (and 'vault check' clean)."""
    office.run("find", "zebulon", who="bob")
    office.create(name="Keeper Customer Ltd")
    v = Vault.open(office.vault_dir)
    alice = actor(office, "alice")
    target = searchwrite if stop_at != "commit" else type(alice)
    real = getattr(target, stop_at)

    def crash(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, stop_at, crash)
    with pytest.raises(KeyboardInterrupt), v.lock(exclusive=True):
        searchwrite.forget(alice, resolve(v, office.number))
        alice.commit("destroy.step", {})  # where the destruction's step would commit it
    monkeypatch.setattr(target, stop_at, real)
    assert office.run("find", "zebulon", who="bob").exit_code == 0
    assert office.run("find", "keeper", who="bob").exit_code == 0
    assert office.json("check")["ok"]


def test_a_former_archivist_opens_no_index_file_written_after_their_removal(office):
    office.add_member("carl", "archivist", dept="archive")
    office.run("find", "zebulon", who="carl")
    v = Vault.open(office.vault_dir)
    kept = index.read_index_key(v.root, actor(office, "carl").read_identities())  # what carl could copy
    spread = searchindex.open_index(actor(office, "carl")).db.bucket_key  # which shard holds which n-gram
    office.run("member", "remove", "carl", who="alice")
    office.create(name="After Removal Customer")  # a delta
    office.run("dossier", "update", office.number, "--address", "New Address", who="bob")
    files = list((office.vault_dir / "index" / "search").rglob("*.age"))
    assert len(files) >= 3
    old = age.parse_identity(searchseal.identity_text(kept))
    for p in files:
        with pytest.raises(NoIdentityMatchError):
            age.decrypt_bytes(p.read_bytes(), [old])
    assert json.loads(office.run("find", "after removal", "--json", who="bob").stdout)[0]["rank"] == 1
    assert office.run("find", "zebulon", who="bob").exit_code == 0
    assert searchindex.open_index(actor(office)).db.bucket_key != spread  # re-spread: carl's knowledge is void


def test_a_removal_interrupted_before_its_entry_leaves_search_working(office):
    """Killed after the index key rotated but before the removal's entry: the rings the new key was
    written to are dropped with the uncommitted removal, and search still works for who remains."""
    office.add_member("carl", "archivist", dept="archive")
    office.run("find", "zebulon", who="bob")
    from vault.office import membership

    class Killed(BaseException):
        pass

    alice = actor(office, "alice")

    def die(*a, **kw):
        raise Killed  # the process dies at the commit point, before the entry is appended

    alice.commit = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        membership.remove_member(alice, "carl")
    office.create(name="After The Crash Ltd")  # the next writer recovers the interrupted commit
    assert json.loads(office.run("find", "zebulon", "--json", who="bob").stdout)
    assert json.loads(office.run("find", "after the crash", "--json", who="bob").stdout)
    office.run("member", "remove", "carl", who="alice")  # and the removal, run again, completes
    assert json.loads(office.run("find", "zebulon", "--json", who="bob").stdout)
