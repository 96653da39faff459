"""``vault check`` remembers, outside the vault, which document files it verified (by file status):
whoever writes the vault directory still cannot get a changed document past it."""

from __future__ import annotations

import json
import os
import stat

import pytest

from vault.archive import witness
from vault.archive.manifests import load_manifest, resolve
from vault.archive.vault import Vault
from vault.office import check as checker
from vault.archive import checkcache
from vault.store import identity

from office import PASSPHRASE, make_office

HASH_PROBLEM = "ciphertext hash does not match the manifest (damaged or tampered with)"


@pytest.fixture
def office(office, tmp_path, monkeypatch):
    """Two dossiers of two documents each. Every status counts as settled (no 2 s wait in tests);
    ``_next_tick`` makes sure a change the test makes lands in a later clock tick than the check."""
    return two_by_two(office, tmp_path, monkeypatch, "cached")


def two_by_two(o, tmp_path, monkeypatch, word: str):
    """``o`` with two dossiers of two documents each, and every file status old enough to remember."""
    monkeypatch.setattr(checkcache, "_RACY_NS", 0)
    o.numbers = [o.create(name=f"{word.title()} Customer {i}") for i in range(2)]
    for k, no in enumerate(o.numbers):
        for i in range(2):
            f = tmp_path / f"{word[0]}{k}-{i}.txt"
            f.write_bytes(f"{word} document {k}/{i}\n".encode() * (500 + 3000 * i))
            o.add_doc(no, f)
    return o


def _docs(o, v) -> list[tuple[str, dict]]:
    """(relative path, manifest entry) of every document."""
    out = []
    for no in o.numbers:
        m = load_manifest(v, resolve(v, no))
        out += [(f"dossiers/{m.id}/documents/{d.id}.age", d) for d in m.documents]
    return out


def _next_tick(path) -> None:
    """Wait until the file system's clock has moved past ``path``'s ctime (a few ms): the attacker's
    change then cannot share a timestamp with what the check saw (the racy case, tested apart)."""
    probe = path.with_name(".tmp-tick-probe")  # removed again at once
    ctime = os.stat(path).st_ctime_ns
    while True:
        probe.write_bytes(b"x")
        if os.stat(probe).st_ctime_ns > ctime:
            probe.unlink()
            return


def _check(o, **kw):
    return checker.check(Vault.open(o.vault_dir), **kw)


def _first_check(o):
    rep = _check(o)
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == 0
    rep = _check(o)  # the second takes every hash from the cache: what the attacks below go against
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == rep.counts["documents"] == 4
    return Vault.open(o.vault_dir)


def test_the_cache_lives_in_the_client_state_0600_in_0700(office):
    v = _first_check(office)
    p = witness.state_dir(v) / checkcache.NAME
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert not str(p.resolve()).startswith(str(office.vault_dir.resolve()))
    d = json.loads(p.read_bytes())
    assert d["vault"] == v.config["id"] and set(d["files"]) == {rel for rel, _ in _docs(office, v)}


