"""The owner of a ``file://`` backup target writes what they like into it — links, FIFOs, forged
objects named by their own hash. Nothing they write takes a command out of the target, makes it
wait, or ends it in a traceback: each is refused or reported in one line naming the object."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import tracemalloc
import sys
from pathlib import Path

import pytest

import backup_helpers
from backup_helpers import actor, add_docs, office_with_dossiers
from vault import backup
from vault.errors import IntegrityError, NotFoundError
from vault.backup import restorer
from vault.backup.packs import PackBuilder
from vault.backup.repo import Repo, data_name
from vault.store import seam
from vault_plugins.targets import FileTarget

PY = sys.executable


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def backed_up(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    add_docs(o, numbers[0], 2, 5000, tmp_path / "src", act=actor(o))
    t = tmp_path / "target"
    o.run("backup", "run", f"file://{t}")
    return o, t


def rewrite(t: Path, prefix: str, edit) -> str:
    """Replace the one object under ``prefix/`` by an edited copy named by its new hash, as the
    target's owner can; the new name."""
    (old,) = (t / prefix).iterdir()
    obj = json.loads(old.read_bytes())
    edit(obj)
    old.unlink()
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    (t / prefix / sha(data)).write_bytes(data)
    return f"{prefix}/{sha(data)}"


def cli(o, *args: str, limit_memory: bool = False) -> subprocess.CompletedProcess:
    """``vault ARGS`` in a process of its own (the timeout only keeps a hang from stopping the suite)."""
    env = {**os.environ, "VAULT_DIR": str(o.vault_dir), "VAULT_PASSPHRASE_FILE": str(o.root / "pass"),
           "VAULT_IDENTITY": str(o.ident("bob")), "VAULT_AGENT_SOCK": str(o.root / "none.sock")}

    def one_gib() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        return subprocess.run([PY, "-m", "vault", *args], env=env, capture_output=True, text=True, timeout=120,
                              preexec_fn=one_gib if limit_memory else None)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vault {' '.join(args)} still waits after 120 s")


def one_error(r: subprocess.CompletedProcess, *names: str) -> str:
    """The one ``vault: error:`` line of a refused command, which names each of ``names``, with the
    hint to verify the target."""
    return backup_helpers.one_error(r, *names, hint="run 'vault backup verify'")


# -- symbolic links below the target's root -------------------------------------------------------


def test_prune_deletes_nothing_through_a_linked_directory(backed_up, tmp_path):
    """Attack: ``data/ab`` made a link to a directory outside, and an index forged (named by its own
    hash) to list a pack there that no snapshot needs — prune would delete the file it names."""
    o, t = backed_up
    victim = tmp_path / "precious" / ("ab" + "c" * 62)
    victim.parent.mkdir()
    victim.write_text("not the target's")
    os.symlink(victim.parent, t / "data" / "ab")
    rewrite(t, "index", lambda ix: ix["packs"].__setitem__(victim.name, {"size": 1, "blobs": [["0" * 64, 0, 1]]}))
    r = cli(o, "backup", "prune", f"file://{t}", "--keep-daily", "1")
    one_error(r, f"data/ab/{victim.name}", "data/ab,", str(t))
    assert victim.read_text() == "not the target's"


@pytest.mark.parametrize("linked", ["trees", "data"])
def test_a_run_writes_nothing_through_a_linked_directory(backed_up, tmp_path, linked):
    """Attack: the target's ``trees/`` or ``data/`` moved out and replaced by a link to it — a run
    would put its new tree or packs wherever the link points."""
    o, t = backed_up
    out = tmp_path / "elsewhere"
    out.mkdir()
    (t / linked).rename(out / linked)
    os.symlink(out / linked, t / linked)
    before = sorted(p for p in (out / linked).rglob("*"))
    o.add_text(o.create(name="X", contact="x@example.org"), "new text")
    r = cli(o, "backup", "run", f"file://{t}")
    one_error(r, f"{linked},", str(t))
    assert sorted(p for p in (out / linked).rglob("*")) == before


