"""Offsite backups to a directory: full, incremental, resumed, concurrent, verify, prune, restore, shredding,
on worker processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from backup_helpers import CountingTarget, actor, add_docs, dossier_id, office_with_dossiers, tree_digest
from office import PASSPHRASE, Office
from vault import backup, forked
from vault.store import identity, seam
from vault.backup import packs, retention, upload
from vault.backup.capture import STAGING_PREFIX
from vault.backup.repo import DATA, KEYS, Repo
from vault.cli import cli
from vault.crypto import age
from vault.errors import ConflictError, NoIdentityMatchError, PermissionDeniedError
from vault.store.keytable import KeyTable, read_key_table, write_key_table
from vault.archive import checkcache, members
from vault.archive.vault import Vault

DOC = 20_000


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    """One office with 4 dossiers of 25 documents, built once; each test gets a copy of it."""
    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:
        o, numbers = office_with_dossiers(root / "office", mp, dossiers=4)
        act = actor(o)
        for i, no in enumerate(numbers):
            add_docs(o, no, 25, DOC, root / "src", seed=i, act=act)
    return root / "office", numbers


@pytest.fixture
def office(_template, tmp_path, monkeypatch):
    src, numbers = _template
    shutil.copytree(src, tmp_path / "office")
    monkeypatch.setattr(identity, "SCRYPT_WORK_FACTOR", 10)
    o = Office(tmp_path / "office")
    o.numbers = numbers
    return o


def _url(tmp_path, name="target") -> str:
    return f"file://{tmp_path / name}"


def _run(o, url, *extra, ok=True, who=None):
    res = o.run("backup", "run", url, "--json", *extra, ok=ok, who=who)
    return json.loads(res.stdout) if ok else res


def _objects(tmp_path, name="target") -> dict[str, int]:
    root = tmp_path / name
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _snapshot(tmp_path, rep, name="target") -> dict:
    return json.loads((tmp_path / name / "snapshots" / rep["snapshot"]).read_bytes())


def test_full_then_incremental_uploads_what_changed(office, tmp_path):
    url = _url(tmp_path)
    first = _run(office, url)
    # Identical files (index entries, say) are stored once, so "new" can be a little under the total.
    assert first["files"] > 100 and 0.99 * first["bytes_total"] < first["bytes_new"] <= first["bytes_total"]
    assert first["packs_new"] < 10  # small files are packed, not one object each
    before = _objects(tmp_path)

    unchanged = _run(office, url)
    assert unchanged["bytes_new"] == 0 and unchanged["packs_new"] == 0 and unchanged["keys_mirrored"] == 0
    new_objects = set(_objects(tmp_path)) - set(before)
    # The same state captured: the tree put by the first run is named again, not encrypted anew.
    assert {o.split("/")[0] for o in new_objects} == {"snapshots"}
    assert _snapshot(tmp_path, unchanged)["tree"] == _snapshot(tmp_path, first)["tree"]

    # 1% of the documents change (one new document among a hundred): what goes up is exactly the files
    # that changed — the document, its dossier's new manifest, the audit trail (key tables go to the
    # mirror).
    old = tree_digest(office.vault_dir)
    add_docs(office, office.numbers[0], 1, DOC, tmp_path / "src", seed=99)
    changed = {p for p, h in tree_digest(office.vault_dir).items() if old.get(p) != h and not p.startswith("keys/")}
    assert {p.split("/")[0] for p in changed} <= {"dossiers", "audit"}
    inc = _run(office, url)
    assert inc["bytes_new"] == sum((office.vault_dir / p).stat().st_size for p in changed)
    assert inc["bytes_new"] < 0.04 * inc["bytes_total"]
    assert inc["keys_mirrored"] == 1  # that dossier's key table gained an entry


def test_restore_round_trip_is_byte_identical(office, tmp_path):
    url = _url(tmp_path)
    snap = _run(office, url, who="bob")["snapshot"]  # registered by a member: backups.toml is bound
    dest = tmp_path / "restored"
    out = json.loads(office.run("backup", "restore", url, snap[:8], str(dest), "--json", who="bob").stdout)
    assert out["files"] > 100 and not out["key_tables_missing"]
    assert out["key_tables"] == len(list((office.vault_dir / "keys").iterdir()))
    assert tree_digest(dest) == tree_digest(office.vault_dir)
    check = json.loads(office.run("--vault", str(dest), "check", "--read-data", "--json", who="bob").stdout)
    assert check["ok"] and check["documents"] == 100 and not check["notes"]
    doc = office.json("doc", "list", office.numbers[2], who="bob")[3]["number"]
    assert (office.run("doc", "view", doc, who="bob").stdout_bytes
            == office.run("--vault", str(dest), "doc", "view", doc, who="bob").stdout_bytes)


def test_run_and_prune_need_no_identity(office, tmp_path):
    url = _url(tmp_path)
    env = {"VAULT_DIR": str(office.vault_dir), "VAULT_IDENTITY": None, "VAULT_PASSPHRASE_FILE": None,
           "VAULT_AGENT_SOCK": str(tmp_path / "no-agent.sock")}  # nor an agent to stand in for them
    runner = CliRunner()
    res = runner.invoke(cli, ["backup", "run", url, "--json"], env=env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["backup", "prune", url, "--keep-daily", "7", "--json"], env=env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["backup", "list", url], env=env, catch_exceptions=False)
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1
    # What needs a key says so in one line.
    res = runner.invoke(cli, ["backup", "restore", url, "latest", str(tmp_path / "r")], env=env)
    assert res.exit_code == 1 and res.stderr.startswith("vault: error: this needs a ring member's identity")
    # Nothing readable left the vault: the target holds no marker of the customer data.
    blob = b"".join(p.read_bytes() for p in (tmp_path / "target").rglob("*") if p.is_file())
    assert b"Customer 1" not in blob and b"c1@example.org" not in blob


def test_interrupted_run_resumes_without_uploading_twice(office, tmp_path, monkeypatch):
    monkeypatch.setattr(packs, "PACK_TARGET", 100_000)  # ~20 packs, so the run can stop between them
    v = Vault.open(office.vault_dir)
    url = _url(tmp_path)
    broken = CountingTarget(url, fail_after=6, prefix=DATA)  # the key mirror's puts go on beside them
    with pytest.raises(Exception, match="connection reset"):
        backup.run(v, broken)
    assert backup.list_snapshots(url) == []  # a half-written snapshot is never listed
    arrived = {n for n in broken.put_names if n.startswith(DATA)}
    assert arrived

    again = CountingTarget(url)
    rep = backup.run(v, again)
    assert not arrived & set(again.put_names)  # nothing that arrived is sent again
    assert [s["id"] for s in backup.list_snapshots(url)] == [rep.snapshot]
    # Every blob is stored exactly once, and the result restores and verifies.
    repo = Repo(url)
    seen = []
    for name in repo.list(DATA):
        seen += [e[0] for e in packs.read_trailer(name.rsplit("/", 1)[1], repo.get(name))]
    assert len(seen) == len(set(seen))
    assert backup.verify(url, read_fraction=1.0).ok
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_concurrent_writer_snapshot_is_a_real_state(office, tmp_path):
    url = _url(tmp_path)
    act = actor(office)
    history: dict[str, set[bytes]] = {}  # manifest path -> every version it had
    stop, added = threading.Event(), []

    def record():
        for p in (office.vault_dir / "dossiers").glob("*/manifest.toml"):
            history.setdefault(str(p.relative_to(office.vault_dir)), set()).add(p.read_bytes())

    record()

    def writer():
        i = 0
        while not stop.is_set() and i < 12:
            add_docs(office, office.numbers[i % 4], 2, 5_000, tmp_path / "w", seed=1000 + i, act=act)
            record()  # the only writer: what it reads after its own add is the state it made
            added.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(added) < 2:
            stop.wait(0.01)
        reps = [backup.run(Vault.open(office.vault_dir), url) for _ in range(2)]
    finally:
        stop.set()
        t.join()
    assert len(reps) == 2
    for rep in reps:
        dest = tmp_path / f"restored-{rep.snapshot[:8]}"
        backup.restore(url, rep.snapshot, dest, act.read_identities(), member=act.identity)
        for p in dest.glob("dossiers/*/manifest.toml"):
            assert p.read_bytes() in history[str(p.relative_to(dest))]
        res = office.run("--vault", str(dest), "check", "--read-data", "--json", who="bob", ok=False)
        report = json.loads(res.stdout)
        assert res.exit_code == 0 and report["ok"], report["problems"]
    assert not list(office.vault_dir.glob(STAGING_PREFIX + "*"))


def test_verify_names_corrupted_and_missing_objects(office, tmp_path, monkeypatch):
    monkeypatch.setattr(packs, "PACK_TARGET", 100_000)
    url = _url(tmp_path)
    _run(office, url)
    res = office.run("backup", "verify", url, "--read-data", who="bob")
    assert "no problems" in res.stdout and "100 documents decrypted" in res.stdout
    names = sorted(n for n in _objects(tmp_path) if n.startswith(DATA))
    damaged, gone = tmp_path / "target" / names[0], tmp_path / "target" / names[1]
    raw = bytearray(damaged.read_bytes())
    raw[10] ^= 1
    damaged.write_bytes(bytes(raw))
    gone.unlink()
    res = office.run("backup", "verify", url, ok=False)
    assert res.exit_code == 1 and f"problem: {names[1]}: missing" in res.stdout and names[0] not in res.stdout
    res = office.run("backup", "verify", url, "--read-data-subset", "100%", who="bob", ok=False)
    assert res.exit_code == 1 and f"problem: {names[0]}: damaged" in res.stdout
    assert f"problem: {names[1]}: missing" in res.stdout
    res = office.run("backup", "verify", url, "--read-data-subset", "abc", who="bob", ok=False)
    assert res.exit_code == 2 and "bad subset" in res.stderr


def _snap(i: int, day: str, dossiers: dict) -> dict:
    return {"id": f"{i:064x}", "time": f"{day}T12:00:00Z", "dossiers": dossiers, "other": []}


def test_keep_rules_follow_restic():
    days = [(dt.date(2026, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(400)]
    snaps = [_snap(i, d, {}) for i, d in enumerate(days)] + [_snap(1000, days[-1], {})]
    kept = retention.select(snaps, {"daily": 3}, set())
    assert sorted(kept) == sorted([f"{1000:064x}", f"{398:064x}", f"{397:064x}"])  # newest of each of 3 days
    kept = retention.select(snaps, {"monthly": 2, "yearly": 5}, set())
    times = sorted(s["time"][:10] for s in snaps if s["id"] in kept)
    assert times == ["2026-12-31", "2027-01-31", "2027-02-04"]
    with pytest.raises(Exception, match="no keep rule given"):
        retention.select(snaps, {}, set())


def test_prune_never_drops_the_only_copy_of_a_protected_dossier(office, tmp_path):
    url = _url(tmp_path)
    v = office.open()
    held, other = office.numbers[0], office.numbers[1]
    office.at("2026-03-01T12:00:00Z")
    s1 = backup.run(v, url).snapshot
    office.at("2026-03-02T12:00:00Z")
    add_docs(office, other, 1, DOC, tmp_path / "src", seed=50)
    s2 = backup.run(v, url).snapshot
    office.at("2026-03-03T12:00:00Z")
    add_docs(office, held, 1, DOC, tmp_path / "src", seed=51)
    s3 = backup.run(v, url).snapshot

    dry = backup.prune(url, keep_daily=1, dry_run=True)
    assert set(dry.kept) == {s3} and set(dry.forgotten) == {s1, s2}
    rep = backup.prune(url, keep_daily=1, protected={dossier_id(office, held)})
    # s1 and s2 hold the held dossier's manifest before its last document: that copy is kept once.
    assert s3 in rep.kept and len(rep.kept) == 2 and "protected dossier" in " ".join(sum(rep.kept.values(), []))
    assert backup.verify(url, read_fraction=1.0).ok
    old = [s for s in rep.kept if s != s3][0]
    backup.restore(url, old, tmp_path / "old", actor(office).read_identities(), member=actor(office).identity)
    check = json.loads(office.run("--vault", str(tmp_path / "old"), "check", "--read-data", "--json",
                                  who="bob", ok=False).stdout)
    assert check["ok"], check["problems"]
    # Without the hold, only the newest stays and the packs nothing needs are gone.
    rep = backup.prune(url, keep_daily=1)
    assert list(rep.kept) == [s3] and backup.verify(url, read_fraction=1.0).ok


def test_shred_keys_makes_old_snapshots_unreadable(office, tmp_path):
    url = _url(tmp_path)
    v = Vault.open(office.vault_dir)
    act = actor(office)
    number = office.numbers[1]
    did = dossier_id(office, number)
    docs = office.json("doc", "list", number, who="bob")
    victim = next(d for d in json.loads(json.dumps(docs)) if True)["number"]
    from vault.archive.manifests import load_manifest

    entry = next(d for d in load_manifest(v, did).documents if d.number == victim)
    before = backup.run(v, url).snapshot

    # A destruction removes the document's key from the key table (crypto-shredding) ...
    with v.lock(exclusive=True):
        path = v.layout.key_table(did)
        table = read_key_table(path, act.read_identities(), dossier=did)
        del table.keys[entry.key]
        from vault.archive import members

        write_key_table(path, table, members.ring_recipients(v))
    backup.run(v, url)
    # ... but within the window the mirror still holds the old generation, which opens the document.
    doc_bytes = (v.layout.document(did, entry.id)).read_bytes()

    def openers() -> int:
        repo, n = Repo(url), 0
        for name in repo.list(KEYS):
            try:
                t = KeyTable.from_bytes(age.decrypt_bytes(repo.get(name), act.read_identities()), what=name)
            except Exception:
                continue
            try:
                age.decrypt_bytes(doc_bytes, [t.identity()])
                n += 1
            except NoIdentityMatchError:
                pass
        return n

    assert openers() == 1
    assert backup.known_targets(v) == [url]
    rep = backup.shred_keys(url, [f"keys/{did}.age"], current=v)
    assert rep.reached and len(rep.removed) == 2 and len(rep.remirrored) == 1
    assert openers() == 0
    dest = tmp_path / "restored"
    backup.restore(url, before, dest, act.read_identities(), member=act.identity)
    restored = read_key_table(dest / "keys" / f"{did}.age", act.read_identities(), dossier=did)
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes((dest / "dossiers" / did / "documents" / f"{entry.id}.age").read_bytes(),
                          [restored.identity()])
    check = json.loads(office.run("--vault", str(dest), "check", "--read-data", "--json", who="bob", ok=False).stdout)
    assert check["problems"] == [f"dossiers/{did}/documents/{entry.id}.age ({victim}): its key is missing from the key table"]
    # A whole dossier shredded: its table is gone from the target and a restore says so.
    rep = backup.shred_keys(url, [f"keys/{did}.age"])
    assert rep.reached and not rep.remirrored
    out = backup.restore(url, before, tmp_path / "r2", act.read_identities(), member=act.identity)
    assert out.key_tables_missing == [f"keys/{did}.age"]


def test_key_window_expires_superseded_generations(office, tmp_path):
    url = _url(tmp_path)
    v = office.open()
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    office.at(t0)
    backup.run(v, url)
    add_docs(office, office.numbers[0], 1, 100, tmp_path / "src", seed=7)
    office.at(t0 + dt.timedelta(days=1))
    backup.run(v, url)
    table = f"{dossier_id(office, office.numbers[0])}.age"
    gens = lambda: [n for n in Repo(url).list(KEYS) if n.startswith(f"{KEYS}{table}/")]  # noqa: E731
    assert len(gens()) == 2
    office.at(t0 + dt.timedelta(days=3))
    _run(office, url, "--key-window", "1d")
    assert len(gens()) == 1


def test_errors_are_one_line(office, tmp_path):
    res = office.run("backup", "run", "ftp://host/x", ok=False)
    assert res.exit_code == 1 and res.stderr.splitlines()[0] == "vault: error: no backup target for URL scheme 'ftp'"
    res = office.run("backup", "run", "file://relative/path", ok=False)
    assert res.exit_code == 1 and "bad file target" in res.stderr and "Traceback" not in res.output
    res = office.run("backup", "list", _url(tmp_path, "nothing"), ok=False)
    assert res.exit_code == 1 and "no vault backup here" in res.stderr
    url = _url(tmp_path)
    _run(office, url)
    res = office.run("backup", "restore", url, "latest", str(office.vault_dir), who="bob", ok=False)
    assert res.exit_code == 1 and "exists and is not empty" in res.stderr
    res = office.run("backup", "run", url, "--key-window", "soon", ok=False)
    assert res.exit_code == 2 and "bad duration" in res.stderr
    other = Repo(url)
    with pytest.raises(ConflictError, match="another vault"):
        other.init_or_check("0" * 32)


def test_stale_staging_is_swept_and_check_is_quiet(office, tmp_path):
    stale = office.vault_dir / f"{STAGING_PREFIX}deadbeef"
    (stale / "dossiers").mkdir(parents=True)
    (stale / ".owner").write_bytes(b"")
    _run(office, _url(tmp_path), who="bob")
    assert not list(office.vault_dir.glob(STAGING_PREFIX + "*"))
    check = json.loads(office.run("check", "--json").stdout)
    assert check["ok"] and not check["notes"]


def test_check_does_not_walk_a_staging_directory_a_run_is_filling(office):
    """While a run holds its staging directory (links named 0, 1, …, perhaps a copy being written),
    `check` does not walk it: none of it is a vault file or a temporary of the vault's, and `repair`
    leaves it to the run."""
    live = office.vault_dir / f"{STAGING_PREFIX}0123456789abcdef"
    live.mkdir()
    (live / "0").write_bytes(b"a link")
    (live / ".tmp-copy").write_bytes(b"half a copy")
    check = json.loads(office.run("check", "--json").stdout)
    assert check["ok"] and not check["notes"], check
    assert office.json("repair", who="bob")["temporaries_removed"] == []
    assert (live / ".tmp-copy").exists()


def test_file_target_does_not_import_boto3(office, tmp_path):
    script = (
        "import sys\n"
        "from vault.cli import cli\n"
        "for args in (['--help'], ['backup', 'run', sys.argv[2]]):\n"
        "    try:\n"
        "        cli(['--vault', sys.argv[1], *args], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(office.vault_dir), _url(tmp_path)],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin",
                                                                          "XDG_CACHE_HOME": str(tmp_path / "c")})
    assert out.stdout.strip().splitlines()[-1] == "False False"
    assert backup.list_snapshots(_url(tmp_path))


def test_restore_from_nothing_but_an_identity_file(office, tmp_path):
    """Disaster recovery: no vault, only the target and a member's identity file and passphrase."""
    url = _url(tmp_path)
    _run(office, url)
    res = CliRunner().invoke(cli, ["backup", "restore", url, "latest", str(tmp_path / "r")],
                             env={"VAULT_DIR": None, "VAULT_IDENTITY": str(office.ident("bob")),
                                  "VAULT_PASSPHRASE_FILE": str(office.root / "pass")})
    assert res.exit_code == 0, res.output
    assert tree_digest(tmp_path / "r") == tree_digest(office.vault_dir)
    assert PASSPHRASE.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "target").rglob("*") if p.is_file())