def test_a_byte_flipped_with_its_mtime_restored_is_found(office):
    """The attacker writes the vault directory: flips a byte, then puts size and mtime back (utime)."""
    v = _first_check(office)
    rel, d = _docs(office, v)[1]
    path = v.root / rel
    before = os.stat(path)
    _next_tick(path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    with open(path, "r+b") as f:  # in place: same inode
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    rep = _check(office)
    assert [str(p) for p in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]
    assert rep.counts["unchanged"] == 3


def test_a_document_replaced_by_a_copy_with_the_same_size_and_mtime_is_found(office):
    v = _first_check(office)
    rel, d = _docs(office, v)[2]
    path = v.root / rel
    before = os.stat(path)
    _next_tick(path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x80
    forged = path.with_name("forged")
    forged.write_bytes(data)
    os.utime(forged, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(forged, path)
    rep = _check(office)
    assert [str(p) for p in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]


def test_an_identical_copy_is_hashed_again_and_passes(office):
    """A new inode is not the file that was verified: rehashed (and, being the same bytes, clean)."""
    v = _first_check(office)
    rel, _ = _docs(office, v)[0]
    path = v.root / rel
    copy = path.with_name("copy")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)
    rep = _check(office)
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == 3


def test_two_documents_swapped_are_found(office):
    """Renames keep the inodes: each file is now at a path whose manifest hash is another's."""
    v = _first_check(office)
    (rel_a, da), (rel_b, db) = _docs(office, v)[0], _docs(office, v)[3]
    a, b = v.root / rel_a, v.root / rel_b
    tmp = a.with_name("swap")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    rep = _check(office)
    names = sorted(str(p) for p in rep.problems)
    assert any(p.startswith(f"{rel_a} ({da.number}):") for p in names), names
    assert any(p.startswith(f"{rel_b} ({db.number}):") for p in names), names


def test_a_tampered_cache_does_not_hide_a_changed_document(office):
    """The cache edited to claim the manifest's hash for the changed file's old status, and a wrong
    hash for the others: the changed document is named, the others are hashed again, no false alarm."""
    v = _first_check(office)
    docs = _docs(office, v)
    rel, d = docs[1]
    path = v.root / rel
    before = os.stat(path)
    _next_tick(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    p = witness.state_dir(v) / checkcache.NAME
    cache = json.loads(p.read_bytes())
    for other, _ in docs:
        if other != rel:
            cache["files"][other][5] = "0" * 64  # claims another hash: must not be reported, nor trusted
    cache["files"][rel][5] = d.sha256
    p.write_text(json.dumps(cache))
    rep = _check(office)
    assert [str(x) for x in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]
    assert rep.counts["unchanged"] == 0


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"\xff\xfe", b"[]", b'{"format": 1, "files": []}',
                                     b'{"format": 1, "files": {"x": 5}}'])
def test_a_damaged_cache_is_ignored(office, garbage):
    v = _first_check(office)
    (witness.state_dir(v) / checkcache.NAME).write_bytes(garbage)
    rep = _check(office)
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == 0
    assert _check(office).counts["unchanged"] == 4  # rewritten whole by the check that ignored it


def test_a_cache_from_another_vault_is_ignored(office, tmp_path, monkeypatch):
    """Another vault's cache, put in this vault's place and naming this vault's changed file with the
    status it has now and its manifest's hash, is not trusted: the file is hashed and named."""
    v = _first_check(office)
    rel, d = _docs(office, v)[3]
    path = v.root / rel
    _next_tick(path)
    data = bytearray(path.read_bytes())
    data[50] ^= 4
    with open(path, "r+b") as f:
        f.write(data)
    other = make_office(tmp_path / "other", monkeypatch)
    ov = Vault.open(other.vault_dir)
    assert ov.config["id"] != v.config["id"]
    foreign = {"format": checkcache.FORMAT, **checkcache._identity(ov), **{k: {} for k in checkcache.MAPS},
               "files": {rel: [*checkcache.status(os.stat(path)), d.sha256, d.key]}}
    (witness.state_dir(v) / checkcache.NAME).write_text(json.dumps(foreign))
    rep = _check(office)
    assert [str(x) for x in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]
    assert rep.counts["unchanged"] == 0
    # The same claim under this vault's own name but another directory (a copy elsewhere) is not trusted either.
    moved = {**foreign, **checkcache._identity(v), "root": str(tmp_path / "elsewhere")}
    (witness.state_dir(v) / checkcache.NAME).write_text(json.dumps(moved))
    rep = _check(office)
    assert [str(x) for x in rep.problems] == [f"{rel} ({d.number}): {HASH_PROBLEM}"]


def test_read_data_reads_every_byte_whatever_the_cache_says(office):
    v = _first_check(office)
    actor = v.act_as(identity.load_identity(office.ident("bob"), PASSPHRASE))
    rep = checker.check(v, actor=actor)
    assert rep.ok, rep.problems
    assert rep.counts["unchanged"] == 0 and rep.counts["documents"] == 4


def test_a_status_too_recent_is_not_remembered(office, monkeypatch):
    """A change in the same clock tick as the check's read would leave the status as it was: such a
    status (mtime or ctime within ``_RACY_NS`` of the read) is not remembered."""
    monkeypatch.setattr(checkcache, "_RACY_NS", 10**18)  # every file just changed
    rep = _check(office)
    assert rep.ok and rep.counts["unchanged"] == 0
    rep = _check(office)
    assert rep.ok and rep.counts["unchanged"] == 0
    c = checkcache.Verified(Vault.open(office.vault_dir), {})
    monkeypatch.setattr(checkcache, "_RACY_NS", 2_000_000_000)
    at = 10**19
    c.put("a", (1, 2, 3, at - 3 * 10**9, at - 1), "h", "k", at=at)  # ctime a moment before the read
    c.put("b", (1, 2, 3, at - 1, at - 3 * 10**9), "h", "k", at=at)  # mtime likewise
    c.put("c", (1, 2, 3, at - 3 * 10**9, at - 3 * 10**9), "h", "k", at=at)
    assert set(c.new["files"]) == {"c"}


def _rewrite_keeping_mtime(path, data: bytes) -> None:
    """The attacker's write: new bytes in place, then size (if equal) and mtime put back."""
    before = os.stat(path)
    _next_tick(path)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_manifest_or_record_changed_with_its_mtime_restored_is_named(office):
    """Manifests and records are remembered too (their hash, and for a manifest what a keyless check
    reads of it): a change of either, mtime restored, is named as before."""
    v = _first_check(office)
    m = load_manifest(v, resolve(v, office.numbers[0]))
    man = v.root / "dossiers" / m.id / "manifest.toml"
    data = man.read_bytes()
    _rewrite_keeping_mtime(man, data.replace(b'status = "', b'status = "x', 1))
    member = v.root / "members" / "bob.toml"
    mdata = bytearray(member.read_bytes())
    mdata[10] ^= 1
    _rewrite_keeping_mtime(member, bytes(mdata))
    problems = [str(p) for p in _check(office).problems]
    assert any(p.startswith(f"dossiers/{m.id}/manifest.toml: changed") for p in problems), problems
    assert any(p.startswith("members/bob.toml: changed") for p in problems), problems


def test_an_older_manifest_put_back_with_its_mtime_is_named(office, tmp_path):
    v = _first_check(office)
    m = load_manifest(v, resolve(v, office.numbers[1]))
    man = v.root / "dossiers" / m.id / "manifest.toml"
    old, before = man.read_bytes(), os.stat(man)
    f = tmp_path / "later.txt"
    f.write_text("a later document")
    office.add_doc(office.numbers[1], f)
    assert _check(office).ok
    _rewrite_keeping_mtime(man, old)
    os.utime(man, ns=(before.st_atime_ns, before.st_mtime_ns))
    problems = [str(p) for p in _check(office).problems]
    assert any(p.startswith(f"dossiers/{m.id}/manifest.toml: rolled back") for p in problems), problems


def test_a_warm_check_verifies_no_signature_again_but_a_changed_entry_is_named(office, monkeypatch):
    """The history's signatures this client verified are remembered by line hash and key: a new
    process's check verifies none of them again; an entry changed since is a new line, verified."""
    from vault.archive import authority
    from vault.crypto import sign

    _first_check(office)
    calls = []
    real = sign.verify
    monkeypatch.setattr(sign, "verify", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(authority, "_VERIFIED", {})  # a new process
    rep = _check(office)
    assert rep.ok and rep.counts["unchanged"] == 4
    lines = (office.vault_dir / "audit" / "log.jsonl").read_bytes().split(b"\n")[:-1]
    assert len(calls) <= 2 < len(lines), len(calls)  # the signed checkpoint (and nothing per entry)
    entry = json.loads(lines[-1])
    sig = entry["sig"]
    entry["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
    log = office.vault_dir / "audit" / "log.jsonl"
    _rewrite_keeping_mtime(log, b"\n".join([*lines[:-1], json.dumps(entry, separators=(",", ":")).encode()]) + b"\n")
    monkeypatch.setattr(authority, "_VERIFIED", {})
    problems = [str(p) for p in _check(office).problems]
    assert any("bad signature" in p for p in problems), problems


def test_the_walk_lists_what_os_walk_lists(tmp_path):
    """``store.walk`` (no lstat per directory) yields what ``os.walk`` yields, in the same order: a
    symbolic link to a directory listed, not followed; pruning ``dirnames`` prunes the walk."""
    from vault.store import walk

    for d in ("a/b/c", "a/d", "e", "skip/inner"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("a/x", "a/b/y", "a/b/c/z", "e/w", "skip/inner/v", "top"):
        (tmp_path / f).write_text(f)
    (tmp_path / "e" / "link").symlink_to(tmp_path / "a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")

    def run(walker):
        out = []
        for dirpath, dirnames, filenames in walker(tmp_path):
            dirnames[:] = [x for x in dirnames if x != "skip"]
            out.append((dirpath, sorted(dirnames), sorted(filenames)))
        return out

    assert run(walk) == run(os.walk)


@pytest.mark.parametrize("damage", ["dict rows", "short row", "size as text", "other dossier", "no documents"])
def test_a_remembered_manifest_of_the_wrong_shape_is_read_past(office, damage):
    """What the cache holds of a manifest is used only if it has exactly the shape a check wrote:
    damaged (with the status and hash still right), the manifest is read again and nothing is named."""
    v = _first_check(office)
    p = witness.state_dir(v) / checkcache.NAME
    cache = json.loads(p.read_bytes())
    for e in cache["manifests"].values():
        fields = e[8]
        if damage == "dict rows":
            fields["documents"] = [dict(zip(("id", "number", "sha256", "size", "key", "status"), r))
                                   for r in fields["documents"]]
        elif damage == "short row":
            fields["documents"][0] = fields["documents"][0][:5]
        elif damage == "size as text":
            fields["documents"][0][3] = str(fields["documents"][0][3])
        elif damage == "other dossier":
            fields["id"] = "0" * 32
        else:
            del fields["documents"]
    p.write_text(json.dumps(cache))
    rep = _check(office)
    assert rep.ok, rep.problems
    assert rep.counts["documents"] == rep.counts["unchanged"] == 4
    assert not rep.notes, rep.notes


def test_the_command_says_how_many_documents_it_did_not_read_again(office):
    office.run("check")
    first = office.json("check")
    assert first["ok"] and first["unchanged"] == 4
    out = office.run("check").output
    assert "4 documents unchanged since this client verified them" in out, out
    assert "unchanged" not in office.run("check", "--read-data", who="bob").output