def test_the_file_target_goes_through_no_link_below_its_root(tmp_path):
    """Every operation on a name under a linked directory, or under a file where a directory
    belongs, is refused naming the object; the root itself may be a link."""
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "obj").write_bytes(b"outside")
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "root-link")
    t = FileTarget(f"file://{tmp_path / 'root-link'}")
    os.symlink(outside / "x", real / "x")
    (real / "plain").write_bytes(b"a file")
    for name in ("x/obj", "x/new", "plain/obj"):
        part = name.split("/")[0]
        calls = [(t.get, name), (t.exists, name), (t.delete, name), (t.put, name, io.BytesIO(b"new")),
                 (t.put_many, [(name, b"new")])]
        for call, *args in calls:
            with pytest.raises(IntegrityError) as e:
                call(*args)  # type: ignore[operator]
            assert f"object {name} is reached through {part}," in str(e.value), call
        with pytest.raises(IntegrityError, match=f"is reached through {part},"):
            t.list(f"{part}/")
    assert sorted(os.listdir(outside / "x")) == ["obj"] and (outside / "x" / "obj").read_bytes() == b"outside"
    assert list(t.list()) == ["plain"]  # the linked directory's names are no objects
    t.put("y/obj", io.BytesIO(b"here"))  # through the root's own link: fine
    assert (real / "y" / "obj").read_bytes() == b"here" and t.get("y/obj").read() == b"here"