def test_format_md_states_the_backup_constants():
    text = (Path(__file__).parent.parent / "docs" / "FORMAT.md").read_text()
    section = text[text.index("## 16. Backups"):text.index("## Changes")]
    assert packs.SMALL_BLOB == 1 << 20 and "Files under 1 MiB ✓" in section
    assert packs.PACK_TARGET == 12 << 20 and "holds 12 MiB ✓" in section
    assert packs.PACK_BLOBS == 65_536 and "or 65,536 ✓" in section
    assert packs.MAX_HEADER == 16 << 20 and "a header under 16 MiB ✓" in section
    from vault.backup import mirror

    assert mirror.DEFAULT_WINDOW == dt.timedelta(days=7) and "default 7 days ✓" in section
    assert upload.FORK_BYTES == 64 << 20 and "A run with 64 MiB ✓" in section
    assert (upload.SHARE_BYTES, upload.SHARE_MAX) == (4 * packs.PACK_TARGET, 8 * packs.PACK_TARGET) \
        and "four to eight packs' worth ✓" in section
    from vault.backup.repo import LOCK_STALE

    assert LOCK_STALE == dt.timedelta(hours=6) and "for 6 hours ✓" in section


def test_a_registered_backups_toml_deleted_is_named_and_a_new_target_needs_an_identity(office, tmp_path):
    """Deleting backups.toml would let a destruction skip the targets: once a member registered a
    target, the history binds it."""
    _run(office, _url(tmp_path, "one"), who="bob")
    listing = office.vault_dir / "backups.toml"
    saved = listing.read_bytes()
    listing.unlink()
    check = json.loads(office.run("check", "--json", ok=False).stdout)
    assert [p for p in check["problems"] if p.startswith("backups.toml: missing")], check["problems"]
    listing.write_bytes(saved)
    res = _run(office, _url(tmp_path, "two"), ok=False)  # no identity: a new target is refused
    assert res.exit_code == 1 and "new backup target" in res.stderr and "Traceback" not in res.output
    _run(office, _url(tmp_path, "one"))  # a registered target needs none
    _run(office, _url(tmp_path, "two"), who="bob")
    assert len(backup.known_targets(Vault.open(office.vault_dir))) == 2
    assert office.json("check")["ok"]


def test_a_run_leaves_what_the_target_holds_untouched_so_the_next_check_stays_warm(office, tmp_path, monkeypatch):
    """A file the target holds by its status is neither linked into the staging nor read: its ctime
    does not move, so the check after a nightly backup reads only what changed, and every snapshot
    still restores the vault byte for byte — a second target, which holds nothing yet, gets all of it."""
    monkeypatch.setattr(checkcache, "_RACY_NS", 0)  # (the files were written just now)
    url = _url(tmp_path)

    def statuses() -> dict[str, int]:
        return {str(p.relative_to(office.vault_dir)): p.stat().st_ctime_ns for p in office.vault_dir.rglob("*")
                if p.is_file() and p.parts[len(office.vault_dir.parts)] not in ("audit",)}  # key tables are read, never linked

    def restores(target: str, snap: str, name: str) -> bool:
        dest = tmp_path / name
        office.run("backup", "restore", target, snap[:8], str(dest), "--json", who="bob")
        return tree_digest(dest) == tree_digest(office.vault_dir)

    _run(office, url)
    assert office.json("check")["ok"]
    before = statuses()
    second = _run(office, url)
    assert second["bytes_new"] == 0 and statuses() == before
    rep = office.json("check")
    assert rep["ok"] and rep["unchanged"] == rep["documents"] == 100
    assert restores(url, second["snapshot"], "r2")

    add_docs(office, office.numbers[1], 1, DOC, tmp_path / "src", seed=7)
    third = _run(office, url)
    assert 0 < third["bytes_new"] < 0.04 * third["bytes_total"]
    assert restores(url, third["snapshot"], "r3")
    rep = office.json("check")
    assert rep["ok"] and rep["documents"] == 101 and rep["unchanged"] >= 99  # the new one and its neighbours

    other = _url(tmp_path, "second-target")
    first_there = _run(office, other)
    assert first_there["bytes_new"] > 0.97 * first_there["bytes_total"]
    assert restores(other, first_there["snapshot"], "r4")