@pytest.mark.parametrize("op", ["put", "put_many", "delete"])
def test_a_directory_swapped_for_a_link_while_an_operation_runs_steers_nothing_out(tmp_path, monkeypatch, op):
    """Attack: ``data/ab`` swapped for a link to a directory outside in the instant after the target
    looked at the way and before it writes or deletes there (here at the crash seam's step, just
    before the file is made or removed) — a put wrote outside, a delete removed the file outside.
    The target works in the directory it opened, or refuses the link it now finds."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "obj").write_bytes(b"outside")
    root = tmp_path / "t"
    t = FileTarget(f"file://{root}")
    t.put("data/ab/obj", io.BytesIO(b"inside"))
    way = root / "data" / "ab"
    take = seam.step

    def step(kind: str, path) -> None:
        if kind == {"delete": "unlink"}.get(op, "create") and not way.is_symlink():
            way.rename(root / "moved")
            os.symlink(outside, way)
        take(kind, path)

    monkeypatch.setattr(seam, "step", step)
    if op == "put":
        t.put("data/ab/obj", io.BytesIO(b"new"))
    elif op == "delete":
        t.delete("data/ab/obj")
    else:  # (named after the batch is synced: the way, opened again, is refused)
        with pytest.raises(IntegrityError, match="object data/ab/obj is reached through data/ab,"):
            t.put_many([("data/ab/obj", b"new")])
    assert sorted(os.listdir(outside)) == ["obj"] and (outside / "obj").read_bytes() == b"outside"
    # where the way led when it was opened: the put or delete took place there
    assert (root / "moved" / "obj").exists() == (op != "delete")
    assert op != "put" or (root / "moved" / "obj").read_bytes() == b"new"


@pytest.mark.parametrize("what", ["data", "index", "snapshots", "keys", "config"])
def test_verify_stopped_by_a_linked_directory_says_what_to_do(backed_up, tmp_path, what):
    """Attack: ``data/``, ``index/``, ``snapshots/`` or ``keys/`` itself made a link (to a faithful copy
    outside), or ``config`` a FIFO — ``backup verify`` cannot look past it and stopped with one line
    whose hint was to run ``vault backup verify``. The hint says what to do instead."""
    o, t = backed_up
    if what == "config":
        (t / what).unlink()
        os.mkfifo(t / what)
    else:
        (t / what).rename(tmp_path / what)
        os.symlink(tmp_path / what, t / what)
    r = cli(o, "backup", "verify", f"file://{t}")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("vault: error:")]
    assert (f"{what}, which is no directory" if what != "config" else "object config is not a regular file") in line
    assert "vault backup verify" not in r.stderr, r.stderr
    assert ("vault: hint: the target has been tampered with: put back what it names from a copy you trust, "
            "or back up to a new, empty target") in r.stderr, r.stderr


# -- what is no regular file in place of an object ------------------------------------------------


@pytest.mark.parametrize("name,cmd", [("config", "list"), ("locks/x", "run"), ("pack", "restore")])
def test_a_fifo_in_place_of_an_object_is_named_and_waited_on_by_nothing(backed_up, tmp_path, name, cmd):
    """Attack: ``config``, a lock or a pack replaced by a FIFO — opening it would wait for a writer
    for ever (``backup list``, ``run``, ``restore`` never ended)."""
    o, t = backed_up
    if name == "pack":
        (pack,) = [p for p in (t / "data").rglob("*") if p.is_file()]
        name = pack.relative_to(t).as_posix()
    (t / name).unlink(missing_ok=True)
    (t / name).parent.mkdir(exist_ok=True)
    os.mkfifo(t / name)
    args = {"list": [], "run": [], "restore": ["latest", str(tmp_path / "r")]}[cmd]
    one_error(cli(o, "backup", cmd, f"file://{t}", *args), f"object {name} is not a regular file", str(t))


def test_config_linked_to_a_device_is_not_read(backed_up):
    """Attack: ``config`` made a link to ``/dev/zero`` — read without end, it ran the process out of
    memory (a MemoryError traceback under a 1 GiB limit)."""
    o, t = backed_up
    (t / "config").unlink()
    os.symlink("/dev/zero", t / "config")
    one_error(cli(o, "backup", "list", f"file://{t}", limit_memory=True), "object config is not a regular file")


def test_verify_names_each_object_that_is_no_regular_file(backed_up):
    """A FIFO in place of a snapshot and a link in place of a tree: ``backup verify`` names both as
    problems and waits on neither."""
    o, t = backed_up
    (snap,) = (t / "snapshots").iterdir()
    (tree,) = (t / "trees").iterdir()
    snap.unlink()
    os.mkfifo(snap)
    tree.rename(t / "moved")
    os.symlink(t / "moved", tree)
    r = cli(o, "backup", "verify", f"file://{t}")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for p in (snap, tree):
        assert f"object {p.relative_to(t).as_posix()} is not a regular file" in r.stdout + r.stderr


def test_the_file_target_reads_only_regular_files(tmp_path):
    t = FileTarget(f"file://{tmp_path}")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "zero", "dir"):
        for call in (t.get, t.exists):
            with pytest.raises(IntegrityError, match=f"object {name} is not a regular file"):
                call(name)
    with pytest.raises(IntegrityError, match="object dir is not a regular file"):
        t.delete("dir")
    t.delete("zero")  # removes the link itself, never what it names
    assert not os.path.lexists(tmp_path / "zero") and os.path.exists("/dev/zero")
    assert not t.exists("missing")
    with pytest.raises(NotFoundError):
        t.get("missing")


# -- a large regular file in place of a small object ----------------------------------------------


def _grow(path: Path, size: int = 4 << 30) -> None:
    """``path`` made a file of ``size`` bytes (sparse: it costs the target's owner nothing)."""
    path.unlink(missing_ok=True)
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


@pytest.mark.parametrize("name,cmd,bound", [("config", "list", 1), ("locks/x", "run", 1), ("history", "run", 1)])
def test_a_large_file_in_place_of_a_small_object_stops_the_command_unread(backed_up, name, cmd, bound):
    """Attack: ``config``, a lock or the witness record replaced by a 4 GiB file — it was read whole
    (under a 1 GiB limit, a MemoryError traceback). Past its kind's bound it is named, unread."""
    o, t = backed_up
    _grow(t / name)
    r = cli(o, "backup", cmd, f"file://{t}", limit_memory=True)
    one_error(r, f"{name}: larger than {bound} MiB, more than any such object holds (damaged or tampered with)")


@pytest.mark.parametrize("prefix,bound", [("snapshots", 256), ("index", 256), ("keys", 64)])
def test_verify_names_a_large_file_in_place_of_a_small_object(backed_up, prefix, bound):
    """The same for a snapshot, an index or a key-mirror generation: ``backup verify`` names it as a
    problem, and reads none of it."""
    o, t = backed_up
    victim = sorted(p for p in (t / prefix).rglob("*") if p.is_file())[0]
    _grow(victim)
    r = cli(o, "backup", "verify", f"file://{t}", limit_memory=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    name = victim.relative_to(t).as_posix()
    assert f"{name}: larger than {bound} MiB, more than any such object holds" in r.stdout, r.stdout


def test_a_small_object_from_a_stream_that_cannot_seek_is_read_no_further_than_its_bound(tmp_path):
    """Where the target's stream cannot say its size (S3), a small object is read to one byte past its
    kind's bound and no further: a 64 MiB ``config`` held at most that, not the 64 MiB."""
    root = tmp_path / "t"
    _grow(root / "config", 64 << 20)
    repo = Repo(ForwardOnlyTarget(f"file://{root}"), cache=tmp_path / "c")
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match="config: larger than 1 MiB"):
            repo.config()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading config held {peak >> 20} MiB"


# -- forged JSON objects, each named by its own hash ----------------------------------------------


def _each_pack(ix: dict, key: str, value) -> None:
    for p in ix["packs"].values():
        p[key] = value


def _first_blob(ix: dict, entry) -> None:
    next(iter(ix["packs"].values()))["blobs"][0] = entry


FORGED = {
    "index: blobs not a list": ("index", lambda ix: _each_pack(ix, "blobs", 5)),
    "index: packs a list": ("index", lambda ix: ix.__setitem__("packs", [1])),
    "index: a blob entry of a string": ("index", lambda ix: _first_blob(ix, ["0" * 64, "a", 1])),
    "index: size a string": ("index", lambda ix: _each_pack(ix, "size", "1")),
    "index: a blob past its pack's end": ("index", lambda ix: _first_blob(ix, ["0" * 64, 2**64, 1])),
    "snapshot: no tree": ("snapshots", lambda s: s.pop("tree")),
    "snapshot: other a number": ("snapshots", lambda s: s.__setitem__("other", 5)),
    "snapshot: other a dict": ("snapshots", lambda s: s.__setitem__("other", {"0" * 64: 1})),
    "snapshot: history a list": ("snapshots", lambda s: s.__setitem__("history", [1, 2])),
    "snapshot: time not a time": ("snapshots", lambda s: s.__setitem__("time", "2026-13-01T00:00:00Z")),
}


@pytest.mark.parametrize("what", FORGED)
def test_verify_names_a_forged_index_or_snapshot(backed_up, what):
    """Attack: an index or snapshot replaced by JSON of another shape, named by its own hash —
    ``backup verify`` ended in a traceback (a dict iterated as a list, a missing key, a string
    unpacked as an entry)."""
    o, t = backed_up
    prefix, edit = FORGED[what]
    name = rewrite(t, prefix, edit)
    res = o.run("backup", "verify", f"file://{t}", ok=False)
    assert res.exit_code == 1, res.output
    assert f"problem: {name}: does not parse" in res.output, res.output


SNAPSHOT_FIELDS = {
    "no files": lambda s: s.pop("files"),
    "bytes a string": lambda s: s.__setitem__("bytes", "x"),
    "bytes_new negative": lambda s: s.__setitem__("bytes_new", -1),
    "no other": lambda s: s.pop("other"),
    "time garbage": lambda s: s.__setitem__("time", "garbage"),
    "time with a zone": lambda s: s.__setitem__("time", s["time"][:-1] + "+00:00"),
}


@pytest.mark.parametrize("cmd", [["list"], ["prune", "--keep-daily", "1"]])
@pytest.mark.parametrize("what", SNAPSHOT_FIELDS)
def test_list_and_prune_refuse_a_snapshot_missing_what_they_read(backed_up, cmd, what):
    """Attack: a snapshot without a field ``list`` or ``prune`` reads, or with one of another type or
    a time that does not parse — it passed the snapshot check and ended in a traceback."""
    o, t = backed_up
    name = rewrite(t, "snapshots", SNAPSHOT_FIELDS[what])
    res = o.run("backup", cmd[0], f"file://{t}", *cmd[1:], ok=False)
    assert res.exit_code == 1, res.output
    assert f"vault: error: {name}: does not parse" in res.output, res.output
    assert "vault: hint: run 'vault backup verify'" in res.output


def test_a_tree_that_is_no_age_file_is_named(backed_up, tmp_path):
    """Attack: a snapshot naming a tree that is no age file (named by its hash) — restore said "not
    an age file" and sent the operator to 'vault check', naming nothing."""
    o, t = backed_up
    junk = b"this is no age file\n"
    (t / "trees" / sha(junk)).write_bytes(junk)
    rewrite(t, "snapshots", lambda s: s.__setitem__("tree", sha(junk)))
    res = o.run("backup", "restore", f"file://{t}", "latest", str(tmp_path / "r"), who="bob", ok=False)
    assert res.exit_code == 1, res.output
    assert f"vault: error: trees/{sha(junk)}: damaged or tampered with" in res.output, res.output
    assert "vault: hint: run 'vault backup verify'" in res.output


# -- memory ---------------------------------------------------------------------------------------


def peak_rss_mib(o, *args: str) -> tuple[float, str]:
    """The peak resident memory of ``vault ARGS`` (from a fresh parent that starts nothing else), and
    what it printed."""
    env = {**os.environ, "VAULT_DIR": str(o.vault_dir), "VAULT_PASSPHRASE_FILE": str(o.root / "pass"),
           "VAULT_IDENTITY": str(o.ident("bob")), "VAULT_AGENT_SOCK": str(o.root / "none.sock")}
    parent = ("import json, resource, subprocess, sys\n"
              "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
              "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.stdout, r.stderr]))\n")
    r = subprocess.run([PY, "-c", parent, PY, "-m", "vault", *args], env=env, capture_output=True, text=True,
                       timeout=900)
    code, kib, out, err = json.loads(r.stdout)
    assert code == 0, (out, err)
    return kib / 1024, out


def test_verify_read_data_memory_does_not_follow_the_document_size(tmp_path, monkeypatch):
    """``backup verify --read-data`` held each pack whole, and again to decrypt its documents: a
    128 MiB document took 311 MiB. Read in 1 MiB pieces, it stays within restore's bound (64 MiB)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    add_docs(o, numbers[0], 1, 96 << 20, tmp_path / "src", act=actor(o))
    for f in (tmp_path / "src").iterdir():
        f.unlink()  # (only the vault's copy is needed)
    t = tmp_path / "target"
    o.run("backup", "run", f"file://{t}")
    assert max(p.stat().st_size for p in (t / "data").rglob("*") if p.is_file()) > 96 << 20
    peak, out = peak_rss_mib(o, "backup", "verify", "--read-data", "--json", f"file://{t}")
    rep = json.loads(out)
    assert rep["ok"] and rep["packs_read"] == rep["packs"] and rep["documents_decrypted"] == 1  # hashed and decrypted
    assert peak <= 64, f"verify --read-data peaked at {peak:.0f} MiB for a 96 MiB document"


class _ForwardOnly(io.RawIOBase):
    def __init__(self, f) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        return self._f.readinto(b)

    def close(self) -> None:
        self._f.close()
        super().close()


class ForwardOnlyTarget(FileTarget):
    """A directory target whose objects read front to back only, as an S3 body does."""

    def get(self, name):
        return io.BufferedReader(_ForwardOnly(super().get(name)), 1 << 20)


def test_verify_reads_a_forward_only_pack_in_pieces_and_names_its_damage(tmp_path, monkeypatch):
    """The same bound where the target's stream cannot seek (S3): the pack's header is taken from the
    end of the one pass, and a changed byte of the document is still named."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    o, numbers = office_with_dossiers(tmp_path / "office", monkeypatch, dossiers=1)
    act = actor(o)
    add_docs(o, numbers[0], 1, 24 << 20, tmp_path / "src", act=act)
    t = tmp_path / "target"
    o.run("backup", "run", f"file://{t}")
    target = ForwardOnlyTarget(f"file://{t}")
    tracemalloc.start()
    try:
        rep = backup.verify(target, read_fraction=1.0)  # (keyless: hashing alone; age's decryption
        _, peak = tracemalloc.get_traced_memory()      # keeps a few MiB of its own in flight)
    finally:
        tracemalloc.stop()
    assert rep.ok and rep.packs_read == rep.packs, rep.problems
    assert peak < 8 << 20, f"verify held {peak >> 20} MiB for a 24 MiB document"
    rep = backup.verify(target, read_fraction=1.0, identities=act.read_identities())
    assert rep.ok and rep.documents_decrypted == 1, rep.problems
    (pack,) = [p for p in (t / "data").rglob("*") if p.is_file() and p.stat().st_size > 24 << 20]
    with open(pack, "r+b") as f:
        f.seek(12 << 20)
        byte = f.read(1)
        f.seek(12 << 20)
        f.write(bytes([byte[0] ^ 1]))
    rep = backup.verify(target, read_fraction=1.0, identities=act.read_identities())
    name = pack.relative_to(t).as_posix()
    assert f"{name}: damaged (blob " in " ".join(str(p) for p in rep.problems), rep.problems
    assert f"{name}: blob " in " ".join(str(p) for p in rep.problems)  # its document fails authentication


def test_one_small_blob_is_read_in_place_not_with_its_whole_pack(tmp_path):
    """A ring file or audit log is taken out of its pack (``fetch_blobs``) by reading only its bytes:
    an index that names a small blob in a large pack — as a forged one can — no longer makes the
    reader hold the whole pack; a blob that does not hash to its id is still named."""
    big, small = os.urandom(24 << 20), b"a ring file, say"
    builder = PackBuilder()
    builder.add(sha(big), big)
    builder.add(sha(small), small)
    pack_id, data, entries = builder.finish()
    repo = Repo(f"file://{tmp_path / 't'}", cache=tmp_path / "c")
    repo.put(data_name(pack_id), data)
    del big, data, builder
    index = {b: (pack_id, off, ln) for b, off, ln in entries}
    tracemalloc.start()
    try:
        got = dict(restorer.fetch_blobs(repo, index, [sha(small)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == {sha(small): small}
    assert peak < 4 << 20, f"fetching {len(small)} bytes held {peak >> 20} MiB"
    _, off, ln = index[sha(small)]
    with pytest.raises(IntegrityError, match=rf"blob {sha(small)[:16]} in {data_name(pack_id)} is damaged"):
        dict(restorer.fetch_blobs(repo, {sha(small): (pack_id, off + 1, ln)}, [sha(small)]))


def test_blobs_the_index_says_overlap_are_each_read_in_place(tmp_path):
    """An index may name ranges of one pack that overlap (a blob inside another, or a forged index):
    where one begins before the last ended the pack is read again from its start, and each is checked
    against its id."""
    whole = os.urandom(3000)
    builder = PackBuilder()
    builder.add(sha(whole), whole)
    pack_id, data, _ = builder.finish()
    repo = Repo(f"file://{tmp_path / 't'}", cache=tmp_path / "c")
    repo.put(data_name(pack_id), data)
    parts = {sha(whole[off : off + ln]): (pack_id, off, ln) for off, ln in [(0, 2000), (1000, 1500), (2500, 500)]}
    got = dict(restorer.fetch_blobs(repo, parts, parts))
    assert got == {b: whole[off : off + ln] for b, (_, off, ln) in parts.items()}


@pytest.mark.parametrize("off, ln", [(2**64, 1), (0, 10**15)], ids=["offset past any file", "length past any file"])
def test_a_forged_offset_or_length_is_damage_named_not_a_traceback(tmp_path, off, ln):
    """Attack: an index whose pack size, offsets and lengths are far past any file (consistent with
    each other, so the index parses): a seek past what a file can hold raised ValueError, and a read of
    the forged length allocated it whole (MemoryError). Each is damage, named with its pack."""
    blob = b"a ring file, say"
    builder = PackBuilder()
    builder.add(sha(blob), blob)
    pack_id, data, _ = builder.finish()
    repo = Repo(f"file://{tmp_path / 't'}", cache=tmp_path / "c")
    repo.put(data_name(pack_id), data)
    with pytest.raises(IntegrityError, match=rf"{data_name(pack_id)}"):
        dict(restorer.fetch_blobs(repo, {sha(blob): (pack_id, off, ln)}, [sha(blob)]))


def test_a_forged_trailer_makes_verify_hold_no_pack(tmp_path):
    """Attack: a pack's last four bytes rewritten to name nearly the whole pack as its header — the
    streamed check read that "header" whole. A header past ``MAX_HEADER`` is damage, named."""
    from vault.backup import packs, verifier

    big = os.urandom(24 << 20)
    builder = PackBuilder()
    builder.add(sha(big), big)
    pack_id, data, entries = builder.finish()
    repo = Repo(f"file://{tmp_path / 't'}", cache=tmp_path / "c")
    repo.put(data_name(pack_id), data[:-4] + (len(data) - 4).to_bytes(4, "little"))
    del big, data, builder
    assert packs.MAX_HEADER < 24 << 20
    tracemalloc.start()
    try:
        problems = verifier._read_pack(repo, pack_id, data_name(pack_id), [tuple(e) for e in entries])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems and all(str(p).startswith(f"{data_name(pack_id)}: damaged") for p in problems), problems
    assert peak < 8 << 20, f"verify held {peak >> 20} MiB of a 24 MiB pack"


@pytest.mark.parametrize("name", ["a//b", "x/", "/x", "data//ab/cd", "index/"])
def test_an_object_name_with_an_empty_part_is_no_object_name(tmp_path, name):
    """An object name has no empty part: the file target would walk or make a directory named ""
    (an error deep in the walk, not one line), and a listing naming one — an S3 server's owner
    writes what it likes there — names nothing the engine ever put."""
    from vault_plugins.objectnames import check_name

    with pytest.raises(ValueError, match="bad object name"):
        check_name(name)
    t = FileTarget(f"file://{tmp_path / 't'}")
    with pytest.raises(ValueError, match="bad object name"):
        t.put(name, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="bad object name"):
        t.get(name)
    assert not (tmp_path / "t").exists()
    assert check_name("data/ab/" + "c" * 64) and check_name("keys/k.age/20260101T000000Z-" + "0" * 64)