# -- on worker processes: the snapshot threads would take, every pack put by a worker, threads kept
# where the target or the crash seam needs them, a worker that dies named once and its run resumed

#: Worker processes are forked one per core (up to four) and never on one core: a pass there runs on threads.
needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no worker processes, by design")


@pytest.fixture
def small_shares(monkeypatch):
    """Workers for any pass, handed ~300 kB at a time (the office holds ~2.6 MB): several shares each."""
    monkeypatch.setattr(upload, "FORK_BYTES", 1)
    monkeypatch.setattr(upload, "SHARE_BYTES", 300_000)
    monkeypatch.setattr(packs, "PACK_TARGET", 100_000)
    started: list[forked.Forked | None] = []
    real = upload.Workers.start.__func__  # type: ignore[attr-defined]

    def spy(cls, *args):
        started.append(w := real(cls, *args))
        return w

    monkeypatch.setattr(upload.Workers, "start", classmethod(spy))
    return started


def _packed(url: str) -> dict[str, list[str]]:
    """Each pack on the target and the blobs its trailer names."""
    repo = Repo(url)
    return {n: [e[0] for e in packs.read_trailer(n.rsplit("/", 1)[1], repo.get(n))] for n in repo.list(DATA)}


@needs_two_cores
def test_workers_put_every_pack_and_the_snapshot_is_the_one_threads_take(office, tmp_path, small_shares):
    v = Vault.open(office.vault_dir)
    on_threads = f"file://{tmp_path / 'threads'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(upload, "FORK_BYTES", 1 << 60)
        by_threads = backup.run(v, on_threads)
    assert small_shares == [None]

    url = f"file://{tmp_path / 'workers'}"
    target = CountingTarget(url)
    rep = backup.run(v, target)
    workers = small_shares[-1]
    assert workers is not None and len(workers.shares) >= 4
    # Every pack was put by a worker: none of them went through this process's target object.
    assert not [n for n in target.put_names if n.startswith(DATA)]
    held = _packed(url)
    assert len(held) >= 4
    known, indexed, _ = Repo(url).load_index()
    assert set(indexed) == {n.rsplit("/", 1)[1] for n in held}
    # The same files, the same blobs, the same bytes as the pass on threads.
    snaps = {s["id"]: s for s in Repo(url).snapshots() + Repo(on_threads).snapshots()}
    mine, theirs = snaps[rep.snapshot], snaps[by_threads.snapshot]
    # (the one file between the two runs that changed: ``backups.toml`` names the second target)
    for k in ("files", "dossiers", "rings"):
        assert mine[k] == theirs[k], k
    assert len(mine["other"]) == len(theirs["other"])
    # Files alike (the vault has a few) are packed once on threads, once per share on workers.
    assert by_threads.bytes_new < by_threads.bytes_total and by_threads.bytes_new <= rep.bytes_new <= rep.bytes_total
    assert set(known) == {b for bs in held.values() for b in bs}
    assert backup.verify(url, read_fraction=1.0).ok
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)
    # The next run reads nothing (no worker is started, no file left to read): the cache the
    # workers' blobs went into is the one a pass on threads fills.
    again = backup.run(v, url)
    assert again.bytes_new == 0 and small_shares[-1] is None


@needs_two_cores
def test_threads_where_a_target_or_the_crash_seam_needs_them(office, tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "FORK_BYTES", 1)
    files = [(p, p.stat().st_size) for p in sorted(office.vault_dir.rglob("*.age")) if p.is_file()]
    url = f"file://{tmp_path / 't'}"
    repo = Repo(url)
    workers = upload.Workers.start(repo, {}, files)
    assert workers is not None  # the built-in file target says it may be forked with
    workers.shutdown()

    class Pooled(CountingTarget):
        """A target holding what a forked copy must not share (it does not say ``fork_safe``)."""

        fork_safe = False

    assert upload.Workers.start(Repo(Pooled(url)), {}, files) is None
    seam.arm(0)  # counting every durable step, which a worker's steps would escape
    try:
        assert upload.Workers.start(repo, {}, files) is None
    finally:
        seam.disarm()
    monkeypatch.setattr(upload, "FORK_BYTES", sum(s for _, s in files) + 1)
    assert upload.Workers.start(repo, {}, files) is None  # too little to read


@needs_two_cores
def test_two_shares_alike_are_both_packed_and_the_index_lists_both(tmp_path, monkeypatch):
    """Two workers may pack the same bytes (two files alike, in different shares)."""
    monkeypatch.setattr(upload, "FORK_BYTES", 1)
    monkeypatch.setattr(upload, "SHARE_BYTES", 600_000)
    alike = b"alike" * 60_000
    files = []
    for i, data in enumerate([alike, os.urandom(300_000), alike, os.urandom(300_000)]):  # two shares of two
        (p := tmp_path / f"f{i}").write_bytes(data)
        files.append((p, len(data)))
    url = f"file://{tmp_path / 't'}"
    repo = Repo(url)
    workers = upload.Workers.start(repo, {}, files)
    assert workers is not None and len(workers.shares) == 2
    try:
        ids = list(workers.blobs(lambda n: None))
    finally:
        workers.shutdown()
    assert ids == [packs.sha256_hex(p.read_bytes()) for p, _ in files]
    assert ids[0] == ids[2] and len(workers.packs) == 2
    assert all(ids[0] in [e[0] for e in p["blobs"]] for p in workers.packs.values())
    repo.write_index(workers.packs)
    known, _, _ = Repo(url).load_index()
    assert set(known) == set(ids)
    pack, off, ln = known[ids[0]]
    assert Repo(url).get(f"{DATA}{pack[:2]}/{pack}")[off:off + ln] == alike


@needs_two_cores
def test_a_worker_that_dies_is_one_error_and_the_next_run_resumes(office, tmp_path, small_shares, monkeypatch):
    parent = os.getpid()
    real = upload.hash_file
    calls = {"n": 0}

    def dies_in_a_worker(path, size):
        calls["n"] += 1
        if os.getpid() != parent and calls["n"] > 30:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, size)

    monkeypatch.setattr(upload, "hash_file", dies_in_a_worker)
    url = f"file://{tmp_path / 'target'}"
    res = office.run("backup", "run", url, ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "vault backup run: a worker process stopped before it finished" in res.output
    assert small_shares[-1] is not None
    assert backup.list_snapshots(url) == []  # nothing listed names what a dead worker left half-put
    assert not list(office.vault_dir.glob(".backup-staging-*"))

    monkeypatch.setattr(upload, "hash_file", real)
    rep = backup.run(Vault.open(office.vault_dir), url)
    assert [s["id"] for s in backup.list_snapshots(url)] == [rep.snapshot]
    assert backup.verify(url, read_fraction=1.0).ok
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_a_key_mirror_that_fails_beside_a_pass_that_succeeds_stops_the_run_before_its_snapshot(office, tmp_path):
    """The key mirror runs beside the pass over the files: its failure is the run's, and no snapshot
    is listed whose key tables the target does not hold; the next run mirrors them and completes."""
    v = Vault.open(office.vault_dir)
    url = _url(tmp_path)
    broken = CountingTarget(url, fail_after=2, prefix=KEYS)
    with pytest.raises(Exception, match="connection reset"):
        backup.run(v, broken)
    assert [n for n in broken.put_names if n.startswith(DATA)]  # the pass itself went through
    assert backup.list_snapshots(url) == []
    again = CountingTarget(url)
    rep = backup.run(v, again)
    assert rep.keys_mirrored == len(list((office.vault_dir / "keys").glob("*.age"))) - 2
    assert not [n for n in again.put_names if n.startswith(DATA)]  # the packs were adopted
    assert backup.verify(url, read_fraction=1.0).ok
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_a_file_copied_where_its_link_failed_is_left_alone_by_the_next_run(office, tmp_path, monkeypatch):
    """Where the capture cannot link a file it copies it; the cache keeps the original's status, so
    the next run finds it unchanged (neither linked nor copied nor read) like any other."""
    import vault.backup.engine as engine
    from vault.backup import capture as cap

    vault_dir = str(office.vault_dir)
    real_link = os.link

    def no_link_for_manifests(src, dst, *a, **kw):
        if str(src).startswith(vault_dir) and str(src).endswith("manifest.toml"):
            raise PermissionError(1, "Operation not permitted (test)")
        return real_link(src, dst, *a, **kw)

    staged = []
    real_capture = cap.capture

    def spy(*a, **kw):
        staged.append(s := real_capture(*a, **kw))
        return s

    monkeypatch.setattr(engine, "capture", spy)
    url = _url(tmp_path)
    v = Vault.open(office.vault_dir)
    with monkeypatch.context() as mp:
        mp.setattr(os, "link", no_link_for_manifests)
        first = backup.run(v, url)
    manifests = [rel for rel, _ in staged[0].files if rel.endswith("manifest.toml")]
    assert len(manifests) == 4 and first.bytes_new > 0
    second = backup.run(v, url)
    assert second.bytes_new == 0
    assert [p for rel, p in staged[1].files if rel in manifests] == [None] * 4
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_prune_removes_what_a_killed_put_left_and_nothing_a_running_put_needs(office, tmp_path):
    """A run killed mid-put (or a worker the pool stopped) leaves a temporary object on a file target,
    hidden from listings; prune, alone on the target, removes those no put has written for as long
    as a lock stays live, and leaves a fresh one (a put may still be writing it)."""
    import time

    url = _url(tmp_path)
    _run(office, url)
    shelf = next(p for p in (tmp_path / "target" / "data").iterdir() if p.is_dir())
    stale, fresh = shelf / ".tmp-0123abcd.00ff00ff", shelf / ".tmp-4567cdef.11ee11ee"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y" * 1000)
    long_ago = time.time() - 7 * 3600
    os.utime(stale, (long_ago, long_ago))
    dry = json.loads(office.run("backup", "prune", url, "--keep-daily", "7", "--dry-run", "--json").stdout)
    assert dry["temporaries_removed"] == 0 and stale.exists()
    rep = json.loads(office.run("backup", "prune", url, "--keep-daily", "7", "--json").stdout)
    assert rep["temporaries_removed"] == 1 and not stale.exists() and fresh.exists()
    assert backup.verify(url, read_fraction=1.0).ok


def test_a_tree_is_named_again_only_while_the_target_holds_it_and_the_rings_are_the_same(office, tmp_path):
    """A run that captured the state of the run before names that run's tree (the client keeps a
    digest of each target's last tree). It puts a new one when the target lost the tree, and when
    the rings changed: a member removed must not be able to open the tree of a later run."""
    url = _url(tmp_path)
    office.add_member("carol", "archivist", dept="archive")
    runs = [_run(office, url), _run(office, url)]
    tree = _snapshot(tmp_path, runs[0])["tree"]
    assert _snapshot(tmp_path, runs[1])["tree"] == tree

    # Both snapshots forgotten, as a prune does it: the snapshots, then the tree no other names.
    for rep in runs:
        (tmp_path / "target" / "snapshots" / rep["snapshot"]).unlink()
    (tmp_path / "target" / "trees" / tree).unlink()
    again = _snapshot(tmp_path, _run(office, url))["tree"]
    assert again != tree and (tmp_path / "target" / "trees" / again).is_file()
    assert backup.verify(url).ok

    # What carol can open while a member: her rings' identities, which she may keep when she leaves.
    v = office.open()
    kept = []
    for ring in sorted(v.policy.data["rings"]):
        with contextlib.suppress(PermissionDeniedError):
            kept.append(members.unlock_ring(v, ring, office.identity("carol")))
    assert kept and age.decrypt_bytes((tmp_path / "target" / "trees" / again).read_bytes(), kept)
    office.run("member", "remove", "carol", who="alice")  # her rings are rotated
    rotated = _snapshot(tmp_path, _run(office, url))["tree"]
    assert rotated != again
    with pytest.raises(NoIdentityMatchError):
        age.decrypt_bytes((tmp_path / "target" / "trees" / rotated).read_bytes(), kept)
    assert backup.verify(url, read_fraction=1.0).ok


def test_prune_keeps_a_tree_a_kept_snapshot_shares_with_a_forgotten_one(office, tmp_path):
    """Two runs of one state name one tree: forgetting the older snapshot leaves the tree the newer
    one names, and the newer restores byte for byte."""
    url = _url(tmp_path)
    older, newer = _run(office, url), _run(office, url)
    assert _snapshot(tmp_path, older)["tree"] == _snapshot(tmp_path, newer)["tree"]
    rep = backup.prune(url, keep_daily=1)
    assert rep.forgotten == [older["snapshot"]]
    assert backup.verify(url, read_fraction=1.0).ok
    dest = tmp_path / "restored"
    backup.restore(url, "latest", dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_only_key_tables_are_mirrored_and_a_pending_one_is_left_to_its_writer(office, tmp_path):
    """A commit cut short leaves a key table's ``.pending`` until the next writer finishes it; a run
    in between must not take it for a table: mirrored under a name no listing knows, it would never
    expire nor be shredded, and a tree naming it would restore nothing."""
    table = next((office.vault_dir / "keys").glob("*.age"))
    pending = table.with_name(table.name + ".pending")
    pending.write_bytes(table.read_bytes())
    url = _url(tmp_path)
    rep = _run(office, url)
    names = [p.relative_to(tmp_path / "target" / "keys").as_posix() for p in (tmp_path / "target" / "keys").rglob("*")
             if p.is_file()]
    assert names and all(n.split("/")[0].endswith(".age") and not n.split("/")[0].endswith(".pending") for n in names)
    pending.unlink()
    dest = tmp_path / "restored"
    backup.restore(url, rep["snapshot"], dest, actor(office).read_identities(), member=actor(office).identity)
    assert tree_digest(dest) == tree_digest(office.vault_dir)


def test_a_run_refuses_to_start_beside_a_prune(office, tmp_path):
    """A prune deletes what no snapshot it keeps names: a run beside it could name a tree or pack it
    deletes. The run refuses in one line while a prune's lock is live, and runs once it is gone."""
    url = _url(tmp_path)
    _run(office, url)
    repo = Repo(url)
    lock = repo.lock("prune")
    res = _run(office, url, ok=False)
    assert res.exit_code == 1 and "a prune is running on this target" in res.output and "Traceback" not in res.output
    repo.unlock(lock)
    assert _run(office, url)["bytes_new"] == 0


def test_a_tree_is_named_again_only_for_the_same_recipients(tmp_path):
    """The tree cache's digest covers the recipients as well as the plaintext: the same tree for
    another ring is another encryption."""
    from vault.backup.engine import _TreeCache

    one, two = (age.recipient_of(age.generate_identity()) for _ in range(2))
    trees = _TreeCache(tmp_path / "trees.json")
    plain = b'{"format":1}'
    trees.save("file:///t", trees.digest(plain, [one]), "a" * 64)
    again = _TreeCache(tmp_path / "trees.json")
    assert again.get("file:///t", again.digest(plain, [one])) == "a" * 64
    assert again.get("file:///t", again.digest(plain, [two])) is None
    assert again.get("file:///t", again.digest(plain, [one, two])) is None
    assert again.get("file:///other", again.digest(plain, [one])) is None


def test_the_tree_cache_keeps_the_targets_used_last(tmp_path):
    """One entry per target URL, the 64 used last: a target used again moves to the end, the one
    used longest ago goes."""
    from vault.backup.engine import _TREE_URLS, _TreeCache

    trees = _TreeCache(tmp_path / "trees.json")
    for i in range(_TREE_URLS):
        trees.save(f"file:///t{i}", f"{i:064x}", "a" * 64)
    trees.save("file:///t0", f"{0:064x}", "b" * 64)  # used again: now the newest
    trees.save("file:///new", f"{1:064x}", "c" * 64)  # one more than the bound: t1 goes
    again = _TreeCache(tmp_path / "trees.json")
    assert len(again.data) == _TREE_URLS
    assert again.get("file:///t1", f"{1:064x}") is None
    assert again.get("file:///t0", f"{0:064x}") == "b" * 64
    assert again.get("file:///t2", f"{2:064x}") == "a" * 64 and again.get("file:///new", f"{1:064x}") == "c" * 64


def test_a_damaged_backup_cache_is_read_past(office, tmp_path):
    """The client's backup cache holding JSON of another shape (or none) costs a re-read, never the run."""
    url = _url(tmp_path)
    _run(office, url)
    cache = next((tmp_path / "cache").rglob("files.json"))
    for junk in (b"[]", b"1", b'"x"', b"{\"a\": 5}", b"\xff"):
        cache.write_bytes(junk)
        (cache.parent / "trees.json").write_bytes(junk)
        rep = _run(office, url)
        assert rep["bytes_new"] == 0
    assert backup.verify(url, read_fraction=1.0).ok


def test_a_pack_holds_at_most_pack_blobs_files(office, tmp_path, monkeypatch):
    """A pack is closed at ``PACK_BLOBS`` files as well as at ``PACK_TARGET`` bytes, so that its header
    stays under what a reader of a pack as a stream accepts (``MAX_HEADER``; FORMAT §16.2)."""
    monkeypatch.setattr(packs, "PACK_BLOBS", 4)
    url = _url(tmp_path)
    rep = _run(office, url)
    assert rep["files"] > 8
    sizes = []
    for p in (tmp_path / "target" / "data").rglob("*"):
        if p.is_file():
            sizes.append(len(packs.read_trailer(p.name, p.read_bytes())))
    assert sizes and max(sizes) <= 4 and len(sizes) >= rep["files"] // 4, sizes
    assert backup.verify(url, read_fraction=1.0).ok
